/* qr_time — clocks and time text: all times in Quarry are int64 nanoseconds since the Unix
 * epoch, UTC. Reentrant; no allocation. */
#ifndef QR_TIME_H
#define QR_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QR_NS_PER_US 1000LL
#define QR_NS_PER_MS 1000000LL
#define QR_NS_PER_SEC 1000000000LL

int64_t qr_now_ns(void);       /* CLOCK_REALTIME */
int64_t qr_monotonic_ns(void); /* CLOCK_MONOTONIC, for durations */

/* Parses RFC 3339 / ISO 8601 ("2025-06-15T14:23:01.123Z", "+02:00" offsets, a space instead of
 * 'T', up to 9 fraction digits, date alone "2025-06-15"). Returns 0 or QR_EINVAL. */
int qr_time_parse_rfc3339(const char *s, size_t len, int64_t *out_ns);
/* Unix time number whose magnitude decides the unit: < 1e11 seconds, < 1e14 ms, < 1e17 µs,
 * else ns. Accepts fractions for seconds ("1718461381.123"). */
int64_t qr_time_from_unix_number(double v);
int64_t qr_time_from_unix_int(int64_t v);
/* Writes "2025-06-15T14:23:01.123456789Z" (always 9 fraction digits when `nanos`, else ms).
 * buf needs 32 bytes. Returns the length. */
size_t qr_time_format(int64_t ts_ns, char *buf, size_t cap, bool nanos);
/* Durations "250ms", "5s", "5m", "1h", "7d", "1w", also "1h30m"; returns 0 or QR_EINVAL. */
int qr_duration_parse(const char *s, size_t len, int64_t *out_ns);
/* Days since 1970-01-01 for a civil date (proleptic Gregorian). */
int64_t qr_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
