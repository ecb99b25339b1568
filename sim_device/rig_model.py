"""The simulated rig: advance stage, rotation axis, needle in a lesion, load cell, encoder.

The firmware calls ``Rig.step`` every control tick (1 kHz) with where its step
counts put the axes; the rig moves the needle (or loses steps), computes the
needle–tissue force (physics.py) and updates the sensor readings. The step is
written for speed (~2 µs): state in flat attributes, hot values in locals, no
numpy per tick, noise drawn in blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from math import exp

import numpy as np

from sim_device.lesions import Lesion
from sim_device.load_cells import PARTS, Converter, LoadCellPart
from sim_device.physics import compile_profile
from sim_device.sensors import NOISE_BLOCK, NoiseBlocks

FAULTS = (
    "loadcell_stuck",
    "loadcell_disconnected",
    "loadcell_silent",
    "encoder_lost",
    "motor_stall",
)

_NO_FACE_MM = 1e12  # face of "no barrier ahead"


@dataclass(frozen=True)
class RigParams:
    """Mechanics and sensors. Sources / estimates: docs/simulator.md, "Rig parameters"."""

    travel_limit_mm: float = 150.0  # hard stop at the far end (and 0 = home switch, hard stop)
    um_per_microstep: float = 0.625  # 1.8° stepper, 1/16 microstep, 2 mm lead
    encoder_resolution_um: float = 1.0
    thrust_limit_n: float = 30.0  # above this the advance stepper loses steps
    max_speed_mm_s: float = 5.0  # advance speed the stage is rated for (firmware enforces)
    max_rate_rpm: float = 120.0  # rotation rate the axis is rated for (firmware enforces)
    force_limit_n: float = 40.0  # hard force limit (firmware enforces); below load cell range
    boot_depth_mm: float = 3.0  # where the carriage sits at power-up (unhomed)
    home_switch_hysteresis_mm: float = 0.02  # switch opens again only above this depth
    motor_jump_mm: float = 0.5  # a motor count change bigger than this in one step = re-reference
    load_cell_full_scale_n: float = 50.0  # readings clip at ±this; disconnected reads +this
    load_cell_offset_n: float = 0.05
    load_cell_noise_rms_n: float = 0.02  # at noise_scale 1
    load_cell_lsb_n: float = 0.001
    load_cell_bandwidth_hz: float = 200.0  # first-order low-pass of the signal
    friction_rotation_ref_rpm: float = 20.0  # friction × 1 / (1 + rate / this)
    tip_rotation_ref_rpm: float = 60.0  # cutting force × 1 / (1 + rate / this)
    tip_speed_ref_mm_s: float = 0.5  # cutting force × 2 v / (v + this)
    friction_speed_eps_mm_s: float = 0.02  # Karnopp-style smooth sign: v / (|v| + this)
    speed_filter_s: float = 0.02  # time constant of the tip speed estimate
    rate_filter_s: float = 0.05  # time constant of the |rotation rate| estimate
    force_rise_s: float = 0.005  # friction + cutting force builds with this time constant
    force_relax_s: float = 0.15  # ... and relaxes (viscoelastic) with this one
    crack_load_ref_n: float = 10.0  # damage += revolutions × F_elastic / this
    crack_variation: float = 0.1  # relative spread (1 σ) of each chunk's crack threshold
    # lead-screw backlash: a reversal turns the motor this far before the nut moves
    # (0: none, as before parts; a bench's anti-backlash nut keeps it small)
    backlash_mm: float = 0.0
    # tissue winding (Lin & Huang 2020): net turns in tissue twist it; the twist relaxes
    # with this time constant and, with a gain > 0, tightens the tissue on the shaft
    # (friction × (1 + gain × |turns|)). Gain 0 (default) keeps today's forces: the
    # twist is then a truth figure only (wind_rev, peak_wind_rev)
    wind_relax_s: float = 5.0
    wind_friction_gain: float = 0.0
    track_winding: bool = False  # follow the twist with gain 0 too (a truth figure)


class Rig:
    """Advance stage + rotation axis + needle in a lesion + sensors. See module doc."""

    def __init__(
        self,
        lesion: Lesion,
        *,
        seed: int,
        params: RigParams = RigParams(),
        noise_scale: float = 1.0,
        load_cell: LoadCellPart | None = None,
        drift_scale: float = 1.0,
    ) -> None:
        part = load_cell if load_cell is not None else (lesion.load_cell or PARTS["ideal"])
        if not part.ideal:
            # the firmware reads the rail from these (HardLimits): the part's, not the ideal's
            params = replace(
                params,
                load_cell_full_scale_n=part.rated_load_n,
                load_cell_offset_n=part.offset_n,
                load_cell_noise_rms_n=part.bench_noise_rms_n,
                load_cell_lsb_n=part.lsb_n,
            )
        self.lesion = lesion
        self.params = params
        self.noise_scale = noise_scale
        self.load_cell_part = part
        # Separate streams: the physics draws do not depend on noise_scale or block size.
        physics_rng = np.random.default_rng([seed, 1])
        noise_rng = np.random.default_rng([seed, 2])
        profile = compile_profile(
            lesion.segments,
            params.crack_variation,
            lambda n: physics_rng.standard_normal(n).tolist(),
        )
        self._starts = profile.start_mm
        self._ends = profile.end_mm
        self._fric_n_per_mm = profile.friction_n_per_mm
        self._fric_before_n = profile.friction_before_n
        self._tip_n = profile.tip_force_n
        self._barriers = profile.barriers
        self._barrier_index = 0
        self._seg = 0
        self._noise_source = NoiseBlocks(noise_rng, params.load_cell_noise_rms_n * noise_scale)
        self._noise = self._noise_source.refill()
        self._noise_i = 0

        # truth
        self.needle_depth_mm = params.boot_depth_mm
        self.true_force_n = 0.0
        self.cracks = 0
        self.punctures = 0
        self.motor_depth_mm = params.boot_depth_mm  # last motor position given
        self.angle_deg = 0.0  # last rotation position given
        self._tip_mm = params.boot_depth_mm
        self._speed_mm_s = 0.0  # filtered tip speed
        self._rate_rpm = 0.0  # filtered |rotation rate|
        self._f_dyn_n = 0.0  # friction + cutting
        self._f_el_n = 0.0  # elastic (barrier)
        self._load_barrier()

        # sensors
        self._lc_filtered_n = 0.0
        self._lc_live = True
        self._enc_live = True
        self._motor_dead = False
        self.faults: set[str] = set()
        res_mm = params.encoder_resolution_um / 1000.0
        self._enc_res_mm = res_mm
        self._enc_inv_res = 1.0 / res_mm
        self._lsb_n = params.load_cell_lsb_n
        self._lc_offset_n = params.load_cell_offset_n
        self._lc_full_scale_n = params.load_cell_full_scale_n
        self._switch_open_mm = params.home_switch_hysteresis_mm
        self._damage_per_deg_n = 1.0 / (360.0 * params.crack_load_ref_n)
        self._inv_lsb = 1.0 / params.load_cell_lsb_n
        self.encoder_depth_mm = round(self.needle_depth_mm * self._enc_inv_res) * res_mm
        self.load_cell_force_n = 0.0
        self.home_switch = self.needle_depth_mm <= 0.0
        self._read_load_cell(0.0)
        # a conversion completed in the last step (ideal: every step); the part's rate
        self.load_cell_fresh = True
        self.load_cell_sample_hz = part.sample_hz
        self._converter: Converter | None = None
        if not part.ideal:
            self._converter = Converter(
                part,
                np.random.default_rng([seed, 3]),
                noise_scale=noise_scale,
                drift_scale=drift_scale,
            )
            self.load_cell_force_n = self._converter.value_n
        # mechanics beyond the ideal rig: backlash (gap between motor and nut, 0..b) and
        # tissue winding (signed net turns the tissue holds)
        self._backlash_mm = params.backlash_mm
        self._wind_gain = params.wind_friction_gain
        self._wind_on = params.track_winding or params.wind_friction_gain > 0.0
        self._lash_gap_mm = 0.0
        self.wind_rev = 0.0
        self.peak_wind_rev = 0.0

        self._dt_s = -1.0
        self._set_dt(0.001)

    # -- setup helpers (not per tick) -------------------------------------------------

    def _set_dt(self, dt_s: float) -> None:
        if dt_s <= 0.0:
            raise ValueError(f"dt_s must be > 0, got {dt_s}")
        p = self.params
        self._dt_s = dt_s
        self._a_lc = 1.0 - math.exp(-2.0 * math.pi * p.load_cell_bandwidth_hz * dt_s)
        self._c = (
            1.0 / dt_s,
            1.0 - math.exp(-dt_s / p.speed_filter_s),
            1.0 - math.exp(-dt_s / p.rate_filter_s),
            1.0 - math.exp(-dt_s / p.force_rise_s),
            1.0 - math.exp(-dt_s / p.force_relax_s),
            1.0 / (6.0 * dt_s),  # |Δangle| in one step → rpm
            1.0 / p.friction_rotation_ref_rpm,
            1.0 / p.tip_rotation_ref_rpm,
            p.tip_speed_ref_mm_s,
            p.friction_speed_eps_mm_s,
            p.motor_jump_mm,
            p.thrust_limit_n,
            p.travel_limit_mm,
        )
        self._a_wind = 1.0 - math.exp(-dt_s / p.wind_relax_s)

    def _load_barrier(self) -> None:
        """Cache the constants of the barrier ahead of the tip (or none)."""
        barriers = self._barriers
        if self._barrier_index < len(barriers):
            b = barriers[self._barrier_index]
            self._face_mm = b.face_mm
            self._k_n_per_mm = b.stiffness_n_per_mm
            self._damage = b.damage
            self._min_crack_n = b.min_crack_force_n
            self._excess_crack_n = b.crack_force_n - b.min_crack_force_n
            self._inv_fatigue_rev = b.inv_fatigue_rev
            self._chunk_factor = b.chunk_factors[min(b.chunk_index, len(b.chunk_factors) - 1)]
            self._arc_half_deg = b.arc_half_deg
            self._arc_center_deg = b.arc_center_deg
            self._threshold_n = (
                self._min_crack_n + self._excess_crack_n * exp(-b.damage * b.inv_fatigue_rev)
            ) * self._chunk_factor
        else:
            self._face_mm = _NO_FACE_MM
            self._k_n_per_mm = 0.0
            self._damage = 0.0
            self._inv_fatigue_rev = 0.0
            self._threshold_n = math.inf
            self._arc_half_deg = 180.0

    def _facing_arc(self, angle_deg: float) -> bool:
        """Does the bevel face the calcified arc? (Always, for concentric calcium.)"""
        half = self._arc_half_deg
        if half >= 180.0:
            return True
        off = (angle_deg - self._arc_center_deg) % 360.0
        return (off if off <= 180.0 else 360.0 - off) <= half

    def _crack(self, needle_mm: float) -> float:
        """Break chunks while the stored force exceeds the threshold; return the elastic force."""
        while True:
            b = self._barriers[self._barrier_index]
            b.damage = self._damage
            b.chunk_index += 1
            b.face_mm = min(b.face_mm + b.chunk_mm, b.end_mm)
            b.damage *= b.damage_carry
            if b.inv_fatigue_rev == 0.0:
                self.punctures += 1
            else:
                self.cracks += 1
            if b.face_mm >= b.end_mm - 1e-9:
                self._barrier_index += 1
            self._load_barrier()
            compression_mm = needle_mm - self._face_mm
            # the tip lurches through the broken chunk with the shaft: not a tip speed
            self._tip_mm = needle_mm if compression_mm <= 0.0 else self._face_mm
            if compression_mm <= 0.0:
                return 0.0
            f_el = self._k_n_per_mm * compression_mm
            if f_el < self._threshold_n:
                return f_el

    def _read_load_cell(self, force_n: float) -> None:
        p = self.params
        j = self._noise_i
        if j >= NOISE_BLOCK:
            self._noise = self._noise_source.refill()
            j = 0
        self._noise_i = j + 1
        x = round((force_n + p.load_cell_offset_n + self._noise[j]) * self._inv_lsb) * self._lsb_n
        fs = p.load_cell_full_scale_n
        self.load_cell_force_n = fs if x > fs else (-fs if x < -fs else x)

    # -- the control tick -----------------------------------------------------------

    def step(self, dt_s: float, motor_depth_mm: float, angle_deg: float) -> None:
        """Advance the physics by dt_s with the axes where the firmware's step counts put them.

        ``motor_depth_mm``: absolute advance position from the step count (0 = home
        switch). The needle follows it unless the force needed exceeds the
        stepper's thrust (steps lost: the needle stays, the encoder stops) or a
        hard stop (0 / travel limit) is in the way. A jump larger than
        ``motor_jump_mm`` in one step is taken as the firmware redefining its
        count (e.g. zeroing at the home switch), not as motion.
        """
        if dt_s != self._dt_s:
            self._set_dt(dt_s)
        # every constant in one unpack: cheaper than an attribute load each
        (
            inv_dt,
            a_speed,
            a_rate,
            a_rise,
            a_relax,
            rpm_per_deg,
            inv_fric_rpm,
            inv_tip_rpm,
            tip_vref,
            eps,
            jump,
            thrust,
            travel,
        ) = self._c
        needle = self.needle_depth_mm
        face = self._face_mm
        d_motor = motor_depth_mm - self.motor_depth_mm
        self.motor_depth_mm = motor_depth_mm
        if d_motor != 0.0 and -jump <= d_motor <= jump and not self._motor_dead:
            if self._backlash_mm:
                d_motor = self._through_backlash(d_motor)
            new = needle + d_motor
            if d_motor > 0.0:
                if new > face and self._f_dyn_n + self._k_n_per_mm * (new - face) > thrust:
                    new = needle  # thrust exceeded: these steps are lost
                elif new > travel:
                    new = travel
            elif new < 0.0:
                new = 0.0
            needle = new
            self.needle_depth_mm = new

        d_angle = angle_deg - self.angle_deg
        self.angle_deg = angle_deg
        signed_d_angle = d_angle
        if d_angle < 0.0:
            d_angle = -d_angle

        # tip kinematics (the tip stops at a barrier face while the shaft compresses)
        tip = needle if needle < face else face
        speed = self._speed_mm_s
        speed += a_speed * ((tip - self._tip_mm) * inv_dt - speed)
        self._speed_mm_s = speed
        self._tip_mm = tip
        rate = self._rate_rpm
        rate += a_rate * (d_angle * rpm_per_deg - rate)
        self._rate_rpm = rate

        # segment under the tip
        i = self._seg
        starts = self._starts
        if tip >= self._ends[i]:
            ends = self._ends
            while tip >= ends[i]:
                i += 1
            self._seg = i
        elif tip < starts[i]:
            while tip < starts[i]:
                i -= 1
            self._seg = i

        # friction + cutting, through the rise / relaxation filter
        friction = (self._fric_before_n[i] + (tip - starts[i]) * self._fric_n_per_mm[i]) / (
            1.0 + rate * inv_fric_rpm
        )
        if self._wind_on:  # tissue winding (RigParams): off unless asked, it costs per tick
            wind = self._wind(self.wind_rev, signed_d_angle if self._fric_n_per_mm[i] else 0.0)
            friction *= 1.0 + self._wind_gain * (wind if wind > 0.0 else -wind)
        if speed > 0.0:
            target = friction * speed / (speed + eps)
            if needle < face:
                target += (
                    self._tip_n[i] * 2.0 * speed / ((speed + tip_vref) * (1.0 + rate * inv_tip_rpm))
                )
        else:
            target = friction * speed / (eps - speed)
        f_dyn = self._f_dyn_n
        if (target if target > 0.0 else -target) > (f_dyn if f_dyn > 0.0 else -f_dyn):
            f_dyn += a_rise * (target - f_dyn)
        else:
            f_dyn += a_relax * (target - f_dyn)
        self._f_dyn_n = f_dyn

        # elastic force of the barrier ahead; loaded rotation wears its crack threshold down
        if needle > face:
            f_el = self._k_n_per_mm * (needle - face)
            if (
                d_angle > 0.0
                and self._inv_fatigue_rev != 0.0
                and (self._arc_half_deg >= 180.0 or self._facing_arc(angle_deg))
            ):
                damage = self._damage + d_angle * f_el * self._damage_per_deg_n
                self._damage = damage
                self._threshold_n = (
                    self._min_crack_n + self._excess_crack_n * exp(-damage * self._inv_fatigue_rev)
                ) * self._chunk_factor
            if f_el >= self._threshold_n:
                f_el = self._crack(needle)
            force = f_dyn + f_el
        else:
            f_el = 0.0
            force = f_dyn
        self._f_el_n = f_el
        self.true_force_n = force

        # sensors
        if self._converter is not None:
            lc = self._lc_filtered_n
            lc += self._a_lc * (force - lc)
            self._lc_filtered_n = lc
            conv = self._converter
            self.load_cell_fresh = conv.step(dt_s, lc)
            self.load_cell_force_n = conv.value_n
        elif self._lc_live:
            lc = self._lc_filtered_n
            lc += self._a_lc * (force - lc)
            self._lc_filtered_n = lc
            j = self._noise_i
            if j >= NOISE_BLOCK:
                self._noise = self._noise_source.refill()
                j = 0
            self._noise_i = j + 1
            x = round((lc + self._lc_offset_n + self._noise[j]) * self._inv_lsb) * self._lsb_n
            fs = self._lc_full_scale_n
            self.load_cell_force_n = fs if x > fs else (-fs if x < -fs else x)
        if self._enc_live:
            self.encoder_depth_mm = round(needle * self._enc_inv_res) * self._enc_res_mm
        if needle <= 0.0:
            self.home_switch = True
        elif needle > self._switch_open_mm:
            self.home_switch = False

    def _through_backlash(self, d_motor_mm: float) -> float:
        """The nut's move for a motor move: the gap between them (0..backlash) is taken
        up first, so a reversal turns the motor by up to the backlash for nothing."""
        gap = self._lash_gap_mm
        new_gap = gap + d_motor_mm
        b = self._backlash_mm
        new_gap = 0.0 if new_gap < 0.0 else (b if new_gap > b else new_gap)
        self._lash_gap_mm = new_gap
        return d_motor_mm - (new_gap - gap)

    def _wind(self, wind_rev: float, d_angle_deg: float) -> float:
        """Net turns the tissue holds: rotation with the tip in tissue twists it (either
        way: a reversal unwinds), the twist relaxes with wind_relax_s."""
        wind_rev += d_angle_deg / 360.0
        wind_rev -= self._a_wind * wind_rev
        self.wind_rev = wind_rev
        mag = wind_rev if wind_rev > 0.0 else -wind_rev
        if mag > self.peak_wind_rev:
            self.peak_wind_rev = mag
        return wind_rev

    # -- outside the tick -----------------------------------------------------------

    def track_winding(self) -> None:
        """Follow the tissue's twist from now on (a truth figure: wind_rev, peak_wind_rev),
        as ``RigParams(track_winding=True)`` would from the start."""
        self._wind_on = True

    def rebase_motor(self, motor_depth_mm: float) -> None:
        """The firmware redefined its step count (e.g. zeroed at the switch): no motion."""
        self.motor_depth_mm = motor_depth_mm

    @property
    def lost_mm(self) -> float:
        """Motor position minus needle position (lost steps, if the count was never rebased)."""
        return self.motor_depth_mm - self.needle_depth_mm

    @property
    def elastic_force_n(self) -> float:
        return self._f_el_n

    @property
    def rotation_rate_rpm(self) -> float:
        """Filtered |rotation rate| the physics uses."""
        return self._rate_rpm

    @property
    def tip_depth_mm(self) -> float:
        return self._tip_mm

    def inject(self, fault: str) -> None:
        """Inject a rig fault; it lasts for the life of the rig."""
        conv = self._converter
        if fault == "loadcell_stuck":
            self._lc_live = False  # the reading freezes at its last value
            if conv is not None:
                conv.stuck = True  # ... while conversions go on
        elif fault == "loadcell_disconnected":
            self._lc_live = False  # an open bridge drives the ADC to its rail
            self.load_cell_force_n = self.params.load_cell_full_scale_n
            if conv is not None:
                conv.disconnected = True
                conv.value_n = self.params.load_cell_full_scale_n
        elif fault == "loadcell_silent":
            # the ADC stops converting (data-ready never comes): the last value is held
            self._lc_live = False
            self.load_cell_fresh = False
            if conv is not None:
                conv.silent = True
        elif fault == "encoder_lost":
            self._enc_live = False  # the reading freezes at its last value
        elif fault == "motor_stall":
            self._motor_dead = True  # the motor no longer turns; the count goes on
        else:
            raise ValueError(f"unknown rig fault {fault!r} (known: {', '.join(FAULTS)})")
        self.faults.add(fault)
