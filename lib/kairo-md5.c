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
#include "kairo-md5.h"

#include <string.h>

/* The additive constant of each of the 64 steps: the integer part of
 * 2**32 * |sin(i + 1)|, as RFC 1321 section 3.4 defines it. */
static const uint32_t md5_sines[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee,
    0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
    0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa,
    0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
    0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05,
    0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039,
    0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
    0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* The left-rotation amounts: four per round, each used four times. */
static const uint8_t md5_shifts[4][4] = {
    { 7, 12, 17, 22 },
    { 5, 9, 14, 20 },
    { 4, 11, 16, 23 },
    { 6, 10, 15, 21 },
};

/* Returns 'x' rotated left by 'n' bits, 0 < n < 32. */
static inline uint32_t
rotl32(uint32_t x, unsigned int n)
{
    return (x << n) | (x >> (32 - n));
}

/* Reads the little-endian 32-bit word at 'p'. */
static inline uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8)
           | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

/* Writes 'x' to 'p' as a little-endian 32-bit word. */
static inline void
put_le32(uint8_t *p, uint32_t x)
{
    p[0] = x;
    p[1] = x >> 8;
    p[2] = x >> 16;
    p[3] = x >> 24;
}

/* Mixes the 64-byte 'block' into the chaining variables in 'state'. */
static void
md5_compress(uint32_t state[4], const uint8_t block[64])
{
    uint32_t m[16];
    uint32_t a = state[0];
    uint32_t b = state[1];
    uint32_t c = state[2];
    uint32_t d = state[3];

    for (int i = 0; i < 16; i++) {
        m[i] = get_le32(block + 4 * i);
    }

    for (int step = 0; step < 64; step++) {
        int round = step / 16;
        uint32_t f;
        int word;

        switch (round) {
        case 0:
            f = (b & c) | (~b & d);
            word = step;
            break;
        case 1:
            f = (b & d) | (c & ~d);
            word = (5 * step + 1) % 16;
            break;
        case 2:
            f = b ^ c ^ d;
            word = (3 * step + 5) % 16;
            break;
        default:
            f = c ^ (b | ~d);
            word = (7 * step) % 16;
            break;
        }

        f += a + md5_sines[step] + m[word];
        a = d;
        d = c;
        c = b;
        b += rotl32(f, md5_shifts[round][step % 4]);
    }

    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

/* Starts a new digest in 'ctx'. */
void
kairo_md5_init(struct kairo_md5_ctx *ctx)
{
    ctx->state[0] = 0x67452301;
    ctx->state[1] = 0xefcdab89;
    ctx->state[2] = 0x98badcfe;
    ctx->state[3] = 0x10325476;
    ctx->n_bytes = 0;
}

/* Feeds the 'size' bytes at 'data' into the digest in 'ctx'. */
void
kairo_md5_update(struct kairo_md5_ctx *ctx, const void *data_, size_t size)
{
    const uint8_t *data = data_;
    size_t used = ctx->n_bytes % 64;

    if (!size) {
        return;
    }
    ctx->n_bytes += size;

    if (used) {
        size_t chunk = 64 - used;

        if (size < chunk) {
            memcpy(ctx->block + used, data, size);
            return;
        }
        memcpy(ctx->block + used, data, chunk);
        md5_compress(ctx->state, ctx->block);
        data += chunk;
        size -= chunk;
    }

    while (size >= 64) {
        md5_compress(ctx->state, data);
        data += 64;
        size -= 64;
    }

    if (size) {
        memcpy(ctx->block, data, size);
    }
}

/* Pads the message in 'ctx', as RFC 1321 sections 3.1 and 3.2 say, and
 * stores its digest in 'digest'.  'ctx' must be reinitialized before it is
 * used again. */
void
kairo_md5_final(struct kairo_md5_ctx *ctx,
                uint8_t digest[KAIRO_MD5_DIGEST_LEN])
{
    uint64_t n_bits = ctx->n_bytes * 8;
    size_t used = ctx->n_bytes % 64;

    ctx->block[used++] = 0x80;
    if (used > 56) {
        memset(ctx->block + used, 0, 64 - used);
        md5_compress(ctx->state, ctx->block);
        used = 0;
    }
    memset(ctx->block + used, 0, 56 - used);
    put_le32(ctx->block + 56, n_bits);
    put_le32(ctx->block + 60, n_bits >> 32);
    md5_compress(ctx->state, ctx->block);

    for (int i = 0; i < 4; i++) {
        put_le32(digest + 4 * i, ctx->state[i]);
    }
}

/* Stores the MD5 digest of the 'size' bytes at 'data' in 'digest'. */
void
kairo_md5(const void *data, size_t size, uint8_t digest[KAIRO_MD5_DIGEST_LEN])
{
    struct kairo_md5_ctx ctx;

    kairo_md5_init(&ctx);
    kairo_md5_update(&ctx, data, size);
    kairo_md5_final(&ctx, digest);
}
