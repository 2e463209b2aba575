#include "storage/tokenize.h"

const uint8_t qr_token_byte[256] = {
    ['0' ... '9'] = 1,
    ['a' ... 'z'] = 1,
    ['A' ... 'Z'] = 1,
    [0x80 ... 0xff] = 1,
};

const uint8_t qr_token_fold[256] = {
    ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4', ['5'] = '5', ['6'] = '6',
    ['7'] = '7', ['8'] = '8', ['9'] = '9', ['a'] = 'a', ['b'] = 'b', ['c'] = 'c', ['d'] = 'd',
    ['e'] = 'e', ['f'] = 'f', ['g'] = 'g', ['h'] = 'h', ['i'] = 'i', ['j'] = 'j', ['k'] = 'k',
    ['l'] = 'l', ['m'] = 'm', ['n'] = 'n', ['o'] = 'o', ['p'] = 'p', ['q'] = 'q', ['r'] = 'r',
    ['s'] = 's', ['t'] = 't', ['u'] = 'u', ['v'] = 'v', ['w'] = 'w', ['x'] = 'x', ['y'] = 'y',
    ['z'] = 'z', ['A'] = 'a', ['B'] = 'b', ['C'] = 'c', ['D'] = 'd', ['E'] = 'e', ['F'] = 'f',
    ['G'] = 'g', ['H'] = 'h', ['I'] = 'i', ['J'] = 'j', ['K'] = 'k', ['L'] = 'l', ['M'] = 'm',
    ['N'] = 'n', ['O'] = 'o', ['P'] = 'p', ['Q'] = 'q', ['R'] = 'r', ['S'] = 's', ['T'] = 't',
    ['U'] = 'u', ['V'] = 'v', ['W'] = 'w', ['X'] = 'x', ['Y'] = 'y', ['Z'] = 'z',
#define HI16(x)                                                                                    \
    [x] = x, [x + 1] = x + 1, [x + 2] = x + 2, [x + 3] = x + 3, [x + 4] = x + 4, [x + 5] = x + 5,  \
    [x + 6] = x + 6, [x + 7] = x + 7, [x + 8] = x + 8, [x + 9] = x + 9, [x + 10] = x + 10,         \
    [x + 11] = x + 11, [x + 12] = x + 12, [x + 13] = x + 13, [x + 14] = x + 14, [x + 15] = x + 15
    HI16(0x80),  HI16(0x90),  HI16(0xa0),  HI16(0xb0),  HI16(0xc0),  HI16(0xd0),  HI16(0xe0),
    HI16(0xf0),
#undef HI16
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

/* One pass, 8 bytes at a time (qr_token_next). */
size_t qr_tokenize_hashes(const char *text, size_t len, size_t *pos_io, uint64_t *hashes,
                          size_t cap)
{
    uint64_t w[QR_TOKEN_MAX_BYTES / 8];
    size_t count = 0, nw, n;
    while (count < cap && qr_token_next(text, len, pos_io, w, &nw, &n, &hashes[count])) count++;
    return count;
}
