/* bench_link.c: the bench model (firmware/bench: the one description of the bench, the
 * posix and Cortex-M3 ports' too) for the rp2040js harness, which has no C of its own.
 * A host process; the harness sends it, once per emulated millisecond, the motor
 * position its STEP/DIR edges add up to and gets back what the rig's sensors show.
 *
 *   nd-bench-link [--membrane-mm X] [--block-mm X] [--thrust-n F] [--noise-mn N]
 *                 [--seed N] [--start-mm X]
 *
 * Requests on stdin, replies on stdout, little-endian, fixed size:
 *   request  int64 motor_nm (from boot), int64 angle_ucdeg
 *   reply    int64 encoder_nm (from boot), int32 force_mn (with noise), uint8 force_valid,
 *            uint8 home, uint8 steps_lost (the load beat the thrust: the TMC2209's DIAG),
 *            1 byte padding
 * A request with the advance motor where the last one left it is a read of the sensors
 * only (the harness asks at every HX711 conversion, and every 250 µs while a motor
 * steps): the bench is not told the motor again, so its force stays what the last
 * motion made it, with a fresh draw of the noise, and no steps are lost. The bench reads
 * a command equal to the last as a motor at rest; told so between two microsteps of a
 * slow advance (one every 1.25 ms at 0.5 mm/s), the punctured septum's grip turned
 * against a needle still going forward: -0.3 N on every conversion, which the
 * procedure's drift watch rightly takes for a failing cell.
 * End of stdin (the harness gone) ends it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../bench/bench.h"

struct request {
    int64_t motor_nm;
    int64_t angle_ucdeg;
};
struct reply {
    int64_t encoder_nm;
    int32_t force_mn;
    uint8_t force_valid;
    uint8_t home;
    uint8_t steps_lost;
    uint8_t pad;
};

static int option(const char *name, const char *value, struct nd_bench_config *c)
{
    const double v = atof(value);
    if (!strcmp(name, "--membrane-mm")) c->membrane_depth_nm = (int64_t)(v * 1e6);
    else if (!strcmp(name, "--membrane-break-n")) c->membrane_break_mn = (int32_t)(v * 1e3);
    else if (!strcmp(name, "--block-mm")) c->block_depth_nm = (int64_t)(v * 1e6);
    else if (!strcmp(name, "--thrust-n")) c->thrust_mn = (int32_t)(v * 1e3);
    else if (!strcmp(name, "--noise-mn")) c->noise_mn = (int32_t)v;
    else if (!strcmp(name, "--seed")) c->seed = (uint32_t)v;
    else if (!strcmp(name, "--start-mm")) c->start_depth_nm = (int64_t)(v * 1e6);
    else return 0;
    return 1;
}

int main(int argc, char **argv)
{
    struct nd_bench_config cfg;
    struct request rq;
    struct reply rp;
    int64_t last_motor_nm = 0;
    int told = 0;
    int i;
    nd_bench_defaults(&cfg);
    for (i = 1; i + 1 < argc; i += 2) {
        if (!option(argv[i], argv[i + 1], &cfg)) {
            fprintf(stderr, "nd-bench-link: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (i < argc) {
        fprintf(stderr, "nd-bench-link: option needs a value: %s\n", argv[i]);
        return 2;
    }
    /* the harness's HX711 converts at its own 80 SPS: the bench gives the force each time
     * it is asked (a conversion per call), not at a rate of its own */
    cfg.lc_sample_hz = 1000;
    nd_bench_init(&cfg);
    memset(&rp, 0, sizeof rp);
    while (fread(&rq, sizeof rq, 1, stdin) == 1) {
        int32_t f = rp.force_mn; /* none converted (the bench's slip ring): the last held */
        enum nd_lc_read r;
        const int stepped = !told || rq.motor_nm != last_motor_nm;
        if (stepped) hal_advance_command_nm(rq.motor_nm);
        told = 1;
        last_motor_nm = rq.motor_nm;
        hal_rotate_command_ucdeg(rq.angle_ucdeg);
        (void)hal_encoder_read_nm(&rp.encoder_nm);
        r = hal_load_cell_read_mn(&f);
        rp.force_valid = r != ND_LC_FAULT ? 1u : 0u;
        rp.force_mn = f;
        rp.home = hal_home_switch() ? 1u : 0u;
        rp.steps_lost = stepped && nd_bench_steps_lost() ? 1u : 0u; /* no step, none lost */
        if (fwrite(&rp, sizeof rp, 1, stdout) != 1 || fflush(stdout) != 0) return 0;
    }
    return 0;
}
