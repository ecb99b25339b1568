/* startup.c: vector table, reset and default handlers for the Cortex-M3 of the MPS2
 * AN385. No CMSIS and no C library start-up: Reset_Handler sets up .data and .bss. */
#include <stdint.h>
#include <string.h>

/* From the linker script (mps2_an385.ld). */
extern uint32_t _estack[];
extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[];

int main(void);

void Reset_Handler(void);
void Default_Handler(void);
void NMI_Handler(void); /* board.c: the watchdog's first time-out */
void SysTick_Handler(void);
void UART0RX_Handler(void);
void UART0TX_Handler(void);

void Reset_Handler(void)
{
    memcpy(_sdata, _sidata, (size_t)((uint8_t *)_edata - (uint8_t *)_sdata));
    memset(_sbss, 0, (size_t)((uint8_t *)_ebss - (uint8_t *)_sbss));
    (void)main();
    for (;;) {
    }
}

/* Every fault and unused interrupt: stop here, where a debugger (qemu -s -S, gdb) finds
 * it. The host sees a device that stopped answering. */
void Default_Handler(void)
{
    for (;;) {
    }
}

#define AN385_IRQS 32 /* external interrupts wired on the AN385 */

/* Entry 0 is the initial stack pointer, the rest handlers: a union keeps that ISO C
 * (no object-to-function pointer cast). */
typedef union {
    uint32_t *stack;
    void (*handler)(void);
} vector_t;

#define H(fn) {.handler = (fn)}
#define D H(Default_Handler)

__attribute__((section(".vectors"), used)) static const vector_t vectors[16 + AN385_IRQS] = {
    {.stack = _estack},
    H(Reset_Handler),
    H(NMI_Handler), /* NMI: the watchdog's first time-out (board.c) */
    D, /* HardFault */
    D, /* MemManage */
    D, /* BusFault */
    D, /* UsageFault */
    {0}, {0}, {0}, {0}, /* reserved */
    D, /* SVCall */
    D, /* DebugMonitor */
    {0}, /* reserved */
    D, /* PendSV */
    H(SysTick_Handler),
    H(UART0RX_Handler), /* IRQ 0 */
    H(UART0TX_Handler), /* IRQ 1 */
    D, D, D, D, D, D, D, D, D, D, D, D, D, D, D, /* IRQ 2..16 */
    D, D, D, D, D, D, D, D, D, D, D, D, D, D, D, /* IRQ 17..31 */
};
