/* device.h: the device's state, shared by the control tick (device.c) and the command
 * handlers (commands.c). One instance, in static storage: no heap. */
#ifndef ND_DEVICE_H
#define ND_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "axis.h"
#include "events.h"
#include "hal.h"
#include "link.h"
#include "load_cell.h"
#include "needle_protocol.h"
#include "reply_cache.h"

/* Estimates for a small lead-screw stage and a geared rotation stepper (the simulator's,
 * docs/simulator.md), in the axis units of axis.h. */
#define ND_ADVANCE_ACCEL_NM_TICK2 20   /* 20 000 µm/s² */
#define ND_ROTATE_ACCEL_UCDEG_TICK2 3600 /* 3 600 °/s² */
#define ND_UCDEG_PER_CDEG 10000
#define ND_UCDEG_TICK_PER_MRPM 6       /* 1 mrpm = 0.006 °/s = 6e-6 °/ms = 6 ucdeg/tick */
/* Motor count ahead of the encoder by this much means steps were lost, unless the board
 * says otherwise (board.stall_following_error_nm): a few encoder counts, so the cut-off
 * fires within ~10 ms at crossing speeds of >= 0.5 mm/s. */
#define ND_STALL_FOLLOWING_ERROR_NM 5000
#define ND_DEFAULT_STALL_TIME_MS 5u
/* Homing gives up (TRAVEL_LIMIT) after this much travel beyond the hard travel. */
#define ND_HOMING_MARGIN_NM 20000000
#define ND_FORCE_INVALID_MN INT32_MIN /* no valid load cell reading */
#define ND_DEPTH_INVALID_UM INT32_MIN /* no valid encoder reading */
#define ND_MAX_BATCH_SAMPLES 10u

struct nd_device {
    const struct nd_board *board;
    struct nd_axis adv; /* nm from depth 0 (the homing switch; before homing, boot) */
    struct nd_axis rot; /* ucdeg from the angle at boot */
    int64_t motor_origin_nm; /* the HAL's motor coordinate of depth 0 */
    int64_t enc_zero_nm;     /* the encoder's reading at depth 0 */
    int64_t osc_center_ucdeg;
    int64_t osc_amp_ucdeg; /* 0: not oscillating */
    int64_t homing_start_nm;
    int64_t limit_pos_nm; /* the soft depth limit, on the microstep at or below it */

    /* session and state */
    bool session_open;
    bool schema_ok;
    bool homed;
    bool homing;
    bool at_limit;
    bool wd_tripped;
    uint16_t latched; /* FaultFlags */
    uint8_t state;    /* DeviceState */
    uint8_t flags_base; /* SampleFlags but ADVANCING / ROTATING */

    /* limits in force */
    int32_t soft_depth_limit_um;
    int32_t force_limit_mn;
    int32_t stall_force_mn;
    uint16_t stall_time_ms;

    /* telemetry */
    uint16_t telemetry_rate_hz;
    uint16_t sample_acc;
    uint8_t batch_samples;
    uint8_t batch_count;
    uint32_t batch_first;
    uint32_t samples_sent;
    uint8_t batch[ND_MAX_BATCH_SAMPLES * ND_TELEMETRY_SAMPLE_BYTES];

    /* sensors as last read */
    int64_t depth_nm;
    int32_t depth_um;
    int32_t force_mn;     /* as reported: the load cell's whole filter chain */
    int32_t force_abs_mn; /* before its drift high-pass: the force limit and stall see it */
    uint32_t stall_ticks;
    bool adv_driver_stalled; /* hal_advance_driver_stalled() this tick */
    int64_t follow_motor0_nm;
    int64_t follow_enc0_nm;

    /* time: the control tick is the device's clock (samples exactly 1 ms apart); 64 bits,
     * as device_time_us on the wire: a 32-bit count wrapped after 49.7 days, turning time
     * back and tripping the watchdog (issue 17) */
    uint64_t ticks;
    uint64_t now_us;
    uint64_t last_host_us;
    uint64_t last_tx_us;
    uint32_t max_tick_us; /* the longest tick so far, measured with hal_time_us */
    uint64_t ticks_base;    /* hal_time_us() / ND_TICK_US at boot (nd_core_run_ticks) */
    uint32_t tick_overruns; /* ticks run a period or more late, or dropped */

    /* statistics */
    uint32_t commands_executed;
    uint32_t commands_naked;
    uint32_t replies_replayed;
    uint32_t watchdog_trips;

    /* the load cell (load_cell.h: tare and filters; here its watchdog and statistics) */
    struct nd_lc_chain lc;
    int32_t lc_last_mn;     /* the last raw conversion */
    uint16_t lc_same_count; /* conversions in a row equal to it (a stuck amplifier) */
    bool lc_fresh_unsent;   /* a conversion no telemetry sample has carried yet */
    uint8_t lc_fault;       /* LoadCellFault: why LOAD_CELL latched */
    uint64_t lc_fresh_us;   /* device time of the last conversion */
    uint32_t lc_timeout_us; /* two nominal periods */
    uint64_t lc_window_us;  /* the measured rate: conversions counted per second */
    uint16_t lc_window_count;
    uint16_t lc_rate_hz;
    uint32_t lc_samples;
    uint32_t lc_stale_samples;
    uint32_t lc_saturated;

    /* the tick in progress (between nd_core_tick_move and nd_core_tick_sense) */
    uint64_t tick_t0_us;
    bool adv_was_active;
    bool rot_was_active;

    struct nd_events events;
    struct nd_reply_cache cache;
    struct nd_link link;
};

/* The device the core is running: one on a board; a host that runs several in one
 * process (the simulator, ports/sim) points this at each in turn. */
extern struct nd_device *nd_current;
#define nd_dev (*nd_current)

/* device.c */
/* Boot: the state zeroed, the limits the board's, the sensors read, BOOT logged; each
 * valid frame the link completes goes to on_frame (the command handlers: core.c wires
 * them, so that this file needs nothing of commands.c). */
void nd_dev_init(const struct nd_board *board, nd_frame_handler on_frame);
void nd_dev_send(uint8_t msg_id, uint8_t flags, uint16_t seq, const uint8_t *payload,
                 size_t len);
void nd_dev_event(uint8_t code, int32_t value);
void nd_dev_update_state(void);
void nd_dev_latch(uint16_t fault, uint8_t code, int32_t value);
void nd_dev_stop_advance(void);
void nd_dev_set_limit_pos(void);
void nd_dev_flush_batch(void);
void nd_dev_home_found(void);
/* The sensor watchdog's clock restarted: ticks were skipped in which the port knew that
 * nothing happens (the simulator's idle skip), the load cell's conversions with them. */
void nd_dev_lc_resync(void);
void nd_dev_begin_follow(void);
uint8_t nd_dev_flags(void);
int32_t nd_um_from_nm(int64_t nm);
int32_t nd_cdeg_from_ucdeg(int64_t ucdeg);
int64_t nd_floor_div(int64_t a, int64_t b);


#endif
