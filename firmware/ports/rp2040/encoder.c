/* encoder.c: see encoder.h; implements hal_encoder_read_nm. */
#include "encoder.h"

#include <stdbool.h>

#include "board.h"
#include "hal.h"
#include "rp2040_regs.h"

static volatile int32_t count;
static volatile uint32_t state; /* (A << 1) | B */
static volatile bool error;

static uint32_t read_ab(void)
{
    const uint32_t in = SIO_GPIO_IN;
    return (((in >> PIN_ENC_A) & 1u) << 1) | ((in >> PIN_ENC_B) & 1u);
}

void encoder_init(void)
{
    board_gpio_input(PIN_ENC_A, BOARD_PULL_UP);
    board_gpio_input(PIN_ENC_B, BOARD_PULL_UP);
    state = read_ab();
    const uint32_t edges = IO_EDGE_LOW(PIN_ENC_A) | IO_EDGE_HIGH(PIN_ENC_A) |
                           IO_EDGE_LOW(PIN_ENC_B) | IO_EDGE_HIGH(PIN_ENC_B);
    REG(IO_INTR(PIN_ENC_A)) = edges; /* clear stale edges (A and B share a register) */
    REG_SET(IO_PROC0_INTE(PIN_ENC_A)) = edges;
    /* priority 0 (reset value), with the step trains: a count is never missed */
    NVIC_ISER = 1u << IRQ_IO_BANK0;
}

/* Forward is A leading B: 00 -> 10 -> 11 -> 01 -> 00. Index: (old << 2) | new. */
static const int8_t step_of[16] = {
    0, -1, +1, 2, /* from 00 */
    +1, 0, 2, -1, /* from 01 */
    -1, 2, 0, +1, /* from 10 */
    2, +1, -1, 0, /* from 11 */
};

void isr_io_bank0(void)
{
    REG(IO_INTR(PIN_ENC_A)) = IO_EDGE_LOW(PIN_ENC_A) | IO_EDGE_HIGH(PIN_ENC_A) |
                              IO_EDGE_LOW(PIN_ENC_B) | IO_EDGE_HIGH(PIN_ENC_B);
    const uint32_t now = read_ab();
    const int8_t step = step_of[(state << 2) | now];
    if (step == 2) error = true;
    else count += step;
    state = now;
}

bool hal_encoder_read_nm(int64_t *position_nm)
{
    *position_nm = (int64_t)count * ENC_NM_PER_COUNT;
    return !error;
}
