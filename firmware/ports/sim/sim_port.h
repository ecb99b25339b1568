/* ports/sim: the firmware core as a library for the simulator (sim_device/), built as a
 * Python extension with cffi in API mode (sim_device/core_build.py), as Klipper's chelper.
 *
 * The HAL here is plain memory: the simulator writes the rig's sensor readings into a
 * struct nd_sim and reads the commanded positions and the bytes sent from it, once per
 * tick. The core never calls back into Python. Each struct nd_sim is one device with its
 * own core state, so a process may run many (tests, sweeps, a USB bus of several).
 *
 * One control tick, as the simulator runs it:
 *   nd_sim_move(s) -> motor_mm     the core parses what arrived and steps its profiles;
 *                                  s->motor_mm, s->angle_deg are where the motors are now
 *   (the physics model moves the needle to there and reads its sensors)
 *   nd_sim_sense(s, enc, force, home, fresh)
 *                                  the core reads the sensors: safety, watchdog,
 *                                  telemetry, heartbeat. Returns the bytes waiting in tx.
 */
#ifndef ND_SIM_PORT_H
#define ND_SIM_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/device.h"
#include "../../core/hal.h"
#include "../../core/nd_core.h"
#include "../../faults/fault_hooks.h"

#define ND_SIM_TX_BYTES 65536u

struct nd_sim {
    struct nd_device dev; /* this device's core state */
    struct nd_board board;
    /* the mechanical coupling: the motor's boot position on the rig's depth axis, and the
     * encoder's reading at boot (the HAL counts both from boot) */
    double motor_origin_mm;
    double encoder_origin_mm;
    /* the rotation's angle at boot (0 at power-up; where it stood, after a reset) */
    double angle_origin_deg;
    /* inputs: the rig's sensors as last read (nd_sim_sense) */
    int64_t encoder_nm;
    int32_t load_cell_mn;
    bool encoder_ok;
    bool load_cell_ok;
    bool load_cell_fresh; /* a conversion completed this tick (the rig's load_cell_fresh) */
    /* fault injection at the HAL: the amplifier's data line cut, no conversion arrives
     * (the simulator's tests; a rig's fault model is the rig's, in Python) */
    bool load_cell_cut;
    bool home_switch;
    /* outputs: where the core commands the motors (absolute, the rig's units) */
    double motor_mm;
    double angle_deg;
    /* the serial link: bytes from the host being parsed now, bytes for the host */
    const uint8_t *rx;
    size_t rx_len;
    size_t tx_len;
    uint8_t tx[ND_SIM_TX_BYTES];
    /* the single-fault campaign's hooks between the core and this HAL (faults/) */
    struct nd_fault_hooks fault;
};

/* Boot: the board (filled by the caller), where the motor and the encoder stand. */
void nd_sim_init(struct nd_sim *s, double motor_origin_mm, double encoder_mm,
                 double load_cell_n, bool home_switch);
/* Bytes from the host: parsed and answered now (a UART handler between ticks). */
void nd_sim_feed(struct nd_sim *s, const uint8_t *data, size_t n);
/* The first half of a tick: parse, step the motion profiles, command the motors.
 * Returns s->motor_mm (one field read fewer for the caller, every tick). */
double nd_sim_move(struct nd_sim *s);
/* The second half: the rig's sensors (mm, N, switch; load_cell_fresh: a load-cell
 * conversion completed this tick, else the core holds the last one) — NaN or
 * out-of-range readings are invalid — then safety, watchdog, telemetry, heartbeat. Returns s->tx_len, plus
 * ND_SIM_IDLE when nothing moves, homes or streams (the caller may skip ticks then):
 * one return value, because the caller pays for every call and field read, every tick. */
#define ND_SIM_IDLE 0x80000000u
uint32_t nd_sim_sense(struct nd_sim *s, double encoder_mm, double load_cell_n,
                      bool home_switch, bool load_cell_fresh);
/* Device time of the next tick an idle device must run (heartbeat, watchdog); 0 if any
 * tick may change something (motion, homing, telemetry). */
uint64_t nd_sim_idle_until_us(struct nd_sim *s);
/* Skip n ticks in which nothing happens (nd_sim_idle_until_us said when something does). */
void nd_sim_skip(struct nd_sim *s, uint32_t ticks);
/* Bytes sent since the last call: copied into out (at most max), removed from tx. */
size_t nd_sim_take(struct nd_sim *s, uint8_t *out, size_t max);
/* Schedule one fault in the HAL's hooks (faults/fault_hooks.h); kind 0 disarms. */
void nd_sim_fault_arm(struct nd_sim *s, uint8_t kind, uint64_t at_us, int64_t param);
/* The core's counters (as STATUS carries them, plus the link's). */
void nd_sim_stats(struct nd_sim *s, struct nd_core_stats *out);

#endif
