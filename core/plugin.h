/* plugin.h - the plugin registry: loading quantizer, schedule, loss and
 * attack plugins (shared libraries, see qr_plugin.h for the ABI) with
 * dlopen, and creating instances of their entries by kind and name.
 *
 * Search path, scanned once by qr_plugins_init():
 *   1. each directory of $QRUN_PLUGIN_PATH (colon-separated), in order;
 *   2. <directory of the running executable>/../lib/qrun/plugins (from
 *      /proc/self/exe: an installed <prefix>/bin/qrun finds its own
 *      plugins, wherever the prefix is);
 *   3. QR_BUILD_DIR "/plugins" (the build tree: build/plugins/<kind>/);
 *   4. QR_INSTALL_PREFIX "/lib/qrun/plugins" (the configure-time prefix).
 * A directory listed twice is scanned at its first place only. Each
 * directory is scanned one level deep: DIR/ *.so and DIR/ * / *.so (the kind
 * subdirectories), in sorted order; a missing directory is skipped. A file
 * whose entry names are already provided by an earlier search directory is
 * skipped as a whole (earlier directories take precedence, like PATH); any
 * other duplicate name within a kind is a failure of the later file, which
 * is skipped. A file that fails to load is recorded (qr_plugins_failed_at)
 * and the scan goes on: one bad file does not take the good plugins down.
 *
 * Load errors name the file, the symbol qr_plugin_get_desc and the
 * versions: the plugin's name, version and ABI where its descriptor could
 * be read, and the host's ABI, e.g.
 *   "F.so: quantizer 'minmax' is already provided by G.so (plugin 'minmax'
 *    1.0.0); this file is skipped (symbol qr_plugin_get_desc: plugin 'mine'
 *    0.1, ABI 1.0; host ABI 1.3)".
 *
 * Not thread-safe: load plugins and create, retain and free instances from
 * one thread (instances themselves may be used from several). */
#ifndef QR_PLUGIN_HOST_H
#define QR_PLUGIN_HOST_H

#include <stdint.h>

#include "qr_plugin.h"

typedef struct qr_instance qr_instance; /* a created entry: its ops + its self */

/* Scan the search path once (later calls do nothing). Always QR_OK: files
 * that fail to load are recorded as warnings, see qr_plugins_failed_at. */
int qr_plugins_init(void);
/* The files of the scan that failed to load, in scan order, each with its
 * message (naming the file, as qr_plugin_load's would). Pointers stay valid
 * until qr_plugins_shutdown(). An explicit qr_plugin_load that fails is not
 * recorded here (it returns its error). */
typedef struct {
    char *file, *error;
} qr_plugin_failure;
int qr_plugins_failed_count(void);
const qr_plugin_failure *qr_plugins_failed_at(int i);
/* Unload everything (dlclose) so that the next qr_plugins_init() scans
 * again. QR_ERR (and nothing unloaded) while instances are alive. */
int qr_plugins_shutdown(void);
/* Load one file explicitly (scanning the search path first, once). Loading
 * a file that is already loaded (same real path) does nothing. QR_ERR +
 * message naming the file, the symbol and the versions (see above): missing
 * file, dlopen's error text, missing symbol qr_plugin_get_desc, ABI major
 * mismatch ("FILE: symbol qr_plugin_get_desc: plugin ABI 2.0, host ABI
 * 1.1"), struct_size too small, an entry of unknown kind, NULL or malformed
 * name, NULL ops, ops struct_size too small or a NULL function, a duplicate
 * name within a kind (naming both files). Nothing of a refused file is
 * registered. */
int qr_plugin_load(const char *path);

typedef struct {
    int kind;              /* qr_plugin_kind */
    const char *kind_name; /* "quantizer", "schedule", "loss", "attack" */
    const char *name, *description;
    const char *plugin, *version; /* of the library (its descriptor) */
    const char *file;             /* the path it was loaded from */
} qr_plugin_info;

/* Entries of all kinds, in load order; pointers stay valid until
 * qr_plugins_shutdown(). */
int qr_plugins_count(void);
const qr_plugin_info *qr_plugins_at(int i);
/* The entry of `kind` named `name`, or NULL (no message). */
const qr_plugin_info *qr_plugin_find(int kind, const char *name);
/* "quantizer", ... or "unknown"; qr_plugin_kind_parse("loss") ->
 * QR_KIND_LOSS, 0 for an unknown name. */
const char *qr_plugin_kind_name(int kind);
int qr_plugin_kind_parse(const char *name);

/* Create an instance of entry `name` of `kind` with options kv[2i] = key,
 * kv[2i+1] = value (n_kv pairs). Scans the search path first (once). NULL +
 * message: an unknown name (the message lists the known ones of that kind
 * and, if any file of the scan failed to load, how many and the first
 * error), or create()'s own message (an unknown option, a bad value).
 *
 * An instance is reference counted: qr_instance_new gives the caller one
 * reference, qr_instance_retain adds one (for a model, a trainer, a binding
 * that keeps a pointer to it) and qr_instance_free drops one; the plugin's
 * destroy() runs when the last one is dropped. So whoever stores the
 * pointer retains it, and a free by its creator can never pull it from
 * under a user. */
qr_instance *qr_instance_new(int kind, const char *name, const char *const *kv, int n_kv);
qr_instance *qr_instance_retain(qr_instance *q); /* returns q; NULL does nothing */
void qr_instance_free(qr_instance *q);           /* drops one reference; NULL does nothing */
const void *qr_instance_ops(const qr_instance *q); /* qr_quantizer_ops * etc., by kind */
void *qr_instance_self(const qr_instance *q);
const char *qr_instance_name(const qr_instance *q);
int qr_instance_kind(const qr_instance *q);

/* ---- the word-level resources the ABI 1.3 host services serve ---- */

/* What the host services candidates and is_stopword (qr_plugin.h) answer
 * from: a provider above this layer (core/text/wordvec.c's
 * qr_wordvec_serve) registers its functions here, so the registry needs
 * nothing of it. candidates gets arguments the host has checked (word
 * non-NULL, k >= 0, out room for k, min_cos not NaN, pos_match one of
 * QR_POS_MATCH_*) and returns 0..k or QR_ERR after qr_err_set;
 * is_stopword returns 1 or 0. name says what is loaded (the embedding's
 * path), for messages; has_pos says whether a part-of-speech table is. */
typedef struct qr_lexicon {
    void *ctx;
    const char *name;
    int has_pos;
    int (*candidates)(void *ctx, const char *word, int k, double min_cos, int pos_match, qr_candidate *out);
    int (*is_stopword)(void *ctx, const char *word);
} qr_lexicon;
/* Serve lx (copied; NULL: nothing, the services then refuse naming the
 * setup command). Not thread-safe: set it while no plugin call runs. */
void qr_plugins_set_lexicon(const qr_lexicon *lx);
/* What is served now, or NULL. */
const qr_lexicon *qr_plugins_lexicon(void);

/* What the host service similarity answers from: a sentence encoder
 * registered by a layer above (the Lua binding's qr.attack_encoder over
 * core/encoder/). similarity gets checked arguments (ref and every text
 * non-NULL, n >= 1) and returns 0 or QR_ERR after qr_err_set. */
typedef struct qr_sentence_service {
    void *ctx;
    const char *name;
    int (*similarity)(void *ctx, const char *ref, const char *const *texts, int n, double *out);
} qr_sentence_service;
/* Serve sv (copied; NULL: nothing). Not thread-safe, as the lexicon. */
void qr_plugins_set_sentence(const qr_sentence_service *sv);
const qr_sentence_service *qr_plugins_sentence(void);
/* The similarity service as a plugin calls it (for tests and bindings). */
int qr_plugins_similarity(const char *ref, const char *const *texts, int n, double *out);

/* What the host service lm_candidates answers from: a causal LM
 * registered by a layer above (the Lua binding's qr.attack_lm). Checked
 * arguments (text non-NULL, start + len <= strlen(text), 1 <= k). */
typedef struct qr_lm_service {
    void *ctx;
    const char *name;
    int (*candidates)(void *ctx, const char *text, size_t start, size_t len, int k, qr_candidate *out);
} qr_lm_service;
void qr_plugins_set_lm(const qr_lm_service *lm);
const qr_lm_service *qr_plugins_lm(void);
/* The lm_candidates service as a plugin calls it (tests, bindings). */
int qr_plugins_lm_candidates(const char *text, size_t start, size_t len, int k, qr_candidate *out);

/* ---- quantizer convenience ---- */
typedef qr_instance qr_quantizer;

qr_quantizer *qr_quantizer_new(const char *name, const char *const *kv, int n_kv);
void qr_quantizer_free(qr_quantizer *q); /* = qr_instance_free: drops one reference */
/* out (rows, cols) = fake-quantized x (out may be x); scales (rows) or NULL.
 * bits 32: an identity copy with scales 0, without calling the plugin; bits
 * outside 2..16 (and not 32), a negative size or an instance of another
 * kind: QR_ERR + message. The plugin refuses NaN/Inf, naming the row. */
int qr_quantizer_fake(qr_quantizer *q, float *out, const float *x, int64_t rows, int64_t cols, int bits,
                      float *scales);
/* dx (rows, cols) += dout * d fake(x)/dx (at bits 32: dx += dout). bits must
 * be ones fake() accepted (anything else is a programmer error: assert). */
void qr_quantizer_backward(qr_quantizer *q, float *dx, const float *dout, const float *x, int64_t rows,
                           int64_t cols, int bits);

#endif
