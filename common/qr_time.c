#include "common/qr_time.h"

#include "common/qr_err.h"

#include <stdio.h>
#include <time.h>

int64_t qr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * QR_NS_PER_SEC + ts.tv_nsec;
}

int64_t qr_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * QR_NS_PER_SEC + ts.tv_nsec;
}

/* Howard Hinnant's civil-from-days algorithms (public domain description). */
int64_t qr_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *s, size_t len, size_t *pos, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*pos >= len || s[*pos] < '0' || s[*pos] > '9') return -1;
        v = v * 10 + (s[*pos] - '0');
        (*pos)++;
    }
    *out = v;
    return 0;
}

int qr_time_parse_rfc3339(const char *s, size_t len, int64_t *out_ns)
{
    size_t pos = 0;
    int year, mon, day, hh = 0, mm = 0, ss = 0;
    int64_t frac_ns = 0;
    if (digits(s, len, &pos, 4, &year) || pos >= len || s[pos++] != '-' ||
        digits(s, len, &pos, 2, &mon) || pos >= len || s[pos++] != '-' ||
        digits(s, len, &pos, 2, &day))
        return QR_EINVAL;
    if (mon < 1 || mon > 12 || day < 1 || day > 31) return QR_EINVAL;
    int64_t offset_s = 0;
    if (pos < len) {
        if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') return QR_EINVAL;
        pos++;
        if (digits(s, len, &pos, 2, &hh) || pos >= len || s[pos++] != ':' ||
            digits(s, len, &pos, 2, &mm))
            return QR_EINVAL;
        if (pos < len && s[pos] == ':') {
            pos++;
            if (digits(s, len, &pos, 2, &ss)) return QR_EINVAL;
        }
        if (hh > 23 || mm > 59 || ss > 60) return QR_EINVAL;
        if (pos < len && (s[pos] == '.' || s[pos] == ',')) {
            pos++;
            int n = 0;
            while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
                if (n < 9) {
                    frac_ns = frac_ns * 10 + (s[pos] - '0');
                    n++;
                }
                pos++;
            }
            if (n == 0) return QR_EINVAL;
            for (; n < 9; n++) frac_ns *= 10;
        }
        if (pos < len) {
            if (s[pos] == 'Z' || s[pos] == 'z') {
                pos++;
            } else if (s[pos] == '+' || s[pos] == '-') {
                int sign = s[pos] == '-' ? -1 : 1;
                int oh, om = 0;
                pos++;
                if (digits(s, len, &pos, 2, &oh)) return QR_EINVAL;
                if (pos < len && s[pos] == ':') pos++;
                if (pos < len && digits(s, len, &pos, 2, &om)) return QR_EINVAL;
                if (oh > 23 || om > 59) return QR_EINVAL;
                offset_s = sign * (oh * 3600 + om * 60);
            }
        }
        if (pos != len) return QR_EINVAL;
    }
    int64_t days = qr_days_from_civil(year, (unsigned)mon, (unsigned)day);
    int64_t secs = days * 86400 + hh * 3600 + mm * 60 + ss - offset_s;
    /* int64 ns spans 1677-09-21 .. 2262-04-11; beyond it the product would overflow */
    if (secs >= INT64_MAX / QR_NS_PER_SEC || secs <= INT64_MIN / QR_NS_PER_SEC) return QR_EINVAL;
    *out_ns = secs * QR_NS_PER_SEC + frac_ns;
    return 0;
}

/* Multiplies, saturating at the int64 range instead of overflowing. */
static int64_t mul_sat(int64_t v, int64_t unit)
{
    if (v > INT64_MAX / unit) return INT64_MAX;
    if (v < INT64_MIN / unit) return INT64_MIN;
    return v * unit;
}

int64_t qr_time_from_unix_int(int64_t v)
{
    uint64_t a = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    if (a < 100000000000ULL) return mul_sat(v, QR_NS_PER_SEC);
    if (a < 100000000000000ULL) return mul_sat(v, QR_NS_PER_MS);
    if (a < 100000000000000000ULL) return mul_sat(v, QR_NS_PER_US);
    return v;
}

int64_t qr_time_from_unix_number(double v)
{
    double a = v < 0 ? -v : v;
    double ns = a < 1e11 ? v * 1e9 : a < 1e14 ? v * 1e6 : a < 1e17 ? v * 1e3 : v;
    if (!(ns > -9.2e18 && ns < 9.2e18)) return ns < 0 ? INT64_MIN : INT64_MAX; /* NaN too */
    return (int64_t)ns;
}

size_t qr_time_format(int64_t ts_ns, char *buf, size_t cap, bool nanos)
{
    int64_t secs = ts_ns / QR_NS_PER_SEC;
    int64_t frac = ts_ns % QR_NS_PER_SEC;
    if (frac < 0) {
        frac += QR_NS_PER_SEC;
        secs -= 1;
    }
    int64_t days = secs / 86400;
    int64_t rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int n;
    if (nanos)
        n = snprintf(buf, cap, "%04lld-%02u-%02uT%02d:%02d:%02d.%09lldZ", (long long)y, m, d,
                     (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (long long)frac);
    else
        n = snprintf(buf, cap, "%04lld-%02u-%02uT%02d:%02d:%02d.%03lldZ", (long long)y, m, d,
                     (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60),
                     (long long)(frac / QR_NS_PER_MS));
    return n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
}

int qr_duration_parse(const char *s, size_t len, int64_t *out_ns)
{
    size_t pos = 0;
    int64_t total = 0;
    if (len == 0) return QR_EINVAL;
    while (pos < len) {
        int64_t v = 0;
        size_t start = pos;
        while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
            if (v > 1000000000000LL) return QR_EINVAL;
            v = v * 10 + (s[pos++] - '0');
        }
        if (pos == start || pos >= len) return QR_EINVAL;
        int64_t unit;
        if (pos + 1 < len && s[pos] == 'm' && s[pos + 1] == 's') {
            unit = QR_NS_PER_MS;
            pos += 2;
        } else if (pos + 1 < len && s[pos] == 'u' && s[pos + 1] == 's') {
            unit = QR_NS_PER_US;
            pos += 2;
        } else if (pos + 1 < len && s[pos] == 'n' && s[pos + 1] == 's') {
            unit = 1;
            pos += 2;
        } else {
            switch (s[pos]) {
            case 's':
                unit = QR_NS_PER_SEC;
                break;
            case 'm':
                unit = 60 * QR_NS_PER_SEC;
                break;
            case 'h':
                unit = 3600 * QR_NS_PER_SEC;
                break;
            case 'd':
                unit = 86400 * QR_NS_PER_SEC;
                break;
            case 'w':
                unit = 7 * 86400 * QR_NS_PER_SEC;
                break;
            default:
                return QR_EINVAL;
            }
            pos++;
        }
        if (v > INT64_MAX / unit || total > INT64_MAX - v * unit) return QR_EINVAL;
        total += v * unit;
    }
    *out_ns = total;
    return 0;
}
