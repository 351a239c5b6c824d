/* ops_impl.h - the kernel bodies of ops.h, written once over a type `real`.
 *
 * Included twice by ops.c, never elsewhere. Before each inclusion ops.c
 * defines:
 *   real            float or double
 *   QR_F(name)      the public name: name (float) or name##_f64 (double)
 *   QR_GEMM         a CBLAS-style sgemm (qr_sgemm underneath) or cblas_dgemm
 *   QR_OWN_SMALL_N()  whether the matmul forward's few-row path may use its own loops
 *   QR_EXP, QR_TANH, QR_LOG, QR_SQRT, QR_COS, QR_SIN   scalar math on real
 *   QR_ROPE_FREQ(i, D, theta)  inverse frequency of pair i, as a real
 * Helpers local to this file are named through QR_F too, so the two
 * instantiations do not collide. */

/* ---------------------------------------------------------------- matmul */

/* out (N,OC) = inp (N,C) @ w (OC,C)^T + bias (OC) */
void QR_F(qr_matmul_forward)(real *out, const real *inp, const real *w, const real *bias, int N, int C, int OC) {
    real beta = 0;
    if (bias) {
        /* seed every row with the bias and let gemm accumulate onto it */
#pragma omp parallel for if ((int64_t)N * OC >= QR_PAR_MIN)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof(real));
        beta = 1;
    }
    if (N <= QR_SMALL_N && QR_OWN_SMALL_N()) {
        /* decoding: a few rows. Memory-bound: stream each row of W once and
         * dot it with every input row while it is in cache (gemm packs W
         * for a handful of rows; gemv per row reads W N times). */
#pragma omp parallel for schedule(static) if ((int64_t)OC * C >= QR_PAR_MIN)
        for (int o = 0; o < OC; o++) {
            const real *wr = w + (size_t)o * C;
            for (int n = 0; n < N; n++) {
                const real *x = inp + (size_t)n * C;
                real acc = 0;
#pragma omp simd reduction(+ : acc)
                for (int c = 0; c < C; c++) acc += wr[c] * x[c];
                /* never read out when there is no bias: it may hold NaN */
                out[(size_t)n * OC + o] = bias ? bias[o] + acc : acc;
            }
        }
        return;
    }
    QR_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1, inp, C, w, C, beta, out, OC);
}

/* dout (N,OC), inp (N,C), w (OC,C) -> dinp (N,C), dw (OC,C), dbias (OC), all += */
void QR_F(qr_matmul_backward)(real *dinp, real *dw, real *dbias, const real *dout, const real *inp, const real *w, int N, int C, int OC) {
    if (dinp) QR_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1, dout, OC, w, C, 1, dinp, C);
    if (dw) QR_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1, dout, OC, inp, C, 1, dw, C);
    if (dbias) {
        /* column sums: each thread owns a band of columns and walks the rows,
         * so the inner loop is contiguous and there is no race */
#pragma omp parallel for if ((int64_t)N * OC >= QR_PAR_MIN)
        for (int o0 = 0; o0 < OC; o0 += QR_COL_BAND) {
            int o1 = o0 + QR_COL_BAND < OC ? o0 + QR_COL_BAND : OC;
            for (int n = 0; n < N; n++) {
                const real *d = dout + (size_t)n * OC;
#pragma omp simd
                for (int o = o0; o < o1; o++) dbias[o] += d[o];
            }
        }
    }
}

/* ------------------------------------------------------------- embedding */

/* out (N,C) = wte (V,C) [ids[n]] */
void QR_F(qr_embedding_forward)(real *out, const int32_t *ids, const real *wte, int N, int C) {
#pragma omp parallel for if ((int64_t)N * C >= QR_PAR_MIN)
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * C, wte + (size_t)ids[n] * C, (size_t)C * sizeof(real));
}

/* dwte (V,C) [ids[n]] += dout (N,C) [n]; split by columns so repeated ids never race */
void QR_F(qr_embedding_backward)(real *dwte, const real *dout, const int32_t *ids, int N, int C) {
    if (!dwte) return;
#pragma omp parallel for if ((int64_t)N * C >= QR_PAR_MIN)
    for (int c0 = 0; c0 < C; c0 += QR_COL_BAND) {
        int c1 = c0 + QR_COL_BAND < C ? c0 + QR_COL_BAND : C;
        for (int n = 0; n < N; n++) {
            real *dst = dwte + (size_t)ids[n] * C;
            const real *src = dout + (size_t)n * C;
#pragma omp simd
            for (int c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
}

/* ------------------------------------------------------------- layernorm */

/* inp (N,C), w, b (C) -> out (N,C), mean, rstd (N) */
void QR_F(qr_layernorm_forward)(real *out, real *mean, real *rstd, const real *inp, const real *w, const real *b, int N, int C, real eps) {
#pragma omp parallel for if ((int64_t)N * C >= QR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        real *y = out + (size_t)n * C;
        real s = 0;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++) s += x[c];
        real m = s / C;
        real v = 0; /* two-pass variance: no cancellation */
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        real r = 1 / QR_SQRT(v / C + eps);
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * r * w[c] + b[c];
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = r;
    }
}

/* dout, inp (N,C), w (C), mean, rstd (N) -> dinp (N,C), dw, db (C), all += */
void QR_F(qr_layernorm_backward)(real *dinp, real *dw, real *db, const real *dout, const real *inp, const real *w, const real *mean, const real *rstd, int N, int C) {
    int par = (int64_t)N * C >= QR_PAR_MIN;
#pragma omp parallel if (par)
    {
        if (dinp) {
            /* with xh = (x - mean) rstd and g = dout w:
             * dx = rstd (g - mean(g) - xh mean(g xh)) */
#pragma omp for
            for (int n = 0; n < N; n++) {
                const real *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
                real *dx = dinp + (size_t)n * C;
                real m = mean[n], r = rstd[n], sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
                for (int c = 0; c < C; c++) {
                    real g = d[c] * w[c];
                    sg += g;
                    sgx += g * (x[c] - m) * r;
                }
                sg /= C;
                sgx /= C;
#pragma omp simd
                for (int c = 0; c < C; c++) dx[c] += r * (d[c] * w[c] - sg - (x[c] - m) * r * sgx);
            }
        }
        if (dw || db) {
            /* weight gradients are column sums: bands of columns per thread */
#pragma omp for
            for (int c0 = 0; c0 < C; c0 += QR_COL_BAND) {
                int c1 = c0 + QR_COL_BAND < C ? c0 + QR_COL_BAND : C;
                for (int n = 0; n < N; n++) {
                    const real *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
                    real m = mean[n], r = rstd[n];
                    if (dw) {
#pragma omp simd
                        for (int c = c0; c < c1; c++) dw[c] += d[c] * (x[c] - m) * r;
                    }
                    if (db) {
#pragma omp simd
                        for (int c = c0; c < c1; c++) db[c] += d[c];
                    }
                }
            }
        }
    }
}

/* --------------------------------------------------------------- rmsnorm */

/* inp (N,C), w (C) -> out (N,C), rstd (N) */
void QR_F(qr_rmsnorm_forward)(real *out, real *rstd, const real *inp, const real *w, int N, int C, real eps) {
#pragma omp parallel for if ((int64_t)N * C >= QR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        real *y = out + (size_t)n * C;
        real ss = 0;
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        real r = 1 / QR_SQRT(ss / C + eps);
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = (x[c] * r) * w[c];
        if (rstd) rstd[n] = r;
    }
}

/* dout, inp (N,C), w (C), rstd (N) -> dinp (N,C), dw (C), all +=
 * with xh = x rstd and g = dout w: dx = rstd (g - xh mean(g xh)) */
void QR_F(qr_rmsnorm_backward)(real *dinp, real *dw, const real *dout, const real *inp, const real *w, const real *rstd, int N, int C) {
    int par = (int64_t)N * C >= QR_PAR_MIN;
#pragma omp parallel if (par)
    {
        if (dinp) {
#pragma omp for
            for (int n = 0; n < N; n++) {
                const real *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
                real *dx = dinp + (size_t)n * C;
                real r = rstd[n], sgx = 0;
#pragma omp simd reduction(+ : sgx)
                for (int c = 0; c < C; c++) sgx += d[c] * w[c] * x[c];
                sgx *= r / C; /* mean(g xh) */
#pragma omp simd
                for (int c = 0; c < C; c++) dx[c] += r * (d[c] * w[c] - x[c] * r * sgx);
            }
        }
        if (dw) {
#pragma omp for
            for (int c0 = 0; c0 < C; c0 += QR_COL_BAND) {
                int c1 = c0 + QR_COL_BAND < C ? c0 + QR_COL_BAND : C;
                for (int n = 0; n < N; n++) {
                    const real *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
                    real r = rstd[n];
#pragma omp simd
                    for (int c = c0; c < c1; c++) dw[c] += d[c] * (x[c] * r);
                }
            }
        }
    }
}

/* ------------------------------------------------------ gelu and swiglu */

#define QR_GELU_S ((real)0.7978845608028654) /* sqrt(2/pi) */
#define QR_GELU_A ((real)0.044715)

/* out, inp (n) */
void QR_F(qr_gelu_forward)(real *out, const real *inp, int64_t n) {
#pragma omp parallel for simd if (n >= QR_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        real x = inp[i];
        real t = QR_TANH(QR_GELU_S * (x + QR_GELU_A * x * x * x));
        out[i] = (real)0.5 * x * (1 + t);
    }
}

/* inp, dout (n) -> dinp (n) += */
void QR_F(qr_gelu_backward)(real *dinp, const real *inp, const real *dout, int64_t n) {
    if (!dinp) return;
#pragma omp parallel for simd if (n >= QR_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        real x = inp[i];
        real t = QR_TANH(QR_GELU_S * (x + QR_GELU_A * x * x * x));
        real du = QR_GELU_S * (1 + 3 * QR_GELU_A * x * x);
        dinp[i] += dout[i] * ((real)0.5 * (1 + t) + (real)0.5 * x * (1 - t * t) * du);
    }
}

/* out, gate, up (n) */
void QR_F(qr_swiglu_forward)(real *out, const real *gate, const real *up, int64_t n) {
#pragma omp parallel for simd if (n >= QR_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        real g = gate[i];
        real sg = 1 / (1 + QR_EXP(-g));
        out[i] = g * sg * up[i];
    }
}

/* dout, gate, up (n) -> dgate, dup (n) += ; silu'(g) = s (1 + g (1 - s)) */
void QR_F(qr_swiglu_backward)(real *dgate, real *dup, const real *dout, const real *gate, const real *up, int64_t n) {
    if (!dgate && !dup) return;
#pragma omp parallel for simd if (n >= QR_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        real g = gate[i];
        real sg = 1 / (1 + QR_EXP(-g));
        if (dup) dup[i] += dout[i] * g * sg;
        if (dgate) dgate[i] += dout[i] * up[i] * sg * (1 + g * (1 - sg));
    }
}

/* ------------------------------------------------------------------ rope */

/* x (N,H,D) rotated in place by angle sign * pos[n] * freq(i) on pairs (i, i+D/2) */
static void QR_F(rope_rotate)(real *x, const int32_t *pos, int N, int H, int D, real theta, real sign) {
    int half = D / 2;
#pragma omp parallel for if ((int64_t)N * H * D >= QR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        for (int i = 0; i < half; i++) {
            /* angle as HF computes it: pos times the inverse frequency, in real */
            real ang = (real)pos[n] * QR_ROPE_FREQ(i, D, theta);
            real c = QR_COS(ang), s = sign * QR_SIN(ang);
            for (int h = 0; h < H; h++) {
                real *xh = x + ((size_t)n * H + h) * D;
                real a = xh[i], b = xh[i + half];
                xh[i] = a * c - b * s;
                xh[i + half] = b * c + a * s;
            }
        }
    }
}

void QR_F(qr_rope_forward)(real *x, const int32_t *pos, int N, int H, int D, real theta) {
    QR_F(rope_rotate)(x, pos, N, H, D, theta, 1);
}

/* the rotation is orthogonal: its gradient is the inverse rotation */
void QR_F(qr_rope_backward)(real *dx, const int32_t *pos, int N, int H, int D, real theta) {
    if (dx) QR_F(rope_rotate)(dx, pos, N, H, D, theta, -1);
}

/* ------------------------------------------------------------- attention */

/* Each (batch, head) pair is one task: the score tile for head h of batch b
 * is S = Q_h K_g^T (T,T) with Q_h the (T,HD) slice of q at stride NH*HD and
 * K_g the slice of k at stride NKV*HD, so gemm reads q, k, v in place.
 * Tasks run in parallel across OpenMP threads with a single-threaded BLAS
 * inside (blas_serial_begin/end): 2-thread gemms on 64x256x64 tiles spend
 * much of their time in fork/join (GPT-2 shapes B4 T256 NH12 on 2 cores:
 * 8 ms forward+backward this way, 15 ms with heads in sequence). */

/* q (B,T,NH,HD), k, v (B,T,NKV,HD) -> out (B,T,NH,HD), att (B,NH,T,T) */
void QR_F(qr_attention_forward)(real *out, real *att, const real *q, const real *k, const real *v, int B, int T, int NH, int NKV, int HD) {
    const int ldq = NH * HD, ldk = NKV * HD, grp = NH / NKV;
    const real scale = 1 / QR_SQRT((real)HD);
    int outer = blas_serial_begin(B * NH);
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (outer)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            int g = h / grp;
            const real *qh = q + (size_t)b * T * ldq + (size_t)h * HD;
            const real *kg = k + (size_t)b * T * ldk + (size_t)g * HD;
            const real *vg = v + (size_t)b * T * ldk + (size_t)g * HD;
            real *oh = out + (size_t)b * T * ldq + (size_t)h * HD;
            real *A = att + ((size_t)b * NH + h) * T * T;
            for (int r0 = 0; r0 < T; r0 += QR_ATT_BLOCK) {
                int r1 = r0 + QR_ATT_BLOCK < T ? r0 + QR_ATT_BLOCK : T;
                /* scores of rows [r0,r1) against keys [0,r1) */
                QR_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, HD, scale, qh + (size_t)r0 * ldq, ldq, kg, ldk, 0,
                        A + (size_t)r0 * T, T);
                for (int t = r0; t < r1; t++) {
                    real *a = A + (size_t)t * T;
                    real mx = a[0];
#pragma omp simd reduction(max : mx)
                    for (int j = 1; j <= t; j++) mx = a[j] > mx ? a[j] : mx;
                    real sum = 0;
#pragma omp simd reduction(+ : sum)
                    for (int j = 0; j <= t; j++) {
                        a[j] = QR_EXP(a[j] - mx);
                        sum += a[j];
                    }
                    real inv = 1 / sum;
#pragma omp simd
                    for (int j = 0; j <= t; j++) a[j] *= inv;
                    memset(a + t + 1, 0, (size_t)(T - t - 1) * sizeof(real));
                }
                QR_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, HD, r1, 1, A + (size_t)r0 * T, T, vg, ldk, 0,
                        oh + (size_t)r0 * ldq, ldq);
            }
        }
    }
    blas_serial_end(outer);
}

/* dout (B,T,NH,HD), att (B,NH,T,T), q, k, v -> dq (B,T,NH,HD), dk, dv (B,T,NKV,HD), all +=.
 * Two phases: per (b,h) the score gradient dS (into scratch) and dq; then per
 * (b,g) dk and dv, summing the heads of group g, so no two threads write the
 * same kv rows. */
void QR_F(qr_attention_backward)(real *dq, real *dk, real *dv, real *scratch, const real *dout, const real *att, const real *q, const real *k, const real *v, int B, int T, int NH, int NKV, int HD) {
    const int ldq = NH * HD, ldk = NKV * HD, grp = NH / NKV;
    const real scale = 1 / QR_SQRT((real)HD);
    if (!dq && !dk && !dv) return;
    int need_ds = dq || dk;
    int outer = blas_serial_begin(B * NH);
    if (need_ds) {
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (outer)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                int g = h / grp;
                const real *kg = k + (size_t)b * T * ldk + (size_t)g * HD;
                const real *vg = v + (size_t)b * T * ldk + (size_t)g * HD;
                const real *doh = dout + (size_t)b * T * ldq + (size_t)h * HD;
                const real *A = att + ((size_t)b * NH + h) * T * T;
                real *dS = scratch + ((size_t)b * NH + h) * T * T;
                for (int r0 = 0; r0 < T; r0 += QR_ATT_BLOCK) {
                    int r1 = r0 + QR_ATT_BLOCK < T ? r0 + QR_ATT_BLOCK : T;
                    /* dA = dO V^T on rows [r0,r1), keys [0,r1) */
                    QR_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, HD, 1, doh + (size_t)r0 * ldq, ldq, vg, ldk, 0,
                            dS + (size_t)r0 * T, T);
                    /* softmax backward: dS = A (dA - sum_j A dA); zero above the
                     * diagonal up to r1, the columns the gemms below read */
                    for (int t = r0; t < r1; t++) {
                        const real *a = A + (size_t)t * T;
                        real *ds = dS + (size_t)t * T;
                        real dot = 0;
#pragma omp simd reduction(+ : dot)
                        for (int j = 0; j <= t; j++) dot += a[j] * ds[j];
#pragma omp simd
                        for (int j = 0; j <= t; j++) ds[j] = a[j] * (ds[j] - dot);
                        for (int j = t + 1; j < r1; j++) ds[j] = 0;
                    }
                    if (dq) {
                        real *dqh = dq + (size_t)b * T * ldq + (size_t)h * HD;
                        QR_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, HD, r1, scale, dS + (size_t)r0 * T, T, kg, ldk, 1,
                                dqh + (size_t)r0 * ldq, ldq);
                    }
                }
            }
        }
    }
    if (dk || dv) {
        /* key rows [c0,c1) are attended by query rows [c0,T): dK += scale dS^T Q,
         * dV += A^T dO over that triangle-trimmed range */
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (outer)
        for (int b = 0; b < B; b++) {
            for (int g = 0; g < NKV; g++) {
                real *dkg = dk ? dk + (size_t)b * T * ldk + (size_t)g * HD : NULL;
                real *dvg = dv ? dv + (size_t)b * T * ldk + (size_t)g * HD : NULL;
                for (int h = g * grp; h < (g + 1) * grp; h++) {
                    const real *qh = q + (size_t)b * T * ldq + (size_t)h * HD;
                    const real *doh = dout + (size_t)b * T * ldq + (size_t)h * HD;
                    const real *A = att + ((size_t)b * NH + h) * T * T;
                    const real *dS = scratch + ((size_t)b * NH + h) * T * T;
                    for (int c0 = 0; c0 < T; c0 += QR_ATT_BLOCK) {
                        int c1 = c0 + QR_ATT_BLOCK < T ? c0 + QR_ATT_BLOCK : T;
                        size_t off = (size_t)c0 * T + c0;
                        if (dvg)
                            QR_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, c1 - c0, HD, T - c0, 1, A + off, T, doh + (size_t)c0 * ldq,
                                    ldq, 1, dvg + (size_t)c0 * ldk, ldk);
                        if (dkg)
                            QR_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, c1 - c0, HD, T - c0, scale, dS + off, T, qh + (size_t)c0 * ldq,
                                    ldq, 1, dkg + (size_t)c0 * ldk, ldk);
                    }
                }
            }
        }
    }
    blas_serial_end(outer);
}

/* --------------------------------------------------------- cross-entropy */

/* logits (N,V), targets (N) -> losses (N) or NULL, probs (N,V) or NULL; returns the mean loss */
real QR_F(qr_crossentropy_forward)(real *losses, real *probs, const real *logits, const int32_t *targets, int N, int V) {
    double total = 0;
    int valid = 0;
#pragma omp parallel for reduction(+ : total, valid) if ((int64_t)N * V >= QR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const real *z = logits + (size_t)n * V;
        real mx = z[0];
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < V; j++) mx = z[j] > mx ? z[j] : mx;
        real sum = 0;
        if (probs) {
            real *p = probs + (size_t)n * V;
#pragma omp simd reduction(+ : sum)
            for (int j = 0; j < V; j++) {
                p[j] = QR_EXP(z[j] - mx);
                sum += p[j];
            }
            real inv = 1 / sum;
#pragma omp simd
            for (int j = 0; j < V; j++) p[j] *= inv;
        } else {
#pragma omp simd reduction(+ : sum)
            for (int j = 0; j < V; j++) sum += QR_EXP(z[j] - mx);
        }
        int t = targets[n];
        /* -log p[t] = logsumexp(z) - z[t], exact even when p[t] underflows */
        real l = t < 0 ? 0 : mx + QR_LOG(sum) - z[t];
        if (losses) losses[n] = l;
        if (t >= 0) {
            total += l;
            valid++;
        }
    }
    return valid ? (real)(total / valid) : 0;
}

/* probs (N,V), targets (N) -> dlogits (N,V) += scale (probs - onehot) */
void QR_F(qr_crossentropy_backward)(real *dlogits, const real *probs, const int32_t *targets, real scale, int N, int V) {
    if (!dlogits) return;
#pragma omp parallel for if ((int64_t)N * V >= QR_PAR_MIN)
    for (int n = 0; n < N; n++) {
        int t = targets[n];
        if (t < 0) continue;
        const real *p = probs + (size_t)n * V;
        real *d = dlogits + (size_t)n * V;
#pragma omp simd
        for (int j = 0; j < V; j++) d[j] += scale * p[j];
        d[t] -= scale;
    }
}

/* -------------------------------------------------------------- residual */

void QR_F(qr_residual_forward)(real *out, const real *a, const real *b, int64_t n) {
#pragma omp parallel for simd if (n >= QR_PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

#undef QR_GELU_S
#undef QR_GELU_A
