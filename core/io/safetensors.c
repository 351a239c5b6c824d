/* safetensors.c - safetensors reader (mmap + full validation) and an atomic
 * F32 writer. The JSON header is parsed with cJSON from a NUL-terminated
 * copy, so not even the (uninstrumented) JSON library can read past it. */
#define _GNU_SOURCE
#include "safetensors.h"

#include "gguf.h" /* qr_fp16_to_f32, qr_bf16_to_f32 */
#include "qr.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (safetensors data is little-endian)"
#endif

struct qr_st_file {
    char *path;
    const uint8_t *base;
    size_t size;
    void *map; /* NULL for open_mem */
    size_t map_len;
    size_t data_off; /* 8 + header length */
    int n;
    qr_st_tensor *t;
    int *sorted; /* tensor indices sorted by name */
    int n_meta;
    char **meta_k, **meta_v;
};

static const struct {
    const char *name;
    size_t size;
} st_dtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
    {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

size_t qr_st_dtype_size(const char *dtype) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(dtype, st_dtypes[i].name) == 0) return st_dtypes[i].size;
    return 0;
}

/* A JSON number that is an exact non-negative integer below 2^53 (beyond
 * that a double cannot tell neighbouring integers apart). */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!isfinite(d) || d < 0 || d >= 9007199254740992.0 || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

typedef struct {
    uint64_t begin, end;
    int i;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

typedef struct {
    const char *s;
    int i;
} name_idx;

static int cmp_name_idx(const void *a, const void *b) {
    return strcmp(((const name_idx *)a)->s, ((const name_idx *)b)->s);
}

/* Validate one tensor entry j (key name) into t. */
static int parse_entry(qr_st_file *f, const cJSON *j, qr_st_tensor *t, span *sp, size_t data_len) {
    const char *nm = t->name;
    if (!cJSON_IsObject(j))
        return qr_err_set("%s: tensor '%s': expected a JSON object {dtype, shape, data_offsets}", f->path, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!cJSON_IsString(dt))
        return qr_err_set("%s: tensor '%s': field 'dtype' %s, expected a string like \"F32\"", f->path, nm,
                          dt ? "is not a string" : "is missing");
    size_t esz = qr_st_dtype_size(dt->valuestring);
    if (!esz)
        return qr_err_set("%s: tensor '%s': unknown dtype \"%.32s\" (expected F64, F32, F16, BF16, I64, I32, I16, I8, "
                          "U64, U32, U16, U8, BOOL, F8_E4M3 or F8_E5M2)",
                          f->path, nm, dt->valuestring);
    snprintf(t->dtype, sizeof t->dtype, "%s", dt->valuestring);
    if (!cJSON_IsArray(sh))
        return qr_err_set("%s: tensor '%s': field 'shape' %s, expected an array of integers", f->path, nm,
                          sh ? "is not an array" : "is missing");
    int nd = cJSON_GetArraySize(sh);
    if (nd > QR_ST_MAX_DIMS)
        return qr_err_set("%s: tensor '%s': shape has %d dims, at most %d supported", f->path, nm, nd, QR_ST_MAX_DIMS);
    t->n_dims = nd;
    uint64_t ne = 1;
    int d = 0;
    for (const cJSON *e = sh->child; e; e = e->next, d++) {
        uint64_t v;
        if (!json_uint(e, &v))
            return qr_err_set("%s: tensor '%s': shape[%d] is not a non-negative integer", f->path, nm, d);
        if (__builtin_mul_overflow(ne, v, &ne) || ne > INT64_MAX)
            return qr_err_set("%s: tensor '%s': element count overflows", f->path, nm);
        t->shape[d] = (int64_t)v;
    }
    t->n_elems = (int64_t)ne;
    uint64_t nb;
    if (__builtin_mul_overflow(ne, (uint64_t)esz, &nb))
        return qr_err_set("%s: tensor '%s': byte size overflows", f->path, nm);
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
        return qr_err_set("%s: tensor '%s': field 'data_offsets' %s, expected [begin, end]", f->path, nm,
                          !of ? "is missing" : "is not an array of 2 integers");
    uint64_t b, e;
    if (!json_uint(of->child, &b) || !json_uint(of->child->next, &e))
        return qr_err_set("%s: tensor '%s': data_offsets must be non-negative integers", f->path, nm);
    if (b > e)
        return qr_err_set("%s: tensor '%s': data_offsets [%llu, %llu) has begin > end", f->path, nm,
                          (unsigned long long)b, (unsigned long long)e);
    if (e > data_len)
        return qr_err_set("%s: tensor '%s': data_offsets end %llu is past the data section of %zu bytes (truncated file?)",
                          f->path, nm, (unsigned long long)e, data_len);
    if (e - b != nb)
        return qr_err_set("%s: tensor '%s': data_offsets span %llu bytes but shape x %s needs %llu", f->path, nm,
                          (unsigned long long)(e - b), t->dtype, (unsigned long long)nb);
    t->nbytes = (size_t)nb;
    t->data = f->base + f->data_off + b;
    sp->begin = b;
    sp->end = e;
    return QR_OK;
}

static int parse(qr_st_file *f) {
    if (f->size < 8)
        return qr_err_set("%s: not a safetensors file: %zu bytes, need at least the 8-byte header length", f->path,
                          f->size);
    uint64_t hlen;
    memcpy(&hlen, f->base, 8);
    if (hlen > f->size - 8)
        return qr_err_set("%s: header length %llu exceeds the %zu bytes after it (truncated or not safetensors)",
                          f->path, (unsigned long long)hlen, f->size - 8);
    if (hlen < 2)
        return qr_err_set("%s: header length %llu is too small for a JSON object", f->path, (unsigned long long)hlen);
    f->data_off = 8 + (size_t)hlen;
    size_t data_len = f->size - f->data_off;

    char *js = qr_xmalloc((size_t)hlen + 1);
    memcpy(js, f->base + 8, (size_t)hlen);
    js[hlen] = 0;
    if (js[0] != '{') {
        free(js);
        return qr_err_set("%s: header does not start with '{' (not safetensors?)", f->path);
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(js, (size_t)hlen, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        size_t at = end && end >= js ? (size_t)(end - js) : 0;
        cJSON_Delete(root);
        free(js);
        return qr_err_set("%s: header JSON is invalid near byte %zu of %llu", f->path, at, (unsigned long long)hlen);
    }
    /* only padding may follow the JSON object */
    for (const char *p = end; p < js + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            qr_err_set("%s: unexpected byte 0x%02x after the header JSON at byte %zu (only space padding allowed)",
                       f->path, (unsigned char)*p, (size_t)(p - js));
            cJSON_Delete(root);
            free(js);
            return QR_ERR;
        }
    free(js);

    int rc = QR_ERR;
    int n_items = cJSON_GetArraySize(root);
    f->t = qr_xcalloc((size_t)(n_items ? n_items : 1), sizeof *f->t);
    span *sp = qr_xmalloc(sizeof *sp * (size_t)(n_items ? n_items : 1));
    int seen_meta = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!it->string) {
            qr_err_set("%s: header entry without a name", f->path);
            goto out;
        }
        if (strcmp(it->string, "__metadata__") == 0) {
            if (seen_meta++) {
                qr_err_set("%s: '__metadata__' appears more than once", f->path);
                goto out;
            }
            if (!cJSON_IsObject(it)) {
                qr_err_set("%s: '__metadata__' is not an object of strings", f->path);
                goto out;
            }
            int nm = cJSON_GetArraySize(it);
            f->meta_k = qr_xcalloc((size_t)(nm ? nm : 1), sizeof(char *));
            f->meta_v = qr_xcalloc((size_t)(nm ? nm : 1), sizeof(char *));
            for (const cJSON *m = it->child; m; m = m->next) {
                if (!cJSON_IsString(m) || !m->string) {
                    qr_err_set("%s: __metadata__ '%s': expected a string value", f->path, m->string ? m->string : "?");
                    goto out;
                }
                f->meta_k[f->n_meta] = qr_xstrdup(m->string);
                f->meta_v[f->n_meta] = qr_xstrdup(m->valuestring);
                f->n_meta++;
            }
            continue;
        }
        qr_st_tensor *t = &f->t[f->n];
        t->name = qr_xstrdup(it->string);
        f->n++;
        sp[f->n - 1].i = f->n - 1;
        if (parse_entry(f, it, t, &sp[f->n - 1], data_len)) goto out;
    }

    /* Names unique (also catches names cut short by an escaped NUL). */
    name_idx *ni = qr_xmalloc(sizeof *ni * (size_t)(f->n ? f->n : 1));
    for (int i = 0; i < f->n; i++) ni[i] = (name_idx){f->t[i].name, i};
    qsort(ni, (size_t)f->n, sizeof *ni, cmp_name_idx);
    f->sorted = qr_xmalloc(sizeof *f->sorted * (size_t)(f->n ? f->n : 1));
    for (int i = 0; i < f->n; i++) {
        f->sorted[i] = ni[i].i;
        if (i > 0 && strcmp(ni[i].s, ni[i - 1].s) == 0) {
            qr_err_set("%s: tensor '%s' appears more than once", f->path, ni[i].s);
            free(ni);
            goto out;
        }
    }
    free(ni);

    /* The data section is tiled exactly: sorted by begin, each tensor starts
     * where the previous ended, the last ends at the end of the file. */
    qsort(sp, (size_t)f->n, sizeof *sp, cmp_span);
    uint64_t pos = 0;
    for (int i = 0; i < f->n; i++) {
        if (sp[i].begin != pos) {
            qr_err_set("%s: tensor '%s': data_offsets [%llu, %llu) %s (the previous tensor ends at %llu)", f->path,
                       f->t[sp[i].i].name, (unsigned long long)sp[i].begin, (unsigned long long)sp[i].end,
                       sp[i].begin > pos ? "leaves a hole" : "overlaps another tensor", (unsigned long long)pos);
            goto out;
        }
        pos = sp[i].end;
    }
    if (pos != data_len) {
        qr_err_set("%s: tensors cover %llu bytes of data but the file has %zu after the header (%s)", f->path,
                   (unsigned long long)pos, data_len, pos < data_len ? "trailing bytes" : "truncated");
        goto out;
    }
    rc = QR_OK;
out:
    free(sp);
    cJSON_Delete(root);
    return rc;
}

static qr_st_file *finish_open(qr_st_file *f) {
    if (parse(f) != QR_OK) {
        qr_st_close(f);
        return NULL;
    }
    return f;
}

qr_st_file *qr_st_open_mem(const void *buf, size_t len, const char *label) {
    qr_st_file *f = qr_xcalloc(1, sizeof *f);
    f->path = qr_xstrdup(label ? label : "<memory>");
    f->base = buf;
    f->size = buf ? len : 0;
    return finish_open(f);
}

qr_st_file *qr_st_open(const char *path) {
    if (!path) {
        qr_err_set("qr_st_open: path is NULL");
        return NULL;
    }
    size_t n;
    void *m = qr_map_file(path, "safetensors", &n);
    if (!m) return NULL;
    qr_st_file *f = qr_xcalloc(1, sizeof *f);
    f->path = qr_xstrdup(path);
    f->map = m;
    f->map_len = n;
    f->base = m;
    f->size = n;
    return finish_open(f);
}

void qr_st_close(qr_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free((char *)f->t[i].name);
    free(f->t);
    free(f->sorted);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_k[i]);
        free(f->meta_v[i]);
    }
    free(f->meta_k);
    free(f->meta_v);
    qr_unmap_file(f->map, f->map_len);
    free(f->path);
    free(f);
}

const char *qr_st_path(const qr_st_file *f) { return f->path; }
int qr_st_count(const qr_st_file *f) { return f->n; }

const qr_st_tensor *qr_st_at(const qr_st_file *f, int i) { return i >= 0 && i < f->n ? &f->t[i] : NULL; }

const qr_st_tensor *qr_st_find(const qr_st_file *f, const char *name) {
    if (name) {
        int lo = 0, hi = f->n - 1;
        while (lo <= hi) {
            int mid = lo + (hi - lo) / 2;
            int c = strcmp(name, f->t[f->sorted[mid]].name);
            if (c == 0) return &f->t[f->sorted[mid]];
            if (c < 0) hi = mid - 1; else lo = mid + 1;
        }
    }
    qr_err_set("%s: tensor '%s' not found", f->path, name ? name : "(null)");
    return NULL;
}

const char *qr_st_metadata(const qr_st_file *f, const char *key) {
    for (int i = 0; key && i < f->n_meta; i++)
        if (strcmp(f->meta_k[i], key) == 0) return f->meta_v[i];
    return NULL;
}

int qr_st_metadata_count(const qr_st_file *f) { return f->n_meta; }
const char *qr_st_metadata_key_at(const qr_st_file *f, int i) { return i >= 0 && i < f->n_meta ? f->meta_k[i] : NULL; }

int qr_st_read_f32(const qr_st_file *f, const qr_st_tensor *t, float *dst, int64_t n_expected) {
    if (!t || t < f->t || t >= f->t + f->n)
        return qr_err_set("%s: qr_st_read_f32: tensor is not one of this file's", f->path);
    if (t->n_elems != n_expected)
        return qr_err_set("%s: tensor '%s': expected %lld elements, file has %lld", f->path, t->name,
                          (long long)n_expected, (long long)t->n_elems);
    const uint8_t *p = t->data;
    if (strcmp(t->dtype, "F32") == 0) {
        memcpy(dst, p, t->nbytes);
    } else if (strcmp(t->dtype, "F16") == 0 || strcmp(t->dtype, "BF16") == 0) {
        int bf = t->dtype[0] == 'B';
        for (int64_t i = 0; i < t->n_elems; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = bf ? qr_bf16_to_f32(h) : qr_fp16_to_f32(h);
        }
    } else {
        return qr_err_set("%s: tensor '%s': dtype %s cannot be read as f32 (expected F32, F16 or BF16)", f->path,
                          t->name, t->dtype);
    }
    return QR_OK;
}

/* -------------------------------------------------------------- writer */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = qr_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string literal; bytes >= 0x80 pass through (names are UTF-8). */
static void sb_json(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            sb_put(b, esc, 2);
        } else if (ch < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            sb_put(b, esc, 6);
        } else {
            sb_put(b, (const char *)&ch, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int check_out(const char *path, const qr_st_out *t, int n, const char *const *meta_kv, uint64_t *sizes) {
    if (n < 0 || (n > 0 && !t)) return qr_err_set("%s: qr_st_write: %d tensors but no array", path, n);
    for (int i = 0; i < n; i++) {
        if (!t[i].name || !t[i].name[0]) return qr_err_set("%s: qr_st_write: tensor #%d has no name", path, i);
        if (strcmp(t[i].name, "__metadata__") == 0)
            return qr_err_set("%s: qr_st_write: '__metadata__' is reserved, not a tensor name", path);
        for (int j = 0; j < i; j++)
            if (strcmp(t[i].name, t[j].name) == 0)
                return qr_err_set("%s: qr_st_write: tensor '%s' given twice", path, t[i].name);
        if (t[i].n_dims < 0 || t[i].n_dims > QR_ST_MAX_DIMS)
            return qr_err_set("%s: qr_st_write: tensor '%s': n_dims %d, expected 0..%d", path, t[i].name,
                              t[i].n_dims, QR_ST_MAX_DIMS);
        uint64_t ne = 1;
        for (int d = 0; d < t[i].n_dims; d++) {
            if (t[i].shape[d] < 0)
                return qr_err_set("%s: qr_st_write: tensor '%s': shape[%d] = %lld is negative", path, t[i].name, d,
                                  (long long)t[i].shape[d]);
            if (__builtin_mul_overflow(ne, (uint64_t)t[i].shape[d], &ne) || ne > (1ull << 53) / 4)
                return qr_err_set("%s: qr_st_write: tensor '%s' is too large", path, t[i].name);
        }
        if (ne > 0 && !t[i].data) return qr_err_set("%s: qr_st_write: tensor '%s' has no data", path, t[i].name);
        sizes[i] = ne * 4;
    }
    for (int i = 0; meta_kv && meta_kv[i]; i += 2)
        if (!meta_kv[i + 1]) return qr_err_set("%s: qr_st_write: metadata key '%s' has no value", path, meta_kv[i]);
    return QR_OK;
}

int qr_st_write(const char *path, const qr_st_out *t, int n, const char *const *meta_kv) {
    if (!path || !path[0]) return qr_err_set("qr_st_write: empty output path");
    uint64_t *sizes = qr_xmalloc(sizeof *sizes * (size_t)(n > 0 ? n : 1));
    if (check_out(path, t, n, meta_kv, sizes)) {
        free(sizes);
        return QR_ERR;
    }
    /* header JSON: metadata first, then the tensors in the given order */
    sbuf h = {0};
    sb_str(&h, "{");
    int first = 1;
    if (meta_kv && meta_kv[0]) {
        sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; meta_kv[i]; i += 2) {
            if (i) sb_str(&h, ",");
            sb_json(&h, meta_kv[i]);
            sb_str(&h, ":");
            sb_json(&h, meta_kv[i + 1]);
        }
        sb_str(&h, "}");
        first = 0;
    }
    uint64_t off = 0;
    char num[64];
    for (int i = 0; i < n; i++) {
        if (!first) sb_str(&h, ",");
        first = 0;
        sb_json(&h, t[i].name);
        sb_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].n_dims; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
            sb_str(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + sizes[i]));
        sb_str(&h, num);
        off += sizes[i];
    }
    sb_str(&h, "}");
    while (h.n % 8) sb_str(&h, " "); /* 8 + N stays 8-aligned, so the data is too */

    char *tmp = qr_xmalloc(strlen(path) + 32);
    sprintf(tmp, "%s.tmp.%ld", path, (long)getpid());
    int rc = QR_ERR;
    FILE *fp = NULL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        qr_err_set("%s: cannot create temporary file %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    fp = fdopen(fd, "wb");
    if (!fp) {
        qr_err_set("%s: fdopen failed: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        goto done;
    }
    uint64_t hlen = h.n;
    int ok = fwrite(&hlen, 8, 1, fp) == 1 && fwrite(h.p, 1, h.n, fp) == h.n;
    for (int i = 0; ok && i < n; i++)
        if (sizes[i]) ok = fwrite(t[i].data, 1, (size_t)sizes[i], fp) == (size_t)sizes[i];
    if (ok) ok = fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    int err = errno;
    if (fclose(fp) != 0 && ok) {
        ok = 0;
        err = errno;
    }
    if (!ok) {
        qr_err_set("%s: writing %s failed: %s", path, tmp, strerror(err));
        unlink(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        qr_err_set("%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        unlink(tmp);
        goto done;
    }
    qr_fsync_parent(path);
    rc = QR_OK;
done:
    free(tmp);
    free(h.p);
    free(sizes);
    return rc;
}
