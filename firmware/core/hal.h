/* hal.h: what a board provides to the needle-driver core.
 *
 * The core (firmware/core) is portable C99: no heap, no stdio, no floating point, fixed
 * buffers. It calls only the functions below, all from one context (the main loop: the
 * core is never re-entered from an interrupt). A port implements them for its board:
 * ports/posix on a Linux pty with the bench model, ports/mps2-an385 on an emulated
 * Cortex-M3 with the same bench model, a real rig with its UART/USB, stepper drivers,
 * encoder and load-cell amplifier (docs/firmware.md, "Porting").
 *
 * Units are in every name: nm, µm (um), mN, µs (us), and ucdeg for angles: 1e-4 of a
 * centidegree, the unit in which every rate in milli-rpm is a whole number per 1 ms tick
 * (1 mrpm = 6 ucdeg per tick), so the profile generator needs no floating point.
 */
#ifndef ND_HAL_H
#define ND_HAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the board is: reported in IDENTITY, and the device's own hard limits. */
struct nd_board {
    char serial_number[16];  /* ASCII, NUL-padded; all 16 may be used (no NUL then) */
    uint8_t simulated;       /* 1: a bench model stands in for the rig (IDENTITY.simulated) */
    int32_t travel_um;       /* hard advance travel from the homing switch */
    int32_t force_limit_mn;  /* hard force limit */
    uint32_t max_speed_um_s; /* hard advance speed */
    int32_t max_rate_mrpm;   /* hard rotation rate */
    uint16_t watchdog_ms;    /* host silence after which motion stops (protocol §4) */
    int32_t nm_per_microstep;        /* advance resolution: limits are exact to one microstep */
    int32_t default_stall_force_mn;  /* stall cut-off until SET_LIMITS (e.g. 90 % of thrust) */
    int32_t load_cell_rail_mn;       /* |reading| at or beyond this: amplifier at its rail */
    /* A noisy load cell whose conversions repeat exactly this many times in a row is stuck
     * (a frozen amplifier): LOAD_CELL. 0: no such check (a quiet sensor). */
    uint16_t load_cell_stuck_samples;
    /* The load cell's nominal conversion rate (IDENTITY): an HX711 gives 10 or 80, an
     * ADS1220 20-2000. The sensor watchdog latches LOAD_CELL when no conversion arrives
     * within two periods; the filters are designed for this rate. 0 is taken as 1000. */
    uint16_t load_cell_sample_hz;
    uint32_t extra_capabilities; /* Capabilities the port adds (USB_BULK, FAULT_INJECTION) */
    /* A main loop that finds more ticks due than this has been away too long to catch up
     * (safety checks did not run): it drops them, and if anything moved it halts both axes
     * and latches OVERRUN. An MCU's timer interrupt is late by microseconds; a desktop OS
     * may deschedule a process for tens of ms. 0: no bound (a port that never runs late,
     * the simulator). */
    uint16_t max_late_ticks;
    /* The MCU's independent watchdog: a main loop that completes no control tick for this
     * long is reset by hardware into the boot state (motion stopped, BOOT reported).
     * 0: the board has none. */
    uint16_t hw_watchdog_ms;
    /* The advance's motor count ahead of its encoder by more than this is a stall (steps
     * lost). The board's own: a bench model follows its command exactly and takes a few
     * encoder counts; a real stepper lags its command under load by up to about a full
     * step before it slips, plus the carriage's compliance. Too small: every loaded move
     * stalls; too large: a stall pushes that much further before the cut-off. 0: the
     * core's ND_STALL_FOLLOWING_ERROR_NM. */
    int32_t stall_following_error_nm;
};

/* ------------------------------------------------------------ serial link */
/* Bytes received from the host since the last call (at most max); 0 if none. Never blocks. */
size_t hal_serial_read(uint8_t *buf, size_t max);
/* Free room in the transmit buffer, in bytes. The core writes a frame only if it fits
 * whole (a frame is never cut: a full buffer drops frames, the protocol copes). */
size_t hal_serial_tx_room(void);
/* Queue bytes for the host (the core checked the room first). Never blocks. */
void hal_serial_write(const uint8_t *data, size_t n);

/* ------------------------------------------------------------ time */
/* Microseconds since boot, monotonic. The core reads it once per control tick. */
uint64_t hal_time_us(void);

/* Start the MCU's independent watchdog (board.hw_watchdog_ms, when not 0; once, at boot):
 * unless kicked within timeout_ms it resets the MCU. */
void hal_watchdog_start(uint32_t timeout_ms);
/* Kick it: the core does so at the end of every control tick it completes. */
void hal_watchdog_kick(void);

/* ------------------------------------------------------------ actuators */
/* Commanded advance position of the motor, nm from where it stood at boot (the core's
 * profile generator, once per tick). A step/direction driver emits the microsteps between
 * the last command and this one; the core never asks for more than max_speed per tick. */
void hal_advance_command_nm(int64_t motor_nm);
/* Commanded needle angle, ucdeg (1e-4 cdeg), multi-turn, from the angle at boot. */
void hal_rotate_command_ucdeg(int64_t angle_ucdeg);

/* ------------------------------------------------------------ sensors */
/* Encoder: carriage position in nm from where it stood at boot. false: the reading cannot
 * be trusted (encoder unplugged, quadrature error): the core latches ENCODER. */
bool hal_encoder_read_nm(int64_t *position_nm);
/* Load cell: has a conversion completed since the last call? Called once per tick; most
 * amplifiers convert slower than the tick (an HX711 at 80 samples/s: one tick in 12.5).
 *   ND_LC_NEW:   yes, *force_mn is it: axial force in mN, + resisting the advance, raw
 *                (the core tares and filters); a clipped reading is reported as it
 *                reads, at or beyond the board's rail (the core latches SATURATED);
 *   ND_LC_NONE:  no new conversion this tick (*force_mn untouched): the core holds the
 *                last one, and latches TIMEOUT when none came within two periods;
 *   ND_LC_FAULT: the amplifier reports a fault (open bridge, not answering). */
enum nd_lc_read { ND_LC_NONE = 0, ND_LC_NEW = 1, ND_LC_FAULT = 2 };
enum nd_lc_read hal_load_cell_read_mn(int32_t *force_mn);
/* Homing switch: true while the carriage is on it (at or behind depth 0). */
bool hal_home_switch(void);
/* The advance's stepper driver reports a stall of its own (a TMC2209's DIAG output:
 * StallGuard's load measure past its threshold), now or at any time since the last call
 * (a port latches a short pulse between two ticks). Called once per tick; while the
 * advance moves, true is a stall like a lost step (the core's second stall signal, beside
 * the encoder's following error). false on a board without such an output. */
bool hal_advance_driver_stalled(void);

#endif /* ND_HAL_H */
