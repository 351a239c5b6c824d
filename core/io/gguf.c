/* gguf.c - GGUF reader: mmap, validate everything once, then hand out views.
 *
 * Every multi-byte field is read with memcpy (the file guarantees no
 * alignment for header fields, and open_mem buffers may be unaligned), and
 * every length is compared with the bytes left before it is used, in a form
 * that cannot overflow (need <= left, never pos + need <= size). */
#define _GNU_SOURCE
#include "gguf.h"

#include "qr.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c assumes a little-endian host (GGUF files are little-endian)"
#endif

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ARRAY_DEPTH 8 /* arrays of arrays are legal; bound the recursion */

/* One key/value. Values stay in the mapping; only keys and string values
 * are copied (they must be NUL-terminated for the caller). */
typedef struct {
    char *key;
    int type;
    size_t voff;       /* file offset of the value (scalar, string length, or array header) */
    int arr_type;      /* arrays: element type */
    uint64_t arr_n;    /* arrays: element count */
    size_t arr_off;    /* arrays: file offset of the first element */
    char *str;         /* strings: NUL-terminated copy */
} gguf_kv;

struct qr_gguf {
    char *path;
    const uint8_t *base;
    size_t size;
    void *map;         /* NULL for open_mem */
    size_t map_len;
    int version;
    size_t alignment;
    size_t data_off;
    int n_kv;
    gguf_kv *kv;
    int *kv_sorted;    /* indices of kv sorted by key, for bsearch and duplicate checks */
    int n_tensors;
    qr_gguf_tensor *tensors;
    int *t_sorted;
};

/* ---------------------------------------------------------------- types */

typedef struct {
    const char *name;
    int blck;     /* weights per block */
    size_t size;  /* bytes per block */
} ggml_trait;

static const ggml_trait *ggml_traits(int type) {
    static const ggml_trait f32 = {.name = "F32", .blck = 1, .size = 4};
    static const ggml_trait f16 = {.name = "F16", .blck = 1, .size = 2};
    static const ggml_trait q4_0 = {.name = "Q4_0", .blck = 32, .size = 18};
    static const ggml_trait q4_1 = {.name = "Q4_1", .blck = 32, .size = 20};
    static const ggml_trait q8_0 = {.name = "Q8_0", .blck = 32, .size = 34};
    static const ggml_trait bf16 = {.name = "BF16", .blck = 1, .size = 2};
    switch (type) {
    case QR_GGML_F32: return &f32;
    case QR_GGML_F16: return &f16;
    case QR_GGML_Q4_0: return &q4_0;
    case QR_GGML_Q4_1: return &q4_1;
    case QR_GGML_Q8_0: return &q8_0;
    case QR_GGML_BF16: return &bf16;
    default: return NULL;
    }
}

int qr_ggml_block_size(int type) {
    const ggml_trait *t = ggml_traits(type);
    return t ? t->blck : 0;
}

size_t qr_ggml_type_size(int type) {
    const ggml_trait *t = ggml_traits(type);
    return t ? t->size : 0;
}

const char *qr_ggml_type_name(int type) {
    const ggml_trait *t = ggml_traits(type);
    return t ? t->name : "?";
}

static const char *const kv_type_names[] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *qr_gguf_type_name(int kv_type) {
    if (kv_type < 0 || kv_type > QR_GGUF_TYPE_F64) return "unknown";
    return kv_type_names[kv_type];
}

/* Bytes of a scalar KV type; 0 for string/array/unknown. */
static size_t kv_scalar_size(int type) {
    switch (type) {
    case QR_GGUF_TYPE_U8: case QR_GGUF_TYPE_I8: case QR_GGUF_TYPE_BOOL: return 1;
    case QR_GGUF_TYPE_U16: case QR_GGUF_TYPE_I16: return 2;
    case QR_GGUF_TYPE_U32: case QR_GGUF_TYPE_I32: case QR_GGUF_TYPE_F32: return 4;
    case QR_GGUF_TYPE_U64: case QR_GGUF_TYPE_I64: case QR_GGUF_TYPE_F64: return 8;
    default: return 0;
    }
}

static int kv_is_int(int type) {
    return type == QR_GGUF_TYPE_U8 || type == QR_GGUF_TYPE_I8 || type == QR_GGUF_TYPE_U16 ||
           type == QR_GGUF_TYPE_I16 || type == QR_GGUF_TYPE_U32 || type == QR_GGUF_TYPE_I32 ||
           type == QR_GGUF_TYPE_U64 || type == QR_GGUF_TYPE_I64 || type == QR_GGUF_TYPE_BOOL;
}

/* ------------------------------------------------------ half conversions */

static inline uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static inline float f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float qr_fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) {
        if (m == 0) return f32_from_bits(sign);
        /* subnormal half: normalize; value = m * 2^-24 */
        int ex = 113; /* 127 - 15 + 1 */
        while (!(m & 0x400)) { m <<= 1; ex--; }
        return f32_from_bits(sign | (uint32_t)ex << 23 | (m & 0x3ff) << 13);
    }
    if (e == 31) return f32_from_bits(sign | 0x7f800000u | m << 13); /* inf / NaN (payload kept) */
    return f32_from_bits(sign | (e + 112) << 23 | m << 13);
}

uint16_t qr_f32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x3ff); /* quiet NaN */
    if (ax >= 0x477ff000u) return sign | 0x7c00; /* >= 65520 rounds to inf */
    if (ax < 0x38800000u) {                       /* below 2^-14: half subnormal or zero */
        uint32_t e = ax >> 23;
        uint32_t shift = 126 - e; /* value * 2^24 = mant * 2^-shift, mant with implicit bit */
        if (shift > 24) return sign;
        uint32_t mant = (ax & 0x7fffff) | 0x800000;
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return sign | (uint16_t)h;
    }
    uint32_t h = (ax - 0x38000000u) >> 13; /* rebias exponent 127 -> 15 */
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* carry into the exponent is right */
    return sign | (uint16_t)h;
}

float qr_bf16_to_f32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

/* ---------------------------------------------------------- dequantize */

/* q*d below is exact in f32 (a 4- or 8-bit integer times an 11-bit half
 * mantissa), so whether the compiler fuses q*d + m into an FMA does not
 * change the result: it equals gguf-py's (d*q) + m in float32. */
void qr_dequant_row(int type, const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    switch (type) {
    case QR_GGML_F32:
        memcpy(dst, p, (size_t)n * 4);
        break;
    case QR_GGML_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = qr_fp16_to_f32(ld16(p + 2 * i));
        break;
    case QR_GGML_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = qr_bf16_to_f32(ld16(p + 2 * i));
        break;
    case QR_GGML_Q4_0: /* {f16 d; u8 qs[16]}: y[j] = (lo nibble - 8)*d, y[j+16] = (hi nibble - 8)*d */
        for (int64_t b = 0; b < n / 32; b++, p += 18, dst += 32) {
            float d = qr_fp16_to_f32(ld16(p));
            for (int j = 0; j < 16; j++) {
                dst[j] = (float)((p[2 + j] & 15) - 8) * d;
                dst[j + 16] = (float)((p[2 + j] >> 4) - 8) * d;
            }
        }
        break;
    case QR_GGML_Q4_1: /* {f16 d; f16 m; u8 qs[16]}: y = nibble*d + m */
        for (int64_t b = 0; b < n / 32; b++, p += 20, dst += 32) {
            float d = qr_fp16_to_f32(ld16(p)), m = qr_fp16_to_f32(ld16(p + 2));
            for (int j = 0; j < 16; j++) {
                dst[j] = (float)(p[4 + j] & 15) * d + m;
                dst[j + 16] = (float)(p[4 + j] >> 4) * d + m;
            }
        }
        break;
    case QR_GGML_Q8_0: /* {f16 d; i8 qs[32]}: y = q*d */
        for (int64_t b = 0; b < n / 32; b++, p += 34, dst += 32) {
            float d = qr_fp16_to_f32(ld16(p));
            for (int j = 0; j < 32; j++) dst[j] = (float)(int8_t)p[2 + j] * d;
        }
        break;
    default:
        break; /* unreachable for tensors of an opened file: types are checked at open */
    }
}

/* ------------------------------------------------------------- parsing */

typedef struct {
    const uint8_t *p;
    size_t size, pos;
    const char *path;
} cursor;

static int need(cursor *c, size_t n, const char *what) {
    if (n > c->size - c->pos)
        return qr_err_set("%s: truncated or corrupt GGUF: %s at offset %zu needs %zu bytes, only %zu left",
                          c->path, what, c->pos, n, c->size - c->pos);
    return QR_OK;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) {
    if (need(c, 4, what)) return QR_ERR;
    *v = ld32(c->p + c->pos);
    c->pos += 4;
    return QR_OK;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what) {
    if (need(c, 8, what)) return QR_ERR;
    *v = ld64(c->p + c->pos);
    c->pos += 8;
    return QR_OK;
}

/* A GGUF string: u64 length + bytes. Returns a view (not NUL-terminated). */
static int rd_str(cursor *c, const char **s, uint64_t *len, const char *what) {
    if (rd_u64(c, len, what)) return QR_ERR;
    if (*len > c->size - c->pos)
        return qr_err_set("%s: truncated or corrupt GGUF: %s at offset %zu claims %llu bytes, only %zu left",
                          c->path, what, c->pos, (unsigned long long)*len, c->size - c->pos);
    *s = (const char *)c->p + c->pos;
    c->pos += (size_t)*len;
    return QR_OK;
}

static char *dup_n(const char *s, size_t n) {
    char *d = qr_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* Validate and step over one value of the given type (recursing into
 * arrays). key names the value in messages. Work is bounded by the file
 * size: every element consumes at least one byte. */
static int skip_value(cursor *c, int type, int depth, const char *key) {
    char what[200];
    size_t sz = kv_scalar_size(type);
    if (sz) {
        snprintf(what, sizeof what, "%s value of key '%.100s'", kv_type_names[type], key);
        if (need(c, sz, what)) return QR_ERR;
        c->pos += sz;
        return QR_OK;
    }
    if (type == QR_GGUF_TYPE_STRING) {
        const char *s;
        uint64_t len;
        snprintf(what, sizeof what, "string value of key '%.100s'", key);
        return rd_str(c, &s, &len, what);
    }
    if (type != QR_GGUF_TYPE_ARRAY)
        return qr_err_set("%s: key '%s': unknown value type %d (expected 0..12)", c->path, key, type);
    if (depth >= GGUF_MAX_ARRAY_DEPTH)
        return qr_err_set("%s: key '%s': arrays nested deeper than %d", c->path, key, GGUF_MAX_ARRAY_DEPTH);
    uint32_t et;
    uint64_t n;
    snprintf(what, sizeof what, "array header of key '%.100s'", key);
    if (need(c, 12, what)) return QR_ERR;
    rd_u32(c, &et, what);
    rd_u64(c, &n, what);
    if (et > QR_GGUF_TYPE_F64)
        return qr_err_set("%s: key '%s': unknown array element type %u at offset %zu (expected 0..12)", c->path,
                          key, et, c->pos - 12);
    size_t left = c->size - c->pos;
    size_t esz = kv_scalar_size((int)et);
    size_t min_elem = esz ? esz : et == QR_GGUF_TYPE_STRING ? 8 : 12;
    if (n > left / min_elem)
        return qr_err_set("%s: key '%s': array of %llu %s elements at offset %zu cannot fit in the %zu bytes left",
                          c->path, key, (unsigned long long)n, kv_type_names[et], c->pos, left);
    if (esz) {
        c->pos += (size_t)n * esz;
        return QR_OK;
    }
    for (uint64_t i = 0; i < n; i++)
        if (skip_value(c, (int)et, depth + 1, key)) return QR_ERR;
    return QR_OK;
}

/* Names are sorted as (string, index) pairs: for duplicate detection at
 * open and bsearch lookups afterwards, O(n log n) even for hostile counts. */
typedef struct {
    const char *s;
    int i;
} name_idx;

static int cmp_name_idx(const void *a, const void *b) {
    return strcmp(((const name_idx *)a)->s, ((const name_idx *)b)->s);
}

/* Sort names; *dup gets the first duplicated name or NULL. Returns a
 * malloc'd index array. */
static int *sort_names(int n, const char *(*get)(const void *, int), const void *ctx, const char **dup) {
    name_idx *tmp = qr_xmalloc(sizeof *tmp * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) tmp[i] = (name_idx){get(ctx, i), i};
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_name_idx);
    *dup = NULL;
    int *idx = qr_xmalloc(sizeof *idx * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        idx[i] = tmp[i].i;
        if (i > 0 && !*dup && strcmp(tmp[i].s, tmp[i - 1].s) == 0) *dup = tmp[i].s;
    }
    free(tmp);
    return idx;
}

static const char *kv_name_get(const void *ctx, int i) { return ((const qr_gguf *)ctx)->kv[i].key; }
static const char *t_name_get(const void *ctx, int i) { return ((const qr_gguf *)ctx)->tensors[i].name; }

static int parse(qr_gguf *g) {
    cursor c = {.p = g->base, .size = g->size, .pos = 0, .path = g->path};
    uint32_t version;
    if (g->size < 4 || memcmp(g->base, "GGUF", 4) != 0)
        return qr_err_set("%s: not a GGUF file: expected magic \"GGUF\" in the first 4 bytes", g->path);
    c.pos = 4;
    if (rd_u32(&c, &version, "version")) return QR_ERR;
    if (version != 2 && version != 3) {
        if (version == 1) return qr_err_set("%s: GGUF version 1 is not supported (expected 2 or 3); re-convert the model", g->path);
        if ((version & 0xffff) == 0) return qr_err_set("%s: GGUF version field is 0x%08x: a big-endian file? (expected 2 or 3, little-endian)", g->path, version);
        return qr_err_set("%s: unsupported GGUF version %u (expected 2 or 3)", g->path, version);
    }
    g->version = (int)version;
    uint64_t n_tensors, n_kv;
    if (rd_u64(&c, &n_tensors, "tensor count") || rd_u64(&c, &n_kv, "key/value count")) return QR_ERR;
    size_t left = g->size - c.pos;
    /* a KV takes >= 8 (key length) + 1 (key) + 4 (type) + 1 bytes; a tensor
     * info >= 8 + 1 + 4 + 4 + 8 */
    if (n_kv > left / 14 || n_kv > INT_MAX)
        return qr_err_set("%s: key/value count %llu is impossible for a file of %zu bytes", g->path,
                          (unsigned long long)n_kv, g->size);
    if (n_tensors > left / 25 || n_tensors > INT_MAX)
        return qr_err_set("%s: tensor count %llu is impossible for a file of %zu bytes", g->path,
                          (unsigned long long)n_tensors, g->size);

    g->kv = qr_xcalloc((size_t)n_kv ? (size_t)n_kv : 1, sizeof *g->kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        const char *k;
        uint64_t klen;
        uint32_t type;
        char what[200];
        snprintf(what, sizeof what, "key of key/value #%llu", (unsigned long long)i);
        if (rd_str(&c, &k, &klen, what)) return QR_ERR;
        if (klen == 0) return qr_err_set("%s: key/value #%llu has an empty key", g->path, (unsigned long long)i);
        if (memchr(k, 0, (size_t)klen))
            return qr_err_set("%s: key/value #%llu: key contains a NUL byte", g->path, (unsigned long long)i);
        gguf_kv *kv = &g->kv[i];
        kv->key = dup_n(k, (size_t)klen);
        g->n_kv = (int)i + 1; /* so close() frees what exists so far */
        snprintf(what, sizeof what, "value type of key '%.100s'", kv->key);
        if (rd_u32(&c, &type, what)) return QR_ERR;
        if (type > QR_GGUF_TYPE_F64)
            return qr_err_set("%s: key '%s': unknown value type %u (expected 0..12)", g->path, kv->key, type);
        kv->type = (int)type;
        kv->voff = c.pos;
        if (type == QR_GGUF_TYPE_ARRAY) {
            /* headers are read again by skip_value, which validates them */
            snprintf(what, sizeof what, "array header of key '%.100s'", kv->key);
            if (need(&c, 12, what)) return QR_ERR;
            kv->arr_type = (int)ld32(c.p + c.pos);
            kv->arr_n = ld64(c.p + c.pos + 4);
            kv->arr_off = c.pos + 12;
        }
        if (skip_value(&c, (int)type, 0, kv->key)) return QR_ERR;
        if (type == QR_GGUF_TYPE_STRING) kv->str = dup_n((const char *)c.p + kv->voff + 8, (size_t)ld64(c.p + kv->voff));
    }
    const char *dup;
    g->kv_sorted = sort_names(g->n_kv, kv_name_get, g, &dup);
    if (dup) return qr_err_set("%s: key '%s' appears more than once", g->path, dup);

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int ai = qr_gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        if (g->kv[ai].type != QR_GGUF_TYPE_U32)
            return qr_err_set("%s: key 'general.alignment': expected type u32, found %s", g->path,
                              kv_type_names[g->kv[ai].type]);
        uint32_t a = ld32(g->base + g->kv[ai].voff);
        if (a == 0 || (a & (a - 1)))
            return qr_err_set("%s: key 'general.alignment' is %u: expected a power of two", g->path, a);
        g->alignment = a;
    }

    g->tensors = qr_xcalloc((size_t)n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    uint64_t *offs = qr_xmalloc(sizeof *offs * (size_t)(n_tensors ? n_tensors : 1));
    int rc = QR_ERR;
    for (uint64_t i = 0; i < n_tensors; i++) {
        qr_gguf_tensor *t = &g->tensors[i];
        const char *nm;
        uint64_t nlen;
        uint32_t nd, type;
        char what[200];
        snprintf(what, sizeof what, "name of tensor #%llu", (unsigned long long)i);
        if (rd_str(&c, &nm, &nlen, what)) goto out;
        if (nlen == 0) { qr_err_set("%s: tensor #%llu has an empty name", g->path, (unsigned long long)i); goto out; }
        if (memchr(nm, 0, (size_t)nlen)) { qr_err_set("%s: tensor #%llu: name contains a NUL byte", g->path, (unsigned long long)i); goto out; }
        t->name = dup_n(nm, (size_t)nlen);
        g->n_tensors = (int)i + 1;
        snprintf(what, sizeof what, "n_dims of tensor '%.100s'", t->name);
        if (rd_u32(&c, &nd, what)) goto out;
        if (nd > 4) { qr_err_set("%s: tensor '%s': n_dims is %u, expected at most 4", g->path, t->name, nd); goto out; }
        t->n_dims = (int)nd;
        int64_t ne = 1;
        for (int d = 0; d < 4; d++) t->dims[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t v;
            snprintf(what, sizeof what, "dims[%u] of tensor '%.100s'", d, t->name);
            if (rd_u64(&c, &v, what)) goto out;
            if (v == 0 || v > INT64_MAX) {
                qr_err_set("%s: tensor '%s': dims[%u] is %llu, expected 1..2^63-1", g->path, t->name, d, (unsigned long long)v);
                goto out;
            }
            t->dims[d] = (int64_t)v;
            if (__builtin_mul_overflow(ne, (int64_t)v, &ne)) {
                qr_err_set("%s: tensor '%s': element count overflows 64 bits", g->path, t->name);
                goto out;
            }
        }
        t->n_elems = ne;
        snprintf(what, sizeof what, "type of tensor '%.100s'", t->name);
        if (rd_u32(&c, &type, what)) goto out;
        const ggml_trait *tr = ggml_traits((int)type);
        if (!tr) {
            qr_err_set("%s: tensor '%s': unsupported tensor type %u (expected F32 0, F16 1, Q4_0 2, Q4_1 3, Q8_0 8 or BF16 30)",
                       g->path, t->name, type);
            goto out;
        }
        t->type = (int)type;
        if (t->dims[0] % tr->blck) {
            qr_err_set("%s: tensor '%s': row length dims[0]=%lld is not a multiple of the %s block size %d", g->path,
                       t->name, (long long)t->dims[0], tr->name, tr->blck);
            goto out;
        }
        uint64_t nb;
        if (__builtin_mul_overflow((uint64_t)(ne / tr->blck), (uint64_t)tr->size, &nb) || nb > SIZE_MAX) {
            qr_err_set("%s: tensor '%s': byte size overflows", g->path, t->name);
            goto out;
        }
        t->nbytes = (size_t)nb;
        snprintf(what, sizeof what, "data offset of tensor '%.100s'", t->name);
        if (rd_u64(&c, &offs[i], what)) goto out;
        if (offs[i] % g->alignment) {
            qr_err_set("%s: tensor '%s': data offset %llu is not a multiple of the alignment %zu", g->path, t->name,
                       (unsigned long long)offs[i], g->alignment);
            goto out;
        }
    }
    g->t_sorted = sort_names(g->n_tensors, t_name_get, g, &dup);
    if (dup) { qr_err_set("%s: tensor '%s' appears more than once", g->path, dup); goto out; }

    /* The data section starts at the next multiple of the alignment. */
    size_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
    if (n_tensors > 0 && pad > g->size - c.pos) {
        qr_err_set("%s: truncated GGUF: the data section would start at offset %zu, past the end of the file (%zu bytes)",
                   g->path, c.pos + pad, g->size);
        goto out;
    }
    g->data_off = c.pos + (pad <= g->size - c.pos ? pad : g->size - c.pos);
    size_t data_len = g->size - g->data_off;
    for (int i = 0; i < g->n_tensors; i++) {
        qr_gguf_tensor *t = &g->tensors[i];
        if (offs[i] > data_len || t->nbytes > data_len - offs[i]) {
            qr_err_set("%s: tensor '%s': data [%llu, +%zu) lies outside the data section of %zu bytes (truncated file?)",
                       g->path, t->name, (unsigned long long)offs[i], t->nbytes, data_len);
            goto out;
        }
        t->data = g->base + g->data_off + offs[i];
    }
    rc = QR_OK;
out:
    free(offs);
    return rc;
}

/* ------------------------------------------------------------ open/close */

static qr_gguf *finish_open(qr_gguf *g) {
    if (parse(g) != QR_OK) {
        qr_gguf_close(g);
        return NULL;
    }
    return g;
}

qr_gguf *qr_gguf_open_mem(const void *buf, size_t len, const char *label) {
    qr_gguf *g = qr_xcalloc(1, sizeof *g);
    g->path = qr_xstrdup(label ? label : "<memory>");
    g->base = buf;
    g->size = len;
    if (!buf || len == 0) {
        qr_err_set("%s: empty GGUF buffer (0 bytes)", g->path);
        qr_gguf_close(g);
        return NULL;
    }
    return finish_open(g);
}

qr_gguf *qr_gguf_open(const char *path) {
    if (!path) {
        qr_err_set("qr_gguf_open: path is NULL");
        return NULL;
    }
    size_t n;
    void *m = qr_map_file(path, "GGUF", &n);
    if (!m) return NULL;
    qr_gguf *g = qr_xcalloc(1, sizeof *g);
    g->path = qr_xstrdup(path);
    g->map = m;
    g->map_len = n;
    g->base = m;
    g->size = n;
    return finish_open(g);
}

void qr_gguf_close(qr_gguf *g) {
    if (!g) return;
    for (int i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str);
    }
    free(g->kv);
    free(g->kv_sorted);
    for (int i = 0; i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->tensors);
    free(g->t_sorted);
    qr_unmap_file(g->map, g->map_len);
    free(g->path);
    free(g);
}

/* ------------------------------------------------------------ accessors */

const char *qr_gguf_path(const qr_gguf *g) { return g->path; }
int qr_gguf_version(const qr_gguf *g) { return g->version; }
size_t qr_gguf_alignment(const qr_gguf *g) { return g->alignment; }
size_t qr_gguf_data_offset(const qr_gguf *g) { return g->data_off; }
int qr_gguf_n_kv(const qr_gguf *g) { return g->n_kv; }
int qr_gguf_n_tensors(const qr_gguf *g) { return g->n_tensors; }

const char *qr_gguf_key_at(const qr_gguf *g, int i) {
    return i >= 0 && i < g->n_kv ? g->kv[i].key : NULL;
}

int qr_gguf_key_type(const qr_gguf *g, int i) {
    return i >= 0 && i < g->n_kv ? g->kv[i].type : -1;
}

int qr_gguf_find_key(const qr_gguf *g, const char *key) {
    if (!key || !g->kv_sorted) return -1;
    int lo = 0, hi = g->n_kv - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(key, g->kv[g->kv_sorted[mid]].key);
        if (c == 0) return g->kv_sorted[mid];
        if (c < 0) hi = mid - 1; else lo = mid + 1;
    }
    return -1;
}

static const gguf_kv *find_kv(const qr_gguf *g, const char *key, const char *expected) {
    int i = qr_gguf_find_key(g, key);
    if (i < 0) {
        qr_err_set("%s: key '%s' not found (expected %s)", g->path, key ? key : "(null)", expected);
        return NULL;
    }
    return &g->kv[i];
}

/* Read one integer element of type t at p (validated in bounds at open). */
static int load_int(const uint8_t *p, int t, int64_t *out, uint64_t *uout, int *is_unsigned_big) {
    *is_unsigned_big = 0;
    switch (t) {
    case QR_GGUF_TYPE_U8: *out = p[0]; break;
    case QR_GGUF_TYPE_I8: *out = (int8_t)p[0]; break;
    case QR_GGUF_TYPE_BOOL: *out = p[0] != 0; break;
    case QR_GGUF_TYPE_U16: *out = ld16(p); break;
    case QR_GGUF_TYPE_I16: *out = (int16_t)ld16(p); break;
    case QR_GGUF_TYPE_U32: *out = ld32(p); break;
    case QR_GGUF_TYPE_I32: *out = (int32_t)ld32(p); break;
    case QR_GGUF_TYPE_I64: *out = (int64_t)ld64(p); break;
    case QR_GGUF_TYPE_U64: {
        uint64_t u = ld64(p);
        *uout = u;
        if (u > INT64_MAX) { *is_unsigned_big = 1; *out = INT64_MAX; }
        else *out = (int64_t)u;
        break;
    }
    default: return QR_ERR;
    }
    return QR_OK;
}

int qr_gguf_get_int(const qr_gguf *g, const char *key, int64_t *out) {
    const gguf_kv *kv = find_kv(g, key, "an integer");
    if (!kv) return QR_ERR;
    if (!kv_is_int(kv->type))
        return qr_err_set("%s: key '%s': expected an integer or bool, found %s", g->path, key, kv_type_names[kv->type]);
    uint64_t u = 0;
    int big;
    load_int(g->base + kv->voff, kv->type, out, &u, &big);
    if (big)
        return qr_err_set("%s: key '%s': u64 value %llu does not fit in int64", g->path, key, (unsigned long long)u);
    return QR_OK;
}

int qr_gguf_get_float(const qr_gguf *g, const char *key, double *out) {
    const gguf_kv *kv = find_kv(g, key, "a number");
    if (!kv) return QR_ERR;
    const uint8_t *p = g->base + kv->voff;
    if (kv->type == QR_GGUF_TYPE_F32) {
        *out = f32_from_bits(ld32(p));
        return QR_OK;
    }
    if (kv->type == QR_GGUF_TYPE_F64) {
        uint64_t b = ld64(p);
        memcpy(out, &b, 8);
        return QR_OK;
    }
    if (kv_is_int(kv->type)) {
        int64_t v = 0;
        uint64_t u = 0;
        int big;
        load_int(p, kv->type, &v, &u, &big);
        *out = big ? (double)u : (double)v;
        return QR_OK;
    }
    return qr_err_set("%s: key '%s': expected a number (f32, f64 or integer), found %s", g->path, key,
                      kv_type_names[kv->type]);
}

const char *qr_gguf_get_str(const qr_gguf *g, const char *key) {
    const gguf_kv *kv = find_kv(g, key, "a string");
    if (!kv) return NULL;
    if (kv->type != QR_GGUF_TYPE_STRING) {
        qr_err_set("%s: key '%s': expected a string, found %s", g->path, key, kv_type_names[kv->type]);
        return NULL;
    }
    return kv->str;
}

int qr_gguf_get_arr_info(const qr_gguf *g, const char *key, int *elem_type, uint64_t *n) {
    const gguf_kv *kv = find_kv(g, key, "an array");
    if (!kv) return QR_ERR;
    if (kv->type != QR_GGUF_TYPE_ARRAY)
        return qr_err_set("%s: key '%s': expected an array, found %s", g->path, key, kv_type_names[kv->type]);
    if (elem_type) *elem_type = kv->arr_type;
    if (n) *n = kv->arr_n;
    return QR_OK;
}

static const gguf_kv *find_arr(const qr_gguf *g, const char *key, const char *expected) {
    const gguf_kv *kv = find_kv(g, key, expected);
    if (!kv) return NULL;
    if (kv->type != QR_GGUF_TYPE_ARRAY) {
        qr_err_set("%s: key '%s': expected %s, found %s", g->path, key, expected, kv_type_names[kv->type]);
        return NULL;
    }
    return kv;
}

char **qr_gguf_get_str_array_lens(const qr_gguf *g, const char *key, uint64_t *n, size_t **lens) {
    const gguf_kv *kv = find_arr(g, key, "an array of strings");
    if (!kv) return NULL;
    if (kv->arr_type != QR_GGUF_TYPE_STRING) {
        qr_err_set("%s: key '%s': expected an array of strings, found an array of %s", g->path, key,
                   kv_type_names[kv->arr_type]);
        return NULL;
    }
    char **a = qr_xmalloc(sizeof *a * (size_t)(kv->arr_n ? kv->arr_n : 1));
    size_t *l = lens ? qr_xmalloc(sizeof *l * (size_t)(kv->arr_n ? kv->arr_n : 1)) : NULL;
    size_t pos = kv->arr_off;
    for (uint64_t i = 0; i < kv->arr_n; i++) { /* bounds were checked at open */
        size_t len = (size_t)ld64(g->base + pos);
        a[i] = dup_n((const char *)g->base + pos + 8, len);
        if (l) l[i] = len;
        pos += 8 + len;
    }
    if (n) *n = kv->arr_n;
    if (lens) *lens = l;
    return a;
}

char **qr_gguf_get_str_array(const qr_gguf *g, const char *key, uint64_t *n) {
    return qr_gguf_get_str_array_lens(g, key, n, NULL);
}

void qr_gguf_free_str_array(char **a, uint64_t n) {
    if (!a) return;
    for (uint64_t i = 0; i < n; i++) free(a[i]);
    free(a);
}

int32_t *qr_gguf_get_i32_array(const qr_gguf *g, const char *key, uint64_t *n) {
    const gguf_kv *kv = find_arr(g, key, "an array of integers");
    if (!kv) return NULL;
    if (!kv_is_int(kv->arr_type)) {
        qr_err_set("%s: key '%s': expected an array of integers, found an array of %s", g->path, key,
                   kv_type_names[kv->arr_type]);
        return NULL;
    }
    size_t esz = kv_scalar_size(kv->arr_type);
    int32_t *a = qr_xmalloc(sizeof *a * (size_t)(kv->arr_n ? kv->arr_n : 1));
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        int64_t v = 0;
        uint64_t u = 0;
        int big;
        load_int(g->base + kv->arr_off + i * esz, kv->arr_type, &v, &u, &big);
        if (big || v < INT32_MIN || v > INT32_MAX) {
            qr_err_set("%s: key '%s': element %llu (%s) does not fit in int32", g->path, key, (unsigned long long)i,
                       kv_type_names[kv->arr_type]);
            free(a);
            return NULL;
        }
        a[i] = (int32_t)v;
    }
    if (n) *n = kv->arr_n;
    return a;
}

float *qr_gguf_get_f32_array(const qr_gguf *g, const char *key, uint64_t *n) {
    const gguf_kv *kv = find_arr(g, key, "an array of numbers");
    if (!kv) return NULL;
    int t = kv->arr_type;
    if (t != QR_GGUF_TYPE_F32 && t != QR_GGUF_TYPE_F64 && !kv_is_int(t)) {
        qr_err_set("%s: key '%s': expected an array of numbers, found an array of %s", g->path, key,
                   kv_type_names[t]);
        return NULL;
    }
    size_t esz = kv_scalar_size(t);
    float *a = qr_xmalloc(sizeof *a * (size_t)(kv->arr_n ? kv->arr_n : 1));
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        const uint8_t *p = g->base + kv->arr_off + i * esz;
        if (t == QR_GGUF_TYPE_F32) a[i] = f32_from_bits(ld32(p));
        else if (t == QR_GGUF_TYPE_F64) { double d; uint64_t b = ld64(p); memcpy(&d, &b, 8); a[i] = (float)d; }
        else {
            int64_t v = 0;
            uint64_t u = 0;
            int big;
            load_int(p, t, &v, &u, &big);
            a[i] = big ? (float)u : (float)v;
        }
    }
    if (n) *n = kv->arr_n;
    return a;
}

const qr_gguf_tensor *qr_gguf_tensor_at(const qr_gguf *g, int i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const qr_gguf_tensor *qr_gguf_find_tensor(const qr_gguf *g, const char *name) {
    if (name && g->t_sorted) {
        int lo = 0, hi = g->n_tensors - 1;
        while (lo <= hi) {
            int mid = lo + (hi - lo) / 2;
            int c = strcmp(name, g->tensors[g->t_sorted[mid]].name);
            if (c == 0) return &g->tensors[g->t_sorted[mid]];
            if (c < 0) hi = mid - 1; else lo = mid + 1;
        }
    }
    qr_err_set("%s: tensor '%s' not found", g->path, name ? name : "(null)");
    return NULL;
}

int qr_gguf_read_f32(const qr_gguf *g, const qr_gguf_tensor *t, float *dst, int64_t n_expected) {
    if (!t || t < g->tensors || t >= g->tensors + g->n_tensors)
        return qr_err_set("%s: qr_gguf_read_f32: tensor is not one of this file's", g->path);
    if (t->n_elems != n_expected)
        return qr_err_set("%s: tensor '%s': expected %lld elements, file has %lld (dims %lld x %lld x %lld x %lld)",
                          g->path, t->name, (long long)n_expected, (long long)t->n_elems, (long long)t->dims[0],
                          (long long)t->dims[1], (long long)t->dims[2], (long long)t->dims[3]);
    qr_dequant_row(t->type, t->data, dst, t->n_elems);
    return QR_OK;
}
