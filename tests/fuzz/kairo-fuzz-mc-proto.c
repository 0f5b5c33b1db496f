/*
 * Copyright (c) 2026 The Kairo developers.
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
 *
 * SPDX-License-Identifier: Apache-2.0
 */

/* libFuzzer target for lib/kairo-mc-proto.c, meant to be built with
 * -fsanitize=fuzzer,address,undefined (see tests/fuzz/kairo-fuzz-run).
 *
 * Each input is one UDP payload, frame header included.  It is copied into
 * a heap buffer of exactly its size, so that AddressSanitizer reports any
 * read past its end, and then:
 *
 *   - parsed with kairo_mc_parse_request() and, from offset 8, with
 *     kairo_mc_parse_next(), which must agree with each other;
 *
 *   - walked command by command with kairo_mc_parse_next(), as a snooper of
 *     pipelined datagrams does;
 *
 *   - for every ASCII get, gets, gat or gats found, used to build
 *     sub-requests with kairo_mc_build_get() for several key subsets into
 *     exactly sized heap buffers, some of them too small;
 *
 *   - read as a reply with kairo_mc_parse_reply_item(), as a cache filling
 *     from it does, each VALUE item written back with kairo_mc_put_value()
 *     and read again;
 *
 *   - cut into datagrams of a reply message, sometimes repeated, dropped or
 *     out of order, and fed to the reassembly of lib/kairo-mc-cache.c, whose
 *     state carries over from input to input; a message it completes must
 *     be exactly the datagrams' payloads in order, and is read as a reply.
 *
 * Every result is checked against the contract in lib/kairo-mc-proto.h, and
 * any violation aborts, so that libFuzzer keeps the input. */

#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kairo-mc-cache.h"
#include "kairo-mc-proto.h"
#include "util.h"

/* The libFuzzer entry point; libFuzzer supplies main(). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts, naming the invariant 'COND' and where it is checked, unless
 * 'COND' holds. */
#define FUZZ_CHECK(COND)                                \
    do {                                                \
        if (!(COND)) {                                  \
            fuzz_fail(__FILE__, __LINE__, #COND);       \
        }                                               \
    } while (0)

/* Prints that the invariant 'cond', checked at 'file':'line', does not
 * hold, and aborts, so that libFuzzer saves the input as a crash. */
static OVS_NO_RETURN void
fuzz_fail(const char *file, int line, const char *cond)
{
    set_program_name("kairo-fuzz-mc-proto");
    ovs_abort(0, "%s:%d: invariant violated: %s", file, line, cond);
}

/* Returns a heap buffer of exactly 'size' bytes, with no slack that could
 * hide an overrun from AddressSanitizer, or a null pointer if 'size' is 0,
 * so that any access to an empty buffer faults. */
static uint8_t *
alloc_exact(size_t size)
{
    return size ? xmalloc(size) : NULL;
}

/* Returns the 64-bit FNV-1a hash of the 'size' bytes at 'data'.  Key masks
 * and buffer sizes are derived from it, so that they change as the fuzzer
 * mutates the input. */
static uint64_t
hash_input(const uint8_t *data, size_t size)
{
    uint64_t hash = UINT64_C(0xcbf29ce484222325);

    for (size_t i = 0; i < size; i++) {
        hash = (hash ^ data[i]) * UINT64_C(0x100000001b3);
    }
    return hash;
}

/* Returns a mask with the low 'n' bits set, for 'n' up to 64. */
static uint64_t
low_bits(size_t n)
{
    return n >= 64 ? UINT64_MAX : (UINT64_C(1) << n) - 1;
}

/* Reads the big-endian 16-bit value at 'p'. */
static uint16_t
read_be16(const uint8_t *p)
{
    return ((uint16_t) p[0] << 8) | p[1];
}

/* Returns whether 'name' is a usable name for a counter or a reason: not
 * NULL, not empty and not the "unknown" that out-of-range values get. */
static bool
name_ok(const char *name)
{
    return name && name[0] && strcmp(name, "unknown");
}

/* Checks that 'error' is a value of enum kairo_mc_error that has a name. */
static void
check_error(enum kairo_mc_error error)
{
    FUZZ_CHECK((unsigned int) error < KAIRO_MC_N_ERRORS);
    FUZZ_CHECK(name_ok(kairo_mc_error_to_string(error)));
}

/* Checks that 'frame' holds the frame header at the start of the
 * 'size'-byte 'payload', which is at least 8 bytes long, and that
 * kairo_mc_put_frame() writes it back unchanged. */
static void
check_frame(const struct kairo_mc_frame *frame, const uint8_t *payload)
{
    uint8_t wire[KAIRO_MC_FRAME_HEADER_LEN];

    FUZZ_CHECK(frame->request_id == read_be16(payload));
    FUZZ_CHECK(frame->seq == read_be16(payload + 2));
    FUZZ_CHECK(frame->total == read_be16(payload + 4));
    FUZZ_CHECK(frame->reserved == read_be16(payload + 6));

    kairo_mc_put_frame(wire, frame);
    FUZZ_CHECK(!memcmp(wire, payload, sizeof wire));
}

/* Returns whether 'span' lies inside bytes 'lo' to 'hi' (exclusive) of
 * 'payload', with an offset that agrees with its pointer.  An empty span
 * means an absent field, so it always passes. */
static bool
span_within(const struct kairo_mc_span *span, const uint8_t *payload,
            size_t lo, size_t hi)
{
    uintptr_t base = (uintptr_t) payload;
    uintptr_t p = (uintptr_t) span->data;
    size_t ofs;

    if (!span->len) {
        return true;
    } else if (!span->data || p < base) {
        return false;
    }
    ofs = p - base;
    return ofs == span->ofs && ofs >= lo && ofs <= hi
           && span->len <= hi - ofs;
}

/* Returns whether 'span' holds exactly the NUL-terminated 's'. */
static bool
span_is(const struct kairo_mc_span *span, const char *s)
{
    size_t len = strlen(s);

    return span->len == len && !memcmp(span->data, s, len);
}

/* Returns whether spans 'a' and 'b' have the same bytes. */
static bool
span_equal(const struct kairo_mc_span *a, const struct kairo_mc_span *b)
{
    return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

/* Returns whether 'op' is one of the ASCII retrievals, the only requests
 * that kairo_mc_build_get() accepts. */
static bool
op_is_retrieval(enum kairo_mc_op op)
{
    return (op == KAIRO_MC_OP_GET || op == KAIRO_MC_OP_GETS
            || op == KAIRO_MC_OP_GAT || op == KAIRO_MC_OP_GATS);
}

/* Checks that 'op' is possible in 'protocol': meta operations only in the
 * meta protocol, NOOP only in binary, and no binary opcode maps to gets,
 * gats or cas. */
static void
check_op_protocol(enum kairo_mc_op op, enum kairo_mc_protocol protocol)
{
    bool is_meta_op = op >= KAIRO_MC_OP_MG && op <= KAIRO_MC_OP_MN;

    FUZZ_CHECK((unsigned int) op < KAIRO_MC_N_OPS);
    FUZZ_CHECK(name_ok(kairo_mc_op_to_string(op)));
    FUZZ_CHECK(name_ok(kairo_mc_protocol_to_string(protocol)));

    switch (protocol) {
    case KAIRO_MC_ASCII:
        FUZZ_CHECK(!is_meta_op && op != KAIRO_MC_OP_NOOP);
        break;
    case KAIRO_MC_META:
        FUZZ_CHECK(is_meta_op);
        break;
    case KAIRO_MC_BINARY:
        FUZZ_CHECK(!is_meta_op && op != KAIRO_MC_OP_GETS
                   && op != KAIRO_MC_OP_GATS && op != KAIRO_MC_OP_CAS);
        break;
    default:
        FUZZ_CHECK(!"protocol out of range");
    }
}

/* Checks the number of keys of the successfully parsed 'req' against its
 * operation, and every key: inside the command, 1 to 250 bytes, and, for
 * ASCII and meta keys, free of control characters and spaces.  The meta 'b'
 * flag does not relax this: the key span is then the base64 text as sent,
 * which obeys the same rules. */
static void
check_keys(const struct kairo_mc_request *req, const uint8_t *payload)
{
    FUZZ_CHECK(req->n_keys <= KAIRO_MC_MAX_KEYS);
    if (req->op == KAIRO_MC_OP_FLUSH_ALL || req->op == KAIRO_MC_OP_MN
        || req->op == KAIRO_MC_OP_NOOP) {
        FUZZ_CHECK(req->n_keys == 0);
    } else if (req->protocol == KAIRO_MC_ASCII && op_is_retrieval(req->op)) {
        FUZZ_CHECK(req->n_keys >= 1);
    } else {
        FUZZ_CHECK(req->n_keys == 1);
    }

    for (size_t i = 0; i < req->n_keys; i++) {
        const struct kairo_mc_span *key = &req->keys[i];

        FUZZ_CHECK(key->len >= 1 && key->len <= KAIRO_MC_MAX_KEY_LEN);
        FUZZ_CHECK(span_within(key, payload, req->cmd_ofs, req->cmd_end));
        if (req->protocol != KAIRO_MC_BINARY) {
            for (size_t j = 0; j < key->len; j++) {
                FUZZ_CHECK(key->data[j] > ' ' && key->data[j] != 0x7f);
            }
        }
        if (i > 0) {
            /* Keys come in the order they were sent. */
            FUZZ_CHECK(key->ofs > req->keys[i - 1].ofs);
        }
    }
}

/* Checks 'is_read' and 'is_write' of the successfully parsed 'req' against
 * the classification in the header.  Only mg may be either a read or both,
 * depending on its flags. */
static void
check_classification(const struct kairo_mc_request *req)
{
    switch (req->op) {
    case KAIRO_MC_OP_GET:
    case KAIRO_MC_OP_GETS:
        FUZZ_CHECK(req->is_read && !req->is_write);
        break;
    case KAIRO_MC_OP_GAT:
    case KAIRO_MC_OP_GATS:
        FUZZ_CHECK(req->is_read && req->is_write);
        break;
    case KAIRO_MC_OP_MG:
        FUZZ_CHECK(req->is_read);
        break;
    case KAIRO_MC_OP_MN:
    case KAIRO_MC_OP_NOOP:
        FUZZ_CHECK(!req->is_read && !req->is_write);
        break;
    default:
        FUZZ_CHECK(!req->is_read && req->is_write);
        break;
    }
}

/* Checks every field of 'req', which kairo_mc_parse_request() or
 * kairo_mc_parse_next() filled in successfully from the command at offset
 * 'ofs' of the 'size'-byte 'payload'. */
static void
check_request(const struct kairo_mc_request *req, const uint8_t *payload,
              size_t size, size_t ofs)
{
    check_frame(&req->frame, payload);
    check_op_protocol(req->op, req->protocol);

    FUZZ_CHECK(req->cmd_ofs == ofs);
    FUZZ_CHECK(req->cmd_end > req->cmd_ofs && req->cmd_end <= size);
    FUZZ_CHECK(span_within(&req->name, payload, req->cmd_ofs, req->cmd_end));
    FUZZ_CHECK(span_within(&req->exptime_token, payload, req->cmd_ofs,
                           req->cmd_end));
    FUZZ_CHECK(span_within(&req->meta_flags, payload, req->cmd_ofs,
                           req->cmd_end));
    FUZZ_CHECK(span_within(&req->data, payload, req->cmd_ofs, req->cmd_end));

    if (req->protocol == KAIRO_MC_BINARY) {
        FUZZ_CHECK(payload[req->cmd_ofs] == 0x80);
        FUZZ_CHECK(req->cmd_end - req->cmd_ofs >= KAIRO_MC_BIN_HEADER_LEN);
        FUZZ_CHECK(!req->name.len && !req->meta_flags.len);
        FUZZ_CHECK(req->bin_opcode == payload[req->cmd_ofs + 1]);
    } else {
        /* A text command is named after its operation and ends in CRLF. */
        FUZZ_CHECK(span_is(&req->name, kairo_mc_op_to_string(req->op)));
        FUZZ_CHECK(req->cmd_end - req->cmd_ofs >= 2);
        FUZZ_CHECK(payload[req->cmd_end - 2] == '\r');
        FUZZ_CHECK(payload[req->cmd_end - 1] == '\n');
    }
    FUZZ_CHECK(!req->key_base64 || req->protocol == KAIRO_MC_META);
    FUZZ_CHECK(!req->meta_flags.len || req->protocol == KAIRO_MC_META);
    if (req->protocol == KAIRO_MC_ASCII
        && (req->op == KAIRO_MC_OP_GAT || req->op == KAIRO_MC_OP_GATS)) {
        FUZZ_CHECK(req->has_exptime && req->exptime_token.len > 0);
    } else {
        FUZZ_CHECK(!req->exptime_token.len);
    }
    if (req->has_exptime && req->protocol != KAIRO_MC_BINARY) {
        FUZZ_CHECK(req->exptime >= INT32_MIN && req->exptime <= INT32_MAX);
    }

    check_keys(req, payload);
    check_classification(req);
}

/* Checks that 'a' and 'b', two successful parses of the same command of
 * the same payload, agree. */
static void
check_same_request(const struct kairo_mc_request *a,
                   const struct kairo_mc_request *b)
{
    FUZZ_CHECK(a->protocol == b->protocol && a->op == b->op);
    FUZZ_CHECK(a->is_read == b->is_read && a->is_write == b->is_write);
    FUZZ_CHECK(a->noreply == b->noreply && a->key_base64 == b->key_base64);
    FUZZ_CHECK(a->has_exptime == b->has_exptime && a->exptime == b->exptime);
    FUZZ_CHECK(a->item_flags == b->item_flags && a->cas == b->cas);
    FUZZ_CHECK(a->delta == b->delta && a->bin_opcode == b->bin_opcode);
    FUZZ_CHECK(a->bin_opaque == b->bin_opaque);
    FUZZ_CHECK(a->cmd_ofs == b->cmd_ofs && a->cmd_end == b->cmd_end);
    FUZZ_CHECK(a->name.ofs == b->name.ofs && a->name.len == b->name.len);
    FUZZ_CHECK(a->data.ofs == b->data.ofs && a->data.len == b->data.len);
    FUZZ_CHECK(a->n_keys == b->n_keys);
    for (size_t i = 0; i < a->n_keys && i < b->n_keys; i++) {
        FUZZ_CHECK(a->keys[i].ofs == b->keys[i].ofs);
        FUZZ_CHECK(a->keys[i].len == b->keys[i].len);
    }
}

/* Writes into 'out', which must have room for it, the payload that the
 * contract of kairo_mc_build_get() specifies for 'req' and 'mask', and
 * returns its length.  With 'out' null, only returns the length. */
static size_t
expected_get(const struct kairo_mc_request *req, uint64_t mask, uint8_t *out)
{
    bool has_exptime = (req->op == KAIRO_MC_OP_GAT
                        || req->op == KAIRO_MC_OP_GATS);
    size_t n = KAIRO_MC_FRAME_HEADER_LEN;

    if (out) {
        struct kairo_mc_frame frame = {
            .request_id = req->frame.request_id,
            .total = 1,
        };

        kairo_mc_put_frame(out, &frame);
        memcpy(out + n, req->name.data, req->name.len);
    }
    n += req->name.len;
    if (has_exptime) {
        if (out) {
            out[n] = ' ';
            memcpy(out + n + 1, req->exptime_token.data,
                   req->exptime_token.len);
        }
        n += 1 + req->exptime_token.len;
    }
    for (size_t i = 0; i < req->n_keys; i++) {
        if (mask & (UINT64_C(1) << i)) {
            if (out) {
                out[n] = ' ';
                memcpy(out + n + 1, req->keys[i].data, req->keys[i].len);
            }
            n += 1 + req->keys[i].len;
        }
    }
    if (out) {
        out[n] = '\r';
        out[n + 1] = '\n';
    }
    return n + 2;
}

/* Checks that the 'len'-byte 'built' payload, which kairo_mc_build_get()
 * made from 'req' and 'mask', is exactly what its contract says, and that
 * it parses back into a single request for the same operation, request id
 * and expiration time, with exactly the chosen keys in order. */
static void
check_built_get(const struct kairo_mc_request *req, uint64_t mask,
                const uint8_t *built, size_t len)
{
    struct kairo_mc_request sub;
    enum kairo_mc_error error;
    uint8_t *expected;
    size_t j = 0;

    FUZZ_CHECK(len == expected_get(req, mask, NULL));
    expected = alloc_exact(len);
    expected_get(req, mask, expected);
    FUZZ_CHECK(!memcmp(built, expected, len));
    free(expected);

    error = kairo_mc_parse_request(built, len, &sub);
    check_error(error);
    FUZZ_CHECK(error == KAIRO_MC_OK);
    check_request(&sub, built, len, KAIRO_MC_FRAME_HEADER_LEN);
    FUZZ_CHECK(sub.cmd_end == len);
    FUZZ_CHECK(sub.frame.request_id == req->frame.request_id);
    FUZZ_CHECK(sub.frame.seq == 0 && sub.frame.total == 1);
    FUZZ_CHECK(sub.frame.reserved == 0);
    FUZZ_CHECK(sub.protocol == KAIRO_MC_ASCII && sub.op == req->op);
    FUZZ_CHECK(sub.has_exptime == req->has_exptime);
    FUZZ_CHECK(sub.exptime == req->exptime);
    FUZZ_CHECK(span_equal(&sub.exptime_token, &req->exptime_token));

    for (size_t i = 0; i < req->n_keys; i++) {
        if (mask & (UINT64_C(1) << i)) {
            FUZZ_CHECK(j < sub.n_keys);
            FUZZ_CHECK(span_equal(&sub.keys[j], &req->keys[i]));
            j++;
        }
    }
    FUZZ_CHECK(j == sub.n_keys);
}

/* Calls kairo_mc_build_get() for 'req' and 'mask' into an exactly sized
 * heap buffer of 'size' bytes, and checks the result: 0 if 'valid' is false
 * or the request does not fit, otherwise the payload the contract
 * specifies. */
static void
try_build_get(const struct kairo_mc_request *req, uint64_t mask, bool valid,
              size_t size)
{
    uint8_t *buf = alloc_exact(size);
    size_t len = kairo_mc_build_get(req, mask, buf, size);

    if (!valid || size < expected_get(req, mask, NULL)) {
        FUZZ_CHECK(len == 0);
    } else {
        FUZZ_CHECK(len > 0 && len <= size);
        check_built_get(req, mask, buf, len);
    }
    free(buf);
}

/* Builds sub-requests of the ASCII retrieval 'req' for several key subsets
 * and buffer sizes, all derived from 'hash', some of the sizes too small,
 * and also checks that invalid masks are refused. */
static void
exercise_build_get(const struct kairo_mc_request *req, uint64_t hash)
{
    uint64_t all = low_bits(req->n_keys);
    uint64_t masks[] = {
        all,
        1,
        UINT64_C(1) << (req->n_keys - 1),
        hash & all,
        ((hash >> 29) | (hash << 35)) & all,
    };

    for (size_t i = 0; i < ARRAY_SIZE(masks); i++) {
        uint64_t mask = masks[i];
        uint64_t h = hash >> (i * 8);
        size_t needed;

        if (!mask) {
            continue;
        }
        needed = expected_get(req, mask, NULL);
        try_build_get(req, mask, true, needed);
        try_build_get(req, mask, true, needed - 1);
        try_build_get(req, mask, true, 0);
        try_build_get(req, mask, true, h % (needed + 1));
        try_build_get(req, mask, true, needed + (h >> 4) % 8);
    }

    /* An empty mask, or one with a bit at or above 'n_keys', is refused
     * even when the buffer is large. */
    try_build_get(req, 0, false, expected_get(req, all, NULL));
    if (req->n_keys < 64) {
        uint64_t stray = UINT64_C(1) << (req->n_keys + hash % 8);

        if (req->n_keys + hash % 8 < 64) {
            try_build_get(req, all | stray, false,
                          expected_get(req, all, NULL) + 300);
        }
    }
}

/* Checks that kairo_mc_build_get() refuses 'req', a successful parse that is
 * not an ASCII retrieval, even with a buffer larger than any get it could
 * build from the 'size'-byte payload. */
static void
check_build_get_refused(const struct kairo_mc_request *req, size_t size)
{
    size_t buf_size = size + 2 * KAIRO_MC_FRAME_HEADER_LEN;
    uint8_t *buf = alloc_exact(buf_size);

    FUZZ_CHECK(kairo_mc_build_get(req, 1, buf, buf_size) == 0);
    free(buf);
}

/* Checks the successful parse 'req' of the command at offset 'ofs' of the
 * 'size'-byte 'payload' and exercises kairo_mc_build_get() with it. */
static void
check_command(const struct kairo_mc_request *req, const uint8_t *payload,
              size_t size, size_t ofs, uint64_t hash)
{
    check_request(req, payload, size, ofs);
    if (req->protocol == KAIRO_MC_ASCII && op_is_retrieval(req->op)) {
        exercise_build_get(req, hash);
    } else {
        check_build_get_refused(req, size);
    }
}

/* Checks what is meaningful after kairo_mc_parse_request() or
 * kairo_mc_parse_next() failed with 'error' on the command at offset 'ofs'
 * of the 'size'-byte 'payload': the frame, and the command offset for
 * errors that are about the command. */
static void
check_failure(enum kairo_mc_error error, const struct kairo_mc_request *req,
              const uint8_t *payload, size_t size, size_t ofs)
{
    /* 'keys' is written only up to 'n_keys', so a larger value would mean
     * the parser wrote past the array. */
    FUZZ_CHECK(req->n_keys <= KAIRO_MC_MAX_KEYS);

    if (error == KAIRO_MC_ERR_TRUNCATED_FRAME) {
        FUZZ_CHECK(size < KAIRO_MC_FRAME_HEADER_LEN);
        return;
    } else if (error == KAIRO_MC_ERR_OVERSIZED) {
        FUZZ_CHECK(size > KAIRO_MC_MAX_DATAGRAM);
        return;
    }
    check_frame(&req->frame, payload);
    if (error == KAIRO_MC_ERR_MULTI_DATAGRAM) {
        FUZZ_CHECK(req->frame.total != 1);
    } else if (error == KAIRO_MC_ERR_EMPTY) {
        FUZZ_CHECK(ofs >= size && req->cmd_ofs == size);
    } else {
        FUZZ_CHECK(ofs < size && req->cmd_ofs == ofs);
    }
}

/* Parses the 'size'-byte 'payload' as a whole and then walks it command by
 * command, checking every result. */
static void
fuzz_payload(const uint8_t *payload, size_t size, uint64_t hash)
{
    struct kairo_mc_request first, req;
    enum kairo_mc_error first_error, error;
    struct kairo_mc_frame frame;
    size_t ofs;

    /* The frame header alone.  On failure, '*frame' must be left alone. */
    memset(&frame, 0xa5, sizeof frame);
    error = kairo_mc_parse_frame(payload, size, &frame);
    check_error(error);
    if (size >= KAIRO_MC_FRAME_HEADER_LEN) {
        FUZZ_CHECK(error == KAIRO_MC_OK);
        check_frame(&frame, payload);
    } else {
        FUZZ_CHECK(error == KAIRO_MC_ERR_TRUNCATED_FRAME);
        FUZZ_CHECK(frame.request_id == 0xa5a5 && frame.total == 0xa5a5);
    }

    /* The whole datagram. */
    first_error = kairo_mc_parse_request(payload, size, &first);
    check_error(first_error);
    if (first_error == KAIRO_MC_OK || first_error == KAIRO_MC_ERR_PIPELINED) {
        check_command(&first, payload, size, KAIRO_MC_FRAME_HEADER_LEN,
                      hash);
        FUZZ_CHECK(first.frame.total == 1);
        FUZZ_CHECK((first.cmd_end == size)
                   == (first_error == KAIRO_MC_OK));
    } else {
        check_failure(first_error, &first, payload, size,
                      KAIRO_MC_FRAME_HEADER_LEN);
    }

    /* Command by command.  Each successful command ends strictly after it
     * starts, so the walk takes at most 'size' steps; the bound only turns
     * a parser that stops making progress into a failure. */
    ofs = KAIRO_MC_FRAME_HEADER_LEN;
    for (size_t step = 0; ; step++) {
        FUZZ_CHECK(step <= size);
        error = kairo_mc_parse_next(payload, size, ofs, &req);
        check_error(error);
        FUZZ_CHECK(error != KAIRO_MC_ERR_PIPELINED);
        FUZZ_CHECK(error != KAIRO_MC_ERR_MULTI_DATAGRAM);

        if (step == 0) {
            /* From offset 8, kairo_mc_parse_next() must agree with
             * kairo_mc_parse_request() but for the check of 'total'. */
            if (first_error == KAIRO_MC_OK
                || first_error == KAIRO_MC_ERR_PIPELINED) {
                FUZZ_CHECK(error == KAIRO_MC_OK);
                check_same_request(&first, &req);
            } else if (first_error != KAIRO_MC_ERR_MULTI_DATAGRAM) {
                FUZZ_CHECK(error == first_error);
            }
        }
        if (error) {
            check_failure(error, &req, payload, size, ofs);
            break;
        }
        check_command(&req, payload, size, ofs, hash);
        if (req.cmd_end == size) {
            break;
        }
        ofs = req.cmd_end;
    }
}

/* Reads 'payload' as a reply, as a cache filling from it does: walks its
 * VALUE items, checks each against the contract, and checks that
 * kairo_mc_put_value() writes an item that reads back the same, into an
 * exactly sized buffer and (failing) into one a byte too small. */
static void
fuzz_reply(const uint8_t *payload, size_t size)
{
    size_t ofs = KAIRO_MC_FRAME_HEADER_LEN;

    for (size_t step = 0; ; step++) {
        enum kairo_mc_reply_item item;
        struct kairo_mc_value v;
        size_t next = SIZE_MAX;

        FUZZ_CHECK(step <= size);
        item = kairo_mc_parse_reply_item(payload, size, ofs, &v, &next);
        if (item == KAIRO_MC_REPLY_OTHER) {
            FUZZ_CHECK(next == SIZE_MAX);
            break;
        }
        FUZZ_CHECK(next > ofs && next <= size);
        if (item == KAIRO_MC_REPLY_END) {
            break;
        }
        FUZZ_CHECK(v.key.len >= 1 && v.key.len <= KAIRO_MC_MAX_KEY_LEN);
        FUZZ_CHECK(v.key.data == payload + v.key.ofs);
        FUZZ_CHECK(v.key.ofs > ofs && v.key.ofs + v.key.len < next);
        FUZZ_CHECK(v.data.data == payload + v.data.ofs);
        FUZZ_CHECK(v.data.ofs + v.data.len + 2 == next);
        for (size_t i = 0; i < v.key.len; i++) {
            FUZZ_CHECK(v.key.data[i] > 0x20 && v.key.data[i] != 0x7f);
        }

        /* Written back, the item reads the same. */
        size_t n = next - ofs + 8;
        uint8_t *buf = alloc_exact(KAIRO_MC_FRAME_HEADER_LEN + n);
        size_t len = kairo_mc_put_value(buf + KAIRO_MC_FRAME_HEADER_LEN, n,
                                        v.key.data, v.key.len, v.flags,
                                        v.has_cas, v.cas, v.data.data,
                                        v.data.len);
        struct kairo_mc_value w;
        size_t w_next;

        FUZZ_CHECK(len > 0 && len <= n);
        memset(buf, 0, KAIRO_MC_FRAME_HEADER_LEN);
        FUZZ_CHECK(kairo_mc_parse_reply_item(buf,
                                             KAIRO_MC_FRAME_HEADER_LEN + len,
                                             KAIRO_MC_FRAME_HEADER_LEN, &w,
                                             &w_next)
                   == KAIRO_MC_REPLY_VALUE);
        FUZZ_CHECK(w_next == KAIRO_MC_FRAME_HEADER_LEN + len);
        FUZZ_CHECK(w.key.len == v.key.len
                   && !memcmp(w.key.data, v.key.data, v.key.len));
        FUZZ_CHECK(w.flags == v.flags && w.has_cas == v.has_cas
                   && (!v.has_cas || w.cas == v.cas));
        FUZZ_CHECK(w.data.len == v.data.len
                   && !memcmp(w.data.data, v.data.data, v.data.len));
        FUZZ_CHECK(!kairo_mc_put_value(buf + KAIRO_MC_FRAME_HEADER_LEN,
                                       len - 1, v.key.data, v.key.len,
                                       v.flags, v.has_cas, v.cas,
                                       v.data.data, v.data.len));
        free(buf);
        ofs = next;
    }
}

/* Fuzzes the parser with the 'size'-byte input 'data', one UDP payload. */
/* Cuts 'payload' into 2 to 5 datagrams of a reply message from one of 8
 * clients, chosen by 'hash', and feeds them to a cache's reassembly in
 * order, or with one datagram repeated, dropped or swapped.  The cache
 * lives across inputs, with a clock that advances 100 ms per input, so
 * that messages left incomplete pile up, expire and hit the limit.  A
 * message the cache completes must be the datagrams' payloads in order. */
static void
fuzz_reassembly(const uint8_t *payload, size_t size, uint64_t hash)
{
    static struct kairo_mc_cache *cache;
    static uint16_t request_id;
    static long long now;
    uint16_t total = 2 + hash % 4;
    uint64_t client = (hash >> 8) % 8;
    unsigned int fault = (hash >> 32) % 4;  /* 0 none, 1 repeat, 2 drop,
                                             * 3 swap. */
    uint16_t victim = (hash >> 40) % total;
    size_t chunk = size / total + 1;
    uint16_t order[8];
    int model = -1;             /* The datagram the reassembly expects
                                 * next, or -1 for none. */
    size_t n = 0;

    if (!cache) {
        struct kairo_mc_cache_config cfg = {
            .max_bytes = 1 << 20,
            .max_value = 1000,      /* Messages up to 1512 bytes. */
            .threshold = 1,
            .decay_period = 1000,
            .max_ttl_ms = 1000,
        };
        cache = kairo_mc_cache_create(&cfg);
    }
    /* A new id per input: a message left over from an earlier input has
     * expired before its id comes back. */
    request_id++;
    now += 100;
    kairo_mc_cache_expect(cache, client, request_id, 1, now);

    for (uint16_t seq = 0; seq < total; seq++) {
        if (fault == 2 && seq == victim) {
            continue;
        }
        order[n++] = seq;
        if (fault == 1 && seq == victim) {
            order[n++] = seq;
        }
    }
    if (fault == 3 && victim + 1 < total) {
        order[victim] = victim + 1;
        order[victim + 1] = victim;
    }

    for (size_t i = 0; i < n; i++) {
        uint16_t seq = order[i];
        size_t ofs = MIN(seq * chunk, size);
        size_t len = MIN(chunk, size - ofs);
        uint8_t *dgram = alloc_exact(KAIRO_MC_FRAME_HEADER_LEN + len);
        struct kairo_mc_frame frame = {
            .request_id = request_id, .seq = seq, .total = total,
        };
        struct kairo_mc_cache_ticket ticket;
        enum kairo_mc_cache_part part;
        const uint8_t *msg;
        size_t msg_size;

        kairo_mc_put_frame(dgram, &frame);
        if (len) {
            memcpy(dgram + KAIRO_MC_FRAME_HEADER_LEN, payload + ofs, len);
        }
        part = kairo_mc_cache_take_part(cache, client, request_id, seq,
                                        total, dgram,
                                        KAIRO_MC_FRAME_HEADER_LEN + len, now,
                                        &ticket, &msg, &msg_size);
        free(dgram);

        /* Datagram 0 (again) starts the message; any other must be the
         * one expected; the last completes it, within the size limit. */
        model = (seq == 0 ? 1 : model >= 0 && seq == model ? model + 1 : -1);
        if (model == total) {
            model = -1;
            FUZZ_CHECK(part == (KAIRO_MC_FRAME_HEADER_LEN + size <= 1512
                                ? KAIRO_MC_PART_COMPLETE
                                : KAIRO_MC_PART_IGNORED));
        } else {
            FUZZ_CHECK(part != KAIRO_MC_PART_COMPLETE);
        }
        if (part == KAIRO_MC_PART_COMPLETE) {
            FUZZ_CHECK(msg_size == KAIRO_MC_FRAME_HEADER_LEN + size);
            FUZZ_CHECK(!size || !memcmp(msg + KAIRO_MC_FRAME_HEADER_LEN,
                                        payload, size));
            fuzz_reply(msg, msg_size);
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *payload = alloc_exact(size);

    if (size) {
        memcpy(payload, data, size);
    }
    fuzz_payload(payload, size, hash_input(data, size));
    fuzz_reply(payload, size);
    fuzz_reassembly(payload, size, hash_input(data, size));

    /* The parser only reads the payload. */
    FUZZ_CHECK(!size || !memcmp(payload, data, size));
    free(payload);
    return 0;
}
