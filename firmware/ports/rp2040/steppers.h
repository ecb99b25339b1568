/* steppers.h: both axes as STEP/DIR pulse trains for TMC2209 drivers, each paced by a
 * TIMER alarm interrupt (advance: alarm 1, rotation: alarm 2) — no busy-wait in the tick.
 * The mechanics: 1.8° motors at 16 microsteps; the advance on a 2 mm lead screw
 * (625 nm per microstep), the rotation direct (3 200 microsteps per turn). */
#ifndef ND_STEPPERS_H
#define ND_STEPPERS_H

#include <stdint.h>

#define ADV_NM_PER_MICROSTEP 625
#define ROT_UCDEG_PER_MICROSTEP 112500 /* 360° / 3 200 = 11.25 cdeg */

void steppers_init(void);
/* microsteps emitted so far (for diagnostics) */
int64_t steppers_advance_position(void);

#endif /* ND_STEPPERS_H */
