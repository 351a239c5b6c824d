/* test_schedules.c - the schedule plugins cyclic, progressive and random
 * (plugins/schedule/), loaded through the registry (core/plugin.h):
 *   sched-1  cyclic mode=bits: the bit-width of the configuration chosen at
 *            every step equals numpy's (the official CPT code's formula,
 *            np.rint half to even) in tests/fixtures/cpt_schedule.jsonl
 *            (scripts/ref/make_schedule_fixtures.py), half-way steps
 *            included; the set holds decoys (fp, w4a8, a mixed 4..6
 *            configuration, a second w6a6) that are never chosen, and the
 *            first of two equal widths is
 *   sched-2  cyclic mode=configs: the position along the BitOPs order
 *            equals numpy's; the order is ascending BitOPs, ties by index
 *   sched-3  progressive: stage k of n covers [floor(kT/n), floor((k+1)T/n)),
 *            up and down, for several (T, n)
 *   sched-4  random: every draw a valid index; the same seed gives the same
 *            draws (in any call order: no state); other seeds differ;
 *            uniform by a chi-square test at p = 0.001
 *   sched-5  bad options and sets are refused with a message naming them,
 *            at create or at the first select (before any update)
 *   sched-6  in the trainer (a tiny GPT-2, one LoRA slot per
 *            configuration): under each schedule, after every step exactly
 *            the adapters of the configurations the schedule names have a
 *            gradient and moved; the trainer ran what the schedule selects;
 *            a run killed after step 5 and resumed from its run directory
 *            ends bit-identical to the uninterrupted run */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "tiny_train.h"
#include "model/model.h"
#include "plugin.h"
#include "train/trainer.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXTURE "tests/fixtures/cpt_schedule.jsonl"

static int contains(const char *msg, const char *part) {
    if (msg && strstr(msg, part)) return 1;
    fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", msg ? msg : "(null)", part);
    return 0;
}

/* ---- configurations as a schedule sees them ---- */

typedef struct {
    char name[16];
    qr_schedule_config c;
} test_cfg;

static qr_schedule_config mkcfg(const char *name, int wmin, int wmax, int amin, int amax, double bitops) {
    return (qr_schedule_config){.struct_size = sizeof(qr_schedule_config), .name = name, .n_layers = 4,
                                .wbits_mean = (wmin + wmax) / 2.0, .abits_mean = (amin + amax) / 2.0,
                                .wbits_min = wmin, .wbits_max = wmax, .abits_min = amin, .abits_max = amax,
                                .bitops = bitops};
}

/* A uniform wBaB (B = 32: "fp"). */
static void uniform(test_cfg *t, int b) {
    if (b == 32)
        snprintf(t->name, sizeof t->name, "fp");
    else
        snprintf(t->name, sizeof t->name, "w%da%d", b, b);
    t->c = mkcfg(t->name, b, b, b, b, b * b / 1024.0);
}

typedef struct {
    qr_instance *q;
    const qr_schedule_ops *ops;
    void *self;
} sched;

static sched open_sched(const char *name, const char *const *kv, int n_kv) {
    sched s = {qr_instance_new(QR_KIND_SCHEDULE, name, kv, n_kv), NULL, NULL};
    if (s.q) {
        s.ops = qr_instance_ops(s.q);
        s.self = qr_instance_self(s.q);
    }
    return s;
}

/* One select through select_cfg when the plugin has it, else select. */
static int pick(const sched *s, int t, int T, int n, const qr_schedule_config *const *cfgs, int *out) {
    return QR_SCHEDULE_HAS(s->ops, select_cfg) ? s->ops->select_cfg(s->self, t, T, n, cfgs, out)
                                               : s->ops->select(s->self, t, T, n, out);
}

/* ---- the fixture ---- */

typedef struct {
    char mode[16];
    int T, b_min, b_max, n_cycles, period;
    int *bits, *ties, n_ties, *alt, n_alt;
} cpt_case;

static int *int_array(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    int *v = malloc(sizeof(int) * (size_t)(*n > 0 ? *n : 1)), k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) v[k++] = (int)e->valuedouble;
    return v;
}

static int load_fixture(cpt_case **out) {
    size_t len;
    char *txt = qr_read_file(FIXTURE, &len);
    if (!txt) return 0;
    int n = 0;
    cpt_case *cs = NULL;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        if (!j) continue;
        cs = realloc(cs, sizeof *cs * (size_t)(n + 1));
        cpt_case *c = &cs[n++];
        snprintf(c->mode, sizeof c->mode, "%s", cJSON_GetObjectItem(j, "mode")->valuestring);
        c->T = cJSON_GetObjectItem(j, "T")->valueint;
        c->b_min = cJSON_GetObjectItem(j, "b_min")->valueint;
        c->b_max = cJSON_GetObjectItem(j, "b_max")->valueint;
        c->n_cycles = cJSON_GetObjectItem(j, "n_cycles")->valueint;
        c->period = cJSON_GetObjectItem(j, "period")->valueint;
        int nb;
        c->bits = int_array(cJSON_GetObjectItem(j, "bits"), &nb);
        c->ties = int_array(cJSON_GetObjectItem(j, "ties"), &c->n_ties);
        c->alt = int_array(cJSON_GetObjectItem(j, "alt_differs"), &c->n_alt);
        if (nb != c->T) c->T = -1; /* malformed: fails below */
        cJSON_Delete(j);
    }
    free(txt);
    *out = cs;
    return n;
}

static void kvs(char buf[4][16], const char *kv[8], int b_min, int b_max, int n_cycles) {
    snprintf(buf[0], 16, "%d", b_min);
    snprintf(buf[1], 16, "%d", b_max);
    snprintf(buf[2], 16, "%d", n_cycles);
    kv[0] = "b_min", kv[1] = buf[0], kv[2] = "b_max", kv[3] = buf[1], kv[4] = "n_cycles", kv[5] = buf[2];
}

static int is_tie(const cpt_case *c, int t) {
    for (int k = 0; k < c->n_ties; k++)
        if (c->ties[k] == t) return 1;
    return 0;
}

/* ---- sched-1: cyclic mode=bits against numpy ---- */
static void test_cyclic_bits(const cpt_case *cs, int n_cases) {
    long steps = 0, ties = 0, ties_even = 0, alt = 0, cases = 0;
    int maxdiff = 0, decoy = 0, bad_rc = 0;
    for (int k = 0; k < n_cases; k++) {
        const cpt_case *c = &cs[k];
        if (strcmp(c->mode, "bits") != 0) continue;
        cases++;
        test_cond("sched-1 fixture case well formed", c->T > 0);
        if (c->T <= 0) continue;
        /* fp and decoys first, then the widths from the top down: no index equals a width */
        test_cfg tc[24];
        int n = 0;
        uniform(&tc[n++], 32);
        snprintf(tc[n].name, 16, "w4a8"), tc[n].c = mkcfg(tc[n].name, 4, 4, 8, 8, 32 / 1024.0), n++;
        snprintf(tc[n].name, 16, "mix4-6"), tc[n].c = mkcfg(tc[n].name, 4, 6, 4, 6, 25 / 1024.0), n++;
        const int first_real = n;
        for (int b = c->b_max; b >= c->b_min; b--) uniform(&tc[n++], b);
        int dup6 = -1;
        if (c->b_min <= 6 && c->b_max >= 6) uniform(&tc[dup6 = n++], 6); /* a second w6a6: never chosen */
        const qr_schedule_config *p[24];
        for (int i = 0; i < n; i++) p[i] = &tc[i].c;
        char buf[4][16];
        const char *kv[8];
        kvs(buf, kv, c->b_min, c->b_max, c->n_cycles);
        sched s = open_sched("cyclic", kv, 3);
        test_cond("sched-1 cyclic created", s.q != NULL);
        if (!s.q) {
            fprintf(stderr, "  %s\n", qr_err_msg());
            continue;
        }
        for (int t = 0; t < c->T; t++) {
            int out[24] = {0};
            int rc = pick(&s, t, c->T, n, p, out);
            if (rc != 1 || out[0] < 0 || out[0] >= n) {
                if (!bad_rc++) fprintf(stderr, "  T=%d t=%d: rc %d: %s\n", c->T, t, rc, qr_err_msg());
                continue;
            }
            decoy += out[0] < first_real || out[0] == dup6;
            int b = p[out[0]]->wbits_min, d = abs(b - c->bits[t]);
            if (d > maxdiff) maxdiff = d;
            steps++;
            if (is_tie(c, t)) {
                ties++;
                ties_even += b == c->bits[t] && b % 2 == 0;
            }
        }
        for (int a = 0; a < c->n_alt; a++) alt += c->alt[a] < c->T;
        qr_instance_free(s.q);
    }
    printf("sched-1 cyclic mode=bits: %ld cases, %ld steps vs numpy, max |b - b_ref| %d; %ld half-way steps "
           "(x.5 in double), %ld rounded to the even width as np.rint; %ld steps where 1 - cos(x) would round "
           "otherwise\n",
           cases, steps, maxdiff, ties, ties_even, alt);
    test_cond("sched-1 the fixture has bits cases", cases >= 10);
    test_cond("sched-1 every select returned one valid index", bad_rc == 0);
    test_cond("sched-1 bit-widths equal numpy's at every step", maxdiff == 0 && steps > 20000);
    test_cond("sched-1 half-way cases covered (>= 50), each rounded to even", ties >= 50 && ties_even == ties);
    test_cond("sched-1 decoys (fp, w4a8, mixed, a second w6a6) never chosen", decoy == 0);
}

/* ---- sched-2: cyclic mode=configs against numpy ---- */
static const qr_schedule_config *const *cmp_base;
static int by_cost(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    double x = cmp_base[i]->bitops, y = cmp_base[j]->bitops;
    return x < y ? -1 : x > y ? 1 : i - j;
}

static void test_cyclic_configs(const cpt_case *cs, int n_cases) {
    long steps = 0, cases = 0;
    int maxdiff = 0, bad_rc = 0;
    for (int k = 0; k < n_cases; k++) {
        const cpt_case *c = &cs[k];
        if (strcmp(c->mode, "configs") != 0) continue;
        cases++;
        const int n = c->b_max + 1;
        /* BitOPs in a scrambled order, two equal when n >= 4 (order by index then) */
        test_cfg tc[32];
        const qr_schedule_config *p[32];
        for (int i = 0; i < n; i++) {
            snprintf(tc[i].name, 16, "c%d", i);
            double cost = ((i * 5 + 3) % n + 1) / 64.0;
            if (n >= 4 && i == n - 1) cost = tc[1].c.bitops;
            tc[i].c = mkcfg(tc[i].name, 4, 8, 4, 8, cost);
            p[i] = &tc[i].c;
        }
        int order[32];
        for (int i = 0; i < n; i++) order[i] = i;
        cmp_base = p;
        qsort(order, (size_t)n, sizeof order[0], by_cost);
        char nc[16];
        snprintf(nc, sizeof nc, "%d", c->n_cycles);
        const char *kv[4] = {"mode", "configs", "n_cycles", nc};
        sched s = open_sched("cyclic", kv, 2);
        test_cond("sched-2 cyclic mode=configs created", s.q != NULL);
        if (!s.q) continue;
        for (int t = 0; t < c->T; t++) {
            int out[32];
            int rc = pick(&s, t, c->T, n, p, out);
            if (rc != 1 || out[0] < 0 || out[0] >= n) {
                if (!bad_rc++) fprintf(stderr, "  t=%d: rc %d: %s\n", t, rc, qr_err_msg());
                continue;
            }
            int pos = 0;
            while (order[pos] != out[0]) pos++;
            int d = abs(pos - c->bits[t]);
            if (d > maxdiff) maxdiff = d;
            steps++;
        }
        qr_instance_free(s.q);
    }
    printf("sched-2 cyclic mode=configs: %ld cases (n = 2..7), %ld steps vs numpy, max |position - ref| %d\n", cases,
           steps, maxdiff);
    test_cond("sched-2 every select returned one valid index", bad_rc == 0 && cases >= 5);
    test_cond("sched-2 positions along the BitOPs order equal numpy's", maxdiff == 0 && steps > 5000);

    /* the order itself: bitops 0.5, 0.25, 1, 0.25 -> 1, 3, 0, 2; one cycle of 400 steps walks it once */
    qr_schedule_config c4[4] = {mkcfg("a", 8, 8, 8, 8, 0.5), mkcfg("b", 4, 4, 8, 8, 0.25),
                                mkcfg("fp", 32, 32, 32, 32, 1), mkcfg("d", 8, 8, 4, 4, 0.25)};
    const qr_schedule_config *p4[4] = {&c4[0], &c4[1], &c4[2], &c4[3]};
    const char *kv[4] = {"mode", "configs", "n_cycles", "1"};
    sched s = open_sched("cyclic", kv, 2);
    int seq[8], ns = 0, ok = s.q != NULL;
    for (int t = 0; ok && t < 400; t++) {
        int out[4];
        ok &= pick(&s, t, 400, 4, p4, out) == 1;
        if (ns == 0 || seq[ns - 1] != out[0]) seq[ns < 8 ? ns++ : 7] = out[0];
    }
    printf("sched-2 bitops {0.5, 0.25, 1, 0.25}: one cycle runs %d, %d, %d, %d\n", seq[0], seq[1], seq[2], seq[3]);
    test_cond("sched-2 ascending BitOPs, ties by index", ok && ns == 4 && seq[0] == 1 && seq[1] == 3 && seq[2] == 0 &&
                                                             seq[3] == 2);
    qr_instance_free(s.q);
}

/* ---- sched-3: progressive stages ---- */
static void test_progressive(void) {
    const int Ts[] = {5, 6, 7, 12, 100, 1000, 1001};
    const int ns[] = {1, 2, 3, 5};
    long steps = 0, bad = 0;
    for (int dir = 0; dir < 2; dir++)
        for (size_t a = 0; a < sizeof Ts / sizeof Ts[0]; a++)
            for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
                const int T = Ts[a], n = ns[b];
                /* BitOPs: index 0 the most expensive, then decreasing, the last two equal */
                qr_schedule_config c[5];
                const qr_schedule_config *p[5];
                for (int i = 0; i < n; i++) {
                    c[i] = mkcfg("x", 4, 4, 4, 4, 1.0 / (1 + i));
                    p[i] = &c[i];
                }
                if (n >= 3) c[n - 1].bitops = c[n - 2].bitops;
                int order[5];
                for (int i = 0; i < n; i++) order[i] = i;
                cmp_base = p;
                qsort(order, (size_t)n, sizeof order[0], by_cost);
                const char *kv[2] = {"direction", dir ? "down" : "up"};
                sched s = open_sched("progressive", kv, 1);
                if (!s.q) {
                    bad++;
                    continue;
                }
                int *want = malloc(sizeof(int) * (size_t)T);
                for (int k = 0; k < n; k++) /* stage k: [floor(kT/n), floor((k+1)T/n)) */
                    for (int t = (int)((long)k * T / n); t < (int)((long)(k + 1) * T / n); t++)
                        want[t] = order[dir ? n - 1 - k : k];
                for (int t = 0; t < T; t++) {
                    int out[5];
                    int rc = pick(&s, t, T, n, p, out);
                    bad += rc != 1 || out[0] != want[t];
                    steps++;
                }
                free(want);
                qr_instance_free(s.q);
            }
    printf("sched-3 progressive: 56 (T, n, direction) runs, %ld steps, %ld off the stages\n", steps, bad);
    test_cond("sched-3 progressive stages [floor(kT/n), floor((k+1)T/n)), up and down", bad == 0 && steps > 4000);
}

/* ---- sched-4: random ---- */
static void test_random(void) {
    const int N = 60000;
    const int sizes[] = {2, 6, 7, 32};
    /* chi-square 0.999 quantiles for df = n - 1 */
    const double crit[] = {10.83, 20.52, 22.46, 61.10};
    const char *kv1[2] = {"seed", "1"}, *kv2[2] = {"seed", "2"};
    sched a = open_sched("random", NULL, 0), b = open_sched("random", kv1, 1), c = open_sched("random", kv2, 1);
    test_cond("sched-4 random created", a.q && b.q && c.q);
    if (!a.q || !b.q || !c.q) return;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const int n = sizes[k];
        long count[32] = {0}, invalid = 0, same_seed_differs = 0, other_seed_same = 0;
        int *draws = malloc(sizeof(int) * N);
        for (int t = 0; t < N; t++) {
            int x[32], y[32], z[32];
            int ra = pick(&a, t, N, n, NULL, x), rb = pick(&b, t, N, n, NULL, y), rc = pick(&c, t, N, n, NULL, z);
            invalid += ra != 1 || rb != 1 || rc != 1 || x[0] < 0 || x[0] >= n || z[0] < 0 || z[0] >= n;
            if (ra != 1 || x[0] < 0 || x[0] >= n) continue;
            draws[t] = x[0];
            count[x[0]]++;
            same_seed_differs += x[0] != y[0]; /* default seed is 1 */
            other_seed_same += x[0] == z[0];
        }
        /* purity: the draws again, backwards and at another T */
        long order_matters = 0;
        for (int t = N - 1; t >= 0; t -= 7) {
            int x[32];
            order_matters += pick(&b, t, 2 * N, n, NULL, x) != 1 || x[0] != draws[t];
        }
        double chi2 = 0, e = (double)N / n;
        for (int i = 0; i < n; i++) chi2 += (count[i] - e) * (count[i] - e) / e;
        double agree = (double)other_seed_same / N;
        printf("sched-4 random n=%d, %d steps: chi-square %.2f (df %d, p=0.001 threshold %.2f); seeds 1 and 2 "
               "agree on %.4f of the steps (1/n = %.4f)\n",
               n, N, chi2, n - 1, crit[k], agree, 1.0 / n);
        test_cond("sched-4 every draw a valid index", invalid == 0);
        test_cond("sched-4 the same seed draws the same, in any call order and whatever T", same_seed_differs == 0 &&
                                                                                             order_matters == 0);
        test_cond("sched-4 another seed draws otherwise (agreement within 0.02 of 1/n)",
                  fabs(agree - 1.0 / n) < 0.02);
        test_cond("sched-4 uniform: chi-square below the p=0.001 threshold", chi2 < crit[k]);
        free(draws);
    }
    qr_instance_free(a.q);
    qr_instance_free(b.q);
    qr_instance_free(c.q);
}

/* ---- sched-5: bad input ---- */
static void test_bad_input(void) {
    test_cfg u[6];
    const int widths[5] = {8, 7, 5, 4, 32}; /* no w6a6 */
    const qr_schedule_config *p[6];
    for (int i = 0; i < 5; i++) {
        uniform(&u[i], widths[i]);
        p[i] = &u[i].c;
    }
    /* fp first, as the message lists the set in order */
    const qr_schedule_config *set[5] = {p[4], p[0], p[1], p[2], p[3]};
    struct {
        const char *plugin;
        const char *kv[6];
        int n_kv, T, n;
        const char *want;
    } cases[] = {
        {"cyclic", {"b_min", "9", "b_max", "8"}, 2, 100, 5,
         "schedule 'cyclic': options b_min=9 > b_max=8 (expected b_min <= b_max)"},
        {"cyclic", {"b_min", "1"}, 1, 100, 5, "schedule 'cyclic': option b_min: expected an integer in [2, 16], got 1"},
        {"cyclic", {"b_max", "17"}, 1, 100, 5,
         "schedule 'cyclic': option b_max: expected an integer in [2, 16], got 17"},
        {"cyclic", {"b_max", "32"}, 1, 100, 5,
         "schedule 'cyclic': option b_max: expected an integer in [2, 16] (32, full precision, is not a cyclic "
         "width), got 32"},
        {"cyclic", {"b_min", "four"}, 1, 100, 5, "schedule 'cyclic': option b_min: expected an integer, got 'four'"},
        {"cyclic", {"n_cycles", "0"}, 1, 100, 5,
         "schedule 'cyclic': option n_cycles: expected an integer in [1, 2147483647], got 0"},
        {"cyclic", {"n_cycles", "33", "b_min", "7"}, 2, 32, 5,
         "schedule 'cyclic': option n_cycles: 33 cycles in 32 steps (expected n_cycles <= the number of steps)"},
        {"cyclic", {"mode", "cycles"}, 1, 100, 5,
         "schedule 'cyclic': option mode: expected \"bits\" or \"configs\", got 'cycles'"},
        {"cyclic", {"period", "10"}, 1, 100, 5,
         "schedule 'cyclic': unknown option 'period' (options: b_min, b_max, n_cycles, mode)"},
        {"cyclic", {"mode", "bits"}, 1, 100, 5,
         "schedule 'cyclic': mode=bits needs a uniform w6a6 configuration for b=6 (b_min=4, b_max=8); the set "
         "has: fp, w8a8, w7a7, w5a5, w4a4"},
        {"cyclic", {"b_min", "7", "b_max", "9"}, 2, 100, 5,
         "schedule 'cyclic': mode=bits needs a uniform w9a9 configuration for b=9 (b_min=7, b_max=9)"},
        {"progressive", {"direction", "sideways"}, 1, 100, 5,
         "schedule 'progressive': option direction: expected \"up\" or \"down\", got 'sideways'"},
        {"progressive", {"stages", "3"}, 1, 100, 5,
         "schedule 'progressive': unknown option 'stages' (options: direction)"},
        {"progressive", {NULL}, 0, 4, 5,
         "schedule 'progressive': 5 configurations need at least 5 steps (one stage each), got 4"},
        {"random", {"seed", "-1"}, 1, 100, 5,
         "schedule 'random': option seed: expected an integer in [0, 9223372036854775807], got -1"},
        {"random", {"seed", "0x10"}, 1, 100, 5, "schedule 'random': option seed: expected an integer, got '0x10'"},
        {"random", {"probs", "1,2"}, 1, 100, 5, "schedule 'random': unknown option 'probs' (options: seed)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sched s = open_sched(cases[k].plugin, cases[k].kv, cases[k].n_kv);
        const char *when = "create";
        int refused = s.q == NULL;
        if (s.q) {
            int out[8];
            when = "first select";
            refused = pick(&s, 0, cases[k].T, cases[k].n, set, out) == QR_PLUGIN_ERR;
        }
        const char *msg = refused ? qr_err_msg() : "ACCEPTED";
        printf("sched-5 %s at %s: %s\n", cases[k].plugin, when, msg);
        test_cond("sched-5 refused", refused);
        test_cond("sched-5 message names the option or the missing configuration",
                  refused && contains(msg, cases[k].want));
        qr_instance_free(s.q);
    }
}

/* ---- sched-6: in the trainer ---- */

enum { NSEQ = 24, STEPS = 12, KILL_AT = 5, NCFG = 6, RANK = 4 };

static char root[256];
static qr_quantizer *mm;

static qr_model *tiny(void) { return tiny_gpt2(mm, NCFG, RANK); }

/* As test_trainer.c: a random prompt, then an answer copying its start. */
static int32_t ids[NSEQ * 40], tgts[NSEQ * 40];
static int64_t offs[NSEQ + 1];
static qr_train_data make_data(void) { return tiny_copy_data(ids, tgts, offs, NSEQ); }

/* The set: fp, w8a8, w5a5, w4a4, w7a7, w6a6, configuration i on slot i. */
static const int set_bits[NCFG] = {32, 8, 5, 4, 7, 6};
static const char *const set_names[NCFG] = {"fp", "w8a8", "w5a5", "w4a4", "w7a7", "w6a6"};
static qr_layer_prec precs[NCFG][64];

static qr_trainer *make(qr_model *m, const char *schedule, const char *const *kv, int n_kv, const char *dir,
                        int every, int (*progress)(void *, const qr_train_progress *), void *ud) {
    qr_train_config cs[NCFG];
    for (int c = 0; c < NCFG; c++) {
        for (int i = 0; i < qr_model_n_linears(m); i++) precs[c][i] = (qr_layer_prec){set_bits[c], set_bits[c], c, 0};
        cs[c] = (qr_train_config){set_names[c], precs[c]};
    }
    qr_train_data d = make_data();
    qr_train_opts o = qr_train_defaults();
    o.steps = STEPS;
    o.batch = 3;
    o.seq = 48;
    o.lr = 1e-2f;
    o.warmup = 2;
    o.min_lr = 1e-3f;
    o.clip = 0.5f;
    o.weight_decay = 0.01f;
    o.seed = 9;
    o.run_dir = dir;
    o.checkpoint_every = every;
    o.schedule = schedule;
    o.schedule_kv = kv;
    o.schedule_nkv = n_kv;
    o.progress = progress;
    o.ud = ud;
    qr_trainer *t = qr_trainer_new(m, cs, NCFG, &d, &o);
    if (!t) fprintf(stderr, "  trainer_new: %s\n", qr_err_msg());
    return t;
}

typedef struct {
    int ran[STEPS][NCFG];
} ran_log;

static int record(void *ud, const qr_train_progress *p) {
    ran_log *r = ud;
    for (int c = 0; c < NCFG; c++) r->ran[p->step - 1][c] = p->ran[c];
    return 0;
}

/* Per slot: whether any adapter value differs from before, and sum |grad|. */
static void slot_activity(qr_model *m, const float *before, int moved[NCFG], double grad[NCFG]) {
    const float *p = qr_model_lora_params(m, NULL);
    for (int s = 0; s < NCFG; s++) {
        moved[s] = 0;
        grad[s] = 0;
        for (int i = 0; i < qr_model_n_linears(m); i++) {
            const qr_lora *a = qr_model_lora(m, i, s);
            const qr_linear *l = qr_model_linear(m, i);
            const int64_t na = (int64_t)RANK * l->in, nb = (int64_t)l->out * RANK;
            for (int64_t j = 0; j < na; j++) {
                moved[s] |= a->A[j] != before[(a->A - p) + j];
                grad[s] += fabs(a->dA[j]);
            }
            for (int64_t j = 0; j < nb; j++) {
                moved[s] |= a->B[j] != before[(a->B - p) + j];
                grad[s] += fabs(a->dB[j]);
            }
        }
    }
}

static char *dirpath(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", root, name);
    return p;
}

static void test_trainer(void) {
    mm = qr_quantizer_new("minmax", NULL, 0);
    test_cond("sched-6 minmax quantizer", mm != NULL);
    if (!mm) return;
    /* what a standalone instance selects on the set as the trainer describes it (uniform: bitops b^2/1024) */
    test_cfg desc[NCFG];
    const qr_schedule_config *dp[NCFG];
    for (int c = 0; c < NCFG; c++) {
        uniform(&desc[c], set_bits[c]);
        dp[c] = &desc[c].c;
    }
    struct {
        const char *label, *schedule;
        const char *kv[6];
        int n_kv;
    } runs[] = {
        {"cyclic mode=bits 4..8, 2 cycles", "cyclic", {"n_cycles", "2"}, 1},
        {"cyclic mode=configs, 2 cycles", "cyclic", {"mode", "configs", "n_cycles", "2"}, 2},
        {"progressive up", "progressive", {NULL}, 0},
        {"progressive down", "progressive", {"direction", "down"}, 1},
        {"random seed 3", "random", {"seed", "3"}, 1},
    };
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        char dname[32];
        /* the schedule's own choices */
        sched s = open_sched(runs[r].schedule, runs[r].kv, runs[r].n_kv);
        int want[STEPS], ok_sel = s.q != NULL;
        for (int t = 0; ok_sel && t < STEPS; t++) ok_sel &= pick(&s, t, STEPS, NCFG, dp, &want[t]) == 1;
        qr_instance_free(s.q);
        test_cond("sched-6 standalone selects", ok_sel);

        /* uninterrupted, step by step, watching the slots */
        ran_log la = {{{0}}};
        snprintf(dname, sizeof dname, "a%zu", r);
        qr_model *m = tiny();
        qr_trainer *t = make(m, runs[r].schedule, runs[r].kv, runs[r].n_kv, dirpath(dname), 0, record, &la);
        int64_t np;
        qr_model_lora_params(m, &np);
        float *before = malloc(sizeof(float) * (size_t)np);
        int steps_ok = t != NULL, slots_ok = 1, ran_ok = 1;
        char seq[STEPS * 8] = "";
        for (int st = 0; steps_ok && st < STEPS; st++) {
            memcpy(before, qr_model_lora_params(m, NULL), sizeof(float) * (size_t)np);
            if (qr_trainer_step(t) != QR_OK) {
                fprintf(stderr, "  step %d: %s\n", st + 1, qr_err_msg());
                steps_ok = 0;
                break;
            }
            int moved[NCFG];
            double grad[NCFG];
            slot_activity(m, before, moved, grad);
            for (int c = 0; c < NCFG; c++) {
                int sel = la.ran[st][c]; /* configuration c is on slot c */
                slots_ok &= sel ? (moved[c] && grad[c] > 0) : (!moved[c] && grad[c] == 0);
                ran_ok &= sel == (c == want[st]);
            }
            snprintf(seq + strlen(seq), sizeof seq - strlen(seq), "%s%d", st ? "," : "", want[st]);
        }
        free(before);
        qr_trainer_free(t);
        int64_t n;
        const float *pa = qr_model_lora_params(m, &n);
        float *A = malloc(sizeof(float) * (size_t)n);
        memcpy(A, pa, sizeof(float) * (size_t)n);
        qr_model_free(m);

        /* killed after KILL_AT steps (a checkpoint each step), then resumed by a fresh process */
        ran_log lb = {{{0}}};
        snprintf(dname, sizeof dname, "b%zu", r);
        m = tiny();
        t = make(m, runs[r].schedule, runs[r].kv, runs[r].n_kv, dirpath(dname), 1, record, &lb);
        for (int st = 0; t && st < KILL_AT; st++) steps_ok &= qr_trainer_step(t) == QR_OK;
        qr_trainer_free(t);
        qr_model_free(m);
        m = tiny();
        t = make(m, runs[r].schedule, runs[r].kv, runs[r].n_kv, dirpath(dname), 1, record, &lb);
        int from = -2, rc = t ? qr_trainer_resume(t, &from) : QR_ERR;
        rc = rc ? rc : qr_trainer_run(t);
        if (rc) fprintf(stderr, "  resume: %s\n", qr_err_msg());
        qr_trainer_free(t);
        const float *pb = qr_model_lora_params(m, &n);
        int same = memcmp(A, pb, sizeof(float) * (size_t)n) == 0;
        double maxd = 0;
        for (int64_t i = 0; i < n; i++) maxd = fmax(maxd, fabs((double)A[i] - pb[i]));
        int same_sel = memcmp(la.ran, lb.ran, sizeof la.ran) == 0;
        qr_model_free(m);
        free(A);

        printf("sched-6 %s: ran %s; slots %s; resumed after step %d: adapters %s (max |diff| %.3g), "
               "selections %s\n",
               runs[r].label, seq, slots_ok ? "ok" : "WRONG", KILL_AT, same ? "bit-identical" : "DIFFER", maxd,
               same_sel ? "identical" : "DIFFER");
        test_cond("sched-6 every step trained", steps_ok && rc == QR_OK && from == KILL_AT);
        test_cond("sched-6 the trainer ran what the schedule selects", ran_ok);
        test_cond("sched-6 only the selected configurations' adapters got gradient and moved", slots_ok);
        test_cond("sched-6 resumed run bit-identical to the uninterrupted one", same && same_sel);
    }
    qr_quantizer_free(mm);
}

int main(void) {
    if (qr_plugins_init() != QR_OK) fprintf(stderr, "%s\n", qr_err_msg());
    cpt_case *cs = NULL;
    int n_cases = load_fixture(&cs);
    test_cond("sched-0 fixture " FIXTURE " read", n_cases > 0);
    test_cyclic_bits(cs, n_cases);
    test_cyclic_configs(cs, n_cases);
    for (int k = 0; k < n_cases; k++) {
        free(cs[k].bits);
        free(cs[k].ties);
        free(cs[k].alt);
    }
    free(cs);
    test_progressive();
    test_random();
    test_bad_input();

    snprintf(root, sizeof root, "/tmp/qr_test_schedules.%ld", (long)getpid());
    mkdir(root, 0777);
    test_trainer();
    char cmd[400];
    snprintf(cmd, sizeof cmd, getenv("KEEP") ? "true %s" : "rm -rf '%s'", root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", root);
    return test_report();
}
