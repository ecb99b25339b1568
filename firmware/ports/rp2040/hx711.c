/* hx711.c: see hx711.h. DOUT goes low when a conversion is ready; 24 SCK pulses shift it
 * out MSB first (DOUT valid 0.1 µs after each rising edge), a 25th selects channel A
 * at gain 128 for the next. SCK high for more than 60 µs powers the chip down, so each
 * high phase runs with interrupts masked (< 1 µs). Reading a sample is ~25 × 0.5 µs,
 * once per conversion (12.5 ms): the tick is never held waiting for the chip. */
#include "hx711.h"

#include <stdbool.h>

#include "board.h"
#include "rp2040_regs.h"

#define SCK_NOPS 24 /* ≥ 0.2 µs at 125 MHz for each SCK phase and DOUT's 0.1 µs */

static uint64_t last_sample_us;

static void pause(void)
{
    for (int i = 0; i < SCK_NOPS; ++i) __asm volatile("nop");
}

void hx711_init(uint64_t now_us)
{
    board_gpio_output(PIN_HX711_SCK, false); /* low: powered up */
    board_gpio_input(PIN_HX711_DOUT, BOARD_PULL_NONE);
    last_sample_us = now_us;
}

static uint32_t shift_in(void)
{
    uint32_t v = 0;
    for (int bit = 0; bit < 25; ++bit) {
        const uint32_t saved = board_irq_save();
        SIO_GPIO_OUT_SET = 1u << PIN_HX711_SCK;
        pause();
        const uint32_t dout = board_gpio_get(PIN_HX711_DOUT) ? 1u : 0u;
        SIO_GPIO_OUT_CLR = 1u << PIN_HX711_SCK;
        board_irq_restore(saved);
        if (bit < 24) v = (v << 1) | dout;
        pause();
    }
    return v;
}

enum hx711_result hx711_poll(uint64_t now_us, int32_t *raw)
{
    if (board_gpio_get(PIN_HX711_DOUT)) { /* converting */
        return now_us - last_sample_us > HX711_TIMEOUT_US ? HX711_FAULT : HX711_NO_NEW_SAMPLE;
    }
    const uint32_t v = shift_in();
    last_sample_us = now_us;
    /* two's complement, 24 bits */
    *raw = (int32_t)(v << 8) >> 8;
    return HX711_NEW_SAMPLE;
}
