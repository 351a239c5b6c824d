/* qr_plugin.h - the plugin ABI: what a quantizer, schedule, loss or attack
 * plugin implements, and the host services it may call. This is the one
 * header a plugin author needs (it is installed as <qrun/qr_plugin.h>).
 *
 * A plugin is a shared library exporting one symbol,
 *     const qr_plugin_desc *qr_plugin_get_desc(void);
 * whose descriptor starts with the ABI version it was built against and its
 * own size (the loader refuses a different major version, naming the file,
 * the symbol and both versions). Entries are enumerated by index until
 * n_entries; optional extras are looked up by name (get_ext). The host hands
 * every create() a qr_host table of services that is only ever appended to,
 * so older plugins keep working. QR_STATE_NEW (create()'s opening) and
 * QR_<KIND>_PLUGIN (the ops, entry and descriptor of a one-entry plugin)
 * write the rest, so that a plugin is its ops (ABI 1.2; docs/PLUGINS.md).
 * ABI 1.3 adds the word-level services of the attacks (candidates,
 * is_stopword; docs/ATTACKS.md) and the sentence similarity (similarity).
 * ABI 1.4 adds the batched victim query of the attacks (the optional
 * attack op perturb_batch; QR_ATTACK_HAS).
 *
 * Conventions: every row-wise operation quantizes each row of a row-major
 * (rows, cols) matrix on its own: per output channel for a weight stored
 * (out, in), per token for activations (N, in). bits is 2..16; 32 means
 * "not quantized" and never reaches a plugin. Errors: return QR_PLUGIN_ERR
 * after host->err_set(...) with a message naming the plugin and the option
 * or value at fault.
 *
 * Loader rules (core/plugin.c; docs/PLUGINS.md): abi_major must equal the
 * host's, any abi_minor is accepted (minor versions only append); a
 * descriptor or ops struct whose struct_size is smaller than the 1.0 layout
 * is refused; every function pointer of an ops struct must be non-NULL
 * but the optional ones (a schedule needs select or select_cfg; an
 * attack always needs perturb, perturb_batch is optional);
 * create() returns NULL only on error (a plugin without state returns any
 * non-NULL pointer, e.g. to a static object, and destroy() ignores it);
 * a name is unique within its kind. */
#ifndef QR_PLUGIN_H
#define QR_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define QR_PLUGIN_ABI_MAJOR 1
#define QR_PLUGIN_ABI_MINOR 4
#define QR_PLUGIN_SYMBOL "qr_plugin_get_desc"

#define QR_PLUGIN_OK 0
#define QR_PLUGIN_ERR (-1)

typedef enum {
    QR_KIND_QUANTIZER = 1,
    QR_KIND_SCHEDULE = 2,
    QR_KIND_LOSS = 3,
    QR_KIND_ATTACK = 4,
} qr_plugin_kind;

/* ABI 1.3: what the candidates service writes for one word (a fixed
 * layout: a candidate is never longer than QR_WORD_MAX - 1 bytes, the
 * embedding file's own limit). */
#define QR_WORD_MAX 64
/* parts of speech (WordNet's four), as bits */
#define QR_POS_NOUN 1u
#define QR_POS_VERB 2u
#define QR_POS_ADJ 4u
#define QR_POS_ADV 8u
/* the pos_match argument of candidates */
#define QR_POS_MATCH_ANY 0       /* no part-of-speech filter */
#define QR_POS_MATCH_SAME 1      /* the two words share a part of speech (or WordNet knows neither) */
#define QR_POS_MATCH_NOUN_VERB 2 /* the same, a noun and a verb counting as one (TextFooler's
                                    allow_verb_noun_swap) */
typedef struct qr_candidate {
    char word[QR_WORD_MAX]; /* NUL-terminated UTF-8, as the embedding spells it (lower case) */
    float cos;              /* cosine similarity to the query word */
    uint32_t pos;           /* QR_POS_* bits WordNet gives it; 0: none, or no POS table loaded */
} qr_candidate;

/* Services of the host (append-only: new fields go at the end). */
typedef struct qr_host {
    uint32_t struct_size;
    uint32_t abi_major, abi_minor;
    /* record an error message (printf-style); returns QR_PLUGIN_ERR */
    int (*err_set)(const char *fmt, ...);
    /* options given from Lua as key/value strings: the value of key, or NULL */
    const char *(*opt)(const char *const *kv, int n_kv, const char *key);

    /* Option helpers (ABI 1.0). Each records a message naming `who` (the
     * entry, e.g. "quantizer 'minmax'"), the key and what was expected, and
     * returns QR_PLUGIN_ERR on bad input; a missing key gives *out = def. */
    /* every key of kv must be in known (NULL-terminated); the message lists them */
    int (*opt_check)(const char *const *kv, int n_kv, const char *const *known, const char *who);
    /* "true"/"false" (also 1/0, yes/no, on/off) */
    int (*opt_bool)(const char *const *kv, int n_kv, const char *key, int def, int *out, const char *who);
    /* a finite number in [lo, hi] */
    int (*opt_double)(const char *const *kv, int n_kv, const char *key, double def, double lo, double hi,
                      double *out, const char *who);
    /* an integer in [lo, hi] */
    int (*opt_int)(const char *const *kv, int n_kv, const char *key, int64_t def, int64_t lo, int64_t hi,
                   int64_t *out, const char *who);

    /* ABI 1.2: the opening of every create() (see QR_STATE_NEW, which a
     * plugin calls instead of these two directly). */
    /* one of choices (NULL-terminated): *out = its index; a missing key
     * gives *out = def; anything else is refused, listing the choices */
    int (*opt_choice)(const char *const *kv, int n_kv, const char *key, const char *const *choices, int def,
                      int *out, const char *who);
    /* opt_check(kv, n_kv, known, who), then a zeroed block of size bytes
     * whose first member, a const qr_host *, is set to host; NULL after a
     * message on error. The block is released with free() (qr_state_free). */
    void *(*state_new)(const struct qr_host *host, size_t size, const char *const *kv, int n_kv,
                       const char *const *known, const char *who);

    /* ABI 1.3: the word-level resources of the attacks (docs/ATTACKS.md),
     * served from what the host has loaded (Lua: qr.attack_resources(wv);
     * C: qr_wordvec_serve): a plugin never opens a file itself. Check
     * QR_HOST_HAS(host, candidates) (an older host has neither). When no
     * resources are loaded, both record a message naming what is missing
     * and the setup command and return QR_PLUGIN_ERR.
     *
     * candidates: the k nearest neighbours of word (itself not counted) in
     * the word embedding by cosine, exactly (every word scored), then those
     * with cos >= min_cos, then those whose part of speech matches word's
     * (pos_match: QR_POS_MATCH_*; anything but ANY needs the POS table),
     * into out[0..k-1] by decreasing cosine (ties: the embedding's order,
     * most frequent first). Returns how many (0..k; 0 for a word the
     * embedding does not have, looked up as given and then with ASCII
     * letters lower-cased), or QR_PLUGIN_ERR (k < 0, min_cos NaN, out NULL
     * with k > 0, a bad pos_match, nothing loaded). TextFooler: k = 50,
     * min_cos = 0.5, QR_POS_MATCH_NOUN_VERB. */
    int (*candidates)(const struct qr_host *host, const char *word, int k, double min_cos, int pos_match,
                      qr_candidate *out);
    /* is_stopword: 1 if word (ASCII letters compared without case) is on
     * the loaded stop-word list (TextFooler's 266 words), 0 if not,
     * QR_PLUGIN_ERR when no list is loaded. */
    int (*is_stopword)(const struct qr_host *host, const char *word);
    /* similarity: out[i] = the cosine of the sentence encoder's embeddings
     * of ref and texts[i], i < n, all embedded in one batch (TextFooler's
     * and BERT-Attack's sentence-similarity constraint; the encoder is
     * all-MiniLM-L6-v2 standing in for USE, docs/ENCODER.md). Returns 0, or
     * QR_PLUGIN_ERR (NULL arguments, n < 0, no encoder served: the message
     * names scripts/fetch_encoder.sh and qr.attack_encoder). Check
     * QR_HOST_HAS(host, similarity): a 1.3 host built before it lacks it. */
    int (*similarity)(const struct qr_host *host, const char *ref, const char *const *texts, int n, double *out);
    /* lm_candidates: up to k replacements for the word text[start, start +
     * len), proposed by a causal language model from the left context
     * text[0, start) (its most probable next tokens that begin a word, one
     * token each), then re-ranked by the log-likelihood of the whole text
     * with each in place (descending; out[i].cos holds it, in nats; pos 0).
     * BERT-Attack's masked-LM proposal, for a machine with no masked LM.
     * Returns how many, or QR_PLUGIN_ERR (bad arguments, no LM served: the
     * message names qr.attack_lm). Check QR_HOST_HAS(host, lm_candidates). */
    int (*lm_candidates)(const struct qr_host *host, const char *text, size_t start, size_t len, int k,
                         qr_candidate *out);
    /* new services go here, and a plugin checks QR_HOST_HAS before using them */
} qr_host;

/* Whether the host table has `field` (a plugin built against a newer minor
 * version must check this before calling a service added after 1.0). */
#define QR_HOST_HAS(host, field) \
    ((host)->struct_size >= offsetof(qr_host, field) + sizeof((host)->field))

/* ABI 1.2: a plugin's state, written once (the part of SQLite's
 * SQLITE_EXTENSION_INIT2 here). With a state struct whose first member is
 * the host,
 *
 *     typedef struct { const qr_host *host; int tries; } mine;
 *
 *     static void *mine_create(const qr_host *host, const char *const *kv, int n_kv) {
 *         static const char *const known[] = {"tries", NULL};
 *         mine *m = QR_STATE_NEW(mine, host, kv, n_kv, known, "attack 'mine'");
 *         int64_t tries;
 *         if (!m) return NULL;
 *         if (host->opt_int(kv, n_kv, "tries", 1, 1, 64, &tries, "attack 'mine'") != QR_PLUGIN_OK)
 *             return qr_state_fail(m);
 *         m->tries = (int)tries;
 *         return m;
 *     }
 *
 * and .destroy = qr_state_free, QR_STATE_NEW checks that the host has the
 * 1.2 services (an older host gets a message naming `who` and both ABI
 * versions), that every key of kv is in known (the message lists them) and
 * returns a zeroed TYPE with ->host set, or NULL after a message. */
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define QR_STATE_SIZE_(TYPE)                                                                               \
    (sizeof(TYPE) + 0 * sizeof(struct {                                                                    \
         _Static_assert(offsetof(TYPE, host) == 0, #TYPE ": the host must be the first member");           \
         char c_;                                                                                          \
     }))
#else
#define QR_STATE_SIZE_(TYPE) sizeof(TYPE)
#endif
#define QR_STATE_NEW(TYPE, host_, kv_, n_kv_, known_, who_)                                                 \
    ((TYPE *)qr_state_new_((host_), QR_STATE_SIZE_(TYPE), (kv_), (n_kv_), (known_), (who_)))

static inline void *qr_state_new_(const qr_host *host, size_t size, const char *const *kv, int n_kv,
                                  const char *const *known, const char *who) {
    if (!QR_HOST_HAS(host, state_new)) {
        host->err_set("%s: host services too old (ABI %u.%u, struct_size %u; this plugin needs ABI %d.2)", who,
                      host->abi_major, host->abi_minor, host->struct_size, QR_PLUGIN_ABI_MAJOR);
        return NULL;
    }
    return host->state_new(host, size, kv, n_kv, known, who);
}

/* The destroy() of a plugin whose state came from QR_STATE_NEW. */
static inline void qr_state_free(void *self) { free(self); }
/* create()'s way out after QR_STATE_NEW succeeded: frees self, returns NULL. */
static inline void *qr_state_fail(void *self) {
    free(self);
    return NULL;
}

/* Options reach create() as n_kv pairs kv[2i] = key, kv[2i+1] = value
 * (strings; "true"/"false" for booleans). A create() must refuse a key it
 * does not know, naming it. */

/* ---- quantizer ---- */
typedef struct qr_quantizer_ops {
    uint32_t struct_size;
    void *(*create)(const qr_host *host, const char *const *kv, int n_kv); /* NULL on error */
    void (*destroy)(void *self);
    /* out (rows, cols) = fake-quantized x, row by row, at `bits`; out may be
     * x. scales (rows), if non-NULL, receives each row's scale (the step
     * between levels, or the quantizer's own notion, documented). NaN or Inf
     * in x is an error naming the row (out is then unspecified). */
    int (*fake)(void *self, float *out, const float *x, int64_t rows, int64_t cols, int bits, float *scales);
    /* dx (rows, cols) += dout * d fake(x) / dx, the quantizer's gradient
     * (straight-through, possibly masked outside the clipping range). */
    void (*backward)(void *self, float *dx, const float *dout, const float *x, int64_t rows, int64_t cols,
                     int bits);
} qr_quantizer_ops;

/* ---- schedule: which configurations train at a step ---- */

/* ABI 1.2: what a schedule sees of one configuration of the set. The host
 * passes an array of pointers, so this struct can grow at the end
 * (struct_size says how far it goes) without moving the elements. Bits are
 * 2..16, or 32 for a layer that is not quantized. */
typedef struct qr_schedule_config {
    uint32_t struct_size; /* sizeof(qr_schedule_config) in the host */
    const char *name;     /* e.g. "w4a8" */
    int n_layers;         /* linear layers (the quantization sites) */
    /* over the linear layers, the means weighted by each one's parameters
     * (in x out: its multiply-adds per token), as precision.lua's P.cost */
    double wbits_mean, abits_mean;
    int wbits_min, wbits_max, abits_min, abits_max;
    /* BitOPs per token relative to every layer at w32a32:
     * sum(in x out x w x a) / sum(in x out x 32 x 32); 1 = full precision */
    double bitops;
} qr_schedule_config;

typedef struct qr_schedule_ops {
    uint32_t struct_size;
    void *(*create)(const qr_host *host, const char *const *kv, int n_kv);
    void (*destroy)(void *self);
    /* Step t (0-based) of T, n_configs in the set: write the indices of the
     * configurations to run into out (room for n_configs), return how many
     * (>= 1), or QR_PLUGIN_ERR. */
    int (*select)(void *self, int t, int T, int n_configs, int *out);
    /* ABI 1.2, optional (NULL, or absent from an older plugin's smaller
     * struct): select seeing the configurations, cfgs[i] for i <
     * n_configs, in the order of the set (pointers valid for the call).
     * When set, the host calls it instead of select. A plugin that has it
     * may leave select NULL (a 1.1 host then refuses to load it). */
    int (*select_cfg)(void *self, int t, int T, int n_configs, const qr_schedule_config *const *cfgs, int *out);
} qr_schedule_ops;

/* Whether a schedule plugin's ops has the 1.2 function `field` set. */
#define QR_SCHEDULE_HAS(ops, field) \
    ((ops)->struct_size >= offsetof(qr_schedule_ops, field) + sizeof((ops)->field) && (ops)->field)

/* A schedule helper (ABI 1.2): the index of the configuration at position
 * k (0-based) of the set ordered by BitOPs, cheapest first, ties by index;
 * -1 when k is out of range. O(n^2), no allocation (n is small). */
static inline int qr_schedule_by_bitops(int n, const qr_schedule_config *const *cfgs, int k) {
    for (int i = 0; i < n; i++) {
        int rank = 0;
        for (int j = 0; j < n; j++)
            rank += cfgs[j]->bitops < cfgs[i]->bitops || (cfgs[j]->bitops == cfgs[i]->bitops && j < i);
        if (rank == k) return i;
    }
    return -1;
}

/* ---- loss: a scalar and the gradient of the logits ---- */
typedef struct qr_loss_ops {
    uint32_t struct_size;
    void *(*create)(const qr_host *host, const char *const *kv, int n_kv);
    void (*destroy)(void *self);
    /* logits (N, V) of the student; teacher (N, V) or NULL; targets (N), -1
     * = not scored. *loss = the loss (mean over scored rows); dlogits (N, V)
     * += d loss / d logits. */
    int (*compute)(void *self, float *loss, float *dlogits, const float *logits, const float *teacher,
                   const int32_t *targets, int64_t N, int V);
    /* ABI 1.1, optional (NULL, or absent from a 1.0 plugin's smaller
     * struct): a term on hidden states, added to compute's. hidden and
     * teacher (L, N, C): the residual stream after each of the model's L
     * blocks, the student's and the teacher's (teacher never NULL: the host
     * refuses to train such a loss without one); targets as above. *loss =
     * this term; dhidden (L, N, C) += d loss / d hidden. A loss made only of
     * this term sets *loss = 0 in compute and leaves dlogits alone. */
    int (*features)(void *self, float *loss, float *dhidden, const float *hidden, const float *teacher,
                    const int32_t *targets, int64_t N, int C, int L);
    /* ABI 1.1, optional: 1 if compute reads only the scored rows (target
     * != -1), 0 if it needs the others too. When every term of the loss
     * says 1, the host computes the logits of the scored rows alone (the
     * head is a fifth of a SmolLM2 step) and compute sees just those rows:
     * N = their count, every target >= 0. NULL or absent = 0. */
    int (*scored_rows_only)(void *self);
} qr_loss_ops;

/* Whether a loss plugin's ops has the 1.1 function `field` set. */
#define QR_LOSS_HAS(ops, field) \
    ((ops)->struct_size >= offsetof(qr_loss_ops, field) + sizeof((ops)->field) && (ops)->field)
#define QR_LOSS_HAS_FEATURES(ops) QR_LOSS_HAS(ops, features)

/* ---- attack: perturb a text against a model ---- */
typedef struct qr_attack_ops {
    uint32_t struct_size;
    void *(*create)(const qr_host *host, const char *const *kv, int n_kv);
    void (*destroy)(void *self);
    /* Perturb text (UTF-8) with at most `budget` edits (the attack's unit:
     * words or characters, documented), querying the victim through
     * query(ctx, candidate) -> score, higher = better for the victim (e.g.
     * F1 of its answer). *out is a malloc'd string the host frees. query
     * may return -HUGE_VAL: the victim can no longer be asked (from Lua:
     * its scoring function raised an error); the attack should stop and
     * return what it has (typo stops: its score is no longer > 0). */
    int (*perturb)(void *self, const char *text, double (*query)(void *ctx, const char *candidate), void *ctx,
                   int budget, uint64_t seed, char **out);
    /* ABI 1.4, optional (NULL, or absent from an older plugin's smaller
     * struct; check QR_ATTACK_HAS(ops, perturb_batch)): perturb with a
     * batched victim as well, so that the candidates of one position (the
     * edits of a word, its neighbours) are scored together, one batched
     * forward instead of n. The host calls it instead of perturb when it
     * has a batched scorer (from Lua: perturb's fifth argument), and
     * perturb otherwise, so perturb stays required. query and query_batch
     * (neither NULL) are the same victim behind one ctx and one budget; a
     * plugin may mix them.
     *
     * query_batch(ctx, cands, n, scores): scores[i] = the score of cands[i]
     * for i < n, with query's meaning; the same as calling query(ctx,
     * cands[0]), ..., query(ctx, cands[n-1]) in that order (the same
     * scores up to the victim's own batch arithmetic; a victim drawing a
     * configuration per query, RPI, draws them in that order). The host
     * enforces the query budget, not the plugin: it charges the n
     * candidates in order, and those past the budget score +HUGE_VAL (never
     * accepted) without reaching the victim, exactly as query answers once
     * the budget is spent, so no plugin can exceed it. A candidate the
     * victim can no longer be asked about scores -HUGE_VAL, as with query
     * (from Lua: the batch scoring function raised an error, so the whole
     * batch, and every later query); the attack should stop. cands and
     * their strings need only live for the call. Returns QR_PLUGIN_OK, or
     * QR_PLUGIN_ERR after a message (n < 0, or NULL arrays with n > 0);
     * n = 0 asks nothing. */
    int (*perturb_batch)(void *self, const char *text, double (*query)(void *ctx, const char *candidate),
                         int (*query_batch)(void *ctx, const char *const *cands, int n, double *scores),
                         void *ctx, int budget, uint64_t seed, char **out);
} qr_attack_ops;

/* Whether an attack plugin's ops has the 1.4 function `field` set. */
#define QR_ATTACK_HAS(ops, field) \
    ((ops)->struct_size >= offsetof(qr_attack_ops, field) + sizeof((ops)->field) && (ops)->field)

typedef struct qr_entry {
    uint32_t kind;           /* qr_plugin_kind */
    const char *name;        /* unique within its kind, e.g. "minmax" */
    const char *description; /* one line */
    const void *ops;         /* qr_quantizer_ops * etc., by kind */
} qr_entry;

typedef struct qr_plugin_desc {
    uint32_t abi_major, abi_minor; /* QR_PLUGIN_ABI_MAJOR / _MINOR at build time */
    uint32_t struct_size;          /* sizeof(qr_plugin_desc) at build time */
    const char *name, *version, *license;
    uint32_t n_entries;
    const qr_entry *(*get_entry)(uint32_t i);
    const void *(*get_ext)(const char *key); /* may be NULL */
} qr_plugin_desc;

#if defined(__GNUC__)
#define QR_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define QR_PLUGIN_EXPORT
#endif

/* Every plugin defines this one function. */
QR_PLUGIN_EXPORT const qr_plugin_desc *qr_plugin_get_desc(void);

/* The descriptor, written once. Given a file-scope array of entries,
 *
 *     static const qr_entry entries[] = {
 *         {.kind = QR_KIND_QUANTIZER, .name = "mine", .description = "...", .ops = &mine_ops},
 *     };
 *     QR_PLUGIN_DEFINE("mine", "1.0.0", "MIT", entries);
 *
 * defines the descriptor (this ABI version, its size, n_entries counted
 * from the array, no get_ext) and qr_plugin_get_desc. A plugin that offers
 * extras by name (get_ext) writes its descriptor out by hand instead. */
#define QR_PLUGIN_N_ENTRIES(entries) ((uint32_t)(sizeof(entries) / sizeof((entries)[0])))
#define QR_PLUGIN_DEFINE(NAME, VERSION, LICENSE, ENTRIES)                                                  \
    static const qr_entry *qr_plugin_entry_(uint32_t i) {                                                 \
        return i < QR_PLUGIN_N_ENTRIES(ENTRIES) ? &(ENTRIES)[i] : NULL;                                    \
    }                                                                                                      \
    static const qr_plugin_desc qr_plugin_desc_ = {                                                       \
        .abi_major = QR_PLUGIN_ABI_MAJOR,                                                                  \
        .abi_minor = QR_PLUGIN_ABI_MINOR,                                                                  \
        .struct_size = sizeof(qr_plugin_desc),                                                             \
        .name = (NAME),                                                                                    \
        .version = (VERSION),                                                                              \
        .license = (LICENSE),                                                                              \
        .n_entries = QR_PLUGIN_N_ENTRIES(ENTRIES),                                                         \
        .get_entry = qr_plugin_entry_,                                                                     \
        .get_ext = NULL,                                                                                   \
    };                                                                                                     \
    QR_PLUGIN_EXPORT const qr_plugin_desc *qr_plugin_get_desc(void) { return &qr_plugin_desc_; }         \
    QR_PLUGIN_EXPORT const qr_plugin_desc *qr_plugin_get_desc(void) /* the caller's ';' ends this */

/* A plugin of one entry, named as the plugin, in one statement: the ops
 * (struct_size set; the rest given as designated initializers), the entry
 * and the descriptor (QR_PLUGIN_DEFINE):
 *
 *     QR_QUANTIZER_PLUGIN("mine", "1.0.0", "MIT", "one line of description",
 *                         .create = mine_create, .destroy = qr_state_free,
 *                         .fake = mine_fake, .backward = mine_backward);
 *
 * (ABI 1.2; likewise QR_SCHEDULE_PLUGIN, QR_LOSS_PLUGIN, QR_ATTACK_PLUGIN). */
#define QR_PLUGIN_ONE(KIND, OPS_TYPE, NAME, VERSION, LICENSE, DESCRIPTION, ...)                              \
    static const OPS_TYPE qr_plugin_ops_ = {.struct_size = sizeof(OPS_TYPE), __VA_ARGS__};                \
    static const qr_entry qr_plugin_entries_[] = {                                                         \
        {.kind = (KIND), .name = (NAME), .description = (DESCRIPTION), .ops = &qr_plugin_ops_},            \
    };                                                                                                     \
    QR_PLUGIN_DEFINE(NAME, VERSION, LICENSE, qr_plugin_entries_)
#define QR_QUANTIZER_PLUGIN(...) QR_PLUGIN_ONE(QR_KIND_QUANTIZER, qr_quantizer_ops, __VA_ARGS__)
#define QR_SCHEDULE_PLUGIN(...) QR_PLUGIN_ONE(QR_KIND_SCHEDULE, qr_schedule_ops, __VA_ARGS__)
#define QR_LOSS_PLUGIN(...) QR_PLUGIN_ONE(QR_KIND_LOSS, qr_loss_ops, __VA_ARGS__)
#define QR_ATTACK_PLUGIN(...) QR_PLUGIN_ONE(QR_KIND_ATTACK, qr_attack_ops, __VA_ARGS__)

#endif
