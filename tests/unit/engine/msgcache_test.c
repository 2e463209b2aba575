/* Message cache test: exec_opts.msg_cache keeps the messages of rows read one by one between
 * queries. Answers with a cache (roomy, or so small that it evicts all the time) must be the
 * same as without one, on the second run too (served from the cache); the cache must stay
 * within its budget and must not confuse tenants. */
#include "engine_data.h"

#include "engine/exec_int.h"

#define ED_NOW_NS (ED_START_NS + 3600 * QR_NS_PER_SEC)

static engine_data g_ed;

static const char *const queries[] = {
    "SELECT ts, service, host, msg FROM logs WHERE msg MATCH 'order' ORDER BY ts DESC LIMIT 9",
    "SELECT ts, msg FROM logs WHERE service = 'auth' AND level >= WARN ORDER BY ts DESC LIMIT 40",
    "SELECT ts, msg FROM logs WHERE msg MATCH '\"connection refused\"' ORDER BY ts LIMIT 25",
    "SELECT msg FROM logs WHERE host = 'web-1' ORDER BY ts DESC LIMIT 3 OFFSET 5",
    "SELECT ts, service, msg FROM logs WHERE msg MATCH 'pay*' ORDER BY ts LIMIT 30",
    ("SELECT msg, count(*) FROM logs WHERE msg MATCH 'timeout' GROUP BY msg ORDER BY 2 DESC, "
     "1 LIMIT 5"),
    "SELECT ts, msg FROM logs WHERE msg CONTAINS 'user' ORDER BY ts DESC LIMIT 12",
};
#define QUERY_COUNT (sizeof queries / sizeof *queries)

static char *run(const char *query, exec_msg_cache *mc, uint32_t threads)
{
    exec_opts o = {.threads = threads, .now_ns = ED_NOW_NS, .msg_cache = mc};
    qr_diag d;
    char *got = engine_data_csv(&g_ed, query, &o, NULL, &d);
    if (!got) fprintf(stderr, "%s\n  error: %s\n", query, d.msg);
    return got;
}

static void same_with_cache(exec_msg_cache *mc)
{
    for (int round = 0; round < 2; round++) {
        for (size_t qi = 0; qi < QUERY_COUNT; qi++) {
            char *want = run(queries[qi], NULL, 1);
            char *got = run(queries[qi], mc, 1 + (uint32_t)(qi % 2));
            CHECK(want && got);
            if (want && got && strcmp(want, got) != 0) {
                fprintf(stderr, "MISMATCH (round %d): %s\n--- no cache:\n%s--- cache:\n%s\n", round,
                        queries[qi], want, got);
                qr_test_cur_failures++;
            }
            free(want);
            free(got);
        }
    }
}

TEST(answers_same_and_second_run_hits)
{
    exec_msg_cache *mc = exec_msg_cache_new(4u << 20);
    REQUIRE(mc);
    same_with_cache(mc);
    exec_msg_cache_stat st;
    exec_msg_cache_stats(mc, &st);
    CHECK(st.entries > 0);
    CHECK(st.hits > 0);   /* the second round found the first round's rows */
    CHECK(st.misses > 0); /* the first round did not */
    CHECK(st.evictions == 0);
    CHECK(st.used_bytes <= st.budget_bytes);
    /* a repeat of one query is served from the cache: hits grow, misses do not */
    char *a = run(queries[2], mc, 1); /* the oldest rows: in the first segment */
    exec_msg_cache_stat st2;
    exec_msg_cache_stats(mc, &st2);
    CHECK(st2.hits > st.hits);
    CHECK(st2.misses == st.misses);
    free(a);
    exec_msg_cache_free(mc);
}

TEST(tiny_budget_evicts_and_stays_within)
{
    exec_msg_cache *mc = exec_msg_cache_new(2048);
    REQUIRE(mc);
    same_with_cache(mc);
    exec_msg_cache_stat st;
    exec_msg_cache_stats(mc, &st);
    CHECK(st.evictions > 0);
    CHECK(st.used_bytes <= 2048);
    CHECK(st.entries > 0);
    exec_msg_cache_free(mc);
    /* a zero budget keeps nothing and still answers */
    mc = exec_msg_cache_new(0);
    REQUIRE(mc);
    same_with_cache(mc);
    exec_msg_cache_stats(mc, &st);
    CHECK(st.entries == 0 && st.used_bytes == 0 && st.hits == 0);
    exec_msg_cache_free(mc);
}

TEST(keys_keep_tenants_parts_blocks_rows_apart)
{
    exec_msg_cache *mc = exec_msg_cache_new(1u << 20);
    REQUIRE(mc);
    uint32_t rows[2] = {3, 7};
    qr_str msgs[2] = {qr_str_make("three", 5), qr_str_make("seven", 5)};
    exec_msg_cache_put(mc, 1, 10, 0, rows, 2, msgs);
    qr_arena a;
    qr_arena_init(&a, 4096, 0);
    qr_str out[2];
    uint8_t found[2];
    /* same rows under another tenant, part or block: not found */
    const uint64_t keys[3][3] = {{2, 10, 0}, {1, 11, 0}, {1, 10, 1}};
    for (int k = 0; k < 3; k++) {
        CHECK(exec_msg_cache_get(mc, keys[k][0], keys[k][1], (uint32_t)keys[k][2], rows, 2, &a, out,
                                 found) == 0);
        CHECK(!found[0] && !found[1]);
    }
    uint32_t ask[2] = {7, 4};
    CHECK(exec_msg_cache_get(mc, 1, 10, 0, ask, 2, &a, out, found) == 0);
    CHECK(found[0] && !found[1]);
    CHECK(found[0] && out[0].len == 5 && memcmp(out[0].ptr, "seven", 5) == 0);
    qr_arena_fini(&a);
    exec_msg_cache_free(mc);
    exec_msg_cache_free(NULL);
}

int main(void)
{
    int rc = engine_data_open(&g_ed, "engine_msgcache");
    if (rc) {
        fprintf(stderr, "cannot build the data set: %s\n", qr_strerror(rc));
        return 1;
    }
    RUN(answers_same_and_second_run_hits);
    RUN(tiny_budget_evicts_and_stays_within);
    RUN(keys_keep_tenants_parts_blocks_rows_apart);
    engine_data_close(&g_ed);
    QR_TEST_MAIN_END();
}
