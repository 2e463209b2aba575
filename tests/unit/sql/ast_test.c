/* The shape of the tree: what the binder will read. Both faces give the same nodes for the
 * same meaning; positions, search trees, resolved functions, times and levels are filled in. */
#include "common/qr_arena.h"
#include "common/qr_err.h"
#include "common/qr_time.h"
#include "qr_test.h"
#include "sql/query.h"
#include "storage/event.h"

typedef struct parsed {
    qr_arena arena;
    qr_diag diag;
    sql_stmt *stmt;
    int rc;
} parsed;

static void parse(parsed *p, const char *text)
{
    qr_arena_init(&p->arena, 4096, 0);
    qr_diag_init(&p->diag);
    p->stmt = NULL;
    p->rc = sql_parse(text, strlen(text), &p->arena, &p->stmt, &p->diag);
    if (p->rc) fprintf(stderr, "parse failed: %s\n  %s\n", p->diag.msg, text);
}

static void parsed_fini(parsed *p)
{
    qr_arena_fini(&p->arena);
}

/* Structural equality, ignoring positions. */
static bool expr_same(const sql_expr *a, const sql_expr *b)
{
    if (!a || !b) return a == b;
    if (a->kind != b->kind) return false;
    switch (a->kind) {
    case SQL_EXPR_INT:
        return a->u.i == b->u.i;
    case SQL_EXPR_FLOAT:
        return a->u.f == b->u.f;
    case SQL_EXPR_DURATION:
        return a->u.duration_ns == b->u.duration_ns;
    case SQL_EXPR_STRING:
        return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case SQL_EXPR_FIELD:
        return a->u.name.len == b->u.name.len &&
               memcmp(a->u.name.s, b->u.name.s, a->u.name.len) == 0;
    case SQL_EXPR_BINARY:
        return a->u.binary.op == b->u.binary.op && a->u.binary.negated == b->u.binary.negated &&
               a->u.binary.anchored == b->u.binary.anchored &&
               expr_same(a->u.binary.lhs, b->u.binary.lhs) &&
               expr_same(a->u.binary.rhs, b->u.binary.rhs);
    case SQL_EXPR_AND:
    case SQL_EXPR_OR:
        if (a->u.list.count != b->u.list.count) return false;
        for (uint32_t idx = 0; idx < a->u.list.count; idx++)
            if (!expr_same(a->u.list.items[idx], b->u.list.items[idx])) return false;
        return true;
    default:
        return false; /* not needed by these tests */
    }
}

static const sql_expr *where_of(const parsed *p)
{
    return p->stmt->u.select->where;
}

TEST(logql_selector_is_sql_comparison)
{
    parsed sql, lq;
    parse(&sql, "SELECT msg FROM logs WHERE service = 'payment' AND host != 'h1'");
    parse(&lq, "{service=\"payment\", host!=\"h1\"}");
    REQUIRE(sql.rc == 0 && lq.rc == 0);
    CHECK_EQ_INT(lq.stmt->kind, SQL_STMT_LOGQL);
    const sql_lq_log *log = lq.stmt->u.logql->log;
    REQUIRE(log && log->matcher_count == 2);
    const sql_expr *w = where_of(&sql);
    REQUIRE(w->kind == SQL_EXPR_AND && w->u.list.count == 2);
    CHECK(expr_same(w->u.list.items[0], log->matchers[0]));
    CHECK(expr_same(w->u.list.items[1], log->matchers[1]));
    CHECK_EQ_INT(log->matchers[0]->u.binary.op, SQL_OP_EQ);
    CHECK_EQ_INT(log->matchers[1]->u.binary.op, SQL_OP_NE);
    parsed_fini(&sql);
    parsed_fini(&lq);
}

TEST(logql_regex_matcher_is_anchored_sql_regex_is_not)
{
    parsed sql, lq;
    parse(&sql, "SELECT msg FROM logs WHERE level ~ 'ERROR|WARN'");
    parse(&lq, "{level=~\"ERROR|WARN\", env!~\"dev\"}");
    REQUIRE(sql.rc == 0 && lq.rc == 0);
    const sql_expr *m = lq.stmt->u.logql->log->matchers[0];
    CHECK_EQ_INT(m->u.binary.op, SQL_OP_REGEX);
    CHECK(m->u.binary.anchored);
    CHECK(!m->u.binary.negated);
    CHECK(lq.stmt->u.logql->log->matchers[1]->u.binary.negated);
    const sql_expr *w = where_of(&sql);
    CHECK_EQ_INT(w->u.binary.op, SQL_OP_REGEX);
    CHECK(!w->u.binary.anchored);
    parsed_fini(&sql);
    parsed_fini(&lq);
}

TEST(logql_line_filters_are_msg_contains_and_regex)
{
    parsed sql, lq;
    parse(&sql, "SELECT msg FROM logs WHERE msg CONTAINS 'timeout' AND msg NOT CONTAINS 'retry' "
                "AND msg ~ 'card \\d{4}' AND msg !~ '^GET'");
    parse(&lq, "{a=\"b\"} |= \"timeout\" != \"retry\" |~ `card \\d{4}` !~ \"^GET\"");
    REQUIRE(sql.rc == 0 && lq.rc == 0);
    const sql_lq_log *log = lq.stmt->u.logql->log;
    REQUIRE(log->stage_count == 4);
    const sql_expr *w = where_of(&sql);
    for (uint32_t idx = 0; idx < 4; idx++) {
        CHECK_EQ_INT(log->stages[idx].kind, SQL_LQ_LINE_FILTER);
        CHECK(expr_same(w->u.list.items[idx], log->stages[idx].filter));
    }
    parsed_fini(&sql);
    parsed_fini(&lq);
}

TEST(logql_label_filters_are_sql_comparisons)
{
    parsed sql, lq;
    parse(&sql, "SELECT msg FROM logs WHERE latency_ms > 300 AND duration >= 5s OR method = 'GET'");
    parse(&lq, "{a=\"b\"} | json | latency_ms > 300, duration >= 5s or method = \"GET\"");
    REQUIRE(sql.rc == 0 && lq.rc == 0);
    const sql_lq_log *log = lq.stmt->u.logql->log;
    REQUIRE(log->stage_count == 2);
    CHECK_EQ_INT(log->stages[0].kind, SQL_LQ_JSON);
    CHECK_EQ_INT(log->stages[1].kind, SQL_LQ_LABEL_FILTER);
    CHECK(expr_same(where_of(&sql), log->stages[1].filter));
    parsed_fini(&sql);
    parsed_fini(&lq);
}

TEST(logql_metric_tree)
{
    parsed p;
    parse(&p, "topk(5, sum by (service, level) (rate({a=\"b\"} |= \"x\" [90s])))");
    REQUIRE(p.rc == 0);
    const sql_lq_metric *top = p.stmt->u.logql->metric;
    REQUIRE(top);
    CHECK_EQ_STR(top->func, "topk");
    CHECK(!top->is_range && top->has_param && top->param == 5.0);
    const sql_lq_metric *sum = top->inner;
    REQUIRE(sum);
    CHECK_EQ_STR(sum->func, "sum");
    CHECK_EQ_INT(sum->grouping, SQL_LQ_GROUP_BY);
    REQUIRE(sum->label_count == 2);
    CHECK_EQ_STR(sum->labels[0], "service");
    CHECK_EQ_STR(sum->labels[1], "level");
    const sql_lq_metric *rate = sum->inner;
    REQUIRE(rate && rate->log);
    CHECK(rate->is_range);
    CHECK_EQ_INT(rate->range_ns, 90 * QR_NS_PER_SEC);
    CHECK_EQ_INT(rate->log->stage_count, 1);
    parsed_fini(&p);
}

TEST(select_parts)
{
    parsed p;
    parse(&p, "SELECT bucket(ts, 5m) AS t, count(*) n FROM errors_5m WHERE level >= WARN "
              "GROUP BY t HAVING n > 1 ORDER BY 2 DESC, t LIMIT 10 OFFSET 20");
    REQUIRE(p.rc == 0);
    const sql_select *s = p.stmt->u.select;
    REQUIRE(s->item_count == 2);
    CHECK_EQ_STR(s->items[0].alias, "t");
    CHECK_EQ_STR(s->items[1].alias, "n");
    CHECK_EQ_STR(s->from, "errors_5m");
    CHECK_EQ_INT(s->group_count, 1);
    CHECK(s->having != NULL);
    REQUIRE(s->order_count == 2);
    CHECK(s->order_by[0].desc && !s->order_by[1].desc);
    CHECK_EQ_INT(s->order_by[0].expr->kind, SQL_EXPR_INT);
    CHECK_EQ_INT(s->limit, 10);
    CHECK_EQ_INT(s->offset, 20);
    const sql_expr *bucket = s->items[0].expr;
    REQUIRE(bucket->kind == SQL_EXPR_CALL && bucket->u.call.func);
    CHECK(!bucket->u.call.func->is_aggregate);
    CHECK_EQ_INT(bucket->u.call.args[1]->u.duration_ns, 300 * QR_NS_PER_SEC);
    const sql_expr *count = s->items[1].expr;
    CHECK(count->u.call.star && count->u.call.func && count->u.call.func->is_aggregate);
    const sql_expr *w = s->where;
    CHECK_EQ_INT(w->u.binary.rhs->kind, SQL_EXPR_LEVEL);
    CHECK_EQ_INT(w->u.binary.rhs->u.level, QR_LEVEL_WARN);
    parsed_fini(&p);

    parse(&p, "SELECT a FROM logs");
    REQUIRE(p.rc == 0);
    CHECK_EQ_INT(p.stmt->u.select->limit, -1);
    CHECK_EQ_INT(p.stmt->u.select->offset, -1);
    CHECK(p.stmt->u.select->where == NULL);
    parsed_fini(&p);
}

TEST(positions_are_line_column_offset)
{
    parsed p;
    const char *text = "SELECT a,\n  count(*)\nFROM logs WHERE 'ünï' = b";
    parse(&p, text);
    REQUIRE(p.rc == 0);
    const sql_select *s = p.stmt->u.select;
    CHECK_EQ_INT(s->items[0].expr->pos.offset, 7);
    CHECK_EQ_INT(s->items[0].expr->pos.line, 1);
    CHECK_EQ_INT(s->items[0].expr->pos.column, 8);
    CHECK_EQ_INT(s->items[1].expr->pos.offset, 12);
    CHECK_EQ_INT(s->items[1].expr->pos.line, 2);
    CHECK_EQ_INT(s->items[1].expr->pos.column, 3);
    CHECK_EQ_INT(s->from_pos.line, 3);
    CHECK_EQ_INT(s->from_pos.column, 6);
    /* columns count characters: 'ünï' is 5 characters, 8 bytes */
    const sql_expr *rhs = s->where->u.binary.rhs;
    CHECK_EQ_INT(rhs->pos.line, 3);
    CHECK_EQ_INT(rhs->pos.column, 25);
    CHECK_EQ_INT(rhs->pos.offset, (long long)(strstr(text, "= b") - text + 2));
    parsed_fini(&p);
}

TEST(match_search_tree)
{
    parsed p;
    parse(&p, "SELECT a FROM logs WHERE msg MATCH "
              "'Card -retry (pay* OR \"Connection Refused\") 17fc695a-07a0-4a6e-8822-e8f36c031199 "
              "host:/db-\\d+/ status:500'");
    REQUIRE(p.rc == 0);
    const sql_expr *m = where_of(&p);
    REQUIRE(m->kind == SQL_EXPR_BINARY && m->u.binary.op == SQL_OP_MATCH);
    CHECK_EQ_STR(m->u.binary.lhs->u.name.s, "msg");
    const sql_search *root = m->u.binary.search;
    REQUIRE(root && root->kind == SQL_SEARCH_AND && root->child_count == 6);
    const sql_search *term = root->children[0];
    CHECK_EQ_INT(term->kind, SQL_SEARCH_TERM);
    CHECK_EQ_STR(term->text, "card"); /* lower-cased like the index */
    CHECK_EQ_INT(term->pos.column, 37);
    const sql_search *not_node = root->children[1];
    REQUIRE(not_node->kind == SQL_SEARCH_NOT && not_node->child_count == 1);
    CHECK_EQ_STR(not_node->children[0]->text, "retry");
    const sql_search *or_node = root->children[2];
    REQUIRE(or_node->kind == SQL_SEARCH_OR && or_node->child_count == 2);
    CHECK_EQ_INT(or_node->children[0]->kind, SQL_SEARCH_PREFIX);
    CHECK_EQ_STR(or_node->children[0]->text, "pay");
    const sql_search *phrase = or_node->children[1];
    REQUIRE(phrase->kind == SQL_SEARCH_PHRASE && phrase->token_count == 2);
    CHECK_EQ_STR(phrase->tokens[0], "connection");
    CHECK_EQ_STR(phrase->tokens[1], "refused");
    CHECK_EQ_STR(phrase->text, "Connection Refused");
    const sql_search *uuid = root->children[3];
    REQUIRE(uuid->kind == SQL_SEARCH_PHRASE && uuid->token_count == 5);
    CHECK_EQ_STR(uuid->tokens[0], "17fc695a");
    CHECK_EQ_STR(uuid->tokens[4], "e8f36c031199");
    const sql_search *field = root->children[4];
    REQUIRE(field->kind == SQL_SEARCH_FIELD && field->child_count == 1);
    CHECK_EQ_STR(field->text, "host");
    CHECK_EQ_INT(field->children[0]->kind, SQL_SEARCH_REGEX);
    CHECK_EQ_STR(field->children[0]->text, "db-\\d+");
    CHECK_EQ_INT(root->children[5]->children[0]->kind, SQL_SEARCH_TERM);
    parsed_fini(&p);
}

TEST(time_literals_get_their_value)
{
    parsed p;
    parse(&p, "SELECT a FROM logs WHERE ts >= '2025-06-15T14:23:01.123Z' AND name = '2025'");
    REQUIRE(p.rc == 0);
    const sql_expr *w = where_of(&p);
    const sql_expr *t = w->u.list.items[0]->u.binary.rhs;
    CHECK(t->u.str.is_time);
    CHECK_EQ_INT(t->u.str.time_ns, 1749997381123000000LL);
    CHECK(!w->u.list.items[1]->u.binary.rhs->u.str.is_time); /* not compared with ts */
    parsed_fini(&p);
}

TEST(alert_and_rollup_parts)
{
    parsed p;
    parse(&p, "CREATE ALERT hot AS SELECT count(*) FROM logs WINDOW 5m EVERY 30s "
              "WHEN count(*) > 100 FOR 1m LABELS (team = 'a') ANNOTATIONS (x = 'y', z = 'w') "
              "NOTIFY PAGERDUTY 'key' URL 'https://pd', SLACK 'https://s'");
    REQUIRE(p.rc == 0);
    const sql_alert *a = p.stmt->u.alert;
    CHECK_EQ_STR(a->name, "hot");
    CHECK_EQ_INT(a->window_ns, 300 * QR_NS_PER_SEC);
    CHECK_EQ_INT(a->every_ns, 30 * QR_NS_PER_SEC);
    CHECK_EQ_INT(a->for_ns, 60 * QR_NS_PER_SEC);
    CHECK_EQ_INT(a->cooldown_ns, -1);
    REQUIRE(a->label_count == 1 && a->annotation_count == 2 && a->channel_count == 2);
    CHECK_EQ_STR(a->labels[0].key, "team");
    CHECK_EQ_STR(a->labels[0].value->u.str.s, "a");
    CHECK_EQ_STR(a->annotations[1].key, "z");
    CHECK_EQ_INT(a->channels[0].kind, SQL_CHANNEL_PAGERDUTY);
    CHECK_EQ_STR(a->channels[0].target, "key");
    CHECK_EQ_STR(a->channels[0].url, "https://pd");
    CHECK_EQ_INT(a->channels[1].kind, SQL_CHANNEL_SLACK);
    CHECK(a->channels[1].url == NULL);
    parsed_fini(&p);

    parse(&p, "CREATE ROLLUP r AS SELECT bucket(ts, 1m) AS t, count(*) FROM logs GROUP BY t "
              "WITH (retention = 30d, lateness = 10s)");
    REQUIRE(p.rc == 0);
    const sql_rollup *r = p.stmt->u.rollup;
    REQUIRE(r->option_count == 2);
    CHECK_EQ_STR(r->options[0].key, "retention");
    CHECK_EQ_INT(r->options[0].value->u.duration_ns, 30LL * 86400 * QR_NS_PER_SEC);
    parsed_fini(&p);
}

TEST(text_is_copied_and_errors_leave_out_alone)
{
    char text[] = "SELECT service FROM logs WHERE msg = 'x'";
    parsed p;
    parse(&p, text);
    REQUIRE(p.rc == 0);
    memset(text, 'z', sizeof text - 1); /* the tree must not point into the caller's text */
    CHECK_EQ_STR(p.stmt->u.select->items[0].expr->u.name.s, "service");
    CHECK_EQ_STR(p.stmt->u.select->where->u.binary.rhs->u.str.s, "x");
    parsed_fini(&p);

    qr_arena arena;
    qr_arena_init(&arena, 0, 0);
    sql_stmt *sentinel = (sql_stmt *)&arena, *out = sentinel;
    CHECK_EQ_INT(sql_parse("SELECT", 6, &arena, &out, NULL), QR_ESYNTAX); /* NULL diag is fine */
    CHECK(out == sentinel);
    qr_arena_fini(&arena);
}

TEST(print_expr_alone)
{
    parsed p;
    parse(&p, "SELECT a FROM logs WHERE NOT (a = 1 OR b IN (1, 2)) AND c IS NOT NULL");
    REQUIRE(p.rc == 0);
    qr_buf out;
    qr_buf_init(&out);
    CHECK_EQ_INT(sql_print_expr(where_of(&p), &out), 0);
    qr_buf_u8(&out, 0);
    CHECK_EQ_STR((const char *)out.data, "NOT (a = 1 OR b IN (1, 2)) AND c IS NOT NULL");
    qr_buf_fini(&out);
    parsed_fini(&p);
}

TEST(function_registry)
{
    const sql_func *f = sql_func_lookup("COUNT", 5);
    REQUIRE(f);
    CHECK(f->is_aggregate && f->allows_star);
    CHECK(sql_func_lookup("p99", 3) && sql_func_lookup("p99", 3)->is_aggregate);
    CHECK(!sql_func_lookup("lower", 5)->is_aggregate);
    CHECK(sql_func_lookup("coalesce", 8)->max_args == SQL_FUNC_VARIADIC);
    CHECK(sql_func_lookup("cou", 3) == NULL);
    CHECK(sql_func_lookup("counts", 6) == NULL);
    bool is_range = false;
    CHECK(sql_lq_func_lookup("count_over_time", 15, &is_range) && is_range);
    CHECK(sql_lq_func_lookup("topk", 4, &is_range) && !is_range);
    CHECK(!sql_lq_func_lookup("lower", 5, &is_range));
}

int main(void)
{
    RUN(logql_selector_is_sql_comparison);
    RUN(logql_regex_matcher_is_anchored_sql_regex_is_not);
    RUN(logql_line_filters_are_msg_contains_and_regex);
    RUN(logql_label_filters_are_sql_comparisons);
    RUN(logql_metric_tree);
    RUN(select_parts);
    RUN(positions_are_line_column_offset);
    RUN(match_search_tree);
    RUN(time_literals_get_their_value);
    RUN(alert_and_rollup_parts);
    RUN(text_is_copied_and_errors_leave_out_alone);
    RUN(print_expr_alone);
    RUN(function_registry);
    QR_TEST_MAIN_END();
}
