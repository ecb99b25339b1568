/* board.h: the MPS2 AN385 (Cortex-M3) board support of the needle-driver port, as QEMU's
 * mps2-an385 machine models it: CMSDK APB UART0 (interrupt driven, ring buffers) and
 * a 1 kHz SysTick wake-up, CMSDK timer 0 as the clock. The serial and clock functions
 * of the HAL (hal.h) are in board.c. */
#ifndef ND_BOARD_H
#define ND_BOARD_H

#include <stdbool.h>
#include <stdint.h>

#define BOARD_CORE_HZ 25000000u /* AN385: 25 MHz system and peripheral clock */
#define BOARD_TICK_HZ 1000u     /* the core's control period is 1 ms */

/* Sizes are powers of two (the ring indices run free and are masked). The TX ring holds
 * several telemetry frames (<= 262 B each, ~25 kB/s at 1 kHz) so a host that reads in
 * bursts does not cost frames; the RX ring holds a few commands. */
#define BOARD_TX_RING 2048u
#define BOARD_RX_RING 512u

void board_init(void);
/* The 1 kHz SysTick interrupt only sets a flag that keeps the main loop from sleeping;
 * which ticks are due is read from the clock (hal_time_us). */
void board_tick_clear(void);
bool board_tick_pending(void);
/* true: bytes wait in the receive ring (the main loop must not sleep). */
bool board_rx_pending(void);

/* Interrupt masking (PRIMASK), nestable: save, mask, restore. */
static inline uint32_t board_irq_save(void)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask) : : "memory");
    return primask;
}
static inline void board_irq_restore(uint32_t primask)
{
    __asm volatile("msr primask, %0" : : "r"(primask) : "memory");
}
/* Sleeps until an interrupt is pending; wakes even with PRIMASK set (the interrupt then
 * runs when PRIMASK is restored), which is what closes the check-then-sleep race. */
static inline void board_wfi(void) { __asm volatile("wfi" ::: "memory"); }

#endif /* ND_BOARD_H */
