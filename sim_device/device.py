"""A whole simulated device: rig + firmware + clock + link faults, built from options.

The same options come from a ``sim://`` URL's query (in-process, virtual time)
and from ``python -m sim_device serve`` (real time). Everything random is seeded
from ``seed``, so the same options give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sim_device.clock import VirtualClock
from sim_device.core import TICK_US, CoreFirmware
from sim_device.core_build import VARIANTS, CoreBuildError
from sim_device.linkfaults import LinkFaultConfig, LinkFaults

RIG_FAULTS = (
    "loadcell_stuck",
    "loadcell_disconnected",
    "encoder_lost",
    "motor_stall",
    "loadcell_silent",  # the amplifier's data line cut at the HAL: no conversion arrives
    "loadcell_amp_fault",  # the amplifier reports a fault (not answering): a HAL read fails
    "encoder_fault",  # the encoder's read fails at the HAL (a quadrature error, a cable)
    "loop_late",  # the control loop LOOP_LATE_MS late once (a hung driver, an IRQ storm)
)
LOOP_LATE_MS = 300  # beyond the board's 200 ticks: the core drops them, latches OVERRUN
# The faults above that are the port's, not the rig's: the HAL's fault hooks
# (firmware/faults/fault_hooks.h, as the single-fault campaign arms them) fail the read
HAL_HOOK_FAULTS = {
    "loadcell_amp_fault": "loadcell_disconnected",
    "encoder_fault": "encoder_lost",
}


class DeviceOptionError(ValueError):
    """A bad simulator option (URL parameter or serve flag): one clear line."""


@dataclass(frozen=True)
class DeviceOptions:
    lesion: str = "soft-stenosis"
    seed: int = 0
    noise: float = 1.0
    link: LinkFaultConfig = field(default_factory=LinkFaultConfig)
    fault: str | None = None
    fault_at_s: float = 0.0
    defect: str | None = None
    watchdog_ms: int = 200
    serial_number: str = "SIM-0001"
    # the load cell part (sim_device/load_cells.py); None: the lesion file's, else ideal
    load_cell: str | None = None
    drift: float = 1.0  # multiplier of the part's zero drift
    rig_file: str | None = None  # a simulator rig file (sim_device/rig_file.py)

    @classmethod
    def from_mapping(cls, params: Mapping[str, str]) -> DeviceOptions:
        """Options from URL query parameters (strings). Unknown names are an error."""
        known = {
            "lesion",
            "seed",
            "noise",
            "corrupt",
            "drop",
            "duplicate",
            "cut_at_s",
            "cut_for_s",
            "fault",
            "fault_at_s",
            "defect",
            "watchdog_ms",
            "serial",
            "load_cell",
            "drift",
            "rig",
        }
        unknown = sorted(set(params) - known)
        if unknown:
            raise DeviceOptionError(
                f"unknown sim option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )

        def number(name: str, default: float) -> float:
            text = params.get(name)
            if text is None or text == "":
                return default
            try:
                value = float(text)
            except ValueError:
                raise DeviceOptionError(f"sim option {name}={text!r} is not a number") from None
            if not math.isfinite(value):
                raise DeviceOptionError(f"sim option {name}={text!r} must be finite")
            return value

        def integer(name: str, default: int) -> int:
            text = params.get(name)
            if text is None or text == "":
                return default
            try:
                return int(text, 0)
            except ValueError:
                raise DeviceOptionError(f"sim option {name}={text!r} is not an integer") from None

        fault = params.get("fault") or None
        if fault is not None and fault not in RIG_FAULTS:
            raise DeviceOptionError(f"unknown fault {fault!r}; known: {', '.join(RIG_FAULTS)}")
        defect = params.get("defect") or None
        if defect is not None and defect not in VARIANTS:
            raise DeviceOptionError(
                f"unknown firmware defect {defect!r}; known: {', '.join(sorted(VARIANTS))}"
            )
        cut_at = params.get("cut_at_s")
        try:
            link = LinkFaultConfig(
                corrupt=number("corrupt", 0.0),
                drop=number("drop", 0.0),
                duplicate=number("duplicate", 0.0),
                cut_at_s=None if not cut_at else number("cut_at_s", 0.0),
                cut_for_s=number("cut_for_s", 0.0),
            )
        except ValueError as exc:
            raise DeviceOptionError(f"sim link faults: {exc}") from None
        watchdog_ms = integer("watchdog_ms", 200)
        if not 1 <= watchdog_ms <= 65535:
            raise DeviceOptionError(f"sim option watchdog_ms={watchdog_ms} must be 1..65535")
        noise = number("noise", 1.0)
        if noise < 0:
            raise DeviceOptionError(f"sim option noise={noise} must be ≥ 0")
        serial = params.get("serial") or "SIM-0001"
        if len(serial) > 16 or not serial.isascii():
            raise DeviceOptionError(f"sim option serial={serial!r}: at most 16 ASCII characters")
        load_cell = params.get("load_cell") or None
        check_load_cell(load_cell)
        drift = number("drift", 1.0)
        if drift < 0:
            raise DeviceOptionError(f"sim option drift={drift} must be ≥ 0")
        seed = integer("seed", 0)
        if not 0 <= seed <= 2**32 - 1:
            raise DeviceOptionError(f"sim option seed={seed} must be 0..{2**32 - 1}")
        return cls(
            lesion=params.get("lesion") or "soft-stenosis",
            seed=seed,
            noise=noise,
            link=link,
            fault=fault,
            fault_at_s=number("fault_at_s", 0.0),
            defect=defect,
            watchdog_ms=watchdog_ms,
            serial_number=serial,
            load_cell=load_cell,
            drift=drift,
            rig_file=params.get("rig") or None,
        )


class Device:
    """Firmware (the C core) + rig on one clock, with the link (and its faults) between it
    and the host."""

    def __init__(self, options: DeviceOptions, rig: Any | None = None) -> None:
        self.options = options
        if rig is None:
            rig = _make_rig(options)
        self.rig = rig
        self.clock = VirtualClock()
        try:
            self.firmware = CoreFirmware(
                rig,
                clock=self.clock,
                watchdog_ms=options.watchdog_ms,
                defect=options.defect,
                serial_number=options.serial_number,
                loadcell_stuck_check=options.noise > 0,
            )
        except CoreBuildError as exc:
            raise DeviceOptionError(str(exc)) from None
        self.link = LinkFaults(options.link, options.seed)
        # tests: what the device sends passes through this before the link (a frame
        # dropped or changed on purpose); the firmware never knows
        self.outgoing: Callable[[bytes], bytes] | None = None
        self._faulty_link = options.link.active
        if options.fault is not None:
            fault = options.fault
            at_us = round(options.fault_at_s * 1_000_000)
            if fault == "loadcell_silent":  # the port's, not the rig's: nothing converts
                self.firmware.at(at_us, lambda: setattr(self.firmware, "load_cell_cut", True))
            elif fault in HAL_HOOK_FAULTS:
                self.firmware.arm_fault(HAL_HOOK_FAULTS[fault], at_us)
            elif fault == "loop_late":
                self.firmware.arm_fault("tick_overrun", at_us, LOOP_LATE_MS)
            else:
                self.firmware.at(at_us, lambda: rig.inject(fault))

    def host_write(self, data: bytes) -> None:
        """Bytes from the host to the device (through the link faults)."""
        if self._faulty_link:
            data = self.link.to_device.apply(data, self.clock.monotonic())
        if data:
            self.firmware.receive(data)

    def host_take(self) -> bytes:
        """Everything the device has sent since the last call (through the link faults)."""
        data = self.firmware.take_output()
        if not data:
            return b""
        if self.outgoing is not None:
            data = self.outgoing(data)
        if self._faulty_link:
            data = self.link.to_host.apply(data, self.clock.monotonic())
        return data

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.firmware.stats())
        if self._faulty_link:
            out["link_faults"] = self.link.stats()
        return out

    @property
    def tick_us(self) -> int:
        return TICK_US


def _make_rig(options: DeviceOptions) -> Any:
    # heavy imports (numpy, the lesion library) only when a device is really built
    from sim_device.lesions import LesionError, load_lesion
    from sim_device.load_cells import get_part
    from sim_device.rig_model import Rig, RigParams

    try:
        lesion = load_lesion(options.lesion)
    except LesionError as exc:
        raise DeviceOptionError(str(exc) + _plus_hint(options.lesion)) from None
    check_load_cell(options.load_cell)
    part = None if options.load_cell is None else get_part(options.load_cell)
    params = RigParams()
    if options.rig_file is not None:
        from sim_device.rig_file import RigFileError, read_rig_file

        try:
            bench = read_rig_file(options.rig_file)
        except RigFileError as exc:
            raise DeviceOptionError(str(exc)) from None
        params = bench.params(params)
        part = part if part is not None else bench.load_cell
    rig = Rig(
        lesion,
        seed=options.seed,
        noise_scale=options.noise,
        params=params,
        load_cell=part,
        drift_scale=options.drift,
    )
    check_lesion_fits(lesion, rig.params.travel_limit_mm)
    return rig


def check_load_cell(name: str | None) -> None:
    """An unknown load cell part is a one-line option error naming the known ones."""
    if name is None:
        return
    from sim_device.load_cells import LoadCellError, get_part

    try:
        get_part(name)
    except LoadCellError as exc:
        raise DeviceOptionError(f"sim option load_cell: {exc}") from None


def check_lesion_fits(lesion: Any, travel_mm: float | None = None) -> None:
    """A lesion the needle cannot reach past is refused: a run could never cross it."""
    if travel_mm is None:
        from sim_device.rig_model import RigParams

        travel_mm = RigParams().travel_limit_mm
    if float(lesion.end_mm) > travel_mm:
        raise DeviceOptionError(
            f"lesion {lesion.name!r} ends at {float(lesion.end_mm):g} mm, beyond the rig's"
            f" travel of {travel_mm:g} mm (shorten it or move it closer)"
        )


def _plus_hint(lesion: str) -> str:
    """A lesion path read from a URL has its ``+`` turned into spaces (the query's
    encoding): say so when the path as written, with ``+``, is a file."""
    from pathlib import Path

    if " " in lesion and Path(lesion.replace(" ", "+")).is_file():
        return " — a '+' in a sim:// URL reads as a space: write it %2B"
    return ""


def parse_query(query: str) -> dict[str, str]:
    """``a=1&b=x`` → {"a": "1", "b": "x"}; a repeated name is an error."""
    from urllib.parse import parse_qsl

    out: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in out:
            raise DeviceOptionError(f"sim option {name} given twice")
        out[name] = value
    return out
