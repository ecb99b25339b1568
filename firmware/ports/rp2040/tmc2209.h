/* tmc2209.h: both TMC2209s set up over their single-wire UART (UART1, GP4/GP5, 115 200
 * baud; the advance at address 0, the rotation at address 1 by their MS1/MS2 pins): the
 * microstep resolution from the register (16, as steppers.h assumes — the pins alone would
 * give 1/8 and 1/32), the run and hold currents, StallGuard's threshold and the velocity
 * above which DIAG reports a stall. Write-only: a read would need the bus turned around. */
#ifndef ND_TMC2209_H
#define ND_TMC2209_H

/* hal_advance_driver_stalled (hal.h), the advance's DIAG, is in tmc2209.c */

#include <stddef.h>
#include <stdint.h>

#define TMC_ADDR_ADVANCE 0u
#define TMC_ADDR_ROTATION 1u

void tmc2209_init(void);
/* The datagram CRC (TMC2209 datasheet 4.2: CRC8, polynomial x^8 + x^2 + x + 1, each byte
 * taken LSB first). */
uint8_t tmc2209_crc(const uint8_t *data, size_t n);

#endif /* ND_TMC2209_H */
