/* qr.c - error messages, checked allocation, small utilities. */
#define _POSIX_C_SOURCE 200809L
#include "qr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Thread_local char err_buf[2048];

int qr_err_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return QR_ERR;
}

int qr_err_prefix(const char *fmt, ...) {
    char old[sizeof err_buf], pre[512];
    va_list ap;
    memcpy(old, err_buf, sizeof old);
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    snprintf(err_buf, sizeof err_buf, "%s: %s", pre, old);
    return QR_ERR;
}

const char *qr_err_msg(void) { return err_buf[0] ? err_buf : "unknown error"; }
void qr_err_clear(void) { err_buf[0] = 0; }

static void oom(size_t n, const char *file, int line) {
    fprintf(stderr, "qrun: out of memory allocating %zu bytes at %s:%d\n", n, file, line);
    abort();
}

void *qr_xmalloc_at(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) oom(n, file, line);
    return p;
}

void *qr_xcalloc_at(size_t c, size_t n, const char *file, int line) {
    void *p = calloc(c ? c : 1, n ? n : 1);
    if (!p) oom(c * n, file, line);
    return p;
}

void *qr_xrealloc_at(void *p, size_t n, const char *file, int line) {
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n, file, line);
    return q;
}

char *qr_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = qr_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

char *qr_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        qr_err_set("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        qr_err_set("%s: cannot seek (not a regular file?)", path);
        return NULL;
    }
    long n = ftell(f);
    if (n < 0) {
        fclose(f);
        qr_err_set("%s: cannot tell size", path);
        return NULL;
    }
    rewind(f);
    char *buf = qr_xmalloc((size_t)n + 1);
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        qr_err_set("%s: short read", path);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

double qr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
