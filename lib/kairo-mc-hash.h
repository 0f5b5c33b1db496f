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

#ifndef KAIRO_MC_HASH_H
#define KAIRO_MC_HASH_H 1

/* The key hash functions of twemproxy (nutcracker 0.5.0), bit-compatible.
 *
 * A memcached proxy maps a key to a backend by hashing the key with one of
 * these functions and looking the 32-bit result up in a distribution (see
 * kairo-ketama.h).  To send a key to the same backend as twemproxy does,
 * Kairo must compute the very same 32-bit value, including twemproxy's
 * quirks, which this header lists per function.  The most important one:
 * twemproxy reads keys through a plain "char *", which is signed on x86, so
 * several functions see a byte >= 0x80 as a negative number sign-extended to
 * 32 or 64 bits (0xe9 becomes 0xffffffe9).  Kairo reproduces that on every
 * architecture.  The values were checked against a running nutcracker 0.5.0
 * (tests/kairo-ketama-golden.py) and against published check values.
 *
 * None of these functions is suitable where an attacker must not be able to
 * predict or collide hashes.
 *
 * Thread-safety: every function is pure and reentrant, has no global
 * mutable state, allocates nothing and may be called from any thread,
 * including PMD threads.  Each call reads the key once and does work linear
 * in its length. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A key hash function, in the order of twemproxy's "hash:" setting list. */
enum kairo_mc_hash_type {
    /* Bob Jenkins' one-at-a-time hash over sign-extended bytes. */
    KAIRO_MC_HASH_ONE_AT_A_TIME,
    /* MD5 of the key; the digest's first 4 bytes as a little-endian u32. */
    KAIRO_MC_HASH_MD5,
    /* CRC-16/XMODEM (polynomial 0x1021, initial value 0) kept in a
     * 32-bit register that is never masked to 16 bits, as nutcracker 0.5.0
     * computes it: the result is 32 bits wide and only its low 16 bits are
     * the real CRC.  (Older twemproxy releases used CRC-16/ARC instead.) */
    KAIRO_MC_HASH_CRC16,
    /* libmemcached's "crc32": bits 16..30 of the standard CRC-32. */
    KAIRO_MC_HASH_CRC32,
    /* The standard CRC-32 (IEEE 802.3, as zlib computes it). */
    KAIRO_MC_HASH_CRC32A,
    /* 64-bit FNV-1 over sign-extended bytes, truncated to 32 bits. */
    KAIRO_MC_HASH_FNV1_64,
    /* twemproxy's default: FNV-1a done in 32-bit arithmetic, starting at
     * 0x84222325 and multiplying by 0x1b3, over sign-extended bytes. */
    KAIRO_MC_HASH_FNV1A_64,
    /* 32-bit FNV-1 over sign-extended bytes. */
    KAIRO_MC_HASH_FNV1_32,
    /* 32-bit FNV-1a over sign-extended bytes. */
    KAIRO_MC_HASH_FNV1A_32,
    /* Paul Hsieh's SuperFastHash; a 3-byte tail's last byte is
     * sign-extended. */
    KAIRO_MC_HASH_HSIEH,
    /* MurmurHash2 with seed 0xdeadbeef * length, little-endian words. */
    KAIRO_MC_HASH_MURMUR,
    /* Bob Jenkins' lookup3 "hashlittle" with initial value 13. */
    KAIRO_MC_HASH_JENKINS,
    KAIRO_MC_N_HASHES           /* Number of hash types, not a type. */
};

/* Returns the 32-bit hash of the 'len' bytes at 'key' under 'type', exactly
 * as nutcracker 0.5.0 computes it on x86-64.  'key' may be NULL when 'len' is
 * 0.  Note that twemproxy itself never hashes an empty key (a distribution
 * maps it to hash 0 first); the value for 'len' == 0 is the function's own.
 * 'type' must be a valid type. */
uint32_t kairo_mc_hash(enum kairo_mc_hash_type type,
                       const void *key, size_t len);

/* Sets '*type' to the hash type that twemproxy's configuration calls 'name'
 * (for example "fnv1a_64"; names are case-sensitive, as in twemproxy) and
 * returns true, or returns false and leaves '*type' alone if 'name' is not
 * one of the names. */
bool kairo_mc_hash_from_string(const char *name,
                               enum kairo_mc_hash_type *type);

/* Returns the twemproxy configuration name of 'type', a static string, or
 * "unknown" if 'type' is not valid. */
const char *kairo_mc_hash_to_string(enum kairo_mc_hash_type type);

#endif /* kairo-mc-hash.h */
