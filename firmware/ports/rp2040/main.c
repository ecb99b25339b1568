/* main.c: the needle-driver firmware on a Raspberry Pi Pico (RP2040) with two TMC2209
 * drivers, an HX711, a quadrature encoder, a home switch and an e-stop. The core runs
 * from the main loop only; interrupts fill the rings, pace the step trains, count the
 * encoder and wake the loop. */
#include <stdbool.h>
#include <stdint.h>

#include "board.h"
#include "encoder.h"
#include "hal.h"
#include "nd_core.h"
#include "rp2040_regs.h"
#include "steppers.h"
#include "tmc2209.h"

void sensors_init(void);
bool sensors_estop_pressed(void);

static const struct nd_board board = {
    .serial_number = "ND-RP2040-0001",
    .simulated = 0, /* the image a Pico is flashed with: a real rig */
    .travel_um = 150000,
    .force_limit_mn = 40000,
    .max_speed_um_s = 20000,
    .max_rate_mrpm = 120000,
    .watchdog_ms = 200,
    .nm_per_microstep = ADV_NM_PER_MICROSTEP,
    .default_stall_force_mn = 9000,
    .load_cell_rail_mn = 50000,
    .load_cell_stuck_samples = 0, /* the bench model's noise may be set to 0 */
    .load_cell_sample_hz = 80,    /* the HX711 with RATE high */
    .hw_watchdog_ms = BOARD_WATCHDOG_MS,
    .extra_capabilities = 0,
    /* two full steps of the 2 mm lead screw (10 µm each): a loaded stepper lags its
     * command by up to about one full step before it slips, the carriage and load cell
     * give a little under thrust, the encoder counts 1 µm. The core's 5 µm stalled fast
     * loaded moves on such a rig; a stall against a block is cut off by DIAG within a
     * tick, before the encoder is 20 µm behind (docs/firmware.md, bring-up 7). */
    .stall_following_error_nm = 20000,
};

int main(void)
{
    board_init();
    board_gpio_output(PIN_DRV_EN, true); /* drivers off until they are set up */
    tmc2209_init();
    steppers_init(); /* ... and on */
    encoder_init();
    sensors_init();
    nd_core_init(&board); /* starts the watchdog (hw_watchdog_ms): the core kicks it */

    /* A tick is split around the motion it commands (nd_core.h): nd_core_tick_move()
     * sets both axes' positions, whose microsteps the step trains emit over the next
     * half millisecond; nd_core_tick_sense() reads the encoder and the load cell at the
     * start of the next tick, once the carriage has done what was commanded. Sensing in
     * the same millisecond would see the encoder a whole tick behind the command: a
     * following error of 20 µm at 20 mm/s, four times the core's stall threshold.
     * Commands are taken between a sense and the next move, where every other port
     * takes them (a command between move and sense saw this tick's position with the
     * last tick's readings: an oscillation overshot by a tick); a reply waits ≤ 1 ms. */
    uint64_t ticks_done = hal_time_us() / ND_TICK_US;
    bool moved = false;
    for (;;) {
#ifdef ND_PLANT_LOOP_HANG
        /* planted (tests/hil/test_hil_rp2040.py): the loop hangs 2 s after a power-on
         * boot; the watchdog resets the chip, and the boot after that runs on */
        if (hal_time_us() > 2000000u && !board_watchdog_caused_reset()) {
            for (;;) {
            }
        }
#endif
        board_tick_clear();
        while (ticks_done < hal_time_us() / ND_TICK_US) {
            /* the LED is high while a tick runs: a scope (or the emulator's harness)
             * on GP25 sees each tick's start and length; it glows while running */
            SIO_GPIO_OUT_SET = 1u << PIN_LED;
            if (moved) nd_core_tick_sense();
            /* the button latches ESTOP in the tick that sees it, before any motion */
            if (sensors_estop_pressed()) nd_core_estop();
            nd_core_poll();
            nd_core_tick_move();
            SIO_GPIO_OUT_CLR = 1u << PIN_LED;
            moved = true;
            ticks_done++;
        }
        /* the bytes wait in the ring for the next tick: only the tick wakes the loop */
        uint32_t primask = board_irq_save();
        if (!board_tick_pending()) {
            board_wfi();
        }
        board_irq_restore(primask);
    }
}
