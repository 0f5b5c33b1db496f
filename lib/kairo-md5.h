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

#ifndef KAIRO_MD5_H
#define KAIRO_MD5_H 1

/* The MD5 message digest (RFC 1321).
 *
 * Kairo needs MD5 only to be bit-compatible with the ketama continuum of
 * twemproxy and libmemcached and with their "md5" key hash.  It is not used,
 * and must not be used, for anything that needs a secure digest.
 *
 * Thread-safety: every function is pure and reentrant.  A context belongs to
 * its caller; different threads may hash concurrently with different
 * contexts.  The module has no global state and allocates no memory. */

#include <stddef.h>
#include <stdint.h>

/* The size of an MD5 digest, in bytes. */
#define KAIRO_MD5_DIGEST_LEN 16

/* The state of an MD5 computation that is fed in pieces. */
struct kairo_md5_ctx {
    uint32_t state[4];          /* The chaining variables A, B, C and D. */
    uint64_t n_bytes;           /* Message bytes consumed so far. */
    uint8_t block[64];          /* Bytes of the current, partial block. */
};

/* Incremental interface: kairo_md5_init() starts a digest in a context the
 * caller owns (it allocates nothing), kairo_md5_update() feeds 'size' bytes
 * at 'data' (which it only reads), and kairo_md5_final() pads the message,
 * writes the 16-byte digest to 'digest' and leaves the context needing a
 * new kairo_md5_init() before reuse. */
void kairo_md5_init(struct kairo_md5_ctx *);
void kairo_md5_update(struct kairo_md5_ctx *, const void *data, size_t size);
void kairo_md5_final(struct kairo_md5_ctx *,
                     uint8_t digest[KAIRO_MD5_DIGEST_LEN]);

/* Writes the MD5 digest of the 'size' bytes at 'data' to 'digest'.  'data'
 * may be NULL when 'size' is 0. */
void kairo_md5(const void *data, size_t size,
               uint8_t digest[KAIRO_MD5_DIGEST_LEN]);

#endif /* kairo-md5.h */
