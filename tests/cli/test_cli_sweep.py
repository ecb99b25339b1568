"""`needlectl sim sweep` as the operator runs it: the answer, and one-line errors."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

SWEEP = """
name = "cli"
seeds = [1]
[[family]]
name = "cli"
[family.params]
start_mm = 10.0
length_mm = 5.0
calcium_blocks = 1
calcium_floor_n = 4.0
"""


def test_a_sweep_writes_its_table_and_answers_in_json(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SWEEP)
    proc = cli.run("sim", "sweep", "s.toml", "--jobs", "1", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["runs"] == 1 and answer["ran"] == 1
    assert answer["summary"]["profiles"]["pierce"]["crossed"] == 1
    assert (tmp_path / "cli-results" / "results.parquet").is_file()
    assert (tmp_path / "cli-results" / "sweep.png").is_file()
    again = json.loads(cli.run("sim", "sweep", "s.toml", "--json", cwd=tmp_path).stdout)
    assert again["ran"] == 0 and again["resumed"] == 1


def test_a_missing_sweep_file_is_one_line(cli: Any, tmp_path: Path) -> None:
    line = cli.one_line_error(cli.run("sim", "sweep", "nope.toml", cwd=tmp_path), 2)
    assert "nope.toml: no such sweep file" in line
    assert line.endswith("see `needlectl sim sweep --help`")  # the command, not COMMAND


def test_a_sweep_file_not_in_utf8_is_named(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "latin1.toml").write_bytes('name = "déjà"\n'.encode("latin-1"))
    line = cli.one_line_error(cli.run("sim", "sweep", "latin1.toml", cwd=tmp_path), 2)
    assert line.startswith("needlectl: latin1.toml: not UTF-8 text") and "0xe9" in line


def test_a_failed_dask_connection_leaves_no_stray_table(cli: Any, tmp_path: Path) -> None:
    """A "scheduler" that hangs up at once: the sweep fails fast — and leaves no
    results.csv (nor folder) behind to be mistaken for a table."""
    (tmp_path / "s.toml").write_text(SWEEP)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"

        def hang_up() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return  # closed: the test is over
                conn.close()

        threading.Thread(target=hang_up, daemon=True).start()
        proc = cli.run("sim", "sweep", "s.toml", "--dask", address, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no scheduler there" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "cli-results").exists()


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("local:zero", "local:N needs N workers"),
        # Dask's own words were "missing port number in address ''" and "invalid literal
        # for int() with base 10: 'x'", naming no --dask, after the sweep had begun
        ("tcp://", "a scheduler address is tcp://HOST:PORT"),
        ("tcp://127.0.0.1", "a scheduler address is tcp://HOST:PORT"),
        ("tcp://127.0.0.1:x", "a scheduler address is tcp://HOST:PORT"),
        ("tcp://127.0.0.1:99999", "a scheduler address is tcp://HOST:PORT"),
    ],
)
def test_a_bad_dask_address_is_one_line_before_anything_runs(
    cli: Any, tmp_path: Path, address: str, message: str
) -> None:
    (tmp_path / "s.toml").write_text(SWEEP)
    proc = cli.run("sim", "sweep", "s.toml", "--dask", address, cwd=tmp_path)
    line = cli.one_line_error(proc, 2)  # one line: the sweep never said it began
    assert line.startswith(f"needlectl: --dask {address}: ") and message in line
    assert not (tmp_path / "cli-results").exists()


def test_a_bad_lesion_file_keeps_the_sweep_files_name(cli: Any, tmp_path: Path) -> None:
    """A sweep naming a lesion file that does not parse: the line says which sweep file
    named it and points to the sweep's help (it said only "bad lesion: LESION.toml: ..."
    and pointed to `needlectl sim lesions`)."""
    (tmp_path / "bad.toml").write_text('name = "bad"\n[[segment]]\ntissue = "x"\n')
    (tmp_path / "s.toml").write_text('name = "cli"\nlesions = ["bad.toml"]\n')
    line = cli.one_line_error(cli.run("sim", "sweep", "s.toml", cwd=tmp_path), 2)
    assert line.startswith("needlectl: s.toml: lesions: bad.toml: segment 1"), line
    assert line.endswith("see `needlectl sim sweep --help`")


def test_a_scheduler_without_workers_is_said_and_given_up_on(cli: Any, tmp_path: Path) -> None:
    """A real TCP Dask scheduler with no worker: the sweep says it waits for one, for how
    long, then gives up in one line — it never sits silent."""
    from dask.distributed import LocalCluster

    (tmp_path / "s.toml").write_text(SWEEP)
    with LocalCluster(
        n_workers=0, processes=False, protocol="tcp://", host="127.0.0.1", dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        proc = cli.run(
            "sim", "sweep", "s.toml", "--dask", address, "--dask-wait-s", "1", cwd=tmp_path
        )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert f"{address} has no workers yet: waiting up to 1 s" in proc.stderr
    assert "no worker joined the scheduler in 1 s" in lines[-1]
    assert not (tmp_path / "cli-results" / "results.csv").exists()
