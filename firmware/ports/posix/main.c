/* ports/posix: the firmware core as a Linux process on a pty, with the bench model as its
 * rig. Prints the pty's path as its first line (like `needlectl sim serve --pty`), then
 * runs the 1 kHz control tick on absolute deadlines, answering the host between ticks.
 *
 *   nd-firmware [--serial S] [--membrane-mm X] [--membrane-break-n F] [--block-mm X]
 *               [--thrust-n F] [--noise-mn N] [--seed N] [--start-mm X] [--watchdog-ms N]
 *
 * SIGTERM or SIGINT ends it; it prints its counters (and the longest tick) on stderr.
 * This file is the port: it may use libc. The core (../../core) uses none of it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../../bench/bench.h"
#include "../../core/nd_core.h"

#define TX_RING_BYTES 16384u
/* The most we let wait unread in the pty (its line discipline holds 4095 bytes). A host
 * that is not reading (none connected yet, or gone) then costs whole frames, dropped
 * here, never half a frame: pyserial flushes the pty when it opens it, and a frame cut
 * there would reach the next host as a bad chunk. 3 KiB is ~120 ms of 1 kHz telemetry. */
#define PTY_BACKLOG_MAX 3072
/* A process stopped for longer than this (a debugger, SIGSTOP) does not replay every
 * missed tick: it resynchronises, as a board's timer would after a brown-out. */
#define MAX_CATCH_UP_TICKS 200

static int master_fd = -1;
static int slave_fd = -1;
static struct timespec boot;
static volatile sig_atomic_t stopping = 0;
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

size_t hal_serial_read(uint8_t *buf, size_t max)
{
    const ssize_t n = read(master_fd, buf, max);
    return n > 0 ? (size_t)n : 0u; /* EAGAIN: nothing yet */
}

size_t hal_serial_tx_room(void)
{
    int queued = 0;
    if (ioctl(slave_fd, FIONREAD, &queued) != 0) queued = 0;
    if ((size_t)queued + tx.len >= PTY_BACKLOG_MAX) return 0;
    return TX_RING_BYTES - tx.len;
}

void hal_serial_write(const uint8_t *data, size_t n)
{
    size_t i, at = (tx.head + tx.len) % TX_RING_BYTES;
    for (i = 0; i < n; ++i) {
        tx.buf[at] = data[i];
        at = (at + 1u) % TX_RING_BYTES;
    }
    tx.len += n;
}

static void flush_tx(void)
{
    while (tx.len) {
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
    (void)sig;
    stopping = 1;
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
    static struct nd_board board = {
        "ND-POSIX-0001", 1, 150000, 40000, 20000, 120000, 200, 625, 9000, 50000,
    };
    struct nd_bench_config bench;
    struct termios raw;
    struct sigaction sa;
    struct nd_core_stats st;
    int i;
    uint64_t next_tick_us;
    nd_bench_defaults(&bench);

    for (i = 1; i < argc; ++i) {
        const char *opt = argv[i];
        double v;
        if (i + 1 >= argc) return usage("option needs a value", opt);
        if (strcmp(opt, "--serial") == 0) {
            if (strlen(argv[i + 1]) > sizeof board.serial_number)
                return usage("serial number longer than 16 characters", argv[i + 1]);
            memset(board.serial_number, 0, sizeof board.serial_number);
            memcpy(board.serial_number, argv[i + 1], strlen(argv[i + 1]));
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
    /* raw both ways (a fresh pty is in cooked mode: echo, 0x03 flushes queues); the slave
     * stays open here so a host can close and reopen the path without EIO on the master */
    tcgetattr(slave_fd, &raw);
    cfmakeraw(&raw);
    tcsetattr(slave_fd, TCSANOW, &raw);
    tcgetattr(master_fd, &raw);
    cfmakeraw(&raw);
    tcsetattr(master_fd, TCSANOW, &raw);
    fcntl(master_fd, F_SETFL, fcntl(master_fd, F_GETFL) | O_NONBLOCK);
    printf("%s\n", ptsname(master_fd));
    fflush(stdout);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    clock_gettime(CLOCK_MONOTONIC, &boot);
    nd_bench_init(&bench);
    nd_core_init(&board);
    next_tick_us = ND_TICK_US;
    while (!stopping) {
        uint64_t now = mono_us();
        struct pollfd pfd;
        struct timespec wait;
        int caught_up = 0;
        while (now >= next_tick_us) {
            nd_core_tick();
            next_tick_us += ND_TICK_US;
            if (++caught_up > MAX_CATCH_UP_TICKS) {
                next_tick_us = now + ND_TICK_US;
                break;
            }
        }
        flush_tx();
        now = mono_us();
        if (now >= next_tick_us) continue;
        /* sleep until the next tick or a byte from the host, whichever is first */
        pfd.fd = master_fd;
        pfd.events = POLLIN | (tx.len ? POLLOUT : 0);
        wait.tv_sec = 0;
        wait.tv_nsec = (long)(next_tick_us - now) * 1000L;
        if (ppoll(&pfd, 1, &wait, NULL) > 0 && (pfd.revents & POLLIN)) {
            nd_core_poll(); /* answer now: a reply does not wait for the tick */
            flush_tx();
        }
    }
    nd_core_stats(&st);
    fprintf(stderr,
            "nd-firmware: %u ticks, longest %u us; frames ok %u, bad %u; commands %u, "
            "replayed %u; samples %u; frames dropped (tx full) %u; watchdog trips %u\n",
            (unsigned)st.ticks, (unsigned)st.max_tick_us, (unsigned)st.frames_ok,
            (unsigned)st.frames_bad, (unsigned)st.commands_executed,
            (unsigned)st.replies_replayed, (unsigned)st.samples_sent,
            (unsigned)st.frames_dropped_tx, (unsigned)st.watchdog_trips);
    close(slave_fd);
    close(master_fd);
    return 0;
}
