/* rp2040_regs.h: the RP2040 registers this port touches, written from the RP2040
 * datasheet (build-date 2023-06-14, chapter and section given at each block). No pico-sdk:
 * it is not in any package registry, and these ~80 lines are all the port needs. */
#ifndef ND_RP2040_REGS_H
#define ND_RP2040_REGS_H

#include <stdint.h>

#define REG(addr) (*(volatile uint32_t *)(addr))
/* Atomic register aliases (2.1.2): a write to base+0x2000 sets the bits written, to
 * base+0x3000 clears them — no read-modify-write race with an interrupt. */
#define REG_SET(addr) REG((addr) + 0x2000u)
#define REG_CLR(addr) REG((addr) + 0x3000u)

/* 2.14 Subsystem resets */
#define RESETS_BASE 0x4000C000u
#define RESETS_RESET (RESETS_BASE + 0x0u)
#define RESETS_DONE (RESETS_BASE + 0x8u)
#define RESET_IO_BANK0 (1u << 5)
#define RESET_PADS_BANK0 (1u << 8)
#define RESET_PLL_SYS (1u << 12)
#define RESET_TIMER (1u << 21)
#define RESET_UART0 (1u << 22)
#define RESET_UART1 (1u << 23)

/* 2.16 Crystal oscillator */
#define XOSC_BASE 0x40024000u
#define XOSC_CTRL (XOSC_BASE + 0x0u)
#define XOSC_STATUS (XOSC_BASE + 0x4u)
#define XOSC_STARTUP (XOSC_BASE + 0xCu)
#define XOSC_CTRL_1_15MHZ 0xAA0u
#define XOSC_CTRL_ENABLE (0xFABu << 12)
#define XOSC_STATUS_STABLE (1u << 31)

/* 2.15 Clocks: each generator is CTRL, DIV, SELECTED */
#define CLOCKS_BASE 0x40008000u
#define CLK_REF_CTRL (CLOCKS_BASE + 0x30u)
#define CLK_REF_SELECTED (CLOCKS_BASE + 0x38u)
#define CLK_SYS_CTRL (CLOCKS_BASE + 0x3Cu)
#define CLK_SYS_DIV (CLOCKS_BASE + 0x40u)
#define CLK_SYS_SELECTED (CLOCKS_BASE + 0x44u)
#define CLK_PERI_CTRL (CLOCKS_BASE + 0x48u)
#define CLK_SYS_RESUS_CTRL (CLOCKS_BASE + 0x78u)
#define CLK_REF_SRC_ROSC 0u
#define CLK_REF_SRC_XOSC 2u
#define CLK_SYS_SRC_REF 0u
#define CLK_SYS_SRC_AUX 1u /* AUXSRC 0: pll_sys */
#define CLK_PERI_ENABLE (1u << 11) /* AUXSRC 0: clk_sys */

/* 2.18 PLL */
#define PLL_SYS_BASE 0x40028000u
#define PLL_CS (PLL_SYS_BASE + 0x0u)
#define PLL_PWR (PLL_SYS_BASE + 0x4u)
#define PLL_FBDIV_INT (PLL_SYS_BASE + 0x8u)
#define PLL_PRIM (PLL_SYS_BASE + 0xCu)
#define PLL_CS_LOCK (1u << 31)
#define PLL_PWR_PD (1u << 0)
#define PLL_PWR_POSTDIVPD (1u << 3)
#define PLL_PWR_VCOPD (1u << 5)

/* 4.7 Watchdog (its TICK also clocks TIMER: 1 µs from clk_ref) */
#define WATCHDOG_BASE 0x40058000u
#define WATCHDOG_CTRL (WATCHDOG_BASE + 0x0u)
#define WATCHDOG_LOAD (WATCHDOG_BASE + 0x4u)
#define WATCHDOG_REASON (WATCHDOG_BASE + 0x8u)
#define WATCHDOG_SCRATCH0 (WATCHDOG_BASE + 0xCu)
#define WATCHDOG_TICK (WATCHDOG_BASE + 0x2Cu)
#define WATCHDOG_CTRL_ENABLE (1u << 30)
#define WATCHDOG_CTRL_PAUSE_DBG (7u << 24) /* PAUSE_JTAG, PAUSE_DBG0, PAUSE_DBG1 */
#define WATCHDOG_TICK_ENABLE (1u << 9)

/* 4.6 Timer: a 64-bit µs count and four 32-bit alarms (IRQs 0..3) */
#define TIMER_BASE 0x40054000u
#define TIMER_ALARM(n) (TIMER_BASE + 0x10u + 4u * (n))
#define TIMER_RAWH (TIMER_BASE + 0x24u)
#define TIMER_RAWL (TIMER_BASE + 0x28u)
#define TIMER_INTR (TIMER_BASE + 0x34u)
#define TIMER_INTE (TIMER_BASE + 0x38u)

/* 4.2 UART (PL011) */
#define UART0_BASE 0x40034000u
#define UART1_BASE 0x40038000u
#define UART_DR 0x00u
#define UART_FR 0x18u
#define UART_IBRD 0x24u
#define UART_FBRD 0x28u
#define UART_LCR_H 0x2Cu
#define UART_CR 0x30u
#define UART_IFLS 0x34u
#define UART_IMSC 0x38u
#define UART_ICR 0x44u
#define UART_FR_RXFE (1u << 4)
#define UART_FR_TXFF (1u << 5)
#define UART_FR_BUSY (1u << 3)
#define UART_LCR_8N1_FIFO ((3u << 5) | (1u << 4))
#define UART_CR_ENABLE ((1u << 0) | (1u << 8) | (1u << 9)) /* UARTEN, TXE, RXE */
#define UART_INT_RX (1u << 4)
#define UART_INT_TX (1u << 5)
#define UART_INT_RT (1u << 6)

/* 2.19 GPIO: IO_BANK0 (function select, edge interrupts), PADS_BANK0, SIO */
#define IO_BANK0_BASE 0x40014000u
#define GPIO_CTRL(n) (IO_BANK0_BASE + 8u * (n) + 4u)
#define IO_INTR(n) (IO_BANK0_BASE + 0xF0u + 4u * ((n) / 8u))
#define IO_PROC0_INTE(n) (IO_BANK0_BASE + 0x100u + 4u * ((n) / 8u))
#define IO_EDGE_LOW(n) (4u << (4u * ((n) % 8u)))
#define IO_EDGE_HIGH(n) (8u << (4u * ((n) % 8u)))
#define GPIO_FUNC_UART 2u
#define GPIO_FUNC_SIO 5u
#define PADS_BANK0_BASE 0x4001C000u
#define PADS_GPIO(n) (PADS_BANK0_BASE + 4u + 4u * (n))
#define PADS_IE (1u << 6)
#define PADS_PUE (1u << 3)
#define PADS_PDE (1u << 2)
#define PADS_SCHMITT (1u << 1)
#define PADS_DRIVE_4MA (1u << 4)
#define SIO_BASE 0xD0000000u
#define SIO_GPIO_IN REG(SIO_BASE + 0x04u)
#define SIO_GPIO_OUT_SET REG(SIO_BASE + 0x14u)
#define SIO_GPIO_OUT_CLR REG(SIO_BASE + 0x18u)
#define SIO_GPIO_OE_SET REG(SIO_BASE + 0x24u)

/* Cortex-M0+ NVIC and SCB */
#define NVIC_ISER REG(0xE000E100u)
#define NVIC_IPR(n) (0xE000E400u + 4u * ((n) / 4u))
#define SCB_VTOR REG(0xE000ED08u)

/* 2.3.2 interrupt numbers */
#define IRQ_TIMER_0 0u
#define IRQ_TIMER_1 1u
#define IRQ_TIMER_2 2u
#define IRQ_TIMER_3 3u
#define IRQ_IO_BANK0 13u
#define IRQ_UART0 20u

#endif /* ND_RP2040_REGS_H */
