/* test_ilp.c - the bit-width integer program (core/search/ilp.c, GLPK):
 *   ilp-1  200 random problems (seeded), 2..6 groups x 2..4 options, half
 *          with integer costs and losses (ties are common), half with real
 *          ones, a third with a second budget: the objective equals brute
 *          force's exactly (both sum in group order), the choice is within
 *          every budget, the reported sums are the choice's
 *   ilp-2  a budget below the cheapest reachable cost is refused naming the
 *          budget and that cost; two budgets each reachable alone but not
 *          together are refused naming both
 *   ilp-3  edge cases: one group of one option; the budget exactly the
 *          cheapest cost (only the cheapest choice fits); +inf budgets
 *          (each group's lowest loss); negative and equal losses; zero
 *          costs; 0.1 + 0.2 > 0.3 in double (the exact rule, not GLPK's
 *          tolerance, decides)
 *   ilp-4  bad input (no group, a group without options, negative, NaN or
 *          infinite cost, NaN loss, NaN budget) is refused naming the group
 *          and option
 *   ilp-5  a SmolLM2-sized program (210 groups x 6 options, integer costs)
 *          against a dynamic program over the budget: same objective
 *          (relative 1e-12: the two add the losses in different orders
 *          when their choices differ), within budget; the time is printed
 *   ilp-6  GLPK prints nothing to stdout */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "search/ilp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static double unif(void) { return (double)(next() >> 11) / 9007199254740992.0; }
static int below(int n) { return (int)(next() % (uint64_t)n); }

enum { MAXG = 6, MAXO = 4 };

typedef struct {
    int ng, nopt[MAXG];
    double cost[MAXG * MAXO], cost2[MAXG * MAXO], loss[MAXG * MAXO];
    int has2;
    double budget, budget2;
} small;

static qr_ilp_problem as_problem(small *s) {
    return (qr_ilp_problem){.n_groups = s->ng, .n_options = s->nopt, .cost = s->cost,
                            .cost2 = s->has2 ? s->cost2 : NULL, .loss = s->loss, .budget = s->budget,
                            .budget2 = s->budget2};
}

/* The sums of a choice, in group order (as ilp.c adds them). */
static double sum_at(const int *nopt, int ng, const double *v, const int *ch) {
    double t = 0;
    int k = 0;
    for (int i = 0; i < ng; k += nopt[i], i++) t += v[k + ch[i]];
    return t;
}

/* Every combination: the lowest loss within the budgets, or INFINITY. */
static double brute(small *s) {
    int ch[MAXG] = {0};
    double best = INFINITY;
    for (;;) {
        double c = sum_at(s->nopt, s->ng, s->cost, ch);
        double c2 = s->has2 ? sum_at(s->nopt, s->ng, s->cost2, ch) : 0;
        if (c <= s->budget && (!s->has2 || c2 <= s->budget2)) {
            double l = sum_at(s->nopt, s->ng, s->loss, ch);
            if (l < best) best = l;
        }
        int i = 0;
        while (i < s->ng && ++ch[i] == s->nopt[i]) ch[i++] = 0;
        if (i == s->ng) break;
    }
    return best;
}

/* A feasible random problem: budgets between the cheapest and the dearest
 * reachable sums, so that they bind. */
static void random_small(small *s, int integer, int has2) {
    s->ng = 2 + below(5);
    s->has2 = has2;
    int k = 0;
    double lo = 0, hi = 0, lo2 = 0, hi2 = 0;
    for (int i = 0; i < s->ng; i++) {
        s->nopt[i] = 2 + below(3);
        double a = INFINITY, b = 0, a2 = INFINITY, b2 = 0;
        for (int j = 0; j < s->nopt[i]; j++, k++) {
            s->cost[k] = integer ? below(20) : 100 * unif();
            s->cost2[k] = integer ? below(20) : 1e12 * unif(); /* BitOP-like magnitudes */
            s->loss[k] = integer ? below(10) : 1e-3 * unif();
            a = fmin(a, s->cost[k]);
            b = fmax(b, s->cost[k]);
            a2 = fmin(a2, s->cost2[k]);
            b2 = fmax(b2, s->cost2[k]);
        }
        lo += a;
        hi += b;
        lo2 += a2;
        hi2 += b2;
    }
    s->budget = integer ? floor(lo + (hi - lo) * unif()) : lo + (hi - lo) * unif();
    s->budget2 = integer ? floor(lo2 + (hi2 - lo2) * unif()) : lo2 + (hi2 - lo2) * unif();
    if (s->budget < lo) s->budget = lo;
    if (s->budget2 < lo2) s->budget2 = lo2;
}

static void test_random(void) {
    int solved = 0, exact = 0, within = 0, sums = 0, infeasible_agree = 0, extra_solves = 0;
    for (int t = 0; t < 200; t++) {
        small s;
        random_small(&s, t % 2, t % 3 == 0);
        qr_ilp_problem p = as_problem(&s);
        int ch[MAXG];
        qr_ilp_result r;
        double want = brute(&s);
        int rc = qr_ilp_solve(&p, ch, &r);
        if (rc != QR_OK) {
            /* two budgets can be jointly infeasible; then brute force agrees */
            if (!isfinite(want) && strstr(qr_err_msg(), "both")) {
                infeasible_agree++;
                continue;
            }
            fprintf(stderr, "problem %d: %s (brute force %g)\n", t, qr_err_msg(), want);
            continue;
        }
        solved++;
        extra_solves += r.solves - 1;
        double l = sum_at(s.nopt, s.ng, s.loss, ch);
        double c = sum_at(s.nopt, s.ng, s.cost, ch), c2 = s.has2 ? sum_at(s.nopt, s.ng, s.cost2, ch) : 0;
        if (l == want) exact++;
        else fprintf(stderr, "problem %d: ILP loss %.17g, brute force %.17g\n", t, l, want);
        if (c <= s.budget && (!s.has2 || c2 <= s.budget2)) within++;
        if (r.loss == l && r.cost == c && r.cost2 == c2) sums++;
    }
    printf("ilp-1: %d solved (%d jointly infeasible, as brute force says), %d exact, %d within budget, "
           "%d extra solves after tolerance cuts\n",
           solved, infeasible_agree, exact, within, extra_solves);
    test_cond("ilp-1.1 every problem solved or jointly infeasible", solved + infeasible_agree == 200);
    test_cond("ilp-1.2 objective equals brute force exactly", exact == solved);
    test_cond("ilp-1.3 the choice is within every budget", within == solved);
    test_cond("ilp-1.4 the reported sums are the choice's", sums == solved);
    test_cond("ilp-1.5 most problems solved", solved >= 150);
}

static void test_infeasible(void) {
    int nopt[2] = {2, 2}, ch[2];
    double cost[4] = {3, 5, 3, 4}, loss[4] = {1, 0, 1, 0}, cost2[4] = {0, 10, 10, 0};
    qr_ilp_problem p = {.n_groups = 2, .n_options = nopt, .cost = cost, .loss = loss, .budget = 5};
    test_cond("ilp-2.1 budget below the minimum", qr_ilp_solve(&p, ch, NULL) == QR_ERR);
    printf("ilp-2.1: %s\n", qr_err_msg());
    test_cond("ilp-2.2 names the budget and the minimum reachable cost",
              strstr(qr_err_msg(), "budget 5 is below the minimum reachable cost 6"));
    p.budget = 5.5;
    qr_ilp_solve(&p, ch, NULL);
    test_cond("ilp-2.3 a fractional budget is shown as given", strstr(qr_err_msg(), "budget 5.5 is below"));
    /* cost alone: 6 needs options (0, 0), whose cost2 is 10; cost2 alone:
     * 0 needs (0, 1), whose cost is 7 */
    p.budget = 6;
    p.cost2 = cost2;
    p.budget2 = 5;
    test_cond("ilp-2.4 two budgets not reachable together", qr_ilp_solve(&p, ch, NULL) == QR_ERR);
    printf("ilp-2.4: %s\n", qr_err_msg());
    test_cond("ilp-2.5 names both budgets and both minima",
              strstr(qr_err_msg(), "both budget 6 and budget2 5") && strstr(qr_err_msg(), "cost 6, cost2 0"));
    p.budget2 = -1;
    qr_ilp_solve(&p, ch, NULL);
    test_cond("ilp-2.6 budget2 below its minimum", strstr(qr_err_msg(), "budget2 -1 is below the minimum reachable cost2 0"));
}

static void test_edges(void) {
    int ch[3];
    qr_ilp_result r;
    {
        int nopt[1] = {1};
        double cost[1] = {7}, loss[1] = {-2};
        qr_ilp_problem p = {.n_groups = 1, .n_options = nopt, .cost = cost, .loss = loss, .budget = 7};
        int rc = qr_ilp_solve(&p, ch, &r);
        test_cond("ilp-3.1 one group of one option", rc == QR_OK && ch[0] == 0 && r.loss == -2 && r.cost == 7);
    }
    {
        /* budget = the cheapest sum: only (cheapest, cheapest) fits */
        int nopt[2] = {3, 3};
        double cost[6] = {4, 2, 8, 1, 9, 3}, loss[6] = {1, 5, 0, 7, 0, 2};
        qr_ilp_problem p = {.n_groups = 2, .n_options = nopt, .cost = cost, .loss = loss, .budget = 3};
        int rc = qr_ilp_solve(&p, ch, &r);
        test_cond("ilp-3.2 budget exactly the cheapest cost", rc == QR_OK && ch[0] == 1 && ch[1] == 0 && r.cost == 3);
        p.budget = INFINITY;
        rc = qr_ilp_solve(&p, ch, &r);
        test_cond("ilp-3.3 infinite budget: each group's lowest loss", rc == QR_OK && ch[0] == 2 && ch[1] == 1 &&
                                                                          r.loss == 0 && r.cost == 17);
        double c2[6] = {0, 0, 0, 0, 0, 0};
        p.cost2 = c2;
        p.budget2 = INFINITY;
        rc = qr_ilp_solve(&p, ch, &r);
        test_cond("ilp-3.4 zero costs, infinite budget2", rc == QR_OK && r.loss == 0 && r.cost2 == 0);
        p.budget2 = 0;
        p.budget = 12;
        rc = qr_ilp_solve(&p, ch, &r); /* (2, 1) costs 17; best within 12: (2, 2), cost 11, loss 2 */
        test_cond("ilp-3.5 budget2 0 with zero cost2", rc == QR_OK && r.cost == 11 && r.loss == 2);
    }
    {
        /* every loss equal and negative: any choice within budget is optimal */
        int nopt[3] = {2, 2, 2};
        double cost[6] = {1, 2, 1, 2, 1, 2}, loss[6] = {-1, -1, -1, -1, -1, -1};
        qr_ilp_problem p = {.n_groups = 3, .n_options = nopt, .cost = cost, .loss = loss, .budget = 4};
        int rc = qr_ilp_solve(&p, ch, &r);
        test_cond("ilp-3.6 equal negative losses", rc == QR_OK && r.loss == -3 && r.cost <= 4);
    }
    {
        /* 0.1 + 0.2 = 0.30000000000000004 > 0.3 in double: the exact rule
         * refuses (0, 0), which GLPK's tolerance would accept */
        int nopt[2] = {2, 2};
        double cost[4] = {0.1, 0, 0.2, 0}, loss[4] = {0, 5, 0, 6};
        qr_ilp_problem p = {.n_groups = 2, .n_options = nopt, .cost = cost, .loss = loss, .budget = 0.3};
        int rc = qr_ilp_solve(&p, ch, &r);
        printf("ilp-3.7: choice (%d, %d), cost %.17g, %d solves\n", ch[0], ch[1], r.cost, r.solves);
        test_cond("ilp-3.7 the exact sum decides, not GLPK's tolerance",
                  rc == QR_OK && r.cost <= 0.3 && r.loss == 5 && ch[0] == 1 && ch[1] == 0);
        /* GLPK 5.0 accepts (0, 0) first: the cut-and-solve-again path ran */
        test_cond("ilp-3.7b the refused choice was cut off and the program solved again", r.solves == 2);
        p.budget = 0.1 + 0.2;
        rc = qr_ilp_solve(&p, ch, &r);
        test_cond("ilp-3.8 and allows it at budget 0.1 + 0.2", rc == QR_OK && r.loss == 0);
    }
}

static void expect_refused(const char *id, qr_ilp_problem *p, const char *want) {
    int ch[8];
    int rc = qr_ilp_solve(p, ch, NULL);
    int ok = rc == QR_ERR && strstr(qr_err_msg(), want);
    if (!ok) fprintf(stderr, "%s: rc %d, message '%s', want '%s'\n", id, rc, qr_err_msg(), want);
    test_cond(id, ok);
}

static void test_bad_input(void) {
    int nopt[2] = {2, 2};
    double cost[4] = {1, 2, 3, 4}, loss[4] = {0, 0, 0, 0};
    qr_ilp_problem p = {.n_groups = 0, .n_options = nopt, .cost = cost, .loss = loss, .budget = 10};
    expect_refused("ilp-4.1 no group", &p, "0 groups: expected at least one");
    p.n_groups = 2;
    nopt[1] = 0;
    expect_refused("ilp-4.2 a group without options", &p, "group 1 (0-based) has 0 options");
    nopt[1] = 2;
    cost[3] = -1;
    expect_refused("ilp-4.3 negative cost", &p, "group 1, option 1 (0-based): cost -1: expected a finite number >= 0");
    cost[3] = NAN;
    expect_refused("ilp-4.4 NaN cost", &p, "group 1, option 1 (0-based): cost nan");
    cost[3] = INFINITY;
    expect_refused("ilp-4.5 infinite cost", &p, "cost inf");
    cost[3] = 4;
    loss[2] = NAN;
    expect_refused("ilp-4.6 NaN loss", &p, "group 1, option 0 (0-based): loss nan");
    loss[2] = 0;
    p.budget = NAN;
    expect_refused("ilp-4.7 NaN budget", &p, "budget nan");
    p.budget = 10;
    double c2[4] = {0, 0, -3, 0};
    p.cost2 = c2;
    p.budget2 = 1;
    expect_refused("ilp-4.8 negative cost2", &p, "group 1, option 0 (0-based): cost2 -3");
}

/* A multiple-choice knapsack by dynamic programming over integer costs
 * 0..B: best[b] = lowest loss of groups 0..i at cost b exactly. */
static double dp(int ng, const int *nopt, const int *cost, const double *loss, int B, int *choice) {
    double *best = malloc((size_t)(B + 1) * sizeof *best), *nb = malloc((size_t)(B + 1) * sizeof *nb);
    signed char *arg = malloc((size_t)ng * (B + 1));
    for (int b = 0; b <= B; b++) best[b] = b == 0 ? 0 : INFINITY;
    int k = 0;
    for (int i = 0; i < ng; k += nopt[i], i++) {
        for (int b = 0; b <= B; b++) {
            nb[b] = INFINITY;
            arg[(size_t)i * (B + 1) + b] = -1;
            for (int j = 0; j < nopt[i]; j++) {
                int c = cost[k + j];
                if (c <= b && best[b - c] + loss[k + j] < nb[b]) {
                    nb[b] = best[b - c] + loss[k + j];
                    arg[(size_t)i * (B + 1) + b] = (signed char)j;
                }
            }
        }
        memcpy(best, nb, (size_t)(B + 1) * sizeof *best);
    }
    int bb = 0;
    for (int b = 0; b <= B; b++)
        if (best[b] < best[bb]) bb = b;
    double v = best[bb];
    k = 0;
    int offs[256];
    for (int i = 0; i < ng; k += nopt[i], i++) offs[i] = k;
    for (int i = ng - 1; i >= 0; i--) {
        int j = arg[(size_t)i * (B + 1) + bb];
        choice[i] = j;
        bb -= cost[offs[i] + j];
    }
    free(best);
    free(nb);
    free(arg);
    return v;
}

static void test_large(void) {
    enum { NG = 210, NO = 6 };
    static int nopt[NG], icost[NG * NO], ch[NG], dch[NG];
    static double cost[NG * NO], loss[NG * NO];
    int lo = 0, hi = 0;
    for (int i = 0; i < NG; i++) {
        nopt[i] = NO;
        int size = 1 + below(9); /* a layer's weight count, in units */
        for (int j = 0; j < NO; j++) {
            int bits = (int[]){2, 3, 4, 6, 8, 16}[j];
            icost[i * NO + j] = size * bits;
            cost[i * NO + j] = icost[i * NO + j];
            /* sensitivity: falls with the bits, noisy */
            loss[i * NO + j] = (1.0 + unif()) * size * pow(2.0, -2.0 * bits) * (0.5 + unif());
        }
        lo += size * 2;
        hi += size * 16;
    }
    int B = lo + (hi - lo) / 4;
    qr_ilp_problem p = {.n_groups = NG, .n_options = nopt, .cost = cost, .loss = loss, .budget = B};
    qr_ilp_result r;
    int rc = qr_ilp_solve(&p, ch, &r);
    double want = dp(NG, nopt, icost, loss, B, dch);
    double dl = sum_at(nopt, NG, loss, dch);
    printf("ilp-5: 210 x 6: ILP loss %.17g (cost %g of %d) in %.3f s, %d solves; dynamic program %.17g\n", r.loss,
           r.cost, B, r.seconds, r.solves, dl);
    test_cond("ilp-5.1 solved", rc == QR_OK);
    test_cond("ilp-5.2 same objective as the dynamic program (1e-12 relative)",
              rc == QR_OK && fabs(r.loss - dl) <= 1e-12 * fabs(dl) && fabs(want - dl) <= 1e-12 * fabs(dl));
    test_cond("ilp-5.3 within budget", rc == QR_OK && r.cost <= B);
}

static void test_silent(void) {
    fflush(stdout);
    char path[] = "/tmp/test_ilp_stdout.XXXXXX";
    int fd = mkstemp(path), saved = dup(1);
    dup2(fd, 1);
    small s;
    random_small(&s, 0, 1);
    qr_ilp_problem p = as_problem(&s);
    int ch[MAXG];
    qr_ilp_solve(&p, ch, NULL);
    p.budget = -1;
    qr_ilp_solve(&p, ch, NULL);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    close(fd);
    unlink(path);
    printf("ilp-6: %lld bytes on stdout during two solves\n", (long long)size);
    test_cond("ilp-6.1 GLPK prints nothing", size == 0);
}

int main(void) {
    test_random();
    test_infeasible();
    test_edges();
    test_bad_input();
    test_large();
    test_silent();
    return test_report();
}
