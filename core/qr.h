/* qr.h - what every qrun module shares: status codes, the error message,
 * checked allocation.
 *
 * Library code never exits: a function that can fail returns QR_OK (0) or
 * QR_ERR (-1) (or NULL), after qr_err_set() has recorded a message that
 * names the file, the field and what was expected. Callers read it with
 * qr_err_msg(). The message buffer is thread-local. */
#ifndef QR_H
#define QR_H

#include <stddef.h>
#include <stdint.h>

#define QR_OK 0
#define QR_ERR (-1)

#if defined(__GNUC__)
#define QR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QR_PRINTF(a, b)
#endif

/* Record an error message (printf-style); returns QR_ERR for convenience:
 *   return qr_err_set("%s: tensor '%s': expected %d dims, got %d", ...); */
int qr_err_set(const char *fmt, ...) QR_PRINTF(1, 2);
/* Prefix the current message: "ctx: <old message>". Returns QR_ERR. */
int qr_err_prefix(const char *fmt, ...) QR_PRINTF(1, 2);
const char *qr_err_msg(void);
void qr_err_clear(void);

/* Allocation that cannot fail silently: on out-of-memory it prints the size
 * and the call site and aborts (an OOM is not an input error we can report). */
#define qr_xmalloc(n) qr_xmalloc_at((n), __FILE__, __LINE__)
#define qr_xcalloc(c, n) qr_xcalloc_at((c), (n), __FILE__, __LINE__)
#define qr_xrealloc(p, n) qr_xrealloc_at((p), (n), __FILE__, __LINE__)
void *qr_xmalloc_at(size_t n, const char *file, int line);
void *qr_xcalloc_at(size_t c, size_t n, const char *file, int line);
void *qr_xrealloc_at(void *p, size_t n, const char *file, int line);
char *qr_xstrdup(const char *s);

/* Whole-file read into a NUL-terminated buffer; NULL + message on failure. */
char *qr_read_file(const char *path, size_t *len);

/* Map a whole regular, non-empty file read-only. `what` names the expected
 * format for messages ("GGUF", "safetensors"). NULL + message on failure;
 * release with qr_unmap_file(base, size). */
void *qr_map_file(const char *path, const char *what, size_t *size);
void qr_unmap_file(void *base, size_t size);

/* fsync the directory holding path (best effort), after a rename into it:
 * the rename itself becomes durable. Writers of checkpoints, adapters and
 * results write "<path>.tmp.<pid>", fsync it, rename it over path, then
 * call this, so a crash or a full disk leaves the old file or the new one. */
void qr_fsync_parent(const char *path);

/* Monotonic wall-clock seconds. */
double qr_now(void);

#endif
