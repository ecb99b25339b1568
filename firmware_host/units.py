"""Conversions between the API's units (mm, mm/s, N, s, rpm, degrees) and the wire's
fixed-point integers (µm, µm/s, mN, µs, milli-rpm, centi-degrees). Rounded to the
nearest step, never truncated, so a round trip is exact to one wire step."""

from __future__ import annotations


def mm_to_um(mm: float) -> int:
    return round(mm * 1000.0)


def um_to_mm(um: int | float) -> float:
    return float(um) / 1000.0


def mm_s_to_um_s(mm_s: float) -> int:
    return round(mm_s * 1000.0)


def um_s_to_mm_s(um_s: int | float) -> float:
    return float(um_s) / 1000.0


def n_to_mn(n: float) -> int:
    return round(n * 1000.0)


def mn_to_n(mn: int | float) -> float:
    return float(mn) / 1000.0


def rpm_to_mrpm(rpm: float) -> int:
    return round(rpm * 1000.0)


def mrpm_to_rpm(mrpm: int | float) -> float:
    return float(mrpm) / 1000.0


def deg_to_cdeg(deg: float) -> int:
    return round(deg * 100.0)


def cdeg_to_deg(cdeg: int | float) -> float:
    return float(cdeg) / 100.0


def s_to_ms(s: float) -> int:
    return round(s * 1000.0)


def ms_to_s(ms: int | float) -> float:
    return float(ms) / 1000.0


def us_to_s(us: int | float) -> float:
    return float(us) / 1e6
