/* sha256 as text: 64 lowercase hex digits and a NUL, the one form every digest nemesyst stores or compares takes
 * (models, checkpoints, lineage blobs, consumed data, code). One writer of that form instead of a loop per caller.
 * Compiled into the store layer (src/store/local.mk), so the core and libnemesyst (C plugins) share it. */
#ifndef NEM_UTIL_SHA256_H
#define NEM_UTIL_SHA256_H

#include <stddef.h>

#include <openssl/evp.h>

#define NEM_SHA256_HEX_LEN 64

/* The sha256 of len bytes at data. */
void nem_sha256_hex(const void *data, size_t len, char hex[NEM_SHA256_HEX_LEN + 1]);
/* Finishes md (a sha256 context; it can be reinitialised after) into hex. */
void nem_sha256_final_hex(EVP_MD_CTX *md, char hex[NEM_SHA256_HEX_LEN + 1]);
/* A digest already finished: its first 32 bytes (n of them, zeros past n) into hex. */
void nem_sha256_to_hex(const unsigned char *digest, unsigned n, char hex[NEM_SHA256_HEX_LEN + 1]);

#endif
