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
 */

/* Unit tests for lib/kairo-mc-proto.c: every command form, every error
 * reason with at least one malformed input, and the boundaries (250- and
 * 251-byte keys, 32 and 33 keys, datagrams that fit exactly or are one
 * byte short, binary lengths that lie by one). */

#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kairo-mc-proto.h"
#include "kairo-unit.h"
#include "util.h"

/* Request id that test datagrams carry. */
#define TEST_REQUEST_ID 0xbeef

/* A buffer big enough for any test datagram, and a second one. */
static uint8_t dgram[KAIRO_MC_MAX_DATAGRAM + 16];
static uint8_t dgram2[KAIRO_MC_MAX_DATAGRAM + 16];

/* Writes into 'buf' a frame header with the given 'seq' and 'total' and
 * then the 'len' bytes at 'body', and returns the datagram size. */
static size_t
make_frame(uint8_t *buf, uint16_t seq, uint16_t total, const void *body,
           size_t len)
{
    struct kairo_mc_frame frame = {
        .request_id = TEST_REQUEST_ID,
        .seq = seq,
        .total = total,
    };

    kairo_mc_put_frame(buf, &frame);
    memcpy(buf + KAIRO_MC_FRAME_HEADER_LEN, body, len);
    return KAIRO_MC_FRAME_HEADER_LEN + len;
}

/* Returns the size of a normal datagram in 'dgram' holding the 'len' bytes
 * at 'body'. */
static size_t
make(const void *body, size_t len)
{
    return make_frame(dgram, 0, 1, body, len);
}

/* Parses a normal datagram holding the NUL-terminated 'text' into 'req'. */
static enum kairo_mc_error
parse_text(const char *text, struct kairo_mc_request *req)
{
    return kairo_mc_parse_request(dgram, make(text, strlen(text)), req);
}

/* Returns whether 'span' holds exactly the NUL-terminated 's'. */
static bool
span_is(const struct kairo_mc_span *span, const char *s)
{
    return span->len == strlen(s) && !memcmp(span->data, s, span->len)
           && span->data == dgram + span->ofs;
}

/* Fills 'buf' with 'len' copies of 'c' and a terminating NUL. */
static char *
fill(char *buf, int c, size_t len)
{
    memset(buf, c, len);
    buf[len] = '\0';
    return buf;
}

/* Builds in 'buf' a binary request header with the given fields, followed
 * by 'ext_len' bytes of extras from 'ext', a 'key_len'-byte key of 'k's and
 * 'value_len' bytes of 'v's, and returns its size.  'body_len' is written
 * as given, so that tests can make it lie. */
static size_t
make_binary(uint8_t *buf, uint8_t magic, uint8_t opcode, uint16_t key_len,
            uint8_t ext_len, uint8_t data_type, uint32_t body_len,
            const uint8_t *ext, size_t value_len)
{
    uint8_t *p = buf;

    memset(p, 0, KAIRO_MC_BIN_HEADER_LEN);
    p[0] = magic;
    p[1] = opcode;
    p[2] = key_len >> 8;
    p[3] = key_len;
    p[4] = ext_len;
    p[5] = data_type;
    p[8] = body_len >> 24;
    p[9] = body_len >> 16;
    p[10] = body_len >> 8;
    p[11] = body_len;
    p[12] = 0x01;               /* Opaque 0x01020304. */
    p[13] = 0x02;
    p[14] = 0x03;
    p[15] = 0x04;
    p[23] = 0x07;               /* CAS 7. */
    p += KAIRO_MC_BIN_HEADER_LEN;

    if (ext_len) {
        memcpy(p, ext, ext_len);
        p += ext_len;
    }
    memset(p, 'k', key_len);
    p += key_len;
    memset(p, 'v', value_len);
    p += value_len;
    return p - buf;
}

/* Parses a well-formed binary request (body length consistent) into
 * 'req'. */
static enum kairo_mc_error
parse_binary(uint8_t opcode, uint16_t key_len, uint8_t ext_len,
             const uint8_t *ext, size_t value_len,
             struct kairo_mc_request *req)
{
    static uint8_t body[KAIRO_MC_MAX_DATAGRAM];
    size_t len = make_binary(body, 0x80, opcode, key_len, ext_len, 0,
                             key_len + ext_len + value_len, ext, value_len);

    return kairo_mc_parse_request(dgram, make(body, len), req);
}

/* Checks the frame header rules. */
static void
test_frame(void)
{
    struct kairo_mc_request req;
    struct kairo_mc_frame frame;
    size_t n;

    for (size_t len = 0; len < KAIRO_MC_FRAME_HEADER_LEN; len++) {
        CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, len, &req),
                        KAIRO_MC_ERR_TRUNCATED_FRAME);
        CU_ASSERT_EQUAL(kairo_mc_parse_frame(dgram, len, &frame),
                        KAIRO_MC_ERR_TRUNCATED_FRAME);
    }

    n = make("", 0);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, n, &req),
                    KAIRO_MC_ERR_EMPTY);
    CU_ASSERT_EQUAL(req.frame.request_id, TEST_REQUEST_ID);

    n = make_frame(dgram, 0, 2, "get a\r\n", 7);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, n, &req),
                    KAIRO_MC_ERR_MULTI_DATAGRAM);
    CU_ASSERT_EQUAL(req.frame.total, 2);
    n = make_frame(dgram, 0, 0, "get a\r\n", 7);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, n, &req),
                    KAIRO_MC_ERR_MULTI_DATAGRAM);

    /* memcached ignores the sequence number and reserved field. */
    n = make_frame(dgram, 5, 1, "get a\r\n", 7);
    dgram[7] = 9;
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, n, &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.frame.request_id, TEST_REQUEST_ID);
    CU_ASSERT_EQUAL(req.frame.seq, 5);
    CU_ASSERT_EQUAL(req.frame.total, 1);
    CU_ASSERT_EQUAL(req.frame.reserved, 9);

    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, KAIRO_MC_MAX_DATAGRAM + 1,
                                           &req),
                    KAIRO_MC_ERR_OVERSIZED);
}

/* Checks get and gets with one and many keys. */
static void
test_get(void)
{
    struct kairo_mc_request req;
    char text[64 * 8];
    char *p;

    CU_ASSERT_EQUAL_FATAL(parse_text("get foo\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.protocol, KAIRO_MC_ASCII);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_GET);
    CU_ASSERT(req.is_read && !req.is_write && !req.noreply);
    CU_ASSERT(!req.has_exptime);
    CU_ASSERT_EQUAL(req.n_keys, 1);
    CU_ASSERT(span_is(&req.keys[0], "foo"));
    CU_ASSERT_EQUAL(req.keys[0].ofs, 12);
    CU_ASSERT(span_is(&req.name, "get"));
    CU_ASSERT_EQUAL(req.cmd_ofs, 8);
    CU_ASSERT_EQUAL(req.cmd_end, 8 + 9);

    /* Runs of spaces, as memcached's tokenizer allows. */
    CU_ASSERT_EQUAL_FATAL(parse_text("gets  a   b \r\n", &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_GETS);
    CU_ASSERT_EQUAL(req.n_keys, 2);
    CU_ASSERT(span_is(&req.keys[0], "a"));
    CU_ASSERT(span_is(&req.keys[1], "b"));

    /* Exactly KAIRO_MC_MAX_KEYS keys, then one more. */
    p = text + sprintf(text, "get");
    for (int i = 0; i < KAIRO_MC_MAX_KEYS; i++) {
        p += sprintf(p, " k%d", i);
    }
    snprintf(p, sizeof text - (p - text), "\r\n");
    CU_ASSERT_EQUAL_FATAL(parse_text(text, &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.n_keys, KAIRO_MC_MAX_KEYS);
    CU_ASSERT(span_is(&req.keys[31], "k31"));
    snprintf(p, sizeof text - (p - text), " k32\r\n");
    CU_ASSERT_EQUAL(parse_text(text, &req), KAIRO_MC_ERR_TOO_MANY_KEYS);

    CU_ASSERT_EQUAL(parse_text("get\r\n", &req), KAIRO_MC_ERR_BAD_SYNTAX);
    CU_ASSERT_EQUAL(parse_text("get \r\n", &req), KAIRO_MC_ERR_BAD_SYNTAX);
}

/* Checks the key rules: length 250 passes and 251 fails everywhere; no
 * control characters; bytes >= 0x80 are fine. */
static void
test_keys(void)
{
    struct kairo_mc_request req;
    char key[300], text[400];

    fill(key, 'k', 250);
    snprintf(text, sizeof text, "get %s\r\n", key);
    CU_ASSERT_EQUAL(parse_text(text, &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.keys[0].len, 250);
    snprintf(text, sizeof text, "set %s 0 0 1\r\nx\r\n", key);
    CU_ASSERT_EQUAL(parse_text(text, &req), KAIRO_MC_OK);
    snprintf(text, sizeof text, "mg %s v\r\n", key);
    CU_ASSERT_EQUAL(parse_text(text, &req), KAIRO_MC_OK);

    fill(key, 'k', 251);
    snprintf(text, sizeof text, "get %s\r\n", key);
    CU_ASSERT_EQUAL(parse_text(text, &req), KAIRO_MC_ERR_KEY_TOO_LONG);
    snprintf(text, sizeof text, "get a %s b\r\n", key);
    CU_ASSERT_EQUAL(parse_text(text, &req), KAIRO_MC_ERR_KEY_TOO_LONG);
    snprintf(text, sizeof text, "set %s 0 0 1\r\nx\r\n", key);
    CU_ASSERT_EQUAL(parse_text(text, &req), KAIRO_MC_ERR_KEY_TOO_LONG);
    snprintf(text, sizeof text, "delete %s\r\n", key);
    CU_ASSERT_EQUAL(parse_text(text, &req), KAIRO_MC_ERR_KEY_TOO_LONG);
    snprintf(text, sizeof text, "md %s\r\n", key);
    CU_ASSERT_EQUAL(parse_text(text, &req), KAIRO_MC_ERR_KEY_TOO_LONG);

    CU_ASSERT_EQUAL(parse_text("get a\tb\r\n", &req), KAIRO_MC_ERR_BAD_KEY);
    CU_ASSERT_EQUAL(parse_text("get a\177\r\n", &req), KAIRO_MC_ERR_BAD_KEY);
    CU_ASSERT_EQUAL(parse_text("get a\rb\r\n", &req), KAIRO_MC_ERR_BAD_KEY);
    CU_ASSERT_EQUAL(parse_text("get ok \001\r\n", &req),
                    KAIRO_MC_ERR_BAD_KEY);
    CU_ASSERT_EQUAL(parse_text("touch \033 5\r\n", &req),
                    KAIRO_MC_ERR_BAD_KEY);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, make("get a\0b\r\n", 9),
                                           &req),
                    KAIRO_MC_ERR_BAD_KEY);

    CU_ASSERT_EQUAL(parse_text("get caf\303\251 \377\200\r\n", &req),
                    KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.n_keys, 2);
    CU_ASSERT(span_is(&req.keys[0], "caf\303\251"));
}

/* Checks gat and gats. */
static void
test_gat(void)
{
    struct kairo_mc_request req;

    CU_ASSERT_EQUAL_FATAL(parse_text("gat 3600 a b\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_GAT);
    CU_ASSERT(req.is_read && req.is_write);
    CU_ASSERT(req.has_exptime);
    CU_ASSERT_EQUAL(req.exptime, 3600);
    CU_ASSERT(span_is(&req.exptime_token, "3600"));
    CU_ASSERT_EQUAL(req.n_keys, 2);
    CU_ASSERT(span_is(&req.keys[1], "b"));

    CU_ASSERT_EQUAL_FATAL(parse_text("gats -1 a\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_GATS);
    CU_ASSERT_EQUAL(req.exptime, -1);
    CU_ASSERT_EQUAL(parse_text("gat -2147483648 a\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.exptime, INT32_MIN);
    CU_ASSERT_EQUAL(parse_text("gat 2147483647 a\r\n", &req), KAIRO_MC_OK);

    CU_ASSERT_EQUAL(parse_text("gat 2147483648 a\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("gat -2147483649 a\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("gat abc a\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("gat +5 a\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("gat - a\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("gat 10\r\n", &req), KAIRO_MC_ERR_BAD_SYNTAX);
    CU_ASSERT_EQUAL(parse_text("gat\r\n", &req), KAIRO_MC_ERR_BAD_SYNTAX);
}

/* Checks the storage commands, their data blocks and their boundaries. */
static void
test_storage(void)
{
    static const struct {
        const char *name;       /* Command name. */
        enum kairo_mc_op op;    /* Expected operation. */
    } cmds[] = {
        { "set", KAIRO_MC_OP_SET },
        { "add", KAIRO_MC_OP_ADD },
        { "replace", KAIRO_MC_OP_REPLACE },
        { "append", KAIRO_MC_OP_APPEND },
        { "prepend", KAIRO_MC_OP_PREPEND },
    };
    struct kairo_mc_request req;
    char text[128];
    size_t n;

    for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
        snprintf(text, sizeof text, "%s k 7 100 3\r\nabc\r\n", cmds[i].name);
        CU_ASSERT_EQUAL_FATAL(parse_text(text, &req), KAIRO_MC_OK);
        CU_ASSERT_EQUAL(req.op, cmds[i].op);
        CU_ASSERT(req.is_write && !req.is_read && !req.noreply);
        CU_ASSERT(span_is(&req.keys[0], "k"));
        CU_ASSERT_EQUAL(req.item_flags, 7);
        CU_ASSERT(req.has_exptime);
        CU_ASSERT_EQUAL(req.exptime, 100);
        CU_ASSERT(span_is(&req.data, "abc"));
        CU_ASSERT_EQUAL(req.cmd_end, 8 + strlen(text));
    }

    CU_ASSERT_EQUAL_FATAL(parse_text("set k 0 0 3 noreply\r\nabc\r\n", &req),
                          KAIRO_MC_OK);
    CU_ASSERT(req.noreply);

    /* The data block may hold "\r\n" and any byte. */
    CU_ASSERT_EQUAL_FATAL(parse_text("set k 0 0 4\r\na\r\nb\r\n", &req),
                          KAIRO_MC_OK);
    CU_ASSERT(span_is(&req.data, "a\r\nb"));
    CU_ASSERT_EQUAL(parse_text("set k 0 0 0\r\n\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.data.len, 0);

    CU_ASSERT_EQUAL_FATAL(
        parse_text("cas k 1 2 3 18446744073709551615 noreply\r\nabc\r\n",
                   &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_CAS);
    CU_ASSERT_EQUAL(req.cas, UINT64_MAX);
    CU_ASSERT(req.noreply);
    CU_ASSERT_EQUAL(parse_text("cas k 1 2 3\r\nabc\r\n", &req),
                    KAIRO_MC_ERR_BAD_SYNTAX);
    CU_ASSERT_EQUAL(parse_text("cas k 1 2 3 x\r\nabc\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);

    /* Exactly fitting datagram, and the same one byte short. */
    snprintf(text, sizeof text, "set k 0 0 5\r\nhello\r\n");
    n = make(text, strlen(text));
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, n, &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.cmd_end, n);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, n - 1, &req),
                    KAIRO_MC_ERR_DATA_LENGTH);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, n - 2, &req),
                    KAIRO_MC_ERR_DATA_LENGTH);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, n - 7, &req),
                    KAIRO_MC_ERR_DATA_LENGTH);

    /* <bytes> lying by one either way. */
    CU_ASSERT_EQUAL(parse_text("set k 0 0 6\r\nhello\r\n", &req),
                    KAIRO_MC_ERR_DATA_LENGTH);
    CU_ASSERT_EQUAL(parse_text("set k 0 0 4\r\nhello\r\n", &req),
                    KAIRO_MC_ERR_DATA_LENGTH);
    CU_ASSERT_EQUAL(parse_text("set k 0 0 5\r\nhelloXY", &req),
                    KAIRO_MC_ERR_DATA_LENGTH);
    CU_ASSERT_EQUAL(parse_text("set k 0 0 2147483645\r\nhello\r\n", &req),
                    KAIRO_MC_ERR_DATA_LENGTH);

    /* Numbers. */
    CU_ASSERT_EQUAL(parse_text("set k 4294967295 0 1\r\nx\r\n", &req),
                    KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.item_flags, UINT32_MAX);
    CU_ASSERT_EQUAL(parse_text("set k 4294967296 0 1\r\nx\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("set k -1 0 1\r\nx\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("set k 0 x 1\r\nx\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("set k 0 0 -1\r\nx\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("set k 0 0 2147483646\r\nx\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("set k 0 0 1x\r\nx\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);

    /* Syntax. */
    CU_ASSERT_EQUAL(parse_text("set k 0 0\r\n", &req),
                    KAIRO_MC_ERR_BAD_SYNTAX);
    CU_ASSERT_EQUAL(parse_text("set\r\n", &req), KAIRO_MC_ERR_BAD_SYNTAX);
    CU_ASSERT_EQUAL(parse_text("set k 0 0 1 junk\r\nx\r\n", &req),
                    KAIRO_MC_ERR_BAD_SYNTAX);
    CU_ASSERT_EQUAL(parse_text("set k 0 0 1 noreply x\r\nx\r\n", &req),
                    KAIRO_MC_ERR_BAD_SYNTAX);
}

/* Checks delete, incr, decr and touch. */
static void
test_key_commands(void)
{
    struct kairo_mc_request req;

    CU_ASSERT_EQUAL_FATAL(parse_text("delete k\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_DELETE);
    CU_ASSERT(req.is_write && !req.is_read && !req.noreply);
    CU_ASSERT(span_is(&req.keys[0], "k"));
    CU_ASSERT_EQUAL(parse_text("delete k noreply\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT(req.noreply);
    CU_ASSERT_EQUAL(parse_text("delete k 0\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT(!req.noreply);
    CU_ASSERT_EQUAL(parse_text("delete k 0 noreply\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT(req.noreply);
    CU_ASSERT_EQUAL(parse_text("delete k 5\r\n", &req),
                    KAIRO_MC_ERR_BAD_SYNTAX);
    CU_ASSERT_EQUAL(parse_text("delete k noreply 0\r\n", &req),
                    KAIRO_MC_ERR_BAD_SYNTAX);
    CU_ASSERT_EQUAL(parse_text("delete\r\n", &req), KAIRO_MC_ERR_BAD_SYNTAX);

    CU_ASSERT_EQUAL_FATAL(parse_text("incr k 18446744073709551615\r\n", &req),
                          KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_INCR);
    CU_ASSERT_EQUAL(req.delta, UINT64_MAX);
    CU_ASSERT(req.is_write);
    CU_ASSERT_EQUAL(parse_text("decr k 5 noreply\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_DECR);
    CU_ASSERT_EQUAL(req.delta, 5);
    CU_ASSERT(req.noreply);
    CU_ASSERT_EQUAL(parse_text("incr k 18446744073709551616\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("incr k -1\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("incr k\r\n", &req), KAIRO_MC_ERR_BAD_SYNTAX);

    CU_ASSERT_EQUAL_FATAL(parse_text("touch k 60\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_TOUCH);
    CU_ASSERT(req.is_write && req.has_exptime);
    CU_ASSERT_EQUAL(req.exptime, 60);
    CU_ASSERT_EQUAL(parse_text("touch k x\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("touch k 1 2\r\n", &req),
                    KAIRO_MC_ERR_BAD_SYNTAX);
}

/* Checks flush_all. */
static void
test_flush_all(void)
{
    struct kairo_mc_request req;

    CU_ASSERT_EQUAL_FATAL(parse_text("flush_all\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_FLUSH_ALL);
    CU_ASSERT(req.is_write && !req.is_read);
    CU_ASSERT_EQUAL(req.n_keys, 0);
    CU_ASSERT(!req.has_exptime && !req.noreply);

    CU_ASSERT_EQUAL(parse_text("flush_all 30\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT(req.has_exptime);
    CU_ASSERT_EQUAL(req.exptime, 30);
    CU_ASSERT_EQUAL(parse_text("flush_all noreply\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT(req.noreply && !req.has_exptime);
    CU_ASSERT_EQUAL(parse_text("flush_all 0 noreply\r\n", &req),
                    KAIRO_MC_OK);
    CU_ASSERT(req.noreply && req.has_exptime);

    CU_ASSERT_EQUAL(parse_text("flush_all x\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("flush_all noreply 5\r\n", &req),
                    KAIRO_MC_ERR_BAD_SYNTAX);
    CU_ASSERT_EQUAL(parse_text("flush_all 1 2\r\n", &req),
                    KAIRO_MC_ERR_BAD_SYNTAX);
}

/* Checks line endings, command names and unsupported commands. */
static void
test_lines(void)
{
    struct kairo_mc_request req;

    CU_ASSERT_EQUAL(parse_text("get a\n", &req), KAIRO_MC_ERR_MISSING_CRLF);
    CU_ASSERT_EQUAL(parse_text("get a", &req), KAIRO_MC_ERR_MISSING_CRLF);
    CU_ASSERT_EQUAL(parse_text("get a\r", &req), KAIRO_MC_ERR_MISSING_CRLF);
    CU_ASSERT_EQUAL(parse_text("\n", &req), KAIRO_MC_ERR_MISSING_CRLF);
    CU_ASSERT_EQUAL(parse_text("\r\n", &req), KAIRO_MC_ERR_BAD_SYNTAX);
    CU_ASSERT_EQUAL(parse_text("   \r\n", &req), KAIRO_MC_ERR_BAD_SYNTAX);

    CU_ASSERT_EQUAL(parse_text("GET a\r\n", &req),
                    KAIRO_MC_ERR_UNKNOWN_COMMAND);
    CU_ASSERT_EQUAL(parse_text("getx a\r\n", &req),
                    KAIRO_MC_ERR_UNKNOWN_COMMAND);
    CU_ASSERT_EQUAL(parse_text("ge a\r\n", &req),
                    KAIRO_MC_ERR_UNKNOWN_COMMAND);
    CU_ASSERT_EQUAL(parse_text("\177\r\n", &req),
                    KAIRO_MC_ERR_UNKNOWN_COMMAND);

    CU_ASSERT_EQUAL(parse_text("stats\r\n", &req),
                    KAIRO_MC_ERR_UNSUPPORTED_COMMAND);
    CU_ASSERT_EQUAL(parse_text("stats slabs\r\n", &req),
                    KAIRO_MC_ERR_UNSUPPORTED_COMMAND);
    CU_ASSERT_EQUAL(parse_text("version\r\n", &req),
                    KAIRO_MC_ERR_UNSUPPORTED_COMMAND);
    CU_ASSERT_EQUAL(parse_text("me key\r\n", &req),
                    KAIRO_MC_ERR_UNSUPPORTED_COMMAND);
    CU_ASSERT_EQUAL(parse_text("shutdown\r\n", &req),
                    KAIRO_MC_ERR_UNSUPPORTED_COMMAND);
}

/* Checks the meta commands. */
static void
test_meta(void)
{
    struct kairo_mc_request req;
    char text[128];

    CU_ASSERT_EQUAL_FATAL(parse_text("mg foo v k c\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.protocol, KAIRO_MC_META);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_MG);
    CU_ASSERT(req.is_read && !req.is_write && !req.noreply);
    CU_ASSERT(span_is(&req.keys[0], "foo"));
    CU_ASSERT(span_is(&req.meta_flags, "v k c"));
    CU_ASSERT(!req.has_exptime);

    CU_ASSERT_EQUAL_FATAL(parse_text("mg foo\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.meta_flags.len, 0);

    /* Touch and vivify make mg a write; q is quiet; b is base64. */
    CU_ASSERT_EQUAL_FATAL(parse_text("mg foo v T30 q Oabc\r\n", &req),
                          KAIRO_MC_OK);
    CU_ASSERT(req.is_read && req.is_write && req.noreply);
    CU_ASSERT(req.has_exptime);
    CU_ASSERT_EQUAL(req.exptime, 30);
    CU_ASSERT(span_is(&req.meta_flags, "v T30 q Oabc"));
    CU_ASSERT_EQUAL(parse_text("mg foo N60\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT(req.is_write);
    CU_ASSERT_EQUAL(parse_text("mg Zm9v b v\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT(req.key_base64);

    CU_ASSERT_EQUAL(parse_text("mg foo v v\r\n", &req),
                    KAIRO_MC_ERR_BAD_SYNTAX);
    CU_ASSERT_EQUAL(parse_text("mg foo 1\r\n", &req),
                    KAIRO_MC_ERR_BAD_SYNTAX);
    CU_ASSERT_EQUAL(parse_text("mg\r\n", &req), KAIRO_MC_ERR_BAD_SYNTAX);
    CU_ASSERT_EQUAL(parse_text("mg foo T\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("mg foo Tx\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("mg foo N1x\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);

    CU_ASSERT_EQUAL_FATAL(parse_text("ms foo 5 T0 F3 q\r\nhello\r\n", &req),
                          KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_MS);
    CU_ASSERT(req.is_write && !req.is_read && req.noreply);
    CU_ASSERT(span_is(&req.data, "hello"));
    CU_ASSERT(span_is(&req.meta_flags, "T0 F3 q"));
    CU_ASSERT(req.has_exptime);
    CU_ASSERT_EQUAL(req.cmd_end, 8 + strlen("ms foo 5 T0 F3 q\r\nhello\r\n"));
    CU_ASSERT_EQUAL(parse_text("ms foo 6\r\nhello\r\n", &req),
                    KAIRO_MC_ERR_DATA_LENGTH);
    CU_ASSERT_EQUAL(parse_text("ms foo 4\r\nhello\r\n", &req),
                    KAIRO_MC_ERR_DATA_LENGTH);
    CU_ASSERT_EQUAL(parse_text("ms foo x\r\nhello\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);
    CU_ASSERT_EQUAL(parse_text("ms foo\r\n", &req), KAIRO_MC_ERR_BAD_SYNTAX);

    CU_ASSERT_EQUAL_FATAL(parse_text("md foo q I\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_MD);
    CU_ASSERT(req.is_write && !req.is_read && req.noreply);

    CU_ASSERT_EQUAL_FATAL(parse_text("ma foo D10 MI v\r\n", &req),
                          KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_MA);
    CU_ASSERT(req.is_write);
    CU_ASSERT_EQUAL(req.delta, 10);
    CU_ASSERT_EQUAL(parse_text("ma foo Dx\r\n", &req),
                    KAIRO_MC_ERR_BAD_NUMBER);

    CU_ASSERT_EQUAL_FATAL(parse_text("mn\r\n", &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_MN);
    CU_ASSERT(!req.is_read && !req.is_write);
    CU_ASSERT_EQUAL(req.n_keys, 0);
    CU_ASSERT_EQUAL(parse_text("mn x\r\n", &req), KAIRO_MC_ERR_BAD_SYNTAX);

    snprintf(text, sizeof text, "mg %s v\r\n", "a\001");
    CU_ASSERT_EQUAL(parse_text(text, &req), KAIRO_MC_ERR_BAD_KEY);
}

/* Checks pipelined datagrams and walking them with kairo_mc_parse_next(). */
static void
test_pipelined(void)
{
    static const char text[] = "mg a v q\r\nms b 2 q\r\nhi\r\nmn\r\n";
    static const enum kairo_mc_op ops[] = {
        KAIRO_MC_OP_MG, KAIRO_MC_OP_MS, KAIRO_MC_OP_MN,
    };
    struct kairo_mc_request req;
    size_t n = make(text, strlen(text));
    size_t ofs;

    CU_ASSERT_EQUAL_FATAL(kairo_mc_parse_request(dgram, n, &req),
                          KAIRO_MC_ERR_PIPELINED);
    CU_ASSERT_EQUAL(req.op, KAIRO_MC_OP_MG);
    CU_ASSERT(span_is(&req.keys[0], "a"));

    ofs = KAIRO_MC_FRAME_HEADER_LEN;
    for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
        CU_ASSERT_EQUAL_FATAL(kairo_mc_parse_next(dgram, n, ofs, &req),
                              KAIRO_MC_OK);
        CU_ASSERT_EQUAL(req.op, ops[i]);
        CU_ASSERT_EQUAL(req.cmd_ofs, ofs);
        CU_ASSERT(req.cmd_end > ofs);
        ofs = req.cmd_end;
    }
    CU_ASSERT_EQUAL(ofs, n);
    CU_ASSERT_EQUAL(kairo_mc_parse_next(dgram, n, ofs, &req),
                    KAIRO_MC_ERR_EMPTY);

    /* A classic pipeline, then a bad second command. */
    CU_ASSERT_EQUAL(parse_text("get a\r\nget b\r\n", &req),
                    KAIRO_MC_ERR_PIPELINED);
    CU_ASSERT_EQUAL(req.cmd_end, 8 + 7);
    n = make("get a\r\nbogus\r\n", 14);
    CU_ASSERT_EQUAL(kairo_mc_parse_next(dgram, n, 15, &req),
                    KAIRO_MC_ERR_UNKNOWN_COMMAND);
    CU_ASSERT_EQUAL(req.cmd_ofs, 15);
}

/* Checks every supported binary opcode. */
static void
test_binary(void)
{
    static const uint8_t set_extras[8] = { 0, 0, 0, 9, 0, 0, 0x0e, 0x10 };
    static const uint8_t incr_extras[20] = {
        0, 0, 0, 0, 0, 0, 0, 3,     /* Delta 3. */
        0, 0, 0, 0, 0, 0, 0, 1,     /* Initial 1. */
        0xff, 0xff, 0xff, 0xff,     /* Expiration: do not create. */
    };
    static const uint8_t exptime[4] = { 0, 0, 0, 60 };
    static const struct {
        uint8_t opcode;         /* Opcode. */
        enum kairo_mc_op op;    /* Expected operation. */
        bool quiet;             /* Quiet variant? */
        uint8_t ext_len;        /* Extras length. */
        const uint8_t *ext;     /* Extras. */
        uint16_t key_len;       /* Key length. */
        size_t value_len;       /* Value length. */
    } cases[] = {
        { 0x00, KAIRO_MC_OP_GET, false, 0, NULL, 3, 0 },
        { 0x09, KAIRO_MC_OP_GET, true, 0, NULL, 3, 0 },
        { 0x0c, KAIRO_MC_OP_GET, false, 0, NULL, 3, 0 },
        { 0x0d, KAIRO_MC_OP_GET, true, 0, NULL, 3, 0 },
        { 0x01, KAIRO_MC_OP_SET, false, 8, set_extras, 3, 5 },
        { 0x11, KAIRO_MC_OP_SET, true, 8, set_extras, 3, 0 },
        { 0x02, KAIRO_MC_OP_ADD, false, 8, set_extras, 3, 5 },
        { 0x12, KAIRO_MC_OP_ADD, true, 8, set_extras, 3, 5 },
        { 0x03, KAIRO_MC_OP_REPLACE, false, 8, set_extras, 3, 5 },
        { 0x13, KAIRO_MC_OP_REPLACE, true, 8, set_extras, 3, 5 },
        { 0x04, KAIRO_MC_OP_DELETE, false, 0, NULL, 3, 0 },
        { 0x14, KAIRO_MC_OP_DELETE, true, 0, NULL, 3, 0 },
        { 0x05, KAIRO_MC_OP_INCR, false, 20, incr_extras, 3, 0 },
        { 0x15, KAIRO_MC_OP_INCR, true, 20, incr_extras, 3, 0 },
        { 0x06, KAIRO_MC_OP_DECR, false, 20, incr_extras, 3, 0 },
        { 0x16, KAIRO_MC_OP_DECR, true, 20, incr_extras, 3, 0 },
        { 0x08, KAIRO_MC_OP_FLUSH_ALL, false, 0, NULL, 0, 0 },
        { 0x08, KAIRO_MC_OP_FLUSH_ALL, false, 4, exptime, 0, 0 },
        { 0x18, KAIRO_MC_OP_FLUSH_ALL, true, 4, exptime, 0, 0 },
        { 0x0a, KAIRO_MC_OP_NOOP, false, 0, NULL, 0, 0 },
        { 0x0e, KAIRO_MC_OP_APPEND, false, 0, NULL, 3, 5 },
        { 0x19, KAIRO_MC_OP_APPEND, true, 0, NULL, 3, 5 },
        { 0x0f, KAIRO_MC_OP_PREPEND, false, 0, NULL, 3, 5 },
        { 0x1a, KAIRO_MC_OP_PREPEND, true, 0, NULL, 3, 5 },
        { 0x1c, KAIRO_MC_OP_TOUCH, false, 4, exptime, 3, 0 },
        { 0x1d, KAIRO_MC_OP_GAT, false, 4, exptime, 3, 0 },
        { 0x1e, KAIRO_MC_OP_GAT, true, 4, exptime, 3, 0 },
        { 0x23, KAIRO_MC_OP_GAT, false, 4, exptime, 3, 0 },
        { 0x24, KAIRO_MC_OP_GAT, true, 4, exptime, 3, 0 },
    };
    struct kairo_mc_request req;
    uint8_t body[64];
    size_t len;

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        enum kairo_mc_op op = cases[i].op;

        CU_ASSERT_EQUAL_FATAL(parse_binary(cases[i].opcode, cases[i].key_len,
                                           cases[i].ext_len, cases[i].ext,
                                           cases[i].value_len, &req),
                              KAIRO_MC_OK);
        CU_ASSERT_EQUAL(req.protocol, KAIRO_MC_BINARY);
        CU_ASSERT_EQUAL(req.op, op);
        CU_ASSERT_EQUAL(req.bin_opcode, cases[i].opcode);
        CU_ASSERT_EQUAL(req.noreply, cases[i].quiet);
        CU_ASSERT_EQUAL(req.bin_opaque, 0x01020304);
        CU_ASSERT_EQUAL(req.cas, 7);
        CU_ASSERT_EQUAL(req.n_keys, cases[i].key_len ? 1 : 0);
        if (cases[i].key_len) {
            CU_ASSERT(span_is(&req.keys[0], "kkk"));
            CU_ASSERT_EQUAL(req.keys[0].ofs, 8 + 24 + cases[i].ext_len);
        }
        CU_ASSERT_EQUAL(req.data.len, cases[i].value_len);
        CU_ASSERT_EQUAL(req.is_read,
                        op == KAIRO_MC_OP_GET || op == KAIRO_MC_OP_GAT);
        CU_ASSERT_EQUAL(req.is_write,
                        op != KAIRO_MC_OP_GET && op != KAIRO_MC_OP_NOOP);
        CU_ASSERT_EQUAL(req.cmd_end, 8 + 24 + cases[i].ext_len
                        + cases[i].key_len + cases[i].value_len);
    }

    /* Decoded extras. */
    parse_binary(0x01, 3, 8, set_extras, 5, &req);
    CU_ASSERT_EQUAL(req.item_flags, 9);
    CU_ASSERT(req.has_exptime);
    CU_ASSERT_EQUAL(req.exptime, 3600);
    CU_ASSERT(span_is(&req.data, "vvvvv"));
    parse_binary(0x05, 3, 20, incr_extras, 0, &req);
    CU_ASSERT_EQUAL(req.delta, 3);
    CU_ASSERT_EQUAL(req.exptime, UINT32_MAX);
    parse_binary(0x1d, 3, 4, exptime, 0, &req);
    CU_ASSERT_EQUAL(req.exptime, 60);
    parse_binary(0x08, 0, 0, NULL, 0, &req);
    CU_ASSERT(!req.has_exptime);

    /* Keys of 250 and 251 bytes. */
    CU_ASSERT_EQUAL(parse_binary(0x00, 250, 0, NULL, 0, &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.keys[0].len, 250);
    CU_ASSERT_EQUAL(parse_binary(0x00, 251, 0, NULL, 0, &req),
                    KAIRO_MC_ERR_KEY_TOO_LONG);

    /* Binary keys may hold any byte, spaces and line ends included. */
    len = make_binary(body, 0x80, 0x00, 4, 0, 0, 4, NULL, 0);
    memcpy(body + KAIRO_MC_BIN_HEADER_LEN, " \r\n\0", 4);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, make(body, len), &req),
                    KAIRO_MC_OK);
    CU_ASSERT_EQUAL(req.keys[0].len, 4);
}

/* Checks the binary error reasons. */
static void
test_binary_errors(void)
{
    static const uint8_t four[4] = { 0, 0, 0, 0 };
    static const uint8_t eight[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
    uint8_t body[128];
    struct kairo_mc_request req;
    size_t len, n;

    /* Header cut short, at every length. */
    len = make_binary(body, 0x80, 0x00, 3, 0, 0, 3, NULL, 0);
    for (size_t cut = 1; cut < KAIRO_MC_BIN_HEADER_LEN; cut++) {
        CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, make(body, cut), &req),
                        KAIRO_MC_ERR_BIN_TRUNCATED);
    }

    /* Exact fit; body length one more than the datagram holds; one less
     * (the last byte then starts a second command). */
    n = make(body, len);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, n, &req), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, n - 1, &req),
                    KAIRO_MC_ERR_BIN_LENGTHS);
    len = make_binary(body, 0x80, 0x00, 3, 0, 0, 4, NULL, 0);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, make(body, len), &req),
                    KAIRO_MC_ERR_BIN_LENGTHS);
    len = make_binary(body, 0x80, 0x00, 3, 0, 0, 2, NULL, 0);
    n = make(body, len);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, n, &req),
                    KAIRO_MC_ERR_BIN_LENGTHS);
    len = make_binary(body, 0x80, 0x00, 2, 0, 0, 2, NULL, 0);
    body[len++] = 'x';
    n = make(body, len);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, n, &req),
                    KAIRO_MC_ERR_PIPELINED);
    CU_ASSERT_EQUAL(kairo_mc_parse_next(dgram, n, req.cmd_end, &req),
                    KAIRO_MC_ERR_MISSING_CRLF);

    /* Extras plus key longer than the body. */
    len = make_binary(body, 0x80, 0x01, 3, 8, 0, 10, eight, 0);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, make(body, len), &req),
                    KAIRO_MC_ERR_BIN_LENGTHS);
    len = make_binary(body, 0x80, 0x00, 3, 0, 0, 3, NULL, 0);
    body[2] = body[3] = 0xff;   /* Key length 65535 in a 3-byte body. */
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, make(body, len), &req),
                    KAIRO_MC_ERR_BIN_LENGTHS);
    len = make_binary(body, 0x80, 0x00, 3, 0, 0, UINT32_MAX, NULL, 0);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, make(body, len), &req),
                    KAIRO_MC_ERR_BIN_LENGTHS);

    /* Response magic. */
    len = make_binary(body, 0x81, 0x00, 3, 0, 0, 3, NULL, 0);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, make(body, len), &req),
                    KAIRO_MC_ERR_BIN_RESPONSE);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, make(body, 1), &req),
                    KAIRO_MC_ERR_BIN_RESPONSE);

    /* Unknown and unsupported opcodes. */
    CU_ASSERT_EQUAL(parse_binary(0x30, 3, 0, NULL, 0, &req),
                    KAIRO_MC_ERR_UNKNOWN_COMMAND);
    CU_ASSERT_EQUAL(parse_binary(0xff, 0, 0, NULL, 0, &req),
                    KAIRO_MC_ERR_UNKNOWN_COMMAND);
    CU_ASSERT_EQUAL(parse_binary(0x10, 0, 0, NULL, 0, &req),
                    KAIRO_MC_ERR_UNSUPPORTED_COMMAND);
    CU_ASSERT_EQUAL(parse_binary(0x0b, 0, 0, NULL, 0, &req),
                    KAIRO_MC_ERR_UNSUPPORTED_COMMAND);
    CU_ASSERT_EQUAL(parse_binary(0x07, 0, 0, NULL, 0, &req),
                    KAIRO_MC_ERR_UNSUPPORTED_COMMAND);

    /* Formats that do not match the opcode. */
    CU_ASSERT_EQUAL(parse_binary(0x00, 3, 4, four, 0, &req),
                    KAIRO_MC_ERR_BIN_FORMAT);
    CU_ASSERT_EQUAL(parse_binary(0x00, 0, 0, NULL, 0, &req),
                    KAIRO_MC_ERR_BIN_FORMAT);
    CU_ASSERT_EQUAL(parse_binary(0x00, 3, 0, NULL, 2, &req),
                    KAIRO_MC_ERR_BIN_FORMAT);
    CU_ASSERT_EQUAL(parse_binary(0x01, 3, 4, four, 2, &req),
                    KAIRO_MC_ERR_BIN_FORMAT);
    CU_ASSERT_EQUAL(parse_binary(0x0a, 3, 0, NULL, 0, &req),
                    KAIRO_MC_ERR_BIN_FORMAT);
    CU_ASSERT_EQUAL(parse_binary(0x08, 0, 8, eight, 0, &req),
                    KAIRO_MC_ERR_BIN_FORMAT);
    CU_ASSERT_EQUAL(parse_binary(0x1c, 3, 0, NULL, 0, &req),
                    KAIRO_MC_ERR_BIN_FORMAT);
    len = make_binary(body, 0x80, 0x00, 3, 0, 1, 3, NULL, 0);
    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram, make(body, len), &req),
                    KAIRO_MC_ERR_BIN_FORMAT);
}

/* Checks kairo_mc_build_get(): subsets, frame, exact fit, refusals, and
 * that the result parses back. */
static void
test_build_get(void)
{
    static const char expect[] = "get a ccc\r\n";
    struct kairo_mc_request req, sub;
    size_t n, built;

    n = make_frame(dgram, 5, 1, "get a bb ccc\r\n", 14);
    CU_ASSERT_EQUAL_FATAL(kairo_mc_parse_request(dgram, n, &req),
                          KAIRO_MC_OK);

    built = kairo_mc_build_get(&req, 0x5, dgram2, sizeof dgram2);
    CU_ASSERT_EQUAL_FATAL(built, 8 + strlen(expect));
    CU_ASSERT(!memcmp(dgram2 + 8, expect, strlen(expect)));
    CU_ASSERT_EQUAL(dgram2[0], TEST_REQUEST_ID >> 8);
    CU_ASSERT_EQUAL(dgram2[1], TEST_REQUEST_ID & 0xff);
    CU_ASSERT(!dgram2[2] && !dgram2[3] && !dgram2[4] && dgram2[5] == 1
              && !dgram2[6] && !dgram2[7]);

    CU_ASSERT_EQUAL(kairo_mc_parse_request(dgram2, built, &sub), KAIRO_MC_OK);
    CU_ASSERT_EQUAL(sub.n_keys, 2);
    CU_ASSERT_EQUAL(sub.frame.request_id, TEST_REQUEST_ID);
    CU_ASSERT_EQUAL(sub.frame.seq, 0);

    /* Exactly fitting buffer, one byte short. */
    CU_ASSERT_EQUAL(kairo_mc_build_get(&req, 0x5, dgram2, built), built);
    CU_ASSERT_EQUAL(kairo_mc_build_get(&req, 0x5, dgram2, built - 1), 0);

    /* Bad masks. */
    CU_ASSERT_EQUAL(kairo_mc_build_get(&req, 0, dgram2, sizeof dgram2), 0);
    CU_ASSERT_EQUAL(kairo_mc_build_get(&req, 0x8, dgram2, sizeof dgram2), 0);
    CU_ASSERT_EQUAL(kairo_mc_build_get(&req, 0x7, dgram2, sizeof dgram2),
                    n);

    /* gats keeps its exptime token as sent. */
    n = make("gats 0100 k1 k2 k3\r\n", 20);
    CU_ASSERT_EQUAL_FATAL(kairo_mc_parse_request(dgram, n, &req),
                          KAIRO_MC_OK);
    built = kairo_mc_build_get(&req, 0x2, dgram2, sizeof dgram2);
    CU_ASSERT_EQUAL_FATAL(built, 8 + strlen("gats 0100 k2\r\n"));
    CU_ASSERT(!memcmp(dgram2 + 8, "gats 0100 k2\r\n", built - 8));

    /* Only ASCII retrievals. */
    n = make("set k 0 0 1\r\nx\r\n", 16);
    kairo_mc_parse_request(dgram, n, &req);
    CU_ASSERT_EQUAL(kairo_mc_build_get(&req, 0x1, dgram2, sizeof dgram2), 0);
    n = make("mg k v\r\n", 8);
    kairo_mc_parse_request(dgram, n, &req);
    CU_ASSERT_EQUAL(kairo_mc_build_get(&req, 0x1, dgram2, sizeof dgram2), 0);
    parse_binary(0x00, 3, 0, NULL, 0, &req);
    CU_ASSERT_EQUAL(kairo_mc_build_get(&req, 0x1, dgram2, sizeof dgram2), 0);
}

/* One malformed input per error reason, as a table. */
struct error_case {
    const char *text;           /* Datagram body, or NULL for special. */
    size_t len;                 /* Its length. */
    enum kairo_mc_error error;  /* Expected error. */
};

/* Checks that every error reason has a malformed input that produces it,
 * and that reason names are distinct, stable and well-formed. */
static void
test_every_error(void)
{
#define CASE(TEXT, ERROR) { TEXT, sizeof TEXT - 1, KAIRO_MC_ERR_##ERROR }
    static const struct error_case cases[] = {
        CASE("\r\n", BAD_SYNTAX),
        CASE("get k\n", MISSING_CRLF),
        CASE("nope\r\n", UNKNOWN_COMMAND),
        CASE("stats\r\n", UNSUPPORTED_COMMAND),
        CASE("touch k soon\r\n", BAD_NUMBER),
        CASE("get k\001\r\n", BAD_KEY),
        CASE("set k 0 0 3\r\nab\r\n", DATA_LENGTH),
        CASE("\200\000\000\003", BIN_TRUNCATED),
        CASE("\200\000\000\003\000\000\000\000\000\000\000\004"
             "\000\000\000\000\000\000\000\000\000\000\000\000"
             "kkk", BIN_LENGTHS),
        CASE("\200\000\000\000\000\000\000\000\000\000\000\000"
             "\000\000\000\000\000\000\000\000\000\000\000\000", BIN_FORMAT),
        CASE("\201", BIN_RESPONSE),
        CASE("mn\r\nmn\r\n", PIPELINED),
    };
#undef CASE
    bool seen[KAIRO_MC_N_ERRORS];
    struct kairo_mc_request req;
    char key[300], text[400];
    size_t n;

    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        enum kairo_mc_error error;

        error = kairo_mc_parse_request(dgram, make(cases[i].text,
                                                   cases[i].len), &req);
        if (error != cases[i].error) {
            fprintf(stderr, "case %"PRIuSIZE": got %s, expected %s\n", i,
                    kairo_mc_error_to_string(error),
                    kairo_mc_error_to_string(cases[i].error));
        }
        CU_ASSERT_EQUAL(error, cases[i].error);
        seen[error] = true;
    }

    /* The reasons that need more than a short literal. */
    seen[kairo_mc_parse_request(dgram, 3, &req)] = true;
    seen[kairo_mc_parse_request(dgram, KAIRO_MC_MAX_DATAGRAM + 1, &req)]
        = true;
    n = make_frame(dgram, 0, 3, "get k\r\n", 7);
    seen[kairo_mc_parse_request(dgram, n, &req)] = true;
    seen[kairo_mc_parse_request(dgram, make("", 0), &req)] = true;
    snprintf(text, sizeof text, "get %s\r\n", fill(key, 'k', 251));
    seen[parse_text(text, &req)] = true;
    n = snprintf(text, sizeof text, "get");
    for (int i = 0; i <= KAIRO_MC_MAX_KEYS; i++) {
        n += snprintf(text + n, sizeof text - n, " k");
    }
    snprintf(text + n, sizeof text - n, "\r\n");
    seen[parse_text(text, &req)] = true;

    for (int e = 0; e < KAIRO_MC_N_ERRORS; e++) {
        const char *name = kairo_mc_error_to_string(e);

        if (e != KAIRO_MC_OK && !seen[e]) {
            fprintf(stderr, "no malformed input gives %s\n", name);
            CU_FAIL("error reason without a test input");
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(name);
        CU_ASSERT(strcmp(name, "unknown"));
        CU_ASSERT_EQUAL(strspn(name, "abcdefghijklmnopqrstuvwxyz-"),
                        strlen(name));
        for (int f = 0; f < e; f++) {
            CU_ASSERT(strcmp(name, kairo_mc_error_to_string(f)));
        }
    }
    CU_ASSERT_STRING_EQUAL(kairo_mc_error_to_string(KAIRO_MC_OK), "ok");
    CU_ASSERT_STRING_EQUAL(
        kairo_mc_error_to_string(KAIRO_MC_ERR_TRUNCATED_FRAME),
        "truncated-frame");
    CU_ASSERT_STRING_EQUAL(kairo_mc_error_to_string(KAIRO_MC_N_ERRORS),
                           "unknown");
}

/* Checks the operation and protocol names. */
static void
test_names(void)
{
    for (int op = 0; op < KAIRO_MC_N_OPS; op++) {
        CU_ASSERT(strcmp(kairo_mc_op_to_string(op), "unknown"));
    }
    CU_ASSERT_STRING_EQUAL(kairo_mc_op_to_string(KAIRO_MC_OP_FLUSH_ALL),
                           "flush_all");
    CU_ASSERT_STRING_EQUAL(kairo_mc_op_to_string(KAIRO_MC_N_OPS), "unknown");
    CU_ASSERT_STRING_EQUAL(kairo_mc_protocol_to_string(KAIRO_MC_ASCII),
                           "ascii");
    CU_ASSERT_STRING_EQUAL(kairo_mc_protocol_to_string(KAIRO_MC_META),
                           "meta");
    CU_ASSERT_STRING_EQUAL(kairo_mc_protocol_to_string(KAIRO_MC_BINARY),
                           "binary");
}

/* Feeds every prefix of 'n'-byte datagram 'dg', and every single-byte
 * corruption of each prefix, to the parser: none may crash or read outside
 * the datagram (run under AddressSanitizer), and every reported span must
 * lie inside it. */
static void
check_robust(const uint8_t *dg, size_t n)
{
    struct kairo_mc_request req;

    for (size_t len = 0; len <= n; len++) {
        for (int flip = -1; flip < (int) len; flip++) {
            /* An exactly sized heap copy, so that AddressSanitizer catches
             * any read past the datagram. */
            uint8_t *copy = xmalloc(len ? len : 1);
            enum kairo_mc_error error;

            memcpy(copy, dg, len);
            if (flip >= KAIRO_MC_FRAME_HEADER_LEN) {
                copy[flip] ^= 0x41;
            }
            error = kairo_mc_parse_request(copy, len, &req);
            CU_ASSERT((unsigned int) error < KAIRO_MC_N_ERRORS);
            if (error == KAIRO_MC_OK || error == KAIRO_MC_ERR_PIPELINED) {
                CU_ASSERT(req.cmd_end <= len);
                for (size_t k = 0; k < req.n_keys; k++) {
                    CU_ASSERT(req.keys[k].ofs + req.keys[k].len <= len);
                }
                CU_ASSERT(req.data.ofs + req.data.len <= len);
                CU_ASSERT(req.meta_flags.ofs + req.meta_flags.len <= len);
            }
            free(copy);
        }
    }
}

/* Runs check_robust() on text and binary requests of every kind. */
static void
test_robustness(void)
{
    static const char *const texts[] = {
        "get a bb ccc\r\n", "gat 10 k\r\n", "set k 1 2 3 noreply\r\nabc\r\n",
        "cas k 1 2 3 4\r\nabc\r\n", "delete k 0 noreply\r\n",
        "incr k 5\r\n", "touch k 9\r\n", "flush_all 1 noreply\r\n",
        "mg k v T5 q\r\n", "ms k 3 T1\r\nabc\r\n", "md k q\r\n",
        "ma k D2\r\n", "mn\r\n", "mg a q\r\nmg b q\r\nmn\r\n",
    };
    static const uint8_t extras[20] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    static const struct {
        uint8_t opcode;         /* Binary opcode. */
        uint16_t key_len;       /* Key length. */
        uint8_t ext_len;        /* Extras length. */
        size_t value_len;       /* Value length. */
    } bins[] = {
        { 0x00, 3, 0, 0 }, { 0x01, 3, 8, 4 }, { 0x05, 2, 20, 0 },
        { 0x08, 0, 4, 0 }, { 0x0a, 0, 0, 0 }, { 0x1d, 3, 4, 0 },
    };
    uint8_t body[64];

    for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
        check_robust(dgram, make(texts[i], strlen(texts[i])));
    }
    for (size_t i = 0; i < ARRAY_SIZE(bins); i++) {
        size_t len = make_binary(body, 0x80, bins[i].opcode, bins[i].key_len,
                                 bins[i].ext_len, 0,
                                 bins[i].key_len + bins[i].ext_len
                                 + bins[i].value_len,
                                 extras, bins[i].value_len);

        check_robust(dgram, make(body, len));
    }
}

/* Replies: VALUE items, END, and everything a cache must not fill from. */
static void
test_reply(void)
{
    static const char reply[] = "VALUE k1 5 3\r\nabc\r\n"
                                "VALUE k2 0 0 77\r\n\r\nEND\r\n";
    struct kairo_mc_value v;
    size_t size = make(reply, strlen(reply));
    size_t next = 0;

    CU_ASSERT_EQUAL(kairo_mc_parse_reply_item(dgram, size, 8, &v, &next),
                    KAIRO_MC_REPLY_VALUE);
    CU_ASSERT(span_is(&v.key, "k1"));
    CU_ASSERT_EQUAL(v.flags, 5);
    CU_ASSERT(!v.has_cas);
    CU_ASSERT(span_is(&v.data, "abc"));
    CU_ASSERT_EQUAL(kairo_mc_parse_reply_item(dgram, size, next, &v, &next),
                    KAIRO_MC_REPLY_VALUE);
    CU_ASSERT(span_is(&v.key, "k2"));
    CU_ASSERT(v.has_cas);
    CU_ASSERT_EQUAL(v.cas, 77);
    CU_ASSERT_EQUAL(v.data.len, 0);
    CU_ASSERT_EQUAL(kairo_mc_parse_reply_item(dgram, size, next, &v, &next),
                    KAIRO_MC_REPLY_END);
    CU_ASSERT_EQUAL(next, size);
    CU_ASSERT_EQUAL(kairo_mc_parse_reply_item(dgram, size, next, &v, &next),
                    KAIRO_MC_REPLY_OTHER);

    static const char *const others[] = {
        "STORED\r\n", "END\n", "VALUE k 1 3\r\nabcd\r\n",
        "VALUE k 1 3\r\nab", "VALUE k 1\r\n", "VALUE k 1 3 4 5\r\nabc\r\n",
        "VALUE  k 1 3\r\nabc\r\n", "VALUE k 4294967296 3\r\nabc\r\n",
        "VALUE k 1 -3\r\nabc\r\n", "VALUE k\x01 1 3\r\nabc\r\n",
        "VA 3\r\nabc\r\n", "SERVER_ERROR out of memory\r\n", "",
    };
    for (size_t i = 0; i < ARRAY_SIZE(others); i++) {
        size = make(others[i], strlen(others[i]));
        next = 12345;
        CU_ASSERT_EQUAL(kairo_mc_parse_reply_item(dgram, size, 8, &v, &next),
                        KAIRO_MC_REPLY_OTHER);
        CU_ASSERT_EQUAL(next, 12345);
    }
    /* An offset inside the frame header is refused. */
    size = make(reply, strlen(reply));
    CU_ASSERT_EQUAL(kairo_mc_parse_reply_item(dgram, size, 4, &v, &next),
                    KAIRO_MC_REPLY_OTHER);
}

/* kairo_mc_put_value() writes what kairo_mc_parse_reply_item() reads. */
static void
test_put_value(void)
{
    uint8_t buf[128];
    struct kairo_mc_value v;
    size_t n, next;

    memset(dgram, 0, 8);
    n = kairo_mc_put_value(dgram + 8, 200, "key", 3, 4294967295u, true,
                           UINT64_MAX, "da\r\nta", 6);
    CU_ASSERT_EQUAL(n, strlen("VALUE key 4294967295 6 18446744073709551615"
                              "\r\nda\r\nta\r\n"));
    CU_ASSERT(!memcmp(dgram + 8, "VALUE key 4294967295 6 "
                      "18446744073709551615\r\nda\r\nta\r\n", n));
    CU_ASSERT_EQUAL(kairo_mc_parse_reply_item(dgram, 8 + n, 8, &v, &next),
                    KAIRO_MC_REPLY_VALUE);
    CU_ASSERT_EQUAL(v.cas, UINT64_MAX);
    CU_ASSERT(span_is(&v.data, "da\r\nta"));

    n = kairo_mc_put_value(buf, sizeof buf, "k", 1, 0, false, 0, "", 0);
    CU_ASSERT_EQUAL(n, strlen("VALUE k 0 0\r\n\r\n"));
    CU_ASSERT(!memcmp(buf, "VALUE k 0 0\r\n\r\n", n));

    /* Too small a buffer writes nothing. */
    CU_ASSERT_EQUAL(kairo_mc_put_value(buf, 14, "k", 1, 0, false, 0, "", 0),
                    0);
    CU_ASSERT_EQUAL(kairo_mc_put_value(buf, sizeof buf, "k", 1, 0, false, 0,
                                       dgram, sizeof buf), 0);
}

/* Adds the mc_proto suite to the CUnit registry. */
CU_ErrorCode
kairo_unit_register_mc_proto(void)
{
    CU_pSuite suite = CU_add_suite("kairo-mc-proto", NULL, NULL);

    if (!suite
        || !CU_add_test(suite, "frame", test_frame)
        || !CU_add_test(suite, "get", test_get)
        || !CU_add_test(suite, "keys", test_keys)
        || !CU_add_test(suite, "gat", test_gat)
        || !CU_add_test(suite, "storage", test_storage)
        || !CU_add_test(suite, "key commands", test_key_commands)
        || !CU_add_test(suite, "flush_all", test_flush_all)
        || !CU_add_test(suite, "lines", test_lines)
        || !CU_add_test(suite, "meta", test_meta)
        || !CU_add_test(suite, "pipelined", test_pipelined)
        || !CU_add_test(suite, "binary", test_binary)
        || !CU_add_test(suite, "binary errors", test_binary_errors)
        || !CU_add_test(suite, "build get", test_build_get)
        || !CU_add_test(suite, "reply", test_reply)
        || !CU_add_test(suite, "put value", test_put_value)
        || !CU_add_test(suite, "every error", test_every_error)
        || !CU_add_test(suite, "names", test_names)
        || !CU_add_test(suite, "robustness", test_robustness)) {
        return CU_get_error();
    }
    return CUE_SUCCESS;
}
