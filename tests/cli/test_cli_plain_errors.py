"""issue 12, "what a newcomer stumbled on": no raw library text reaches the operator, and
nothing wrong is silently accepted — each case one line on stderr with its exit code."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cli

SOFT = "sim://?lesion=soft-stenosis&seed=2"


@pytest.mark.parametrize(
    ("port", "code", "said"),
    [
        ("socket://nohost", 2, "socket://HOST:PORT"),
        ("/dev/null", 3, "not a serial port"),
        ("sim://?seed=-5", 2, "seed=-5 must be 0.."),
    ],
)
def test_a_bad_port_says_what_is_wrong(cli: Cli, port: str, code: int, said: str) -> None:
    line = cli.one_line_error(cli.run("--port", port, "status"), code)
    assert said in line, line
    assert "NoneType" not in line and "ioctl" not in line and "Errno" not in line


def test_a_directory_as_port_is_named_once(cli: Cli, tmp_path: Path) -> None:
    line = cli.one_line_error(cli.run("--port", str(tmp_path), "status"), 3)
    assert "is a directory, not a serial port" in line
    assert "Errno" not in line


def test_a_hint_names_a_section_the_operator_guide_has(cli: Cli) -> None:
    line = cli.one_line_error(cli.run("--port", "sim://?seed=x", "status"), 2)
    assert "docs/operator.md §2, 'Choosing the port'" in line
    guide = (Path(__file__).parents[2] / "docs" / "operator.md").read_text()
    assert "## 2. Choosing the port" in guide


def test_sim_serve_with_a_bad_option_is_one_line_not_the_simulators_usage(cli: Cli) -> None:
    line = cli.one_line_error(cli.run("sim", "serve", "--fault", "explode"), 2)
    assert "--fault" in line and "explode" in line
    line = cli.one_line_error(cli.run("sim", "serve", "--no-such-option"), 2)
    assert "--no-such-option" in line


def test_a_profile_that_is_not_utf8_is_a_bad_profile(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe[advance]\n")
    line = cli.one_line_error(cli.run("--port", SOFT, "run", str(bad)), 2)
    assert "not UTF-8" in line and "codec" not in line


def test_an_empty_profile_is_refused(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing yet\n")
    line = cli.one_line_error(cli.run("--port", SOFT, "run", str(empty)), 2)
    assert "empty" in line


def test_a_lesion_beyond_the_travel_is_refused(cli: Cli, tmp_path: Path) -> None:
    far = tmp_path / "far.toml"
    far.write_text(
        'name = "far"\nstart_mm = 140\n[[segment]]\ntissue = "fibrous"\nlength_mm = 20\n'
    )
    for args in (
        ("--port", f"sim://?lesion={far}", "status"),
        ("--port", f"sim://?lesion={far}", "run", "pierce"),
        ("sim", "serve", "--lesion", str(far)),
    ):
        line = cli.one_line_error(cli.run(*args), 2)
        assert "beyond the rig's travel of 150 mm" in line, line


@pytest.fixture(scope="module")
def recorded(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("rec") / "run"
    proc = cli.run("--port", SOFT, "run", "pierce", "--record", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    return run_dir


def test_plot_of_a_corrupt_meta_json_is_one_line(cli: Cli, recorded: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    shutil.copytree(recorded, folder)
    (folder / "meta.json").write_text("{bad")
    line = cli.one_line_error(cli.run("plot", str(folder)), 2)
    assert "meta.json is damaged" in line


def test_plot_of_a_header_only_telemetry_is_refused(
    cli: Cli, recorded: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    shutil.copytree(recorded, folder)
    (folder / "plot.png").unlink(missing_ok=True)
    header = (folder / "telemetry.csv").read_text().splitlines()[0]
    (folder / "telemetry.csv").write_text(header + "\n")
    line = cli.one_line_error(cli.run("plot", str(folder)), 2)
    assert "no samples" in line
    assert not (folder / "plot.png").exists()


def test_run_beyond_the_travel_is_refused_before_moving_with_4(cli: Cli) -> None:
    """docs/operator.md §7: a command checked against the device's limits is refused, 4."""
    line = cli.one_line_error(cli.run("--port", SOFT, "run", "pierce", "--target-mm", "149"), 4)
    assert "beyond the device's travel" in line and "refused" in line


def test_the_simulator_without_a_c_compiler_says_what_to_install(cli: Cli, tmp_path: Path) -> None:
    """The simulator runs the firmware's C core, built on first use: on a machine with no
    compiler (CC names none, an empty build cache) that is one line saying what to
    install — and a command that talks to no simulator still works."""
    env = {"CC": str(tmp_path / "no-such-cc"), "ND_CORE_BUILD_DIR": str(tmp_path / "cache")}
    line = cli.one_line_error(cli.run("--port", SOFT, "status", env=env), 2)
    assert "C compiler" in line and "apt-get install gcc" in line, line
    assert cli.run("sim", "lesions", env=env).returncode == 0
