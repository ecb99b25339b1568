/* sensors.c: the HAL's load cell (the HX711 in newtons' units), the home switch, the
 * e-stop input. */
#include <stdbool.h>
#include <stdint.h>

#include "board.h"
#include "hal.h"
#include "hx711.h"

/* hx711_poll's three answers are the HAL's (hal.h): a new conversion, none yet (the HX711
 * converts at 80 SPS, the core asks every 1 ms tick), or a fault (no answer in time). An
 * amplifier at its rail (0x7FFFFF / -0x800000) reports the rail itself, beyond any rated
 * load: the core latches LOAD_CELL (SATURATED), it is no force. */
enum nd_lc_read hal_load_cell_read_mn(int32_t *out_mn)
{
    int32_t raw;
    switch (hx711_poll(hal_time_us(), &raw)) {
    case HX711_NEW_SAMPLE:
        if (raw == 0x7FFFFF || raw == -0x800000)
            *out_mn = raw > 0 ? INT32_MAX : -INT32_MAX;
        else
            *out_mn = raw / HX711_COUNTS_PER_MN;
        return ND_LC_NEW;
    case HX711_FAULT: return ND_LC_FAULT;
    case HX711_NO_NEW_SAMPLE: break;
    }
    return ND_LC_NONE;
}

/* Closed to GND at home: low while the carriage is on it. */
bool hal_home_switch(void) { return !board_gpio_get(PIN_HOME); }

/* The e-stop's NC contact to GND: high when pressed or when its wire is cut. */
bool sensors_estop_pressed(void) { return board_gpio_get(PIN_ESTOP); }

/* Wait, at boot only, for the first conversion (the HX711 settles ~400 ms after power-up
 * at 10 SPS, ~50 ms at 80): longer than the core's sensor watchdog allows a silent cell
 * (two periods), which would latch LOAD_CELL at boot. */
void sensors_init(void)
{
    int32_t raw;
    hx711_init(hal_time_us());
    board_gpio_input(PIN_HOME, BOARD_PULL_UP);
    board_gpio_input(PIN_ESTOP, BOARD_PULL_UP);
    for (;;) {
        const enum hx711_result r = hx711_poll(hal_time_us(), &raw);
        if (r == HX711_FAULT) return; /* the core latches LOAD_CELL: a wiring fault */
        if (r == HX711_NEW_SAMPLE) break; /* the next is 12.5 ms away: within the core's
                                             * two periods of its sensor watchdog */
    }
}
