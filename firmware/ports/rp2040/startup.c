/* startup.c: vector table, reset and default handlers for the RP2040's Cortex-M0+.
 * Reset_Handler sets up .data and .bss; boot2 (boot2/boot2_w25q080.S, entered by the
 * bootrom — or the emulator's harness doing its part) has set up XIP, VTOR and the stack
 * pointer. */
#include <stdint.h>
#include <string.h>

extern uint32_t _estack[];
extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[];

int main(void);

void Reset_Handler(void);
void Default_Handler(void);
void isr_timer0(void);
void isr_timer1(void);
void isr_timer2(void);
void isr_io_bank0(void);
void isr_uart0(void);

void Reset_Handler(void)
{
    memcpy(_sdata, _sidata, (size_t)((uint8_t *)_edata - (uint8_t *)_sdata));
    memset(_sbss, 0, (size_t)((uint8_t *)_ebss - (uint8_t *)_sbss));
    (void)main();
    for (;;) {
    }
}

/* Every fault and unused interrupt stops here; the watchdog then resets the chip. */
void Default_Handler(void)
{
    for (;;) {
    }
}

typedef union {
    uint32_t *stack;
    void (*handler)(void);
} vector_t;

#define H(fn) {.handler = (fn)}
#define D H(Default_Handler)

__attribute__((section(".vectors"), used)) static const vector_t vectors[16 + 32] = {
    {.stack = _estack},
    H(Reset_Handler),
    D, /* NMI */
    D, /* HardFault */
    {0}, {0}, {0}, {0}, {0}, {0}, {0}, /* reserved */
    D, /* SVCall */
    {0}, {0}, /* reserved */
    D, /* PendSV */
    D, /* SysTick */
    H(isr_timer0),   /* IRQ 0 */
    H(isr_timer1),   /* IRQ 1: advance step train */
    H(isr_timer2),   /* IRQ 2: rotation step train */
    D, D, D, D, D, D, D, D, D, D, /* IRQ 3..12 */
    H(isr_io_bank0), /* IRQ 13: encoder edges */
    D, D, D, D, D, D, /* IRQ 14..19 */
    H(isr_uart0),    /* IRQ 20 */
    D, D, D, D, D, D, D, D, D, D, D, /* IRQ 21..31 */
};
