#include "storage/part.h"

#include <string.h>

void qr_part_unref(qr_part *p)
{
    if (!p) return;
    if (atomic_fetch_sub(&p->refs, 1) == 1) p->ops->destroy(p);
}

int qr_part_field_find(const qr_part *p, const char *key, size_t key_len, uint8_t type)
{
    for (uint32_t idx = 0; idx < p->field_count; idx++) {
        const qr_field_schema *f = &p->fields[idx];
        if (f->type == type && f->key.len == key_len && memcmp(f->key.ptr, key, key_len) == 0)
            return (int)idx;
    }
    return -1;
}
