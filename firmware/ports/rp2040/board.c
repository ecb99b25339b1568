/* board.c: clocks (XOSC 12 MHz -> PLL_SYS 125 MHz), UART0 with interrupt-driven rings
 * (the host link), TIMER (the clock and the 1 kHz wake-up), the watchdog, GPIO set-up. */
#include "board.h"

#include <stddef.h>

#include "hal.h"
#include "rp2040_regs.h"

#define UART0_REG(off) REG(UART0_BASE + (off))
/* 921 600 baud: 1 kHz telemetry is ~25 kB/s. clk_peri 125 MHz / (16 × 921 600) =
 * 8.477: IBRD 8, FBRD round(0.477 × 64) = 31 (0.1 % fast). */
#define UART_IBRD_921600 8u
#define UART_FBRD_921600 31u
#define COMPILER_BARRIER() __asm volatile("" ::: "memory")

static uint8_t tx_buf[BOARD_TX_RING];
static volatile uint32_t tx_head; /* main loop */
static volatile uint32_t tx_tail; /* UART0 interrupt */
static uint8_t rx_buf[BOARD_RX_RING];
static volatile uint32_t rx_head; /* UART0 interrupt */
static volatile uint32_t rx_tail; /* main loop */
static volatile bool tick_flag;
static bool watchdog_reset;

static void set_tick_alarm(void);

static void unreset(uint32_t bits)
{
    REG_CLR(RESETS_RESET) = bits;
    while ((REG(RESETS_DONE) & bits) != bits) {
    }
}

/* 2.15.6.1 / 2.18.2: XOSC on, clk_ref from it, PLL_SYS 12 MHz / 1 × 125 = 1500 MHz VCO,
 * / 6 / 2 = 125 MHz, clk_sys from the PLL, clk_peri from clk_sys. */
static void clocks_init(void)
{
    REG(CLK_SYS_RESUS_CTRL) = 0;
    REG(XOSC_CTRL) = XOSC_CTRL_1_15MHZ;
    REG(XOSC_STARTUP) = 47u; /* ~1 ms at 12 MHz, in units of 256 cycles */
    REG_SET(XOSC_CTRL) = XOSC_CTRL_ENABLE;
    while (!(REG(XOSC_STATUS) & XOSC_STATUS_STABLE)) {
    }
    /* off the PLL before touching it */
    REG(CLK_SYS_CTRL) = CLK_SYS_SRC_REF;
    while (REG(CLK_SYS_SELECTED) != 1u) {
    }
    REG(CLK_REF_CTRL) = CLK_REF_SRC_XOSC;
    while (REG(CLK_REF_SELECTED) != (1u << CLK_REF_SRC_XOSC)) {
    }
    REG_SET(RESETS_RESET) = RESET_PLL_SYS;
    unreset(RESET_PLL_SYS);
    REG(PLL_CS) = 1u; /* REFDIV */
    REG(PLL_FBDIV_INT) = 125u;
    REG_CLR(PLL_PWR) = PLL_PWR_PD | PLL_PWR_VCOPD;
    while (!(REG(PLL_CS) & PLL_CS_LOCK)) {
    }
    REG(PLL_PRIM) = (6u << 16) | (2u << 12);
    REG_CLR(PLL_PWR) = PLL_PWR_POSTDIVPD;
    REG(CLK_SYS_DIV) = 1u << 8;
    REG(CLK_SYS_CTRL) = CLK_SYS_SRC_AUX; /* AUXSRC 0 = pll_sys */
    while (REG(CLK_SYS_SELECTED) != (1u << CLK_SYS_SRC_AUX)) {
    }
    REG(CLK_PERI_CTRL) = CLK_PERI_ENABLE;
    /* the TIMER's 1 µs tick: clk_ref (12 MHz) / 12 */
    REG(WATCHDOG_TICK) = WATCHDOG_TICK_ENABLE | 12u;
}

void board_gpio_input(uint32_t pin, enum board_pull pull)
{
    uint32_t pad = PADS_IE | PADS_SCHMITT;
    if (pull == BOARD_PULL_UP) pad |= PADS_PUE;
    if (pull == BOARD_PULL_DOWN) pad |= PADS_PDE;
    REG(PADS_GPIO(pin)) = pad;
    REG(GPIO_CTRL(pin)) = GPIO_FUNC_SIO;
}

void board_gpio_output(uint32_t pin, bool level)
{
    REG(PADS_GPIO(pin)) = PADS_IE | PADS_DRIVE_4MA;
    if (level) SIO_GPIO_OUT_SET = 1u << pin;
    else SIO_GPIO_OUT_CLR = 1u << pin;
    SIO_GPIO_OE_SET = 1u << pin;
    REG(GPIO_CTRL(pin)) = GPIO_FUNC_SIO;
}

static void uart0_init(void)
{
    board_gpio_output(PIN_HOST_TX, true);
    board_gpio_input(PIN_HOST_RX, BOARD_PULL_UP);
    REG(GPIO_CTRL(PIN_HOST_TX)) = GPIO_FUNC_UART;
    REG(GPIO_CTRL(PIN_HOST_RX)) = GPIO_FUNC_UART;
    UART0_REG(UART_IBRD) = UART_IBRD_921600;
    UART0_REG(UART_FBRD) = UART_FBRD_921600;
    UART0_REG(UART_LCR_H) = UART_LCR_8N1_FIFO; /* also latches the divisors */
    UART0_REG(UART_IFLS) = 0u;                 /* RX at 1/8 full, TX at 1/8 */
    UART0_REG(UART_CR) = UART_CR_ENABLE;
    UART0_REG(UART_IMSC) = UART_INT_RX | UART_INT_RT; /* TX enabled when bytes wait */
}

void board_init(void)
{
    watchdog_reset = (REG(WATCHDOG_REASON) & 1u) != 0u; /* TIMER: our watchdog fired */
    clocks_init();
    unreset(RESET_IO_BANK0 | RESET_PADS_BANK0 | RESET_TIMER | RESET_UART0 | RESET_UART1);
    uart0_init();
    board_gpio_output(PIN_LED, false); /* high while a tick runs (main.c) */
    /* priorities: the step trains and the encoder (0, steppers.c, encoder.c) above the
     * UART, the UART above the tick's wake-up */
    REG(NVIC_IPR(IRQ_UART0)) |= 0x40u << (8u * (IRQ_UART0 % 4u));
    REG(NVIC_IPR(IRQ_TIMER_0)) |= 0x80u << (8u * (IRQ_TIMER_0 % 4u));
    REG_SET(TIMER_INTE) = 1u << 0;
    set_tick_alarm();
    NVIC_ISER = (1u << IRQ_UART0) | (1u << IRQ_TIMER_0);
}

static uint32_t watchdog_load; /* the count hal_watchdog_start set, reloaded by each kick */

void hal_watchdog_start(uint32_t timeout_ms)
{
    /* LOAD counts down at 2 per µs (erratum RP2040-E1) */
    watchdog_load = timeout_ms * 1000u * 2u;
    REG(WATCHDOG_LOAD) = watchdog_load;
    REG(WATCHDOG_CTRL) = WATCHDOG_CTRL_ENABLE | WATCHDOG_CTRL_PAUSE_DBG;
}

void hal_watchdog_kick(void) { REG(WATCHDOG_LOAD) = watchdog_load; }

bool board_watchdog_caused_reset(void) { return watchdog_reset; }

/* TIMER alarm 0, every 1 ms, on the millisecond: only wakes the loop. On the boundary
 * (not at boot time + n ms) so that a wake-up finds exactly one tick due — an alarm just
 * before a boundary found none, then two at the next: a tick's sensing ran right after
 * the previous tick's motion, before its step train (main.c). */
static void set_tick_alarm(void)
{
    uint32_t next = (uint32_t)((hal_time_us() / BOARD_TICK_US + 1u) * BOARD_TICK_US);
    if ((int32_t)(next - REG(TIMER_RAWL)) < 2) next += BOARD_TICK_US; /* never in the past */
    REG(TIMER_ALARM(0)) = next;
}

void isr_timer0(void)
{
    REG(TIMER_INTR) = 1u << 0;
    set_tick_alarm();
    tick_flag = true;
}

void board_tick_clear(void) { tick_flag = false; }
bool board_tick_pending(void) { return tick_flag; }

void isr_uart0(void)
{
    while (!(UART0_REG(UART_FR) & UART_FR_RXFE)) {
        const uint8_t byte = (uint8_t)UART0_REG(UART_DR);
        if (rx_head - rx_tail < BOARD_RX_RING) { /* full: the byte is lost, CRC catches it */
            rx_buf[rx_head & (BOARD_RX_RING - 1u)] = byte;
            COMPILER_BARRIER();
            rx_head++;
        }
    }
    /* at most a FIFO's worth (32 B) a call, as silicon takes them: the emulator's TX
     * FIFO never fills, and draining 2 KiB at once held the step trains up ~160 µs */
    for (int n = 0; n < 32 && tx_tail != tx_head && !(UART0_REG(UART_FR) & UART_FR_TXFF); ++n) {
        UART0_REG(UART_DR) = tx_buf[tx_tail & (BOARD_TX_RING - 1u)];
        tx_tail++;
    }
    if (tx_tail == tx_head) REG_CLR(UART0_BASE + UART_IMSC) = UART_INT_TX;
}

size_t hal_serial_read(uint8_t *buf, size_t max)
{
    size_t n = 0;
    while (n < max && rx_tail != rx_head) {
        buf[n++] = rx_buf[rx_tail & (BOARD_RX_RING - 1u)];
        COMPILER_BARRIER();
        rx_tail++;
    }
    return n;
}

size_t hal_serial_tx_room(void) { return BOARD_TX_RING - (tx_head - tx_tail); }

void hal_serial_write(const uint8_t *data, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) tx_buf[(tx_head + i) & (BOARD_TX_RING - 1u)] = data[i];
    COMPILER_BARRIER();
    tx_head += (uint32_t)n;
    /* the interrupt moves them to the FIFO; it fires at once while the FIFO has room */
    REG_SET(UART0_BASE + UART_IMSC) = UART_INT_TX;
}

uint64_t hal_time_us(void)
{
    /* RAWH, RAWL, RAWH again: a carry between the reads is seen and re-read */
    uint32_t hi, lo;
    do {
        hi = REG(TIMER_RAWH);
        lo = REG(TIMER_RAWL);
    } while (hi != REG(TIMER_RAWH));
    return ((uint64_t)hi << 32) | lo;
}
