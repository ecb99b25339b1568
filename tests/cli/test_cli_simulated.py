"""A simulated device is never taken for a real one: every result line says SIMULATED
with the lesion and seed, --json has `simulation`, and so has the record's meta.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from firmware_host.simulation import simulated_label, simulation_of
from protocol import Capabilities

if TYPE_CHECKING:
    from conftest import Cli

PORT = "sim://?lesion=soft-stenosis&seed=3"
LABEL = "SIMULATED (lesion soft-stenosis, seed 3)"


def test_every_result_line_says_simulated(cli: Cli) -> None:
    for args in (("status",), ("home",), ("jog", "--rotate-deg", "10")):
        proc = cli.run("--port", PORT, *args)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[0].endswith(LABEL), proc.stdout
    info = cli.run("--port", PORT, "info")
    assert info.returncode == 0, info.stderr
    assert any(ln.startswith("simulated") and LABEL in ln for ln in info.stdout.splitlines())


def test_json_has_the_simulation(cli: Cli) -> None:
    for args in (("status",), ("info",), ("home",)):
        proc = cli.run("--json", "--port", PORT, *args)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["simulation"] == {"lesion": "soft-stenosis", "seed": 3}


def test_a_default_simulator_names_its_defaults(cli: Cli) -> None:
    proc = cli.run("--port", "sim://", "status")
    assert "SIMULATED (lesion soft-stenosis, seed 0)" in proc.stdout


def test_run_line_and_meta_json_say_simulated(cli: Cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = cli.run("--port", PORT, "run", "pierce", "--record", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("CROSSED")
    assert proc.stdout.splitlines()[0].endswith(LABEL)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["simulation"] == {"lesion": "soft-stenosis", "seed": 3}
    # meta.json's command is the command as typed (issue 12; 311e088), not "needlectl run"
    assert meta["command"] == (f"needlectl --port '{PORT}' run pierce --record {run_dir}")


ALL = Capabilities(sum(Capabilities))


class _Ident:
    def __init__(self, simulated: bool, capabilities: Capabilities = ALL) -> None:
        self.simulated = simulated
        self.capabilities = capabilities
        self.serial_number = "ND-POSIX-0001"


def test_a_served_simulator_is_simulated_with_unknown_lesion_and_a_real_rig_is_not() -> None:
    served = simulation_of("/dev/pts/7", _Ident(True))
    assert served == {"lesion": None, "seed": None}
    assert simulated_label(served).startswith("SIMULATED")
    assert simulation_of("/dev/needle-driver", _Ident(False)) is None
    assert simulated_label(None) == ""


def test_a_firmware_bench_model_is_not_mistaken_for_the_simulator() -> None:
    bench = simulation_of("/dev/pts/7", _Ident(True, ALL & ~Capabilities.FAULT_INJECTION))
    assert bench == {"bench_model": "ND-POSIX-0001"}
    assert simulated_label(bench) == (
        "SIMULATED (the firmware's bench model ND-POSIX-0001, no lesion)"
    )
