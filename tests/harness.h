/* harness.h - a two-macro test harness (after redis): every failed check
 * prints file:line and the condition; test_report() returns non-zero when
 * anything failed, and prints "N passed, M failed". */
#ifndef QR_HARNESS_H
#define QR_HARNESS_H
#include <stdio.h>

static int test_passed_, test_failed_;

#define test_cond(descr, cond)                                                 \
    do {                                                                       \
        if (cond) {                                                            \
            test_passed_++;                                                    \
        } else {                                                               \
            test_failed_++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s  [%s]\n", __FILE__, __LINE__,      \
                    (descr), #cond);                                           \
        }                                                                      \
    } while (0)

#define test_report()                                                          \
    (printf("%d passed, %d failed\n", test_passed_, test_failed_),            \
     test_failed_ ? 1 : 0)

#endif
