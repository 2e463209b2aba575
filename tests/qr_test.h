/* qr_test — the small test harness every unit test uses (one executable per test file,
 * registered with ctest). CHECK records a failure and continues; REQUIRE stops the test
 * function. Each test file defines tests with TEST(name) and lists them in main via
 * RUN(name); QR_TEST_MAIN_END prints "N passed, N failed" and returns the exit status. */
#ifndef QR_TEST_H
#define QR_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int qr_test_passed;
static int qr_test_failed;
static int qr_test_cur_failures;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);           \
            qr_test_cur_failures++;                                                            \
        }                                                                                      \
    } while (0)

#define REQUIRE(cond)                                                                          \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);         \
            qr_test_cur_failures++;                                                            \
            return;                                                                            \
        }                                                                                      \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                     \
    do {                                                                                       \
        long long qr_a_ = (long long)(a), qr_b_ = (long long)(b);                              \
        if (qr_a_ != qr_b_) {                                                                  \
            fprintf(stderr, "%s:%d: CHECK_EQ_INT failed: %s == %lld, %s == %lld\n", __FILE__,  \
                    __LINE__, #a, qr_a_, #b, qr_b_);                                           \
            qr_test_cur_failures++;                                                            \
        }                                                                                      \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                     \
    do {                                                                                       \
        const char *qr_a_ = (a), *qr_b_ = (b);                                                 \
        if (!qr_a_ || !qr_b_ || strcmp(qr_a_, qr_b_) != 0) {                                   \
            fprintf(stderr, "%s:%d: CHECK_EQ_STR failed:\n  %s = \"%s\"\n  %s = \"%s\"\n",     \
                    __FILE__, __LINE__, #a, qr_a_ ? qr_a_ : "(null)", #b,                      \
                    qr_b_ ? qr_b_ : "(null)");                                                 \
            qr_test_cur_failures++;                                                            \
        }                                                                                      \
    } while (0)

#define TEST(name) static void test_##name(void)

#define RUN(name)                                                                              \
    do {                                                                                       \
        qr_test_cur_failures = 0;                                                              \
        test_##name();                                                                         \
        if (qr_test_cur_failures) {                                                            \
            qr_test_failed++;                                                                  \
            printf("not ok - %s\n", #name);                                                    \
        } else {                                                                               \
            qr_test_passed++;                                                                  \
            printf("ok - %s\n", #name);                                                        \
        }                                                                                      \
        fflush(stdout);                                                                        \
    } while (0)

#define QR_TEST_MAIN_END()                                                                     \
    do {                                                                                       \
        printf("%d passed, %d failed\n", qr_test_passed, qr_test_failed);                      \
        return qr_test_failed ? 1 : 0;                                                         \
    } while (0)

/* A fresh empty directory under $QR_TMP (or /tmp) unique to this process and name. The
 * returned string is static storage per call site's buffer. */
static inline const char *qr_test_tmpdir(const char *name, char *buf, size_t cap)
{
    const char *base = getenv("QR_TMP");
    if (!base || !*base) base = "/tmp";
    snprintf(buf, cap, "%s/%s.%d", base, name, (int)getpid());
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    if (system(cmd) != 0) return NULL;
    return buf;
}

static inline void qr_test_rmdir(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

/* A whole file, NUL-terminated, malloc'd (the caller frees); NULL if it cannot be read. */
static inline char *qr_test_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[len] = '\0';
        *len_out = (size_t)len;
    }
    return buf;
}

/* tests/golden/<sub> of the source tree: from $QR_SRC, else from this header's own path. */
static inline void qr_test_golden_dir(const char *sub, char *out, size_t cap)
{
    const char *src = getenv("QR_SRC");
    if (src && *src) {
        snprintf(out, cap, "%s/tests/golden/%s", src, sub);
        return;
    }
    const char *self = __FILE__;
    const char *tail = strstr(self, "tests/qr_test.h");
    int root_len = tail ? (int)(tail - self) : 0;
    snprintf(out, cap, "%.*stests/golden/%s", root_len, self, sub);
}

/* Deterministic PRNG for tests (splitmix64). */
static inline uint64_t qr_test_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
