/* load_cell.c: see load_cell.h. */
#include "load_cell.h"

#define ONE_Q30 ((int64_t)1 << 30)
#define PI_Q30 INT64_C(3373259426)     /* π · 2^30 */
#define TWO_PI_Q30 INT64_C(6746518852) /* 2π · 2^30 */
#define Q12 4096
#define Q8 256

/* cos(x), x in [0, π] as Q30, by its Taylor series to x^12 on [0, π/2] (error < 1e-7)
 * and cos(x) = −cos(π − x) above: configuration only, never per sample. */
static int64_t cos_q30(int64_t x)
{
    int64_t x2, term = ONE_Q30, sum = ONE_Q30;
    int k;
    if (x > PI_Q30 / 2) return -cos_q30(PI_Q30 - x);
    x2 = x * x / ONE_Q30;
    for (k = 1; k <= 6; ++k) {
        term = -(term * x2 / ONE_Q30) / ((2 * k - 1) * (2 * k));
        sum += term;
    }
    return sum;
}

/* The coefficient of a first-order filter with corner fc at rate fs: w/(1+w), w = 2π·fc/fs
 * (the backward-Euler discretisation of an RC stage). fc in mHz. */
static int64_t alpha_q30(uint32_t fc_mhz, uint16_t fs_hz)
{
    const int64_t w_num = TWO_PI_Q30 * (int64_t)fc_mhz; /* w · 2^30 · 1000 · fs */
    return w_num / ((int64_t)1000 * fs_hz + w_num / ONE_Q30);
}

static int64_t round_shift(int64_t v, int64_t unit)
{
    return (v >= 0 ? v + unit / 2 : v - unit / 2) / unit;
}

static int32_t clip_mn(int64_t x)
{
    return x > INT32_MAX ? INT32_MAX : x < INT32_MIN + 1 ? INT32_MIN + 1 : (int32_t)x;
}

/* Every filter's state as if its input had been x for ever. */
static void prime(struct nd_lc_chain *c, int32_t x_mn)
{
    c->absolute_mn = x_mn;
    c->out_mn = c->hp_alpha_q30 ? 0 : x_mn; /* the high-pass passes no DC */
    c->hp_base_q12 = (int64_t)x_mn * Q12;
    c->nx1 = c->nx2 = c->ny1 = c->ny2 = (int64_t)x_mn * Q8;
    c->lp_q12 = (int64_t)x_mn * Q12;
}

void nd_lc_init(struct nd_lc_chain *c, uint16_t sample_hz, int32_t first_raw_mn)
{
    unsigned i;
    c->sample_hz = sample_hz ? sample_hz : 1000u;
    c->drift_corner_mhz = 0;
    c->notch_hz = 0;
    c->lowpass_hz = 0;
    c->hp_alpha_q30 = c->lp_alpha_q30 = 0;
    c->nb0_q30 = c->nb1_q30 = c->na1_q30 = c->na2_q30 = 0;
    c->offset_mn = 0;
    c->out_mn = first_raw_mn;
    c->absolute_mn = first_raw_mn;
    c->last_raw_mn = first_raw_mn;
    for (i = 0; i < ND_LC_TARE_SAMPLES; ++i) c->history_mn[i] = first_raw_mn;
    c->history_n = 1;
    c->history_at = 1;
    prime(c, first_raw_mn);
}

bool nd_lc_configure(struct nd_lc_chain *c, uint32_t drift_corner_mhz, uint8_t notch_hz,
                     uint16_t lowpass_hz)
{
    const uint32_t fs = c->sample_hz;
    /* each frequency below Nyquist: a 50 Hz notch needs more than 100 samples/s */
    if ((uint64_t)drift_corner_mhz * 2u >= (uint64_t)fs * 1000u || 2u * notch_hz >= fs ||
        2u * (uint32_t)lowpass_hz >= fs)
        return false;
    c->drift_corner_mhz = drift_corner_mhz;
    c->notch_hz = notch_hz;
    c->lowpass_hz = lowpass_hz;
    c->hp_alpha_q30 = drift_corner_mhz ? alpha_q30(drift_corner_mhz, c->sample_hz) : 0;
    c->lp_alpha_q30 = lowpass_hz ? alpha_q30((uint32_t)lowpass_hz * 1000u, c->sample_hz) : 0;
    if (notch_hz) {
        /* H(z) = g(1 − 2cos·z⁻¹ + z⁻²) / (1 − 2r·cos·z⁻¹ + r²z⁻²): zeros on the unit
         * circle at f0, poles at radius r = 1 − π·(f0/4)/fs (a −3 dB width of about
         * f0/4), g for unity gain at DC */
        const int64_t w = TWO_PI_Q30 * notch_hz / (int64_t)fs;
        const int64_t cs = cos_q30(w);
        const int64_t r = ONE_Q30 - PI_Q30 * notch_hz / 4 / (int64_t)fs;
        const int64_t rc = r * cs / ONE_Q30, r2 = r * r / ONE_Q30;
        const int64_t g = (ONE_Q30 - 2 * rc + r2) * ONE_Q30 / (2 * ONE_Q30 - 2 * cs);
        c->nb0_q30 = g;
        c->nb1_q30 = -2 * (g * cs / ONE_Q30);
        c->na1_q30 = -2 * rc;
        c->na2_q30 = r2;
    }
    prime(c, c->last_raw_mn - c->offset_mn);
    return true;
}

void nd_lc_tare(struct nd_lc_chain *c)
{
    int64_t sum = 0;
    unsigned i;
    for (i = 0; i < c->history_n; ++i) sum += c->history_mn[i];
    c->offset_mn = (int32_t)round_shift(sum, c->history_n);
    prime(c, c->last_raw_mn - c->offset_mn);
}

int32_t nd_lc_output(const struct nd_lc_chain *c) { return c->out_mn; }

int32_t nd_lc_absolute(const struct nd_lc_chain *c) { return c->absolute_mn; }

int32_t nd_lc_filter(struct nd_lc_chain *c, int32_t raw_mn)
{
    int64_t x, y;
    c->last_raw_mn = raw_mn;
    c->history_mn[c->history_at] = raw_mn;
    c->history_at = (uint8_t)((c->history_at + 1u) % ND_LC_TARE_SAMPLES);
    if (c->history_n < ND_LC_TARE_SAMPLES) c->history_n++;
#ifdef ND_DEFECT_TARE_IGNORED
    x = raw_mn; /* mutant: the tare offset is never subtracted */
#else
    x = (int64_t)raw_mn - c->offset_mn;
#endif
    if (c->notch_hz) {
        const int64_t in = x * Q8;
        y = (c->nb0_q30 * (in + c->nx2) + c->nb1_q30 * c->nx1 - c->na1_q30 * c->ny1 -
             c->na2_q30 * c->ny2) / ONE_Q30;
        c->nx2 = c->nx1;
        c->nx1 = in;
        c->ny2 = c->ny1;
        c->ny1 = y;
        x = round_shift(y, Q8);
    }
    if (c->lp_alpha_q30) {
        c->lp_q12 += (x * Q12 - c->lp_q12) * c->lp_alpha_q30 / ONE_Q30;
        x = round_shift(c->lp_q12, Q12);
    }
    /* the force before the drift stage: what the force limit also sees, so that the
     * continuous tare never hides a steady force (Klipper's force_safety_limit, kept
     * against the reference tare for the same reason) */
    c->absolute_mn = clip_mn(x);
    if (c->hp_alpha_q30) { /* last: the stages are linear, the order only decides
                              * what absolute_mn is */
        /* continuous tare: a baseline that follows slow drift, subtracted */
        c->hp_base_q12 += (x * Q12 - c->hp_base_q12) * c->hp_alpha_q30 / ONE_Q30;
#ifndef ND_DEFECT_DRIFT_FILTER_OFF /* mutant: the baseline is tracked, never subtracted */
        x -= round_shift(c->hp_base_q12, Q12);
#endif
    }
    c->out_mn = clip_mn(x);
    return c->out_mn;
}
