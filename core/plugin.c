/* plugin.c - the plugin registry (see plugin.h): dlopen, the descriptor and
 * entry checks, the host services table, instances, and the quantizer
 * convenience calls. */
#define _GNU_SOURCE
#include "plugin.h"

#include "qr.h"

#include <assert.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef QR_BUILD_DIR
#define QR_BUILD_DIR "build"
#endif
#ifndef QR_INSTALL_PREFIX
#define QR_INSTALL_PREFIX "/usr/local"
#endif

/* The smallest layouts the host accepts: everything of ABI 1.0. */
#define END_OF(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
#define DESC_MIN_SIZE END_OF(qr_plugin_desc, get_ext)
#define MAX_ENTRIES 4096 /* a plugin claiming more is broken */

/* ------------------------------------------------------------------ */
/* host services                                                       */
/* ------------------------------------------------------------------ */

/* Messages recorded by plugins (directly or through the option helpers)
 * are counted, so that a NULL/error return without one can be detected. */
static unsigned host_errs;
#define HOST_ERR(...) (host_errs++, qr_err_set(__VA_ARGS__))

static int host_err_set(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return HOST_ERR("%s", buf);
}

static const char *host_opt(const char *const *kv, int n_kv, const char *key) {
    /* the last occurrence wins, as with repeated command-line options */
    for (int i = n_kv - 1; i >= 0; i--)
        if (kv[2 * i] && strcmp(kv[2 * i], key) == 0) return kv[2 * i + 1];
    return NULL;
}

static int host_opt_check(const char *const *kv, int n_kv, const char *const *known, const char *who) {
    for (int i = 0; i < n_kv; i++) {
        int j = 0;
        while (known && known[j] && strcmp(known[j], kv[2 * i]) != 0)
            j++;
        if (known && known[j]) continue;
        char list[512] = "";
        size_t len = 0;
        for (j = 0; known && known[j] && len < sizeof list; j++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", j ? ", " : "", known[j]);
        return HOST_ERR("%s: unknown option '%s' (options: %s)", who, kv[2 * i], list[0] ? list : "none");
    }
    return QR_OK;
}

static int host_opt_bool(const char *const *kv, int n_kv, const char *key, int def, int *out,
                         const char *who) {
    const char *v = host_opt(kv, n_kv, key);
    *out = def;
    if (!v) return QR_OK;
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on"))
        *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off"))
        *out = 0;
    else
        return HOST_ERR("%s: option %s: expected true or false, got '%s'", who, key, v);
    return QR_OK;
}

static int host_opt_double(const char *const *kv, int n_kv, const char *key, double def, double lo, double hi,
                           double *out, const char *who) {
    const char *v = host_opt(kv, n_kv, key);
    *out = def;
    if (!v) return QR_OK;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno == ERANGE || !isfinite(d))
        return HOST_ERR("%s: option %s: expected a number, got '%s'", who, key, v);
    if (d < lo || d > hi)
        return HOST_ERR("%s: option %s: expected a number in [%g, %g], got %s", who, key, lo, hi, v);
    *out = d;
    return QR_OK;
}

static int host_opt_int(const char *const *kv, int n_kv, const char *key, int64_t def, int64_t lo, int64_t hi,
                        int64_t *out, const char *who) {
    const char *v = host_opt(kv, n_kv, key);
    *out = def;
    if (!v) return QR_OK;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end || errno == ERANGE)
        return HOST_ERR("%s: option %s: expected an integer, got '%s'", who, key, v);
    if (n < lo || n > hi)
        return HOST_ERR("%s: option %s: expected an integer in [%lld, %lld], got %s", who, key, (long long)lo,
                        (long long)hi, v);
    *out = n;
    return QR_OK;
}

/* ABI 1.2 */
static int host_opt_choice(const char *const *kv, int n_kv, const char *key, const char *const *choices, int def,
                           int *out, const char *who) {
    const char *v = host_opt(kv, n_kv, key);
    *out = def;
    if (!v) return QR_OK;
    int n = 0;
    while (choices[n] && strcmp(choices[n], v) != 0)
        n++;
    if (choices[n]) {
        *out = n;
        return QR_OK;
    }
    char list[512] = ""; /* "a", "b" or "c" */
    size_t len = 0;
    for (int j = 0; j < n && len < sizeof list; j++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s\"%s\"", j == 0 ? "" : j == n - 1 ? " or " : ", ",
                                choices[j]);
    return HOST_ERR("%s: option %s: expected %s, got '%s'", who, key, list, v);
}

static void *host_state_new(const qr_host *h, size_t size, const char *const *kv, int n_kv,
                            const char *const *known, const char *who) {
    if (host_opt_check(kv, n_kv, known, who) != QR_OK) return NULL;
    if (size < sizeof h) size = sizeof h;
    void *p = calloc(1, size);
    if (!p) {
        HOST_ERR("%s: out of memory", who);
        return NULL;
    }
    memcpy(p, &h, sizeof h); /* the state's first member */
    return p;
}

/* ABI 1.3: the word-level resources of the attacks, served from what a
 * provider registered (qr_plugins_set_lexicon; core/text/wordvec.c). */
static qr_lexicon lexicon;
static int lexicon_set;

void qr_plugins_set_lexicon(const qr_lexicon *lx) {
    lexicon_set = lx != NULL;
    lexicon = lx ? *lx : (qr_lexicon){0};
}

const qr_lexicon *qr_plugins_lexicon(void) { return lexicon_set ? &lexicon : NULL; }

#define NO_LEXICON                                                                                          \
    "no word-level attack resources loaded: the counter-fitted embedding and its POS table "             \
    "(glove50-cf-50k.qrwv, .pos.tsv in $QRUN_CACHE/attacks, default ~/.cache/qrun/attacks) and the stop " \
    "words; build them with scripts/setup_attacks.sh, then load them with "                                \
    "qr.attack_resources(qr.wordvec()) (C: qr_wordvec_serve)"

static int host_candidates(const qr_host *h, const char *word, int k, double min_cos, int pos_match,
                           qr_candidate *out) {
    (void)h;
    if (!lexicon_set || !lexicon.candidates) return HOST_ERR("host service candidates: %s", NO_LEXICON);
    if (!word) return HOST_ERR("host service candidates: word is NULL");
    if (k < 0) return HOST_ERR("host service candidates: k = %d: expected >= 0", k);
    if (k > 0 && !out) return HOST_ERR("host service candidates: out is NULL for k = %d", k);
    if (isnan(min_cos)) return HOST_ERR("host service candidates: min_cos is NaN");
    if (pos_match < QR_POS_MATCH_ANY || pos_match > QR_POS_MATCH_NOUN_VERB)
        return HOST_ERR("host service candidates: pos_match = %d: expected QR_POS_MATCH_ANY (0), _SAME (1) or "
                        "_NOUN_VERB (2)",
                        pos_match);
    if (pos_match != QR_POS_MATCH_ANY && !lexicon.has_pos)
        return HOST_ERR("host service candidates: pos_match = %d needs the part-of-speech table, and %s was "
                        "loaded without one (its .pos.tsv, built by scripts/setup_attacks.sh)",
                        pos_match, lexicon.name ? lexicon.name : "the embedding");
    if (k == 0) return 0;
    int n = lexicon.candidates(lexicon.ctx, word, k, min_cos, pos_match, out);
    if (n < 0) {
        host_errs++; /* the provider's message stands */
        return QR_PLUGIN_ERR;
    }
    return n;
}

static int host_is_stopword(const qr_host *h, const char *word) {
    (void)h;
    if (!lexicon_set || !lexicon.is_stopword) return HOST_ERR("host service is_stopword: %s", NO_LEXICON);
    if (!word) return HOST_ERR("host service is_stopword: word is NULL");
    return lexicon.is_stopword(lexicon.ctx, word) ? 1 : 0;
}

/* The sentence encoder the similarity service answers from. */
static qr_sentence_service sentence;
static int sentence_set;

void qr_plugins_set_sentence(const qr_sentence_service *sv) {
    sentence_set = sv != NULL;
    sentence = sv ? *sv : (qr_sentence_service){0};
}

const qr_sentence_service *qr_plugins_sentence(void) { return sentence_set ? &sentence : NULL; }

static int host_similarity(const qr_host *h, const char *ref, const char *const *texts, int n, double *out) {
    (void)h;
    if (!sentence_set || !sentence.similarity)
        return HOST_ERR("host service similarity: no sentence encoder served: fetch all-MiniLM-L6-v2 with "
                        "scripts/fetch_encoder.sh, then serve it with qr.attack_encoder(qr.sentence_encoder())");
    if (!ref) return HOST_ERR("host service similarity: ref is NULL");
    if (n < 0) return HOST_ERR("host service similarity: n = %d: expected >= 0", n);
    if (n == 0) return 0;
    if (!texts || !out) return HOST_ERR("host service similarity: texts or out is NULL for n = %d", n);
    for (int i = 0; i < n; i++)
        if (!texts[i]) return HOST_ERR("host service similarity: texts[%d] is NULL", i);
    if (sentence.similarity(sentence.ctx, ref, texts, n, out) != QR_OK) {
        host_errs++; /* the provider's message stands */
        return QR_PLUGIN_ERR;
    }
    return 0;
}

int qr_plugins_similarity(const char *ref, const char *const *texts, int n, double *out) {
    return host_similarity(NULL, ref, texts, n, out) == 0 ? QR_OK : QR_ERR;
}

/* The causal LM the lm_candidates service answers from. */
static qr_lm_service lm;
static int lm_set;

void qr_plugins_set_lm(const qr_lm_service *l) {
    lm_set = l != NULL;
    lm = l ? *l : (qr_lm_service){0};
}

const qr_lm_service *qr_plugins_lm(void) { return lm_set ? &lm : NULL; }

static int host_lm_candidates(const qr_host *h, const char *text, size_t start, size_t len, int k,
                              qr_candidate *out) {
    (void)h;
    if (!lm_set || !lm.candidates)
        return HOST_ERR("host service lm_candidates: no language model served: serve one with "
                        "qr.attack_lm(qr.model(qr.default_model())) (a separate instance from the victim)");
    if (!text) return HOST_ERR("host service lm_candidates: text is NULL");
    size_t n = strlen(text);
    if (start > n || len > n - start)
        return HOST_ERR("host service lm_candidates: the word [%zu, %zu) is outside the text (%zu bytes)", start,
                        start + len, n);
    if (k < 1 || !out) return HOST_ERR("host service lm_candidates: k = %d: expected >= 1 and room for it", k);
    int r = lm.candidates(lm.ctx, text, start, len, k, out);
    if (r < 0) {
        host_errs++;
        return QR_PLUGIN_ERR;
    }
    return r;
}

int qr_plugins_lm_candidates(const char *text, size_t start, size_t len, int k, qr_candidate *out) {
    int r = host_lm_candidates(NULL, text, start, len, k, out);
    return r < 0 ? QR_ERR : r;
}

static const qr_host host = {
    .struct_size = sizeof(qr_host),
    .abi_major = QR_PLUGIN_ABI_MAJOR,
    .abi_minor = QR_PLUGIN_ABI_MINOR,
    .err_set = host_err_set,
    .opt = host_opt,
    .opt_check = host_opt_check,
    .opt_bool = host_opt_bool,
    .opt_double = host_opt_double,
    .opt_int = host_opt_int,
    .opt_choice = host_opt_choice,
    .state_new = host_state_new,
    .candidates = host_candidates,
    .is_stopword = host_is_stopword,
    .similarity = host_similarity,
    .lm_candidates = host_lm_candidates,
};

/* ------------------------------------------------------------------ */
/* the registry                                                        */
/* ------------------------------------------------------------------ */

typedef struct {
    qr_plugin_info info; /* strings point into the library, except file */
    const void *ops;
    int root; /* search directory it came from (-1: loaded explicitly) */
} reg_entry;

typedef struct {
    void *handle;
    char *path, *real;
} reg_lib;

static struct {
    int scanned;
    reg_entry **e;
    int n, cap;
    reg_lib *libs;
    int nlibs, libcap;
    qr_plugin_failure *fail; /* files of the scan that did not load (malloc'd strings) */
    int nfail, failcap;
    int live; /* instances alive */
} R;

static const char *const kind_names[] = {NULL, "quantizer", "schedule", "loss", "attack"};
#define N_KINDS 4

const char *qr_plugin_kind_name(int kind) {
    return kind >= 1 && kind <= N_KINDS ? kind_names[kind] : "unknown";
}

int qr_plugin_kind_parse(const char *name) {
    for (int k = 1; name && k <= N_KINDS; k++)
        if (strcmp(name, kind_names[k]) == 0) return k;
    return 0;
}

int qr_plugins_count(void) { return R.n; }

const qr_plugin_info *qr_plugins_at(int i) { return i >= 0 && i < R.n ? &R.e[i]->info : NULL; }

static reg_entry *find(int kind, const char *name) {
    for (int i = 0; i < R.n; i++)
        if (R.e[i]->info.kind == kind && strcmp(R.e[i]->info.name, name) == 0) return R.e[i];
    return NULL;
}

const qr_plugin_info *qr_plugin_find(int kind, const char *name) {
    reg_entry *e = name ? find(kind, name) : NULL;
    return e ? &e->info : NULL;
}

/* Minimum ops size (the 1.0 layout) and whether every function is set. */
static size_t ops_min_size(int kind) {
    switch (kind) {
    case QR_KIND_QUANTIZER: return END_OF(qr_quantizer_ops, backward);
    case QR_KIND_SCHEDULE: return END_OF(qr_schedule_ops, select);
    case QR_KIND_LOSS: return END_OF(qr_loss_ops, compute);
    case QR_KIND_ATTACK: return END_OF(qr_attack_ops, perturb);
    }
    return 0;
}

/* The first NULL function of ops, or NULL if all are set. */
static const char *ops_null_fn(int kind, const void *ops) {
    switch (kind) {
    case QR_KIND_QUANTIZER: {
        const qr_quantizer_ops *o = ops;
        return !o->create     ? "create"
               : !o->destroy  ? "destroy"
               : !o->fake     ? "fake"
               : !o->backward ? "backward"
                              : NULL;
    }
    case QR_KIND_SCHEDULE: {
        /* select may be NULL when the 1.2 select_cfg is there (a 1.0/1.1
         * struct ends before it: select is required) */
        const qr_schedule_ops *o = ops;
        return !o->create                                      ? "create"
               : !o->destroy                                   ? "destroy"
               : !o->select && !QR_SCHEDULE_HAS(o, select_cfg) ? "select"
                                                               : NULL;
    }
    case QR_KIND_LOSS: {
        const qr_loss_ops *o = ops;
        return !o->create ? "create" : !o->destroy ? "destroy" : !o->compute ? "compute" : NULL;
    }
    case QR_KIND_ATTACK: {
        const qr_attack_ops *o = ops;
        return !o->create ? "create" : !o->destroy ? "destroy" : !o->perturb ? "perturb" : NULL;
    }
    }
    return "create";
}

static int valid_name(const char *s) {
    if (!s || !*s || strlen(s) > 64) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-' || *s == '.'))
            return 0;
    return 1;
}

/* A load error: "PATH: what (note)", the note naming what is known of the
 * plugin. trust: 0 = nothing read (d NULL), 1 = only the ABI fields of d
 * can be read (its layout is not known to be ours), 2 = d passed the ABI
 * and size checks, so its name and version can be read too. The symbol is
 * named in the note unless `what` already names it. */
static int load_err(const char *path, const qr_plugin_desc *d, int trust, const char *fmt, ...)
    QR_PRINTF(4, 5);
static int load_err(const char *path, const qr_plugin_desc *d, int trust, const char *fmt, ...) {
    char what[1024], plug[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int named = strstr(what, QR_PLUGIN_SYMBOL) != NULL;
    if (d && trust >= 2)
        snprintf(plug, sizeof plug, "plugin '%.64s' %.32s, ABI %u.%u; ", d->name ? d->name : "(unnamed)",
                 d->version ? d->version : "(no version)", d->abi_major, d->abi_minor);
    else if (d && trust == 1)
        snprintf(plug, sizeof plug, "plugin ABI %u.%u; ", d->abi_major, d->abi_minor);
    return qr_err_set("%s: %s (%s%s%s%shost ABI %d.%d)", path, what, named ? "" : "symbol ",
                      named ? "" : QR_PLUGIN_SYMBOL, named ? "" : plug[0] ? ": " : "; ", plug,
                      QR_PLUGIN_ABI_MAJOR, QR_PLUGIN_ABI_MINOR);
}

/* The first problem of entry i of d (trusted), or QR_OK. Sets *shadowed
 * when an earlier search directory provides the name (root >= 0). */
static int check_entry(const char *path, const qr_plugin_desc *d, uint32_t i, int root, int *shadowed) {
    const qr_entry *e = d->get_entry(i);
    if (!e) return load_err(path, d, 2, "entry %u: get_entry returned NULL", i);
    if (e->kind < 1 || e->kind > N_KINDS)
        return load_err(path, d, 2,
                        "entry %u ('%s'): unknown kind %u (expected 1..%d: quantizer, schedule, loss, attack)", i,
                        e->name ? e->name : "(null)", e->kind, N_KINDS);
    const char *kn = kind_names[e->kind];
    if (!valid_name(e->name))
        return load_err(path, d, 2, "entry %u (%s): name %s%s%s: expected 1-64 characters of [A-Za-z0-9_.-]", i,
                        kn, e->name ? "'" : "", e->name ? e->name : "NULL", e->name ? "'" : "");
    if (!e->ops) return load_err(path, d, 2, "%s '%s': ops is NULL", kn, e->name);
    uint32_t ops_size = *(const uint32_t *)e->ops; /* every ops struct starts with it */
    if (ops_size < ops_min_size((int)e->kind))
        return load_err(path, d, 2, "%s '%s': ops struct_size %u, expected at least %zu", kn, e->name, ops_size,
                        ops_min_size((int)e->kind));
    const char *fn = ops_null_fn((int)e->kind, e->ops);
    if (fn) return load_err(path, d, 2, "%s '%s': ops.%s is NULL", kn, e->name, fn);
    for (uint32_t j = 0; j < i; j++) {
        const qr_entry *o = d->get_entry(j);
        if (o->kind == e->kind && strcmp(o->name, e->name) == 0)
            return load_err(path, d, 2, "%s '%s' is defined twice (entries %u and %u)", kn, e->name, j, i);
    }
    reg_entry *dup = find((int)e->kind, e->name);
    if (dup) {
        if (root >= 0 && dup->root >= 0 && dup->root < root) {
            *shadowed = 1; /* an earlier search directory wins */
            return QR_OK;
        }
        return load_err(path, d, 2, "%s '%s' is already provided by %s (plugin '%s' %s); this file is skipped",
                        kn, e->name, dup->info.file, dup->info.plugin, dup->info.version);
    }
    return QR_OK;
}

/* Load one file. root: index of the search directory (-1 = explicit).
 * Returns QR_OK, QR_ERR (+ message), or 1 when it was skipped because an
 * earlier search directory already provides its entries. */
static int load_file(const char *path, int root) {
    struct stat st;
    if (stat(path, &st) != 0) return load_err(path, NULL, 0, "cannot load plugin: %s", strerror(errno));
    if (!S_ISREG(st.st_mode)) return load_err(path, NULL, 0, "cannot load plugin: not a regular file");
    char real[PATH_MAX];
    if (!realpath(path, real)) return load_err(path, NULL, 0, "cannot load plugin: %s", strerror(errno));
    for (int i = 0; i < R.nlibs; i++)
        if (strcmp(R.libs[i].real, real) == 0) return QR_OK; /* already loaded */

    /* dlopen searches the library path for a name without a slash */
    char *dlpath = qr_xmalloc(strlen(path) + 3);
    sprintf(dlpath, "%s%s", strchr(path, '/') ? "" : "./", path);
    dlerror();
    /* RTLD_NODELETE: OpenMP worker threads outlive a plugin's parallel
     * regions (libgomp keeps its pool); never unmap code they may touch */
    void *h = dlopen(dlpath, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    free(dlpath);
    if (!h) {
        const char *why = dlerror();
        return load_err(path, NULL, 0, "cannot load plugin: %s", why ? why : "dlopen failed");
    }
    int rc = QR_ERR;
    const qr_plugin_desc *(*get)(void);
    void *sym = dlsym(h, QR_PLUGIN_SYMBOL);
    if (!sym) {
        load_err(path, NULL, 0, "symbol %s not found (not a qrun plugin?)", QR_PLUGIN_SYMBOL);
        goto fail;
    }
    memcpy(&get, &sym, sizeof get); /* object pointer -> function pointer */
    const qr_plugin_desc *d = get();
    if (!d) {
        load_err(path, NULL, 0, "symbol %s returned NULL", QR_PLUGIN_SYMBOL);
        goto fail;
    }
    /* only the ABI fields of another major's descriptor can be read */
    if (d->abi_major != QR_PLUGIN_ABI_MAJOR) {
        qr_err_set("%s: symbol %s: plugin ABI %u.%u, host ABI %d.%d (rebuild the plugin against this "
                   "qr_plugin.h)",
                   path, QR_PLUGIN_SYMBOL, d->abi_major, d->abi_minor, QR_PLUGIN_ABI_MAJOR,
                   QR_PLUGIN_ABI_MINOR);
        goto fail;
    }
    if (d->struct_size < DESC_MIN_SIZE) {
        load_err(path, d, 1, "symbol %s: descriptor struct_size %u, expected at least %zu", QR_PLUGIN_SYMBOL,
                 d->struct_size, (size_t)DESC_MIN_SIZE);
        goto fail;
    }
    if (d->n_entries > MAX_ENTRIES) {
        load_err(path, d, 2, "n_entries %u, expected at most %d", d->n_entries, MAX_ENTRIES);
        goto fail;
    }
    if (d->n_entries > 0 && !d->get_entry) {
        load_err(path, d, 2, "n_entries %u but get_entry is NULL", d->n_entries);
        goto fail;
    }
    /* Check every entry before registering any. */
    int shadowed = 0;
    for (uint32_t i = 0; i < d->n_entries; i++)
        if (check_entry(path, d, i, root, &shadowed) != QR_OK) goto fail;
    if (shadowed) {
        rc = 1;
        goto fail;
    }

    if (R.nlibs == R.libcap) {
        R.libcap = R.libcap ? 2 * R.libcap : 8;
        R.libs = qr_xrealloc(R.libs, (size_t)R.libcap * sizeof *R.libs);
    }
    char *file = qr_xstrdup(path);
    R.libs[R.nlibs++] = (reg_lib){.handle = h, .path = file, .real = qr_xstrdup(real)};
    for (uint32_t i = 0; i < d->n_entries; i++) {
        const qr_entry *e = d->get_entry(i);
        reg_entry *r = qr_xcalloc(1, sizeof *r);
        r->info = (qr_plugin_info){.kind = (int)e->kind,
                                   .kind_name = kind_names[e->kind],
                                   .name = e->name,
                                   .description = e->description ? e->description : "",
                                   .plugin = d->name ? d->name : "",
                                   .version = d->version ? d->version : "",
                                   .file = file};
        r->ops = e->ops;
        r->root = root;
        if (R.n == R.cap) {
            R.cap = R.cap ? 2 * R.cap : 16;
            R.e = qr_xrealloc(R.e, (size_t)R.cap * sizeof *R.e);
        }
        R.e[R.n++] = r;
    }
    return QR_OK;
fail:
    dlclose(h);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Append dir/ *.so (sorted) and, if depth, the same in each subdirectory. */
static void list_dir(const char *dir, int depth, char ***files, int *n, int *cap) {
    DIR *d = opendir(dir);
    if (!d) return;
    char **names = NULL;
    int nn = 0, nc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (nn == nc) {
            nc = nc ? 2 * nc : 16;
            names = qr_xrealloc(names, (size_t)nc * sizeof *names);
        }
        names[nn++] = qr_xstrdup(de->d_name);
    }
    closedir(d);
    if (nn) qsort(names, (size_t)nn, sizeof *names, cmp_str);
    for (int i = 0; i < nn; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *p = qr_xmalloc(len);
        snprintf(p, len, "%s/%s", dir, names[i]);
        struct stat st;
        size_t nl = strlen(names[i]);
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (depth > 0) list_dir(p, depth - 1, files, n, cap);
            free(p);
        } else if (nl > 3 && strcmp(names[i] + nl - 3, ".so") == 0) {
            if (*n == *cap) {
                *cap = *cap ? 2 * *cap : 16;
                *files = qr_xrealloc(*files, (size_t)*cap * sizeof **files);
            }
            (*files)[(*n)++] = p;
        } else {
            free(p);
        }
        free(names[i]);
    }
    free(names);
}

/* <dir of the running executable>/../lib/qrun/plugins (malloc'd), or NULL
 * where /proc/self/exe cannot be read: what an installed qrun
 * (<prefix>/bin/qrun) needs to find <prefix>/lib/qrun/plugins wherever the
 * prefix was moved or whatever --prefix `cmake --install` was given. */
static char *exe_plugin_dir(void) {
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return NULL;
    exe[len] = 0;
    char *slash = strrchr(exe, '/'); /* <prefix>/bin/qrun -> <prefix>/bin */
    if (!slash) return NULL;
    *slash = 0;
    slash = strrchr(exe, '/'); /* -> <prefix> ("" for /qrun or /bin/qrun) */
    if (!slash) return NULL;
    *slash = 0;
    size_t n = strlen(exe) + sizeof "/lib/qrun/plugins";
    char *dir = qr_xmalloc(n);
    snprintf(dir, n, "%s/lib/qrun/plugins", exe);
    return dir;
}

static void add_dir(char ***dirs, int *n, int *cap, char *dir) {
    if (!dir) return;
    for (int i = 0; i < *n; i++)
        if (strcmp((*dirs)[i], dir) == 0) { /* scanned once, at its first place */
            free(dir);
            return;
        }
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        *dirs = qr_xrealloc(*dirs, (size_t)*cap * sizeof **dirs);
    }
    (*dirs)[(*n)++] = dir;
}

/* The search directories, in order (malloc'd array of malloc'd strings). */
static char **search_dirs(int *n) {
    char **dirs = NULL;
    int k = 0, cap = 0;
    const char *env = getenv("QRUN_PLUGIN_PATH");
    while (env && *env) {
        const char *colon = strchr(env, ':');
        size_t len = colon ? (size_t)(colon - env) : strlen(env);
        if (len > 0) {
            char *d = qr_xmalloc(len + 1);
            memcpy(d, env, len);
            d[len] = 0;
            add_dir(&dirs, &k, &cap, d);
        }
        env = colon ? colon + 1 : NULL;
    }
    add_dir(&dirs, &k, &cap, exe_plugin_dir());
    add_dir(&dirs, &k, &cap, qr_xstrdup(QR_BUILD_DIR "/plugins"));
    add_dir(&dirs, &k, &cap, qr_xstrdup(QR_INSTALL_PREFIX "/lib/qrun/plugins"));
    *n = k;
    return dirs;
}

/* Record the current message as the failure of a file of the scan. */
static void add_failure(const char *file) {
    if (R.nfail == R.failcap) {
        R.failcap = R.failcap ? 2 * R.failcap : 4;
        R.fail = qr_xrealloc(R.fail, (size_t)R.failcap * sizeof *R.fail);
    }
    R.fail[R.nfail++] = (qr_plugin_failure){.file = qr_xstrdup(file), .error = qr_xstrdup(qr_err_msg())};
}

int qr_plugins_init(void) {
    if (R.scanned) return QR_OK;
    R.scanned = 1;
    int ndirs;
    char **dirs = search_dirs(&ndirs);
    for (int di = 0; di < ndirs; di++) {
        char **files = NULL;
        int nf = 0, fc = 0;
        list_dir(dirs[di], 1, &files, &nf, &fc);
        for (int i = 0; i < nf; i++) {
            if (load_file(files[i], di) == QR_ERR) add_failure(files[i]);
            free(files[i]);
        }
        free(files);
        free(dirs[di]);
    }
    free(dirs);
    return QR_OK;
}

int qr_plugins_failed_count(void) { return R.nfail; }

const qr_plugin_failure *qr_plugins_failed_at(int i) { return i >= 0 && i < R.nfail ? &R.fail[i] : NULL; }

int qr_plugin_load(const char *path) {
    if (!path || !*path) return qr_err_set("qr_plugin_load: expected a path, got %s", path ? "\"\"" : "NULL");
    (void)qr_plugins_init();
    return load_file(path, -1) == QR_ERR ? QR_ERR : QR_OK;
}

int qr_plugins_shutdown(void) {
    if (R.live > 0)
        return qr_err_set("qr_plugins_shutdown: %d plugin instance%s still alive", R.live,
                          R.live == 1 ? " is" : "s are");
    for (int i = 0; i < R.n; i++)
        free(R.e[i]);
    free(R.e);
    for (int i = 0; i < R.nlibs; i++) {
        dlclose(R.libs[i].handle);
        free(R.libs[i].path);
        free(R.libs[i].real);
    }
    free(R.libs);
    for (int i = 0; i < R.nfail; i++) {
        free(R.fail[i].file);
        free(R.fail[i].error);
    }
    free(R.fail);
    memset(&R, 0, sizeof R);
    return QR_OK;
}

/* ------------------------------------------------------------------ */
/* instances                                                           */
/* ------------------------------------------------------------------ */

struct qr_instance {
    int kind;
    const void *ops;
    void *self;
    const char *name;
    int refs; /* the creator's + one per qr_instance_retain */
};

/* Every ops struct starts {struct_size, create, destroy, ...}. */
typedef struct {
    uint32_t struct_size;
    void *(*create)(const qr_host *host, const char *const *kv, int n_kv);
    void (*destroy)(void *self);
} ops_head;

/* An unknown name: the known ones of its kind, and the scan's failures
 * (the entry may be in a file that did not load). */
static int unknown_name(int kind, const char *name) {
    char list[1024] = "", failed[1536] = "";
    size_t len = 0;
    int k = 0;
    for (int i = 0; i < R.n && len < sizeof list; i++)
        if (R.e[i]->info.kind == kind)
            len +=
                (size_t)snprintf(list + len, sizeof list - len, "%s%s", k++ ? ", " : "", R.e[i]->info.name);
    if (R.nfail)
        snprintf(failed, sizeof failed, "; %d plugin file%s failed to load, the first: %s", R.nfail,
                 R.nfail == 1 ? "" : "s", R.fail[0].error);
    if (k) return qr_err_set("no %s plugin named '%s' (known: %s%s)", kind_names[kind], name, list, failed);
    return qr_err_set("no %s plugin named '%s' (none loaded; searched $QRUN_PLUGIN_PATH, <qrun's "
                      "dir>/../lib/qrun/plugins, %s/plugins, %s/lib/qrun/plugins%s)",
                      kind_names[kind], name, QR_BUILD_DIR, QR_INSTALL_PREFIX, failed);
}

qr_instance *qr_instance_new(int kind, const char *name, const char *const *kv, int n_kv) {
    if (kind < 1 || kind > N_KINDS) {
        qr_err_set("qr_instance_new: unknown plugin kind %d", kind);
        return NULL;
    }
    if (!name) {
        qr_err_set("qr_instance_new: %s name is NULL", kind_names[kind]);
        return NULL;
    }
    if (n_kv < 0 || (n_kv > 0 && !kv)) {
        qr_err_set("%s '%s': bad option list (n_kv %d)", kind_names[kind], name, n_kv);
        return NULL;
    }
    for (int i = 0; i < 2 * n_kv; i++)
        if (!kv[i]) {
            qr_err_set("%s '%s': option %d: %s is NULL", kind_names[kind], name, i / 2,
                       i % 2 ? "value" : "key");
            return NULL;
        }
    (void)qr_plugins_init();
    reg_entry *e = find(kind, name);
    if (!e) {
        unknown_name(kind, name);
        return NULL;
    }
    const ops_head *ops = e->ops;
    unsigned errs = host_errs;
    void *self = ops->create(&host, kv, n_kv);
    if (!self) {
        if (host_errs == errs)
            qr_err_set("%s '%s': create() failed without a message", kind_names[kind], name);
        return NULL;
    }
    qr_instance *q = qr_xmalloc(sizeof *q);
    *q = (qr_instance){.kind = kind, .ops = e->ops, .self = self, .name = e->info.name, .refs = 1};
    R.live++;
    return q;
}

qr_instance *qr_instance_retain(qr_instance *q) {
    if (q) q->refs++;
    return q;
}

void qr_instance_free(qr_instance *q) {
    if (!q) return;
    assert(q->refs > 0);
    if (--q->refs > 0) return;
    ((const ops_head *)q->ops)->destroy(q->self);
    free(q);
    R.live--;
}

const void *qr_instance_ops(const qr_instance *q) { return q->ops; }
void *qr_instance_self(const qr_instance *q) { return q->self; }
const char *qr_instance_name(const qr_instance *q) { return q->name; }
int qr_instance_kind(const qr_instance *q) { return q->kind; }

/* ------------------------------------------------------------------ */
/* quantizer convenience                                               */
/* ------------------------------------------------------------------ */

qr_quantizer *qr_quantizer_new(const char *name, const char *const *kv, int n_kv) {
    return qr_instance_new(QR_KIND_QUANTIZER, name, kv, n_kv);
}

void qr_quantizer_free(qr_quantizer *q) { qr_instance_free(q); }

int qr_quantizer_fake(qr_quantizer *q, float *out, const float *x, int64_t rows, int64_t cols, int bits,
                      float *scales) {
    if (!q || q->kind != QR_KIND_QUANTIZER)
        return qr_err_set("qr_quantizer_fake: expected a quantizer instance, got %s",
                          q ? qr_plugin_kind_name(q->kind) : "NULL");
    if (rows < 0 || cols < 0)
        return qr_err_set("quantizer '%s': shape (%lld, %lld): expected sizes >= 0", q->name, (long long)rows,
                          (long long)cols);
    if (bits == 32) {
        if (out != x && rows * cols > 0) memmove(out, x, (size_t)(rows * cols) * sizeof *out);
        if (scales)
            for (int64_t r = 0; r < rows; r++)
                scales[r] = 0.0f;
        return QR_OK;
    }
    if (bits < 2 || bits > 16)
        return qr_err_set("quantizer '%s': bits %d: expected 2..16, or 32 for no quantization", q->name,
                          bits);
    if (rows == 0 || cols == 0) {
        if (scales)
            for (int64_t r = 0; r < rows; r++)
                scales[r] = 0.0f;
        return QR_OK;
    }
    const qr_quantizer_ops *ops = q->ops;
    unsigned errs = host_errs;
    if (ops->fake(q->self, out, x, rows, cols, bits, scales) != QR_PLUGIN_OK) {
        if (host_errs == errs) qr_err_set("quantizer '%s': fake() failed without a message", q->name);
        return QR_ERR;
    }
    return QR_OK;
}

void qr_quantizer_backward(qr_quantizer *q, float *dx, const float *dout, const float *x, int64_t rows,
                           int64_t cols, int bits) {
    assert(q && q->kind == QR_KIND_QUANTIZER);
    assert(rows >= 0 && cols >= 0);
    assert(bits == 32 || (bits >= 2 && bits <= 16));
    if (rows == 0 || cols == 0) return;
    if (bits == 32 || bits < 2 || bits > 16) {
        int64_t n = rows * cols;
        for (int64_t i = 0; i < n; i++)
            dx[i] += dout[i];
        return;
    }
    const qr_quantizer_ops *ops = q->ops;
    ops->backward(q->self, dx, dout, x, rows, cols, bits);
}
