/* sha256 as text (sha256.h). */
#include "util/sha256.h"

void nem_sha256_to_hex(const unsigned char *digest, unsigned n, char hex[NEM_SHA256_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < NEM_SHA256_HEX_LEN / 2; i++) {
        unsigned char b = i < n ? digest[i] : 0;
        hex[2 * i] = digits[b >> 4];
        hex[2 * i + 1] = digits[b & 15];
    }
    hex[NEM_SHA256_HEX_LEN] = '\0';
}

void nem_sha256_final_hex(EVP_MD_CTX *md, char hex[NEM_SHA256_HEX_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (EVP_DigestFinal_ex(md, digest, &n) != 1)
        n = 0;
    nem_sha256_to_hex(digest, n, hex);
}

void nem_sha256_hex(const void *data, size_t len, char hex[NEM_SHA256_HEX_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (EVP_Digest(data, len, digest, &n, EVP_sha256(), NULL) != 1)
        n = 0;
    nem_sha256_to_hex(digest, n, hex);
}
