#include "storage/catalog.h"

#include "common/qr_fs.h"
#include "common/qr_hash.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void catalog_state_init(catalog_state *s)
{
    memset(s, 0, sizeof *s);
    s->next_segment_id = 1;
}

void catalog_state_fini(catalog_state *s)
{
    free(s->segs);
    memset(s, 0, sizeof *s);
}

int catalog_state_add(catalog_state *s, const catalog_seg *seg)
{
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        catalog_seg *p = realloc(s->segs, cap * sizeof *p);
        if (!p) return QR_ENOMEM;
        s->segs = p;
        s->cap = cap;
    }
    s->segs[s->count++] = *seg;
    return 0;
}

int catalog_state_copy(catalog_state *dst, const catalog_state *src)
{
    catalog_state_init(dst);
    dst->flushed_lsn = src->flushed_lsn;
    dst->next_segment_id = src->next_segment_id;
    for (size_t idx = 0; idx < src->count; idx++)
        if (catalog_state_add(dst, &src->segs[idx])) return QR_ENOMEM;
    return 0;
}

static bool file_name_ok(const char *s)
{
    if (!*s || strlen(s) >= 64) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
              *p == '-'))
            return false;
    return s[0] != '.';
}

int catalog_load(const char *tenant_dir, catalog_state *out, qr_diag *d)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", tenant_dir, CATALOG_FILE);
    catalog_state_init(out);
    qr_buf buf;
    qr_buf_init(&buf);
    int rc = qr_fs_read_all(path, CATALOG_FILE_MAX_BYTES, &buf, d);
    if (rc == QR_ENOTFOUND) {
        qr_buf_fini(&buf);
        return 0;
    }
    if (rc) {
        qr_buf_fini(&buf);
        return rc;
    }
    /* the checksum line covers every byte before it */
    const char *text = (const char *)buf.data;
    size_t len = buf.len;
    const char *cs = NULL;
    for (size_t pos = len; pos-- > 0;) {
        if ((pos == 0 || text[pos - 1] == '\n') && len - pos > 9 &&
            memcmp(text + pos, "checksum ", 9) == 0) {
            cs = text + pos;
            break;
        }
    }
    if (!cs) {
        qr_buf_fini(&buf);
        return qr_diag_set(d, QR_ECORRUPT, "%s: no checksum line (torn or not a catalog)", path);
    }
    /* the checksum line must be exactly "checksum <16 lower-case hex>\n" and end the file */
    char want[32];
    snprintf(want, sizeof want, "checksum %016" PRIx64 "\n", qr_hash64(text, (size_t)(cs - text)));
    if ((size_t)(text + len - cs) != strlen(want) || memcmp(cs, want, strlen(want)) != 0) {
        qr_buf_fini(&buf);
        return qr_diag_set(d, QR_ECORRUPT, "%s: checksum mismatch", path);
    }
    size_t body_len = (size_t)(cs - text);
    char *body = malloc(body_len + 1);
    if (!body) {
        qr_buf_fini(&buf);
        return QR_ENOMEM;
    }
    memcpy(body, text, body_len);
    body[body_len] = '\0';
    qr_buf_fini(&buf);
    int line_no = 0;
    rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        unsigned long long a, b, c;
        long long mn, mx;
        char file[64];
        if (line_no == 1) {
            if (strcmp(line, "quarry-catalog 1") != 0) {
                rc = qr_diag_set(d, QR_ECORRUPT, "%s: unknown header \"%.40s\"", path, line);
                break;
            }
        } else if (sscanf(line, "flushed_lsn %llu", &a) == 1) {
            out->flushed_lsn = a;
        } else if (sscanf(line, "next_segment_id %llu", &a) == 1) {
            out->next_segment_id = a;
        } else if (sscanf(line, "segment %llu %63s %llu %lld %lld %llu", &a, file, &b, &mn, &mx,
                          &c) == 6 &&
                   file_name_ok(file)) {
            catalog_seg seg = {.id = a, .rows = b, .min_ts_ns = mn, .max_ts_ns = mx, .bytes = c};
            snprintf(seg.file, sizeof seg.file, "%s", file);
            if ((rc = catalog_state_add(out, &seg))) break;
        } else {
            rc = qr_diag_set(d, QR_ECORRUPT, "%s: line %d not understood", path, line_no);
            break;
        }
    }
    free(body);
    if (rc) catalog_state_fini(out);
    return rc;
}

int catalog_store(const char *tenant_dir, const catalog_state *s, qr_diag *d)
{
    qr_buf buf;
    qr_buf_init(&buf);
    char line[512];
    int n = snprintf(line, sizeof line,
                     "quarry-catalog 1\nflushed_lsn %" PRIu64 "\nnext_segment_id %" PRIu64 "\n",
                     s->flushed_lsn, s->next_segment_id);
    qr_buf_append(&buf, line, (size_t)n);
    for (size_t idx = 0; idx < s->count; idx++) {
        const catalog_seg *seg = &s->segs[idx];
        n = snprintf(line, sizeof line,
                     "segment %" PRIu64 " %s %" PRIu64 " %" PRId64 " %" PRId64 " %" PRIu64 "\n",
                     seg->id, seg->file, seg->rows, seg->min_ts_ns, seg->max_ts_ns, seg->bytes);
        qr_buf_append(&buf, line, (size_t)n);
    }
    n = snprintf(line, sizeof line, "checksum %016" PRIx64 "\n", qr_hash64(buf.data, buf.len));
    qr_buf_append(&buf, line, (size_t)n);
    if (!qr_buf_ok(&buf)) {
        qr_buf_fini(&buf);
        return QR_ENOMEM;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", tenant_dir, CATALOG_FILE);
    int rc = qr_fs_write_atomic(path, buf.data, buf.len, d);
    qr_buf_fini(&buf);
    return rc;
}
