/* hx711.h: the HX711 load-cell amplifier (channel A, gain 128) read without blocking the
 * tick: a state machine polled once per tick that yields a sample only when a conversion
 * has completed (DOUT low), and a fault when none came for HX711_TIMEOUT_US. */
#ifndef ND_HX711_H
#define ND_HX711_H

#include <stdint.h>

#define HX711_SPS 80u /* RATE pin high; 10 SPS with it low */
#define HX711_TIMEOUT_US (5u * 1000000u / HX711_SPS) /* five conversions missed */
/* Calibration of the bench's cell: counts per mN at gain 128 (a 2 mV/V cell at 4.3 V
 * excitation would be ~72; this one saturates at ±52.4 N, just past the 50 N rail). */
#define HX711_COUNTS_PER_MN 160

enum hx711_result { HX711_NO_NEW_SAMPLE, HX711_NEW_SAMPLE, HX711_FAULT };

void hx711_init(uint64_t now_us);
/* Once per tick. NEW_SAMPLE: *raw holds the conversion (sign-extended 24 bits). */
enum hx711_result hx711_poll(uint64_t now_us, int32_t *raw);

#endif /* ND_HX711_H */
