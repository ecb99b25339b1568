/* tmc2209.c: see tmc2209.h. At boot only, before the loop: the few bytes wait for room in
 * UART1's FIFO (at most 80 bytes, ~7 ms at 115 200 baud). */
#include "tmc2209.h"

#include <stdbool.h>

#include "board.h"
#include "hal.h"
#include "rp2040_regs.h"

#define UART1_REG(off) REG(UART1_BASE + (off))
/* 125 MHz / (16 × 115 200) = 67.817: IBRD 67, FBRD round(0.817 × 64) = 52 */
#define TMC_IBRD 67u
#define TMC_FBRD 52u

#define TMC_GCONF 0x00u
#define TMC_IHOLD_IRUN 0x10u
#define TMC_TCOOLTHRS 0x14u
#define TMC_SGTHRS 0x40u
#define TMC_CHOPCONF 0x6Cu
/* GCONF: current from VREF (I_scale_analog), UART not PDN (pdn_disable), the microstep
 * resolution from MRES (mstep_reg_select), step pulse filter (multistep_filt) */
#define GCONF_VALUE ((1u << 0) | (1u << 6) | (1u << 7) | (1u << 8))
/* CHOPCONF: the reset value 0x10000053 (interpolation to 256, SpreadCycle timing) with
 * MRES = 4: 16 microsteps */
#define CHOPCONF_VALUE (0x10000053u | (4u << 24))
/* IHOLD 8/32, IRUN 20/32 of the VREF current, IHOLDDELAY 4 */
#define IHOLD_IRUN_VALUE ((8u << 0) | (20u << 8) | (4u << 16))
/* DIAG reports a stall above this speed (TSTEP below it: any real speed) */
#define TCOOLTHRS_VALUE 0xFFFFFu
/* StallGuard: stall when SG_RESULT < 2 × SGTHRS; a bench sets it with the motor loaded */
#define SGTHRS_VALUE 60u

uint8_t tmc2209_crc(const uint8_t *data, size_t n)
{
    uint8_t crc = 0;
    for (size_t i = 0; i < n; ++i) {
        uint8_t byte = data[i];
        for (int bit = 0; bit < 8; ++bit) {
            if (((crc >> 7) ^ (byte & 1u)) != 0u) crc = (uint8_t)((crc << 1) ^ 0x07u);
            else crc = (uint8_t)(crc << 1);
            byte >>= 1;
        }
    }
    return crc;
}

static void put(uint8_t byte)
{
    while (UART1_REG(UART_FR) & UART_FR_TXFF) {
    }
    UART1_REG(UART_DR) = byte;
}

static void write_reg(uint8_t address, uint8_t reg, uint32_t value)
{
    uint8_t d[8] = {0x05u, address, (uint8_t)(reg | 0x80u), (uint8_t)(value >> 24),
                    (uint8_t)(value >> 16), (uint8_t)(value >> 8), (uint8_t)value, 0u};
    d[7] = tmc2209_crc(d, 7);
    for (unsigned i = 0; i < sizeof d; ++i) put(d[i]);
}

/* The advance driver's DIAG: high while StallGuard sees the motor stall (SG_RESULT below
 * 2 × SGTHRS, above the TCOOLTHRS speed). Its rising edge stays latched in IO_BANK0's raw
 * interrupt status (no interrupt enabled: the tick reads it), so a pulse between two ticks
 * is not missed; the core reads it once per tick (hal.h). The rotation's DIAG is wired
 * and not read: the core has no rotation stall (a needle that stops turning is no hazard
 * the advance's cut-off does not already cover). */
bool hal_advance_driver_stalled(void)
{
    const uint32_t edge = IO_EDGE_HIGH(PIN_ADV_DIAG);
    const bool latched = (REG(IO_INTR(PIN_ADV_DIAG)) & edge) != 0u;
    REG(IO_INTR(PIN_ADV_DIAG)) = edge; /* write 1 to clear */
    return latched || board_gpio_get(PIN_ADV_DIAG);
}

void tmc2209_init(void)
{
    board_gpio_output(PIN_TMC_TX, true);
    board_gpio_input(PIN_TMC_RX, BOARD_PULL_UP);
    REG(GPIO_CTRL(PIN_TMC_TX)) = GPIO_FUNC_UART;
    REG(GPIO_CTRL(PIN_TMC_RX)) = GPIO_FUNC_UART;
    UART1_REG(UART_IBRD) = TMC_IBRD;
    UART1_REG(UART_FBRD) = TMC_FBRD;
    UART1_REG(UART_LCR_H) = UART_LCR_8N1_FIFO;
    UART1_REG(UART_CR) = UART_CR_ENABLE;
    board_gpio_input(PIN_ADV_DIAG, BOARD_PULL_DOWN);
    board_gpio_input(PIN_ROT_DIAG, BOARD_PULL_DOWN);
    REG(IO_INTR(PIN_ADV_DIAG)) = IO_EDGE_HIGH(PIN_ADV_DIAG); /* no stale edge from boot */
    for (uint8_t a = TMC_ADDR_ADVANCE; a <= TMC_ADDR_ROTATION; ++a) {
        write_reg(a, TMC_GCONF, GCONF_VALUE);
        write_reg(a, TMC_CHOPCONF, CHOPCONF_VALUE);
        write_reg(a, TMC_IHOLD_IRUN, IHOLD_IRUN_VALUE);
        write_reg(a, TMC_TCOOLTHRS, TCOOLTHRS_VALUE);
        write_reg(a, TMC_SGTHRS, SGTHRS_VALUE);
    }
}
