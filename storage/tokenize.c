#include "storage/tokenize.h"

#include "common/qr_hash.h"

const uint8_t qr_token_byte[256] = {
    ['0' ... '9'] = 1, ['a' ... 'z'] = 1, ['A' ... 'Z'] = 1, [0x80 ... 0xff] = 1,
};

int qr_tokenize(const char *text, size_t len, qr_token_fn fn, void *ctx)
{
    const uint8_t *s = (const uint8_t *)text;
    char tok[QR_TOKEN_MAX_BYTES];
    size_t pos = 0;
    while (pos < len) {
        while (pos < len && !qr_token_byte[s[pos]]) pos++;
        if (pos >= len) break;
        size_t start = pos, n = 0;
        while (pos < len && qr_token_byte[s[pos]]) {
            if (n < QR_TOKEN_MAX_BYTES) {
                uint8_t c = s[pos];
                tok[n++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
            }
            pos++;
        }
        int rc = fn(ctx, tok, n, start);
        if (rc) return rc;
    }
    return 0;
}

uint64_t qr_token_hash(const char *tok, size_t len) { return qr_hash64(tok, len); }
