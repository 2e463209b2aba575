/* tokenize — the one tokenizer of Quarry, shared by indexing and query matching.
 *
 * A token is a maximal run of ASCII letters and digits; bytes >= 0x80 count as letters, so
 * UTF-8 words stay whole. ASCII letters are lower-cased; every other byte separates
 * ("user_id=42" → "user", "id", "42"). Tokens longer than QR_TOKEN_MAX_BYTES are cut to that
 * length (the rest of the run is skipped) so term dictionaries stay bounded.
 * Reentrant; no allocation: the callback gets a pointer into the caller's scratch buffer. */
#ifndef QR_TOKENIZE_H
#define QR_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

#define QR_TOKEN_MAX_BYTES 64

/* Called once per token with the lower-cased bytes (not NUL-terminated) and the byte offset
 * of the token in the input. Returning non-zero stops tokenizing; that value is returned. */
typedef int (*qr_token_fn)(void *ctx, const char *tok, size_t len, size_t offset);

int qr_tokenize(const char *text, size_t len, qr_token_fn fn, void *ctx);

/* Table: non-zero for bytes that are part of tokens. */
extern const uint8_t qr_token_byte[256];

/* Hash of a (lower-cased) token, used by blooms and hash indexes. */
uint64_t qr_token_hash(const char *tok, size_t len);

#endif
