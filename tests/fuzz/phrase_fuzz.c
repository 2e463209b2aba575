/* Fuzz driver: arbitrary bytes as a segment's adjacency-pairs blob → phrase_pairs_open must
 * return 0 or QR_ECORRUPT (never crash, never leak, never read outside the blob), agree with
 * phrase_pairs_verify, and an opened blob must answer lookups of its own tokens. */
#include "storage/phrase.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a heap copy of exactly size bytes, so ASan sees any read past the end */
    uint8_t *blob = malloc(size ? size : 1);
    if (!blob) return 0;
    if (size) memcpy(blob, data, size);
    phrase_pairs pp;
    int rc = phrase_pairs_open(&pp, blob, size, NULL);
    if (rc != 0 && rc != QR_ECORRUPT) abort();
    if ((rc == 0) != (phrase_pairs_verify(blob, size, NULL) == 0)) abort();
    if (rc == 0) {
        for (uint32_t idx = 0; idx < pp.pair_count; idx++) {
            uint32_t a = (uint32_t)(pp.pairs[idx] >> 32), b = (uint32_t)pp.pairs[idx];
            const char *toks[2] = {(const char *)pp.tok[a], (const char *)pp.tok[b]};
            uint32_t lens[2] = {pp.tok_len[a], pp.tok_len[b]};
            if (!phrase_pairs_exact(&pp, toks, lens, 2)) abort(); /* a stored pair is found */
        }
        phrase_pairs_close(&pp);
    }
    free(blob);
    return 0;
}
