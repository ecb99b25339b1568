/* ports/posix: the firmware core as a Linux process on a pty, with the bench model as its
 * rig. Prints the pty's path as its first line (like `needlectl sim serve --pty`), then
 * runs the 1 kHz control tick on absolute deadlines, answering the host between ticks.
 *
 *   nd-firmware [--serial S] [--membrane-mm X] [--membrane-break-n F] [--block-mm X]
 *               [--thrust-n F] [--noise-mn N] [--seed N] [--start-mm X] [--watchdog-ms N]
 *               [--lc-sample-hz N] [--lc-rail-n F] [--lc-silent-backward-rpm R]
 *               [--fault KIND --fault-at-ms T [--fault-param P]]
 *
 * --fault schedules one fault in the bench's HAL hooks (faults/fault_hooks.h: the
 * single-fault campaign's, the same as the simulator's): loadcell_stuck,
 * loadcell_disconnected, loadcell_saturated, loadcell_drift (P mN/s), encoder_lost,
 * encoder_jump (P nm), motor_stalled, driver_disabled, tick_overrun (P ms: the loop
 * sleeps that long once). SIGUSR1 resets the device where it stands (the core boots
 * again: unhomed, no session; the bench and the pty stay).
 *
 * SIGTERM or SIGINT ends it; it prints its counters (and the longest tick) on stderr.
 * SIGUSR2 hangs its main loop (a test of the watchdog below: no tick completes, so the
 * emulated MCU watchdog resets the core into its boot state — the process and its pty
 * stay, as a board and its USB-serial adapter would).
 * This file is the port: it may use libc. The core (../../core) uses none of it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../../bench/bench.h"
#include "../../core/nd_core.h"

/* Bytes waiting for a slow host, on top of the pty's own ~17 KiB: together ~1.3 s of 1 kHz
 * telemetry before frames are dropped (whole frames: the core checks the room first). */
#define TX_RING_BYTES 16384u

static int master_fd = -1;
/* A host holds the pty open. Without one the device "sends" into the void, as a UART with
 * no cable does: nothing is queued for a host that comes later, so a new host never gets
 * half a frame (pyserial flushes what is queued when it opens the port, mid-frame or not). */
static int host_connected = 0;
static struct timespec boot;
static volatile sig_atomic_t stopping = 0;
static volatile sig_atomic_t hung = 0;      /* SIGUSR2: the main loop hangs */
static volatile sig_atomic_t resetting = 0; /* SIGUSR1: the device resets */
/* The emulated MCU watchdog: an interval timer re-armed by every kick; SIGALRM jumps back
 * to boot (the core state is all re-initialised there, as a reset would). */
static sigjmp_buf reset_point;
static uint32_t watchdog_timeout_ms;
static unsigned watchdog_resets;
/* --fault's names, in enum nd_fault_kind's order */
static const char *const fault_names[ND_FAULT_KINDS] = {
    "none", "loadcell_stuck", "loadcell_disconnected", "loadcell_saturated", "loadcell_drift",
    "encoder_lost", "encoder_jump", "motor_stalled", "driver_disabled", "tick_overrun",
};
static struct {
    uint8_t buf[TX_RING_BYTES];
    size_t head, len; /* bytes at head .. head+len (mod size) wait to be written */
} tx;

static uint64_t mono_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)(t.tv_sec - boot.tv_sec) * 1000000u + (uint64_t)(t.tv_nsec / 1000) -
           (uint64_t)(boot.tv_nsec / 1000);
}

uint64_t hal_time_us(void) { return mono_us(); }

static void on_watchdog(int sig)
{
    (void)sig;
    siglongjmp(reset_point, 1);
}

void hal_watchdog_start(uint32_t timeout_ms)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_watchdog;
    sigaction(SIGALRM, &sa, NULL);
    watchdog_timeout_ms = timeout_ms;
    hal_watchdog_kick();
}

void hal_watchdog_kick(void)
{
    struct itimerval t;
    memset(&t, 0, sizeof t);
    t.it_value.tv_sec = (time_t)(watchdog_timeout_ms / 1000u);
    t.it_value.tv_usec = (suseconds_t)(watchdog_timeout_ms % 1000u) * 1000;
    setitimer(ITIMER_REAL, &t, NULL);
}

size_t hal_serial_read(uint8_t *buf, size_t max)
{
    ssize_t n;
    if (!host_connected) return 0u;
    n = read(master_fd, buf, max);
    return n > 0 ? (size_t)n : 0u; /* EAGAIN: nothing yet; EIO: the host just left */
}

size_t hal_serial_tx_room(void) { return TX_RING_BYTES - tx.len; }

void hal_serial_write(const uint8_t *data, size_t n)
{
    size_t i, at = (tx.head + tx.len) % TX_RING_BYTES;
    if (!host_connected) return; /* no cable: the bytes go nowhere */
    for (i = 0; i < n; ++i) {
        tx.buf[at] = data[i];
        at = (at + 1u) % TX_RING_BYTES;
    }
    tx.len += n;
}

/* Is a host holding the pty open? (the master reports POLLHUP while no one does) */
static void check_host(void)
{
    struct pollfd pfd;
    int connected;
    pfd.fd = master_fd;
    pfd.events = 0;
    pfd.revents = 0;
    connected = !(poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLHUP));
    if (!connected) tx.len = 0; /* the host left: what it did not read is gone with it */
    host_connected = connected;
}

static void flush_tx(void)
{
    while (host_connected && tx.len) {
        size_t chunk = TX_RING_BYTES - tx.head;
        ssize_t n;
        if (chunk > tx.len) chunk = tx.len;
        n = write(master_fd, tx.buf + tx.head, chunk);
        if (n <= 0) return; /* the pty is full (no reader yet): try again next time */
        tx.head = (tx.head + (size_t)n) % TX_RING_BYTES;
        tx.len -= (size_t)n;
    }
}

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        resetting = 1;
    else
        stopping = 1;
}

static void on_hang(int sig)
{
    (void)sig;
    hung = 1;
}

static int usage(const char *msg, const char *arg)
{
    fprintf(stderr, "nd-firmware: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    return 2;
}

static int number(const char *text, double lo, double hi, double *out)
{
    char *end = NULL;
    double v;
    errno = 0;
    v = strtod(text, &end);
    if (errno || end == text || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int main(int argc, char **argv)
{
    static struct nd_board board;
    struct nd_bench_config bench;
    struct termios raw;
    struct sigaction sa;
    struct nd_core_stats st;
    int slave_fd, i;
    uint8_t fault_kind = ND_FAULT_NONE;
    double fault_at_ms = 0.0, fault_param = 0.0;
    nd_bench_defaults(&bench);
    nd_bench_board(&board, &bench, "ND-POSIX-0001");

    for (i = 1; i < argc; ++i) {
        const char *opt = argv[i];
        double v;
        if (i + 1 >= argc) return usage("option needs a value", opt);
        if (strcmp(opt, "--serial") == 0) {
            if (strlen(argv[i + 1]) > sizeof board.serial_number)
                return usage("serial number longer than 16 characters", argv[i + 1]);
            memset(board.serial_number, 0, sizeof board.serial_number);
            memcpy(board.serial_number, argv[i + 1], strlen(argv[i + 1]));
        } else if (strcmp(opt, "--fault") == 0) {
            for (fault_kind = 1; fault_kind < ND_FAULT_KINDS; ++fault_kind)
                if (strcmp(argv[i + 1], fault_names[fault_kind]) == 0) break;
            if (fault_kind == ND_FAULT_KINDS) return usage("unknown fault", argv[i + 1]);
        } else if (!number(argv[i + 1], -1e6, 1e9, &v)) {
            return usage("not a number in range", argv[i + 1]);
        } else if (strcmp(opt, "--membrane-mm") == 0) {
            bench.membrane_depth_nm = (int64_t)(v * 1e6);
        } else if (strcmp(opt, "--membrane-break-n") == 0) {
            bench.membrane_break_mn = (int32_t)(v * 1e3);
        } else if (strcmp(opt, "--block-mm") == 0) {
            bench.block_depth_nm = (int64_t)(v * 1e6);
        } else if (strcmp(opt, "--thrust-n") == 0) {
            bench.thrust_mn = (int32_t)(v * 1e3);
        } else if (strcmp(opt, "--noise-mn") == 0) {
            bench.noise_mn = (int32_t)v;
        } else if (strcmp(opt, "--seed") == 0) {
            bench.seed = (uint32_t)v;
        } else if (strcmp(opt, "--start-mm") == 0) {
            bench.start_depth_nm = (int64_t)(v * 1e6);
        } else if (strcmp(opt, "--fault-at-ms") == 0) {
            fault_at_ms = v;
        } else if (strcmp(opt, "--fault-param") == 0) {
            fault_param = v;
        } else if (strcmp(opt, "--lc-sample-hz") == 0) {
            if (v < 1 || v > 1000) return usage("load cell rate out of 1..1000 Hz", argv[i + 1]);
            bench.lc_sample_hz = (uint16_t)v;
            board.load_cell_sample_hz = bench.lc_sample_hz;
        } else if (strcmp(opt, "--lc-rail-n") == 0) {
            if (v < 0.001 || v > 2e6) return usage("load cell rail out of range", argv[i + 1]);
            bench.rail_mn = (int32_t)(v * 1e3);
            board.load_cell_rail_mn = bench.rail_mn;
        } else if (strcmp(opt, "--lc-silent-backward-rpm") == 0) {
            if (v < 0 || v > 1e6) return usage("slip ring rate out of range", argv[i + 1]);
            bench.lc_silent_backward_mrpm = (int32_t)(v * 1e3); /* 0: never silent */
        } else if (strcmp(opt, "--watchdog-ms") == 0) {
            if (v < 1 || v > 65535) return usage("watchdog out of 1..65535 ms", argv[i + 1]);
            board.watchdog_ms = (uint16_t)v;
        } else {
            return usage("unknown option", opt);
        }
        ++i;
    }

    if (openpty(&master_fd, &slave_fd, NULL, NULL, NULL) != 0) {
        perror("nd-firmware: openpty");
        return 1;
    }
    /* raw both ways (a fresh pty is in cooked mode: echo, 0x03 flushes queues; the
     * settings stay with the pty); then the slave is the host's alone: the master's
     * POLLHUP says whether one holds it open */
    tcgetattr(slave_fd, &raw);
    cfmakeraw(&raw);
    tcsetattr(slave_fd, TCSANOW, &raw);
    tcgetattr(master_fd, &raw);
    cfmakeraw(&raw);
    tcsetattr(master_fd, TCSANOW, &raw);
    close(slave_fd);
    fcntl(master_fd, F_SETFL, fcntl(master_fd, F_GETFL) | O_NONBLOCK);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_hang;
    sigaction(SIGUSR2, &sa, NULL);

    /* the pty named only now: a caller may stop the port as soon as it has read it, and a
     * SIGTERM before the handlers were set ended it without its counters */
    printf("%s\n", ptsname(master_fd));
    fflush(stdout);

    clock_gettime(CLOCK_MONOTONIC, &boot);
    nd_bench_init(&bench);
    nd_fault_arm(&nd_bench_fault, fault_kind, (uint64_t)(fault_at_ms * 1000.0),
                 (int64_t)fault_param);
    if (sigsetjmp(reset_point, 1)) {
        /* the watchdog fired: the MCU resets, the rig stays where it is; what the UART
         * had queued is lost with it */
        ++watchdog_resets;
        fprintf(stderr, "nd-firmware: watchdog reset: no control tick for %u ms\n",
                (unsigned)watchdog_timeout_ms);
        hung = 0;
        tx.len = 0;
        nd_bench_mcu_reset();
    }
    nd_core_init(&board);
    while (!stopping) {
        uint64_t now, next;
        struct pollfd pfd;
        struct timespec wait;
        uint32_t late_ms;
        while (hung) pause(); /* a hung loop: only the watchdog gets it out */
        late_ms = nd_fault_overrun_ms(&nd_bench_fault, mono_us());
        if (late_ms) { /* the loop late, for real: nothing runs meanwhile */
            wait.tv_sec = (time_t)(late_ms / 1000u);
            wait.tv_nsec = (long)(late_ms % 1000u) * 1000000L;
            nanosleep(&wait, NULL);
        }
        if (resetting) { /* the core boots again; the bench (the rig) stays as it is */
            resetting = 0;
            tx.len = 0;
            nd_bench_mcu_reset();
            nd_core_init(&board);
        }
        nd_core_run_ticks();
        check_host();
        flush_tx();
        now = mono_us();
        next = nd_core_next_tick_us();
        if (now >= next) continue;
        wait.tv_sec = 0;
        wait.tv_nsec = (long)(next - now) * 1000L;
        if (!host_connected) {
            /* POLLHUP would wake ppoll at once: just sleep to the tick */
            nanosleep(&wait, NULL);
            continue;
        }
        /* sleep until the next tick or a byte from the host, whichever is first */
        pfd.fd = master_fd;
        pfd.events = POLLIN | (tx.len ? POLLOUT : 0);
        if (ppoll(&pfd, 1, &wait, NULL) > 0 && (pfd.revents & POLLIN)) {
            nd_core_poll(); /* answer now: a reply does not wait for the tick */
            flush_tx();
        }
    }
    signal(SIGALRM, SIG_IGN); /* exiting: no reset now */
    nd_core_stats(&st);
    fprintf(stderr,
            "nd-firmware: %u ticks, longest %u us; frames ok %u, bad %u; commands %u, "
            "replayed %u; samples %u; frames dropped (tx full) %u; watchdog trips %u; "
            "ticks late or dropped %u; watchdog resets %u\n",
            (unsigned)st.ticks, (unsigned)st.max_tick_us, (unsigned)st.frames_ok,
            (unsigned)st.frames_bad, (unsigned)st.commands_executed,
            (unsigned)st.replies_replayed, (unsigned)st.samples_sent,
            (unsigned)st.frames_dropped_tx, (unsigned)st.watchdog_trips,
            (unsigned)st.tick_overruns, watchdog_resets);
    close(master_fd);
    return 0;
}
