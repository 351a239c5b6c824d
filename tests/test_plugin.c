/* test_plugin.c - the plugin loader and the schedule, loss and attack
 * plugins.
 *
 * Bad plugins are written as C strings, compiled at test time with
 * `cc -shared -fPIC -I<src>/core` into a temporary directory, and must each
 * be refused with a message naming the file, the symbol and the versions
 * (wrong ABI major, missing symbol, not a shared object, NULL descriptor,
 * small struct_size, unknown kind, NULL/bad name, NULL ops, small ops
 * struct_size, NULL function, duplicate names) while registering nothing. A
 * good plugin checks the registry, the host's option services and
 * instances (with their reference counts); the search path is checked with
 * $QRUN_PLUGIN_PATH (a bad file and a duplicate are recorded failures, each
 * naming its file, while the good plugins load and work; an unknown name
 * reports them; an earlier directory shadows a later one). The schedule
 * ABI 1.2: select_cfg may replace select, a 1.1-sized schedule (select
 * only) still loads, and a schedule with neither is refused, as is a
 * 1.1-sized one without select. Then `static` (all configs),
 * `ce` (against a hand computation and finite differences) and `typo` (toy
 * query functions: "Denver" intact, several target words, UTF-8; ABI 1.4:
 * perturb_batch asks the same candidates as perturb, in the same order,
 * and returns the same text; query_batch's error ends it). */
#define _GNU_SOURCE
#include "harness.h"
#include "plugin.h"
#include "qr.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/qr_test_plugin.XXXXXX";

/* ---- plugin sources ---- */

#define HEAD "#include \"qr_plugin.h\"\n#include <stddef.h>\n"

/* A descriptor with one or two entries (n); the ops size, fake, KIND, NAME,
 * OPS, the second name and the descriptor fields
 * are filled by format arguments. */
static const char *desc_src = HEAD
    "static void *cr(const qr_host *h, const char *const *kv, int n) { (void)h; (void)kv; (void)n; "
    "static int s; return &s; }\n"
    "static void de(void *s) { (void)s; }\n"
    "static int fk(void *s, float *o, const float *x, int64_t r, int64_t c, int b, float *sc) { return 0; }\n"
    "static void bw(void *s, float *dx, const float *g, const float *x, int64_t r, int64_t c, int b) {}\n"
    "static const qr_quantizer_ops ops = {.struct_size = %s, .create = cr, .destroy = de, .fake = %s, "
    ".backward = bw};\n"
    "static const qr_entry e[] = {{.kind = %s, .name = %s, .description = \"test\", .ops = %s}, "
    "{.kind = QR_KIND_QUANTIZER, .name = \"%s\", .description = \"second\", .ops = &ops}};\n"
    "static const qr_entry *ge(uint32_t i) { return i < 2 ? &e[i] : NULL; }\n"
    "static const qr_plugin_desc d = {.abi_major = %s, .abi_minor = 0, .struct_size = %s, "
    ".name = \"bad\", .version = \"0.1\", .n_entries = %s, .get_entry = ge};\n"
    "QR_PLUGIN_EXPORT const qr_plugin_desc *qr_plugin_get_desc(void) { return %s; }\n";

typedef struct {
    const char *file, *ops_size, *fake, *kind, *name, *ops, *second, *abi, *desc_size, *n, *ret;
    const char *expect;   /* in the message */
    const char *versions; /* in the message too: what is known of the plugin's versions */
} bad_case;

#define QR_STR_(x) #x
#define QR_STR(x) QR_STR_(x)
#define OK_OPS "sizeof(qr_quantizer_ops)", "fk"
#define HOST_ABI "host ABI 1." QR_STR(QR_PLUGIN_ABI_MINOR)
/* a descriptor that passed the ABI and size checks: its name and version too */
#define FULL_VERSIONS "(symbol qr_plugin_get_desc: plugin 'bad' 0.1, ABI 1.0; " HOST_ABI ")"
#define OK_DESC "QR_PLUGIN_ABI_MAJOR", "sizeof(qr_plugin_desc)"
static const bad_case bad_cases[] = {
    {"abi2.so", OK_OPS, "QR_KIND_QUANTIZER", "\"b1\"", "&ops", "b1x", "2", "sizeof(qr_plugin_desc)", "1",
     "&d", "abi2.so: symbol qr_plugin_get_desc: plugin ABI 2.0, host ABI 1." QR_STR(QR_PLUGIN_ABI_MINOR),
     "plugin ABI 2.0, host ABI 1." QR_STR(QR_PLUGIN_ABI_MINOR)},
    {"descnull.so", OK_OPS, "QR_KIND_QUANTIZER", "\"b2\"", "&ops", "b2x", OK_DESC, "1", "NULL",
     "descnull.so: symbol qr_plugin_get_desc returned NULL", "(host ABI 1." QR_STR(QR_PLUGIN_ABI_MINOR) ")"},
    {"descsmall.so", OK_OPS, "QR_KIND_QUANTIZER", "\"b3\"", "&ops", "b3x", "QR_PLUGIN_ABI_MAJOR", "8", "1",
     "&d", "descsmall.so: symbol qr_plugin_get_desc: descriptor struct_size 8, expected at least",
     "(plugin ABI 1.0; host ABI 1." QR_STR(QR_PLUGIN_ABI_MINOR) ")"},
    {"kind9.so", OK_OPS, "9", "\"b4\"", "&ops", "b4x", OK_DESC, "1", "&d",
     "kind9.so: entry 0 ('b4'): unknown kind 9", FULL_VERSIONS},
    {"nullname.so", OK_OPS, "QR_KIND_QUANTIZER", "NULL", "&ops", "b5x", OK_DESC, "1", "&d",
     "nullname.so: entry 0 (quantizer): name NULL", FULL_VERSIONS},
    {"badname.so", OK_OPS, "QR_KIND_QUANTIZER", "\"a b\"", "&ops", "b6x", OK_DESC, "1", "&d",
     "badname.so: entry 0 (quantizer): name 'a b'", FULL_VERSIONS},
    {"nullops.so", OK_OPS, "QR_KIND_QUANTIZER", "\"b7\"", "NULL", "b7x", OK_DESC, "1", "&d",
     "nullops.so: quantizer 'b7': ops is NULL", FULL_VERSIONS},
    {"opssmall.so", "8", "fk", "QR_KIND_QUANTIZER", "\"b8\"", "&ops", "b8x", OK_DESC, "1", "&d",
     "opssmall.so: quantizer 'b8': ops struct_size 8, expected at least", FULL_VERSIONS},
    {"nullfn.so", "sizeof(qr_quantizer_ops)", "NULL", "QR_KIND_QUANTIZER", "\"b9\"", "&ops", "b9x", OK_DESC,
     "1", "&d", "nullfn.so: quantizer 'b9': ops.fake is NULL", FULL_VERSIONS},
    {"dup.so", OK_OPS, "QR_KIND_QUANTIZER", "\"minmax\"", "&ops", "b10x", OK_DESC, "1", "&d",
     "dup.so: quantizer 'minmax' is already provided by ", FULL_VERSIONS},
    {"twice.so", OK_OPS, "QR_KIND_QUANTIZER", "\"b11\"", "&ops", "b11", OK_DESC, "2", "&d",
     "twice.so: quantizer 'b11' is defined twice (entries 0 and 1)", FULL_VERSIONS},
    /* the second entry is fine, the first is bad: nothing is registered */
    {"half.so", OK_OPS, "QR_KIND_QUANTIZER", "\"b12\"", "NULL", "b12x", OK_DESC, "2", "&d",
     "half.so: quantizer 'b12': ops is NULL", FULL_VERSIONS},
};

/* A good plugin: quantizer "t_scale" (y = scale·x, options scale, flag, n)
 * and loss "t_zero". */
static const char *good_src = HEAD
    "#include <stdlib.h>\n"
    "typedef struct { const qr_host *h; double scale; } st;\n"
    "static void *cr(const qr_host *h, const char *const *kv, int n) {\n"
    "  static const char *const known[] = {\"scale\", \"flag\", \"n\", \"fail\", NULL};\n"
    "  if (!QR_HOST_HAS(h, opt_int)) return NULL;\n"
    "  double s; int f; int64_t k;\n"
    "  if (h->opt_check(kv, n, known, \"quantizer 't_scale'\") || h->opt_double(kv, n, \"scale\", 1, 0, 10, "
    "&s, "
    "\"quantizer 't_scale'\")\n"
    "      || h->opt_bool(kv, n, \"flag\", 0, &f, \"quantizer 't_scale'\") || h->opt_int(kv, n, \"n\", 1, 1, "
    "5, &k, "
    "\"quantizer 't_scale'\")) return NULL;\n"
    "  if (h->opt(kv, n, \"fail\")) return NULL; /* a failure without a message */\n"
    "  st *p = malloc(sizeof *p); p->h = h; p->scale = s; return p; }\n"
    "static void de(void *s) { free(s); }\n"
    "static int fk(void *s, float *o, const float *x, int64_t r, int64_t c, int b, float *sc) {\n"
    "  const st *p = s; for (int64_t i = 0; i < r * c; i++) o[i] = (float)(p->scale * x[i]);\n"
    "  if (sc) for (int64_t i = 0; i < r; i++) sc[i] = (float)b; return 0; }\n"
    "static void bw(void *s, float *dx, const float *g, const float *x, int64_t r, int64_t c, int b) {\n"
    "  const st *p = s; for (int64_t i = 0; i < r * c; i++) dx[i] += (float)(p->scale * g[i]); }\n"
    "static const qr_quantizer_ops qops = {.struct_size = sizeof qops, .create = cr, .destroy = de, .fake = "
    "fk, "
    ".backward = bw};\n"
    "static void *lc(const qr_host *h, const char *const *kv, int n) { static int z; return &z; }\n"
    "static void ld(void *s) { }\n"
    "static int lcomp(void *s, float *loss, float *d, const float *l, const float *t, const int32_t *y, "
    "int64_t N, "
    "int V) { *loss = 0; return 0; }\n"
    "static const qr_loss_ops lops = {.struct_size = sizeof lops, .create = lc, .destroy = ld, .compute = "
    "lcomp};\n"
    "static const qr_entry e[] = {{.kind = QR_KIND_QUANTIZER, .name = \"t_scale\", .description = \"y = "
    "scale x\", "
    ".ops = &qops},\n"
    "  {.kind = QR_KIND_LOSS, .name = \"t_zero\", .description = \"zero\", .ops = &lops}};\n"
    "static const qr_entry *ge(uint32_t i) { return i < 2 ? &e[i] : NULL; }\n"
    "static const qr_plugin_desc d = {.abi_major = QR_PLUGIN_ABI_MAJOR, .abi_minor = QR_PLUGIN_ABI_MINOR + "
    "3, "
    ".struct_size = sizeof d, .name = \"goodplug\", .version = \"2.5.1\", .n_entries = 2, .get_entry = ge};\n"
    "QR_PLUGIN_EXPORT const qr_plugin_desc *qr_plugin_get_desc(void) { return &d; }\n";

/* A plugin as ABI 1.0 wrote it: descriptor 1.0, a loss whose ops end at
 * compute (no features, no scored_rows_only), only the 1.0 services. */
static const char *v10_src = HEAD
    "static void *cr(const qr_host *h, const char *const *kv, int n) {\n"
    "  static const char *const known[] = {\"k\", NULL}; static int s;\n"
    "  return h->opt_check(kv, n, known, \"loss 't_v10'\") ? NULL : &s; }\n"
    "static void de(void *s) { (void)s; }\n"
    "static int comp(void *s, float *loss, float *d, const float *l, const float *t, const int32_t *y, "
    "int64_t N, int V) { *loss = 42; return 0; }\n"
    "static const qr_loss_ops ops = {.struct_size = offsetof(qr_loss_ops, features), .create = cr, "
    ".destroy = de, .compute = comp};\n"
    "static const qr_entry e[] = {{.kind = QR_KIND_LOSS, .name = \"t_v10\", .description = \"1.0\", "
    ".ops = &ops}};\n"
    "static const qr_entry *ge(uint32_t i) { return i < 1 ? &e[i] : NULL; }\n"
    "static const qr_plugin_desc d = {.abi_major = 1, .abi_minor = 0, .struct_size = sizeof d, "
    ".name = \"v10\", .version = \"1.0\", .n_entries = 1, .get_entry = ge};\n"
    "QR_PLUGIN_EXPORT const qr_plugin_desc *qr_plugin_get_desc(void) { return &d; }\n";

/* A plugin written with the ABI 1.2 helpers: QR_STATE_NEW, opt_choice,
 * qr_state_fail/free and QR_QUANTIZER_PLUGIN. y = (1 + index of mode) x. */
static const char *v12_src = HEAD
    "#define WHO \"quantizer 't_v12'\"\n"
    "typedef struct { const qr_host *host; int mode; } st;\n"
    "static void *cr(const qr_host *host, const char *const *kv, int n_kv) {\n"
    "  static const char *const known[] = {\"mode\", NULL}, *const modes[] = {\"one\", \"two\", "
    "\"three\", NULL};\n"
    "  st *p = QR_STATE_NEW(st, host, kv, n_kv, known, WHO);\n"
    "  if (p && (p->host != host || p->mode != 0)) return qr_state_fail(p); /* a failure without a message */\n"
    "  if (p && host->opt_choice(kv, n_kv, \"mode\", modes, 1, &p->mode, WHO)) return qr_state_fail(p);\n"
    "  return p; }\n"
    "static int fk(void *s, float *o, const float *x, int64_t r, int64_t c, int b, float *sc) {\n"
    "  const st *p = s; for (int64_t i = 0; i < r * c; i++) o[i] = (float)(p->mode + 1) * x[i]; return 0; }\n"
    "static void bw(void *s, float *dx, const float *g, const float *x, int64_t r, int64_t c, int b) {}\n"
    "QR_QUANTIZER_PLUGIN(\"t_v12\", \"1.2\", \"MIT\", \"y = (1 + mode) x\", .create = cr, "
    ".destroy = qr_state_free, .fake = fk, .backward = bw);\n";

/* A schedule NAME whose ops struct_size is SIZE, with select SEL and the
 * 1.2 select_cfg CFG (NULL or the function), in a descriptor of ABI
 * 1.MINOR. */
static const char *sched_src = HEAD
    "static void *cr(const qr_host *h, const char *const *kv, int n) { static int s; return &s; }\n"
    "static void de(void *s) { }\n"
    "static int sel(void *s, int t, int T, int n, int *out) { out[0] = 0; return 1; }\n"
    "static int selc(void *s, int t, int T, int n, const qr_schedule_config *const *c, int *out) {\n"
    "  out[0] = 0; return 1; }\n"
    "static const qr_schedule_ops ops = {.struct_size = %s, .create = cr, .destroy = de, .select = %s, "
    ".select_cfg = %s};\n"
    "static const qr_entry e[] = {{.kind = QR_KIND_SCHEDULE, .name = \"%s\", .description = \"t\", "
    ".ops = &ops}};\n"
    "static const qr_entry *ge(uint32_t i) { return i < 1 ? &e[i] : NULL; }\n"
    "static const qr_plugin_desc d = {.abi_major = QR_PLUGIN_ABI_MAJOR, .abi_minor = %s, .struct_size = "
    "sizeof d, .name = \"%s\", .version = \"0.1\", .n_entries = 1, .get_entry = ge};\n"
    "QR_PLUGIN_EXPORT const qr_plugin_desc *qr_plugin_get_desc(void) { return &d; }\n";

static const char *nosym_src = "int qr_plugin_get_something_else(void) { return 1; }\n";

/* Write dir/name.c from src and compile it to dir/name.so. */
static int build(const char *dir, const char *name, const char *src) {
    char c[512], so[512], cmd[2048];
    snprintf(c, sizeof c, "%s/%s.c", dir, name);
    snprintf(so, sizeof so, "%s/%s.so", dir, name);
    FILE *f = fopen(c, "w");
    if (!f) return -1;
    fputs(src, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cc -shared -fPIC -w -I'%s/core' -o '%s' '%s'", QR_SOURCE_DIR, so, c);
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "  failed: %s\n", cmd);
    return rc;
}

static char *path_in(const char *dir, const char *file) {
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = qr_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, file);
    return p;
}

static int has(const char *msg, const char *needle) {
    if (strstr(msg, needle)) return 1;
    fprintf(stderr, "  message '%s'\n  lacks '%s'\n", msg, needle);
    return 0;
}

/* ---- loader ---- */

static void test_bad_plugins(void) {
    int n0 = qr_plugins_count();
    char src[8192], name[64];
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *b = &bad_cases[i];
        snprintf(src, sizeof src, desc_src, b->ops_size, b->fake, b->kind, b->name, b->ops, b->second, b->abi,
                 b->desc_size, b->n, b->ret);
        snprintf(name, sizeof name, "%.*s", (int)(strlen(b->file) - 3), b->file);
        if (build(tmpdir, name, src) != 0) {
            test_cond("compile a test plugin (cc)", 0);
            continue;
        }
        char *p = path_in(tmpdir, b->file);
        int rc = qr_plugin_load(p);
        printf("%-12s -> %s\n", b->file, rc == QR_OK ? "(loaded!)" : qr_err_msg());
        test_cond(b->file, rc == QR_ERR);
        test_cond(b->file, has(qr_err_msg(), b->expect) && has(qr_err_msg(), p));
        test_cond("the message names the symbol and the versions",
                  has(qr_err_msg(), "qr_plugin_get_desc") && has(qr_err_msg(), b->versions));
        test_cond("a refused plugin registers nothing", qr_plugins_count() == n0);
        free(p);
    }
    /* the duplicate's message names both files */
    char *p = path_in(tmpdir, "dup.so");
    qr_plugin_load(p);
    const qr_plugin_info *mm = qr_plugin_find(QR_KIND_QUANTIZER, "minmax");
    test_cond("duplicate names both files", mm && has(qr_err_msg(), mm->file));
    test_cond("duplicate names the version of the plugin that provides it",
              mm && has(qr_err_msg(), "(plugin 'minmax' ") && has(qr_err_msg(), mm->version));
    free(p);

    /* not a shared object; missing symbol; missing file; a directory */
    p = path_in(tmpdir, "notelf.so");
    FILE *f = fopen(p, "w");
    fputs("this is not an ELF file\n", f);
    fclose(f);
    test_cond("not a shared object",
              qr_plugin_load(p) == QR_ERR && has(qr_err_msg(), p) && has(qr_err_msg(), "cannot load plugin") &&
                  has(qr_err_msg(), "(symbol qr_plugin_get_desc; " HOST_ABI ")"));
    printf("%-12s -> %s\n", "notelf.so", qr_err_msg());
    free(p);
    if (build(tmpdir, "nosym", nosym_src) == 0) {
        p = path_in(tmpdir, "nosym.so");
        test_cond("missing symbol", qr_plugin_load(p) == QR_ERR && has(qr_err_msg(), p) &&
                                        has(qr_err_msg(), "symbol qr_plugin_get_desc not found") &&
                                        has(qr_err_msg(), "(" HOST_ABI ")"));
        printf("%-12s -> %s\n", "nosym.so", qr_err_msg());
        free(p);
    }
    p = path_in(tmpdir, "missing.so");
    test_cond("missing file", qr_plugin_load(p) == QR_ERR && has(qr_err_msg(), p) &&
                                  has(qr_err_msg(), "No such file") &&
                                  has(qr_err_msg(), "(symbol qr_plugin_get_desc; " HOST_ABI ")"));
    printf("%-12s -> %s\n", "missing.so", qr_err_msg());
    free(p);
    test_cond("a directory", qr_plugin_load(tmpdir) == QR_ERR && has(qr_err_msg(), "not a regular file"));
    test_cond("NULL path", qr_plugin_load(NULL) == QR_ERR);
    test_cond("nothing registered by any of them", qr_plugins_count() == n0);
}

static void test_good_plugin(void) {
    if (build(tmpdir, "good", good_src) != 0) {
        test_cond("compile the good plugin", 0);
        return;
    }
    int n0 = qr_plugins_count();
    char *p = path_in(tmpdir, "good.so");
    int rc = qr_plugin_load(p);
    test_cond("good plugin loads (a newer minor version is accepted)", rc == QR_OK);
    if (rc != QR_OK) {
        fprintf(stderr, "  %s\n", qr_err_msg());
        free(p);
        return;
    }
    test_cond("two entries registered", qr_plugins_count() == n0 + 2);
    test_cond("loading the same file again is a no-op",
              qr_plugin_load(p) == QR_OK && qr_plugins_count() == n0 + 2);
    const qr_plugin_info *qi = qr_plugin_find(QR_KIND_QUANTIZER, "t_scale");
    const qr_plugin_info *li = qr_plugin_find(QR_KIND_LOSS, "t_zero");
    test_cond("entries found by kind and name", qi && li && !qr_plugin_find(QR_KIND_LOSS, "t_scale"));
    if (qi) {
        test_cond("info fields", !strcmp(qi->kind_name, "quantizer") && !strcmp(qi->plugin, "goodplug") &&
                                     !strcmp(qi->version, "2.5.1") && !strcmp(qi->file, p) &&
                                     !strcmp(qi->description, "y = scale x"));
    }
    int found = 0;
    for (int i = 0; i < qr_plugins_count(); i++)
        found += qr_plugins_at(i) == qi;
    test_cond("qr_plugins_at lists it",
              found == 1 && qr_plugins_at(-1) == NULL && qr_plugins_at(qr_plugins_count()) == NULL);

    /* options through the host services */
    const char *kv[] = {"scale", "2.5", "flag", "true", "n", "3"};
    qr_quantizer *q = qr_quantizer_new("t_scale", kv, 3);
    test_cond("create with options", q != NULL);
    if (q) {
        float x[4] = {1, 2, 3, 4}, y[4], s[2], dx[4] = {1, 1, 1, 1};
        test_cond("fake through the plugin",
                  qr_quantizer_fake(q, y, x, 2, 2, 5, s) == QR_OK && y[3] == 10 && s[1] == 5);
        qr_quantizer_backward(q, dx, x, x, 2, 2, 5);
        test_cond("backward accumulates", dx[2] == 1 + 2.5f * 3);
        test_cond("instance accessors", !strcmp(qr_instance_name(q), "t_scale") &&
                                            qr_instance_kind(q) == QR_KIND_QUANTIZER && qr_instance_self(q) &&
                                            qr_instance_ops(q) != NULL);
        test_cond("shutdown refused while an instance lives",
                  qr_plugins_shutdown() == QR_ERR && has(qr_err_msg(), "still alive"));
        /* a user (a model) retains it; its creator's free leaves it usable */
        test_cond("retain returns the instance", qr_instance_retain(q) == q && qr_instance_retain(NULL) == NULL);
        qr_quantizer_free(q);
        test_cond("still usable after the creator's free (ASan checks the memory)",
                  qr_quantizer_fake(q, y, x, 2, 2, 5, s) == QR_OK && y[3] == 10);
        test_cond("still alive for shutdown",
                  qr_plugins_shutdown() == QR_ERR && has(qr_err_msg(), "1 plugin instance"));
        qr_quantizer_free(q); /* the last reference: destroyed */
    }
    struct {
        const char *k, *v, *expect;
    } bad[] = {
        {"bogus", "1", "quantizer 't_scale': unknown option 'bogus' (options: scale, flag, n, fail)"},
        {"scale", "abc", "quantizer 't_scale': option scale: expected a number, got 'abc'"},
        {"scale", "11", "option scale: expected a number in [0, 10], got 11"},
        {"scale", "nan", "option scale: expected a number, got 'nan'"},
        {"flag", "maybe", "option flag: expected true or false, got 'maybe'"},
        {"n", "0.5", "option n: expected an integer, got '0.5'"},
        {"n", "9", "option n: expected an integer in [1, 5], got 9"},
        {"fail", "1", "quantizer 't_scale': create() failed without a message"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *kv1[] = {bad[i].k, bad[i].v};
        q = qr_quantizer_new("t_scale", kv1, 1);
        test_cond(bad[i].expect, q == NULL && has(qr_err_msg(), bad[i].expect));
        qr_quantizer_free(q);
    }
    const char *kvnull[] = {"scale", NULL};
    test_cond("NULL option value",
              qr_quantizer_new("t_scale", kvnull, 1) == NULL && has(qr_err_msg(), "NULL"));

    /* unknown names list the known ones of that kind */
    q = qr_quantizer_new("nope", NULL, 0);
    test_cond("unknown quantizer", q == NULL &&
                                       has(qr_err_msg(), "no quantizer plugin named 'nope' (known: ") &&
                                       has(qr_err_msg(), "minmax") && has(qr_err_msg(), "t_scale"));
    printf("unknown name -> %s\n", qr_err_msg());
    qr_instance *li2 = qr_instance_new(QR_KIND_LOSS, "nope", NULL, 0);
    test_cond("unknown loss lists losses only",
              li2 == NULL && has(qr_err_msg(), "t_zero") && !strstr(qr_err_msg(), "minmax"));
    test_cond("unknown kind", qr_instance_new(7, "x", NULL, 0) == NULL && has(qr_err_msg(), "kind 7"));
    qr_instance *lz = qr_instance_new(QR_KIND_LOSS, "t_zero", NULL, 0);
    float y[1];
    test_cond("fake on a loss instance is refused",
              lz && qr_quantizer_fake(lz, y, y, 1, 1, 4, NULL) == QR_ERR && has(qr_err_msg(), "loss"));
    qr_instance_free(lz);
    qr_instance_free(NULL);

    /* a second file with the same entry names */
    char *p2 = path_in(tmpdir, "good2.so");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", p, p2);
    if (system(cmd) == 0)
        test_cond("a copy is a duplicate naming both files",
                  qr_plugin_load(p2) == QR_ERR && has(qr_err_msg(), p2) && has(qr_err_msg(), p));
    free(p2);
    free(p);

    test_cond("kind names", !strcmp(qr_plugin_kind_name(QR_KIND_ATTACK), "attack") &&
                                !strcmp(qr_plugin_kind_name(99), "unknown") &&
                                qr_plugin_kind_parse("schedule") == QR_KIND_SCHEDULE &&
                                qr_plugin_kind_parse("x") == 0);
}

static char old_host_msg[512];
static int old_host_err(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(old_host_msg, sizeof old_host_msg, fmt, ap);
    va_end(ap);
    return QR_PLUGIN_ERR;
}

/* Minor versions: a 1.0 plugin (smaller loss ops, 1.0 services only) loads
 * and works next to 1.2 ones; a plugin using the 1.2 helpers works, and on
 * a 1.1 host its create() fails with a message instead of calling past the
 * end of the host table. */
static void test_abi_versions(void) {
    if (build(tmpdir, "v10", v10_src) != 0 || build(tmpdir, "v12", v12_src) != 0) {
        test_cond("compile the versioned plugins", 0);
        return;
    }
    char *p = path_in(tmpdir, "v10.so");
    test_cond("a 1.0 plugin loads", qr_plugin_load(p) == QR_OK);
    free(p);
    const char *kv[] = {"k", "1"};
    qr_instance *l = qr_instance_new(QR_KIND_LOSS, "t_v10", kv, 1);
    test_cond("a 1.0 loss creates", l != NULL);
    if (l) {
        const qr_loss_ops *ops = qr_instance_ops(l);
        float loss = 0, lg[2] = {0, 0};
        int32_t y[1] = {0};
        test_cond("a 1.0 loss has no 1.1 functions", !QR_LOSS_HAS(ops, features) && !QR_LOSS_HAS(ops, scored_rows_only));
        test_cond("a 1.0 loss computes", ops->compute(qr_instance_self(l), &loss, NULL, lg, NULL, y, 1, 2) == 0 &&
                                             loss == 42);
    }
    qr_instance_free(l);

    p = path_in(tmpdir, "v12.so");
    test_cond("a 1.2 plugin loads", qr_plugin_load(p) == QR_OK);
    free(p);
    const qr_plugin_info *in = qr_plugin_find(QR_KIND_QUANTIZER, "t_v12");
    test_cond("QR_QUANTIZER_PLUGIN: the descriptor and the entry",
              in && !strcmp(in->plugin, "t_v12") && !strcmp(in->version, "1.2") &&
                  !strcmp(in->description, "y = (1 + mode) x"));
    struct {
        const char *mode;
        float y;
    } ok[] = {{NULL, 2}, {"one", 1}, {"two", 2}, {"three", 3}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *kv1[] = {"mode", ok[i].mode};
        qr_quantizer *q = qr_quantizer_new("t_v12", kv1, ok[i].mode ? 1 : 0);
        float x = 1, y = 0;
        test_cond("opt_choice: default and each choice; QR_STATE_NEW set host and zeroed the rest",
                  q && qr_quantizer_fake(q, &y, &x, 1, 1, 4, NULL) == QR_OK && y == ok[i].y);
        qr_quantizer_free(q);
    }
    const char *bad1[] = {"mode", "four"}, *bad2[] = {"mood", "one"};
    test_cond("opt_choice refuses another value, listing the choices",
              qr_quantizer_new("t_v12", bad1, 1) == NULL &&
                  has(qr_err_msg(), "quantizer 't_v12': option mode: expected \"one\", \"two\" or \"three\", got 'four'"));
    test_cond("QR_STATE_NEW refuses an unknown key, listing the known ones",
              qr_quantizer_new("t_v12", bad2, 1) == NULL &&
                  has(qr_err_msg(), "quantizer 't_v12': unknown option 'mood' (options: mode)"));

    /* a host table of ABI 1.1 (it ends at opt_int) */
    qr_host old = {.struct_size = (uint32_t)offsetof(qr_host, opt_choice), .abi_major = 1, .abi_minor = 1,
                   .err_set = old_host_err};
    typedef struct {
        const qr_host *host;
    } st;
    st *s = QR_STATE_NEW(st, &old, NULL, 0, NULL, "quantizer 'x'");
    test_cond("QR_STATE_NEW on a 1.1 host: NULL and a message naming both versions",
              s == NULL && has(old_host_msg, "quantizer 'x': host services too old (ABI 1.1") &&
                  has(old_host_msg, "needs ABI 1.2"));
    qr_state_free(s);
}

/* The search path: $QRUN_PLUGIN_PATH first, one level deep; a file that
 * fails to load is a recorded failure naming it while the rest loads and
 * works; an earlier directory shadows a later one. */
static void test_search_path(void) {
    char *bad = path_in(tmpdir, "pathbad"), *good = path_in(tmpdir, "pathgood"), cmd[2048];
    /* pathbad: a.so (t_scale, t_zero), quantizer/b.so (a copy of it: a
     * duplicate in the same directory) and quantizer/zz.so (not ELF) */
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/quantizer' '%s/quantizer' && cp '%s/notelf.so' '%s/quantizer/zz.so' && "
             "cp '%s/good.so' '%s/a.so' && cp '%s/good.so' '%s/quantizer/b.so' && "
             "cp '%s/good.so' '%s/good.so' && cp '%s/dup.so' '%s/quantizer/mm.so'",
             bad, good, tmpdir, bad, tmpdir, bad, tmpdir, bad, tmpdir, good, tmpdir, good);
    if (system(cmd) != 0) {
        test_cond("set up plugin directories", 0);
        return;
    }
    test_cond("shutdown", qr_plugins_shutdown() == QR_OK && qr_plugins_count() == 0);

    setenv("QRUN_PLUGIN_PATH", bad, 1);
    int rc = qr_plugins_init();
    int nf = qr_plugins_failed_count();
    printf("QRUN_PLUGIN_PATH=%s -> %d failed\n", bad, nf);
    for (int i = 0; i < nf; i++)
        printf("  %s: %s\n", qr_plugins_failed_at(i)->file, qr_plugins_failed_at(i)->error);
    test_cond("a scan with bad files still succeeds", rc == QR_OK);
    test_cond("both bad files are recorded, nothing else", nf == 2 && qr_plugins_failed_at(2) == NULL &&
                                                                  qr_plugins_failed_at(-1) == NULL);
    if (nf == 2) {
        const qr_plugin_failure *f0 = qr_plugins_failed_at(0), *f1 = qr_plugins_failed_at(1);
        test_cond("the duplicate copy is a failure naming it (the later file)",
                  strstr(f0->file, "pathbad/quantizer/b.so") && has(f0->error, f0->file) &&
                      has(f0->error, "quantizer 't_scale' is already provided by ") &&
                      has(f0->error, "pathbad/a.so") && has(f0->error, "plugin 'goodplug' 2.5.1"));
        test_cond("the bad file is a failure naming it",
                  strstr(f1->file, "pathbad/quantizer/zz.so") && has(f1->error, f1->file) &&
                      has(f1->error, "cannot load plugin"));
    }
    const qr_plugin_info *t = qr_plugin_find(QR_KIND_QUANTIZER, "t_scale");
    test_cond("the good file of the same directory loads", t && strstr(t->file, "pathbad/a.so"));
    test_cond("the scan still loads the build tree's plugins",
              qr_plugin_find(QR_KIND_QUANTIZER, "minmax") != NULL);
    qr_quantizer *q = qr_quantizer_new("minmax", NULL, 0);
    test_cond("instances work despite the bad files", q != NULL);
    qr_quantizer_free(q);
    q = qr_quantizer_new("t_scale", NULL, 0);
    test_cond("and so do the good path plugin's", q != NULL);
    qr_quantizer_free(q);
    test_cond("init again: still fine, same failures", qr_plugins_init() == QR_OK && qr_plugins_failed_count() == 2);
    q = qr_quantizer_new("zz", NULL, 0);
    printf("unknown name after failures -> %s\n", qr_err_msg());
    test_cond("an unknown name reports the failures and the first error",
              q == NULL && has(qr_err_msg(), "no quantizer plugin named 'zz'") &&
                  has(qr_err_msg(), "2 plugin files failed to load, the first: ") &&
                  has(qr_err_msg(), "pathbad/quantizer/b.so"));
    test_cond("shutdown", qr_plugins_shutdown() == QR_OK && qr_plugins_failed_count() == 0);

    /* pathgood: good.so at the top level and quantizer/mm.so providing "minmax" */
    snprintf(cmd, sizeof cmd, "%s:%s", "/no/such/dir", good);
    setenv("QRUN_PLUGIN_PATH", cmd, 1);
    rc = qr_plugins_init();
    test_cond("a good path scans cleanly", rc == QR_OK && qr_plugins_failed_count() == 0);
    if (qr_plugins_failed_count()) fprintf(stderr, "  %s\n", qr_plugins_failed_at(0)->error);
    t = qr_plugin_find(QR_KIND_QUANTIZER, "t_scale");
    const qr_plugin_info *mm = qr_plugin_find(QR_KIND_QUANTIZER, "minmax");
    test_cond("top-level .so found", t && strstr(t->file, "pathgood/good.so"));
    test_cond("kind subdirectory scanned; it shadows the build tree's minmax",
              mm && strstr(mm->file, "pathgood/quantizer/mm.so"));
    test_cond("the rest of the build tree is there", qr_plugin_find(QR_KIND_LOSS, "ce") != NULL);
    test_cond("shutdown", qr_plugins_shutdown() == QR_OK);

    unsetenv("QRUN_PLUGIN_PATH");
    test_cond("default path scans cleanly", qr_plugins_init() == QR_OK && qr_plugins_failed_count() == 0);
    mm = qr_plugin_find(QR_KIND_QUANTIZER, "minmax");
    test_cond("minmax back from the build tree", mm && strstr(mm->file, "/plugins/quantizer/minmax.so"));
    free(bad);
    free(good);
}

/* ---- schedule, loss ---- */

/* The schedule ABI 1.2: select_cfg is optional and may replace select; a
 * 1.0/1.1-sized ops (struct_size ending at select) loads as before and its
 * select_cfg, past struct_size, is never seen. */
static void test_schedule_abi(void) {
#define SZ_11 "offsetof(qr_schedule_ops, select_cfg)"
    static const struct {
        const char *file, *size, *sel, *cfg, *minor;
        int loads, has_cfg;
    } cases[] = {
        {"s_both", "sizeof ops", "sel", "selc", "2", 1, 1},
        {"s_cfgonly", "sizeof ops", "NULL", "selc", "2", 1, 1},
        {"s_neither", "sizeof ops", "NULL", "NULL", "2", 0, 0},
        {"s_old", SZ_11, "sel", "selc", "1", 1, 0},   /* a 1.1 plugin: select_cfg is past its size */
        {"s_oldnull", SZ_11, "NULL", "selc", "1", 0, 0},
    };
#undef SZ_11
    char src[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(src, sizeof src, sched_src, cases[i].size, cases[i].sel, cases[i].cfg, cases[i].file,
                 cases[i].minor, cases[i].file);
        if (build(tmpdir, cases[i].file, src) != 0) {
            test_cond("compile a schedule plugin (cc)", 0);
            continue;
        }
        char so[128];
        snprintf(so, sizeof so, "%s.so", cases[i].file);
        char *p = path_in(tmpdir, so);
        int rc = qr_plugin_load(p);
        printf("%-12s -> %s\n", so, rc == QR_OK ? "loaded" : qr_err_msg());
        if (cases[i].loads) {
            test_cond(cases[i].file, rc == QR_OK);
            qr_instance *s = qr_instance_new(QR_KIND_SCHEDULE, cases[i].file, NULL, 0);
            test_cond("schedule instance", s != NULL);
            if (s) {
                const qr_schedule_ops *o = qr_instance_ops(s);
                test_cond("QR_SCHEDULE_HAS(ops, select_cfg) as the plugin's size says",
                          (QR_SCHEDULE_HAS(o, select_cfg) ? 1 : 0) == cases[i].has_cfg);
                qr_instance_free(s);
            }
        } else {
            test_cond(cases[i].file, rc == QR_ERR && has(qr_err_msg(), "ops.select is NULL") &&
                                         has(qr_err_msg(), p));
        }
        free(p);
    }
}

static void test_static(void) {
    qr_instance *s = qr_instance_new(QR_KIND_SCHEDULE, "static", NULL, 0);
    test_cond("create schedule static", s != NULL);
    if (!s) return;
    const qr_schedule_ops *ops = qr_instance_ops(s);
    int out[5] = {-1, -1, -1, -1, -1}, ok = 1;
    for (int t = 0; t < 100; t += 7) {
        int n = ops->select(qr_instance_self(s), t, 100, 5, out);
        ok &= n == 5;
        for (int i = 0; i < 5; i++)
            ok &= out[i] == i;
    }
    test_cond("static selects every configuration at every step", ok);
    test_cond("static has no select_cfg (it keeps select)", !QR_SCHEDULE_HAS(ops, select_cfg));
    test_cond("static: n_configs 0 refused",
              ops->select(qr_instance_self(s), 0, 10, 0, out) < 0 && has(qr_err_msg(), "n_configs"));
    const char *kv[] = {"period", "3"};
    test_cond("static: unknown option", qr_instance_new(QR_KIND_SCHEDULE, "static", kv, 1) == NULL &&
                                            has(qr_err_msg(), "schedule 'static': unknown option 'period'"));
    qr_instance_free(s);
}

static void test_ce(void) {
    qr_instance *l = qr_instance_new(QR_KIND_LOSS, "ce", NULL, 0);
    test_cond("create loss ce", l != NULL);
    if (!l) return;
    const qr_loss_ops *ops = qr_instance_ops(l);
    void *self = qr_instance_self(l);
    /* by hand: row 0 = {1, 2, 3} -> 2: lse = log(e + e^2 + e^3) = 3.4076060,
     * loss 0.4076060; row 1 not scored; row 2 = {1, -1, 0.5} -> 0: lse =
     * 1.5549569, loss 0.5549569; mean 0.4812814. dlogits = (softmax -
     * onehot)/2: row 0 {0.0450153, 0.1223642, 0.3326205 - 0.5}, row 2
     * {0.2870485 - 0.5, 0.0388478, 0.1741037}. */
    float logits[9] = {1, 2, 3, 0, 0, 0, 1, -1, 0.5f}, d[9], loss;
    int32_t tg[3] = {2, -1, 0};
    for (int i = 0; i < 9; i++)
        d[i] = 0.25f; /* += */
    int rc = ops->compute(self, &loss, d, logits, NULL, tg, 3, 3);
    const double want[9] = {0.0450153, 0.1223642,       0.3326205 - 0.5, 0,        0,
                            0,         0.2870485 - 0.5, 0.0388478,       0.1741037};
    double md = 0;
    for (int i = 0; i < 9; i++)
        md = fmax(md, fabs(d[i] - 0.25 - want[i]));
    printf("ce: loss %.7f (hand 0.4812814), dlogits maxdiff %.3g (tol 1e-6)\n", loss, md);
    test_cond("ce loss = hand computation", rc == 0 && fabs(loss - 0.4812814) < 1e-6);
    test_cond("ce dlogits = hand computation (accumulated)", md < 1e-6);

    /* finite differences on random logits (double-checked in float: eps 1e-2, tol 1e-3) */
    enum { N = 4, V = 7 };
    float L[N * V], G[N * V] = {0};
    int32_t T[N] = {3, -1, 0, 6};
    uint64_t r = 99;
    for (int i = 0; i < N * V; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        L[i] = (float)((r >> 40) % 1000) / 250.0f - 2.0f;
    }
    ops->compute(self, &loss, G, L, NULL, T, N, V);
    double maxfd = 0;
    for (int i = 0; i < N * V; i++) {
        float lp, lm, keep = L[i];
        L[i] = keep + 1e-2f;
        ops->compute(self, &lp, NULL, L, NULL, T, N, V);
        L[i] = keep - 1e-2f;
        ops->compute(self, &lm, NULL, L, NULL, T, N, V);
        L[i] = keep;
        maxfd = fmax(maxfd, fabs((lp - lm) / 2e-2 - G[i]));
    }
    printf("ce: dlogits vs central differences maxdiff %.3g (tol 1e-3)\n", maxfd);
    test_cond("ce gradient = finite differences", maxfd < 1e-3);

    int32_t none[3] = {-1, -1, -1};
    test_cond("ce: nothing scored gives 0",
              ops->compute(self, &loss, d, logits, NULL, none, 3, 3) == 0 && loss == 0);
    int32_t badt[3] = {2, 3, 0};
    test_cond("ce: target out of range names the row",
              ops->compute(self, &loss, d, logits, NULL, badt, 3, 3) < 0 &&
                  has(qr_err_msg(), "targets[1] = 3"));
    logits[7] = NAN;
    test_cond("ce: NaN logits name the row",
              ops->compute(self, &loss, NULL, logits, NULL, tg, 3, 3) < 0 && has(qr_err_msg(), "row 2"));
    qr_instance_free(l);
}

/* ---- attack ---- */

typedef struct {
    const char *const *targets; /* words that must stay intact */
    int n, queries;
} toy;

/* score = fraction of the target words found intact in the candidate */
static double toy_query(void *ctx, const char *cand) {
    toy *t = ctx;
    t->queries++;
    int k = 0;
    for (int i = 0; i < t->n; i++)
        k += strstr(cand, t->targets[i]) != NULL;
    return (double)k / t->n;
}

/* Levenshtein distance, small strings */
static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b), *d = qr_xcalloc((size_t)(la + 1) * (lb + 1), sizeof *d);
    for (int i = 0; i <= la; i++)
        d[i * (lb + 1)] = i;
    for (int j = 0; j <= lb; j++)
        d[j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int c = d[(i - 1) * (lb + 1) + j - 1] + (a[i - 1] != b[j - 1]);
            c = fmin(c, d[(i - 1) * (lb + 1) + j] + 1);
            c = fmin(c, d[i * (lb + 1) + j - 1] + 1);
            d[i * (lb + 1) + j] = c;
        }
    int r = d[la * (lb + 1) + lb];
    free(d);
    return r;
}

static int valid_utf8(const unsigned char *s) {
    while (*s) {
        int n = *s < 0x80             ? 0
                : (*s & 0xE0) == 0xC0 ? 1
                : (*s & 0xF0) == 0xE0 ? 2
                : (*s & 0xF8) == 0xF0 ? 3
                                      : -1;
        if (n < 0) return 0;
        s++;
        for (int i = 0; i < n; i++, s++)
            if ((*s & 0xC0) != 0x80) return 0;
    }
    return 1;
}

/* The toy's batched query, with a log of every candidate it scored (in
 * order) and a failure on demand (fail_at: the batch number, 1-based). */
typedef struct {
    toy t;
    char log[4096];
    size_t len;
    int batches, largest, fail_at;
} toy_log;

static double log_query(void *ctx, const char *cand) {
    toy_log *l = ctx;
    l->len += (size_t)snprintf(l->log + l->len, l->len < sizeof l->log ? sizeof l->log - l->len : 0, "%s|", cand);
    if (l->len >= sizeof l->log) l->len = sizeof l->log - 1;
    return toy_query(&l->t, cand);
}

static int log_query_batch(void *ctx, const char *const *cands, int n, double *scores) {
    toy_log *l = ctx;
    if (++l->batches == l->fail_at) return qr_err_set("toy: batch %d failed", l->batches);
    if (n > l->largest) l->largest = n;
    for (int i = 0; i < n; i++) scores[i] = log_query(ctx, cands[i]);
    return QR_PLUGIN_OK;
}

/* typo's perturb_batch against its perturb on the toy */
static void test_typo_batch(qr_instance *a) {
    const qr_attack_ops *ops = qr_instance_ops(a);
    void *self = qr_instance_self(a);
    test_cond("typo has the ABI 1.4 perturb_batch", QR_ATTACK_HAS(ops, perturb_batch));
    if (!QR_ATTACK_HAS(ops, perturb_batch)) return;
    const char *text = "The Denver Broncos won Super Bowl 50, beating the Carolina Panthers.";
    const char *three[] = {"Denver", "Broncos", "Carolina"};
    static toy_log s, b; /* 4 kB logs */
    int same = 1, biggest = 0;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        s = (toy_log){.t = {three, 3, 0}};
        b = (toy_log){.t = {three, 3, 0}};
        char *o1 = NULL, *o2 = NULL;
        int r1 = ops->perturb(self, text, log_query, &s, 2, seed, &o1);
        int r2 = ops->perturb_batch(self, text, log_query, log_query_batch, &b, 2, seed, &o2);
        same &= r1 == 0 && r2 == 0 && o1 && o2 && !strcmp(o1, o2) && s.len == b.len && !strcmp(s.log, b.log) &&
                b.batches > 0;
        if (b.largest > biggest) biggest = b.largest;
        free(o1);
        free(o2);
    }
    printf("typo perturb_batch: 8 seeds, the same text and queries as perturb; largest batch %d\n", biggest);
    test_cond("perturb_batch == perturb: the same text, the same queries in order", same);
    test_cond("perturb_batch batches several candidates", biggest > 1);
    char *out = NULL;
    b = (toy_log){.t = {three, 3, 0}, .fail_at = 2};
    test_cond("a failing query_batch ends perturb_batch with its message",
              ops->perturb_batch(self, text, log_query, log_query_batch, &b, 2, 1, &out) < 0 && !out &&
                  has(qr_err_msg(), "toy: batch 2 failed"));
    test_cond("perturb_batch without query_batch is refused",
              ops->perturb_batch(self, text, log_query, NULL, &b, 2, 1, &out) < 0 && !out &&
                  has(qr_err_msg(), "query_batch must not be NULL"));
}

static void test_typo(void) {
    qr_instance *a = qr_instance_new(QR_KIND_ATTACK, "typo", NULL, 0);
    test_cond("create attack typo", a != NULL);
    if (!a) return;
    const qr_attack_ops *ops = qr_instance_ops(a);
    void *self = qr_instance_self(a);
    const char *text = "The Denver Broncos won Super Bowl 50, beating the Carolina Panthers.";
    const char *denver[] = {"Denver"};
    toy t = {denver, 1, 0};
    char *out = NULL, *out2 = NULL;
    int rc = ops->perturb(self, text, toy_query, &t, 1, 42, &out);
    test_cond("typo perturbs", rc == 0 && out);
    if (!out) goto done;
    printf("typo (Denver intact = 1): \"%s\" -> \"%s\" (%d queries)\n", text, out, t.queries);
    test_cond("typo breaks Denver", !strstr(out, "Denver"));
    test_cond("one character edit (Levenshtein <= 2: a swap is 2)", edit_distance(text, out) <= 2);
    test_cond("other words intact",
              strstr(out, " Broncos won Super Bowl 50, beating the Carolina Panthers.") &&
                  !strncmp(out, "The ", 4));
    test_cond("queries: 1 + one per word + at most 4 edits", t.queries <= 1 + 12 + 4);
    t.queries = 0;
    ops->perturb(self, text, toy_query, &t, 1, 42, &out2);
    test_cond("deterministic for a seed", out2 && !strcmp(out, out2));
    free(out);
    free(out2);
    out = out2 = NULL;

    /* budget 0, and a text the victim already fails on: unchanged */
    ops->perturb(self, text, toy_query, &t, 0, 1, &out);
    test_cond("budget 0: unchanged", out && !strcmp(out, text));
    free(out);
    out = NULL;
    t.queries = 0;
    ops->perturb(self, "no target here", toy_query, &t, 3, 1, &out);
    test_cond("score already 0: unchanged, one query",
              out && !strcmp(out, "no target here") && t.queries == 1);
    free(out);
    out = NULL;
    test_cond("negative budget refused", ops->perturb(self, text, toy_query, &t, -1, 1, &out) < 0 && !out &&
                                             has(qr_err_msg(), "budget"));

    /* several targets: the budget limits the words edited */
    const char *three[] = {"Denver", "Broncos", "Carolina"};
    toy t3 = {three, 3, 0};
    ops->perturb(self, text, toy_query, &t3, 2, 7, &out);
    int intact = out ? (strstr(out, "Denver") != NULL) + (strstr(out, "Broncos") != NULL) +
                           (strstr(out, "Carolina") != NULL)
                     : -1;
    printf("typo (3 targets, budget 2): \"%s\"\n", out ? out : "(null)");
    test_cond("budget 2 edits two of three target words", intact == 1);
    test_cond("two edits", out && edit_distance(text, out) <= 4 && edit_distance(text, out) >= 2);
    free(out);
    out = NULL;

    /* UTF-8: edits keep the text valid over many seeds */
    const char *utext = "Zürich café naïve Ærøskøbing Denver";
    const char *uw[] = {"Zürich", "café", "naïve", "Ærøskøbing"};
    toy tu = {uw, 4, 0};
    int ok = 1;
    for (uint64_t seed = 0; seed < 40; seed++) {
        if (ops->perturb(self, utext, toy_query, &tu, 4, seed, &out) != 0 || !out) {
            ok = 0;
            break;
        }
        ok &= valid_utf8((const unsigned char *)out) && strstr(out, "Denver") != NULL;
        free(out);
        out = NULL;
    }
    test_cond("UTF-8 stays valid; untouched words intact", ok);
    const char *kv[] = {"tries", "3"};
    qr_instance *a3 = qr_instance_new(QR_KIND_ATTACK, "typo", kv, 1);
    test_cond("typo tries=3", a3 != NULL);
    qr_instance_free(a3);
    const char *kvb[] = {"tries", "0"};
    test_cond("typo tries=0 refused",
              qr_instance_new(QR_KIND_ATTACK, "typo", kvb, 1) == NULL && has(qr_err_msg(), "option tries"));
    test_typo_batch(a);
done:
    qr_instance_free(a);
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    unsetenv("QRUN_PLUGIN_PATH");
    int rc = qr_plugins_init();
    test_cond("the default scan succeeds", rc == QR_OK && qr_plugins_failed_count() == 0);
    for (int i = 0; i < qr_plugins_failed_count(); i++) fprintf(stderr, "  %s\n", qr_plugins_failed_at(i)->error);
    printf("%d plugin entries:\n", qr_plugins_count());
    for (int i = 0; i < qr_plugins_count(); i++) {
        const qr_plugin_info *p = qr_plugins_at(i);
        printf("  %-9s %-8s %s (%s)\n", p->kind_name, p->name, p->file, p->description);
    }
    test_cond("built-in entries present", qr_plugin_find(QR_KIND_SCHEDULE, "static") &&
                                              qr_plugin_find(QR_KIND_LOSS, "ce") &&
                                              qr_plugin_find(QR_KIND_ATTACK, "typo"));
    test_bad_plugins();
    test_good_plugin();
    test_abi_versions();
    test_search_path();
    test_static();
    test_schedule_abi();
    test_ce();
    test_typo();
    test_cond("final shutdown", qr_plugins_shutdown() == QR_OK);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_report();
}
