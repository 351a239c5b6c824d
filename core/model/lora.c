/* lora.c - quantizers, the LoRA bank and precision configurations of a
 * model (see model.h). The adapter files are io/adapters.c. */
#include "model.h"
#include "model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_lin(const qr_model *m) { return m->cfg.n_layer * m->n_lin_per_layer; }

/* Always drops the cached Qw(W), as model.h says: comparing pointers is not
 * enough (a freed quantizer's address can come back as a new instance with
 * other options), and calling this again with the same quantizers is how a
 * caller that wrote base weights through the C API makes them take effect. */
void qr_model_set_quantizers(qr_model *m, struct qr_instance *wq, struct qr_instance *aq) {
    m->wq = wq;
    m->aq = aq;
    qr_model_weights_changed(m);
    for (int i = 0; i < n_lin(m); i++) {
        qr_linear *l = &m->lins[i];
        qr_linear_invalidate(l);
        l->wq = wq;
        l->aq = aq;
    }
}

int qr_model_set_weight_group(qr_model *m, int group) {
    if (group < 0 || group == 1)
        return qr_err_set("quantize: weight group %d: expected a group size >= 2 (input channels per scale), "
                          "or 0 for one scale per output channel",
                          group);
    for (int i = 0; i < n_lin(m); i++) m->lins[i].wgroup_default = group;
    qr_model_weights_changed(m);
    return QR_OK;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Point each linear's bank at its slice of the buffers (model_internal.h). */
void qr_model_lora_wire(qr_model *m) {
    float *p = m->lora_mem, *g = m->lora_grad_mem;
    int r = m->lora_rank;
    for (int i = 0; i < n_lin(m); i++) {
        qr_linear *l = &m->lins[i];
        l->lora = &m->lora_slots[(size_t)i * m->lora_n_slots];
        l->n_lora = m->lora_n_slots;
        l->rank = r;
        l->lora_scale = m->lora_alpha / (float)r;
        if (l->active >= l->n_lora) l->active = -1;
        for (int s = 0; s < m->lora_n_slots; s++) {
            qr_lora *a = &l->lora[s];
            int64_t na = (int64_t)r * l->in, nb = (int64_t)l->out * r;
            a->A = p;
            a->B = p + na;
            a->dA = g ? g : NULL;
            a->dB = g ? g + na : NULL;
            p += na + nb;
            if (g) g += na + nb;
        }
    }
}

int qr_model_lora_init(qr_model *m, int n_slots, int rank, float alpha, uint64_t seed) {
    if (n_slots <= 0 || n_slots > 64 || rank <= 0 || rank > 4096 || !(alpha > 0) || !isfinite(alpha))
        return qr_err_set("lora: slots %d, rank %d, alpha %g: expected 1..64 slots, rank 1..4096, alpha > 0", n_slots,
                          rank, (double)alpha);
    int had_grads = m->lora_grad_mem != NULL;
    free(m->lora_mem);
    free(m->lora_grad_mem);
    free(m->lora_slots);
    m->lora_grad_mem = NULL;
    int64_t n = 0;
    for (int i = 0; i < n_lin(m); i++) n += (int64_t)n_slots * rank * (m->lins[i].in + m->lins[i].out);
    m->lora_n = n;
    m->lora_n_slots = n_slots;
    m->lora_rank = rank;
    m->lora_alpha = alpha;
    m->lora_mem = qr_xcalloc((size_t)n, sizeof(float));
    m->lora_slots = qr_xcalloc((size_t)n_lin(m) * n_slots, sizeof(qr_lora));
    if (had_grads) m->lora_grad_mem = qr_xcalloc((size_t)n, sizeof(float));
    qr_model_lora_wire(m);
    qr_model_weights_changed(m);
    uint64_t s = seed;
    for (int i = 0; i < n_lin(m); i++) {
        qr_linear *l = &m->lins[i];
        double bound = 1.0 / sqrt((double)l->in);
        for (int k = 0; k < n_slots; k++) {
            float *A = l->lora[k].A;
            for (int64_t j = 0; j < (int64_t)rank * l->in; j++) {
                double u = (double)(splitmix(&s) >> 11) * (1.0 / 9007199254740992.0);
                A[j] = (float)((2.0 * u - 1.0) * bound);
            }
        }
        l->active = -1;
    }
    return QR_OK;
}

int qr_model_lora_slots(const qr_model *m) { return m->lora_n_slots; }
int qr_model_lora_rank(const qr_model *m) { return m->lora_rank; }
float qr_model_lora_alpha(const qr_model *m) { return m->lora_alpha; }

void qr_model_lora_trainable(qr_model *m, int on) {
    if (!m->lora_mem) return;
    if (on && !m->lora_grad_mem) m->lora_grad_mem = qr_xcalloc((size_t)m->lora_n, sizeof(float));
    if (!on) {
        free(m->lora_grad_mem);
        m->lora_grad_mem = NULL;
    }
    qr_model_lora_wire(m);
}

float *qr_model_lora_params(qr_model *m, int64_t *n) {
    if (n) *n = m->lora_n;
    return m->lora_mem;
}
float *qr_model_lora_grads(qr_model *m, int64_t *n) {
    if (n) *n = m->lora_n;
    return m->lora_grad_mem;
}

qr_lora *qr_model_lora(qr_model *m, int i, int s) {
    if (!m->lora_slots || i < 0 || i >= n_lin(m) || s < 0 || s >= m->lora_n_slots) return NULL;
    return &m->lins[i].lora[s];
}

static int bits_ok(int b) { return b == 32 || (b >= 2 && b <= 16); }

int qr_model_set_precision(qr_model *m, const qr_layer_prec *p, int n) {
    if (n != n_lin(m))
        return qr_err_set("precision: %d layer settings given, the model has %d linear layers", n, n_lin(m));
    for (int i = 0; i < n; i++) {
        const char *name = m->lins[i].name;
        if (!bits_ok(p[i].wbits) || !bits_ok(p[i].abits))
            return qr_err_set("precision: layer %s: w%da%d: bit-widths must be 2..16 or 32", name, p[i].wbits,
                              p[i].abits);
        if (p[i].wbits < 32 && !m->wq)
            return qr_err_set("precision: layer %s: weight at %d bits but no weight quantizer is set "
                              "(model:quantize{...} first)",
                              name, p[i].wbits);
        if (p[i].abits < 32 && !m->aq)
            return qr_err_set("precision: layer %s: input at %d bits but no input quantizer is set "
                              "(model:quantize{...} first)",
                              name, p[i].abits);
        if (p[i].wgroup < 0 || p[i].wgroup == 1)
            return qr_err_set("precision: layer %s: weight group %d: expected a group size >= 2 (input channels "
                              "per scale), or 0 for the model's default",
                              name, p[i].wgroup);
        if (p[i].adapter < -1 || p[i].adapter >= m->lora_n_slots)
            return qr_err_set("precision: layer %s: adapter slot %d, the bank has %d slot(s)%s", name, p[i].adapter,
                              m->lora_n_slots, m->lora_n_slots ? "" : " (model:lora{...} first)");
    }
    for (int i = 0; i < n; i++) {
        m->lins[i].wbits = p[i].wbits;
        m->lins[i].abits = p[i].abits;
        m->lins[i].wgroup = p[i].wgroup;
        m->lins[i].active = p[i].adapter;
    }
    return QR_OK;
}
