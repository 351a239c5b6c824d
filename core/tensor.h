/* tensor.h - named parameters and arenas, the two ways the engine holds
 * floats (llm.c's layout, ggml's one-free context).
 *
 * qr_params: a table of named tensors laid out in ONE buffer, their
 * gradients in a second one of the same layout (allocated on first need);
 * zeroing every gradient is one memset.
 *
 * qr_arena: a size table of {&pointer, element count, element size}
 * entries (llm.c's act_sizes), ONE allocation, every pointer carved from it
 * at QR_ARENA_ALIGN bytes (llm.c's malloc_and_point_activations), ONE free.
 * An entry of 0 elements gets NULL. Whoever owns the arena re-carves it
 * only when the sizes grow, so a step that finds it big enough allocates
 * nothing. */
#ifndef QR_TENSOR_H
#define QR_TENSOR_H

#include <stddef.h>
#include <stdint.h>

/* A named parameter tensor inside a parameter buffer. */
typedef struct {
    char name[96]; /* the checkpoint's name, e.g. "h.0.ln_1.weight" */
    float *data;
    float *grad; /* NULL unless trainable */
    int n_dims;
    int64_t shape[2];
    int64_t n;
    int trainable;
} qr_param;

typedef struct {
    qr_param *p;
    int64_t *off; /* element offset of p[i] in data (and grad) */
    int n, cap;
    int64_t n_total;     /* elements of the buffer */
    float *data, *grad;  /* the two buffers; grad NULL until qr_params_alloc_grads */
} qr_params;

/* Register a tensor (d1 ignored when n_dims is 1); returns its index.
 * Data pointers are set by qr_params_alloc. */
int qr_params_add(qr_params *t, const char *name, int n_dims, int64_t d0, int64_t d1);
/* The zeroed buffer for every registered tensor; QR_ERR without a message
 * when it cannot be had (the caller names the file and the size). */
int qr_params_alloc(qr_params *t);
/* The gradient buffer (zeroed), once; points every p[i].grad into it. */
void qr_params_alloc_grads(qr_params *t);
qr_param *qr_params_find(qr_params *t, const char *name);
void qr_params_free(qr_params *t);

#define QR_ARENA_ALIGN 64

typedef struct {
    void *pptr;    /* address of the pointer to set (a float **, int32_t **, ...) */
    int64_t count; /* elements */
    size_t size;   /* bytes per element */
} qr_arena_entry;

typedef struct {
    qr_arena_entry *e; /* the size table */
    int n, cap;
    void *mem; /* the one allocation */
    size_t bytes;
} qr_arena;

/* Append an entry to the size table: *(T **)pptr will point at count
 * elements of size bytes once the arena is allocated. */
void qr_arena_add(qr_arena *a, void *pptr, int64_t count, size_t size);
/* One allocation for the whole table (replacing any earlier one) and every
 * registered pointer pointed into it; aborts on out-of-memory like
 * qr_xmalloc. The contents are uninitialised. */
void qr_arena_alloc(qr_arena *a);
/* Free the memory and the table and set every registered pointer to NULL;
 * the arena is then empty (and may be filled again). NULL does nothing. */
void qr_arena_free(qr_arena *a);

#endif
