/* adapters.c - a model's LoRA bank as a safetensors file (model.h:
 * qr_model_lora_save / qr_model_lora_load). */
#include "model/model.h"
#include "model/model_internal.h"
#include "safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int qr_model_lora_save(qr_model *m, const char *path) {
    if (!m->lora_mem) return qr_err_set("%s: the model has no LoRA adapters to save", path);
    int nl = qr_model_n_linears(m), S = m->lora_n_slots, r = m->lora_rank;
    int nt = nl * S * 2;
    qr_st_out *t = qr_xcalloc((size_t)nt, sizeof *t);
    char (*names)[112] = qr_xcalloc((size_t)nt, sizeof *names);
    int k = 0;
    for (int i = 0; i < nl; i++) {
        qr_linear *l = &m->lins[i];
        for (int s = 0; s < S; s++) {
            snprintf(names[k], sizeof names[k], "%s.lora.%d.A", l->name, s);
            t[k] = (qr_st_out){names[k], l->lora[s].A, 2, {r, l->in}};
            k++;
            snprintf(names[k], sizeof names[k], "%s.lora.%d.B", l->name, s);
            t[k] = (qr_st_out){names[k], l->lora[s].B, 2, {l->out, r}};
            k++;
        }
    }
    char rank[32], alpha[32], slots[32];
    snprintf(rank, sizeof rank, "%d", r);
    snprintf(alpha, sizeof alpha, "%.9g", (double)m->lora_alpha);
    snprintf(slots, sizeof slots, "%d", S);
    const char *meta[] = {"format", "qrun-lora", "rank", rank, "alpha", alpha, "slots", slots,
                          "arch", qr_model_arch_name(m), NULL};
    int rc = qr_st_write(path, t, nt, meta);
    free(t);
    free(names);
    return rc;
}

static int meta_int(const qr_st_file *f, const char *path, const char *key, int *out) {
    const char *v = qr_st_metadata(f, key);
    char *end;
    if (!v) return qr_err_set("%s: metadata '%s' missing (not a qrun adapter file?)", path, key);
    long x = strtol(v, &end, 10);
    if (*end || x <= 0 || x > 1 << 20) return qr_err_set("%s: metadata '%s' = \"%s\": expected a positive integer", path, key, v);
    *out = (int)x;
    return QR_OK;
}

int qr_model_lora_load(qr_model *m, const char *path) {
    qr_st_file *f = qr_st_open(path);
    if (!f) return QR_ERR;
    int rc = QR_ERR, rank, slots;
    if (meta_int(f, path, "rank", &rank) || meta_int(f, path, "slots", &slots)) goto done;
    const char *av = qr_st_metadata(f, "alpha");
    double alpha = av ? strtod(av, NULL) : 0;
    if (!(alpha > 0) || !isfinite(alpha) || alpha > 1e6) {
        qr_err_set("%s: metadata 'alpha' missing, or not a positive number up to 1e6", path);
        goto done;
    }
    const char *arch = qr_st_metadata(f, "arch");
    if (arch && strcmp(arch, qr_model_arch_name(m)) != 0) {
        qr_err_set("%s: adapters for a %s model, this model is %s", path, arch, qr_model_arch_name(m));
        goto done;
    }
    /* Everything about the file's shape is checked before anything is
     * allocated: the bank's size comes from rank and slots in the metadata,
     * and only a file whose tensors have exactly the bank's shapes (so
     * whose own size holds the bank) may ask for it. */
    if (m->lora_mem && (m->lora_rank != rank || m->lora_n_slots != slots)) {
        qr_err_set("%s: rank %d with %d slots, the model's bank has rank %d with %d slots", path, rank, slots,
                   m->lora_rank, m->lora_n_slots);
        goto done;
    }
    int64_t expect = (int64_t)qr_model_n_linears(m) * slots * 2;
    if (qr_st_count(f) != expect) {
        qr_err_set("%s: %d tensors, expected %lld (%d linear layers x %d slots x A,B)", path, qr_st_count(f),
                   (long long)expect, qr_model_n_linears(m), slots);
        goto done;
    }
    char name[112];
    for (int i = 0; i < qr_model_n_linears(m); i++) {
        const qr_linear *l = &m->lins[i];
        for (int s = 0; s < slots; s++)
            for (int ab = 0; ab < 2; ab++) {
                int64_t d0 = ab ? l->out : rank, d1 = ab ? rank : l->in;
                snprintf(name, sizeof name, "%s.lora.%d.%c", l->name, s, ab ? 'B' : 'A');
                const qr_st_tensor *t = qr_st_find(f, name);
                if (!t) {
                    qr_err_set("%s: tensor '%s' missing", path, name);
                    goto done;
                }
                if (t->n_dims != 2 || t->shape[0] != d0 || t->shape[1] != d1) {
                    qr_err_set("%s: tensor '%s': expected shape [%lld, %lld]", path, name, (long long)d0,
                               (long long)d1);
                    goto done;
                }
            }
    }
    /* a model without a bank gets one of the file's shape (B = 0 until the
     * values are read; a read that fails below leaves it so: identity
     * adapters) */
    if (!m->lora_mem && qr_model_lora_init(m, slots, rank, (float)alpha, 0)) goto done;
    /* read into a copy first: a bad value must not leave half-loaded adapters */
    float *tmp = qr_xmalloc((size_t)m->lora_n * sizeof(float));
    float *p = tmp;
    for (int i = 0; i < qr_model_n_linears(m); i++) {
        const qr_linear *l = &m->lins[i];
        for (int s = 0; s < slots; s++) {
            for (int ab = 0; ab < 2; ab++) {
                int64_t d0 = ab ? l->out : rank, d1 = ab ? rank : l->in;
                snprintf(name, sizeof name, "%s.lora.%d.%c", l->name, s, ab ? 'B' : 'A');
                const qr_st_tensor *t = qr_st_find(f, name); /* checked above */
                if (qr_st_read_f32(f, t, p, d0 * d1)) {
                    free(tmp);
                    goto done;
                }
                for (int64_t j = 0; j < d0 * d1; j++)
                    if (!isfinite(p[j])) {
                        qr_err_set("%s: tensor '%s' holds a non-finite value at %lld", path, name, (long long)j);
                        free(tmp);
                        goto done;
                    }
                p += d0 * d1;
            }
        }
    }
    memcpy(m->lora_mem, tmp, (size_t)m->lora_n * sizeof(float));
    free(tmp);
    m->lora_alpha = (float)alpha;
    qr_model_lora_wire(m);
    qr_model_weights_changed(m);
    rc = QR_OK;
done:
    qr_st_close(f);
    return rc;
}
