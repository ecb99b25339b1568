"""Whether a run or a reading comes from a simulated device, said everywhere it shows.

IDENTITY's ``simulated`` flag is the device's own word; the lesion and seed are known
to the host only for the in-process simulator (``sim://?lesion=NAME&seed=N``, whose
defaults are the simulator's). A simulator served on a pty or TCP does not report
them over the link: they are ``None`` then (see the terminal running ``sim serve``).

Two kinds of device say they are simulated: the simulator (it takes injected faults:
Capabilities.FAULT_INJECTION) and a firmware port whose own bench model stands in for
the rig (the C firmware on a pty or under QEMU: no lesion, no seed, no physics model).
The label tells them apart, so nobody reads a bench model's figures as a lesion's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim_device.device import DeviceOptions


def sim_options(port: str) -> DeviceOptions:
    """The options of a ``sim://?...`` URL, read and checked by the simulator's own
    parser (sim_device.device.DeviceOptions): the one reading of a sim:// URL. Raises
    its DeviceOptionError (a ValueError) for a bad one."""
    from urllib.parse import urlsplit

    from sim_device.device import DeviceOptions, parse_query

    return DeviceOptions.from_mapping(parse_query(urlsplit(port).query))


def simulation_of(port: str | None, identity: Any) -> dict[str, Any] | None:
    """``{"lesion": ..., "seed": ...}`` when the device says it is simulated, else None;
    ``{"bench_model": SERIAL}`` for a firmware's own bench model."""
    from protocol import Capabilities

    if not bool(getattr(identity, "simulated", False)):
        return None
    capabilities = getattr(identity, "capabilities", Capabilities.FAULT_INJECTION)
    if not capabilities & Capabilities.FAULT_INJECTION:
        return {"bench_model": str(getattr(identity, "serial_number", ""))}
    if port is None or not port.startswith("sim://"):
        return {"lesion": None, "seed": None}
    options = sim_options(port)  # (the port was opened with it: it is valid)
    return {"lesion": options.lesion, "seed": options.seed}


def simulated_label(simulation: dict[str, Any] | None) -> str:
    """'SIMULATED (lesion NAME, seed N)' for a human line; '' for a real device."""
    if simulation is None:
        return ""
    if "bench_model" in simulation:
        return f"SIMULATED (the firmware's bench model {simulation['bench_model']}, no lesion)"
    if simulation.get("lesion") is None:
        return "SIMULATED (lesion and seed as the served simulator was started)"
    return f"SIMULATED (lesion {simulation['lesion']}, seed {simulation['seed']})"
