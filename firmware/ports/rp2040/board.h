/* board.h: the needle-driver on a Raspberry Pi Pico (RP2040) — pinout, clocks, the host
 * link on UART0, the 1 kHz tick from TIMER, the watchdog. The serial and clock functions
 * of the HAL (hal.h) are in board.c; the actuators and sensors in steppers.c, hx711.c,
 * encoder.c and inputs.c. docs/firmware.md has the wiring. */
#ifndef ND_BOARD_H
#define ND_BOARD_H

#include <stdbool.h>
#include <stdint.h>

/* Pinout (GPn of the Pico) */
#define PIN_HOST_TX 0u      /* UART0 TX -> the host's USB-serial adapter RX */
#define PIN_HOST_RX 1u      /* UART0 RX */
#define PIN_ADV_STEP 2u     /* advance TMC2209 STEP */
#define PIN_ADV_DIR 3u      /* advance TMC2209 DIR (high: deeper) */
#define PIN_TMC_TX 4u       /* UART1 TX -> both TMC2209 PDN_UART (1 kΩ) */
#define PIN_TMC_RX 5u       /* UART1 RX <- PDN_UART */
#define PIN_ROT_STEP 6u     /* rotation TMC2209 STEP */
#define PIN_ROT_DIR 7u      /* rotation TMC2209 DIR (high: positive angle) */
#define PIN_DRV_EN 8u       /* both TMC2209 EN, active low */
#define PIN_HX711_SCK 10u   /* HX711 PD_SCK */
#define PIN_HX711_DOUT 11u  /* HX711 DOUT */
#define PIN_ENC_A 12u       /* advance encoder A */
#define PIN_ENC_B 13u       /* advance encoder B */
#define PIN_HOME 14u        /* home switch to GND (closed at home), pull-up */
#define PIN_ESTOP 15u       /* e-stop NC contact to GND, pull-up: high = pressed or cut */
#define PIN_ADV_DIAG 16u    /* advance TMC2209 DIAG (StallGuard), high = stall */
#define PIN_ROT_DIAG 17u    /* rotation TMC2209 DIAG */
#define PIN_LED 25u         /* the Pico's LED: on while running */

#define BOARD_SYS_HZ 125000000u
#define BOARD_TICK_US 1000u

/* Powers of two (free-running indices, masked): the TX ring holds several telemetry
 * frames (<= 262 B, ~25 kB/s at 1 kHz), the RX ring a few commands. */
#define BOARD_TX_RING 2048u
#define BOARD_RX_RING 512u

void board_init(void);
/* TIMER alarm 0 wakes the loop every 1 ms; which ticks are due is read from the clock. */
void board_tick_clear(void);
bool board_tick_pending(void);

/* The RP2040 watchdog (hal_watchdog_start/kick, hal.h): started by the core at boot with
 * board.hw_watchdog_ms and kicked at the end of every tick, it resets the chip if the loop
 * completes no tick for BOARD_WATCHDOG_MS. */
#define BOARD_WATCHDOG_MS 100u
void hal_watchdog_kick(void);
/* true once after a reset the watchdog caused (the port reports it at boot) */
bool board_watchdog_caused_reset(void);

/* The pad of a GPIO as an input (input enable is off at reset in the emulator, on in
 * silicon: set it either way), with a pull-up, pull-down or neither. */
enum board_pull { BOARD_PULL_NONE, BOARD_PULL_UP, BOARD_PULL_DOWN };
void board_gpio_input(uint32_t pin, enum board_pull pull);
void board_gpio_output(uint32_t pin, bool level);
static inline bool board_gpio_get(uint32_t pin)
{
    return ((*(volatile uint32_t *)0xD0000004u) >> pin) & 1u;
}

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
static inline void board_wfi(void) { __asm volatile("wfi" ::: "memory"); }

#endif /* ND_BOARD_H */
