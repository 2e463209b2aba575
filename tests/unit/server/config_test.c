/* config: defaults, every section, sizes, tenants, keys and scopes, errors with line numbers,
 * the key hash (SHA-256 test vector) and constant-time lookup. */
#include "qr_test.h"
#include "server/config.h"

static int parse(config *c, const char *text, qr_diag *d)
{
    qr_diag_init(d);
    return config_parse(c, "t.conf", text, strlen(text), d);
}

TEST(defaults)
{
    config c;
    config_init(&c);
    CHECK_EQ_STR(c.listen, "127.0.0.1:7070");
    CHECK_EQ_INT(c.workers, 8);
    CHECK_EQ_INT(c.http.body_bytes, 32 * 1024 * 1024);
    CHECK_EQ_INT(c.batch_events, 100000);
    CHECK_EQ_INT(c.db.wal.fsync_policy, WAL_FSYNC_ALWAYS);
    CHECK_EQ_INT(c.key_count, 0);
    CHECK_EQ_INT(c.msg_cache_bytes, 16 * 1024 * 1024);
    config_fini(&c);
}

TEST(sections_and_sizes)
{
    config c;
    config_init(&c);
    qr_diag d;
    int rc = parse(&c,
                   "# top-level keys belong to [server]\n"
                   "listen = 127.0.0.1:9000\n"
                   "[limits]\n"
                   "body_bytes = 2MiB   # comment after a value\n"
                   "decoded_bytes = 1G\n"
                   "header_bytes = 8k\n"
                   "batch_events = 500\n"
                   "msg_cache_bytes = 0\n"
                   "[storage]\n"
                   "fsync = interval\n"
                   "fsync_interval_ms = 50\n"
                   "compact = off\n"
                   "compact_min_segments = 6\n"
                   "compact_rows = 2000000\n"
                   "compact_zstd_level = 12\n"
                   "[demo]\n"
                   "rate = 12.5\n",
                   &d);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_STR(c.listen, "127.0.0.1:9000");
    CHECK_EQ_INT(c.http.body_bytes, 2 * 1024 * 1024);
    CHECK_EQ_INT(c.decoded_bytes, 1024LL * 1024 * 1024);
    CHECK_EQ_INT(c.http.header_bytes, 8192);
    CHECK_EQ_INT(c.batch_events, 500);
    CHECK_EQ_INT(c.msg_cache_bytes, 0);
    CHECK_EQ_INT(c.db.wal.fsync_policy, WAL_FSYNC_INTERVAL);
    CHECK_EQ_INT(c.db.wal.fsync_interval_ms, 50);
    CHECK(c.db.compact_off);
    CHECK_EQ_INT(c.db.compact_min_segments, 6);
    CHECK_EQ_INT(c.db.compact_rows, 2000000);
    CHECK_EQ_INT(c.db.compact_zstd_level, 12);
    CHECK(c.demo_rate == 12.5);
    config_fini(&c);
}

TEST(tenants_keys_scopes)
{
    config c;
    config_init(&c);
    char h1[72], h2[72];
    config_key_hash_text("key-one", 7, h1);
    config_key_hash_text("key-two", 7, h2);
    char text[600];
    snprintf(text, sizeof text,
             "[tenant acme]\nkey = %.71s ingest, query\nevents_per_sec = 1000\n"
             "bytes_per_sec = 1MiB\n[tenant beta]\nkey = %.71s\n",
             h1, h2);
    qr_diag d;
    REQUIRE(parse(&c, text, &d) == 0);
    CHECK_EQ_INT(c.tenant_count, 2);
    CHECK_EQ_INT(c.key_count, 2);
    config_tenant *a = config_tenant_find(&c, "acme");
    REQUIRE(a != NULL);
    CHECK(a->events_per_sec == 1000 && a->bytes_per_sec == 1048576 && a->burst_seconds == 1);
    uint32_t scopes = 0;
    CHECK_EQ_INT(config_key_lookup(&c, "key-one", 7, &scopes), 0);
    CHECK_EQ_INT(scopes, CONFIG_SCOPE_INGEST | CONFIG_SCOPE_QUERY);
    CHECK_EQ_INT(config_key_lookup(&c, "key-two", 7, &scopes), 1);
    CHECK_EQ_INT(scopes, CONFIG_SCOPE_ALL); /* no scopes listed: all of them */
    CHECK_EQ_INT(config_key_lookup(&c, "key-one ", 8, &scopes), -1);
    CHECK_EQ_INT(config_key_lookup(&c, "", 0, &scopes), -1);
    config_fini(&c);
}

TEST(key_hash_is_sha256)
{
    char out[72];
    config_key_hash_text("abc", 3, out); /* FIPS 180-2 test vector */
    CHECK_EQ_STR(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(errors_name_the_line)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"[limits]\nbody_bytes = 10 parsecs\n", "t.conf:2: body_bytes"},
        {"\n\n[nope]\n", "t.conf:3: unknown section [nope]"},
        {"workers = 0\n", "t.conf:1: workers"},
        {"[storage]\nfsync = sometimes\n", "t.conf:2: fsync"},
        {"[storage]\ncompact = maybe\n", "t.conf:2: compact"},
        {"[storage]\ncompact_zstd_level = 40\n", "t.conf:2: compact_zstd_level"},
        {"[tenant bad name!]\n", "t.conf:1: tenant name"},
        {"[tenant a]\n[tenant a]\n", "t.conf:2: tenant \"a\" appears twice"},
        {"[tenant a]\nkey = md5:abc\n", "t.conf:2: key must be"},
        {"[tenant a]\nkey = sha256:zz\n", "t.conf:2: key hash must be 64 hex digits"},
        {"[tenant a]\nkey = "
         "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad "
         "write\n",
         "t.conf:2: unknown scope \"write\""},
        {"listen\n", "t.conf:1: expected key = value"},
        {"[limits]\nmsg_cache_bytes = 17GiB\n", "t.conf:2: msg_cache_bytes"},
        {"[limits]\nbody_bytez = 1\n", "t.conf:2: unknown key \"body_bytez\" in [limits]"},
    };
    for (size_t idx = 0; idx < sizeof cases / sizeof cases[0]; idx++) {
        config c;
        config_init(&c);
        qr_diag d;
        CHECK_EQ_INT(parse(&c, cases[idx].text, &d), QR_EINVAL);
        if (!strstr(d.msg, cases[idx].want))
            fprintf(stderr, "case %zu: \"%s\" lacks \"%s\"\n", idx, d.msg, cases[idx].want);
        CHECK(strstr(d.msg, cases[idx].want) != NULL);
        config_fini(&c);
    }
}

int main(void)
{
    RUN(defaults);
    RUN(sections_and_sizes);
    RUN(tenants_keys_scopes);
    RUN(key_hash_is_sha256);
    RUN(errors_name_the_line);
    QR_TEST_MAIN_END();
}
