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
#include "kairo-mc-hash.h"

#include <string.h>

#include "kairo-md5.h"

/* The configuration name of each hash type, indexed by the type. */
static const char *const hash_names[KAIRO_MC_N_HASHES] = {
    [KAIRO_MC_HASH_ONE_AT_A_TIME] = "one_at_a_time",
    [KAIRO_MC_HASH_MD5] = "md5",
    [KAIRO_MC_HASH_CRC16] = "crc16",
    [KAIRO_MC_HASH_CRC32] = "crc32",
    [KAIRO_MC_HASH_CRC32A] = "crc32a",
    [KAIRO_MC_HASH_FNV1_64] = "fnv1_64",
    [KAIRO_MC_HASH_FNV1A_64] = "fnv1a_64",
    [KAIRO_MC_HASH_FNV1_32] = "fnv1_32",
    [KAIRO_MC_HASH_FNV1A_32] = "fnv1a_32",
    [KAIRO_MC_HASH_HSIEH] = "hsieh",
    [KAIRO_MC_HASH_MURMUR] = "murmur",
    [KAIRO_MC_HASH_JENKINS] = "jenkins",
};

/* CRC-16/XMODEM (polynomial 0x1021, most significant bit first) of each
 * byte value, split by linearity into its low and high nibbles: the table
 * entry for byte 'b' is crc16_lo[b & 0xf] ^ crc16_hi[b >> 4]. */
static const uint16_t crc16_lo[16] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
    0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
};
static const uint16_t crc16_hi[16] = {
    0x0000, 0x1231, 0x2462, 0x3653, 0x48c4, 0x5af5, 0x6ca6, 0x7e97,
    0x9188, 0x83b9, 0xb5ea, 0xa7db, 0xd94c, 0xcb7d, 0xfd2e, 0xef1f,
};

/* CRC-32 of each 4-bit value: reflected polynomial 0xedb88320. */
static const uint32_t crc32_nibbles[16] = {
    0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac,
    0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
    0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
    0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

/* Returns byte 'b' as twemproxy sees it through a signed "char" converted
 * to a 32-bit unsigned value: bytes >= 0x80 come out as 0xffffff80 and up. */
static inline uint32_t
sext32(uint8_t b)
{
    return (uint32_t) (int32_t) (int8_t) b;
}

/* Returns byte 'b' sign-extended to 64 bits, as twemproxy's 64-bit FNV-1
 * sees it. */
static inline uint64_t
sext64(uint8_t b)
{
    return (uint64_t) (int64_t) (int8_t) b;
}

/* Reads the little-endian 16-bit value at 'p'. */
static inline uint32_t
get_le16(const uint8_t *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8);
}

/* Reads the little-endian 32-bit value at 'p'. */
static inline uint32_t
get_le32(const uint8_t *p)
{
    return get_le16(p) | (get_le16(p + 2) << 16);
}

/* Returns 'x' rotated left by 'n' bits, 0 < n < 32. */
static inline uint32_t
rotl32(uint32_t x, unsigned int n)
{
    return (x << n) | (x >> (32 - n));
}

/* Returns the one-at-a-time hash of the 'len' bytes at 'p'. */
static uint32_t
hash_one_at_a_time(const uint8_t *p, size_t len)
{
    uint32_t h = 0;

    for (size_t i = 0; i < len; i++) {
        h += sext32(p[i]);
        h += h << 10;
        h ^= h >> 6;
    }
    h += h << 3;
    h ^= h >> 11;
    h += h << 15;
    return h;
}

/* Returns the first four bytes of the MD5 digest of the 'len' bytes at 'p',
 * read as a little-endian value. */
static uint32_t
hash_md5(const uint8_t *p, size_t len)
{
    uint8_t digest[KAIRO_MD5_DIGEST_LEN];

    kairo_md5(p, len, digest);
    return get_le32(digest);
}

/* Returns twemproxy's "crc16" of the 'len' bytes at 'p': CRC-16/XMODEM
 * computed in a 32-bit register that is never truncated, so the bits
 * shifted out of the low 16 stay in the result.  The low 16 bits are the
 * true CRC-16/XMODEM. */
static uint32_t
hash_crc16(const uint8_t *p, size_t len)
{
    uint32_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        uint8_t idx = (crc >> 8) ^ p[i];

        crc = (crc << 8) ^ crc16_lo[idx & 0xf] ^ crc16_hi[idx >> 4];
    }
    return crc;
}

/* Returns the standard CRC-32 of the 'len' bytes at 'p'. */
static uint32_t
crc32_ieee(const uint8_t *p, size_t len)
{
    uint32_t crc = UINT32_MAX;

    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ crc32_nibbles[crc & 0xf];
        crc = (crc >> 4) ^ crc32_nibbles[crc & 0xf];
    }
    return ~crc;
}

/* Returns the 64-bit FNV-1 hash of the 'len' bytes at 'p', with each byte
 * sign-extended before it is folded in, truncated to 32 bits. */
static uint32_t
hash_fnv1_64(const uint8_t *p, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    for (size_t i = 0; i < len; i++) {
        h *= UINT64_C(0x100000001b3);
        h ^= sext64(p[i]);
    }
    return h;
}

/* Returns twemproxy's "fnv1a_64" of the 'len' bytes at 'p': FNV-1a whose
 * offset basis and prime are the 64-bit ones truncated to 32 bits. */
static uint32_t
hash_fnv1a_64(const uint8_t *p, size_t len)
{
    uint32_t h = 0x84222325;

    for (size_t i = 0; i < len; i++) {
        h ^= sext32(p[i]);
        h *= 0x1b3;
    }
    return h;
}

/* Returns the 32-bit FNV-1 hash of the 'len' bytes at 'p'. */
static uint32_t
hash_fnv1_32(const uint8_t *p, size_t len)
{
    uint32_t h = 0x811c9dc5;

    for (size_t i = 0; i < len; i++) {
        h *= 0x01000193;
        h ^= sext32(p[i]);
    }
    return h;
}

/* Returns the 32-bit FNV-1a hash of the 'len' bytes at 'p'. */
static uint32_t
hash_fnv1a_32(const uint8_t *p, size_t len)
{
    uint32_t h = 0x811c9dc5;

    for (size_t i = 0; i < len; i++) {
        h ^= sext32(p[i]);
        h *= 0x01000193;
    }
    return h;
}

/* Returns Paul Hsieh's SuperFastHash of the 'len' bytes at 'p', 0 for an
 * empty key. */
static uint32_t
hash_hsieh(const uint8_t *p, size_t len)
{
    uint32_t h = 0;

    if (!len) {
        return 0;
    }

    for (size_t n = len / 4; n > 0; n--) {
        h += get_le16(p);
        h = (h << 16) ^ (get_le16(p + 2) << 11) ^ h;
        h += h >> 11;
        p += 4;
    }

    switch (len % 4) {
    case 3:
        h += get_le16(p);
        h ^= h << 16;
        h ^= sext32(p[2]) << 18;
        h += h >> 11;
        break;
    case 2:
        h += get_le16(p);
        h ^= h << 11;
        h += h >> 17;
        break;
    case 1:
        h += p[0];
        h ^= h << 10;
        h += h >> 1;
        break;
    default:
        break;
    }

    h ^= h << 3;
    h += h >> 5;
    h ^= h << 4;
    h += h >> 17;
    h ^= h << 25;
    h += h >> 6;
    return h;
}

/* Returns MurmurHash2 of the 'len' bytes at 'p', seeded as twemproxy seeds
 * it. */
static uint32_t
hash_murmur(const uint8_t *p, size_t len)
{
    const uint32_t m = 0x5bd1e995;
    uint32_t h = (0xdeadbeef * (uint32_t) len) ^ (uint32_t) len;

    for (; len >= 4; len -= 4, p += 4) {
        uint32_t k = get_le32(p);

        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }

    if (len) {
        uint8_t tail[4] = { 0, 0, 0, 0 };

        memcpy(tail, p, len);
        h ^= get_le32(tail);
        h *= m;
    }

    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

/* Returns Bob Jenkins' lookup3 "hashlittle" of the 'len' bytes at 'p' with
 * initial value 13. */
static uint32_t
hash_jenkins(const uint8_t *p, size_t len)
{
    uint32_t a, b, c;
    uint8_t tail[12];

    a = b = c = 0xdeadbeef + (uint32_t) len + 13;
    if (!len) {
        return c;
    }

    for (; len > 12; len -= 12, p += 12) {
        a += get_le32(p);
        b += get_le32(p + 4);
        c += get_le32(p + 8);

        a -= c; a ^= rotl32(c, 4); c += b;
        b -= a; b ^= rotl32(a, 6); a += c;
        c -= b; c ^= rotl32(b, 8); b += a;
        a -= c; a ^= rotl32(c, 16); c += b;
        b -= a; b ^= rotl32(a, 19); a += c;
        c -= b; c ^= rotl32(b, 4); b += a;
    }

    /* The last 1 to 12 bytes count as if zero-padded to 12. */
    memset(tail, 0, sizeof tail);
    memcpy(tail, p, len);
    a += get_le32(tail);
    b += get_le32(tail + 4);
    c += get_le32(tail + 8);

    c ^= b; c -= rotl32(b, 14);
    a ^= c; a -= rotl32(c, 11);
    b ^= a; b -= rotl32(a, 25);
    c ^= b; c -= rotl32(b, 16);
    a ^= c; a -= rotl32(c, 4);
    b ^= a; b -= rotl32(a, 14);
    c ^= b; c -= rotl32(b, 24);
    return c;
}

/* Returns the 'type' hash of the 'len' bytes at 'key'. */
uint32_t
kairo_mc_hash(enum kairo_mc_hash_type type, const void *key, size_t len)
{
    static const uint8_t empty[1];
    const uint8_t *p = len ? key : empty;

    switch (type) {
    case KAIRO_MC_HASH_ONE_AT_A_TIME:
        return hash_one_at_a_time(p, len);
    case KAIRO_MC_HASH_MD5:
        return hash_md5(p, len);
    case KAIRO_MC_HASH_CRC16:
        return hash_crc16(p, len);
    case KAIRO_MC_HASH_CRC32:
        return (crc32_ieee(p, len) >> 16) & 0x7fff;
    case KAIRO_MC_HASH_CRC32A:
        return crc32_ieee(p, len);
    case KAIRO_MC_HASH_FNV1_64:
        return hash_fnv1_64(p, len);
    case KAIRO_MC_HASH_FNV1A_64:
        return hash_fnv1a_64(p, len);
    case KAIRO_MC_HASH_FNV1_32:
        return hash_fnv1_32(p, len);
    case KAIRO_MC_HASH_FNV1A_32:
        return hash_fnv1a_32(p, len);
    case KAIRO_MC_HASH_HSIEH:
        return hash_hsieh(p, len);
    case KAIRO_MC_HASH_MURMUR:
        return hash_murmur(p, len);
    case KAIRO_MC_HASH_JENKINS:
        return hash_jenkins(p, len);
    case KAIRO_MC_N_HASHES:
    default:
        return 0;
    }
}

/* Looks up the hash type named 'name' and stores it in '*type'. */
bool
kairo_mc_hash_from_string(const char *name, enum kairo_mc_hash_type *type)
{
    for (int i = 0; i < KAIRO_MC_N_HASHES; i++) {
        if (!strcmp(name, hash_names[i])) {
            *type = i;
            return true;
        }
    }
    return false;
}

/* Returns the configuration name of 'type'. */
const char *
kairo_mc_hash_to_string(enum kairo_mc_hash_type type)
{
    return (unsigned int) type < KAIRO_MC_N_HASHES ? hash_names[type]
                                                   : "unknown";
}
