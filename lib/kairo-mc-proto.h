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

#ifndef KAIRO_MC_PROTO_H
#define KAIRO_MC_PROTO_H 1

/* Parser for memcached requests carried over UDP.
 *
 * A memcached UDP datagram starts with an 8-byte frame header (request id,
 * sequence number, total datagrams, reserved; big-endian u16 each), then one
 * request in the ASCII, meta or binary protocol.  A payload whose first
 * command byte is 0x80 is binary; 0x81 (a binary response) is an error; any
 * other byte starts an ASCII or meta command line.
 *
 * What is parsed:
 *
 *   - ASCII: get, gets and gat, gats (with <exptime>) with 1 to
 *     KAIRO_MC_MAX_KEYS keys; set, add, replace, append, prepend
 *     "<key> <flags> <exptime> <bytes> [noreply]" and cas (one more
 *     "<cas unique>") followed by a data block of exactly <bytes> bytes and
 *     "\r\n"; delete "<key> [0] [noreply]"; incr and decr
 *     "<key> <delta> [noreply]"; touch "<key> <exptime> [noreply]";
 *     flush_all "[<delay>] [noreply]".
 *
 *   - Meta: mg, md and ma "<key> <flag>*", ms "<key> <datalen> <flag>*"
 *     with its data block, and mn.  Flags are single letters, each at most
 *     once, optionally followed by a token; they are kept as one span.  The
 *     parser interprets 'q' (quiet, reported as 'noreply'), 'T' and 'N'
 *     (their number must be valid; 'T' sets 'exptime') and 'b' (the key is
 *     base64, reported as 'key_base64': the key span is then the encoded
 *     text, not the key memcached stores).
 *
 *   - Binary: 24-byte header with magic 0x80 and opcodes GET, GETQ, GETK,
 *     GETKQ, SET(Q), ADD(Q), REPLACE(Q), DELETE(Q), INCR(Q), DECR(Q),
 *     FLUSH(Q), NOOP, APPEND(Q), PREPEND(Q), TOUCH, GAT(Q), GATK(Q).  The
 *     key, extras and body lengths must agree with each other, with the
 *     opcode's format and with the datagram; the data type must be 0.
 *     Binary keys may hold any byte.
 *
 * Everything else is rejected with a reason (enum kairo_mc_error), which
 * names a counter through kairo_mc_error_to_string().  Commands memcached
 * knows but a switch should not steer or answer (stats, version, verbosity,
 * quit, ... and their binary opcodes) get their own reason,
 * KAIRO_MC_ERR_UNSUPPORTED_COMMAND, separate from unknown ones.
 *
 * The parser is strict where memcached is lenient, so that whatever it
 * accepts means the same to every memcached: command names are lower-case;
 * every line must end in "\r\n" (memcached also takes a bare "\n"); an
 * optional trailing token must be exactly "noreply"; numbers are plain
 * decimal without '+' or spaces, and must fit their field (exptime, delay
 * and meta 'T' and 'N' a signed 32-bit value, <flags> 32 bits unsigned,
 * <bytes> and meta datalen 0 to 2**31 - 3, <cas unique>, <delta> and meta
 * 'D' 64 bits unsigned); ASCII and meta
 * keys are 1 to 250 bytes with no control character (below 0x21, or 0x7f).
 * Runs of spaces between tokens are accepted, as memcached does.
 *
 * Classification ('is_read', 'is_write'): writes are everything that may
 * change an item or its lifetime: set, add, replace, append, prepend, cas,
 * delete, incr, decr, touch, gat, gats, flush_all, ms, md, ma, mg with a 'T'
 * (touch) or 'N' (vivify) flag, and the binary equivalents (GAT included).
 * Reads are get, gets, gat, gats, mg and the binary GET and GAT families.
 * So gat is both, mn and NOOP are neither, and flush_all is a write with
 * no key.
 *
 * Pipelining: a datagram may hold several commands (typically meta commands
 * ending in mn, or quiet binary gets ending in NOOP).  The parser describes
 * one command per call.  kairo_mc_parse_request() parses the first and
 * returns KAIRO_MC_ERR_PIPELINED, with the request fully filled in, if more
 * bytes follow it; kairo_mc_parse_next() then parses the command at
 * 'cmd_end', and so on.  A caller that snoops writes must walk the whole
 * datagram that way, or treat the datagram as a write of unknown keys.
 *
 * Ownership: the parser copies no packet data.  Every key and span in a
 * struct kairo_mc_request points into the caller's payload buffer, which
 * must outlive the request.  The request is caller-allocated, fixed-size
 * (no allocation ever happens), and holds up to KAIRO_MC_MAX_KEYS keys.
 *
 * Thread-safety: all functions are pure and reentrant; they may be called
 * concurrently from any thread, PMD threads included, on different or the
 * same (read-only) payloads.  Work is linear in the payload size with small
 * constants (one scan for the line end, one pass over its tokens), and no
 * function loops over anything else. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Size of the memcached UDP frame header, in bytes. */
#define KAIRO_MC_FRAME_HEADER_LEN 8

/* Largest payload the parser accepts, in bytes: the most a UDP datagram can
 * carry. */
#define KAIRO_MC_MAX_DATAGRAM 65535

/* Largest reply datagram memcached sends, frame header included, in bytes
 * (its UDP_MAX_PAYLOAD_SIZE): longer replies are cut into datagrams of this
 * size, numbered by sequence and total. */
#define KAIRO_MC_REPLY_DATAGRAM 1400

/* Size of a binary protocol request header, in bytes. */
#define KAIRO_MC_BIN_HEADER_LEN 24

/* Longest memcached key, in bytes. */
#define KAIRO_MC_MAX_KEY_LEN 250

/* Most keys one retrieval command may carry (get, gets, gat, gats). */
#define KAIRO_MC_MAX_KEYS 32

/* Why a payload was rejected.  Values are stable within a build; names
 * (kairo_mc_error_to_string()) are stable across builds. */
enum kairo_mc_error {
    KAIRO_MC_OK,                /* "ok": parsed. */
    KAIRO_MC_ERR_TRUNCATED_FRAME, /* Shorter than the frame header. */
    KAIRO_MC_ERR_OVERSIZED,     /* Longer than KAIRO_MC_MAX_DATAGRAM. */
    KAIRO_MC_ERR_MULTI_DATAGRAM, /* Frame "total" is not 1. */
    KAIRO_MC_ERR_EMPTY,         /* Nothing after the frame header. */
    KAIRO_MC_ERR_MISSING_CRLF,  /* Command line not ended by "\r\n". */
    KAIRO_MC_ERR_UNKNOWN_COMMAND, /* Command name or opcode not known. */
    KAIRO_MC_ERR_UNSUPPORTED_COMMAND, /* Known, but never parsed. */
    KAIRO_MC_ERR_BAD_SYNTAX,    /* Wrong tokens for the command. */
    KAIRO_MC_ERR_BAD_NUMBER,    /* A numeric token is invalid. */
    KAIRO_MC_ERR_KEY_TOO_LONG,  /* A key exceeds 250 bytes. */
    KAIRO_MC_ERR_BAD_KEY,       /* A key holds a control character. */
    KAIRO_MC_ERR_TOO_MANY_KEYS, /* More than KAIRO_MC_MAX_KEYS keys. */
    KAIRO_MC_ERR_DATA_LENGTH,   /* Data block overruns or lacks "\r\n". */
    KAIRO_MC_ERR_BIN_TRUNCATED, /* Binary header cut short. */
    KAIRO_MC_ERR_BIN_LENGTHS,   /* Binary lengths disagree or overrun. */
    KAIRO_MC_ERR_BIN_FORMAT,    /* Binary extras/key/value or data type
                                 * wrong for the opcode. */
    KAIRO_MC_ERR_BIN_RESPONSE,  /* Binary response magic 0x81. */
    KAIRO_MC_ERR_PIPELINED,     /* More commands follow the first one. */
    KAIRO_MC_N_ERRORS           /* Number of values, not a value. */
};

/* The protocol of a request. */
enum kairo_mc_protocol {
    KAIRO_MC_ASCII,             /* Classic text commands. */
    KAIRO_MC_META,              /* Meta text commands (mg, ms, ...). */
    KAIRO_MC_BINARY,            /* Binary protocol, magic 0x80. */
};

/* The operation of a request.  Binary opcodes map to the ASCII operation
 * that does the same thing ('bin_opcode' keeps the opcode): GET, GETQ,
 * GETK and GETKQ to GET; SET(Q) to SET; FLUSH(Q) to FLUSH_ALL; GAT(Q) and
 * GATK(Q) to GAT; and so on. */
enum kairo_mc_op {
    KAIRO_MC_OP_GET,            /* get, binary GET and its variants. */
    KAIRO_MC_OP_GETS,           /* gets. */
    KAIRO_MC_OP_GAT,            /* gat, binary GAT and its variants. */
    KAIRO_MC_OP_GATS,           /* gats. */
    KAIRO_MC_OP_SET,            /* set, binary SET(Q). */
    KAIRO_MC_OP_ADD,            /* add, binary ADD(Q). */
    KAIRO_MC_OP_REPLACE,        /* replace, binary REPLACE(Q). */
    KAIRO_MC_OP_APPEND,         /* append, binary APPEND(Q). */
    KAIRO_MC_OP_PREPEND,        /* prepend, binary PREPEND(Q). */
    KAIRO_MC_OP_CAS,            /* cas. */
    KAIRO_MC_OP_DELETE,         /* delete, binary DELETE(Q). */
    KAIRO_MC_OP_INCR,           /* incr, binary INCR(Q). */
    KAIRO_MC_OP_DECR,           /* decr, binary DECR(Q). */
    KAIRO_MC_OP_TOUCH,          /* touch, binary TOUCH. */
    KAIRO_MC_OP_FLUSH_ALL,      /* flush_all, binary FLUSH(Q). */
    KAIRO_MC_OP_MG,             /* Meta get. */
    KAIRO_MC_OP_MS,             /* Meta set. */
    KAIRO_MC_OP_MD,             /* Meta delete. */
    KAIRO_MC_OP_MA,             /* Meta arithmetic. */
    KAIRO_MC_OP_MN,             /* Meta no-op. */
    KAIRO_MC_OP_NOOP,           /* Binary NOOP. */
    KAIRO_MC_N_OPS              /* Number of operations, not one. */
};

/* The decoded UDP frame header. */
struct kairo_mc_frame {
    uint16_t request_id;        /* Echoed in every reply datagram. */
    uint16_t seq;               /* Sequence number, 0 in requests. */
    uint16_t total;             /* Datagrams in the message, 1 in requests. */
    uint16_t reserved;          /* Unused, normally 0. */
};

/* A run of bytes inside the caller's payload. */
struct kairo_mc_span {
    const uint8_t *data;        /* First byte, inside the payload. */
    uint32_t ofs;               /* Offset of 'data' from the payload start
                                 * (the frame header's first byte). */
    uint32_t len;               /* Length in bytes; 0 if absent. */
};

/* One parsed request.  Offsets count from the start of the payload, frame
 * header included.  Fields that do not apply to the request are 0, false or
 * empty spans. */
struct kairo_mc_request {
    struct kairo_mc_frame frame;   /* The datagram's frame header. */
    enum kairo_mc_protocol protocol; /* ASCII, meta or binary. */
    enum kairo_mc_op op;        /* What the request does. */
    bool is_read;               /* Returns item data (see above). */
    bool is_write;              /* May change items (see above). */
    bool noreply;               /* "noreply", meta 'q' or a quiet binary
                                 * opcode: some replies are suppressed. */
    bool has_exptime;           /* Whether 'exptime' was given. */
    bool key_base64;            /* Meta 'b' flag: the key is base64 text. */
    int64_t exptime;            /* Expiry time, touch time or flush delay;
                                 * binary values are unsigned 32-bit. */
    uint32_t item_flags;        /* Client flags of a stored item. */
    uint64_t cas;               /* cas unique, or binary header cas. */
    uint64_t delta;             /* incr/decr amount (ASCII and binary). */
    uint8_t bin_opcode;         /* Binary opcode (binary only). */
    uint32_t bin_opaque;        /* Binary opaque (binary only). */
    uint32_t cmd_ofs;           /* Offset of the command's first byte. */
    uint32_t cmd_end;           /* Offset just past the command, its data
                                 * block included. */
    struct kairo_mc_span name;  /* ASCII or meta command name token. */
    struct kairo_mc_span exptime_token; /* gat/gats <exptime> as sent. */
    struct kairo_mc_span meta_flags; /* Meta flag tokens, first to last. */
    struct kairo_mc_span data;  /* Data block without its "\r\n", or the
                                 * binary value. */
    size_t n_keys;              /* Number of valid 'keys'. */
    struct kairo_mc_span keys[KAIRO_MC_MAX_KEYS]; /* Keys, in order. */
};

/* Decodes the frame header at the start of the 'size'-byte 'payload' into
 * '*frame'.  Returns KAIRO_MC_OK, or KAIRO_MC_ERR_TRUNCATED_FRAME (and
 * leaves '*frame' alone) if 'size' is less than 8.  Does not check
 * 'total'. */
enum kairo_mc_error kairo_mc_parse_frame(const void *payload, size_t size,
                                         struct kairo_mc_frame *frame);

/* Parses the 'size'-byte UDP 'payload', which starts with the frame header,
 * into '*req'.  Returns KAIRO_MC_OK if the payload is exactly one valid
 * request, KAIRO_MC_ERR_PIPELINED if it starts with a valid request that
 * more bytes follow (from 'req->cmd_end'), or another error.  After any
 * error but KAIRO_MC_ERR_PIPELINED, only 'req->frame' (if the error is not
 * TRUNCATED_FRAME or OVERSIZED) and 'req->cmd_ofs' are meaningful. */
enum kairo_mc_error kairo_mc_parse_request(const void *payload, size_t size,
                                           struct kairo_mc_request *req);

/* Parses the command that starts at offset 'ofs' (at least 8) of the same
 * 'size'-byte 'payload', for walking a pipelined datagram: call it with
 * 'ofs' set to the previous request's 'cmd_end' until that equals 'size'.
 * Returns KAIRO_MC_OK whether or not more bytes follow the command (compare
 * 'req->cmd_end' with 'size'), KAIRO_MC_ERR_EMPTY if 'ofs' is at or past
 * the end, or another error as kairo_mc_parse_request() does.  The frame
 * header is decoded again into 'req->frame' but 'total' is not checked. */
enum kairo_mc_error kairo_mc_parse_next(const void *payload, size_t size,
                                        size_t ofs,
                                        struct kairo_mc_request *req);

/* Writes into 'buf', which has room for 'size' bytes, a UDP payload that
 * asks for the subset of the keys of 'req' selected by 'key_mask' (bit i
 * selects 'req->keys[i]'; order is kept): the frame header with the same
 * request id, sequence 0, total 1 and reserved 0, then
 * "<cmd> [<exptime>] <key1> <key2> ...\r\n" with <cmd> and <exptime> as in
 * 'req'.  'req' must be an ASCII get, gets, gat or gats whose payload is
 * still valid, and 'key_mask' must select at least one key and no bit at or
 * above 'req->n_keys'.  Returns the number of bytes written, or 0 (writing
 * nothing useful) if those conditions fail or the result does not fit.
 * 'buf' must not overlap the payload. */
size_t kairo_mc_build_get(const struct kairo_mc_request *req,
                          uint64_t key_mask, void *buf, size_t size);

/* Replies.
 *
 * A switch that caches values reads the replies to the gets it steered and
 * writes replies of its own.  Only what a cache needs is parsed: the items of
 * an ASCII get or gets reply, "VALUE <key> <flags> <bytes> [<cas>]\r\n"
 * followed by a data block of exactly <bytes> bytes and "\r\n", and the
 * "END\r\n" that closes it.  Any other line (an error, a meta reply, a
 * storage result) is KAIRO_MC_REPLY_OTHER, which a cache takes to mean "do
 * not fill from this datagram".  The same strictness as for requests holds:
 * lines end in "\r\n", numbers are plain decimal, keys are 1 to 250 bytes
 * with no control character. */

/* What kairo_mc_parse_reply_item() found. */
enum kairo_mc_reply_item {
    KAIRO_MC_REPLY_VALUE,       /* One VALUE item, described in the value. */
    KAIRO_MC_REPLY_END,         /* "END\r\n". */
    KAIRO_MC_REPLY_OTHER,       /* Anything else, or a malformed item. */
};

/* One VALUE item of a get or gets reply. */
struct kairo_mc_value {
    struct kairo_mc_span key;   /* The key. */
    uint32_t flags;             /* The item's client flags. */
    bool has_cas;               /* Whether the line carried a cas unique. */
    uint64_t cas;               /* The cas unique, if 'has_cas'. */
    struct kairo_mc_span data;  /* The data block, without its "\r\n". */
};

/* Parses the reply item at offset 'ofs' of the 'size'-byte UDP 'payload'
 * (frame header included, 'ofs' at least 8).  For KAIRO_MC_REPLY_VALUE
 * fills '*value' and for VALUE and END stores in '*next' the offset just
 * past the item; for KAIRO_MC_REPLY_OTHER leaves both alone.  Spans point
 * into 'payload'.  Pure and reentrant. */
enum kairo_mc_reply_item kairo_mc_parse_reply_item(
    const void *payload, size_t size, size_t ofs,
    struct kairo_mc_value *value, size_t *next);

/* Writes "VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n" for the
 * 'key_len'-byte 'key' and 'data_len'-byte 'data' to 'buf', which has room
 * for 'size' bytes; the cas unique is written if 'with_cas'.  Returns the
 * bytes written, or 0 (writing nothing useful) if they do not fit. */
size_t kairo_mc_put_value(void *buf, size_t size, const void *key,
                          size_t key_len, uint32_t flags, bool with_cas,
                          uint64_t cas, const void *data, size_t data_len);

/* Writes 'frame' to the 8 bytes at 'buf' in wire format. */
void kairo_mc_put_frame(void *buf, const struct kairo_mc_frame *frame);

/* Returns a short, stable, lower-case name for 'error', usable as a counter
 * or reason name (for example "truncated-frame"), or "unknown" if 'error'
 * is out of range.  The string is static. */
const char *kairo_mc_error_to_string(enum kairo_mc_error error);

/* Returns the command name of 'op' ("get", "ms", "noop", ...), or
 * "unknown"; a static string. */
const char *kairo_mc_op_to_string(enum kairo_mc_op op);

/* Returns "ascii", "meta" or "binary" for 'protocol', or "unknown"; a
 * static string. */
const char *kairo_mc_protocol_to_string(enum kairo_mc_protocol protocol);

#endif /* kairo-mc-proto.h */
