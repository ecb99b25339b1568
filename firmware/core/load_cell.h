/* load_cell.h: the load cell's signal chain, one fresh conversion at a time, in integers
 * (the core has no floating point): tare offset, drift high-pass (Klipper's "continuous
 * tare"), mains notch, low-pass. Each filter is off until SET_LOAD_CELL turns it on. The
 * drift stage runs last, so the force before it (tared, notched, low-passed: "absolute")
 * is there for the force limit, which a continuous tare must never blind.
 *
 * Fixed point: first-order filters keep their state in mN * 2^12 with coefficients in
 * Q30 (the product of the largest difference, 2^17 mN * 2^12, and a coefficient stays
 * below 2^63); the notch is a biquad on mN * 2^8 with Q30 coefficients. Coefficients are
 * computed when the chain is configured (an integer cosine), never per sample. */
#ifndef ND_LOAD_CELL_H
#define ND_LOAD_CELL_H

#include <stdbool.h>
#include <stdint.h>

#define ND_LC_TARE_SAMPLES 8u /* a tare is the mean of this many raw conversions */

struct nd_lc_chain {
    uint16_t sample_hz; /* the nominal conversion rate the coefficients are for */
    /* configuration (0 = off), as SET_LOAD_CELL gave it */
    uint32_t drift_corner_mhz;
    uint8_t notch_hz;
    uint16_t lowpass_hz;
    /* coefficients */
    int64_t hp_alpha_q30;
    int64_t lp_alpha_q30;
    int64_t nb0_q30, nb1_q30, na1_q30, na2_q30;
    /* state */
    int32_t offset_mn;
    int32_t last_raw_mn;
    int32_t out_mn;      /* the chain's output for the last conversion */
    int32_t absolute_mn; /* the same before the drift stage */
    int64_t hp_base_q12;
    int64_t lp_q12;
    int64_t nx1, nx2, ny1, ny2; /* mN * 2^8 */
    int32_t history_mn[ND_LC_TARE_SAMPLES];
    uint8_t history_n;
    uint8_t history_at;
};

void nd_lc_init(struct nd_lc_chain *c, uint16_t sample_hz, int32_t first_raw_mn);
/* Set the filters (0 = off); false if a frequency is not below half the sample rate (the
 * chain is left as it was). The filters restart in their steady state for the last
 * input: enabling the drift high-pass is itself a tare. */
bool nd_lc_configure(struct nd_lc_chain *c, uint32_t drift_corner_mhz, uint8_t notch_hz,
                     uint16_t lowpass_hz);
/* Zero here: the offset becomes the mean of the last conversions; the filters restart. */
void nd_lc_tare(struct nd_lc_chain *c);
/* The filtered force now (after a tare or a new configuration: at once, no new sample). */
int32_t nd_lc_output(const struct nd_lc_chain *c);
/* The force before the drift high-pass (= nd_lc_output while it is off). */
int32_t nd_lc_absolute(const struct nd_lc_chain *c);
/* One fresh raw conversion in, the filtered force out. */
int32_t nd_lc_filter(struct nd_lc_chain *c, int32_t raw_mn);

#endif /* ND_LOAD_CELL_H */
