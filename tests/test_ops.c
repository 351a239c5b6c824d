/* test_ops.c - every backward kernel against central finite differences of
 * its double-precision forward, every float kernel against its double twin,
 * NULL gradients skipped without changing the others, AdamW against a
 * hand-computed example and the cosine schedule at its endpoints.
 *
 * Tolerances (errors are max |a - b| / max(1, max |reference|)):
 *   FD_TOL  1e-6  analytic double gradient vs central differences (h 1e-5)
 *   F32_TOL 2e-5  float kernel vs double kernel, outputs and gradients
 * Every comparison prints its max difference. */
#include "harness.h"
#include "ops/ops.h"
#include "train/optim.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD_TOL 1e-6
#define FD_H 1e-5
#define F32_TOL 2e-5

/* ------------------------------------------------------------ utilities */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static double *drand_new(int64_t n, double s) {
    double *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = s * urand();
    return x;
}
static double *dzero_new(int64_t n) { return calloc((size_t)n, sizeof(double)); }
static double *dcopy_new(const double *x, int64_t n) {
    double *y = malloc((size_t)n * sizeof *y);
    memcpy(y, x, (size_t)n * sizeof *y);
    return y;
}
static float *f32_new(const double *x, int64_t n) {
    float *y = malloc((size_t)n * sizeof *y);
    for (int64_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}
static float *fzero_new(int64_t n) { return calloc((size_t)n, sizeof(float)); }
static double dot(const double *a, const double *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static double scale_of(const double *ref, int64_t n) {
    double m = 1;
    for (int64_t i = 0; i < n; i++) m = fabs(ref[i]) > m ? fabs(ref[i]) : m;
    return m;
}
/* max |a - ref| / max(1, max |ref|) */
static double rel_diff(const double *a, const double *ref, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fabs(a[i] - ref[i]) > d ? fabs(a[i] - ref[i]) : d;
    return d / scale_of(ref, n);
}
static double rel_diff_f(const float *a, const double *ref, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fabs(a[i] - ref[i]) > d ? fabs(a[i] - ref[i]) : d;
    return d / scale_of(ref, n);
}
/* g - g0: the part a kernel accumulated on top of the random start g0 */
static void sub_inplace(double *g, const double *g0, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] -= g0[i];
}

typedef double (*loss_fn)(void *ctx);

/* Central differences of loss() w.r.t. every element of x (perturbed in
 * place) against the analytic gradient g; prints and checks. */
static void check_fd(const char *op, const char *what, loss_fn loss, void *ctx, double *x, int64_t n, const double *g) {
    double *num = malloc((size_t)n * sizeof *num);
    /* one thread: thousands of tiny forward calls would otherwise be timed by
     * OpenMP barriers (slow when the machine is shared); the threaded paths
     * are checked against the single-threaded ones in check_threads */
    int nthr = omp_get_max_threads();
    omp_set_num_threads(1);
    for (int64_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + FD_H;
        double lp = loss(ctx);
        x[i] = x0 - FD_H;
        double lm = loss(ctx);
        x[i] = x0;
        num[i] = (lp - lm) / (2 * FD_H);
    }
    omp_set_num_threads(nthr);
    double err = rel_diff(g, num, n);
    printf("  %-22s %-6s vs finite differences: maxdiff %.2e\n", op, what, err);
    char d[160];
    snprintf(d, sizeof d, "%s: %s matches finite differences within %.0e", op, what, FD_TOL);
    test_cond(d, err <= FD_TOL);
    free(num);
}

static void check_f32(const char *op, const char *what, const float *f, const double *ref, int64_t n) {
    double err = rel_diff_f(f, ref, n);
    printf("  %-22s %-6s float vs double:       maxdiff %.2e\n", op, what, err);
    char d[160];
    snprintf(d, sizeof d, "%s: float %s matches double within %.0e", op, what, F32_TOL);
    test_cond(d, err <= F32_TOL);
}

static void check_same(const char *op, const char *what, const double *a, const double *b, int64_t n) {
    double err = rel_diff(a, b, n);
    char d[160];
    snprintf(d, sizeof d, "%s: %s unchanged when other gradients are NULL", op, what);
    test_cond(d, err <= 1e-12);
}

/* --------------------------------------------------------------- matmul */

typedef struct {
    double *out, *inp, *w, *bias, *R;
    int N, C, OC;
} mm_ctx;

static double mm_loss(void *p) {
    mm_ctx *c = p;
    qr_matmul_forward_f64(c->out, c->inp, c->w, c->bias, c->N, c->C, c->OC);
    return dot(c->out, c->R, (int64_t)c->N * c->OC);
}

static void test_matmul(int N, int C, int OC, int fd) {
    char op[64];
    snprintf(op, sizeof op, "matmul %dx%dx%d", N, C, OC);
    int64_t ni = (int64_t)N * C, nw = (int64_t)OC * C, no = (int64_t)N * OC;
    mm_ctx c = {dzero_new(no), drand_new(ni, 1), drand_new(nw, 1), drand_new(OC, 1), drand_new(no, 1), N, C, OC};
    double *g0i = drand_new(ni, 1), *g0w = drand_new(nw, 1), *g0b = drand_new(OC, 1);
    double *gi = dcopy_new(g0i, ni), *gw = dcopy_new(g0w, nw), *gb = dcopy_new(g0b, OC);
    qr_matmul_backward_f64(gi, gw, gb, c.R, c.inp, c.w, N, C, OC);
    sub_inplace(gi, g0i, ni);
    sub_inplace(gw, g0w, nw);
    sub_inplace(gb, g0b, OC);
    if (fd) {
        check_fd(op, "dinp", mm_loss, &c, c.inp, ni, gi);
        check_fd(op, "dw", mm_loss, &c, c.w, nw, gw);
        check_fd(op, "dbias", mm_loss, &c, c.bias, OC, gb);
    }
    /* NULL skipping: each gradient alone equals its share of the full call */
    double *si = dzero_new(ni), *sw = dzero_new(nw), *sb = dzero_new(OC);
    qr_matmul_backward_f64(si, NULL, NULL, c.R, c.inp, c.w, N, C, OC);
    qr_matmul_backward_f64(NULL, sw, NULL, c.R, c.inp, c.w, N, C, OC);
    qr_matmul_backward_f64(NULL, NULL, sb, c.R, c.inp, c.w, N, C, OC);
    check_same(op, "dinp", si, gi, ni);
    check_same(op, "dw", sw, gw, nw);
    check_same(op, "dbias", sb, gb, OC);
    /* bias NULL is the plain product */
    double *nob = dzero_new(no);
    qr_matmul_forward_f64(nob, c.inp, c.w, NULL, N, C, OC);
    qr_matmul_forward_f64(c.out, c.inp, c.w, c.bias, N, C, OC);
    double err = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) err = fmax(err, fabs(c.out[(size_t)n * OC + o] - nob[(size_t)n * OC + o] - c.bias[o]));
    test_cond("matmul: bias NULL gives out - bias", err < 1e-12);
    /* float */
    float *fi = f32_new(c.inp, ni), *fw = f32_new(c.w, nw), *fb = f32_new(c.bias, OC), *fR = f32_new(c.R, no);
    float *fo = fzero_new(no), *fgi = fzero_new(ni), *fgw = fzero_new(nw), *fgb = fzero_new(OC);
    qr_matmul_forward(fo, fi, fw, fb, N, C, OC);
    qr_matmul_backward(fgi, fgw, fgb, fR, fi, fw, N, C, OC);
    check_f32(op, "out", fo, c.out, no);
    check_f32(op, "dinp", fgi, gi, ni);
    check_f32(op, "dw", fgw, gw, nw);
    check_f32(op, "dbias", fgb, gb, OC);
    double *all[] = {c.out, c.inp, c.w, c.bias, c.R, g0i, g0w, g0b, gi, gw, gb, si, sw, sb, nob};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    float *allf[] = {fi, fw, fb, fR, fo, fgi, fgw, fgb};
    for (size_t i = 0; i < sizeof allf / sizeof *allf; i++) free(allf[i]);
}

/* ------------------------------------------------------------ embedding */

typedef struct {
    double *out, *wte, *R;
    const int32_t *ids;
    int N, C;
} emb_ctx;

static double emb_loss(void *p) {
    emb_ctx *c = p;
    qr_embedding_forward_f64(c->out, c->ids, c->wte, c->N, c->C);
    return dot(c->out, c->R, (int64_t)c->N * c->C);
}

static void test_embedding(int N, int V, int C, int fd) {
    char op[64];
    snprintf(op, sizeof op, "embedding %dx%d V%d", N, C, V);
    int32_t *ids = malloc((size_t)N * sizeof *ids);
    for (int n = 0; n < N; n++) ids[n] = (n * 7 + 3) % V; /* repeats when N > V */
    ids[N - 1] = ids[0];
    emb_ctx c = {dzero_new((int64_t)N * C), drand_new((int64_t)V * C, 1), drand_new((int64_t)N * C, 1), ids, N, C};
    double *g0 = drand_new((int64_t)V * C, 1), *g = dcopy_new(g0, (int64_t)V * C);
    qr_embedding_backward_f64(g, c.R, ids, N, C);
    sub_inplace(g, g0, (int64_t)V * C);
    if (fd) check_fd(op, "dwte", emb_loss, &c, c.wte, (int64_t)V * C, g);
    qr_embedding_backward_f64(NULL, c.R, ids, N, C); /* must not crash */
    emb_loss(&c);
    float *fw = f32_new(c.wte, (int64_t)V * C), *fR = f32_new(c.R, (int64_t)N * C);
    float *fo = fzero_new((int64_t)N * C), *fg = fzero_new((int64_t)V * C);
    qr_embedding_forward(fo, ids, fw, N, C);
    qr_embedding_backward(fg, fR, ids, N, C);
    check_f32(op, "out", fo, c.out, (int64_t)N * C);
    check_f32(op, "dwte", fg, g, (int64_t)V * C);
    free(ids), free(c.out), free(c.wte), free(c.R), free(g0), free(g);
    free(fw), free(fR), free(fo), free(fg);
}

/* ------------------------------------------------------------ layernorm */

typedef struct {
    double *out, *mean, *rstd, *inp, *w, *b, *R;
    int N, C, rms;
} norm_ctx;

static double norm_loss(void *p) {
    norm_ctx *c = p;
    if (c->rms)
        qr_rmsnorm_forward_f64(c->out, c->rstd, c->inp, c->w, c->N, c->C, 1e-5);
    else
        qr_layernorm_forward_f64(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C, 1e-5);
    return dot(c->out, c->R, (int64_t)c->N * c->C);
}

static void test_norm(int rms, int N, int C, int fd) {
    char op[64];
    snprintf(op, sizeof op, "%s %dx%d", rms ? "rmsnorm" : "layernorm", N, C);
    int64_t n = (int64_t)N * C;
    norm_ctx c = {dzero_new(n), dzero_new(N), dzero_new(N), drand_new(n, 2), drand_new(C, 1), drand_new(C, 1), drand_new(n, 1), N, C, rms};
    for (int64_t i = 0; i < n; i++) c.inp[i] += 0.5; /* nonzero mean */
    norm_loss(&c);
    double *g0i = drand_new(n, 1), *g0w = drand_new(C, 1), *g0b = drand_new(C, 1);
    double *gi = dcopy_new(g0i, n), *gw = dcopy_new(g0w, C), *gb = dcopy_new(g0b, C);
    if (rms)
        qr_rmsnorm_backward_f64(gi, gw, c.R, c.inp, c.w, c.rstd, N, C);
    else
        qr_layernorm_backward_f64(gi, gw, gb, c.R, c.inp, c.w, c.mean, c.rstd, N, C);
    sub_inplace(gi, g0i, n);
    sub_inplace(gw, g0w, C);
    sub_inplace(gb, g0b, C);
    double *si = dzero_new(n), *sw = dzero_new(C), *sb = dzero_new(C);
    if (rms) {
        qr_rmsnorm_backward_f64(si, NULL, c.R, c.inp, c.w, c.rstd, N, C);
        qr_rmsnorm_backward_f64(NULL, sw, c.R, c.inp, c.w, c.rstd, N, C);
    } else {
        qr_layernorm_backward_f64(si, NULL, NULL, c.R, c.inp, c.w, c.mean, c.rstd, N, C);
        qr_layernorm_backward_f64(NULL, sw, NULL, c.R, c.inp, c.w, c.mean, c.rstd, N, C);
        qr_layernorm_backward_f64(NULL, NULL, sb, c.R, c.inp, c.w, c.mean, c.rstd, N, C);
        check_same(op, "db", sb, gb, C);
    }
    check_same(op, "dinp", si, gi, n);
    check_same(op, "dw", sw, gw, C);
    if (fd) {
        check_fd(op, "dinp", norm_loss, &c, c.inp, n, gi);
        check_fd(op, "dw", norm_loss, &c, c.w, C, gw);
        if (!rms) check_fd(op, "db", norm_loss, &c, c.b, C, gb);
    }
    norm_loss(&c);
    float *fi = f32_new(c.inp, n), *fw = f32_new(c.w, C), *fb = f32_new(c.b, C), *fR = f32_new(c.R, n);
    float *fo = fzero_new(n), *fm = fzero_new(N), *fr = fzero_new(N), *fgi = fzero_new(n), *fgw = fzero_new(C), *fgb = fzero_new(C);
    if (rms) {
        qr_rmsnorm_forward(fo, fr, fi, fw, N, C, 1e-5f);
        qr_rmsnorm_backward(fgi, fgw, fR, fi, fw, fr, N, C);
    } else {
        qr_layernorm_forward(fo, fm, fr, fi, fw, fb, N, C, 1e-5f);
        qr_layernorm_backward(fgi, fgw, fgb, fR, fi, fw, fm, fr, N, C);
        check_f32(op, "db", fgb, gb, C);
    }
    check_f32(op, "out", fo, c.out, n);
    check_f32(op, "dinp", fgi, gi, n);
    check_f32(op, "dw", fgw, gw, C);
    /* forward with NULL caches (inference) gives the same output */
    if (rms)
        qr_rmsnorm_forward(fo, NULL, fi, fw, N, C, 1e-5f);
    else
        qr_layernorm_forward(fo, NULL, NULL, fi, fw, fb, N, C, 1e-5f);
    check_f32(op, "out/nc", fo, c.out, n);
    double *all[] = {c.out, c.mean, c.rstd, c.inp, c.w, c.b, c.R, g0i, g0w, g0b, gi, gw, gb, si, sw, sb};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    float *allf[] = {fi, fw, fb, fR, fo, fm, fr, fgi, fgw, fgb};
    for (size_t i = 0; i < sizeof allf / sizeof *allf; i++) free(allf[i]);
}

/* ------------------------------------------------------- gelu / swiglu */

typedef struct {
    double *out, *a, *b, *R;
    int64_t n;
    int swiglu;
} ew_ctx;

static double ew_loss(void *p) {
    ew_ctx *c = p;
    if (c->swiglu)
        qr_swiglu_forward_f64(c->out, c->a, c->b, c->n);
    else
        qr_gelu_forward_f64(c->out, c->a, c->n);
    return dot(c->out, c->R, c->n);
}

static void test_elementwise(int swiglu, int64_t n, int fd) {
    char op[64];
    snprintf(op, sizeof op, "%s n=%lld", swiglu ? "swiglu" : "gelu", (long long)n);
    ew_ctx c = {dzero_new(n), drand_new(n, 4), drand_new(n, 2), drand_new(n, 1), n, swiglu};
    double *g0a = drand_new(n, 1), *g0b = drand_new(n, 1), *ga = dcopy_new(g0a, n), *gb = dcopy_new(g0b, n);
    if (swiglu)
        qr_swiglu_backward_f64(ga, gb, c.R, c.a, c.b, n);
    else
        qr_gelu_backward_f64(ga, c.a, c.R, n);
    sub_inplace(ga, g0a, n);
    sub_inplace(gb, g0b, n);
    if (fd) {
        check_fd(op, swiglu ? "dgate" : "dinp", ew_loss, &c, c.a, n, ga);
        if (swiglu) check_fd(op, "dup", ew_loss, &c, c.b, n, gb);
    }
    if (swiglu) {
        double *sa = dzero_new(n), *sb = dzero_new(n);
        qr_swiglu_backward_f64(sa, NULL, c.R, c.a, c.b, n);
        qr_swiglu_backward_f64(NULL, sb, c.R, c.a, c.b, n);
        check_same(op, "dgate", sa, ga, n);
        check_same(op, "dup", sb, gb, n);
        free(sa), free(sb);
    }
    ew_loss(&c);
    float *fa = f32_new(c.a, n), *fb = f32_new(c.b, n), *fR = f32_new(c.R, n);
    float *fo = fzero_new(n), *fga = fzero_new(n), *fgb = fzero_new(n);
    if (swiglu) {
        qr_swiglu_forward(fo, fa, fb, n);
        qr_swiglu_backward(fga, fgb, fR, fa, fb, n);
        check_f32(op, "dup", fgb, gb, n);
    } else {
        qr_gelu_forward(fo, fa, n);
        qr_gelu_backward(fga, fa, fR, n);
    }
    check_f32(op, "out", fo, c.out, n);
    check_f32(op, swiglu ? "dgate" : "dinp", fga, ga, n);
    double *all[] = {c.out, c.a, c.b, c.R, g0a, g0b, ga, gb};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    free(fa), free(fb), free(fR), free(fo), free(fga), free(fgb);
}

/* ----------------------------------------------------------------- rope */

typedef struct {
    double *x, *y, *R;
    const int32_t *pos;
    int N, H, D;
} rope_ctx;

static double rope_loss(void *p) {
    rope_ctx *c = p;
    int64_t n = (int64_t)c->N * c->H * c->D;
    memcpy(c->y, c->x, (size_t)n * sizeof(double));
    qr_rope_forward_f64(c->y, c->pos, c->N, c->H, c->D, 10000.0);
    return dot(c->y, c->R, n);
}

static void test_rope(int N, int H, int D) {
    char op[64];
    snprintf(op, sizeof op, "rope %dx%dx%d", N, H, D);
    int64_t n = (int64_t)N * H * D;
    int32_t *pos = malloc((size_t)N * sizeof *pos);
    for (int i = 0; i < N; i++) pos[i] = (i * 37 + 5) % 200; /* not 0..N-1 */
    rope_ctx c = {drand_new(n, 1), dzero_new(n), drand_new(n, 1), pos, N, H, D};
    double *g = dcopy_new(c.R, n);
    qr_rope_backward_f64(g, pos, N, H, D, 10000.0);
    check_fd(op, "dx", rope_loss, &c, c.x, n, g);
    /* HF rotate_half by hand for one element: row 1, head 0, pair i = 1 */
    rope_loss(&c);
    double ang = pos[1] * pow(10000.0, -2.0 * 1 / D);
    const double *x = c.x + (size_t)1 * H * D;
    double want = x[1] * cos(ang) - x[1 + D / 2] * sin(ang);
    test_cond("rope: rotate_half pair (i, i+D/2)", fabs(c.y[(size_t)1 * H * D + 1] - want) < 1e-12);
    float *fx = f32_new(c.x, n), *fg = f32_new(c.R, n);
    qr_rope_forward(fx, pos, N, H, D, 10000.0f);
    qr_rope_backward(fg, pos, N, H, D, 10000.0f);
    check_f32(op, "out", fx, c.y, n);
    check_f32(op, "dx", fg, g, n);
    free(pos), free(c.x), free(c.y), free(c.R), free(g), free(fx), free(fg);
}

/* ------------------------------------------------------------ attention */

typedef struct {
    double *out, *att, *q, *k, *v, *R;
    int B, T, NH, NKV, HD;
} att_ctx;

static double att_loss(void *p) {
    att_ctx *c = p;
    qr_attention_forward_f64(c->out, c->att, c->q, c->k, c->v, c->B, c->T, c->NH, c->NKV, c->HD);
    return dot(c->out, c->R, (int64_t)c->B * c->T * c->NH * c->HD);
}

static void test_attention(int B, int T, int NH, int NKV, int HD, int fd) {
    char op[64];
    snprintf(op, sizeof op, "attention %d,%d,%d/%d,%d", B, T, NH, NKV, HD);
    int64_t nq = (int64_t)B * T * NH * HD, nk = (int64_t)B * T * NKV * HD, na = (int64_t)B * NH * T * T;
    att_ctx c = {dzero_new(nq), dzero_new(na), drand_new(nq, 2), drand_new(nk, 2), drand_new(nk, 1), drand_new(nq, 1), B, T, NH, NKV, HD};
    att_loss(&c);
    /* the cache: rows sum to one, nothing above the diagonal */
    double worst = 0;
    for (int64_t r = 0; r < (int64_t)B * NH * T; r++) {
        int t = (int)(r % T);
        const double *a = c.att + r * T;
        double s = 0;
        for (int j = 0; j < T; j++) {
            s += a[j];
            if (j > t) worst = fmax(worst, fabs(a[j]));
        }
        worst = fmax(worst, fabs(s - 1));
    }
    test_cond("attention: att rows are causal distributions", worst < 1e-12);
    double *scratch = dzero_new((int64_t)qr_attention_scratch_size(B, T, NH));
    double *g0q = drand_new(nq, 1), *g0k = drand_new(nk, 1), *g0v = drand_new(nk, 1);
    double *gq = dcopy_new(g0q, nq), *gk = dcopy_new(g0k, nk), *gv = dcopy_new(g0v, nk);
    qr_attention_backward_f64(gq, gk, gv, scratch, c.R, c.att, c.q, c.k, c.v, B, T, NH, NKV, HD);
    sub_inplace(gq, g0q, nq);
    sub_inplace(gk, g0k, nk);
    sub_inplace(gv, g0v, nk);
    double *sq = dzero_new(nq), *sk = dzero_new(nk), *sv = dzero_new(nk);
    qr_attention_backward_f64(sq, NULL, NULL, scratch, c.R, c.att, c.q, c.k, c.v, B, T, NH, NKV, HD);
    qr_attention_backward_f64(NULL, sk, NULL, scratch, c.R, c.att, c.q, c.k, c.v, B, T, NH, NKV, HD);
    qr_attention_backward_f64(NULL, NULL, sv, scratch, c.R, c.att, c.q, c.k, c.v, B, T, NH, NKV, HD);
    qr_attention_backward_f64(NULL, NULL, NULL, scratch, c.R, c.att, c.q, c.k, c.v, B, T, NH, NKV, HD);
    check_same(op, "dq", sq, gq, nq);
    check_same(op, "dk", sk, gk, nk);
    check_same(op, "dv", sv, gv, nk);
    {
        /* the task-parallel path (OpenMP over heads, serial BLAS) and the
         * sequential one (one OpenMP thread) agree */
        int nthr = omp_get_max_threads();
        omp_set_num_threads(1);
        double *o1 = dzero_new(nq), *a1 = dzero_new(na), *q1 = dzero_new(nq), *k1 = dzero_new(nk), *v1 = dzero_new(nk);
        qr_attention_forward_f64(o1, a1, c.q, c.k, c.v, B, T, NH, NKV, HD);
        qr_attention_backward_f64(q1, k1, v1, scratch, c.R, a1, c.q, c.k, c.v, B, T, NH, NKV, HD);
        omp_set_num_threads(nthr);
        double e = fmax(fmax(rel_diff(o1, c.out, nq), rel_diff(a1, c.att, na)), fmax(rel_diff(q1, gq, nq), fmax(rel_diff(k1, gk, nk), rel_diff(v1, gv, nk))));
        printf("  %-22s 1 vs %d threads: maxdiff %.2e\n", op, nthr, e);
        test_cond("attention: one thread and many agree", e < 1e-12);
        free(o1), free(a1), free(q1), free(k1), free(v1);
    }
    if (fd) {
        check_fd(op, "dq", att_loss, &c, c.q, nq, gq);
        check_fd(op, "dk", att_loss, &c, c.k, nk, gk);
        check_fd(op, "dv", att_loss, &c, c.v, nk, gv);
        att_loss(&c);
    }
    float *fq = f32_new(c.q, nq), *fk = f32_new(c.k, nk), *fv = f32_new(c.v, nk), *fR = f32_new(c.R, nq);
    float *fo = fzero_new(nq), *fa = fzero_new(na), *fs = fzero_new((int64_t)qr_attention_scratch_size(B, T, NH));
    float *fgq = fzero_new(nq), *fgk = fzero_new(nk), *fgv = fzero_new(nk);
    qr_attention_forward(fo, fa, fq, fk, fv, B, T, NH, NKV, HD);
    qr_attention_backward(fgq, fgk, fgv, fs, fR, fa, fq, fk, fv, B, T, NH, NKV, HD);
    check_f32(op, "out", fo, c.out, nq);
    check_f32(op, "att", fa, c.att, na);
    check_f32(op, "dq", fgq, gq, nq);
    check_f32(op, "dk", fgk, gk, nk);
    check_f32(op, "dv", fgv, gv, nk);
    double *all[] = {c.out, c.att, c.q, c.k, c.v, c.R, scratch, g0q, g0k, g0v, gq, gk, gv, sq, sk, sv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    float *allf[] = {fq, fk, fv, fR, fo, fa, fs, fgq, fgk, fgv};
    for (size_t i = 0; i < sizeof allf / sizeof *allf; i++) free(allf[i]);
}

/* -------------------------------------------------------- cross-entropy */

typedef struct {
    double *losses, *probs, *logits;
    const int32_t *targets;
    int N, V;
} ce_ctx;

static double ce_loss(void *p) {
    ce_ctx *c = p;
    return qr_crossentropy_forward_f64(c->losses, c->probs, c->logits, c->targets, c->N, c->V);
}

static void test_crossentropy(int N, int V, int fd) {
    char op[64];
    snprintf(op, sizeof op, "crossentropy %dx%d", N, V);
    int64_t n = (int64_t)N * V;
    int32_t *tg = malloc((size_t)N * sizeof *tg);
    int valid = 0;
    for (int i = 0; i < N; i++) {
        tg[i] = i % 3 == 1 ? -100 : (i * 13 + 1) % V; /* every third row ignored */
        valid += tg[i] >= 0;
    }
    ce_ctx c = {dzero_new(N), dzero_new(n), drand_new(n, 3), tg, N, V};
    double mean = ce_loss(&c);
    /* per-row losses by hand */
    double worst = 0, sum = 0;
    for (int i = 0; i < N; i++) {
        double want = 0;
        if (tg[i] >= 0) {
            double s = 0;
            for (int j = 0; j < V; j++) s += exp(c.logits[(size_t)i * V + j]);
            want = log(s) - c.logits[(size_t)i * V + tg[i]];
        }
        sum += want;
        worst = fmax(worst, fabs(c.losses[i] - want));
    }
    test_cond("crossentropy: per-row losses, 0 on ignored rows", worst < 1e-12);
    test_cond("crossentropy: mean over non-ignored rows", fabs(mean - sum / valid) < 1e-12);
    double *g0 = drand_new(n, 1), *g = dcopy_new(g0, n);
    qr_crossentropy_backward_f64(g, c.probs, tg, 1.0 / valid, N, V);
    sub_inplace(g, g0, n);
    double ign = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < V && tg[i] < 0; j++) ign = fmax(ign, fabs(g[(size_t)i * V + j]));
    test_cond("crossentropy: ignored rows get no gradient", ign == 0);
    if (fd) check_fd(op, "dlogit", ce_loss, &c, c.logits, n, g);
    ce_loss(&c);
    /* probs NULL (evaluation) gives the same losses */
    double *l2 = dzero_new(N);
    double mean2 = qr_crossentropy_forward_f64(l2, NULL, c.logits, tg, N, V);
    test_cond("crossentropy: probs NULL gives the same loss", fabs(mean2 - mean) < 1e-12 && rel_diff(l2, c.losses, N) < 1e-12);
    int32_t *none = malloc((size_t)N * sizeof *none);
    for (int i = 0; i < N; i++) none[i] = -1;
    test_cond("crossentropy: all rows ignored gives 0", qr_crossentropy_forward_f64(l2, c.probs, c.logits, none, N, V) == 0);
    ce_loss(&c);
    float *fz = f32_new(c.logits, n), *fp = fzero_new(n), *fl = fzero_new(N), *fg = fzero_new(n);
    float fmean = qr_crossentropy_forward(fl, fp, fz, tg, N, V);
    qr_crossentropy_backward(fg, fp, tg, 1.0f / valid, N, V);
    double dm = fabs(fmean - mean) / fmax(1, fabs(mean));
    printf("  %-22s %-6s float vs double:       maxdiff %.2e\n", op, "mean", dm);
    test_cond("crossentropy: float mean loss matches double", dm <= F32_TOL);
    check_f32(op, "loss", fl, c.losses, N);
    check_f32(op, "probs", fp, c.probs, n);
    check_f32(op, "dlogit", fg, g, n);
    free(tg), free(none), free(c.losses), free(c.probs), free(c.logits), free(g0), free(g), free(l2);
    free(fz), free(fp), free(fl), free(fg);
}

/* ------------------------------------------------------------- residual */

static void test_residual(void) {
    int64_t n = 100000;
    double *a = drand_new(n, 1), *b = drand_new(n, 1), *o = dzero_new(n);
    qr_residual_forward_f64(o, a, b, n);
    float *fa = f32_new(a, n), *fb = f32_new(b, n), *fo = fzero_new(n);
    qr_residual_forward(fo, fa, fb, n);
    double err = 0;
    for (int64_t i = 0; i < n; i++) err = fmax(err, fabs(o[i] - (a[i] + b[i])));
    test_cond("residual: out = a + b", err == 0);
    check_f32("residual", "out", fo, o, n);
    qr_residual_forward(fa, fa, fb, n); /* in place */
    check_f32("residual", "alias", fa, o, n);
    free(a), free(b), free(o), free(fa), free(fb), free(fo);
}

/* ---------------------------------------------------------------- optim */

static void test_adamw(void) {
    /* p = {1, -2}; g1 = {0.5, 0}, g2 = {-0.25, 0}; lr 0.1, b1 0.9, b2 0.999,
     * eps 1e-8, wd 0.01. By hand, element 0:
     *  t=1: m = 0.05, v = 0.00025, mhat = 0.5, vhat = 0.25,
     *       p = 1 - 0.1 (0.5/(0.5+1e-8) + 0.01) = 0.898999998
     *  t=2: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225,
     *       mhat = 0.02/0.19 = 0.1052632, vhat = 0.00031225/0.001999 = 0.1562031,
     *       p = 0.899 - 0.1 (0.1052632/0.3952254 + 0.00899) = 0.8714673
     * element 1 has zero gradient, so only the decay acts:
     *       -2 (1 - 0.001) = -1.998, then -1.998 (0.999) = -1.996002 */
    float p[2] = {1.0f, -2.0f}, m[2] = {0}, v[2] = {0};
    float g1[2] = {0.5f, 0.0f}, g2[2] = {-0.25f, 0.0f};
    qr_adamw_cfg cfg = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    qr_adamw_step(p, g1, m, v, 2, &cfg, 1);
    double d1 = fmax(fabs(p[0] - 0.898999998), fabs(p[1] - -1.998));
    qr_adamw_step(p, g2, m, v, 2, &cfg, 2);
    double d2 = fmax(fabs(p[0] - 0.8714673), fabs(p[1] - -1.996002));
    d2 = fmax(d2, fmax(fabs(m[0] - 0.02), fabs(v[0] - 0.00031225)));
    printf("  adamw two steps vs hand values: maxdiff %.2e, %.2e (tol 1e-6)\n", d1, d2);
    test_cond("adamw: step 1 matches the hand computation", d1 < 1e-6);
    test_cond("adamw: step 2 matches the hand computation", d2 < 1e-6);

    /* a longer array takes the vector path: three steps against the same
     * formula in double */
    enum { NA = 37 };
    float pf[NA], mf[NA] = {0}, vf[NA] = {0}, gf[NA];
    double pd[NA], md[NA] = {0}, vd[NA] = {0};
    for (int i = 0; i < NA; i++) pd[i] = pf[i] = (float)urand();
    for (int t = 1; t <= 3; t++) {
        for (int i = 0; i < NA; i++) gf[i] = (float)urand();
        qr_adamw_step(pf, gf, mf, vf, NA, &cfg, t);
        for (int i = 0; i < NA; i++) {
            md[i] = 0.9 * md[i] + 0.1 * gf[i];
            vd[i] = 0.999 * vd[i] + 0.001 * gf[i] * gf[i];
            double mh = md[i] / (1 - pow(0.9, t)), vh = vd[i] / (1 - pow(0.999, t));
            pd[i] -= 0.1 * (mh / (sqrt(vh) + 1e-8) + 0.01 * pd[i]);
        }
    }
    double d3 = 0;
    for (int i = 0; i < NA; i++) d3 = fmax(d3, fabs(pf[i] - pd[i]));
    printf("  adamw %d params, 3 steps vs double formula: maxdiff %.2e (tol 1e-5)\n", NA, d3);
    test_cond("adamw: vector path matches the formula", d3 < 1e-5);

    float gn[2] = {3.0f, 4.0f};
    test_cond("grad_norm: |(3,4)| = 5", fabs(qr_grad_norm(gn, 2) - 5.0) < 1e-12);
    qr_scale(gn, 2, 0.5f);
    test_cond("scale: (3,4) * 0.5", gn[0] == 1.5f && gn[1] == 2.0f);

    /* warm-up 10 of 100 steps, lr 1e-3 -> 1e-4 */
    float lr0 = qr_lr_cosine(0, 10, 100, 1e-3f, 1e-4f), lr9 = qr_lr_cosine(9, 10, 100, 1e-3f, 1e-4f);
    float lr10 = qr_lr_cosine(10, 10, 100, 1e-3f, 1e-4f), lr55 = qr_lr_cosine(55, 10, 100, 1e-3f, 1e-4f);
    float lr100 = qr_lr_cosine(100, 10, 100, 1e-3f, 1e-4f), lr500 = qr_lr_cosine(500, 10, 100, 1e-3f, 1e-4f);
    test_cond("lr_cosine: first warm-up step is lr_max/warmup", fabs(lr0 - 1e-4) < 1e-9);
    test_cond("lr_cosine: warm-up ends at lr_max", fabs(lr9 - 1e-3) < 1e-9 && fabs(lr10 - 1e-3) < 1e-9);
    test_cond("lr_cosine: halfway is the midpoint", fabs(lr55 - 5.5e-4) < 1e-9);
    test_cond("lr_cosine: ends at lr_min", fabs(lr100 - 1e-4) < 1e-9 && fabs(lr500 - 1e-4) < 1e-9);
    test_cond("lr_cosine: no warm-up starts at lr_max", fabs(qr_lr_cosine(0, 0, 100, 1e-3f, 0) - 1e-3) < 1e-9);
}

int main(void) {
    printf("finite differences (double, h=%.0e, tol %.0e); float vs double (tol %.0e)\n", FD_H, FD_TOL, F32_TOL);
    test_matmul(5, 7, 6, 1);
    test_matmul(67, 300, 130, 0); /* parallel bias band path, several bands */
    test_embedding(9, 5, 6, 1);
    test_embedding(300, 50, 200, 0);
    test_norm(0, 5, 9, 1);
    test_norm(0, 64, 768, 0);
    test_norm(1, 5, 9, 1);
    test_norm(1, 64, 576, 0);
    test_elementwise(0, 50, 1);
    test_elementwise(0, 100003, 0);
    test_elementwise(1, 50, 1);
    test_elementwise(1, 100003, 0);
    test_rope(5, 3, 8);
    test_attention(2, 7, 4, 2, 8, 1);  /* GQA, T not a power of two */
    test_attention(1, 5, 3, 3, 4, 1);  /* plain multi-head */
    test_attention(2, 6, 4, 1, 4, 1);  /* multi-query */
    test_attention(1, 70, 2, 1, 4, 1); /* two causal row blocks */
    test_attention(2, 150, 4, 2, 16, 0);
    test_crossentropy(7, 11, 1);
    test_crossentropy(40, 5000, 0);
    test_residual();
    test_adamw();
    return test_report();
}
