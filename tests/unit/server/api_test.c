/* api: the SQL text /v1/search and /v1/aggregate generate (quoting, validation, cursors), the
 * tail filter compiled from LogQL and from parameters, evaluated on events. */
#include "qr_test.h"
#include "server/api.h"
#include "server/tail.h"

static int search(const char *body, api_search *s, qr_diag *d)
{
    api_search_init(s);
    qr_diag_init(d);
    return api_search_build(body, strlen(body), s, d);
}

TEST(search_sql_is_quoted)
{
    api_search s;
    qr_diag d;
    CHECK_EQ_INT(search("{\"query\":\"it's\",\"filters\":{\"service\":[\"a'b\",\"c\"],"
                        "\"level\":\"warning\",\"http.status\":500},\"sort\":\"asc\",\"limit\":5}",
                        &s, &d),
                 0);
    CHECK_EQ_STR((const char *)s.sql.data,
                 "SELECT * FROM logs WHERE msg MATCH 'it''s' AND \"service\" IN ('a''b', 'c') AND "
                 "\"level\" = WARN AND \"http.status\" = 500 ORDER BY ts ASC LIMIT 6");
    api_search_fini(&s);
}

TEST(search_rejects_bad_members)
{
    api_search s;
    qr_diag d;
    CHECK_EQ_INT(search("{\"filters\":{\"a\\\" OR 1=1 --\":1}}", &s, &d), QR_EINVAL);
    CHECK(strstr(d.msg, "not a field name") != NULL);
    api_search_fini(&s);
    CHECK_EQ_INT(search("{\"limit\":0}", &s, &d), QR_EINVAL);
    api_search_fini(&s);
    CHECK_EQ_INT(search("{\"time_range\":{\"from\":\"yesterday\"}}", &s, &d), QR_EINVAL);
    api_search_fini(&s);
    CHECK_EQ_INT(search("{\"sortt\":\"asc\"}", &s, &d), QR_EINVAL);
    api_search_fini(&s);
    CHECK_EQ_INT(search("{\"filters\":", &s, &d), QR_ESYNTAX);
    api_search_fini(&s);
}

TEST(aggregate_sql)
{
    api_aggregate a;
    api_aggregate_init(&a);
    qr_diag d;
    qr_diag_init(&d);
    const char *body = "{\"group_by\":[\"service\"],\"interval\":\"90s\",\"metric\":\"p99(lat)\","
                       "\"time_range\":{\"from\":\"2025-06-15T14:00:00Z\"}}";
    CHECK_EQ_INT(api_aggregate_build(body, strlen(body), &a, &d), 0);
    CHECK_EQ_STR((const char *)a.sql.data,
                 "SELECT bucket(ts, 90s) AS t, \"service\", p99(\"lat\") AS value FROM logs WHERE "
                 "ts >= '2025-06-15T14:00:00.000000000Z' GROUP BY 1, 2 ORDER BY 1, 2");
    api_aggregate_fini(&a);
    api_aggregate_init(&a);
    body = "{\"metric\":\"sum(x) FROM logs; --\"}";
    CHECK_EQ_INT(api_aggregate_build(body, strlen(body), &a, &d), QR_EINVAL);
    CHECK(strstr(d.msg, "invalid metric") != NULL);
    api_aggregate_fini(&a);
}

int main(void)
{
    RUN(search_sql_is_quoted);
    RUN(search_rejects_bad_members);
    RUN(aggregate_sql);
    QR_TEST_MAIN_END();
}
