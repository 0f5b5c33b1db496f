/*
 * Copyright (c) 2026 The Kairo developers.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License");
 * you may not use this file except in compliance with the License.
 * You may obtain a copy of the License at:
 *
 *     http://www.apache.org/licenses/LICENSE-2.0
 *
 * Unless required by applicable law or agreed to in writing, software
 * distributed under the License is distributed on an "AS IS" BASIS,
 * WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 * See the License for the specific language governing permissions and
 * limitations under the License.
 */

/* kairo-mc-load: a load generator for memcached over UDP or TCP.
 *
 * It sends ASCII "get" and "set" requests.  Over UDP ('--protocol=udp', the
 * default), each request is one datagram behind the 8-byte memcached UDP
 * frame header (request id, sequence 0, total 1, reserved 0), and replies
 * are matched by request id and source address.  A reply may be cut into
 * several datagrams (numbered by sequence and total), which are
 * reassembled; a multi-key get may be answered by several such messages
 * (memcached 1.6 sends one per hit), so a get completes on "END".
 *
 * Over TCP ('--protocol=tcp', for memcached or a proxy such as twemproxy),
 * each thread keeps one connection per server and pipelines the same
 * commands on it, without a frame header, through a bounded output buffer.
 * Replies arrive in request order, so they are matched to the requests in
 * flight on their connection first in, first out, and parsed from the front
 * of the byte stream as they become complete.  A request that times out, or
 * a reply that does not parse, leaves the rest of the stream unmatched, so
 * the connection is then closed, every request still in flight on it counts
 * as timed out, and it is reopened before its next request.  A server that
 * cannot be connected to, or that closes or resets a connection, ends the
 * program with an error.
 *
 * Open loop ('--rate=N', the default): every request has a scheduled send
 * time on a fixed grid, and its latency is measured from that time, not
 * from when it was actually sent.  A sender that falls behind, or a server
 * that stalls, therefore shows up in the percentiles instead of silently
 * slowing the offered load ("coordinated omission").  Closed loop
 * ('--rate=0') keeps '--concurrency' requests outstanding and measures from
 * the actual send.
 *
 * Each thread owns one UDP socket or its TCP connections, its request ids
 * (0 to 65535, reused in FIFO order so that a late reply is unlikely to meet
 * a reused id; over TCP an id is only a slot index), its share of the rate
 * and its statistics; threads share only the read-only configuration and
 * one stop flag, and their statistics are summed after they are joined.
 *
 * It is standalone on purpose: plain C with glibc and pthreads, no OVS
 * library, so that it builds anywhere with
 *
 *     gcc -O2 -Wall -Wextra -o kairo-mc-load kairo-mc-load.c -lm -lpthread
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROGRAM_NAME "kairo-mc-load"
#define PROGRAM_VERSION "0.1"

/* Limits on options.  Each bounds memory or run time. */
#define MAX_SERVERS 64
#define MAX_THREADS 64
#define MAX_RATE 10000000ULL
#define MAX_DURATION_S 600.0
#define MAX_REQUESTS 10000000000ULL
#define MAX_TIMEOUT_MS 60000
#define MAX_KEYS 100000000ULL
#define MAX_ZIPF 10.0
#define MAX_VALUE_SIZE 65000
#define MAX_MULTIGET 100
#define MAX_PREFIX_LEN 200
#define MAX_SPIN_US 10000
#define MAX_KEY_LEN 250

/* Request ids are 16 bits, so a thread has at most this many requests in
 * flight; an id is also the index of its slot. */
#define MAX_INFLIGHT 65536

/* Largest UDP datagram over IPv4, and so the largest request and reply
 * datagram handled. */
#define MAX_DATAGRAM 65507

/* Size of the memcached UDP frame header. */
#define FRAME_HEADER_SIZE 8

/* Most datagrams accepted in one reply message; memcached cuts messages into
 * 1400-byte datagrams, so this allows messages of about 350 kB. */
#define MAX_REPLY_DGRAMS 256

/* Datagrams read per recvmmsg() call, and calls per loop iteration (over
 * TCP, recv() calls per connection and loop iteration). */
#define RECV_BATCH 16
#define RECV_MAX_BATCHES 8

/* TCP: bytes of requests a connection buffers while its socket is not
 * writable.  A request that does not fit waits, like one without a free
 * request id.  It must hold at least one request of the largest size. */
#define TCP_OUT_BUF_SIZE (256 * 1024)

/* TCP: bytes of replies a connection buffers.  One line or VALUE block must
 * fit, so this allows a value of memcached's default 1 MB item size limit;
 * a larger one is a protocol error. */
#define TCP_IN_BUF_SIZE (1024 * 1024 + 1024)

/* Requests sent per loop iteration at most, so that a sender that is
 * behind still reads replies between bursts. */
#define SEND_BURST 32

/* Longest single sleep, so that the stop flag is seen promptly. */
#define MAX_SLEEP_NS 10000000ULL

/* Delay between creating the threads and the first scheduled send, so that
 * all threads start on the same grid. */
#define START_DELAY_NS 2000000ULL

/* Grace period after the last timeout before a thread gives up draining. */
#define DRAIN_GRACE_NS 1000000ULL

/* Preload: rounds of sets per key (the first one and retries), pause
 * between rounds, and the longest a whole preload may take. */
#define PRELOAD_ROUNDS 5
#define PRELOAD_PAUSE_NS 20000000ULL
#define PRELOAD_MAX_NS (600ULL * 1000000000ULL)

/* Rejection-inversion Zipf sampling accepts most candidates on the first
 * try; this bounds the retries. */
#define ZIPF_MAX_TRIES 64

/* Latency histogram, log-linear in the style of HdrHistogram, in
 * microseconds.  Values below HIST_SUB_COUNT have their own bucket; above
 * that, each power of two is split into HIST_HALF buckets, so a bucket is
 * at most 1/64 (1.6%) wider than its lower bound.  Values of HIST_MAX_US
 * and more are clamped into the last bucket. */
#define HIST_SUB_BITS 7
#define HIST_SUB_COUNT (1U << HIST_SUB_BITS)
#define HIST_HALF (HIST_SUB_COUNT / 2)
#define HIST_MAX_BITS 40
#define HIST_MAX_US ((1ULL << HIST_MAX_BITS) - 1)
#define HIST_BUCKETS (HIST_SUB_COUNT \
                      + (HIST_MAX_BITS - HIST_SUB_BITS) * HIST_HALF)

/* Output formats. */
enum format {
    FORMAT_TEXT,                /* Human-readable lines. */
    FORMAT_JSON,                /* One JSON object on one line. */
    FORMAT_CSV,                 /* A header line and one line of values. */
};

/* Transport protocols. */
enum protocol {
    PROTOCOL_UDP,               /* Datagrams with the UDP frame header. */
    PROTOCOL_TCP,               /* Pipelined on one connection per server. */
};

/* Everything the command line sets.  Read-only once threads start. */
struct config {
    enum protocol protocol;     /* Transport. */
    struct sockaddr_in servers[MAX_SERVERS]; /* Destinations. */
    const char *server_args[MAX_SERVERS];    /* Their text, as given. */
    size_t n_servers;           /* Number of 'servers'. */
    uint64_t rate;              /* Requests/s in total; 0 for closed loop. */
    unsigned int concurrency;   /* Outstanding requests in closed loop and
                                 * preload, in total. */
    unsigned int n_threads;     /* Sender threads. */
    double duration;            /* Seconds of measured run, or 0. */
    bool duration_set;          /* Whether '--duration' was given. */
    uint64_t requests;          /* Requests in total, or 0 for no limit. */
    unsigned int timeout_ms;    /* Per-request timeout. */
    uint64_t n_keys;            /* Keys are 'key_prefix' and 0..n_keys-1. */
    double zipf_s;              /* Zipf exponent, or 0 for uniform. */
    char key_prefix[MAX_PREFIX_LEN + 1]; /* Prefix of every key. */
    size_t prefix_len;          /* strlen(key_prefix). */
    double get_ratio;           /* Fraction of requests that are gets. */
    unsigned int value_min;     /* Smallest value size, in bytes. */
    unsigned int value_max;     /* Largest value size, in bytes. */
    unsigned int multiget;      /* Keys per get. */
    bool preload;               /* Whether to set every key first. */
    enum format format;         /* Output format. */
    bool allow_nonlocal;        /* Whether non-loopback targets are OK. */
    uint64_t seed;              /* Random seed. */
    unsigned int spin_us;       /* Busy-wait this long before a send. */
};

/* Precomputed constants of a Zipf distribution over ranks 1..n with
 * exponent 's', sampled by rejection-inversion (W. Hormann and G.
 * Derflinger, "Rejection-inversion to generate variates from monotone
 * discrete distributions", 1996), the method of Apache Commons RNG.  It
 * takes constant memory and time for any number of keys. */
struct zipf {
    double s;                   /* Exponent, greater than 0. */
    uint64_t n;                 /* Number of ranks. */
    double h_integral_x1;       /* H(1.5) - 1. */
    double h_integral_n;        /* H(n + 0.5). */
    double threshold;           /* Squeeze: accept k when k - x <= this. */
};

/* Request kinds. */
enum kind {
    KIND_GET,                   /* "get" with one or more keys. */
    KIND_SET,                   /* "set" with one key and a value. */
};

/* How a reply message ended a request, if it did. */
enum reply_status {
    REPLY_INCOMPLETE,           /* More messages are needed ("END"). */
    REPLY_TRUNCATED,            /* The bytes end inside a line or a VALUE
                                 * data block. */
    REPLY_OK,                   /* "END" for a get, "STORED" for a set. */
    REPLY_NOT_STORED,           /* NOT_STORED, EXISTS or NOT_FOUND. */
    REPLY_ERROR,                /* ERROR, CLIENT_ERROR or SERVER_ERROR. */
    REPLY_BAD,                  /* A reply that does not parse. */
};

/* A reply message cut into several datagrams, while it is reassembled. */
struct reasm {
    uint16_t total;             /* Datagrams in the message. */
    uint16_t received;          /* Datagrams received so far. */
    size_t size;                /* Payload bytes received so far. */
    char *pieces[MAX_REPLY_DGRAMS]; /* Payload by sequence number, or
                                     * NULL if not yet received. */
    uint32_t lens[MAX_REPLY_DGRAMS]; /* Size of each piece. */
};

/* One request id of a thread.  A slot is either on its thread's free list
 * or on its busy list (in flight, oldest first); 'prev' and 'next' link it
 * into that list. */
struct slot {
    int32_t prev;               /* Previous slot in the list, or -1. */
    int32_t next;               /* Next slot in the list, or -1. */
    bool busy;                  /* Whether the request is in flight. */
    uint8_t kind;               /* enum kind. */
    uint16_t n_keys;            /* Keys asked for by a get. */
    uint16_t hits;              /* VALUE lines received so far. */
    uint32_t server;            /* Index of the destination server. */
    uint64_t sched_ns;          /* Latency origin: scheduled send time. */
    uint64_t sent_ns;           /* Timeout origin: actual send time. */
    uint64_t item;              /* Preload item, or UINT64_MAX. */
    struct reasm *reasm;        /* Partial multi-datagram reply, or NULL. */
    int32_t conn_next;          /* TCP: next request in flight on the same
                                 * connection, or -1. */
};

/* A TCP connection of a thread to one server.  The requests in flight on
 * it, sent but not yet answered, form a FIFO of slots linked through
 * 'conn_next', in the order the server answers them. */
struct conn {
    int fd;                     /* Non-blocking socket, or -1 once closed
                                 * until it is reopened. */
    uint32_t server;            /* Index of the server. */
    char *outbuf;               /* TCP_OUT_BUF_SIZE bytes: requests not yet
                                 * accepted by the kernel... */
    size_t out_len;             /* ...this many, from the start. */
    char *inbuf;                /* TCP_IN_BUF_SIZE bytes: received bytes
                                 * not yet parsed... */
    size_t in_len;              /* ...this many, from the start. */
    int32_t fifo_head;          /* Oldest request in flight, or -1. */
    int32_t fifo_tail;          /* Newest request in flight, or -1. */
};

/* Counters of one thread, or of all threads once summed. */
struct stats {
    uint64_t sent;              /* Requests handed to the kernel. */
    uint64_t send_errors;       /* Requests sendto() refused. */
    uint64_t behind;            /* Scheduled before the end, never sent. */
    uint64_t gets;              /* Get requests sent. */
    uint64_t sets;              /* Set requests sent. */
    uint64_t completed;         /* Requests answered in full. */
    uint64_t hits;              /* Keys found by completed gets. */
    uint64_t misses;            /* Keys not found by completed gets. */
    uint64_t stored;            /* Sets answered STORED. */
    uint64_t not_stored;        /* Sets answered NOT_STORED and the like. */
    uint64_t timeouts;          /* Requests without a full reply in time. */
    uint64_t errors;            /* ERROR, CLIENT_ERROR, SERVER_ERROR. */
    uint64_t protocol_errors;   /* Replies that do not parse. */
    uint64_t late_replies;      /* Datagrams matching no request in flight
                                 * (late after a timeout, or stray); over
                                 * TCP, bytes received with none. */
    uint64_t recv_errors;       /* Failed recvmmsg() calls. */
    uint64_t reconnects;        /* TCP connections closed after a timeout
                                 * or a bad reply, to be reopened. */
    uint64_t lag_sum_ns;        /* Sum of actual minus scheduled send. */
    uint64_t lag_max_ns;        /* Largest such lag. */
    uint64_t lat_count;         /* Latencies recorded. */
    uint64_t lat_sum_us;        /* Their sum. */
    uint64_t lat_max_us;        /* Their maximum. */
    uint64_t hist[HIST_BUCKETS]; /* Their histogram. */
};

/* What a thread does when it runs. */
enum phase {
    PHASE_PRELOAD,              /* Set every key of its preload range. */
    PHASE_OPEN,                 /* Measured run, open loop. */
    PHASE_CLOSED,               /* Measured run, closed loop. */
};

/* One sender thread and everything it owns. */
struct worker {
    unsigned int index;         /* 0 to n_threads - 1. */
    const struct config *cfg;   /* Shared, read-only configuration. */
    const struct zipf *zipf;    /* Shared Zipf constants, or NULL. */
    int fd;                     /* The thread's UDP socket, or -1. */
    struct conn *conns;         /* TCP: one connection per server. */
    struct pollfd *pollfds;     /* TCP: one entry per connection. */
    size_t max_request;         /* TCP: largest request size, in bytes. */
    pthread_t thread;           /* The thread, while it runs. */

    struct slot *slots;         /* MAX_INFLIGHT slots, indexed by id. */
    int32_t free_head;          /* Next id to use, or -1 if none is free. */
    int32_t free_tail;          /* Most recently freed id, or -1. */
    int32_t busy_head;          /* Oldest request in flight, or -1. */
    int32_t busy_tail;          /* Newest request in flight, or -1. */
    uint32_t n_busy;            /* Requests in flight. */

    uint64_t rng;               /* Random state of xorshift64-star. */
    size_t next_server;         /* Round-robin server index. */
    char *sendbuf;              /* UDP: one request datagram. */
    char *valuebuf;             /* 'value_max' bytes of value. */
    char *recvbufs;             /* UDP: RECV_BATCH datagram buffers. */
    struct mmsghdr *msgs;       /* recvmmsg() headers... */
    struct iovec *iovs;         /* ...their buffers... */
    struct sockaddr_in *addrs;  /* ...and their source addresses. */

    enum phase phase;           /* What the thread runs. */
    bool measure;               /* Whether to record latencies. */
    uint64_t timeout_ns;        /* Per-request timeout. */
    uint64_t start_ns;          /* Start of the run (CLOCK_MONOTONIC). */
    uint64_t end_ns;            /* No sends at or after this time. */
    uint64_t offset_ns;         /* Open loop: this thread's grid offset. */
    double interval_ns;         /* Open loop: this thread's grid step. */
    uint64_t max_requests;      /* This thread's share of '--requests'. */
    unsigned int concurrency;   /* This thread's share of concurrency. */
    uint64_t stop_ns;           /* When the thread stopped sending. */

    uint64_t pl_lo;             /* Preload: first item of this thread. */
    uint64_t pl_hi;             /* Preload: one past its last item. */
    uint64_t pl_cursor;         /* Preload: next item to consider. */
    uint64_t *pl_done;          /* Preload: bitmap of stored items. */
    uint64_t pl_missing;        /* Preload: items not stored at the end. */
    unsigned int pl_rounds;     /* Preload: rounds run. */
    bool pl_timed_out;          /* Preload: hit PRELOAD_MAX_NS. */

    struct stats stats;         /* This thread's counters. */
};

/* Set by SIGINT or SIGTERM: stop sending, drain and report. */
static volatile sig_atomic_t stop_requested;

/* Held by the first thread that reports a fatal error, until it exits. */
static pthread_mutex_t fatal_mutex = PTHREAD_MUTEX_INITIALIZER;

/* Prints 'format', formatted with 'args', as an error message followed by
 * 'hint' (which may be empty), and exits with failure.  If several threads
 * fail at once, only the first one prints its message; the others wait for
 * it to end the process. */
static void __attribute__((format(printf, 2, 0), noreturn))
vfatal_hint(const char *hint, const char *format, va_list args)
{
    pthread_mutex_lock(&fatal_mutex);
    fputs(PROGRAM_NAME ": ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    fputs(hint, stderr);
    exit(EXIT_FAILURE);
}

/* Prints 'format' as an error message and exits with failure. */
static void __attribute__((format(printf, 1, 2), noreturn))
fatal(const char *format, ...)
{
    va_list args;

    va_start(args, format);
    vfatal_hint("", format, args);
}

/* Like fatal(), for a bad command line: also points to '--help'. */
static void __attribute__((format(printf, 1, 2), noreturn))
usage_error(const char *format, ...)
{
    va_list args;

    va_start(args, format);
    vfatal_hint("Try '" PROGRAM_NAME " --help' for more information.\n",
                format, args);
}

/* Returns a zeroed block of 'size' bytes, or exits if memory runs out. */
static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (!p) {
        fatal("out of memory");
    }
    return p;
}

/* Returns the CLOCK_MONOTONIC time in nanoseconds. */
static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Returns whether a stop was requested by a signal. */
static bool
stopping(void)
{
    return __atomic_load_n(&stop_requested, __ATOMIC_RELAXED) != 0;
}

/* Records a stop request; async-signal-safe. */
static void
handle_stop_signal(int signo)
{
    (void) signo;
    stop_requested = 1;
}

/* Random numbers. */

/* Returns the next output of splitmix64 for '*state', used to seed. */
static uint64_t
splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Returns 64 random bits from the xorshift64-star state '*state'. */
static uint64_t
rng_next(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* Returns a random double uniform in [0, 1). */
static double
rng_double(uint64_t *state)
{
    return (rng_next(state) >> 11) * 0x1.0p-53;
}

/* Returns a random integer uniform in [0, n), for 'n' > 0. */
static uint64_t
rng_below(uint64_t *state, uint64_t n)
{
    return (uint64_t) (((unsigned __int128) rng_next(state) * n) >> 64);
}

/* Zipf sampling. */

/* Returns log1p(x) / x, accurate near 0. */
static double
zipf_helper1(double x)
{
    if (fabs(x) > 1e-8) {
        return log1p(x) / x;
    }
    return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

/* Returns expm1(x) / x, accurate near 0. */
static double
zipf_helper2(double x)
{
    if (fabs(x) > 1e-8) {
        return expm1(x) / x;
    }
    return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

/* Returns H(x), an integral of h(x) = x**-s for 'z'. */
static double
zipf_h_integral(const struct zipf *z, double x)
{
    double log_x = log(x);

    return zipf_helper2((1.0 - z->s) * log_x) * log_x;
}

/* Returns h(x) = x**-s for 'z'. */
static double
zipf_h(const struct zipf *z, double x)
{
    return exp(-z->s * log(x));
}

/* Returns the inverse of H() at 'x' for 'z'. */
static double
zipf_h_integral_inverse(const struct zipf *z, double x)
{
    double t = x * (1.0 - z->s);

    if (t < -1.0) {
        t = -1.0;
    }
    return exp(zipf_helper1(t) * x);
}

/* Initializes 'z' for ranks 1..'n' with exponent 's' > 0. */
static void
zipf_init(struct zipf *z, uint64_t n, double s)
{
    z->s = s;
    z->n = n;
    z->h_integral_x1 = zipf_h_integral(z, 1.5) - 1.0;
    z->h_integral_n = zipf_h_integral(z, n + 0.5);
    z->threshold = 2.0 - zipf_h_integral_inverse(
        z, zipf_h_integral(z, 2.5) - zipf_h(z, 2.0));
}

/* Returns a rank in 1..n drawn from 'z' with random state '*rng'. */
static uint64_t
zipf_sample(const struct zipf *z, uint64_t *rng)
{
    uint64_t k = 1;

    for (int try = 0; try < ZIPF_MAX_TRIES; try++) {
        double u = z->h_integral_n
                   + rng_double(rng) * (z->h_integral_x1 - z->h_integral_n);
        double x = zipf_h_integral_inverse(z, u);
        double kd = floor(x + 0.5);

        k = kd < 1.0 ? 1 : kd > (double) z->n ? z->n : (uint64_t) kd;
        if (k - x <= z->threshold
            || u >= zipf_h_integral(z, k + 0.5) - zipf_h(z, (double) k)) {
            break;
        }
    }
    return k;
}

/* Latency histogram. */

/* Returns the histogram bucket of 'us' microseconds. */
static size_t
hist_bucket(uint64_t us)
{
    if (us > HIST_MAX_US) {
        us = HIST_MAX_US;
    }
    if (us < HIST_SUB_COUNT) {
        return us;
    }

    int msb = 63 - __builtin_clzll(us);
    int shift = msb - (HIST_SUB_BITS - 1);

    return HIST_SUB_COUNT + (size_t) (shift - 1) * HIST_HALF
           + ((us >> shift) - HIST_HALF);
}

/* Returns the largest value, in microseconds, that falls in 'bucket'. */
static uint64_t
hist_bucket_high(size_t bucket)
{
    if (bucket < HIST_SUB_COUNT) {
        return bucket;
    }

    size_t j = bucket - HIST_SUB_COUNT;
    int shift = j / HIST_HALF + 1;
    uint64_t mantissa = j % HIST_HALF + HIST_HALF;

    return ((mantissa + 1) << shift) - 1;
}

/* Adds a latency of 'us' microseconds to 'st'. */
static void
stats_record_latency(struct stats *st, uint64_t us)
{
    st->hist[hist_bucket(us)]++;
    st->lat_count++;
    st->lat_sum_us += us;
    if (us > st->lat_max_us) {
        st->lat_max_us = us;
    }
}

/* Returns the latency, in microseconds, below or at which 'pct' percent of
 * the latencies in 'st' fall, as the upper end of its bucket, capped by the
 * maximum; 0 if there are none. */
static uint64_t
stats_percentile(const struct stats *st, double pct)
{
    if (!st->lat_count) {
        return 0;
    }

    double exact_rank = ceil(pct / 100.0 * st->lat_count);
    uint64_t rank = exact_rank;
    uint64_t seen = 0;

    if (rank < 1) {
        rank = 1;
    }
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += st->hist[i];
        if (seen >= rank) {
            uint64_t high = hist_bucket_high(i);
            return high < st->lat_max_us ? high : st->lat_max_us;
        }
    }
    return st->lat_max_us;
}

/* Adds the counters of 'src' into 'dst'. */
static void
stats_add(struct stats *dst, const struct stats *src)
{
    dst->sent += src->sent;
    dst->send_errors += src->send_errors;
    dst->behind += src->behind;
    dst->gets += src->gets;
    dst->sets += src->sets;
    dst->completed += src->completed;
    dst->hits += src->hits;
    dst->misses += src->misses;
    dst->stored += src->stored;
    dst->not_stored += src->not_stored;
    dst->timeouts += src->timeouts;
    dst->errors += src->errors;
    dst->protocol_errors += src->protocol_errors;
    dst->late_replies += src->late_replies;
    dst->recv_errors += src->recv_errors;
    dst->reconnects += src->reconnects;
    dst->lag_sum_ns += src->lag_sum_ns;
    if (src->lag_max_ns > dst->lag_max_ns) {
        dst->lag_max_ns = src->lag_max_ns;
    }
    dst->lat_count += src->lat_count;
    dst->lat_sum_us += src->lat_sum_us;
    if (src->lat_max_us > dst->lat_max_us) {
        dst->lat_max_us = src->lat_max_us;
    }
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        dst->hist[i] += src->hist[i];
    }
}

/* Request ids and slots. */

/* Unlinks slot 'id' of 'w' from the list whose ends are '*head' and
 * '*tail'. */
static void
slot_unlink(struct worker *w, int32_t id, int32_t *head, int32_t *tail)
{
    struct slot *s = &w->slots[id];

    if (s->prev >= 0) {
        w->slots[s->prev].next = s->next;
    } else {
        *head = s->next;
    }
    if (s->next >= 0) {
        w->slots[s->next].prev = s->prev;
    } else {
        *tail = s->prev;
    }
    s->prev = s->next = -1;
}

/* Appends slot 'id' of 'w' to the list whose ends are '*head' and
 * '*tail'. */
static void
slot_append(struct worker *w, int32_t id, int32_t *head, int32_t *tail)
{
    struct slot *s = &w->slots[id];

    s->prev = *tail;
    s->next = -1;
    if (*tail >= 0) {
        w->slots[*tail].next = id;
    } else {
        *head = id;
    }
    *tail = id;
}

/* Frees the reassembly state of 's', if any. */
static void
slot_free_reasm(struct slot *s)
{
    if (s->reasm) {
        for (size_t i = 0; i < MAX_REPLY_DGRAMS; i++) {
            free(s->reasm->pieces[i]);
        }
        free(s->reasm);
        s->reasm = NULL;
    }
}

/* Ends the request in slot 'id' of 'w' and returns the id to the tail of
 * the free list, so that it is reused as late as possible. */
static void
slot_release(struct worker *w, int32_t id)
{
    struct slot *s = &w->slots[id];

    slot_free_reasm(s);
    slot_unlink(w, id, &w->busy_head, &w->busy_tail);
    s->busy = false;
    w->n_busy--;
    slot_append(w, id, &w->free_head, &w->free_tail);
}

/* Reply parsing. */

/* Returns whether the 'len'-byte line 'line' is exactly 'word'. */
static bool
line_is(const char *line, size_t len, const char *word)
{
    size_t n = strlen(word);

    return len == n && !memcmp(line, word, n);
}

/* Returns whether the 'len'-byte line 'line' is 'word' alone or followed by
 * a space and more. */
static bool
line_starts_word(const char *line, size_t len, const char *word)
{
    size_t n = strlen(word);

    return len >= n && !memcmp(line, word, n) && (len == n || line[n] == ' ');
}

/* Parses the <bytes> field of the 'len'-byte line 'line', which starts with
 * "VALUE ", into '*bytes'.  Returns false if the line is malformed. */
static bool
parse_value_line(const char *line, size_t len, uint64_t *bytes)
{
    const char *p = line + 6;
    const char *end = line + len;

    /* Skip the key and the flags, then read the size. */
    for (int field = 0; field < 2; field++) {
        const char *start = p;

        while (p < end && *p != ' ') {
            p++;
        }
        if (p == start || p == end) {
            return false;
        }
        p++;
    }

    uint64_t n = 0;
    const char *digits = p;

    while (p < end && *p >= '0' && *p <= '9' && p - digits < 10) {
        n = n * 10 + (*p++ - '0');
    }
    if (p == digits || (p < end && *p != ' ')) {
        return false;
    }
    *bytes = n;
    return true;
}

/* Parses the 'len' bytes at 'msg', the reply to the request in 's' or its
 * next part, adding the hits it reports to 's', and stores in '*consumed'
 * how many bytes it parsed: the complete lines and VALUE blocks, up to and
 * including the line that ends the request if there is one.  Returns
 * whether, and how, the request is now complete:
 *
 *   - REPLY_INCOMPLETE if the bytes end after a complete line or VALUE
 *     block but before the line that ends the request (all of 'len' is
 *     consumed);
 *
 *   - REPLY_TRUNCATED if they end inside a line or a VALUE block (what
 *     precedes it is consumed; the caller may parse the rest again once it
 *     has more bytes);
 *
 *   - otherwise, the status that ended the request, REPLY_BAD included.
 *
 * A UDP message must be whole, so there truncation is an error; a TCP byte
 * stream is parsed as it arrives. */
static enum reply_status
parse_message(struct slot *s, const char *msg, size_t len, size_t *consumed)
{
    size_t pos = 0;

    /* Each iteration consumes at least one line, so at most 'len' runs. */
    while (pos < len) {
        const char *line = msg + pos;
        const char *cr = memmem(line, len - pos, "\r\n", 2);

        *consumed = pos;
        if (!cr) {
            return REPLY_TRUNCATED;
        }

        size_t n = cr - line;

        pos += n + 2;
        *consumed = pos;
        if (line_starts_word(line, n, "ERROR")
            || line_starts_word(line, n, "CLIENT_ERROR")
            || line_starts_word(line, n, "SERVER_ERROR")) {
            return REPLY_ERROR;
        }
        if (s->kind == KIND_SET) {
            if (line_is(line, n, "STORED")) {
                return REPLY_OK;
            } else if (line_is(line, n, "NOT_STORED")
                       || line_is(line, n, "EXISTS")
                       || line_is(line, n, "NOT_FOUND")) {
                return REPLY_NOT_STORED;
            }
            return REPLY_BAD;
        }

        if (line_is(line, n, "END")) {
            return REPLY_OK;
        } else if (n > 6 && !memcmp(line, "VALUE ", 6)) {
            uint64_t bytes;

            if (!parse_value_line(line, n, &bytes)) {
                return REPLY_BAD;
            }
            if (bytes + 2 > len - pos) {
                /* Parse the VALUE line again with its data block. */
                *consumed = line - msg;
                return REPLY_TRUNCATED;
            }
            if (memcmp(msg + pos + bytes, "\r\n", 2)) {
                return REPLY_BAD;
            }
            pos += bytes + 2;
            *consumed = pos;
            if (s->hits < UINT16_MAX) {
                s->hits++;
            }
        } else {
            return REPLY_BAD;
        }
    }
    *consumed = pos;
    return REPLY_INCOMPLETE;
}

/* Parses the whole reply message 'msg' of 'len' bytes, as received over
 * UDP, for the request in 's'; returns as parse_message() does, except that
 * a truncated message is bad. */
static enum reply_status
parse_udp_message(struct slot *s, const char *msg, size_t len)
{
    size_t consumed;
    enum reply_status status = parse_message(s, msg, len, &consumed);

    return status == REPLY_TRUNCATED ? REPLY_BAD : status;
}

/* Adds datagram 'seq' of 'total' with 'len' bytes of payload 'payload' to
 * the reassembly state of 's'.  Returns the status of the request: if the
 * datagram completes a message, the message is parsed. */
static enum reply_status
reasm_add(struct slot *s, uint16_t seq, uint16_t total,
          const char *payload, size_t len)
{
    struct reasm *r = s->reasm;

    if (r && (r->total != total || r->pieces[seq])) {
        /* A new message began before the last one was whole: the last one
         * lost a datagram, and the request will time out if this one does
         * not end it. */
        slot_free_reasm(s);
        r = NULL;
    }
    if (!r) {
        r = s->reasm = xcalloc(1, sizeof *r);
        r->total = total;
    }
    r->pieces[seq] = xcalloc(1, len);
    memcpy(r->pieces[seq], payload, len);
    r->lens[seq] = len;
    r->received++;
    r->size += len;
    if (r->received < r->total) {
        return REPLY_INCOMPLETE;
    }

    char *msg = xcalloc(1, r->size);
    size_t ofs = 0;

    for (size_t i = 0; i < r->total; i++) {
        memcpy(msg + ofs, r->pieces[i], r->lens[i]);
        ofs += r->lens[i];
    }
    slot_free_reasm(s);

    enum reply_status status = parse_udp_message(s, msg, ofs);

    free(msg);
    return status;
}

/* TCP connections. */

/* Appends slot 'id' of 'w' to the requests in flight on 'c'. */
static void
conn_fifo_push(struct worker *w, struct conn *c, int32_t id)
{
    w->slots[id].conn_next = -1;
    if (c->fifo_tail >= 0) {
        w->slots[c->fifo_tail].conn_next = id;
    } else {
        c->fifo_head = id;
    }
    c->fifo_tail = id;
}

/* Removes the oldest request in flight on 'c' from that list and returns
 * its slot in 'w', or -1 if there is none. */
static int32_t
conn_fifo_pop(struct worker *w, struct conn *c)
{
    int32_t id = c->fifo_head;

    if (id >= 0) {
        c->fifo_head = w->slots[id].conn_next;
        if (c->fifo_head < 0) {
            c->fifo_tail = -1;
        }
        w->slots[id].conn_next = -1;
    }
    return id;
}

/* Returns the server of 'c', of 'w', as given on the command line. */
static const char *
conn_name(const struct worker *w, const struct conn *c)
{
    return w->cfg->server_args[c->server];
}

/* Connects 'c', of 'w', to its server, waiting at most the request timeout
 * for the connection to be established.  Exits with a message naming the
 * server if it cannot be. */
static void
conn_open(struct worker *w, struct conn *c)
{
    const struct sockaddr_in *sin = &w->cfg->servers[c->server];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int error = 0;

    if (fd < 0) {
        fatal("socket: %s", strerror(errno));
    }

    /* Send each request as soon as it is written, instead of waiting, as
     * Nagle's algorithm would, until the previous ones are acknowledged. */
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    if (connect(fd, (const struct sockaddr *) sin, sizeof *sin) < 0) {
        if (errno != EINPROGRESS) {
            error = errno;
        } else {
            uint64_t deadline = now_ns() + w->timeout_ns;
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };

            /* Each iteration waits until the socket is ready or
             * 'deadline'; an interrupted wait is repeated, so time bounds
             * the loop. */
            for (;;) {
                uint64_t now = now_ns();

                if (now >= deadline) {
                    error = ETIMEDOUT;
                    break;
                }

                uint64_t delta = deadline - now;
                struct timespec ts = {
                    .tv_sec = delta / 1000000000ULL,
                    .tv_nsec = delta % 1000000000ULL,
                };
                int n = ppoll(&pfd, 1, &ts, NULL);

                if (n > 0) {
                    socklen_t len = sizeof error;

                    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error,
                                   &len) < 0) {
                        error = errno;
                    }
                    break;
                } else if (n < 0 && errno != EINTR) {
                    error = errno;
                    break;
                }
            }
        }
    }
    if (error) {
        fatal("cannot connect to server %s over TCP: %s", conn_name(w, c),
              strerror(error));
    }
    c->fd = fd;
}

/* Ends every request in flight on 'c', of 'w', as timed out, because the
 * replies on 'c' can no longer be matched to them; drops the bytes that 'c'
 * buffers in both directions and closes it.  worker_send() reopens it
 * before its next request. */
static void
conn_reset(struct worker *w, struct conn *c)
{
    int32_t id;

    /* Each iteration ends one request, so at most MAX_INFLIGHT run. */
    while ((id = conn_fifo_pop(w, c)) >= 0) {
        w->stats.timeouts++;
        slot_release(w, id);
    }
    c->out_len = 0;
    c->in_len = 0;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    w->stats.reconnects++;
}

/* Writes as much of the output buffer of 'c', of 'w', as its socket takes
 * now, and keeps the rest.  Exits with a message naming the server if the
 * connection failed. */
static void
conn_flush(struct worker *w, struct conn *c)
{
    size_t ofs = 0;

    /* Each iteration sends at least one byte or stops, so at most
     * 'out_len' run. */
    while (ofs < c->out_len) {
        ssize_t n = send(c->fd, c->outbuf + ofs, c->out_len - ofs,
                         MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK
            && errno != EINTR) {
            fatal("server %s: TCP send failed: %s", conn_name(w, c),
                  strerror(errno));
        }
        if (n <= 0) {
            /* Not writable now: worker_wait() polls for it. */
            break;
        }
        ofs += n;
    }
    if (ofs) {
        memmove(c->outbuf, c->outbuf + ofs, c->out_len - ofs);
        c->out_len -= ofs;
    }
}

/* Sending. */

/* Writes 'x' in decimal to 'dst' and returns the number of digits. */
static size_t
format_u64(char *dst, uint64_t x)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = '0' + x % 10;
        x /= 10;
    } while (x);
    for (size_t i = 0; i < n; i++) {
        dst[i] = tmp[n - 1 - i];
    }
    return n;
}

/* Writes the key with index 'key' to 'dst' and returns its length. */
static size_t
format_key(const struct config *cfg, char *dst, uint64_t key)
{
    memcpy(dst, cfg->key_prefix, cfg->prefix_len);
    return cfg->prefix_len + format_u64(dst + cfg->prefix_len, key);
}

/* Returns a key index for a measured request of 'w'. */
static uint64_t
pick_key(struct worker *w)
{
    if (w->zipf) {
        return zipf_sample(w->zipf, &w->rng) - 1;
    }
    return rng_below(&w->rng, w->cfg->n_keys);
}

/* Returns a value size for a set by 'w'. */
static unsigned int
pick_value_size(struct worker *w)
{
    const struct config *cfg = w->cfg;

    if (cfg->value_min == cfg->value_max) {
        return cfg->value_min;
    }
    return cfg->value_min
           + rng_below(&w->rng, cfg->value_max - cfg->value_min + 1);
}

/* Writes to 'dst' a set of key 'key' by 'w'; returns its size. */
static size_t
build_set(struct worker *w, char *dst, uint64_t key)
{
    unsigned int size = pick_value_size(w);
    char *p = dst;

    memcpy(p, "set ", 4);
    p += 4;
    p += format_key(w->cfg, p, key);
    memcpy(p, " 0 0 ", 5);
    p += 5;
    p += format_u64(p, size);
    memcpy(p, "\r\n", 2);
    p += 2;
    memcpy(p, w->valuebuf, size);
    p += size;
    memcpy(p, "\r\n", 2);
    p += 2;
    return p - dst;
}

/* Writes to 'dst' a get of 'n_keys' keys drawn by 'w'; returns its size. */
static size_t
build_get(struct worker *w, char *dst, unsigned int n_keys)
{
    char *p = dst;

    memcpy(p, "get", 3);
    p += 3;
    for (unsigned int i = 0; i < n_keys; i++) {
        *p++ = ' ';
        p += format_key(w->cfg, p, pick_key(w));
    }
    memcpy(p, "\r\n", 2);
    p += 2;
    return p - dst;
}

/* Returns the size of the largest request that 'cfg' may build. */
static size_t
max_request_size(const struct config *cfg)
{
    size_t key = cfg->prefix_len + 20;
    size_t set = 4 + key + 5 + 10 + 2 + cfg->value_max + 2;
    size_t get = 3 + cfg->multiget * (1 + key) + 2;

    return set > get ? set : get;
}

/* Returns whether 'w' has a free request id and, over TCP, room for one
 * more request in the output buffer of its connection to 'server'. */
static bool
worker_can_send(const struct worker *w, size_t server)
{
    if (w->free_head < 0) {
        return false;
    }
    if (w->cfg->protocol == PROTOCOL_TCP) {
        return w->conns[server].out_len + w->max_request <= TCP_OUT_BUF_SIZE;
    }
    return true;
}

/* Sends one request from 'w', scheduled at 'sched_ns': a set of preload
 * item 'item', or, if 'item' is UINT64_MAX, a get or set drawn from the
 * configured mix.  Over TCP, the request is queued on the connection to its
 * server, reopened first if it was closed, and written as far as the socket
 * takes it.  Returns false if no request id is free or, over TCP, if that
 * connection's output buffer is full. */
static bool
worker_send(struct worker *w, uint64_t sched_ns, uint64_t item)
{
    const struct config *cfg = w->cfg;
    int32_t id = w->free_head;
    uint32_t server = (item != UINT64_MAX ? item % cfg->n_servers
                       : w->next_server);

    if (!worker_can_send(w, server)) {
        return false;
    }

    struct slot *s = &w->slots[id];
    struct conn *c = NULL;
    char *buf;
    size_t len;

    if (cfg->protocol == PROTOCOL_TCP) {
        c = &w->conns[server];
        if (c->fd < 0) {
            conn_open(w, c);
        }
        buf = c->outbuf + c->out_len;
    } else {
        buf = w->sendbuf + FRAME_HEADER_SIZE;
    }

    s->item = item;
    s->hits = 0;
    s->server = server;
    if (item != UINT64_MAX) {
        s->kind = KIND_SET;
        s->n_keys = 1;
        len = build_set(w, buf, item / cfg->n_servers);
    } else {
        if (++w->next_server >= cfg->n_servers) {
            w->next_server = 0;
        }
        if (cfg->get_ratio >= 1.0
            || (cfg->get_ratio > 0.0
                && rng_double(&w->rng) < cfg->get_ratio)) {
            s->kind = KIND_GET;
            s->n_keys = cfg->multiget;
            len = build_get(w, buf, cfg->multiget);
        } else {
            s->kind = KIND_SET;
            s->n_keys = 1;
            len = build_set(w, buf, pick_key(w));
        }
    }

    uint64_t now;

    if (c) {
        c->out_len += len;
        conn_fifo_push(w, c, id);
        conn_flush(w, c);
        now = now_ns();
    } else {
        /* Frame header: request id, sequence 0, total 1, reserved 0. */
        char *frame = w->sendbuf;

        frame[0] = id >> 8;
        frame[1] = id & 0xff;
        frame[2] = frame[3] = frame[4] = frame[6] = frame[7] = 0;
        frame[5] = 1;

        const struct sockaddr_in *dst = &cfg->servers[s->server];
        ssize_t n = sendto(w->fd, frame, FRAME_HEADER_SIZE + len, 0,
                           (const struct sockaddr *) dst, sizeof *dst);

        now = now_ns();
        if (n < 0) {
            /* The request is lost, but its id stays free. */
            w->stats.send_errors++;
            return true;
        }
    }

    slot_unlink(w, id, &w->free_head, &w->free_tail);
    slot_append(w, id, &w->busy_head, &w->busy_tail);
    w->n_busy++;
    s->busy = true;
    s->sched_ns = sched_ns;
    s->sent_ns = now;
    w->stats.sent++;
    if (s->kind == KIND_GET) {
        w->stats.gets++;
    } else {
        w->stats.sets++;
    }
    if (w->phase == PHASE_OPEN) {
        uint64_t lag = now > sched_ns ? now - sched_ns : 0;

        w->stats.lag_sum_ns += lag;
        if (lag > w->stats.lag_max_ns) {
            w->stats.lag_max_ns = lag;
        }
    }
    return true;
}

/* Receiving. */

/* Accounts for the end of the request in slot 'id' of 'w' with 'status' at
 * time 'now', and frees the slot. */
static void
worker_complete(struct worker *w, int32_t id, enum reply_status status,
                uint64_t now)
{
    struct slot *s = &w->slots[id];
    struct stats *st = &w->stats;

    st->completed++;
    switch (status) {
    case REPLY_OK:
        if (s->kind == KIND_GET) {
            uint64_t hits = s->hits < s->n_keys ? s->hits : s->n_keys;

            st->hits += hits;
            st->misses += s->n_keys - hits;
        } else {
            st->stored++;
            if (s->item != UINT64_MAX) {
                uint64_t bit = s->item - w->pl_lo;

                w->pl_done[bit / 64] |= 1ULL << (bit % 64);
            }
        }
        break;
    case REPLY_NOT_STORED:
        st->not_stored++;
        break;
    case REPLY_ERROR:
        st->errors++;
        break;
    case REPLY_BAD:
    case REPLY_INCOMPLETE:
    case REPLY_TRUNCATED:
    default:
        st->protocol_errors++;
        break;
    }
    if (w->measure) {
        stats_record_latency(st, now > s->sched_ns
                                 ? (now - s->sched_ns) / 1000 : 0);
    }
    slot_release(w, id);
}

/* Handles one received datagram of 'len' bytes in 'buf' from 'src' at time
 * 'now'. */
static void
worker_handle_datagram(struct worker *w, const char *buf, size_t len,
                       const struct sockaddr_in *src, uint64_t now)
{
    if (len < FRAME_HEADER_SIZE) {
        w->stats.late_replies++;
        return;
    }

    const uint8_t *h = (const uint8_t *) buf;
    int32_t id = (h[0] << 8) | h[1];
    uint16_t seq = (h[2] << 8) | h[3];
    uint16_t total = (h[4] << 8) | h[5];
    struct slot *s = &w->slots[id];
    const struct sockaddr_in *dst = &w->cfg->servers[s->server];

    if (!s->busy
        || src->sin_addr.s_addr != dst->sin_addr.s_addr
        || src->sin_port != dst->sin_port) {
        w->stats.late_replies++;
        return;
    }

    const char *payload = buf + FRAME_HEADER_SIZE;
    size_t plen = len - FRAME_HEADER_SIZE;
    enum reply_status status;

    if (!total || seq >= total || total > MAX_REPLY_DGRAMS) {
        status = REPLY_BAD;
    } else if (total == 1) {
        status = parse_udp_message(s, payload, plen);
    } else {
        status = reasm_add(s, seq, total, payload, plen);
    }
    if (status != REPLY_INCOMPLETE) {
        worker_complete(w, id, status, now);
    }
}

/* Reads and handles the datagrams waiting on the UDP socket of 'w', at
 * most RECV_BATCH * RECV_MAX_BATCHES of them. */
static void
worker_receive_udp(struct worker *w)
{
    for (int batch = 0; batch < RECV_MAX_BATCHES; batch++) {
        for (size_t i = 0; i < RECV_BATCH; i++) {
            w->iovs[i].iov_base = w->recvbufs + i * (MAX_DATAGRAM + 1);
            w->iovs[i].iov_len = MAX_DATAGRAM + 1;
            memset(&w->msgs[i], 0, sizeof w->msgs[i]);
            w->msgs[i].msg_hdr.msg_iov = &w->iovs[i];
            w->msgs[i].msg_hdr.msg_iovlen = 1;
            w->msgs[i].msg_hdr.msg_name = &w->addrs[i];
            w->msgs[i].msg_hdr.msg_namelen = sizeof w->addrs[i];
        }

        int n = recvmmsg(w->fd, w->msgs, RECV_BATCH, MSG_DONTWAIT, NULL);

        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                w->stats.recv_errors++;
            }
            return;
        }

        uint64_t now = now_ns();

        for (int i = 0; i < n; i++) {
            worker_handle_datagram(w, w->iovs[i].iov_base, w->msgs[i].msg_len,
                                   &w->addrs[i], now);
        }
        if (n < RECV_BATCH) {
            return;
        }
    }
}

/* Parses the replies at the front of the input buffer of 'c', of 'w',
 * received at 'now', and ends the requests they answer, oldest first; keeps
 * the bytes of a reply not yet complete for later.  Returns false if it
 * reset the connection because the stream is out of step: bytes that
 * answer no request, a reply that does not parse, or a line or VALUE block
 * larger than the buffer. */
static bool
conn_parse(struct worker *w, struct conn *c, uint64_t now)
{
    size_t ofs = 0;

    /* Each iteration ends one request or stops, so at most MAX_INFLIGHT
     * run. */
    while (ofs < c->in_len) {
        int32_t id = c->fifo_head;

        if (id < 0) {
            w->stats.late_replies++;
            conn_reset(w, c);
            return false;
        }

        size_t consumed;
        enum reply_status status = parse_message(&w->slots[id],
                                                 c->inbuf + ofs,
                                                 c->in_len - ofs, &consumed);

        ofs += consumed;
        if (status == REPLY_INCOMPLETE || status == REPLY_TRUNCATED) {
            if (ofs || c->in_len < TCP_IN_BUF_SIZE) {
                break;
            }
            /* The buffer is full and holds not one whole line or block. */
            status = REPLY_BAD;
        }
        conn_fifo_pop(w, c);
        worker_complete(w, id, status, now);
        if (status == REPLY_BAD) {
            conn_reset(w, c);
            return false;
        }
    }
    if (ofs) {
        memmove(c->inbuf, c->inbuf + ofs, c->in_len - ofs);
        c->in_len -= ofs;
    }
    return true;
}

/* Reads what the socket of 'c', of 'w', holds, in at most RECV_MAX_BATCHES
 * calls, and parses the replies.  Exits with a message naming the server if
 * it closed or reset the connection. */
static void
conn_receive(struct worker *w, struct conn *c)
{
    for (int i = 0; i < RECV_MAX_BATCHES; i++) {
        size_t room = TCP_IN_BUF_SIZE - c->in_len;

        if (!room) {
            /* conn_parse() never leaves the buffer full. */
            return;
        }

        ssize_t n = recv(c->fd, c->inbuf + c->in_len, room, MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                return;
            }
            fatal("server %s: TCP receive failed: %s", conn_name(w, c),
                  strerror(errno));
        } else if (!n) {
            fatal("server %s closed the TCP connection", conn_name(w, c));
        }
        c->in_len += n;
        if (!conn_parse(w, c, now_ns()) || (size_t) n < room) {
            return;
        }
    }
}

/* Handles what the sockets of 'w' hold: the datagrams on its UDP socket,
 * or, over TCP, the replies on each open connection, after writing what
 * the connection's output buffer holds. */
static void
worker_receive(struct worker *w)
{
    if (w->cfg->protocol == PROTOCOL_UDP) {
        worker_receive_udp(w);
        return;
    }
    for (size_t i = 0; i < w->cfg->n_servers; i++) {
        struct conn *c = &w->conns[i];

        if (c->fd >= 0 && c->out_len) {
            conn_flush(w, c);
        }
        if (c->fd >= 0) {
            conn_receive(w, c);
        }
    }
}

/* Counts as timed out every request of 'w' sent at or before 'now' minus
 * the timeout, or every request in flight if 'all' is true.  Over TCP, the
 * replies after a lost one can no longer be matched, so this resets the
 * connection of each such request, and every request in flight on it times
 * out too. */
static void
worker_expire(struct worker *w, uint64_t now, bool all)
{
    /* The busy list is in send order, so expired requests are at its head;
     * each iteration removes at least one, so at most MAX_INFLIGHT run. */
    while (w->busy_head >= 0) {
        int32_t id = w->busy_head;

        if (!all && w->slots[id].sent_ns + w->timeout_ns > now) {
            break;
        }
        if (w->cfg->protocol == PROTOCOL_TCP) {
            /* 'id' is the oldest request on its connection, so this ends
             * it. */
            conn_reset(w, &w->conns[w->slots[id].server]);
        } else {
            w->stats.timeouts++;
            slot_release(w, id);
        }
    }
}

/* Returns when the oldest request of 'w' times out, or UINT64_MAX. */
static uint64_t
worker_next_deadline(const struct worker *w)
{
    if (w->busy_head < 0) {
        return UINT64_MAX;
    }
    return w->slots[w->busy_head].sent_ns + w->timeout_ns;
}

/* Sleeps until 'wake_ns' (at most MAX_SLEEP_NS), or until a datagram
 * arrives on the UDP socket of 'w', or, over TCP, until a connection has
 * bytes to read or, if it has bytes to write, room for them, whichever is
 * first. */
static void
worker_wait(struct worker *w, uint64_t wake_ns)
{
    uint64_t now = now_ns();

    if (wake_ns <= now) {
        return;
    }

    uint64_t delta = wake_ns - now;

    if (delta > MAX_SLEEP_NS) {
        delta = MAX_SLEEP_NS;
    }

    struct timespec ts = {
        .tv_sec = delta / 1000000000ULL,
        .tv_nsec = delta % 1000000000ULL,
    };

    if (w->cfg->protocol == PROTOCOL_TCP) {
        size_t n = w->cfg->n_servers;

        /* ppoll() ignores the closed connections, whose 'fd' is -1. */
        for (size_t i = 0; i < n; i++) {
            const struct conn *c = &w->conns[i];

            w->pollfds[i].fd = c->fd;
            w->pollfds[i].events = POLLIN | (c->out_len ? POLLOUT : 0);
            w->pollfds[i].revents = 0;
        }
        ppoll(w->pollfds, n, &ts, NULL);
        return;
    }

    struct pollfd pfd = { .fd = w->fd, .events = POLLIN };

    ppoll(&pfd, 1, &ts, NULL);
}

/* Returns the smaller of 'a' and 'b'. */
static uint64_t
min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Waits for the requests of 'w' still in flight, from 'now' until each is
 * answered or timed out; bounded by the timeout plus DRAIN_GRACE_NS. */
static void
worker_drain(struct worker *w, uint64_t now)
{
    uint64_t drain_end = now + w->timeout_ns + DRAIN_GRACE_NS;

    while (w->n_busy) {
        now = now_ns();
        if (now >= drain_end) {
            worker_expire(w, now, true);
            break;
        }
        worker_receive(w);
        worker_expire(w, now_ns(), false);
        worker_wait(w, min_u64(worker_next_deadline(w), drain_end));
    }
}

/* Runs the open-loop measured phase of 'w': sends on the grid from
 * 'start_ns' + 'offset_ns' every 'interval_ns' until 'end_ns' or
 * 'max_requests', then drains. */
static void
worker_run_open(struct worker *w)
{
    uint64_t spin_ns = (uint64_t) w->cfg->spin_us * 1000;
    uint64_t n = 0;
    uint64_t next = w->start_ns + w->offset_ns;

    /* Bounded in time: the loop ends at 'end_ns' at the latest. */
    for (;;) {
        uint64_t now = now_ns();

        if (stopping() || now >= w->end_ns || next >= w->end_ns
            || n >= w->max_requests) {
            break;
        }
        for (int burst = 0; burst < SEND_BURST && next <= now
                            && n < w->max_requests; burst++) {
            if (!worker_send(w, next, UINT64_MAX)) {
                break;
            }
            n++;
            next = w->start_ns + w->offset_ns
                   + (uint64_t) (n * w->interval_ns);
        }
        worker_receive(w);
        now = now_ns();
        worker_expire(w, now, false);

        /* Sleep until shortly before the next send, then spin.  If a send
         * is due but cannot be made (no free request id, or a full TCP
         * output buffer), wait for a reply, for room or for a timeout
         * instead of spinning. */
        uint64_t wake = next > spin_ns ? next - spin_ns : 0;

        if (next <= now && !worker_can_send(w, w->next_server)) {
            wake = UINT64_MAX;
        }
        wake = min_u64(wake, worker_next_deadline(w));
        wake = min_u64(wake, w->end_ns);
        if (wake > now) {
            worker_wait(w, wake);
        }
    }

    /* Schedule points before the end that were never sent. */
    uint64_t now = now_ns();

    w->stop_ns = (n < w->max_requests && !stopping()
                  ? w->end_ns : min_u64(now, w->end_ns));
    if (n < w->max_requests && !stopping()) {
        double span = (double) (w->end_ns - w->start_ns) - w->offset_ns;
        double exact_due = span > 0 ? ceil(span / w->interval_ns) : 0;
        uint64_t due = exact_due;

        due = min_u64(due, w->max_requests);
        w->stats.behind = due > n ? due - n : 0;
    }
    worker_drain(w, now);
}

/* Runs the closed-loop measured phase of 'w': keeps 'concurrency' requests
 * in flight until 'end_ns' or 'max_requests', then drains. */
static void
worker_run_closed(struct worker *w)
{
    uint64_t n = 0;

    /* Start on time with the other threads. */
    while (now_ns() < w->start_ns && !stopping()) {
        worker_wait(w, w->start_ns);
    }

    /* Bounded in time: the loop ends at 'end_ns' at the latest. */
    for (;;) {
        uint64_t now = now_ns();

        if (stopping() || now >= w->end_ns || n >= w->max_requests) {
            break;
        }
        /* Bounded by 'concurrency' even if every send fails. */
        uint64_t send_errors = w->stats.send_errors;

        for (unsigned int i = 0; i < w->concurrency
                                 && w->n_busy < w->concurrency
                                 && n < w->max_requests; i++) {
            if (!worker_send(w, now_ns(), UINT64_MAX)) {
                break;
            }
            n++;
        }
        worker_receive(w);
        now = now_ns();
        worker_expire(w, now, false);
        if (w->n_busy >= w->concurrency) {
            /* Full: wait for a reply or the next timeout. */
            worker_wait(w, min_u64(worker_next_deadline(w), w->end_ns));
        } else if (w->stats.send_errors != send_errors) {
            /* Sends fail: back off instead of spinning on them. */
            worker_wait(w, min_u64(now + MAX_SLEEP_NS / 10, w->end_ns));
        } else if (!worker_can_send(w, w->next_server)) {
            /* The TCP output buffer is full: wait for room, a reply or a
             * timeout. */
            worker_wait(w, min_u64(worker_next_deadline(w), w->end_ns));
        }
    }
    w->stop_ns = min_u64(now_ns(), w->end_ns);
    worker_drain(w, now_ns());
}

/* Returns whether preload item 'item' of 'w' is stored. */
static bool
preload_is_done(const struct worker *w, uint64_t item)
{
    uint64_t bit = item - w->pl_lo;

    return (w->pl_done[bit / 64] >> (bit % 64)) & 1;
}

/* Runs the preload phase of 'w': sets every item in ['pl_lo', 'pl_hi'),
 * 'concurrency' at a time, in up to PRELOAD_ROUNDS rounds, each retrying
 * the items not yet stored. */
static void
worker_run_preload(struct worker *w)
{
    uint64_t deadline = now_ns() + PRELOAD_MAX_NS;

    for (unsigned int round = 0; round < PRELOAD_ROUNDS; round++) {
        bool any = false;

        for (uint64_t i = w->pl_lo; i < w->pl_hi && !any; i++) {
            any = !preload_is_done(w, i);
        }
        if (!any || stopping()) {
            break;
        }
        if (round) {
            struct timespec ts = { 0, PRELOAD_PAUSE_NS * round };

            nanosleep(&ts, NULL);
        }
        w->pl_rounds++;
        w->pl_cursor = w->pl_lo;

        /* Each iteration sends, receives or times out at least one request
         * or waits; time bounds the loop through 'deadline'. */
        for (;;) {
            uint64_t now = now_ns();

            if (now >= deadline || stopping()) {
                w->pl_timed_out = now >= deadline;
                worker_expire(w, now, true);
                break;
            }
            while (w->n_busy < w->concurrency && w->pl_cursor < w->pl_hi) {
                uint64_t item = w->pl_cursor;

                if (!preload_is_done(w, item)
                    && !worker_send(w, now_ns(), item)) {
                    break;
                }
                w->pl_cursor++;
            }
            worker_receive(w);
            worker_expire(w, now_ns(), false);
            if (w->pl_cursor >= w->pl_hi && !w->n_busy) {
                break;
            }
            if (w->n_busy >= w->concurrency || w->pl_cursor >= w->pl_hi
                || !worker_can_send(w, w->pl_cursor % w->cfg->n_servers)) {
                worker_wait(w, min_u64(worker_next_deadline(w), deadline));
            }
        }
        if (w->pl_timed_out) {
            break;
        }
    }

    w->pl_missing = 0;
    for (uint64_t i = w->pl_lo; i < w->pl_hi; i++) {
        w->pl_missing += !preload_is_done(w, i);
    }
}

/* Thread body: runs the phase of worker 'arg'. */
static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    /* Let ppoll() wake up on time rather than within the default 50 us
     * timer slack. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    switch (w->phase) {
    case PHASE_PRELOAD:
        worker_run_preload(w);
        break;
    case PHASE_OPEN:
        worker_run_open(w);
        break;
    case PHASE_CLOSED:
        worker_run_closed(w);
        break;
    }
    return NULL;
}

/* Initializes 'w' as thread 'index' for 'cfg' and 'zipf', with its UDP
 * socket or its TCP connections, and its buffers.  Exits on failure,
 * naming the server if a TCP connection cannot be established. */
static void
worker_init(struct worker *w, unsigned int index, const struct config *cfg,
            const struct zipf *zipf)
{
    memset(w, 0, sizeof *w);
    w->index = index;
    w->cfg = cfg;
    w->zipf = zipf;
    w->timeout_ns = (uint64_t) cfg->timeout_ms * 1000000ULL;
    w->fd = -1;

    w->slots = xcalloc(MAX_INFLIGHT, sizeof *w->slots);
    w->free_head = w->free_tail = -1;
    w->busy_head = w->busy_tail = -1;
    for (int32_t i = 0; i < MAX_INFLIGHT; i++) {
        w->slots[i].prev = w->slots[i].next = -1;
        w->slots[i].conn_next = -1;
        slot_append(w, i, &w->free_head, &w->free_tail);
    }

    if (cfg->protocol == PROTOCOL_TCP) {
        /* At most 65 kB, within TCP_OUT_BUF_SIZE. */
        w->max_request = max_request_size(cfg);
        w->conns = xcalloc(cfg->n_servers, sizeof *w->conns);
        w->pollfds = xcalloc(cfg->n_servers, sizeof *w->pollfds);
        for (size_t i = 0; i < cfg->n_servers; i++) {
            struct conn *c = &w->conns[i];

            c->fd = -1;
            c->server = i;
            c->outbuf = xcalloc(1, TCP_OUT_BUF_SIZE);
            c->inbuf = xcalloc(1, TCP_IN_BUF_SIZE);
            c->fifo_head = c->fifo_tail = -1;
            conn_open(w, c);
        }
    } else {
        w->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       0);
        if (w->fd < 0) {
            fatal("socket: %s", strerror(errno));
        }

        /* Large buffers absorb bursts of replies; the kernel may cap them
         * at net.core.rmem_max and wmem_max, which is fine. */
        int rcvbuf = 4 * 1024 * 1024;
        int sndbuf = 1024 * 1024;

        setsockopt(w->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        setsockopt(w->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

        w->sendbuf = xcalloc(1, MAX_DATAGRAM + 1);
        w->recvbufs = xcalloc(RECV_BATCH, MAX_DATAGRAM + 1);
        w->msgs = xcalloc(RECV_BATCH, sizeof *w->msgs);
        w->iovs = xcalloc(RECV_BATCH, sizeof *w->iovs);
        w->addrs = xcalloc(RECV_BATCH, sizeof *w->addrs);
    }

    uint64_t seed = cfg->seed ^ ((uint64_t) index * 0x9e3779b97f4a7c15ULL);

    w->rng = splitmix64(&seed) | 1;
    w->next_server = index % cfg->n_servers;

    w->valuebuf = xcalloc(1, cfg->value_max + 1);
    for (unsigned int i = 0; i < cfg->value_max; i++) {
        w->valuebuf[i] = 'a' + (i + index) % 26;
    }
}

/* Frees what worker_init() allocated for 'w' and closes its sockets. */
static void
worker_destroy(struct worker *w)
{
    if (w->conns) {
        for (size_t i = 0; i < w->cfg->n_servers; i++) {
            struct conn *c = &w->conns[i];

            if (c->fd >= 0) {
                close(c->fd);
            }
            free(c->outbuf);
            free(c->inbuf);
        }
        free(w->conns);
        free(w->pollfds);
    }
    for (size_t i = 0; i < MAX_INFLIGHT; i++) {
        slot_free_reasm(&w->slots[i]);
    }
    free(w->slots);
    free(w->sendbuf);
    free(w->valuebuf);
    free(w->recvbufs);
    free(w->msgs);
    free(w->iovs);
    free(w->addrs);
    free(w->pl_done);
    if (w->fd >= 0) {
        close(w->fd);
    }
}

/* Runs every worker of 'workers' (of 'n') in its own thread and waits for
 * them all.  Exits if a thread cannot be created. */
static void
run_workers(struct worker *workers, unsigned int n)
{
    for (unsigned int i = 0; i < n; i++) {
        int error = pthread_create(&workers[i].thread, NULL, worker_main,
                                   &workers[i]);
        if (error) {
            fatal("pthread_create: %s", strerror(error));
        }
    }
    for (unsigned int i = 0; i < n; i++) {
        pthread_join(workers[i].thread, NULL);
    }
}

/* Returns the 'index'-th of 'n' shares of 'total', where the first
 * 'total' % 'n' shares get one more. */
static uint64_t
share(uint64_t total, unsigned int n, unsigned int index)
{
    return total / n + (index < total % n);
}

/* Command line. */

/* Prints the usage text and exits successfully. */
static void __attribute__((noreturn))
usage(void)
{
    printf("\
Usage: %s --server=IP:PORT [OPTION]...\n\
Send memcached ASCII gets and sets over UDP or TCP at a target rate and\n\
report latency percentiles, throughput, hits, misses, timeouts and errors.\n\
\n\
Targets:\n\
  --server=IP:PORT       memcached address (IPv4), UDP or TCP as\n\
                         --protocol says.  Repeat for several servers:\n\
                         requests go to them in turn.\n\
  --protocol=udp|tcp     udp (default): one datagram per request behind\n\
                         the memcached UDP frame header; tcp: requests\n\
                         pipelined on one connection per server and\n\
                         thread (memcached, twemproxy and other proxies)\n\
  --allow-nonlocal       allow destinations outside 127.0.0.0/8 (e.g.\n\
                         private addresses in test network namespaces);\n\
                         without it they are refused.  Multicast and\n\
                         broadcast addresses are always refused.\n\
\n\
Load:\n\
  --rate=N               open loop: N requests/s in total (default 10000),\n\
                         latency measured from each request's scheduled\n\
                         send time; 0 selects closed loop\n\
  --concurrency=N        requests outstanding in closed loop and during\n\
                         --preload, in total (default 32)\n\
  --threads=N            sender threads, each with its own sockets and an\n\
                         equal share of rate and concurrency (default 1)\n\
  --duration=SECONDS     length of the measured run, at most 600 (default\n\
                         10 unless --requests is given); 0 with --preload\n\
                         only preloads\n\
  --requests=N           stop after N requests in total\n\
  --timeout-ms=N         per-request timeout (default 1000, at most 60000)\n\
  --spin-us=N            busy-wait the last N us before each scheduled\n\
                         send, sleep before that (default 100; 0 = sleep)\n\
  --seed=N               random seed (default 1)\n\
\n\
Keys and values:\n\
  --keys=N               number of keys (default 10000)\n\
  --key-prefix=STR       keys are STR followed by 0..N-1 (default kairo:)\n\
  --zipf=S               Zipf popularity with exponent S, key 0 the most\n\
                         popular (default 0: uniform)\n\
  --get-ratio=F          fraction of requests that are gets (default 0.9)\n\
  --value-size=N|MIN-MAX value size of sets in bytes (default 100)\n\
  --multiget=K           keys per get (default 1, at most %d)\n\
  --preload              before measuring, set every key on every server,\n\
                         closed loop, retrying unanswered sets up to %d\n\
                         times in all; fails if some key is not stored\n\
\n\
Output:\n\
  --format=FMT           text (default), json (one object) or csv (a\n\
                         header line and one line of values)\n\
  -h, --help             print this help and exit\n\
  -V, --version          print the version and exit\n\
\n\
Timeouts count requests without a full reply in time (dropped requests or\n\
replies); errors count ERROR, CLIENT_ERROR and SERVER_ERROR replies.\n\
Over TCP, replies come back in request order: a timeout or a reply that\n\
does not parse closes the connection, counts every request still in flight\n\
on it as a timeout, and reopens it for the next request (\"reconnects\").\n\
A server that refuses a connection or does not accept it within\n\
--timeout-ms, or that closes or resets one, is a fatal error.\n\
Latencies are recorded for every full reply, errors included, in a\n\
log-linear histogram with 1 us resolution below 128 us and 1.6%% above.\n\
Exit status: 0 after a run, 1 on a usage error, a system error or a\n\
preload that could not store every key.\n",
           PROGRAM_NAME, MAX_MULTIGET, PRELOAD_ROUNDS);
    exit(EXIT_SUCCESS);
}

/* Parses 's' as a decimal integer in ['min', 'max'] into '*out' for option
 * 'name'; exits with a message if it is not one. */
static void
parse_u64_option(const char *name, const char *s, uint64_t min,
                 uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long x;

    errno = 0;
    x = strtoull(s, &end, 10);
    if (!isdigit((unsigned char) s[0]) || *end || errno
        || x < min || x > max) {
        usage_error("--%s: \"%s\" is not an integer from %" PRIu64
                    " to %" PRIu64, name, s, min, max);
    }
    *out = x;
}

/* Like parse_u64_option() for an unsigned int. */
static unsigned int
parse_uint_option(const char *name, const char *s, unsigned int min,
                  unsigned int max)
{
    uint64_t x;

    parse_u64_option(name, s, min, max, &x);
    return x;
}

/* Parses 's' as a finite number in ['min', 'max'] for option 'name' and
 * returns it; exits with a message if it is not one. */
static double
parse_double_option(const char *name, const char *s, double min, double max)
{
    char *end;
    double x;

    errno = 0;
    x = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(x) || x < min || x > max) {
        usage_error("--%s: \"%s\" is not a number from %g to %g",
                    name, s, min, max);
    }
    return x;
}

/* Parses "N" or "MIN-MAX" in 's' as the value size range of 'cfg'. */
static void
parse_value_size(struct config *cfg, const char *s)
{
    const char *dash = strchr(s, '-');

    if (!dash) {
        cfg->value_min = cfg->value_max
            = parse_uint_option("value-size", s, 0, MAX_VALUE_SIZE);
        return;
    }

    char *lo = strndup(s, dash - s);

    if (!lo) {
        fatal("out of memory");
    }
    cfg->value_min = parse_uint_option("value-size", lo, 0, MAX_VALUE_SIZE);
    cfg->value_max = parse_uint_option("value-size", dash + 1, 0,
                                       MAX_VALUE_SIZE);
    free(lo);
    if (cfg->value_min > cfg->value_max) {
        usage_error("--value-size: minimum %u is above maximum %u",
                    cfg->value_min, cfg->value_max);
    }
}

/* Parses "IP:PORT" in 's' into '*sin'; exits with a message on failure.
 * The destination policy is checked later, by check_server(). */
static void
parse_server(const char *s, struct sockaddr_in *sin)
{
    const char *colon = strrchr(s, ':');

    if (!colon || colon == s) {
        usage_error("--server: \"%s\" is not IP:PORT", s);
    }

    size_t ip_len = colon - s;
    char ip[INET_ADDRSTRLEN];

    if (ip_len >= sizeof ip) {
        usage_error("--server: \"%s\": only IPv4 addresses are supported",
                    s);
    }
    memcpy(ip, s, ip_len);
    ip[ip_len] = '\0';

    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1) {
        usage_error("--server: \"%s\" is not an IPv4 address (IPv6 and "
                    "host names are not supported)", ip);
    }

    char *end;
    unsigned long port;

    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (!isdigit((unsigned char) colon[1]) || *end || errno
        || port < 1 || port > 65535) {
        usage_error("--server: \"%s\": port must be from 1 to 65535", s);
    }
    sin->sin_port = htons(port);
}

/* Checks that 'sin', given as 's', is an acceptable destination under
 * 'cfg'; exits with a message if not. */
static void
check_server(const struct config *cfg, const char *s,
             const struct sockaddr_in *sin)
{
    uint32_t addr = ntohl(sin->sin_addr.s_addr);

    if ((addr >> 24) == 0 || (addr >> 28) == 0xe || (addr >> 28) == 0xf) {
        usage_error("--server: refusing %s: not a unicast address", s);
    }
    if ((addr >> 24) != 127 && !cfg->allow_nonlocal) {
        usage_error("--server: refusing %s outside 127.0.0.0/8; pass "
                    "--allow-nonlocal to send load to other hosts", s);
    }
}

/* Parses the command line 'argc' and 'argv' into 'cfg'; exits with a
 * message on any error. */
static void
parse_options(int argc, char *argv[], struct config *cfg)
{
    enum {
        OPT_SERVER = UCHAR_MAX + 1,
        OPT_PROTOCOL,
        OPT_RATE,
        OPT_CONCURRENCY,
        OPT_THREADS,
        OPT_DURATION,
        OPT_REQUESTS,
        OPT_TIMEOUT_MS,
        OPT_KEYS,
        OPT_KEY_PREFIX,
        OPT_ZIPF,
        OPT_GET_RATIO,
        OPT_VALUE_SIZE,
        OPT_MULTIGET,
        OPT_PRELOAD,
        OPT_FORMAT,
        OPT_ALLOW_NONLOCAL,
        OPT_SEED,
        OPT_SPIN_US,
    };
    static const struct option long_options[] = {
        {"server", required_argument, NULL, OPT_SERVER},
        {"protocol", required_argument, NULL, OPT_PROTOCOL},
        {"rate", required_argument, NULL, OPT_RATE},
        {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"requests", required_argument, NULL, OPT_REQUESTS},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT_MS},
        {"keys", required_argument, NULL, OPT_KEYS},
        {"key-prefix", required_argument, NULL, OPT_KEY_PREFIX},
        {"zipf", required_argument, NULL, OPT_ZIPF},
        {"get-ratio", required_argument, NULL, OPT_GET_RATIO},
        {"value-size", required_argument, NULL, OPT_VALUE_SIZE},
        {"multiget", required_argument, NULL, OPT_MULTIGET},
        {"preload", no_argument, NULL, OPT_PRELOAD},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"allow-nonlocal", no_argument, NULL, OPT_ALLOW_NONLOCAL},
        {"seed", required_argument, NULL, OPT_SEED},
        {"spin-us", required_argument, NULL, OPT_SPIN_US},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    bool concurrency_set = false;

    memset(cfg, 0, sizeof *cfg);
    cfg->protocol = PROTOCOL_UDP;
    cfg->rate = 10000;
    cfg->concurrency = 32;
    cfg->n_threads = 1;
    cfg->timeout_ms = 1000;
    cfg->n_keys = 10000;
    snprintf(cfg->key_prefix, sizeof cfg->key_prefix, "kairo:");
    cfg->get_ratio = 0.9;
    cfg->value_min = cfg->value_max = 100;
    cfg->multiget = 1;
    cfg->format = FORMAT_TEXT;
    cfg->seed = 1;
    cfg->spin_us = 100;

    for (;;) {
        int c = getopt_long(argc, argv, "hV", long_options, NULL);

        if (c == -1) {
            break;
        }
        switch (c) {
        case OPT_SERVER:
            if (cfg->n_servers >= MAX_SERVERS) {
                usage_error("--server: at most %d servers", MAX_SERVERS);
            }
            parse_server(optarg, &cfg->servers[cfg->n_servers]);
            cfg->server_args[cfg->n_servers++] = optarg;
            break;
        case OPT_PROTOCOL:
            if (!strcmp(optarg, "udp")) {
                cfg->protocol = PROTOCOL_UDP;
            } else if (!strcmp(optarg, "tcp")) {
                cfg->protocol = PROTOCOL_TCP;
            } else {
                usage_error("--protocol: \"%s\" is not udp or tcp", optarg);
            }
            break;
        case OPT_RATE:
            parse_u64_option("rate", optarg, 0, MAX_RATE, &cfg->rate);
            break;
        case OPT_CONCURRENCY:
            cfg->concurrency = parse_uint_option("concurrency", optarg, 1,
                                                 MAX_INFLIGHT);
            concurrency_set = true;
            break;
        case OPT_THREADS:
            cfg->n_threads = parse_uint_option("threads", optarg, 1,
                                               MAX_THREADS);
            break;
        case OPT_DURATION:
            cfg->duration = parse_double_option("duration", optarg, 0,
                                                MAX_DURATION_S);
            cfg->duration_set = true;
            break;
        case OPT_REQUESTS:
            parse_u64_option("requests", optarg, 1, MAX_REQUESTS,
                             &cfg->requests);
            break;
        case OPT_TIMEOUT_MS:
            cfg->timeout_ms = parse_uint_option("timeout-ms", optarg, 1,
                                                MAX_TIMEOUT_MS);
            break;
        case OPT_KEYS:
            parse_u64_option("keys", optarg, 1, MAX_KEYS, &cfg->n_keys);
            break;
        case OPT_KEY_PREFIX:
            if (strlen(optarg) > MAX_PREFIX_LEN) {
                usage_error("--key-prefix: longer than %d bytes",
                            MAX_PREFIX_LEN);
            }
            for (const char *p = optarg; *p; p++) {
                if ((unsigned char) *p <= ' ' || *p == 0x7f) {
                    usage_error("--key-prefix: keys may not contain spaces "
                                "or control characters");
                }
            }
            snprintf(cfg->key_prefix, sizeof cfg->key_prefix, "%s", optarg);
            break;
        case OPT_ZIPF:
            cfg->zipf_s = parse_double_option("zipf", optarg, 0, MAX_ZIPF);
            break;
        case OPT_GET_RATIO:
            cfg->get_ratio = parse_double_option("get-ratio", optarg, 0, 1);
            break;
        case OPT_VALUE_SIZE:
            parse_value_size(cfg, optarg);
            break;
        case OPT_MULTIGET:
            cfg->multiget = parse_uint_option("multiget", optarg, 1,
                                              MAX_MULTIGET);
            break;
        case OPT_PRELOAD:
            cfg->preload = true;
            break;
        case OPT_FORMAT:
            if (!strcmp(optarg, "text")) {
                cfg->format = FORMAT_TEXT;
            } else if (!strcmp(optarg, "json")) {
                cfg->format = FORMAT_JSON;
            } else if (!strcmp(optarg, "csv")) {
                cfg->format = FORMAT_CSV;
            } else {
                usage_error("--format: \"%s\" is not text, json or csv",
                            optarg);
            }
            break;
        case OPT_ALLOW_NONLOCAL:
            cfg->allow_nonlocal = true;
            break;
        case OPT_SEED:
            parse_u64_option("seed", optarg, 0, UINT64_MAX, &cfg->seed);
            break;
        case OPT_SPIN_US:
            cfg->spin_us = parse_uint_option("spin-us", optarg, 0,
                                             MAX_SPIN_US);
            break;
        case 'h':
            usage();
        case 'V':
            printf("%s %s\n", PROGRAM_NAME, PROGRAM_VERSION);
            exit(EXIT_SUCCESS);
        default:
            /* getopt_long() already named the bad option. */
            usage_error("invalid command line");
        }
    }
    if (optind < argc) {
        usage_error("unexpected argument \"%s\"", argv[optind]);
    }

    if (!cfg->n_servers) {
        usage_error("at least one --server=IP:PORT is required");
    }
    for (size_t i = 0; i < cfg->n_servers; i++) {
        check_server(cfg, cfg->server_args[i], &cfg->servers[i]);
    }
    cfg->prefix_len = strlen(cfg->key_prefix);
    if (cfg->prefix_len + 20 > MAX_KEY_LEN) {
        usage_error("--key-prefix: keys would exceed %d bytes",
                    MAX_KEY_LEN);
    }
    if (cfg->duration_set && cfg->duration == 0 && !cfg->preload) {
        usage_error("--duration=0 runs nothing without --preload");
    }
    if (cfg->duration_set && cfg->duration == 0 && cfg->requests) {
        usage_error("--duration=0 (preload only) conflicts with --requests");
    }
    if (!cfg->duration_set) {
        cfg->duration = cfg->requests ? MAX_DURATION_S : 10;
    }
    if (cfg->rate && cfg->requests && !cfg->duration_set
        && (double) cfg->requests / cfg->rate > MAX_DURATION_S) {
        usage_error("--requests=%" PRIu64 " at --rate=%" PRIu64 " would "
                    "take more than %.0f s; lower it or add --duration",
                    cfg->requests, cfg->rate, MAX_DURATION_S);
    }
    if (cfg->concurrency < cfg->n_threads) {
        if (concurrency_set) {
            usage_error("--concurrency=%u is below --threads=%u",
                        cfg->concurrency, cfg->n_threads);
        }
        cfg->concurrency = cfg->n_threads;
    }
    if (cfg->requests && cfg->requests < cfg->n_threads) {
        usage_error("--requests=%" PRIu64 " is below --threads=%u",
                    cfg->requests, cfg->n_threads);
    }
    if (cfg->preload
        && cfg->n_keys * cfg->n_servers > MAX_KEYS) {
        usage_error("--preload: --keys times the number of servers exceeds "
                    "%llu", MAX_KEYS);
    }
}

/* Output. */

/* Kinds of values in a result field. */
enum field_type {
    FIELD_UINT,                 /* Unsigned integer. */
    FIELD_DOUBLE,               /* Number with decimals. */
    FIELD_STRING,               /* Text, JSON-safe as is. */
};

/* One named result, for the JSON and CSV formats. */
struct field {
    const char *name;           /* Field name, a JSON key and CSV header. */
    enum field_type type;       /* Which member holds the value. */
    uint64_t u;                 /* Value if FIELD_UINT. */
    double d;                   /* Value if FIELD_DOUBLE. */
    const char *s;              /* Value if FIELD_STRING. */
};

/* Results of the preload phase, summed over threads. */
struct preload_result {
    bool ran;                   /* Whether a preload ran. */
    uint64_t items;             /* Key and server pairs to store. */
    uint64_t stored;            /* Pairs stored. */
    uint64_t missing;           /* Pairs not stored after every round. */
    uint64_t sets;              /* Sets sent, retries included. */
    uint64_t timeouts;          /* Sets unanswered. */
    unsigned int rounds;        /* Most rounds any thread ran. */
    double seconds;             /* Wall time. */
};

/* Everything reported after a run. */
struct report {
    const struct config *cfg;   /* The configuration. */
    struct preload_result pl;   /* Preload, if any. */
    bool measured;              /* Whether a measured phase ran. */
    bool interrupted;           /* Whether a signal cut the run short. */
    double seconds;             /* Length of the sending window. */
    struct stats st;            /* Counters summed over threads. */
};

/* Appends to 'fields' (with '*n' used) an unsigned field 'name' = 'u'. */
static void
field_uint(struct field *fields, size_t *n, const char *name, uint64_t u)
{
    fields[(*n)++] = (struct field) { .name = name, .type = FIELD_UINT,
                                      .u = u };
}

/* Appends to 'fields' (with '*n' used) a numeric field 'name' = 'd'. */
static void
field_double(struct field *fields, size_t *n, const char *name, double d)
{
    fields[(*n)++] = (struct field) { .name = name, .type = FIELD_DOUBLE,
                                      .d = d };
}

/* Appends to 'fields' (with '*n' used) a text field 'name' = 's'. */
static void
field_string(struct field *fields, size_t *n, const char *name,
             const char *s)
{
    fields[(*n)++] = (struct field) { .name = name, .type = FIELD_STRING,
                                      .s = s };
}

/* Returns the name of 'protocol', as --protocol takes it. */
static const char *
protocol_name(enum protocol protocol)
{
    switch (protocol) {
    case PROTOCOL_UDP:
        return "udp";
    case PROTOCOL_TCP:
        return "tcp";
    }
    return "?";
}

/* Returns 'a' / 'b', or 0 if 'b' is 0. */
static double
ratio(double a, double b)
{
    return b ? a / b : 0;
}

/* Writes the servers of 'cfg', comma-separated, into 'buf' of 'size'. */
static void
format_servers(const struct config *cfg, char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < cfg->n_servers && len < size; i++) {
        len += snprintf(buf + len, size - len, "%s%s", i ? "," : "",
                        cfg->server_args[i]);
    }
}

/* Fills 'fields' (room for at least 64) from 'r' and returns how many. */
static size_t
report_fields(const struct report *r, struct field *fields,
              const char *servers)
{
    const struct config *cfg = r->cfg;
    const struct stats *st = &r->st;
    size_t n = 0;

    field_string(fields, &n, "servers", servers);
    field_string(fields, &n, "protocol", protocol_name(cfg->protocol));
    field_uint(fields, &n, "threads", cfg->n_threads);
    field_string(fields, &n, "mode", cfg->rate ? "open" : "closed");
    field_uint(fields, &n, "target_rate", cfg->rate);
    field_uint(fields, &n, "concurrency", cfg->rate ? 0 : cfg->concurrency);
    field_uint(fields, &n, "keys", cfg->n_keys);
    field_double(fields, &n, "zipf", cfg->zipf_s);
    field_double(fields, &n, "get_ratio", cfg->get_ratio);
    field_uint(fields, &n, "multiget", cfg->multiget);
    field_uint(fields, &n, "value_min", cfg->value_min);
    field_uint(fields, &n, "value_max", cfg->value_max);
    field_uint(fields, &n, "timeout_ms", cfg->timeout_ms);
    field_uint(fields, &n, "preload_stored", r->pl.stored);
    field_uint(fields, &n, "preload_missing", r->pl.missing);
    field_double(fields, &n, "preload_seconds", r->pl.seconds);
    field_uint(fields, &n, "interrupted", r->interrupted);
    field_double(fields, &n, "seconds", r->seconds);
    field_uint(fields, &n, "sent", st->sent);
    field_double(fields, &n, "sent_per_s", ratio(st->sent, r->seconds));
    field_uint(fields, &n, "completed", st->completed);
    field_double(fields, &n, "completed_per_s",
                 ratio(st->completed, r->seconds));
    field_uint(fields, &n, "behind", st->behind);
    field_uint(fields, &n, "send_errors", st->send_errors);
    field_uint(fields, &n, "gets", st->gets);
    field_uint(fields, &n, "sets", st->sets);
    field_uint(fields, &n, "hits", st->hits);
    field_uint(fields, &n, "misses", st->misses);
    field_double(fields, &n, "hit_ratio",
                 ratio(st->hits, st->hits + st->misses));
    field_uint(fields, &n, "stored", st->stored);
    field_uint(fields, &n, "not_stored", st->not_stored);
    field_uint(fields, &n, "timeouts", st->timeouts);
    field_uint(fields, &n, "errors", st->errors);
    field_uint(fields, &n, "protocol_errors", st->protocol_errors);
    field_uint(fields, &n, "late_replies", st->late_replies);
    field_uint(fields, &n, "recv_errors", st->recv_errors);
    field_uint(fields, &n, "reconnects", st->reconnects);
    field_uint(fields, &n, "p50_us", stats_percentile(st, 50));
    field_uint(fields, &n, "p90_us", stats_percentile(st, 90));
    field_uint(fields, &n, "p99_us", stats_percentile(st, 99));
    field_uint(fields, &n, "p999_us", stats_percentile(st, 99.9));
    field_uint(fields, &n, "max_us", st->lat_max_us);
    field_double(fields, &n, "mean_us", ratio(st->lat_sum_us,
                                              st->lat_count));
    field_double(fields, &n, "send_lag_mean_us",
                 ratio(st->lag_sum_ns / 1000.0, st->sent));
    field_double(fields, &n, "send_lag_max_us", st->lag_max_ns / 1000.0);
    return n;
}

/* Prints field 'f' as a value (JSON-compatible) to stdout. */
static void
print_field_value(const struct field *f, bool quote_strings)
{
    switch (f->type) {
    case FIELD_UINT:
        printf("%" PRIu64, f->u);
        break;
    case FIELD_DOUBLE:
        printf("%.3f", f->d);
        break;
    case FIELD_STRING:
        printf(quote_strings ? "\"%s\"" : "%s", f->s);
        break;
    }
}

/* Prints 'r' in the configured format to stdout. */
static void
print_report(const struct report *r)
{
    const struct config *cfg = r->cfg;
    const struct stats *st = &r->st;
    char servers[MAX_SERVERS * 24];
    struct field fields[64];
    size_t n;

    format_servers(cfg, servers, sizeof servers);
    n = report_fields(r, fields, servers);

    if (cfg->format == FORMAT_JSON) {
        putchar('{');
        for (size_t i = 0; i < n; i++) {
            printf("%s\"%s\": ", i ? ", " : "", fields[i].name);
            print_field_value(&fields[i], true);
        }
        puts("}");
        return;
    } else if (cfg->format == FORMAT_CSV) {
        for (size_t i = 0; i < n; i++) {
            printf("%s%s", i ? "," : "", fields[i].name);
        }
        putchar('\n');
        for (size_t i = 0; i < n; i++) {
            if (i) {
                putchar(',');
            }
            /* The server list holds commas, so quote strings. */
            print_field_value(&fields[i], true);
        }
        putchar('\n');
        return;
    }

    printf("servers      %s (%s, %u thread%s)\n", servers,
           protocol_name(cfg->protocol), cfg->n_threads,
           cfg->n_threads == 1 ? "" : "s");
    if (cfg->rate) {
        printf("mode         open loop, %" PRIu64 " req/s", cfg->rate);
    } else {
        printf("mode         closed loop, %u outstanding", cfg->concurrency);
    }
    printf(", %s keys %" PRIu64, cfg->zipf_s ? "zipf" : "uniform",
           cfg->n_keys);
    if (cfg->zipf_s) {
        printf(" (s=%g)", cfg->zipf_s);
    }
    printf(", %.0f%% gets x%u, values %u", cfg->get_ratio * 100,
           cfg->multiget, cfg->value_min);
    if (cfg->value_max != cfg->value_min) {
        printf("-%u", cfg->value_max);
    }
    printf(" B\n");
    if (r->pl.ran) {
        printf("preload      %" PRIu64 " of %" PRIu64 " stored in %.2f s "
               "(%" PRIu64 " sets, %u round%s, %" PRIu64 " timeouts)\n",
               r->pl.stored, r->pl.items, r->pl.seconds, r->pl.sets,
               r->pl.rounds, r->pl.rounds == 1 ? "" : "s", r->pl.timeouts);
    }
    if (!r->measured) {
        return;
    }
    printf("duration     %.3f s%s\n", r->seconds,
           r->interrupted ? " (interrupted)" : "");
    printf("sent         %" PRIu64 " (%.1f/s), behind schedule %" PRIu64
           ", send errors %" PRIu64 "\n", st->sent,
           ratio(st->sent, r->seconds), st->behind, st->send_errors);
    printf("completed    %" PRIu64 " (%.1f/s)\n", st->completed,
           ratio(st->completed, r->seconds));
    printf("gets         %" PRIu64 ": %" PRIu64 " hits, %" PRIu64
           " misses (%.2f%% hits)\n", st->gets, st->hits, st->misses,
           100 * ratio(st->hits, st->hits + st->misses));
    printf("sets         %" PRIu64 ": %" PRIu64 " stored, %" PRIu64
           " not stored\n", st->sets, st->stored, st->not_stored);
    printf("failures     %" PRIu64 " timeouts, %" PRIu64 " errors, %"
           PRIu64 " protocol errors, %" PRIu64 " late replies", st->timeouts,
           st->errors, st->protocol_errors, st->late_replies);
    if (cfg->protocol == PROTOCOL_TCP) {
        printf(", %" PRIu64 " reconnects", st->reconnects);
    }
    putchar('\n');
    printf("latency us   p50 %" PRIu64 ", p90 %" PRIu64 ", p99 %" PRIu64
           ", p99.9 %" PRIu64 ", max %" PRIu64 ", mean %.1f\n",
           stats_percentile(st, 50), stats_percentile(st, 90),
           stats_percentile(st, 99), stats_percentile(st, 99.9),
           st->lat_max_us, ratio(st->lat_sum_us, st->lat_count));
    if (cfg->rate) {
        printf("send lag us  mean %.1f, max %.1f\n",
               ratio(st->lag_sum_ns / 1000.0, st->sent),
               st->lag_max_ns / 1000.0);
    }
}

/* Runs the preload phase on 'workers' and fills 'pl'. */
static void
run_preload(const struct config *cfg, struct worker *workers,
            struct preload_result *pl)
{
    uint64_t items = cfg->n_keys * cfg->n_servers;
    uint64_t lo = 0;
    uint64_t start = now_ns();

    memset(pl, 0, sizeof *pl);
    pl->ran = true;
    pl->items = items;
    for (unsigned int i = 0; i < cfg->n_threads; i++) {
        struct worker *w = &workers[i];
        uint64_t count = share(items, cfg->n_threads, i);

        w->phase = PHASE_PRELOAD;
        w->measure = false;
        w->concurrency = share(cfg->concurrency, cfg->n_threads, i);
        w->pl_lo = lo;
        w->pl_hi = lo + count;
        w->pl_done = xcalloc(count / 64 + 1, sizeof *w->pl_done);
        memset(&w->stats, 0, sizeof w->stats);
        lo += count;
    }
    run_workers(workers, cfg->n_threads);

    pl->seconds = (now_ns() - start) / 1e9;
    for (unsigned int i = 0; i < cfg->n_threads; i++) {
        struct worker *w = &workers[i];

        pl->missing += w->pl_missing;
        pl->sets += w->stats.sets;
        pl->timeouts += w->stats.timeouts;
        if (w->pl_rounds > pl->rounds) {
            pl->rounds = w->pl_rounds;
        }
        free(w->pl_done);
        w->pl_done = NULL;
    }
    pl->stored = items - pl->missing;
}

/* Runs the measured phase on 'workers' and fills 'r'. */
static void
run_measured(const struct config *cfg, struct worker *workers,
             struct report *r)
{
    uint64_t start = now_ns() + START_DELAY_NS;
    uint64_t end = start + (uint64_t) (cfg->duration * 1e9);

    for (unsigned int i = 0; i < cfg->n_threads; i++) {
        struct worker *w = &workers[i];

        w->phase = cfg->rate ? PHASE_OPEN : PHASE_CLOSED;
        w->measure = true;
        w->start_ns = start;
        w->end_ns = end;
        if (cfg->rate) {
            w->interval_ns = 1e9 * cfg->n_threads / cfg->rate;
            w->offset_ns = (uint64_t) (1e9 * i / cfg->rate);
        }
        w->max_requests = (cfg->requests
                           ? share(cfg->requests, cfg->n_threads, i)
                           : UINT64_MAX);
        w->concurrency = share(cfg->concurrency, cfg->n_threads, i);
        memset(&w->stats, 0, sizeof w->stats);
    }
    run_workers(workers, cfg->n_threads);

    uint64_t stop = start;

    memset(&r->st, 0, sizeof r->st);
    for (unsigned int i = 0; i < cfg->n_threads; i++) {
        stats_add(&r->st, &workers[i].stats);
        if (workers[i].stop_ns > stop) {
            stop = workers[i].stop_ns;
        }
    }
    r->measured = true;
    r->seconds = (stop - start) / 1e9;
}

/* Parses the command line 'argc' and 'argv', preloads if asked, runs the
 * measured phase and prints the report.  Returns the exit status. */
int
main(int argc, char *argv[])
{
    static struct config cfg;
    static struct report report;
    struct zipf zipf;
    struct worker *workers;
    int status = EXIT_SUCCESS;

    parse_options(argc, argv, &cfg);
    if (cfg.zipf_s > 0) {
        zipf_init(&zipf, cfg.n_keys, cfg.zipf_s);
    }

    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handle_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    workers = xcalloc(cfg.n_threads, sizeof *workers);
    for (unsigned int i = 0; i < cfg.n_threads; i++) {
        worker_init(&workers[i], i, &cfg, cfg.zipf_s > 0 ? &zipf : NULL);
    }

    report.cfg = &cfg;
    if (cfg.preload) {
        run_preload(&cfg, workers, &report.pl);
        if (report.pl.missing) {
            fprintf(stderr, "%s: preload: %" PRIu64 " of %" PRIu64
                    " sets not stored after %u rounds%s\n", PROGRAM_NAME,
                    report.pl.missing, report.pl.items, report.pl.rounds,
                    stopping() ? " (interrupted)" : "");
            status = EXIT_FAILURE;
        }
    }
    if (status == EXIT_SUCCESS && cfg.duration > 0 && !stopping()) {
        run_measured(&cfg, workers, &report);
    }
    report.interrupted = stopping();
    print_report(&report);

    for (unsigned int i = 0; i < cfg.n_threads; i++) {
        worker_destroy(&workers[i]);
    }
    free(workers);
    return status;
}
