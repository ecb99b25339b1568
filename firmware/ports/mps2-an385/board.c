/* board.c: CMSDK UART0 with interrupt-driven ring buffers, SysTick, and the serial and
 * clock functions of the HAL (hal.h) for the MPS2 AN385 (QEMU mps2-an385). */
#include "board.h"

#include <stddef.h>

#include "hal.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

/* CMSDK APB UART0 (ARM DDI0479C, 4.3). */
#define UART0_BASE 0x40004000u
#define UART_DATA REG(UART0_BASE + 0x00u)
#define UART_STATE REG(UART0_BASE + 0x04u)
#define UART_CTRL REG(UART0_BASE + 0x08u)
#define UART_INTSTATUS REG(UART0_BASE + 0x0Cu) /* read: status; write 1: clear (INTCLEAR) */
#define UART_BAUDDIV REG(UART0_BASE + 0x10u)
#define STATE_TXFULL (1u << 0)
#define STATE_RXFULL (1u << 1)
#define CTRL_TXEN (1u << 0)
#define CTRL_RXEN (1u << 1)
#define CTRL_TXINTEN (1u << 2)
#define CTRL_RXINTEN (1u << 3)
#define INT_TX (1u << 0)
#define INT_RX (1u << 1)

/* AN385 interrupt map: UART0 RX is IRQ 0, UART0 TX IRQ 1 (UART1 2/3, UART2 4/5; the
 * overrun interrupts are ORed onto IRQ 12, not used here). */
#define IRQ_UART0_RX 0u
#define IRQ_UART0_TX 1u
#define NVIC_ISER0 REG(0xE000E100u)
#define NVIC_ISPR0 REG(0xE000E200u)
#define NVIC_IPR_BASE 0xE000E400u

/* SysTick (the 1 kHz wake-up) and the System Control Block. */
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define SCB_SHPR3 REG(0xE000ED20u)
#define SYST_RELOAD (BOARD_CORE_HZ / BOARD_TICK_HZ) /* 25000 core clocks per tick */

/* CMSDK APB timer 0 (DDI0479C 4.4), free-running from 2^32-1 down at PCLK (25 MHz): the
 * clock of record. Time is read from a counter, not counted in interrupts: under QEMU a
 * host that is busy for a while delivers several SysTick expiries as one interrupt (a
 * pending bit does not count), and a tick count fell ~1 % behind the wall clock on a
 * lightly loaded host, 65 % on a loaded one. The counter always reads true time. */
#define TIMER0_CTRL REG(0x40000000u)
#define TIMER0_VALUE REG(0x40000004u)
#define TIMER0_RELOAD REG(0x40000008u)
#define TIMER_CTRL_EN (1u << 0)
#define PCLK_PER_US (BOARD_CORE_HZ / 1000000u)

/* CMSDK APB watchdog (DDI0479C 4.5) at 25 MHz: its first time-out raises NMI, its second
 * (no kick in between) resets the system (RESEN) — so it loads half the time-out. The NMI
 * handler returns: a loop that is only late recovers with its next kick. Its registers
 * are written only with the lock opened (LOCK = the key; any other value closes it). */
#define WDOG_BASE 0x40008000u
#define WDOG_LOAD REG(WDOG_BASE + 0x000u)
#define WDOG_CTRL REG(WDOG_BASE + 0x008u)
#define WDOG_INTCLR REG(WDOG_BASE + 0x00Cu) /* any write: clear the interrupt, reload */
#define WDOG_LOCK REG(WDOG_BASE + 0xC00u)
#define WDOG_KEY 0x1ACCE551u
#define WDOG_CTRL_INTEN (1u << 0)
#define WDOG_CTRL_RESEN (1u << 1)

/* 921600 baud: a real AN385 at 115200 could not carry 1 kHz telemetry (~25 kB/s). QEMU
 * ignores the rate (bytes move as fast as the pty drains) but wants BAUDDIV >= 16. */
#define UART_BAUD 921600u

/* Keeps the compiler from moving ring data accesses across an index update. */
#define COMPILER_BARRIER() __asm volatile("" ::: "memory")

/* Single producer, single consumer rings; free-running indices, masked on access. */
static uint8_t tx_buf[BOARD_TX_RING];
static volatile uint32_t tx_head; /* written by the main loop */
static volatile uint32_t tx_tail; /* written by the TX interrupt */
static uint8_t rx_buf[BOARD_RX_RING];
static volatile uint32_t rx_head; /* written by the RX interrupt */
static volatile uint32_t rx_tail; /* written by the main loop */

static volatile bool tick_flag; /* set by SysTick, cleared by the main loop */
static uint32_t clock_last;       /* main loop only (hal.h: one context) */
static uint64_t clock_pclk;

void board_init(void)
{
    UART_BAUDDIV = (BOARD_CORE_HZ + UART_BAUD / 2u) / UART_BAUD; /* 27 */
    UART_INTSTATUS = INT_TX | INT_RX;
    UART_CTRL = CTRL_TXEN | CTRL_RXEN | CTRL_TXINTEN | CTRL_RXINTEN;
    /* Priorities: UART (0x40) above SysTick (0x80) so a received byte is never held up
     * by the tick; neither does much work, so any order would do. */
    REG(NVIC_IPR_BASE) = (0x40u << (8u * IRQ_UART0_RX)) | (0x40u << (8u * IRQ_UART0_TX));
    SCB_SHPR3 = (SCB_SHPR3 & 0x00FFFFFFu) | (0x80u << 24);
    NVIC_ISER0 = (1u << IRQ_UART0_RX) | (1u << IRQ_UART0_TX);

    /* Timer 0 before SysTick: at each SysTick interrupt, k ms after SysTick started, the
     * clock already reads >= k ms, so the tick the interrupt announces is due. */
    TIMER0_RELOAD = 0xFFFFFFFFu;
    TIMER0_VALUE = 0xFFFFFFFFu;
    clock_last = 0xFFFFFFFFu;
    TIMER0_CTRL = TIMER_CTRL_EN;

    SYST_RVR = SYST_RELOAD - 1u;
    SYST_CVR = 0u;
    SYST_CSR = 0x7u; /* processor clock, interrupt, enable */
}

void SysTick_Handler(void)
{
    tick_flag = true; /* only wakes the main loop: the time comes from timer 0 */
}

void board_tick_clear(void)
{
    tick_flag = false;
}

bool board_tick_pending(void)
{
    return tick_flag;
}

bool board_rx_pending(void)
{
    return rx_head != rx_tail;
}

void UART0RX_Handler(void)
{
    /* Clear before reading DATA: a byte arriving after the read raises it again. */
    for (;;) {
        UART_INTSTATUS = INT_RX;
        if (!(UART_STATE & STATE_RXFULL)) {
            break;
        }
        uint8_t b = (uint8_t)UART_DATA;
        uint32_t head = rx_head;
        if (head - rx_tail < BOARD_RX_RING) {
            rx_buf[head & (BOARD_RX_RING - 1u)] = b;
            COMPILER_BARRIER();
            rx_head = head + 1u;
        } /* else: ring full, the byte is dropped (the protocol's CRC and retry cope) */
    }
}

void UART0TX_Handler(void)
{
    /* The TX interrupt fires when the holding register empties. Clear it before each
     * check so an empty-transition after the check is never lost; stop when the UART is
     * busy (its next interrupt resumes) or the ring is empty. */
    uint32_t tail = tx_tail;
    for (;;) {
        UART_INTSTATUS = INT_TX;
        if ((UART_STATE & STATE_TXFULL) || tail == tx_head) {
            break;
        }
        COMPILER_BARRIER();
        UART_DATA = tx_buf[tail & (BOARD_TX_RING - 1u)];
        tail++;
    }
    tx_tail = tail;
}

size_t hal_serial_read(uint8_t *buf, size_t max)
{
    uint32_t tail = rx_tail;
    size_t n = 0;
    while (n < max && tail != rx_head) {
        COMPILER_BARRIER();
        buf[n++] = rx_buf[tail & (BOARD_RX_RING - 1u)];
        tail++;
    }
    COMPILER_BARRIER();
    rx_tail = tail;
    return n;
}

size_t hal_serial_tx_room(void)
{
    return BOARD_TX_RING - (size_t)(tx_head - tx_tail);
}

void hal_serial_write(const uint8_t *data, size_t n)
{
    uint32_t head = tx_head;
    for (size_t i = 0; i < n && head - tx_tail < BOARD_TX_RING; i++) {
        tx_buf[head & (BOARD_TX_RING - 1u)] = data[i];
        head++;
    }
    COMPILER_BARRIER();
    tx_head = head;
    /* Start (or nudge) the transmitter by pending its interrupt: the handler is the only
     * writer of DATA and tx_tail, so there is no "is it idle?" race to get wrong. */
    NVIC_ISPR0 = 1u << IRQ_UART0_TX;
}

uint64_t hal_time_us(void)
{
    /* Extends the 32-bit down-counter to 64 bits: it wraps every 171 s and this is read
     * at least once per 1 ms tick. */
    uint32_t raw = TIMER0_VALUE;
    clock_pclk += (uint32_t)(clock_last - raw);
    clock_last = raw;
    return clock_pclk / PCLK_PER_US;
}

void hal_watchdog_start(uint32_t timeout_ms)
{
    WDOG_LOCK = WDOG_KEY;
    WDOG_LOAD = timeout_ms / 2u * (BOARD_CORE_HZ / 1000u);
    WDOG_CTRL = WDOG_CTRL_INTEN | WDOG_CTRL_RESEN;
    WDOG_LOCK = 0u;
}

void hal_watchdog_kick(void)
{
    WDOG_LOCK = WDOG_KEY;
    WDOG_INTCLR = 1u;
    WDOG_LOCK = 0u;
}

/* The watchdog's first time-out: nothing to do — the second one resets. */
void NMI_Handler(void) {}
