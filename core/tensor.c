/* tensor.c - named parameters and arenas (see tensor.h). */
#include "tensor.h"
#include "qr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int qr_params_add(qr_params *t, const char *name, int n_dims, int64_t d0, int64_t d1) {
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->p = qr_xrealloc(t->p, (size_t)t->cap * sizeof *t->p);
        t->off = qr_xrealloc(t->off, (size_t)t->cap * sizeof *t->off);
    }
    qr_param *p = &t->p[t->n];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->n_dims = n_dims;
    p->shape[0] = d0;
    p->shape[1] = n_dims > 1 ? d1 : 1;
    p->n = d0 * (n_dims > 1 ? d1 : 1);
    t->off[t->n] = t->n_total;
    t->n_total += p->n;
    return t->n++;
}

int qr_params_alloc(qr_params *t) {
    t->data = calloc((size_t)t->n_total, sizeof(float));
    if (!t->data) return QR_ERR;
    for (int i = 0; i < t->n; i++) t->p[i].data = t->data + t->off[i];
    return QR_OK;
}

void qr_params_alloc_grads(qr_params *t) {
    if (t->grad) return;
    t->grad = qr_xcalloc((size_t)t->n_total, sizeof(float));
    for (int i = 0; i < t->n; i++) t->p[i].grad = t->grad + t->off[i];
}

qr_param *qr_params_find(qr_params *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->p[i].name, name) == 0) return &t->p[i];
    return NULL;
}

void qr_params_free(qr_params *t) {
    if (!t) return;
    free(t->data);
    free(t->grad);
    free(t->p);
    free(t->off);
    memset(t, 0, sizeof *t);
}

static size_t round_up(size_t n) { return (n + QR_ARENA_ALIGN - 1) / QR_ARENA_ALIGN * QR_ARENA_ALIGN; }

void qr_arena_add(qr_arena *a, void *pptr, int64_t count, size_t size) {
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 32;
        a->e = qr_xrealloc(a->e, (size_t)a->cap * sizeof *a->e);
    }
    a->e[a->n++] = (qr_arena_entry){pptr, count, size};
}

void qr_arena_alloc(qr_arena *a) {
    free(a->mem);
    size_t total = 0;
    for (int i = 0; i < a->n; i++) total += round_up((size_t)a->e[i].count * a->e[i].size);
    a->bytes = total;
    a->mem = total ? aligned_alloc(QR_ARENA_ALIGN, total) : NULL;
    if (total && !a->mem) {
        fprintf(stderr, "qr_arena_alloc: out of memory for %zu bytes (%d tensors)\n", total, a->n);
        abort();
    }
    char *p = a->mem;
    for (int i = 0; i < a->n; i++) {
        size_t b = (size_t)a->e[i].count * a->e[i].size;
        *(void **)a->e[i].pptr = b ? p : NULL;
        p += round_up(b);
    }
}

void qr_arena_free(qr_arena *a) {
    if (!a) return;
    for (int i = 0; i < a->n; i++) *(void **)a->e[i].pptr = NULL;
    free(a->mem);
    free(a->e);
    memset(a, 0, sizeof *a);
}
