/* batch_gen — deterministic event batches for storage tests, and an exact comparison.
 *
 * batch_gen_fill(b, seed, count) appends `count` events whose every field (timestamps incl.
 * negative ones, level, labels, message, typed fields) derives from seed, so a test can keep
 * just (seed, count) per batch and regenerate the expected contents later.
 * batch_gen_equal compares every field of every event, byte for byte (floats by bits). */
#ifndef QR_BATCH_GEN_H
#define QR_BATCH_GEN_H

#include "qr_test.h"
#include "storage/event.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static inline void batch_gen_fill(qr_batch *b, uint64_t seed, size_t count)
{
    static const char *const services[] = {"api", "billing", "auth-service", ""};
    static const char *const hosts[] = {"web-1", "web-2", "db-primary.eu-west-1.internal"};
    static const char *const words[] = {"GET",        "POST",    "/v1/users", "timeout",
                                        "connection", "reset",   "by",        "peer",
                                        "ok",         "latency", "ümlaut",    "user_id=42"};
    uint64_t rng = seed * 0x9e3779b97f4a7c15ULL + 1;
    int64_t ts_ns = (int64_t)(qr_test_rand(&rng) % 2000000000000000000ULL) - 100000000000000000LL;
    char msg[1024];
    for (size_t row = 0; row < count; row++) {
        qr_event *e = qr_batch_push(b);
        if (!e) return;
        ts_ns += (int64_t)(qr_test_rand(&rng) % 5000000) - 1000000; /* not monotonic */
        e->ts_ns = ts_ns;
        e->ingest_ts_ns = ts_ns + (int64_t)(qr_test_rand(&rng) % 3000000000ULL) - 1000000000LL;
        e->level = (uint8_t)(qr_test_rand(&rng) % QR_LEVEL_COUNT);
        const char *svc = services[qr_test_rand(&rng) % 4];
        const char *host = hosts[qr_test_rand(&rng) % 3];
        e->service = qr_batch_str(b, svc, strlen(svc));
        e->host = qr_batch_str(b, host, strlen(host));
        size_t msg_len = 0;
        size_t word_count = qr_test_rand(&rng) % 24;
        for (size_t word_idx = 0; word_idx < word_count; word_idx++) {
            const char *wd = words[qr_test_rand(&rng) % 12];
            msg_len += (size_t)snprintf(msg + msg_len, sizeof msg - msg_len, "%s%s ", wd,
                                        (qr_test_rand(&rng) & 3) == 0 ? "#" : "");
        }
        msg_len += (size_t)snprintf(msg + msg_len, sizeof msg - msg_len, "seed=%llu row=%zu",
                                    (unsigned long long)seed, row);
        e = &b->events[b->count - 1];
        e->msg = qr_batch_str(b, msg, msg_len);
        size_t field_count = qr_test_rand(&rng) % 6;
        for (size_t fi = 0; fi < field_count; fi++) {
            qr_field f;
            memset(&f, 0, sizeof f);
            char key[32];
            int key_len =
                snprintf(key, sizeof key, "k%zu_%u", fi, (unsigned)(qr_test_rand(&rng) % 5));
            f.key = qr_batch_str(b, key, (size_t)key_len);
            f.type = (uint8_t)(qr_test_rand(&rng) % 5);
            switch (f.type) {
            case QR_FT_STRING: {
                char val[48];
                int n =
                    snprintf(val, sizeof val, "%016llx", (unsigned long long)qr_test_rand(&rng));
                f.v.s = qr_batch_str(b, val, (size_t)(n - (int)(qr_test_rand(&rng) % 17)));
                break;
            }
            case QR_FT_INT:
                f.v.i = (int64_t)qr_test_rand(&rng);
                break;
            case QR_FT_FLOAT:
                f.v.f = (double)(int64_t)qr_test_rand(&rng) / 1e6;
                break;
            case QR_FT_BOOL:
                f.v.b = qr_test_rand(&rng) & 1;
                break;
            default:
                break;
            }
            qr_batch_add_field(b, &f);
        }
    }
}

/* Returns true when both batches hold the same events; prints the first difference. */
static inline bool batch_gen_equal(const qr_batch *want, const qr_batch *got)
{
    if (want->count != got->count) {
        fprintf(stderr, "batch: %zu events, want %zu\n", got->count, want->count);
        return false;
    }
    for (size_t row = 0; row < want->count; row++) {
        const qr_event *a = &want->events[row], *b = &got->events[row];
        if (a->ts_ns != b->ts_ns || a->ingest_ts_ns != b->ingest_ts_ns || a->level != b->level ||
            !qr_str_eq(a->service, b->service) || !qr_str_eq(a->host, b->host) ||
            !qr_str_eq(a->msg, b->msg) || a->field_count != b->field_count) {
            fprintf(stderr, "batch: event %zu differs\n", row);
            return false;
        }
        const qr_field *fa = qr_event_fields(want, a), *fb = qr_event_fields(got, b);
        for (uint32_t fi = 0; fi < a->field_count; fi++) {
            bool same = qr_str_eq(fa[fi].key, fb[fi].key) && fa[fi].type == fb[fi].type;
            if (same) {
                switch (fa[fi].type) {
                case QR_FT_STRING:
                    same = qr_str_eq(fa[fi].v.s, fb[fi].v.s);
                    break;
                case QR_FT_INT:
                    same = fa[fi].v.i == fb[fi].v.i;
                    break;
                case QR_FT_FLOAT:
                    same = memcmp(&fa[fi].v.f, &fb[fi].v.f, 8) == 0;
                    break;
                case QR_FT_BOOL:
                    same = fa[fi].v.b == fb[fi].v.b;
                    break;
                default:
                    break;
                }
            }
            if (!same) {
                fprintf(stderr, "batch: event %zu field %u differs\n", row, fi);
                return false;
            }
        }
    }
    return true;
}

#endif
