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

#include <config.h>
#include "kairo-mc-proto.h"

#include <string.h>

#include "util.h"

BUILD_ASSERT_DECL(KAIRO_MC_MAX_KEYS <= 64);
BUILD_ASSERT_DECL(KAIRO_MC_MAX_DATAGRAM < UINT32_MAX);

/* Magic byte of a binary request. */
#define BIN_REQUEST_MAGIC 0x80

/* Magic byte of a binary response. */
#define BIN_RESPONSE_MAGIC 0x81

/* Largest <bytes> memcached takes in a storage command (it adds 2 for the
 * "\r\n" in a signed 32-bit value). */
#define MAX_DATA_LEN (INT32_MAX - 2)

/* The state of parsing one command. */
struct parser {
    const uint8_t *base;        /* Start of the payload (frame header). */
    const uint8_t *end;         /* One past the last payload byte. */
    const uint8_t *cursor;      /* Next byte of the command line to read. */
    const uint8_t *line_end;    /* The '\r' that ends the command line. */
    struct kairo_mc_request *req; /* Where results go. */
};

/* One token of a command line. */
struct token {
    const uint8_t *data;        /* First byte, inside the payload. */
    size_t len;                 /* Length, never 0 for a real token. */
    bool has_ctl;               /* Whether a byte is a control character
                                 * or DEL, which a key may not contain. */
};

/* Reads the big-endian 16-bit value at 'p'. */
static inline uint16_t
get_be16(const uint8_t *p)
{
    return ((uint16_t) p[0] << 8) | p[1];
}

/* Reads the big-endian 32-bit value at 'p'. */
static inline uint32_t
get_be32(const uint8_t *p)
{
    return ((uint32_t) get_be16(p) << 16) | get_be16(p + 2);
}

/* Reads the big-endian 64-bit value at 'p'. */
static inline uint64_t
get_be64(const uint8_t *p)
{
    return ((uint64_t) get_be32(p) << 32) | get_be32(p + 4);
}

/* Writes 'x' to 'p' in big-endian order. */
static inline void
put_be16(uint8_t *p, uint16_t x)
{
    p[0] = x >> 8;
    p[1] = x;
}

/* Returns a span of the 'len' bytes at 'data' inside the payload that
 * starts at 'base'. */
static struct kairo_mc_span
make_span(const uint8_t *base, const uint8_t *data, size_t len)
{
    struct kairo_mc_span span = {
        .data = data,
        .ofs = data - base,
        .len = len,
    };
    return span;
}

/* Returns a span covering token 'tok' of the command parsed by 'ps'. */
static struct kairo_mc_span
token_span(const struct parser *ps, const struct token *tok)
{
    return make_span(ps->base, tok->data, tok->len);
}

/* Returns whether token 'tok' is exactly the string 's'. */
static bool
token_is(const struct token *tok, const char *s)
{
    size_t len = strlen(s);

    return tok->len == len && !memcmp(tok->data, s, len);
}

/* Stores the next space-separated token of the command line of 'ps' in
 * '*tok' and returns true, or returns false at the end of the line. */
static inline bool ALWAYS_INLINE
next_token(struct parser *ps, struct token *tok)
{
    const uint8_t *p = ps->cursor;

    while (p < ps->line_end && *p == ' ') {
        p++;
    }
    if (p == ps->line_end) {
        ps->cursor = p;
        return false;
    }

    tok->data = p;
    tok->has_ctl = false;

    /* Eight bytes at a time while none is a space, a control byte or DEL:
     * a byte below 0x21 is found as in "has a zero byte", and DEL as a zero
     * byte of 'w ^ 0x7f...'.  Bytes of 0x80 and above are never flagged. */
    while (ps->line_end - p >= 8) {
        const uint64_t ones = UINT64_C(0x0101010101010101);
        const uint64_t highs = UINT64_C(0x8080808080808080);
        uint64_t w, x;

        memcpy(&w, p, 8);
        x = w ^ (0x7f * ones);
        if (((w - 0x21 * ones) & ~w & highs) | ((x - ones) & ~x & highs)) {
            break;
        }
        p += 8;
    }
    while (p < ps->line_end && *p != ' ') {
        /* Space ends the token, so "< 0x21" here means a control byte. */
        tok->has_ctl |= *p < 0x21 || *p == 0x7f;
        p++;
    }
    tok->len = p - tok->data;
    ps->cursor = p;
    return true;
}

/* Fills 'toks' with the next 'n' tokens of the command line of 'ps'.
 * Returns KAIRO_MC_OK, or KAIRO_MC_ERR_BAD_SYNTAX if the line ends first. */
static enum kairo_mc_error
need_tokens(struct parser *ps, struct token toks[], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!next_token(ps, &toks[i])) {
            return KAIRO_MC_ERR_BAD_SYNTAX;
        }
    }
    return KAIRO_MC_OK;
}

/* Returns KAIRO_MC_OK if the command line of 'ps' has no tokens left,
 * KAIRO_MC_ERR_BAD_SYNTAX otherwise. */
static enum kairo_mc_error
need_end(struct parser *ps)
{
    struct token tok;

    return next_token(ps, &tok) ? KAIRO_MC_ERR_BAD_SYNTAX : KAIRO_MC_OK;
}

/* Consumes an optional final "noreply" from the command line of 'ps',
 * setting 'noreply' if present.  Returns KAIRO_MC_ERR_BAD_SYNTAX if any
 * other token, or any token after "noreply", remains. */
static enum kairo_mc_error
parse_noreply_tail(struct parser *ps)
{
    struct token tok;

    if (!next_token(ps, &tok)) {
        return KAIRO_MC_OK;
    } else if (!token_is(&tok, "noreply")) {
        return KAIRO_MC_ERR_BAD_SYNTAX;
    }
    ps->req->noreply = true;
    return need_end(ps);
}

/* Parses the 'len' decimal digits at 's' into '*value' if they form a
 * number no greater than 'max'.  Returns false for an empty string, any
 * non-digit or a value above 'max'. */
static bool
parse_u64(const uint8_t *s, size_t len, uint64_t max, uint64_t *value)
{
    uint64_t v = 0;

    if (!len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned int d = s[i] - '0';

        if (d > 9 || v > (max - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *value = v;
    return true;
}

/* Parses the 'len' bytes at 's', an optional '-' and decimal digits, into
 * '*value' if they form a signed 32-bit number.  Returns false otherwise. */
static bool
parse_i32(const uint8_t *s, size_t len, int64_t *value)
{
    bool neg = len && s[0] == '-';
    uint64_t v;

    if (!parse_u64(s + neg, len - neg, neg ? UINT64_C(1) << 31 : INT32_MAX,
                   &v)) {
        return false;
    }
    *value = neg ? -(int64_t) v : (int64_t) v;
    return true;
}

/* Checks that token 'tok' is a valid ASCII or meta key and, if so, appends
 * it to the keys of 'ps'.  Returns KAIRO_MC_OK or the reason it is not. */
static enum kairo_mc_error
add_text_key(struct parser *ps, const struct token *tok)
{
    struct kairo_mc_request *req = ps->req;

    if (tok->len > KAIRO_MC_MAX_KEY_LEN) {
        return KAIRO_MC_ERR_KEY_TOO_LONG;
    }
    if (tok->has_ctl) {
        return KAIRO_MC_ERR_BAD_KEY;
    }
    if (req->n_keys >= KAIRO_MC_MAX_KEYS) {
        return KAIRO_MC_ERR_TOO_MANY_KEYS;
    }
    req->keys[req->n_keys++] = token_span(ps, tok);
    return KAIRO_MC_OK;
}

/* Checks the data block of 'len' bytes that must follow the command line of
 * 'ps', with its "\r\n", inside the payload, and records it.  Returns
 * KAIRO_MC_OK or KAIRO_MC_ERR_DATA_LENGTH. */
static enum kairo_mc_error
parse_data_block(struct parser *ps, uint64_t len)
{
    const uint8_t *data = ps->line_end + 2;
    size_t avail = ps->end - data;

    if (avail < 2 || len > avail - 2
        || data[len] != '\r' || data[len + 1] != '\n') {
        return KAIRO_MC_ERR_DATA_LENGTH;
    }
    ps->req->data = make_span(ps->base, data, len);
    ps->req->cmd_end = (data + len + 2) - ps->base;
    return KAIRO_MC_OK;
}

/* Parses the arguments of get, gets, gat and gats. */
static enum kairo_mc_error
parse_retrieval(struct parser *ps)
{
    struct kairo_mc_request *req = ps->req;
    struct token tok;

    req->is_read = true;
    if (req->op == KAIRO_MC_OP_GAT || req->op == KAIRO_MC_OP_GATS) {
        req->is_write = true;
        if (!next_token(ps, &tok)) {
            return KAIRO_MC_ERR_BAD_SYNTAX;
        }
        if (!parse_i32(tok.data, tok.len, &req->exptime)) {
            return KAIRO_MC_ERR_BAD_NUMBER;
        }
        req->has_exptime = true;
        req->exptime_token = token_span(ps, &tok);
    }

    while (next_token(ps, &tok)) {
        enum kairo_mc_error error = add_text_key(ps, &tok);

        if (error) {
            return error;
        }
    }
    return req->n_keys ? KAIRO_MC_OK : KAIRO_MC_ERR_BAD_SYNTAX;
}

/* Parses the arguments and data block of set, add, replace, append, prepend
 * and cas. */
static enum kairo_mc_error
parse_storage(struct parser *ps)
{
    struct kairo_mc_request *req = ps->req;
    bool is_cas = req->op == KAIRO_MC_OP_CAS;
    struct token toks[5];
    enum kairo_mc_error error;
    uint64_t flags, bytes;

    req->is_write = true;
    error = need_tokens(ps, toks, is_cas ? 5 : 4);
    if (!error) {
        error = parse_noreply_tail(ps);
    }
    if (!error) {
        error = add_text_key(ps, &toks[0]);
    }
    if (error) {
        return error;
    }

    if (!parse_u64(toks[1].data, toks[1].len, UINT32_MAX, &flags)
        || !parse_i32(toks[2].data, toks[2].len, &req->exptime)
        || !parse_u64(toks[3].data, toks[3].len, MAX_DATA_LEN, &bytes)
        || (is_cas
            && !parse_u64(toks[4].data, toks[4].len, UINT64_MAX, &req->cas))) {
        return KAIRO_MC_ERR_BAD_NUMBER;
    }
    req->item_flags = flags;
    req->has_exptime = true;

    return parse_data_block(ps, bytes);
}

/* Parses the arguments of delete: "<key> [0] [noreply]". */
static enum kairo_mc_error
parse_delete(struct parser *ps)
{
    struct token key, tok;

    ps->req->is_write = true;
    if (!next_token(ps, &key)) {
        return KAIRO_MC_ERR_BAD_SYNTAX;
    }
    if (next_token(ps, &tok)) {
        if (token_is(&tok, "noreply")) {
            ps->req->noreply = true;
            if (need_end(ps)) {
                return KAIRO_MC_ERR_BAD_SYNTAX;
            }
        } else if (!token_is(&tok, "0") || parse_noreply_tail(ps)) {
            return KAIRO_MC_ERR_BAD_SYNTAX;
        }
    }
    return add_text_key(ps, &key);
}

/* Parses the arguments of incr, decr ("<key> <delta> [noreply]") and touch
 * ("<key> <exptime> [noreply]"). */
static enum kairo_mc_error
parse_key_number(struct parser *ps)
{
    struct kairo_mc_request *req = ps->req;
    struct token toks[2];
    enum kairo_mc_error error;
    bool ok;

    req->is_write = true;
    error = need_tokens(ps, toks, 2);
    if (!error) {
        error = parse_noreply_tail(ps);
    }
    if (!error) {
        error = add_text_key(ps, &toks[0]);
    }
    if (error) {
        return error;
    }

    if (req->op == KAIRO_MC_OP_TOUCH) {
        ok = parse_i32(toks[1].data, toks[1].len, &req->exptime);
        req->has_exptime = true;
    } else {
        ok = parse_u64(toks[1].data, toks[1].len, UINT64_MAX, &req->delta);
    }
    return ok ? KAIRO_MC_OK : KAIRO_MC_ERR_BAD_NUMBER;
}

/* Parses the arguments of flush_all: "[<delay>] [noreply]". */
static enum kairo_mc_error
parse_flush_all(struct parser *ps)
{
    struct kairo_mc_request *req = ps->req;
    struct token tok;

    req->is_write = true;
    if (!next_token(ps, &tok)) {
        return KAIRO_MC_OK;
    }
    if (token_is(&tok, "noreply")) {
        req->noreply = true;
        return need_end(ps);
    }
    if (parse_noreply_tail(ps)) {
        return KAIRO_MC_ERR_BAD_SYNTAX;
    }
    if (!parse_i32(tok.data, tok.len, &req->exptime)) {
        return KAIRO_MC_ERR_BAD_NUMBER;
    }
    req->has_exptime = true;
    return KAIRO_MC_OK;
}

/* Returns the bit for meta flag letter 'c' in a 64-bit set, or 0 if 'c' is
 * not an ASCII letter. */
static uint64_t
meta_flag_bit(uint8_t c)
{
    if (c >= 'a' && c <= 'z') {
        return UINT64_C(1) << (c - 'a');
    } else if (c >= 'A' && c <= 'Z') {
        return UINT64_C(1) << (26 + c - 'A');
    }
    return 0;
}

/* Parses the flag tokens that end a meta command line. */
static enum kairo_mc_error
parse_meta_flags(struct parser *ps)
{
    struct kairo_mc_request *req = ps->req;
    enum kairo_mc_error error = KAIRO_MC_OK;
    uint64_t seen = 0;
    struct token tok;

    while (next_token(ps, &tok)) {
        uint64_t bit = meta_flag_bit(tok.data[0]);
        const uint8_t *arg = tok.data + 1;
        size_t arg_len = tok.len - 1;
        int64_t number;

        if (!bit || seen & bit) {
            return KAIRO_MC_ERR_BAD_SYNTAX;
        }
        seen |= bit;

        if (!req->meta_flags.len) {
            req->meta_flags = token_span(ps, &tok);
        } else {
            req->meta_flags.len = (tok.data + tok.len) - req->meta_flags.data;
        }

        switch (tok.data[0]) {
        case 'q':
            req->noreply = true;
            break;
        case 'b':
            req->key_base64 = true;
            break;
        case 'T':
            if (!parse_i32(arg, arg_len, &req->exptime)) {
                error = KAIRO_MC_ERR_BAD_NUMBER;
            }
            req->has_exptime = true;
            if (req->op == KAIRO_MC_OP_MG) {
                req->is_write = true;
            }
            break;
        case 'N':
            if (!parse_i32(arg, arg_len, &number)) {
                error = KAIRO_MC_ERR_BAD_NUMBER;
            }
            if (req->op == KAIRO_MC_OP_MG) {
                req->is_write = true;
            }
            break;
        case 'D':
            if (req->op == KAIRO_MC_OP_MA
                && !parse_u64(arg, arg_len, UINT64_MAX, &req->delta)) {
                error = KAIRO_MC_ERR_BAD_NUMBER;
            }
            break;
        default:
            break;
        }
    }
    return error;
}

/* Parses the arguments of mg, ms, md, ma and mn. */
static enum kairo_mc_error
parse_meta(struct parser *ps)
{
    struct kairo_mc_request *req = ps->req;
    enum kairo_mc_error error;
    struct token key, datalen = { NULL, 0, false };
    uint64_t len = 0;

    if (req->op == KAIRO_MC_OP_MN) {
        return need_end(ps);
    } else if (req->op == KAIRO_MC_OP_MG) {
        req->is_read = true;
    } else {
        req->is_write = true;
    }

    if (!next_token(ps, &key)
        || (req->op == KAIRO_MC_OP_MS && !next_token(ps, &datalen))) {
        return KAIRO_MC_ERR_BAD_SYNTAX;
    }
    error = parse_meta_flags(ps);
    if (error == KAIRO_MC_ERR_BAD_SYNTAX) {
        return error;
    }
    if (!error) {
        error = add_text_key(ps, &key);
    }
    if (error) {
        return error;
    }

    if (req->op == KAIRO_MC_OP_MS) {
        if (!parse_u64(datalen.data, datalen.len, MAX_DATA_LEN, &len)) {
            return KAIRO_MC_ERR_BAD_NUMBER;
        }
        return parse_data_block(ps, len);
    }
    return KAIRO_MC_OK;
}

/* A text command the parser knows. */
struct text_command {
    const char *name;           /* Command name as sent. */
    enum kairo_mc_op op;        /* Its operation. */
    enum kairo_mc_protocol protocol; /* ASCII or meta. */
    enum kairo_mc_error (*parse)(struct parser *); /* Argument parser. */
};

/* The text commands the parser parses. */
static const struct text_command text_commands[] = {
    { "get", KAIRO_MC_OP_GET, KAIRO_MC_ASCII, parse_retrieval },
    { "gets", KAIRO_MC_OP_GETS, KAIRO_MC_ASCII, parse_retrieval },
    { "gat", KAIRO_MC_OP_GAT, KAIRO_MC_ASCII, parse_retrieval },
    { "gats", KAIRO_MC_OP_GATS, KAIRO_MC_ASCII, parse_retrieval },
    { "set", KAIRO_MC_OP_SET, KAIRO_MC_ASCII, parse_storage },
    { "add", KAIRO_MC_OP_ADD, KAIRO_MC_ASCII, parse_storage },
    { "replace", KAIRO_MC_OP_REPLACE, KAIRO_MC_ASCII, parse_storage },
    { "append", KAIRO_MC_OP_APPEND, KAIRO_MC_ASCII, parse_storage },
    { "prepend", KAIRO_MC_OP_PREPEND, KAIRO_MC_ASCII, parse_storage },
    { "cas", KAIRO_MC_OP_CAS, KAIRO_MC_ASCII, parse_storage },
    { "delete", KAIRO_MC_OP_DELETE, KAIRO_MC_ASCII, parse_delete },
    { "incr", KAIRO_MC_OP_INCR, KAIRO_MC_ASCII, parse_key_number },
    { "decr", KAIRO_MC_OP_DECR, KAIRO_MC_ASCII, parse_key_number },
    { "touch", KAIRO_MC_OP_TOUCH, KAIRO_MC_ASCII, parse_key_number },
    { "flush_all", KAIRO_MC_OP_FLUSH_ALL, KAIRO_MC_ASCII, parse_flush_all },
    { "mg", KAIRO_MC_OP_MG, KAIRO_MC_META, parse_meta },
    { "ms", KAIRO_MC_OP_MS, KAIRO_MC_META, parse_meta },
    { "md", KAIRO_MC_OP_MD, KAIRO_MC_META, parse_meta },
    { "ma", KAIRO_MC_OP_MA, KAIRO_MC_META, parse_meta },
    { "mn", KAIRO_MC_OP_MN, KAIRO_MC_META, parse_meta },
};

/* Text commands memcached 1.6 executes that the parser refuses to parse. */
static const char *const unsupported_text_commands[] = {
    "bget", "cache_memlimit", "debugtime", "extstore", "lru",
    "lru_crawler", "me", "misbehave", "quit", "refresh_certs", "shutdown",
    "slabs", "stats", "verbosity", "version", "watch",
};

/* Parses the ASCII or meta command at 'start', which is inside the payload
 * of 'ps'. */
static enum kairo_mc_error
parse_text(struct parser *ps, const uint8_t *start)
{
    struct kairo_mc_request *req = ps->req;
    const uint8_t *lf = memchr(start, '\n', ps->end - start);
    struct token name;

    if (!lf || lf == start || *(lf - 1) != '\r') {
        return KAIRO_MC_ERR_MISSING_CRLF;
    }
    ps->cursor = start;
    ps->line_end = lf - 1;
    req->cmd_end = (lf + 1) - ps->base;

    if (!next_token(ps, &name)) {
        return KAIRO_MC_ERR_BAD_SYNTAX;
    }
    req->name = token_span(ps, &name);

    for (size_t i = 0; i < ARRAY_SIZE(text_commands); i++) {
        const struct text_command *cmd = &text_commands[i];

        if (token_is(&name, cmd->name)) {
            req->op = cmd->op;
            req->protocol = cmd->protocol;
            return cmd->parse(ps);
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(unsupported_text_commands); i++) {
        if (token_is(&name, unsupported_text_commands[i])) {
            return KAIRO_MC_ERR_UNSUPPORTED_COMMAND;
        }
    }
    return KAIRO_MC_ERR_UNKNOWN_COMMAND;
}

/* Where a binary opcode keeps its expiration time in the extras. */
enum bin_exptime {
    BIN_NO_EXPTIME,             /* No expiration time. */
    BIN_EXPTIME_AT_0,           /* Extras bytes 0..3 (touch, gat, flush). */
    BIN_EXPTIME_AT_4,           /* Extras bytes 4..7 (after item flags). */
    BIN_EXPTIME_AT_16,          /* Extras bytes 16..19 (incr, decr). */
};

/* The format of a binary request opcode. */
struct bin_command {
    bool known;                 /* False for opcodes not in the table. */
    bool supported;             /* False for known opcodes never parsed. */
    enum kairo_mc_op op;        /* Its operation. */
    bool quiet;                 /* Whether it is a quiet variant. */
    uint8_t extlen;             /* Required extras length. */
    bool flush_extras;          /* Extras length may be 0 or 4 instead. */
    bool has_key;               /* Key required (else forbidden). */
    bool has_value;             /* Value allowed (else forbidden). */
    enum bin_exptime exptime;   /* Where the expiration time is. */
};

/* Declares a supported binary opcode. */
#define BIN_CMD(OP, QUIET, EXTLEN, KEY, VALUE, EXPTIME) \
    { true, true, KAIRO_MC_OP_##OP, QUIET, EXTLEN, false, KEY, VALUE, \
      BIN_##EXPTIME }

/* Declares a binary opcode that memcached knows but the parser refuses. */
#define BIN_UNSUPPORTED { true, false, 0, false, 0, false, false, false, 0 }

/* The binary opcodes, indexed by opcode. */
static const struct bin_command bin_commands[256] = {
    [0x00] = BIN_CMD(GET, false, 0, true, false, NO_EXPTIME),
    [0x01] = BIN_CMD(SET, false, 8, true, true, EXPTIME_AT_4),
    [0x02] = BIN_CMD(ADD, false, 8, true, true, EXPTIME_AT_4),
    [0x03] = BIN_CMD(REPLACE, false, 8, true, true, EXPTIME_AT_4),
    [0x04] = BIN_CMD(DELETE, false, 0, true, false, NO_EXPTIME),
    [0x05] = BIN_CMD(INCR, false, 20, true, false, EXPTIME_AT_16),
    [0x06] = BIN_CMD(DECR, false, 20, true, false, EXPTIME_AT_16),
    [0x07] = BIN_UNSUPPORTED,   /* QUIT. */
    [0x08] = { true, true, KAIRO_MC_OP_FLUSH_ALL, false, 0, true, false,
               false, BIN_EXPTIME_AT_0 },
    [0x09] = BIN_CMD(GET, true, 0, true, false, NO_EXPTIME),
    [0x0a] = BIN_CMD(NOOP, false, 0, false, false, NO_EXPTIME),
    [0x0b] = BIN_UNSUPPORTED,   /* VERSION. */
    [0x0c] = BIN_CMD(GET, false, 0, true, false, NO_EXPTIME),
    [0x0d] = BIN_CMD(GET, true, 0, true, false, NO_EXPTIME),
    [0x0e] = BIN_CMD(APPEND, false, 0, true, true, NO_EXPTIME),
    [0x0f] = BIN_CMD(PREPEND, false, 0, true, true, NO_EXPTIME),
    [0x10] = BIN_UNSUPPORTED,   /* STAT. */
    [0x11] = BIN_CMD(SET, true, 8, true, true, EXPTIME_AT_4),
    [0x12] = BIN_CMD(ADD, true, 8, true, true, EXPTIME_AT_4),
    [0x13] = BIN_CMD(REPLACE, true, 8, true, true, EXPTIME_AT_4),
    [0x14] = BIN_CMD(DELETE, true, 0, true, false, NO_EXPTIME),
    [0x15] = BIN_CMD(INCR, true, 20, true, false, EXPTIME_AT_16),
    [0x16] = BIN_CMD(DECR, true, 20, true, false, EXPTIME_AT_16),
    [0x17] = BIN_UNSUPPORTED,   /* QUITQ. */
    [0x18] = { true, true, KAIRO_MC_OP_FLUSH_ALL, true, 0, true, false,
               false, BIN_EXPTIME_AT_0 },
    [0x19] = BIN_CMD(APPEND, true, 0, true, true, NO_EXPTIME),
    [0x1a] = BIN_CMD(PREPEND, true, 0, true, true, NO_EXPTIME),
    [0x1b] = BIN_UNSUPPORTED,   /* VERBOSITY. */
    [0x1c] = BIN_CMD(TOUCH, false, 4, true, false, EXPTIME_AT_0),
    [0x1d] = BIN_CMD(GAT, false, 4, true, false, EXPTIME_AT_0),
    [0x1e] = BIN_CMD(GAT, true, 4, true, false, EXPTIME_AT_0),
    [0x20] = BIN_UNSUPPORTED,   /* SASL_LIST_MECHS. */
    [0x21] = BIN_UNSUPPORTED,   /* SASL_AUTH. */
    [0x22] = BIN_UNSUPPORTED,   /* SASL_STEP. */
    [0x23] = BIN_CMD(GAT, false, 4, true, false, EXPTIME_AT_0),
    [0x24] = BIN_CMD(GAT, true, 4, true, false, EXPTIME_AT_0),
};

/* Parses the binary request at 'start', inside the payload of 'ps'. */
static enum kairo_mc_error
parse_binary(struct parser *ps, const uint8_t *start)
{
    struct kairo_mc_request *req = ps->req;
    size_t avail = ps->end - start;
    const struct bin_command *cmd;
    uint32_t body_len, value_len;
    const uint8_t *extras;
    uint16_t key_len;
    uint8_t ext_len;

    if (avail < KAIRO_MC_BIN_HEADER_LEN) {
        return KAIRO_MC_ERR_BIN_TRUNCATED;
    }

    req->protocol = KAIRO_MC_BINARY;
    req->bin_opcode = start[1];
    key_len = get_be16(start + 2);
    ext_len = start[4];
    body_len = get_be32(start + 8);
    req->bin_opaque = get_be32(start + 12);
    req->cas = get_be64(start + 16);

    if ((uint64_t) key_len + ext_len > body_len
        || body_len > avail - KAIRO_MC_BIN_HEADER_LEN) {
        return KAIRO_MC_ERR_BIN_LENGTHS;
    }
    req->cmd_end = (start + KAIRO_MC_BIN_HEADER_LEN + body_len) - ps->base;

    cmd = &bin_commands[req->bin_opcode];
    if (!cmd->known) {
        return KAIRO_MC_ERR_UNKNOWN_COMMAND;
    } else if (!cmd->supported) {
        return KAIRO_MC_ERR_UNSUPPORTED_COMMAND;
    }
    req->op = cmd->op;
    req->noreply = cmd->quiet;

    value_len = body_len - key_len - ext_len;
    if (start[5] != 0
        || (cmd->flush_extras ? ext_len != 0 && ext_len != 4
                              : ext_len != cmd->extlen)
        || cmd->has_key != (key_len != 0)
        || (!cmd->has_value && value_len)) {
        return KAIRO_MC_ERR_BIN_FORMAT;
    }
    if (key_len > KAIRO_MC_MAX_KEY_LEN) {
        return KAIRO_MC_ERR_KEY_TOO_LONG;
    }

    extras = start + KAIRO_MC_BIN_HEADER_LEN;
    if (key_len) {
        req->keys[0] = make_span(ps->base, extras + ext_len, key_len);
        req->n_keys = 1;
    }
    if (cmd->has_value) {
        req->data = make_span(ps->base, extras + ext_len + key_len,
                              value_len);
    }
    if (ext_len == 8) {
        req->item_flags = get_be32(extras);
    } else if (ext_len == 20) {
        req->delta = get_be64(extras);
    }
    switch (cmd->exptime) {
    case BIN_EXPTIME_AT_0:
        if (ext_len >= 4) {
            req->exptime = get_be32(extras);
            req->has_exptime = true;
        }
        break;
    case BIN_EXPTIME_AT_4:
        req->exptime = get_be32(extras + 4);
        req->has_exptime = true;
        break;
    case BIN_EXPTIME_AT_16:
        req->exptime = get_be32(extras + 16);
        req->has_exptime = true;
        break;
    case BIN_NO_EXPTIME:
    default:
        break;
    }

    if (req->op == KAIRO_MC_OP_GET) {
        req->is_read = true;
    } else if (req->op == KAIRO_MC_OP_GAT) {
        req->is_read = req->is_write = true;
    } else if (req->op != KAIRO_MC_OP_NOOP) {
        req->is_write = true;
    }
    return KAIRO_MC_OK;
}

/* Resets every field of 'req' but the key array, which is only valid up to
 * 'n_keys' anyway. */
static void
reset_request(struct kairo_mc_request *req)
{
    /* In pieces of at most 64 bytes, which the compiler turns into a few
     * vector stores: one memset of the whole size becomes "rep stos", whose
     * start-up cost was a third of the time of parsing a short get. */
    enum { HEAD = offsetof(struct kairo_mc_request, keys) };
    uint8_t *p = (uint8_t *) req;

    for (size_t ofs = 0; ofs < HEAD; ofs += 64) {
        memset(p + ofs, 0, MIN(64, HEAD - ofs));
    }
}

/* Decodes the frame header of 'payload' into 'frame'. */
enum kairo_mc_error
kairo_mc_parse_frame(const void *payload_, size_t size,
                     struct kairo_mc_frame *frame)
{
    const uint8_t *payload = payload_;

    if (size < KAIRO_MC_FRAME_HEADER_LEN) {
        return KAIRO_MC_ERR_TRUNCATED_FRAME;
    }
    frame->request_id = get_be16(payload);
    frame->seq = get_be16(payload + 2);
    frame->total = get_be16(payload + 4);
    frame->reserved = get_be16(payload + 6);
    return KAIRO_MC_OK;
}

/* Parses the command at offset 'ofs' of 'payload' into 'req', after checking
 * the payload size and decoding the frame header, and also checking that the
 * frame's total is 1 if 'check_total'. */
static enum kairo_mc_error
parse_command(const uint8_t *payload, size_t size, size_t ofs,
              bool check_total, struct kairo_mc_request *req)
{
    struct parser ps;
    const uint8_t *start;

    reset_request(req);
    req->n_keys = 0;
    if (size > KAIRO_MC_MAX_DATAGRAM) {
        return KAIRO_MC_ERR_OVERSIZED;
    }
    if (kairo_mc_parse_frame(payload, size, &req->frame)) {
        return KAIRO_MC_ERR_TRUNCATED_FRAME;
    }
    if (check_total && req->frame.total != 1) {
        return KAIRO_MC_ERR_MULTI_DATAGRAM;
    }
    if (ofs >= size) {
        req->cmd_ofs = req->cmd_end = size;
        return KAIRO_MC_ERR_EMPTY;
    }

    ps.base = payload;
    ps.end = payload + size;
    ps.req = req;
    start = payload + ofs;
    req->cmd_ofs = ofs;

    if (*start == BIN_REQUEST_MAGIC) {
        return parse_binary(&ps, start);
    } else if (*start == BIN_RESPONSE_MAGIC) {
        return KAIRO_MC_ERR_BIN_RESPONSE;
    }
    return parse_text(&ps, start);
}

/* Parses the UDP payload 'payload' of 'size' bytes into 'req'. */
enum kairo_mc_error
kairo_mc_parse_request(const void *payload, size_t size,
                       struct kairo_mc_request *req)
{
    enum kairo_mc_error error;

    error = parse_command(payload, size, KAIRO_MC_FRAME_HEADER_LEN, true,
                          req);
    if (!error && req->cmd_end != size) {
        return KAIRO_MC_ERR_PIPELINED;
    }
    return error;
}

/* Parses the command at offset 'ofs' of 'payload' into 'req'. */
enum kairo_mc_error
kairo_mc_parse_next(const void *payload, size_t size, size_t ofs,
                    struct kairo_mc_request *req)
{
    ovs_assert(ofs >= KAIRO_MC_FRAME_HEADER_LEN);
    return parse_command(payload, size, ofs, false, req);
}

/* Writes 'frame' to 'buf' in wire format. */
void
kairo_mc_put_frame(void *buf_, const struct kairo_mc_frame *frame)
{
    uint8_t *buf = buf_;

    put_be16(buf, frame->request_id);
    put_be16(buf + 2, frame->seq);
    put_be16(buf + 4, frame->total);
    put_be16(buf + 6, frame->reserved);
}

/* Appends the 'len' bytes at 'data' to '*p'. */
static void
append(uint8_t **p, const void *data, size_t len)
{
    memcpy(*p, data, len);
    *p += len;
}

/* Builds, in 'buf', a get request for the keys of 'req' in 'key_mask'. */
size_t
kairo_mc_build_get(const struct kairo_mc_request *req, uint64_t key_mask,
                   void *buf_, size_t size)
{
    struct kairo_mc_frame frame = {
        .request_id = req->frame.request_id,
        .total = 1,
    };
    bool has_exptime;
    size_t needed;
    uint8_t *p;

    if (req->protocol != KAIRO_MC_ASCII
        || (req->op != KAIRO_MC_OP_GET && req->op != KAIRO_MC_OP_GETS
            && req->op != KAIRO_MC_OP_GAT && req->op != KAIRO_MC_OP_GATS)
        || !req->n_keys || req->n_keys > KAIRO_MC_MAX_KEYS || !key_mask
        || (req->n_keys < 64 && key_mask >> req->n_keys)) {
        return 0;
    }
    has_exptime = req->op == KAIRO_MC_OP_GAT || req->op == KAIRO_MC_OP_GATS;

    needed = KAIRO_MC_FRAME_HEADER_LEN + req->name.len + 2;
    if (has_exptime) {
        needed += 1 + req->exptime_token.len;
    }
    for (size_t i = 0; i < req->n_keys; i++) {
        if (key_mask & (UINT64_C(1) << i)) {
            needed += 1 + req->keys[i].len;
        }
    }
    if (needed > size) {
        return 0;
    }

    p = buf_;
    kairo_mc_put_frame(p, &frame);
    p += KAIRO_MC_FRAME_HEADER_LEN;
    append(&p, req->name.data, req->name.len);
    if (has_exptime) {
        append(&p, " ", 1);
        append(&p, req->exptime_token.data, req->exptime_token.len);
    }
    for (size_t i = 0; i < req->n_keys; i++) {
        if (key_mask & (UINT64_C(1) << i)) {
            append(&p, " ", 1);
            append(&p, req->keys[i].data, req->keys[i].len);
        }
    }
    append(&p, "\r\n", 2);
    return needed;
}

/* Replies. */

/* Returns the '\r' of the first "\r\n" in the 'n' bytes at 'p', or NULL. */
static const uint8_t *
find_crlf(const uint8_t *p, size_t n)
{
    const uint8_t *cr = n >= 2 ? memchr(p, '\r', n - 1) : NULL;

    return cr && cr[1] == '\n' ? cr : NULL;
}

/* Splits the 'n' bytes at 'p' into at most 'max' space-separated tokens in
 * 'toks', which must be separated by exactly one space.  Returns the number
 * of tokens, or SIZE_MAX if there are more than 'max' or a token is
 * empty. */
static size_t
split_reply_line(const uint8_t *p, size_t n, struct token toks[], size_t max)
{
    size_t n_toks = 0;
    size_t start = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == ' ') {
            if (i == start || n_toks >= max) {
                return SIZE_MAX;
            }
            toks[n_toks].data = p + start;
            toks[n_toks].len = i - start;
            toks[n_toks].has_ctl = false;
            for (size_t j = start; j < i; j++) {
                if (p[j] < 0x21 || p[j] == 0x7f) {
                    toks[n_toks].has_ctl = true;
                }
            }
            n_toks++;
            start = i + 1;
        }
    }
    return n_toks;
}

/* Parses the reply item at 'ofs' of 'payload'. */
enum kairo_mc_reply_item
kairo_mc_parse_reply_item(const void *payload_, size_t size, size_t ofs,
                          struct kairo_mc_value *value, size_t *next)
{
    const uint8_t *payload = payload_;
    const uint8_t *line, *cr, *data;
    struct token toks[5];
    uint64_t flags, len, cas = 0;
    size_t n, avail;

    if (size > KAIRO_MC_MAX_DATAGRAM || ofs < KAIRO_MC_FRAME_HEADER_LEN
        || ofs >= size) {
        return KAIRO_MC_REPLY_OTHER;
    }
    line = payload + ofs;
    cr = find_crlf(line, size - ofs);
    if (!cr) {
        return KAIRO_MC_REPLY_OTHER;
    }
    if (cr - line == 3 && !memcmp(line, "END", 3)) {
        *next = cr + 2 - payload;
        return KAIRO_MC_REPLY_END;
    }

    n = split_reply_line(line, cr - line, toks, ARRAY_SIZE(toks));
    if ((n != 4 && n != 5) || !token_is(&toks[0], "VALUE")
        || toks[1].len > KAIRO_MC_MAX_KEY_LEN || toks[1].has_ctl
        || !parse_u64(toks[2].data, toks[2].len, UINT32_MAX, &flags)
        || !parse_u64(toks[3].data, toks[3].len, MAX_DATA_LEN, &len)
        || (n == 5 && !parse_u64(toks[4].data, toks[4].len, UINT64_MAX,
                                 &cas))) {
        return KAIRO_MC_REPLY_OTHER;
    }
    data = cr + 2;
    avail = payload + size - data;
    if (avail < 2 || len > avail - 2
        || data[len] != '\r' || data[len + 1] != '\n') {
        return KAIRO_MC_REPLY_OTHER;
    }

    value->key = make_span(payload, toks[1].data, toks[1].len);
    value->flags = flags;
    value->has_cas = n == 5;
    value->cas = cas;
    value->data = make_span(payload, data, len);
    *next = data + len + 2 - payload;
    return KAIRO_MC_REPLY_VALUE;
}

/* Writes the decimal digits of 'x' to '*p' and advances it. */
static void
append_u64(uint8_t **p, uint64_t x)
{
    char digits[20];
    size_t n = 0;

    do {
        digits[n++] = '0' + x % 10;
        x /= 10;
    } while (x);
    while (n) {
        *(*p)++ = digits[--n];
    }
}

/* Writes a VALUE item to 'buf'. */
size_t
kairo_mc_put_value(void *buf, size_t size, const void *key, size_t key_len,
                   uint32_t flags, bool with_cas, uint64_t cas,
                   const void *data, size_t data_len)
{
    uint8_t numbers[64];        /* " <flags> <bytes>[ <cas>]\r\n". */
    uint8_t *n = numbers;
    uint8_t *p = buf;

    append(&n, " ", 1);
    append_u64(&n, flags);
    append(&n, " ", 1);
    append_u64(&n, data_len);
    if (with_cas) {
        append(&n, " ", 1);
        append_u64(&n, cas);
    }
    append(&n, "\r\n", 2);

    size_t n_len = n - numbers;
    if (key_len > size || data_len > size
        || 6 + key_len + n_len + data_len + 2 > size) {
        return 0;
    }
    append(&p, "VALUE ", 6);
    append(&p, key, key_len);
    append(&p, numbers, n_len);
    append(&p, data, data_len);
    append(&p, "\r\n", 2);
    return p - (uint8_t *) buf;
}

/* The name of each error, indexed by error. */
static const char *const error_names[KAIRO_MC_N_ERRORS] = {
    [KAIRO_MC_OK] = "ok",
    [KAIRO_MC_ERR_TRUNCATED_FRAME] = "truncated-frame",
    [KAIRO_MC_ERR_OVERSIZED] = "oversized",
    [KAIRO_MC_ERR_MULTI_DATAGRAM] = "multi-datagram",
    [KAIRO_MC_ERR_EMPTY] = "empty",
    [KAIRO_MC_ERR_MISSING_CRLF] = "missing-crlf",
    [KAIRO_MC_ERR_UNKNOWN_COMMAND] = "unknown-command",
    [KAIRO_MC_ERR_UNSUPPORTED_COMMAND] = "unsupported-command",
    [KAIRO_MC_ERR_BAD_SYNTAX] = "bad-syntax",
    [KAIRO_MC_ERR_BAD_NUMBER] = "bad-number",
    [KAIRO_MC_ERR_KEY_TOO_LONG] = "key-too-long",
    [KAIRO_MC_ERR_BAD_KEY] = "bad-key",
    [KAIRO_MC_ERR_TOO_MANY_KEYS] = "too-many-keys",
    [KAIRO_MC_ERR_DATA_LENGTH] = "data-length-mismatch",
    [KAIRO_MC_ERR_BIN_TRUNCATED] = "binary-header-truncated",
    [KAIRO_MC_ERR_BIN_LENGTHS] = "binary-bad-lengths",
    [KAIRO_MC_ERR_BIN_FORMAT] = "binary-bad-format",
    [KAIRO_MC_ERR_BIN_RESPONSE] = "binary-response",
    [KAIRO_MC_ERR_PIPELINED] = "pipelined",
};

/* Returns the name of 'error'. */
const char *
kairo_mc_error_to_string(enum kairo_mc_error error)
{
    return ((unsigned int) error < KAIRO_MC_N_ERRORS
            ? error_names[error] : "unknown");
}

/* The name of each operation, indexed by operation. */
static const char *const op_names[KAIRO_MC_N_OPS] = {
    [KAIRO_MC_OP_GET] = "get",
    [KAIRO_MC_OP_GETS] = "gets",
    [KAIRO_MC_OP_GAT] = "gat",
    [KAIRO_MC_OP_GATS] = "gats",
    [KAIRO_MC_OP_SET] = "set",
    [KAIRO_MC_OP_ADD] = "add",
    [KAIRO_MC_OP_REPLACE] = "replace",
    [KAIRO_MC_OP_APPEND] = "append",
    [KAIRO_MC_OP_PREPEND] = "prepend",
    [KAIRO_MC_OP_CAS] = "cas",
    [KAIRO_MC_OP_DELETE] = "delete",
    [KAIRO_MC_OP_INCR] = "incr",
    [KAIRO_MC_OP_DECR] = "decr",
    [KAIRO_MC_OP_TOUCH] = "touch",
    [KAIRO_MC_OP_FLUSH_ALL] = "flush_all",
    [KAIRO_MC_OP_MG] = "mg",
    [KAIRO_MC_OP_MS] = "ms",
    [KAIRO_MC_OP_MD] = "md",
    [KAIRO_MC_OP_MA] = "ma",
    [KAIRO_MC_OP_MN] = "mn",
    [KAIRO_MC_OP_NOOP] = "noop",
};

/* Returns the name of 'op'. */
const char *
kairo_mc_op_to_string(enum kairo_mc_op op)
{
    return (unsigned int) op < KAIRO_MC_N_OPS ? op_names[op] : "unknown";
}

/* Returns the name of 'protocol'. */
const char *
kairo_mc_protocol_to_string(enum kairo_mc_protocol protocol)
{
    switch (protocol) {
    case KAIRO_MC_ASCII:
        return "ascii";
    case KAIRO_MC_META:
        return "meta";
    case KAIRO_MC_BINARY:
        return "binary";
    default:
        return "unknown";
    }
}
