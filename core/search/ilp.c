/* ilp.c - the multiple-choice knapsack of ilp.h through GLPK (glp_intopt,
 * MIP presolver on, binary columns). */
#include "ilp.h"

#include <glpk.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Solves allowed before giving up: each one after the first follows a
 * choice GLPK's tolerances accepted and the exact sums refused. */
#define MAX_SOLVES 1000

/* x in the fewest digits that read back as x: "5", "0.3", "1e+12". */
typedef struct {
    char s[32];
} num_str;
static num_str num(double x) {
    num_str n;
    for (int d = 1; d <= 17; d++) {
        snprintf(n.s, sizeof n.s, "%.*g", d, x);
        if (strtod(n.s, NULL) == x || isnan(x)) break;
    }
    return n;
}

static int check_problem(const qr_ilp_problem *p) {
    if (p->n_groups < 1) return qr_err_set("ilp: %d groups: expected at least one", p->n_groups);
    if (!p->n_options || !p->cost || !p->loss) return qr_err_set("ilp: n_options, cost and loss are required");
    if (isnan(p->budget) || p->budget == -INFINITY)
        return qr_err_set("ilp: budget %s: expected a number (+inf: no constraint)", num(p->budget).s);
    if (p->cost2 && (isnan(p->budget2) || p->budget2 == -INFINITY))
        return qr_err_set("ilp: budget2 %s: expected a number (+inf: no constraint)", num(p->budget2).s);
    int64_t k = 0;
    for (int i = 0; i < p->n_groups; i++) {
        if (p->n_options[i] < 1)
            return qr_err_set("ilp: group %d (0-based) has %d options: expected at least one", i, p->n_options[i]);
        for (int j = 0; j < p->n_options[i]; j++, k++) {
            if (!isfinite(p->cost[k]) || p->cost[k] < 0)
                return qr_err_set("ilp: group %d, option %d (0-based): cost %s: expected a finite number >= 0", i, j,
                                  num(p->cost[k]).s);
            if (p->cost2 && (!isfinite(p->cost2[k]) || p->cost2[k] < 0))
                return qr_err_set("ilp: group %d, option %d (0-based): cost2 %s: expected a finite number >= 0", i,
                                  j, num(p->cost2[k]).s);
            if (!isfinite(p->loss[k]))
                return qr_err_set("ilp: group %d, option %d (0-based): loss %s: expected a finite number", i, j,
                                  num(p->loss[k]).s);
        }
    }
    return QR_OK;
}

/* Sum over groups, in group order, of v at the chosen options (or, with
 * choice NULL, at each group's smallest value). */
static double sum_of(const qr_ilp_problem *p, const double *v, const int *choice) {
    double s = 0;
    int64_t k = 0;
    for (int i = 0; i < p->n_groups; k += p->n_options[i], i++) {
        if (choice) {
            s += v[k + choice[i]];
            continue;
        }
        double lo = v[k];
        for (int j = 1; j < p->n_options[i]; j++) lo = fmin(lo, v[k + j]);
        s += lo;
    }
    return s;
}

/* A budget row: sum_ij (c_ij - min_j c_ij) x_ij <= budget - sum_i min_j c_ij,
 * divided by the largest shifted coefficient. Nothing when budget = +inf. */
static void add_budget_row(glp_prob *P, const qr_ilp_problem *p, const double *c, double budget, double min_cost,
                           int *ind, double *val) {
    if (budget == INFINITY) return;
    int64_t k = 0, n = 0;
    double scale = 0;
    for (int i = 0; i < p->n_groups; k += p->n_options[i], i++) {
        double lo = c[k];
        for (int j = 1; j < p->n_options[i]; j++) lo = fmin(lo, c[k + j]);
        for (int j = 0; j < p->n_options[i]; j++) {
            double d = c[k + j] - lo;
            if (d > 0) { /* zeros left out (GLPK rows are sparse) */
                ind[++n] = (int)(k + j + 1);
                val[n] = d;
                scale = fmax(scale, d);
            }
        }
    }
    if (scale == 0) scale = 1;
    for (int64_t e = 1; e <= n; e++) val[e] /= scale;
    int row = glp_add_rows(P, 1);
    glp_set_row_bnds(P, row, GLP_UP, 0.0, fmax(budget - min_cost, 0.0) / scale);
    glp_set_mat_row(P, row, (int)n, ind, val);
}

/* The program without cuts: binary columns, one "exactly one" row per
 * group, the budget rows, the shifted and scaled objective. */
static glp_prob *build(const qr_ilp_problem *p, int64_t n_cols, double min_cost, double min_cost2, int *ind,
                       double *val) {
    glp_prob *P = glp_create_prob();
    glp_set_obj_dir(P, GLP_MIN);
    glp_add_cols(P, (int)n_cols);
    double spread = 0;
    int64_t k = 0;
    for (int i = 0; i < p->n_groups; k += p->n_options[i], i++) {
        double lo = p->loss[k];
        for (int j = 1; j < p->n_options[i]; j++) lo = fmin(lo, p->loss[k + j]);
        for (int j = 0; j < p->n_options[i]; j++) spread = fmax(spread, p->loss[k + j] - lo);
    }
    if (spread == 0) spread = 1;
    k = 0;
    for (int i = 0; i < p->n_groups; k += p->n_options[i], i++) {
        double lo = p->loss[k];
        for (int j = 1; j < p->n_options[i]; j++) lo = fmin(lo, p->loss[k + j]);
        int row = glp_add_rows(P, 1);
        glp_set_row_bnds(P, row, GLP_FX, 1.0, 1.0);
        for (int j = 0; j < p->n_options[i]; j++) {
            int col = (int)(k + j + 1);
            glp_set_col_kind(P, col, GLP_BV);
            glp_set_obj_coef(P, col, (p->loss[k + j] - lo) / spread);
            ind[j + 1] = col;
            val[j + 1] = 1.0;
        }
        glp_set_mat_row(P, row, p->n_options[i], ind, val);
    }
    add_budget_row(P, p, p->cost, p->budget, min_cost, ind, val);
    if (p->cost2) add_budget_row(P, p, p->cost2, p->budget2, min_cost2, ind, val);
    return P;
}

static int infeasible(const qr_ilp_problem *p, double min_cost, double min_cost2) {
    if (!p->cost2)
        return qr_err_set("ilp: no choice meets budget %s (minimum reachable cost %s)", num(p->budget).s,
                          num(min_cost).s);
    return qr_err_set("ilp: no choice meets both budget %s and budget2 %s (minimum reachable cost %s, cost2 %s, "
                      "each alone)",
                      num(p->budget).s, num(p->budget2).s, num(min_cost).s, num(min_cost2).s);
}

/* One glp_intopt: QR_OK with the choice, 1 when the program has no
 * solution, QR_ERR when GLPK failed. */
static int solve_once(glp_prob *P, const qr_ilp_problem *p, int *choice) {
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    parm.presolve = GLP_ON;
    parm.mip_gap = 0.0; /* prove optimality */
    parm.tol_obj = 1e-12; /* (scaled objective, O(1) per group) prune only a node no better at all; GLPK refuses 0 */
    int rc = glp_intopt(P, &parm);
    if (rc == GLP_ENOPFS) return 1;
    if (rc != 0) return qr_err_set("ilp: GLPK's glp_intopt failed (code %d)", rc);
    int st = glp_mip_status(P);
    if (st == GLP_NOFEAS) return 1;
    if (st != GLP_OPT) return qr_err_set("ilp: GLPK ended without an optimal solution (status %d)", st);
    int64_t k = 0;
    for (int i = 0; i < p->n_groups; k += p->n_options[i], i++) {
        int got = -1, n = 0;
        for (int j = 0; j < p->n_options[i]; j++)
            if (glp_mip_col_val(P, (int)(k + j + 1)) > 0.5) {
                got = j;
                n++;
            }
        if (n != 1) return qr_err_set("ilp: GLPK chose %d options of group %d (expected exactly one)", n, i);
        choice[i] = got;
    }
    return QR_OK;
}

int qr_ilp_solve(const qr_ilp_problem *p, int *choice, qr_ilp_result *r) {
    if (check_problem(p)) return QR_ERR;
    double t0 = qr_now();
    const double min_cost = sum_of(p, p->cost, NULL), min_cost2 = p->cost2 ? sum_of(p, p->cost2, NULL) : 0;
    if (min_cost > p->budget)
        return qr_err_set("ilp: budget %s is below the minimum reachable cost %s (every group at its cheapest "
                          "option)",
                          num(p->budget).s, num(min_cost).s);
    if (p->cost2 && min_cost2 > p->budget2)
        return qr_err_set("ilp: budget2 %s is below the minimum reachable cost2 %s (every group at its cheapest "
                          "option)",
                          num(p->budget2).s, num(min_cost2).s);
    int64_t n_cols = 0;
    for (int i = 0; i < p->n_groups; i++) n_cols += p->n_options[i];
    if (n_cols > INT32_MAX / 2) return qr_err_set("ilp: %lld options: too many", (long long)n_cols);
    int64_t width = n_cols > p->n_groups ? n_cols : p->n_groups;
    int *ind = qr_xmalloc((size_t)(width + 1) * sizeof *ind);
    double *val = qr_xmalloc((size_t)(width + 1) * sizeof *val);
    int old_term = glp_term_out(GLP_OFF);
    glp_prob *P = build(p, n_cols, min_cost, min_cost2, ind, val);
    int rc = QR_ERR, solves = 0;
    double cost = 0, cost2 = 0;
    for (;;) {
        if (solves == MAX_SOLVES) {
            rc = qr_err_set("ilp: %d solves and every choice GLPK found broke a budget by its tolerance", solves);
            break;
        }
        solves++;
        int s = solve_once(P, p, choice);
        if (s == 1) rc = infeasible(p, min_cost, min_cost2);
        if (s != QR_OK) break;
        cost = sum_of(p, p->cost, choice);
        cost2 = p->cost2 ? sum_of(p, p->cost2, choice) : 0;
        if (cost <= p->budget && (!p->cost2 || cost2 <= p->budget2)) {
            rc = QR_OK;
            break;
        }
        /* within GLPK's tolerance, over by the exact sum: not this one */
        int64_t k = 0;
        for (int i = 0; i < p->n_groups; k += p->n_options[i], i++) {
            ind[i + 1] = (int)(k + choice[i] + 1);
            val[i + 1] = 1.0;
        }
        int row = glp_add_rows(P, 1);
        glp_set_row_bnds(P, row, GLP_UP, 0.0, p->n_groups - 1.0);
        glp_set_mat_row(P, row, p->n_groups, ind, val);
    }
    glp_delete_prob(P);
    glp_term_out(old_term);
    free(ind);
    free(val);
    if (rc == QR_OK && r) {
        r->loss = sum_of(p, p->loss, choice);
        r->cost = cost;
        r->cost2 = cost2;
        r->min_cost = min_cost;
        r->min_cost2 = min_cost2;
        r->solves = solves;
        r->seconds = qr_now() - t0;
    }
    return rc;
}
