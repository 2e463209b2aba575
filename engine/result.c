/* result — the result table as text: an aligned table, JSON, NDJSON, CSV.
 * Times print as RFC 3339 UTC (milliseconds, or nanoseconds when the value needs them), levels
 * by name, durations like 1h30m; in JSON they are strings, NULL is null. */
#include "common/qr_jsonw.h"
#include "engine/exec_int.h"

#include <stdio.h>
#include <string.h>

static void duration_text(int64_t ns, qr_buf *out)
{
    if (ns == 0) {
        qr_buf_append(out, "0s", 2);
        return;
    }
    uint64_t v = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    if (ns < 0) qr_buf_u8(out, '-');
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {{"d", 86400000000000ULL},
                 {"h", 3600000000000ULL},
                 {"m", 60000000000ULL},
                 {"s", 1000000000ULL},
                 {"ms", 1000000ULL},
                 {"us", 1000ULL},
                 {"ns", 1ULL}};
    for (size_t idx = 0; idx < sizeof units / sizeof units[0] && v; idx++) {
        if (v < units[idx].ns) continue;
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%llu%s", (unsigned long long)(v / units[idx].ns),
                         units[idx].unit);
        qr_buf_append(out, buf, (size_t)n);
        v %= units[idx].ns;
    }
}

void exec_value_text(const exec_value *v, qr_buf *out)
{
    char buf[64];
    int n = 0;
    switch (v->type) {
    case EXEC_NULL:
        qr_buf_append(out, "NULL", 4);
        return;
    case EXEC_BOOL:
        qr_buf_append(out, v->v.b ? "true" : "false", v->v.b ? 4 : 5);
        return;
    case EXEC_INT:
        n = snprintf(buf, sizeof buf, "%lld", (long long)v->v.i);
        break;
    case EXEC_FLOAT:
        n = snprintf(buf, sizeof buf, "%.15g", v->v.f);
        break;
    case EXEC_STRING:
        qr_buf_append(out, v->v.s.ptr, v->v.s.len);
        return;
    case EXEC_TS:
        n = (int)qr_time_format(v->v.i, buf, sizeof buf, v->v.i % QR_NS_PER_MS != 0);
        break;
    case EXEC_LEVEL: {
        const char *name = qr_level_name((qr_level)v->v.i);
        qr_buf_append(out, name, strlen(name));
        return;
    }
    case EXEC_DURATION:
        duration_text(v->v.i, out);
        return;
    }
    qr_buf_append(out, buf, (size_t)n);
}

static const char *type_name(uint8_t t)
{
    static const char *const names[] = {"null",   "bool", "int",   "float",
                                        "string", "ts",   "level", "duration"};
    return t < sizeof names / sizeof names[0] ? names[t] : "null";
}

void exec_value_json(const exec_value *v, qr_buf *out)
{
    switch (v->type) {
    case EXEC_NULL:
        qr_jsonw_raw(out, "null");
        return;
    case EXEC_BOOL:
        qr_jsonw_raw(out, v->v.b ? "true" : "false");
        return;
    case EXEC_INT:
        qr_jsonw_int(out, v->v.i);
        return;
    case EXEC_FLOAT:
        qr_jsonw_double(out, v->v.f);
        return;
    case EXEC_STRING:
        qr_jsonw_str(out, v->v.s.ptr, v->v.s.len);
        return;
    default: {
        qr_buf tmp;
        qr_buf_init(&tmp);
        exec_value_text(v, &tmp);
        qr_jsonw_str(out, tmp.data ? (const char *)tmp.data : "", tmp.len);
        qr_buf_fini(&tmp);
        return;
    }
    }
}

static void csv_field(const char *s, size_t n, qr_buf *out)
{
    bool quote = false;
    for (size_t idx = 0; idx < n && !quote; idx++)
        quote = s[idx] == ',' || s[idx] == '"' || s[idx] == '\n' || s[idx] == '\r';
    if (!quote) {
        qr_buf_append(out, s, n);
        return;
    }
    qr_buf_u8(out, '"');
    for (size_t idx = 0; idx < n; idx++) {
        if (s[idx] == '"') qr_buf_u8(out, '"');
        qr_buf_u8(out, (uint8_t)s[idx]);
    }
    qr_buf_u8(out, '"');
}

/* Display width: UTF-8 characters. */
static size_t text_width(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t idx = 0; idx < n; idx++) w += ((uint8_t)s[idx] & 0xC0) != 0x80;
    return w;
}

static int format_table(const exec_result *r, qr_buf *out)
{
    uint32_t cols = r->col_count;
    if (r->is_explain) {
        for (uint64_t row = 0; row < r->row_count; row++) {
            exec_value_text(&r->cells[row], out);
            qr_buf_u8(out, '\n');
        }
        return qr_buf_ok(out) ? 0 : QR_ENOMEM;
    }
    size_t widths[256];
    uint32_t wcols = cols < 256 ? cols : 256;
    qr_buf tmp;
    qr_buf_init(&tmp);
    for (uint32_t col = 0; col < wcols; col++)
        widths[col] = text_width(r->col_names[col], strlen(r->col_names[col]));
    for (uint64_t row = 0; row < r->row_count; row++) {
        for (uint32_t col = 0; col < wcols; col++) {
            qr_buf_clear(&tmp);
            exec_value_text(&r->cells[row * cols + col], &tmp);
            size_t w = text_width((const char *)tmp.data, tmp.len);
            if (w > widths[col]) widths[col] = w;
        }
    }
    for (int line = -2; line < (int64_t)r->row_count; line++) {
        for (uint32_t col = 0; col < cols; col++) {
            const char *s;
            size_t n;
            if (line == -2) {
                s = r->col_names[col];
                n = strlen(s);
            } else if (line == -1) {
                for (size_t k = 0; k < (col < wcols ? widths[col] : 3); k++) qr_buf_u8(out, '-');
                if (col + 1 < cols) qr_buf_append(out, "  ", 2);
                continue;
            } else {
                qr_buf_clear(&tmp);
                exec_value_text(&r->cells[(uint64_t)line * cols + col], &tmp);
                s = tmp.data ? (const char *)tmp.data : "";
                n = tmp.len;
            }
            qr_buf_append(out, s, n);
            if (col + 1 < cols) {
                size_t w = text_width(s, n), pad = col < wcols ? widths[col] - w : 0;
                for (size_t k = 0; k < pad + 2; k++) qr_buf_u8(out, ' ');
            }
        }
        qr_buf_u8(out, '\n');
    }
    bool ok = qr_buf_ok(&tmp);
    qr_buf_fini(&tmp);
    return ok && qr_buf_ok(out) ? 0 : QR_ENOMEM;
}

int exec_result_format(const exec_result *r, exec_format fmt, qr_buf *out)
{
    uint32_t cols = r->col_count;
    switch (fmt) {
    case EXEC_FORMAT_TABLE:
        return format_table(r, out);
    case EXEC_FORMAT_JSON: {
        qr_jsonw_raw(out, "{\"columns\": [");
        for (uint32_t col = 0; col < cols; col++) {
            if (col) qr_jsonw_raw(out, ", ");
            qr_jsonw_raw(out, "{\"name\": ");
            qr_jsonw_cstr(out, r->col_names[col]);
            qr_jsonw_raw(out, ", \"type\": ");
            qr_jsonw_cstr(out, type_name(r->col_types[col]));
            qr_jsonw_raw(out, "}");
        }
        qr_jsonw_raw(out, "], \"rows\": [");
        for (uint64_t row = 0; row < r->row_count; row++) {
            qr_jsonw_raw(out, row ? ", [" : "[");
            for (uint32_t col = 0; col < cols; col++) {
                if (col) qr_jsonw_raw(out, ", ");
                exec_value_json(&r->cells[row * cols + col], out);
            }
            qr_jsonw_raw(out, "]");
        }
        qr_jsonw_raw(out, "], \"hits\": ");
        qr_jsonw_uint(out, r->hits);
        qr_jsonw_raw(out, ", \"scanned\": ");
        qr_jsonw_uint(out, r->scanned);
        qr_jsonw_raw(out, ", \"took_ms\": ");
        qr_jsonw_double(out, (double)(int64_t)(r->took_ms * 1000) / 1000);
        qr_jsonw_raw(out, ", \"next_cursor\": ");
        if (r->next_cursor)
            qr_jsonw_cstr(out, r->next_cursor);
        else
            qr_jsonw_raw(out, "null");
        qr_jsonw_raw(out, ", \"partial\": ");
        qr_jsonw_raw(out, r->partial ? "true" : "false");
        if (r->partial) {
            qr_jsonw_raw(out, ", \"partial_reason\": ");
            qr_jsonw_cstr(out, r->partial_reason ? r->partial_reason : "");
        }
        qr_jsonw_raw(out, "}\n");
        break;
    }
    case EXEC_FORMAT_NDJSON:
        for (uint64_t row = 0; row < r->row_count; row++) {
            qr_jsonw_raw(out, "{");
            for (uint32_t col = 0; col < cols; col++) {
                if (col) qr_jsonw_raw(out, ", ");
                qr_jsonw_cstr(out, r->col_names[col]);
                qr_jsonw_raw(out, ": ");
                exec_value_json(&r->cells[row * cols + col], out);
            }
            qr_jsonw_raw(out, "}\n");
        }
        break;
    case EXEC_FORMAT_CSV: {
        qr_buf tmp;
        qr_buf_init(&tmp);
        for (uint32_t col = 0; col < cols; col++) {
            if (col) qr_buf_u8(out, ',');
            csv_field(r->col_names[col], strlen(r->col_names[col]), out);
        }
        qr_buf_append(out, "\r\n", 2);
        for (uint64_t row = 0; row < r->row_count; row++) {
            for (uint32_t col = 0; col < cols; col++) {
                if (col) qr_buf_u8(out, ',');
                const exec_value *v = &r->cells[row * cols + col];
                if (v->type == EXEC_NULL) continue;
                qr_buf_clear(&tmp);
                exec_value_text(v, &tmp);
                csv_field(tmp.data ? (const char *)tmp.data : "", tmp.len, out);
            }
            qr_buf_append(out, "\r\n", 2);
        }
        qr_buf_fini(&tmp);
        break;
    }
    }
    return qr_buf_ok(out) ? 0 : QR_ENOMEM;
}

bool exec_format_parse(const char *name, exec_format *out)
{
    static const struct {
        const char *name;
        exec_format fmt;
    } formats[] = {{"table", EXEC_FORMAT_TABLE},
                   {"json", EXEC_FORMAT_JSON},
                   {"ndjson", EXEC_FORMAT_NDJSON},
                   {"csv", EXEC_FORMAT_CSV}};
    for (size_t idx = 0; idx < sizeof formats / sizeof formats[0]; idx++) {
        if (strcmp(name, formats[idx].name) == 0) {
            *out = formats[idx].fmt;
            return true;
        }
    }
    return false;
}
