/* ilp.h - the bit-width allocation of HAWQ-V3 (Yao et al. 2021) as an
 * integer program, solved exactly by GLPK's branch and bound.
 *
 * A multiple-choice knapsack: groups i = 0..n-1 (layers), each with options
 * j = 0..m_i-1 (bit-width choices) of cost c_ij >= 0 (bytes, BitOPs), an
 * optional second cost c2_ij >= 0, and loss s_ij (a sensitivity, any finite
 * number). Exactly one option per group:
 *
 *   minimize   sum_ij s_ij x_ij
 *   subject to sum_j x_ij = 1               for every group i
 *              sum_ij c_ij x_ij  <= budget
 *              sum_ij c2_ij x_ij <= budget2  (when cost2 is given)
 *              x_ij in {0, 1}
 *
 * What "within budget" means is exact: the choice's cost, summed in double
 * in group order (qr_ilp_result.cost), is <= budget as given. GLPK works
 * with tolerances (a row may exceed its bound by ~1e-7 relative), so a
 * choice it accepts that breaks the exact rule is cut off (the constraint
 * "not this combination") and the program solved again; result.solves
 * counts the solves. The program GLPK sees is shifted and scaled (each
 * group's cheapest cost and lowest loss subtracted, each row divided by its
 * largest coefficient) so that byte and BitOP counts of 1e9..1e14 and losses
 * of 1e-6 are all O(1) to the simplex; the choice's sums are then computed
 * from the caller's numbers. There is no time limit: a SmolLM2-sized
 * program (210 groups x 6 options) solves in milliseconds (test_ilp). */
#ifndef QR_ILP_H
#define QR_ILP_H

#include "qr.h"

typedef struct {
    int n_groups;          /* >= 1 */
    const int *n_options;  /* (n_groups) options of each group, >= 1 */
    /* (sum of n_options) per option, group-major: group 0's options, then
     * group 1's, ... */
    const double *cost;    /* finite, >= 0 */
    const double *cost2;   /* finite, >= 0; NULL: no second budget */
    const double *loss;    /* finite */
    double budget;         /* not NaN; +inf: no constraint */
    double budget2;        /* read only with cost2 */
} qr_ilp_problem;

typedef struct {
    double loss, cost, cost2; /* of the choice, summed in double in group order (cost2 0 without cost2) */
    double min_cost, min_cost2; /* the cheapest reachable costs (each alone) */
    int solves;               /* glp_intopt calls: 1 + the tolerance-feasible choices cut off */
    double seconds;
} qr_ilp_result;

/* Solve p: choice[i] (0-based, n_groups entries) is the option of group i
 * in an optimal solution, r (may be NULL) its sums. QR_ERR with a message
 * on bad input (naming the group and option, 0-based), when no choice fits
 * (a budget below the minimum reachable cost: "ilp: budget 10 is below the
 * minimum reachable cost 12 (every group at its cheapest option)"; with two
 * budgets, when no choice meets both), or when GLPK fails. GLPK's terminal
 * output is off during the call (and restored after). */
int qr_ilp_solve(const qr_ilp_problem *p, int *choice, qr_ilp_result *r);

#endif
