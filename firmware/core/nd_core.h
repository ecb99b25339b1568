/* nd_core.h: the needle-driver firmware core, the whole of protocol v1 (docs/protocol.md)
 * behind the board's HAL (hal.h).
 *
 * A port calls, from its main loop and never from an interrupt:
 *   nd_core_init(&board)  once at boot;
 *   nd_core_poll()        as often as it likes: parses the bytes the HAL has received and
 *                         answers commands at once (a reply does not wait for the tick);
 *   nd_core_run_ticks()   from the main loop: runs every control tick due by
 *                         hal_time_us(), so a loop that fell behind catches up — at most
 *                         board.max_late_ticks of them: beyond that it drops the rest and
 *                         resynchronises, latching OVERRUN if anything moved (a loop away
 *                         that long ran no safety check). Late and dropped ticks are
 *                         counted (STATUS.tick_overruns).
 *   nd_core_tick()        one 1 ms control period: motion, sensors, safety, watchdog,
 *                         telemetry, heartbeat (nd_core_run_ticks calls it).
 *   nd_core_tick_move() then nd_core_tick_sense(): the same tick in its two halves, for a
 *                         port whose rig moves between them (the simulator, ports/sim,
 *                         steps its physics model on the commanded positions and then
 *                         lets the core read the sensors); such a port tells the core of
 *                         a late loop with nd_core_late_ticks().
 */
#ifndef ND_CORE_H
#define ND_CORE_H

#include <stdint.h>

#include "hal.h"

#define ND_FIRMWARE_MAJOR 1u
#define ND_FIRMWARE_MINOR 0u
#define ND_FIRMWARE_PATCH 0u
#define ND_TICK_US 1000u

void nd_core_init(const struct nd_board *board);
void nd_core_poll(void);
void nd_core_run_ticks(void);
/* The main loop found `late` ticks due besides the next one (nd_core_run_ticks does this
 * for a port that runs on hal_time_us()): beyond board.max_late_ticks they are dropped —
 * device time still advances by them — and whatever moved halts, latching OVERRUN; within
 * it they are counted as late (the caller runs them). Either way STATUS.tick_overruns. */
void nd_core_late_ticks(uint64_t late);
/* hal_time_us() at which nd_core_run_ticks has the next tick to run (a port sleeps until
 * then, or until a byte arrives). */
uint64_t nd_core_next_tick_us(void);
void nd_core_tick(void);
void nd_core_tick_move(void);
void nd_core_tick_sense(void);
/* While nothing moves, homes or streams, the device time of the first tick that has
 * anything to do (a heartbeat, the watchdog) if no byte arrives before it; 0 while any
 * tick may change something. A port may sleep until then (the simulator skips to it). */
uint64_t nd_core_idle_until_us(void);
/* A board's hardware e-stop input: what the ESTOP command does (both axes halted, ESTOP
 * latched, re-homing needed), with no reply. Idempotent: call it every tick the button
 * is pressed, from the main loop (a real button also cuts the drivers' power). */
void nd_core_estop(void);

/* Counters a port may print (the same figures STATUS carries). */
struct nd_core_stats {
    uint32_t frames_ok;
    uint32_t frames_bad;
    uint32_t commands_executed;
    uint32_t replies_replayed;
    uint32_t watchdog_trips;
    uint32_t samples_sent;
    uint32_t frames_dropped_tx; /* frames not sent: the transmit buffer was full */
    uint32_t ticks;
    uint32_t max_tick_us; /* the longest control tick so far (timing budget) */
    uint32_t tick_overruns; /* ticks run a period or more late, or dropped */
};
void nd_core_stats(struct nd_core_stats *out);

#endif /* ND_CORE_H */
