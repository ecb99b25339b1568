/* main.c: the needle-driver firmware on the MPS2 AN385 (Cortex-M3) under QEMU: the
 * bench model stands in for the rig; the core runs from the main loop only. */
#include <stdint.h>

#include "bench.h"
#include "board.h"
#include "hal.h"
#include "nd_core.h"

static struct nd_board board;

int main(void)
{
    /* The clock runs before the core starts; the interrupts only fill the rings and
     * wake the loop, they never call the core. */
    board_init();
    struct nd_bench_config bench;
    nd_bench_defaults(&bench);
#ifdef ND_BENCH_LC_RAIL_N
    bench.rail_mn = ND_BENCH_LC_RAIL_N * 1000; /* make LC_RAIL_N=2: a cell rated 2 N */
#endif
    nd_bench_init(&bench);
    nd_bench_board(&board, &bench, "ND-M3-QEMU-0001");
    nd_core_init(&board);

    for (;;) {
        board_tick_clear(); /* before the checks: a tick after this keeps us awake */
        nd_core_poll();
        nd_core_run_ticks(); /* every tick due; a late loop catches up, boundedly */
        /* Sleep only if no tick and no byte arrived since the checks above. With PRIMASK
         * set an interrupt between the check and the WFI stays pending, WFI returns at
         * once, and the handler runs when PRIMASK is restored: no lost wake-up. */
        uint32_t primask = board_irq_save();
        if (!board_tick_pending() && !board_rx_pending()) {
            board_wfi();
        }
        board_irq_restore(primask);
    }
}
