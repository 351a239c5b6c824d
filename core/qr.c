/* qr.c - error messages, checked allocation, small utilities. */
#define _POSIX_C_SOURCE 200809L
#include "qr.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
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

void *qr_map_file(const char *path, const char *what, size_t *size) {
    if (!path) {
        qr_err_set("%s file: path is NULL", what);
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        qr_err_set("%s: cannot open %s file: %s", path, what, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        qr_err_set("%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    const char *bad = S_ISDIR(st.st_mode)    ? "is a directory"
                      : !S_ISREG(st.st_mode) ? "is not a regular file"
                      : st.st_size == 0      ? "is an empty file (0 bytes)"
                                             : NULL;
    if (bad) {
        close(fd);
        qr_err_set("%s: %s, expected a %s file", path, bad, what);
        return NULL;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd); /* the mapping keeps the file alive */
    if (m == MAP_FAILED) {
        qr_err_set("%s: cannot mmap %lld bytes: %s", path, (long long)st.st_size, strerror(err));
        return NULL;
    }
    *size = (size_t)st.st_size;
    return m;
}

void qr_unmap_file(void *base, size_t size) {
    if (base) munmap(base, size);
}

double qr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void qr_fsync_parent(const char *path) {
    char *d = qr_xstrdup(path);
    char *slash = strrchr(d, '/');
    const char *dir = ".";
    if (slash) {
        *slash = 0;
        dir = slash == d ? "/" : d;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(d);
}
