/* sensors.c: the HAL's load cell (the HX711 in newtons' units), the home switch, the
 * e-stop input. */
#include <stdbool.h>

#include "board.h"
#include "hal.h"
#include "hx711.h"

static int32_t force_mn;
static bool force_valid;

/* The HAL of today asks for a reading every tick: between conversions the last one is
 * held (12 ticks at 80 SPS); a timeout or a saturated conversion is no valid reading.
 * Issue 18's HAL (new sample / no new sample / fault) maps onto hx711_poll one to one. */
bool hal_load_cell_read_mn(int32_t *out_mn)
{
    int32_t raw;
    switch (hx711_poll(hal_time_us(), &raw)) {
    case HX711_NEW_SAMPLE:
        /* 0x7FFFFF / 0x800000: the amplifier at its rail */
        force_valid = raw != 0x7FFFFF && raw != -0x800000;
        force_mn = raw / HX711_COUNTS_PER_MN;
        break;
    case HX711_FAULT: force_valid = false; break;
    case HX711_NO_NEW_SAMPLE: break;
    }
    *out_mn = force_mn;
    return force_valid;
}

/* Closed to GND at home: low while the carriage is on it. */
bool hal_home_switch(void) { return !board_gpio_get(PIN_HOME); }

/* The e-stop's NC contact to GND: high when pressed or when its wire is cut. */
bool sensors_estop_pressed(void) { return board_gpio_get(PIN_ESTOP); }

/* Wait, at boot only, for the first conversion (the HX711 settles ~400 ms after power-up
 * at 10 SPS, ~50 ms at 80): the core reads the sensors in nd_core_init and a load cell
 * with no reading yet would latch LOAD_CELL at once. */
void sensors_init(void)
{
    int32_t raw;
    hx711_init(hal_time_us());
    board_gpio_input(PIN_HOME, BOARD_PULL_UP);
    board_gpio_input(PIN_ESTOP, BOARD_PULL_UP);
    for (;;) {
        const enum hx711_result r = hx711_poll(hal_time_us(), &raw);
        if (r == HX711_FAULT) return; /* the core latches LOAD_CELL: a wiring fault */
        if (r == HX711_NEW_SAMPLE) break;
    }
    force_valid = raw != 0x7FFFFF && raw != -0x800000;
    force_mn = raw / HX711_COUNTS_PER_MN;
}
