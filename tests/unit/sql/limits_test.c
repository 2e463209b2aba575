/* Limits: text size, nesting, long flat lists, deep unary chains, NUL bytes, arena budget.
 * Each must end in a clean error with a position (or parse), never a crash. */
#include "common/qr_arena.h"
#include "common/qr_buf.h"
#include "common/qr_err.h"
#include "qr_test.h"
#include "sql/query.h"

static int parse_text(const char *text, size_t len, qr_diag *d, sql_stmt **out, qr_arena *arena)
{
    qr_diag_init(d);
    return sql_parse(text, len, arena, out, d);
}

/* Builds prefix + repeat * count + suffix into b (NUL-terminated). */
static void build(qr_buf *b, const char *prefix, const char *repeat, int count, const char *suffix)
{
    qr_buf_clear(b);
    qr_buf_append(b, prefix, strlen(prefix));
    for (int idx = 0; idx < count; idx++) qr_buf_append(b, repeat, strlen(repeat));
    qr_buf_append(b, suffix, strlen(suffix));
    qr_buf_u8(b, 0);
    b->len--;
}

TEST(text_size_limit)
{
    qr_buf b;
    qr_buf_init(&b);
    qr_arena arena;
    qr_arena_init(&arena, 0, 0);
    qr_diag d;
    sql_stmt *stmt = NULL;
    /* exactly the limit parses */
    const char *prefix = "SELECT a FROM logs WHERE msg CONTAINS '";
    int fill = SQL_MAX_TEXT_BYTES - (int)strlen(prefix) - 1;
    build(&b, prefix, "x", fill, "'");
    REQUIRE(b.len == SQL_MAX_TEXT_BYTES);
    CHECK_EQ_INT(parse_text((const char *)b.data, b.len, &d, &stmt, &arena), 0);
    CHECK_EQ_INT(stmt->u.select->where->u.binary.rhs->u.str.len, fill);
    /* one byte more does not */
    build(&b, prefix, "x", fill + 1, "'");
    CHECK_EQ_INT(parse_text((const char *)b.data, b.len, &d, &stmt, &arena), QR_ELIMIT);
    CHECK_EQ_STR(d.msg, "line 1, column 1: query is 65537 bytes, longer than 65536");
    qr_arena_fini(&arena);
    qr_buf_fini(&b);
}

TEST(nesting_limit)
{
    qr_buf b;
    qr_buf_init(&b);
    qr_arena arena;
    qr_arena_init(&arena, 0, 0);
    qr_diag d;
    sql_stmt *stmt;
    build(&b, "SELECT ", "(", SQL_MAX_DEPTH, "1");
    for (int idx = 0; idx < SQL_MAX_DEPTH; idx++) qr_buf_append(&b, ")", 1);
    CHECK_EQ_INT(parse_text((const char *)b.data, b.len, &d, &stmt, &arena), 0);
    /* calls nest brackets and tree levels at once */
    build(&b, "SELECT ", "lower(", SQL_MAX_DEPTH - 1, "a");
    for (int idx = 0; idx < SQL_MAX_DEPTH - 1; idx++) qr_buf_append(&b, ")", 1);
    CHECK_EQ_INT(parse_text((const char *)b.data, b.len, &d, &stmt, &arena), 0);
    build(&b, "SELECT ", "lower(", SQL_MAX_DEPTH + 1, "a");
    CHECK_EQ_INT(parse_text((const char *)b.data, b.len, &d, &stmt, &arena), QR_ELIMIT);
    CHECK_EQ_INT(d.line, 1);
    CHECK(d.column > 7);
    /* LogQL brackets count too */
    build(&b, "sum(", "sum(", SQL_MAX_DEPTH, "rate({a=\"b\"}[1m])");
    CHECK_EQ_INT(parse_text((const char *)b.data, b.len, &d, &stmt, &arena), QR_ELIMIT);
    qr_arena_fini(&arena);
    qr_buf_fini(&b);
}

TEST(tree_depth_limit_without_brackets)
{
    qr_buf b;
    qr_buf_init(&b);
    qr_arena arena;
    qr_arena_init(&arena, 0, 0);
    qr_diag d;
    sql_stmt *stmt;
    /* a left-deep arithmetic chain is as deep as it is long */
    build(&b, "SELECT a", " + a", SQL_MAX_DEPTH - 1, " FROM logs");
    CHECK_EQ_INT(parse_text((const char *)b.data, b.len, &d, &stmt, &arena), 0);
    build(&b, "SELECT a", " + a", 5000, " FROM logs");
    CHECK_EQ_INT(parse_text((const char *)b.data, b.len, &d, &stmt, &arena), QR_ELIMIT);
    CHECK(strstr(d.msg, "expression nested deeper than 128 levels") != NULL);
    /* prefix operators pile up on the parser stack */
    build(&b, "SELECT a FROM logs WHERE ", "NOT ", 5000, "a");
    CHECK_EQ_INT(parse_text((const char *)b.data, b.len, &d, &stmt, &arena), QR_ELIMIT);
    build(&b, "SELECT ", "- ", 5000, "a");
    CHECK_EQ_INT(parse_text((const char *)b.data, b.len, &d, &stmt, &arena), QR_ELIMIT);
    CHECK(d.line == 1 && d.column > 0);
    qr_arena_fini(&arena);
    qr_buf_fini(&b);
}

TEST(long_flat_lists_are_fine)
{
    qr_buf b;
    qr_buf_init(&b);
    qr_arena arena;
    qr_arena_init(&arena, 0, 0);
    qr_diag d;
    sql_stmt *stmt;
    /* AND/OR chains flatten: 5000 terms are one node, depth 3 */
    build(&b, "SELECT a FROM logs WHERE a = 0", " AND a = 1", 5000, "");
    REQUIRE(parse_text((const char *)b.data, b.len, &d, &stmt, &arena) == 0);
    CHECK_EQ_INT(stmt->u.select->where->kind, SQL_EXPR_AND);
    CHECK_EQ_INT(stmt->u.select->where->u.list.count, 5001);
    CHECK_EQ_INT(stmt->u.select->where->depth, 3);
    build(&b, "SELECT a FROM logs WHERE a IN (0", ", 1", 10000, ")");
    REQUIRE(parse_text((const char *)b.data, b.len, &d, &stmt, &arena) == 0);
    CHECK_EQ_INT(stmt->u.select->where->u.in.count, 10001);
    build(&b, "SELECT a", ", b", 5000, " FROM logs");
    REQUIRE(parse_text((const char *)b.data, b.len, &d, &stmt, &arena) == 0);
    CHECK_EQ_INT(stmt->u.select->item_count, 5001);
    build(&b, "SELECT a FROM logs WHERE msg MATCH 'w0", " w1 OR w2", 3000, "'");
    REQUIRE(parse_text((const char *)b.data, b.len, &d, &stmt, &arena) == 0);
    CHECK_EQ_INT(stmt->u.select->where->u.binary.search->child_count, 3001);
    qr_arena_fini(&arena);
    qr_buf_fini(&b);
}

TEST(nul_bytes_are_rejected_with_position)
{
    qr_arena arena;
    qr_arena_init(&arena, 0, 0);
    qr_diag d;
    sql_stmt *stmt;
    static const char text[] = "SELECT a\nFROM logs WHERE msg = 'a\0b'";
    CHECK_EQ_INT(parse_text(text, sizeof text - 1, &d, &stmt, &arena), QR_ESYNTAX);
    CHECK_EQ_STR(d.msg, "line 2, column 25: NUL byte in query text");
    CHECK_EQ_INT(d.offset, 33);
    /* the length is what counts, not a terminator */
    CHECK_EQ_INT(parse_text("SHOW SERVICES garbage", 13, &d, &stmt, &arena), 0);
    qr_arena_fini(&arena);
}

TEST(arena_budget_ends_in_limit)
{
    qr_buf b;
    qr_buf_init(&b);
    build(&b, "SELECT a FROM logs WHERE a IN (0", ", 1", 5000, ")");
    qr_arena arena;
    qr_arena_init(&arena, 16 * 1024, 160 * 1024);
    qr_diag d;
    sql_stmt *stmt;
    CHECK_EQ_INT(parse_text((const char *)b.data, b.len, &d, &stmt, &arena), QR_ELIMIT);
    CHECK(strstr(d.msg, "more memory than its budget") != NULL);
    qr_arena_fini(&arena);
    qr_buf_fini(&b);
}

int main(void)
{
    RUN(text_size_limit);
    RUN(nesting_limit);
    RUN(tree_depth_limit_without_brackets);
    RUN(long_flat_lists_are_fine);
    RUN(nul_bytes_are_rejected_with_position);
    RUN(arena_budget_ends_in_limit);
    QR_TEST_MAIN_END();
}
