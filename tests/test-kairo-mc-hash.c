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

/* Unit tests for lib/kairo-md5.c and lib/kairo-mc-hash.c.
 *
 * MD5 is checked against the test suite of RFC 1321 appendix A.5 and a
 * million-byte message.  The key hashes are checked against values computed
 * by libhashkit 1.1.4 (the library twemproxy's hash functions come from),
 * through its libhashkit_<name>() entry points.  libhashkit has no crc16 or
 * crc32a and was built without hsieh: crc32a is checked against Python's
 * zlib.crc32(), crc16 against an independent Python model of nutcracker
 * 0.5.0's (whose low 16 bits are CRC-16/XMODEM, check value 0x31c3), and
 * hsieh only by regression values here and, for real, through nutcracker's
 * key placement in test-kairo-ketama.c, which covers every hash.  The
 * ketama golden data also confirm crc16. */

#include <config.h>

#include <stdio.h>
#include <string.h>

#include "kairo-mc-hash.h"
#include "kairo-md5.h"
#include "kairo-unit.h"
#include "util.h"

/* One RFC 1321 test: a message and its digest as lower-case hex. */
struct md5_vector {
    const char *message;        /* NUL-terminated message. */
    const char *digest;         /* Expected digest, 32 hex digits. */
};

/* The test suite of RFC 1321, appendix A.5. */
static const struct md5_vector rfc1321_vectors[] = {
    { "", "d41d8cd98f00b204e9800998ecf8427e" },
    { "a", "0cc175b9c0f1b6a831c399e269772661" },
    { "abc", "900150983cd24fb0d6963f7d28e17f72" },
    { "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
    { "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
    { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
      "d174ab98d277d9f5a5611c2c9f419d9f" },
    { "1234567890123456789012345678901234567890"
      "1234567890123456789012345678901234567890",
      "57edf4a22be3c955ac49da2e2107b67a" },
};

/* Formats 'digest' as 32 lower-case hex digits into 'hex'. */
static void
digest_to_hex(const uint8_t digest[KAIRO_MD5_DIGEST_LEN], char hex[33])
{
    for (int i = 0; i < KAIRO_MD5_DIGEST_LEN; i++) {
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
}

/* Checks kairo_md5() against every RFC 1321 vector. */
static void
test_md5_rfc1321(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(rfc1321_vectors); i++) {
        const struct md5_vector *v = &rfc1321_vectors[i];
        uint8_t digest[KAIRO_MD5_DIGEST_LEN];
        char hex[33];

        kairo_md5(v->message, strlen(v->message), digest);
        digest_to_hex(digest, hex);
        CU_ASSERT_STRING_EQUAL(hex, v->digest);
    }
}

/* Checks a message of one million 'a's (FIPS 180 style long message),
 * which crosses many blocks, fed in uneven pieces. */
static void
test_md5_million(void)
{
    static uint8_t chunk[1000];
    uint8_t digest[KAIRO_MD5_DIGEST_LEN];
    struct kairo_md5_ctx ctx;
    size_t done = 0;
    char hex[33];

    memset(chunk, 'a', sizeof chunk);
    kairo_md5_init(&ctx);
    for (size_t n = 1; done < 1000000; n = n % 997 + 1) {
        size_t len = MIN(n, 1000000 - done);

        kairo_md5_update(&ctx, chunk, len);
        done += len;
    }
    kairo_md5_final(&ctx, digest);
    digest_to_hex(digest, hex);
    CU_ASSERT_STRING_EQUAL(hex, "7707d6ae4e027c70eea2a935c2296f21");
}

/* Checks that feeding a message in two pieces, split at every point, gives
 * the one-shot digest, for lengths around the 56- and 64-byte padding
 * boundaries. */
static void
test_md5_incremental(void)
{
    uint8_t msg[130];

    for (size_t i = 0; i < sizeof msg; i++) {
        msg[i] = i * 37 + 11;
    }
    for (size_t len = 50; len <= sizeof msg; len++) {
        uint8_t whole[KAIRO_MD5_DIGEST_LEN];

        kairo_md5(msg, len, whole);
        for (size_t split = 0; split <= len; split++) {
            uint8_t parts[KAIRO_MD5_DIGEST_LEN];
            struct kairo_md5_ctx ctx;

            kairo_md5_init(&ctx);
            kairo_md5_update(&ctx, msg, split);
            kairo_md5_update(&ctx, msg + split, len - split);
            kairo_md5_final(&ctx, parts);
            CU_ASSERT(!memcmp(whole, parts, sizeof whole));
        }
    }
}

/* A key used to compare hash values. */
struct hash_key {
    const char *data;           /* Key bytes (may hold NUL). */
    size_t len;                 /* Key length. */
};

/* Keys for the value tables: empty, short, the CRC check string, bytes
 * >= 0x80 (sign-extension quirks), an embedded NUL, and lengths that reach
 * every tail case of the block-wise hashes. */
static const struct hash_key hash_keys[] = {
    { "", 0 },
    { "a", 1 },
    { "abc", 3 },
    { "foobar", 6 },
    { "123456789", 9 },
    { "\351", 1 },
    { "caf\303\251", 5 },
    { "\200\377\177\000z", 5 },
    { "hello world!", 12 },
    { "0123456789abc", 13 },
    { "key:12345", 9 },
    { "\377\377\377\377\377\377\377", 7 },
};

/* Expected values: one row per hash type in enum order, one column per key
 * of 'hash_keys' (see the top of the file for where each row comes
 * from). */
static const uint32_t hash_values[KAIRO_MC_N_HASHES][ARRAY_SIZE(hash_keys)] = {
    [KAIRO_MC_HASH_ONE_AT_A_TIME] = {
        0x00000000, 0xca2e9442, 0xed131f5b, 0xf952fde7, 0xc66b58c5,
        0x409848ff, 0xd99c709e, 0xa8da2c7d, 0x9bd919d3, 0xcae77770,
        0x57eab8e2, 0xceb94bdc,
    },
    [KAIRO_MC_HASH_MD5] = {
        0xd98c1dd4, 0xb975c10c, 0x98500190, 0x22f65838, 0x94e7f925,
        0x76870634, 0xe47f1107, 0x640e4a6d, 0x8ef93ffc, 0x71d9312d,
        0xdea1c9d5, 0xdbfa0a2a,
    },
    [KAIRO_MC_HASH_CRC16] = {
        0x00000000, 0x00007c87, 0x7c749dd6, 0x9effb025, 0x869031c3,
        0x00006c07, 0xf6269667, 0xb70a4297, 0x063b577b, 0x66f21798,
        0x82016bd7, 0xc39732ae,
    },
    [KAIRO_MC_HASH_CRC32] = {
        0x00000000, 0x000068b7, 0x00003524, 0x00001ef6, 0x00004bf4,
        0x00000bd4, 0x000018ad, 0x000046bc, 0x000003b4, 0x00004e68,
        0x000071f2, 0x00007f41,
    },
    [KAIRO_MC_HASH_CRC32A] = {
        0x00000000, 0xe8b7be43, 0x352441c2, 0x9ef61f95, 0xcbf43926,
        0x0bd4b551, 0x98ad42b5, 0x46bcf631, 0x03b4c26d, 0xce68ad26,
        0x71f2d93a, 0xff41d9ed,
    },
    [KAIRO_MC_HASH_FNV1_64] = {
        0x84222325, 0x8601b7be, 0x6bafadcb, 0xa4dda9c2, 0x2bf916d6,
        0x79fe4836, 0x8a06fef1, 0x402fe5ab, 0xb97b86bc, 0x0d0f5624,
        0xc94c3bbd, 0x87859a26,
    },
    [KAIRO_MC_HASH_FNV1A_64] = {
        0x84222325, 0x8601ec8c, 0x0541574b, 0xf73967e8, 0x23c6cdfc,
        0x79fe2ea4, 0xcef6bb89, 0xfece4017, 0xcd5a2672, 0x0bd2b7f6,
        0xef6b5649, 0xb997bdb0,
    },
    [KAIRO_MC_HASH_FNV1_32] = {
        0x811c9dc5, 0x050c5d7e, 0x439c2f4b, 0x31f0b262, 0x24148816,
        0xfaf3a2f6, 0xd682f171, 0x50c1748b, 0x8a01b99c, 0x54a63804,
        0x6974ea9d, 0xcddecf06,
    },
    [KAIRO_MC_HASH_FNV1A_32] = {
        0x811c9dc5, 0xe40c292c, 0x1a47e90b, 0xbf9cf968, 0xbb86b11c,
        0xebf38b44, 0x7572c049, 0x10213bf7, 0xb034fff2, 0x8136b5b6,
        0x26778469, 0x7176dbb0,
    },
    [KAIRO_MC_HASH_HSIEH] = {
        0x00000000, 0x93642e87, 0xe5186b3a, 0x07a5862c, 0xe4fc1670,
        0x3c20d7ba, 0xde3f8855, 0xc8b2470f, 0x13724f63, 0x9aefedfa,
        0x104f590b, 0xea980ceb,
    },
    [KAIRO_MC_HASH_MURMUR] = {
        0x00000000, 0x4b41757c, 0x7b0cc428, 0xabecff17, 0xb7760690,
        0xdd27d4d8, 0xda11981f, 0x86c73e8e, 0x7f8cfcad, 0xc23faf3e,
        0xa9820fc6, 0xfba9e03a,
    },
    [KAIRO_MC_HASH_JENKINS] = {
        0xdeadbefc, 0xe0a38690, 0x8f415600, 0x0fdd8b60, 0x19777af6,
        0x0731c9e4, 0xcb6225ad, 0xa30bf589, 0x1bc66602, 0x37f93ead,
        0xe8784292, 0xc9b46658,
    },
};

/* Checks every hash type on every key of the value table. */
static void
test_hash_values(void)
{
    for (int h = 0; h < KAIRO_MC_N_HASHES; h++) {
        for (size_t i = 0; i < ARRAY_SIZE(hash_keys); i++) {
            uint32_t got = kairo_mc_hash(h, hash_keys[i].data,
                                         hash_keys[i].len);

            if (got != hash_values[h][i]) {
                fprintf(stderr, "%s key %"PRIuSIZE": got %#010"PRIx32
                        ", expected %#010"PRIx32"\n",
                        kairo_mc_hash_to_string(h), i, got,
                        hash_values[h][i]);
            }
            CU_ASSERT_EQUAL(got, hash_values[h][i]);
        }
    }
}

/* Checks the sign-extension quirk directly: twemproxy's fnv1a_64 of the
 * byte 0xe9 XORs in 0xffffffe9, not 0xe9, so it differs from the
 * unsigned-byte result, while crc32a (unsigned bytes) does not care. */
static void
test_hash_sign_extension(void)
{
    uint32_t unsigned_fnv = (0x84222325 ^ 0xe9) * 0x1b3;
    uint32_t signed_fnv = (0x84222325 ^ 0xffffffe9) * 0x1b3;

    CU_ASSERT_EQUAL(kairo_mc_hash(KAIRO_MC_HASH_FNV1A_64, "\351", 1),
                    signed_fnv);
    CU_ASSERT_NOT_EQUAL(signed_fnv, unsigned_fnv);
    CU_ASSERT_EQUAL(kairo_mc_hash(KAIRO_MC_HASH_FNV1A_64, "\151", 1),
                    (0x84222325 ^ 0x69) * 0x1b3);
}

/* Checks that the block-wise hashes read only the bytes they are given:
 * the same key at every alignment, followed by different garbage, hashes
 * the same. */
static void
test_hash_alignment(void)
{
    static const char text[] = "the quick brown fox jumps over";

    for (int h = 0; h < KAIRO_MC_N_HASHES; h++) {
        for (size_t len = 0; len < sizeof text - 1; len++) {
            uint32_t expected = kairo_mc_hash(h, text, len);

            for (size_t align = 1; align < 8; align++) {
                uint8_t buf[64];

                memset(buf, 0xa5 + align, sizeof buf);
                memcpy(buf + align, text, len);
                CU_ASSERT_EQUAL(kairo_mc_hash(h, buf + align, len),
                                expected);
            }
        }
    }
}

/* Checks name parsing and formatting for every type and a few bad names. */
static void
test_hash_names(void)
{
    static const char *const names[KAIRO_MC_N_HASHES] = {
        "one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64",
        "fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins",
    };
    enum kairo_mc_hash_type type;

    for (int h = 0; h < KAIRO_MC_N_HASHES; h++) {
        CU_ASSERT_STRING_EQUAL(kairo_mc_hash_to_string(h), names[h]);
        CU_ASSERT(kairo_mc_hash_from_string(names[h], &type));
        CU_ASSERT_EQUAL(type, h);
    }

    type = KAIRO_MC_HASH_MD5;
    CU_ASSERT(!kairo_mc_hash_from_string("FNV1A_64", &type));
    CU_ASSERT(!kairo_mc_hash_from_string("fnv1a", &type));
    CU_ASSERT(!kairo_mc_hash_from_string("", &type));
    CU_ASSERT_EQUAL(type, KAIRO_MC_HASH_MD5);
    CU_ASSERT_STRING_EQUAL(kairo_mc_hash_to_string(KAIRO_MC_N_HASHES),
                           "unknown");
}

/* Adds the md5 and mc_hash suites to the CUnit registry. */
CU_ErrorCode
kairo_unit_register_mc_hash(void)
{
    CU_pSuite suite = CU_add_suite("kairo-mc-hash", NULL, NULL);

    if (!suite
        || !CU_add_test(suite, "md5 RFC 1321 vectors", test_md5_rfc1321)
        || !CU_add_test(suite, "md5 one million bytes", test_md5_million)
        || !CU_add_test(suite, "md5 incremental", test_md5_incremental)
        || !CU_add_test(suite, "hash values", test_hash_values)
        || !CU_add_test(suite, "hash sign extension",
                        test_hash_sign_extension)
        || !CU_add_test(suite, "hash alignment", test_hash_alignment)
        || !CU_add_test(suite, "hash names", test_hash_names)) {
        return CU_get_error();
    }
    return CUE_SUCCESS;
}
