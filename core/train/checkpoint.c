/* checkpoint.c - the trainer's checkpoint file: header text, payload,
 * checksum, atomic write and verified read (see checkpoint.h). */
#define _GNU_SOURCE
#include "checkpoint.h"

#include "qr.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKPT_MAGIC "QRTRAIN\0"
#define CKPT_VERSION 1u

/* The header: "key=value\n" lines. Keys before "step" must match on
 * resume; step and after are the saved state. */
static char *header_text(const qr_checkpoint *ck) {
    const qr_model_config *c = qr_model_cfg(ck->m);
    const qr_train_opts *o = ck->o;
    size_t cap = 4096 + (size_t)ck->n_configs * QR_TRAIN_NAME_MAX + strlen(ck->schedule_opts) + strlen(ck->loss_opts);
    char *s = qr_xmalloc(cap), *p = s;
    size_t left = cap;
#define PUT(...)                                      \
    do {                                              \
        int k_ = snprintf(p, left, __VA_ARGS__);      \
        p += k_;                                      \
        left -= (size_t)k_;                           \
    } while (0)
    PUT("format=qrun-train-checkpoint\nendian=little\n");
    PUT("arch=%s\n", qr_model_arch_name(ck->m));
    PUT("shape=layers %d, embd %d, heads %d/%d, ff %d, vocab %d, ctx %d\n", c->n_layer, c->n_embd, c->n_head,
        c->n_kv_head, c->n_ff, c->n_vocab, c->n_ctx);
    PUT("weights_fnv=%016llx\n", (unsigned long long)ck->weights_fnv);
    PUT("lora_rank=%d\nlora_slots=%d\nlora_alpha=%.9g\nlora_params=%lld\n", qr_model_lora_rank(ck->m), ck->n_slots,
        (double)qr_model_lora_alpha(ck->m), (long long)ck->n_lora);
    PUT("configs=");
    for (int i = 0; i < ck->n_configs; i++) PUT("%s%s", i ? "," : "", ck->config_names[i]);
    PUT("\nconfigs_fnv=%016llx\n", (unsigned long long)ck->configs_fnv);
    PUT("schedule=%s\nschedule_opts=%s\nloss=%s\nloss_opts=%s\nteacher=%s\n", ck->schedule, ck->schedule_opts,
        ck->loss, ck->loss_opts, ck->teacher);
    PUT("steps=%d\nbatch=%d\naccum=%d\nseq=%d\n", o->steps, o->batch, o->accum, o->seq);
    PUT("lr=%.9g\nmin_lr=%.9g\nwarmup=%d\nclip=%.9g\nweight_decay=%.9g\nbeta1=%.9g\nbeta2=%.9g\neps=%.9g\n",
        (double)o->lr, (double)o->min_lr, o->warmup, (double)o->clip, (double)o->weight_decay, (double)o->beta1,
        (double)o->beta2, (double)o->eps);
    PUT("seed=%llu\n", (unsigned long long)o->seed);
    PUT("data_sequences=%d\ndata_tokens=%lld\ndata_fnv=%016llx\n", ck->n_data, (long long)ck->n_tokens,
        (unsigned long long)ck->data_fnv);
    PUT("step=%d\nepoch=%d\ncursor=%d\nrng=%016llx\n", ck->step, ck->epoch, ck->cursor, (unsigned long long)ck->rng);
    /* pad to whole 32-bit words: the checksum runs over words */
    while ((p - s) % 4) PUT("\n");
#undef PUT
    return s;
}

/* Readable names of header keys, for messages. */
static const char *field_label(const char *key) {
    static const char *const map[][2] = {{"configs", "configuration set"},
                                         {"configs_fnv", "configuration layers (bit-widths or adapter slots)"},
                                         {"weights_fnv", "base model weights (checksum)"},
                                         {"data_fnv", "training data (checksum)"},
                                         {"lora_rank", "LoRA rank"},
                                         {"lora_slots", "LoRA slots"},
                                         {"lora_alpha", "LoRA alpha"},
                                         {"shape", "model shape"},
                                         {"arch", "model architecture"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], key) == 0) return map[i][1];
    return key;
}

/* Bytes after the header, up to the checksum. */
static int64_t payload_size(const qr_checkpoint *c) {
    return (int64_t)3 * c->n_lora * 4 + (int64_t)c->n_adapters * 4 + (int64_t)c->n_data * 4;
}

/* ------------------------------------------------------------------ */
/* writing                                                             */

static int write_all(int fd, const void *p, size_t n, uint64_t *h, const char *path) {
    const char *b = p;
    *h = qr_fnv_words(*h, p, n / 4);
    if (n % 4) *h = qr_fnv(*h, b + n - n % 4, n % 4);
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return qr_err_set("%s: write failed: %s", path, strerror(errno));
        }
        b += k;
        n -= (size_t)k;
    }
    return QR_OK;
}

int qr_checkpoint_write(const qr_checkpoint *c, const char *path) {
    const int64_t nl = c->n_lora;
    for (int64_t i = 0; i < nl; i++)
        if (!isfinite(c->lora[i]))
            return qr_err_set("%s: not saved: adapter value %lld is not finite", path, (long long)i);
    size_t tl = strlen(path) + 32;
    char *tmp = qr_xmalloc(tl);
    snprintf(tmp, tl, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        qr_err_set("%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return QR_ERR;
    }
    char *hdr = header_text(c);
    uint32_t ver = CKPT_VERSION, hl = (uint32_t)strlen(hdr);
    uint64_t h = QR_FNV_INIT;
    int rc = write_all(fd, CKPT_MAGIC, 8, &h, tmp);
    if (!rc) rc = write_all(fd, &ver, 4, &h, tmp);
    if (!rc) rc = write_all(fd, &hl, 4, &h, tmp);
    if (!rc) rc = write_all(fd, hdr, hl, &h, tmp);
    if (!rc) rc = write_all(fd, c->lora, (size_t)nl * 4, &h, tmp);
    if (!rc) rc = write_all(fd, c->m1, (size_t)nl * 4, &h, tmp);
    if (!rc) rc = write_all(fd, c->v1, (size_t)nl * 4, &h, tmp);
    if (!rc) rc = write_all(fd, c->slot_t, (size_t)c->n_adapters * 4, &h, tmp);
    if (!rc) rc = write_all(fd, c->perm, (size_t)c->n_data * 4, &h, tmp);
    uint64_t hh = h;
    if (!rc) rc = write_all(fd, &hh, 8, &h, tmp);
    free(hdr);
    if (!rc && fsync(fd)) rc = qr_err_set("%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) && !rc) rc = qr_err_set("%s: close failed: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path)) rc = qr_err_set("%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (rc)
        unlink(tmp);
    else
        qr_fsync_parent(path);
    free(tmp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* reading                                                             */

/* The value of key in header lines hdr (a copy into out), or NULL. */
static const char *hget(const char *hdr, const char *key, char *out, size_t cap) {
    size_t kl = strlen(key);
    for (const char *l = hdr; l && *l;) {
        const char *e = strchr(l, '\n');
        if (!e) break;
        if (strncmp(l, key, kl) == 0 && l[kl] == '=') {
            size_t n = (size_t)(e - l - kl - 1);
            if (n >= cap) n = cap - 1;
            memcpy(out, l + kl + 1, n);
            out[n] = 0;
            return out;
        }
        l = e + 1;
    }
    return NULL;
}

/* Every field of our header before "step=" must be in theirs, equal. */
static int check_run_fields(const char *path, const char *mine, const char *hdr) {
    char theirs[4096];
    for (const char *l = mine; *l;) {
        const char *e = strchr(l, '\n');
        const char *eq = strchr(l, '=');
        char key[64];
        size_t kl = (size_t)(eq - l);
        if (kl >= sizeof key) kl = sizeof key - 1;
        memcpy(key, l, kl);
        key[kl] = 0;
        if (strcmp(key, "step") == 0) break;
        char val[4096];
        size_t vl = (size_t)(e - eq - 1);
        if (vl >= sizeof val) vl = sizeof val - 1;
        memcpy(val, eq + 1, vl);
        val[vl] = 0;
        if (!hget(hdr, key, theirs, sizeof theirs)) return qr_err_set("%s: field '%s' missing from the header", path, key);
        if (strcmp(theirs, val) != 0)
            return qr_err_set("%s: %s differs: checkpoint has %s, this run has %s (use another run directory, or "
                              "the checkpoint's settings)",
                              path, field_label(key), theirs, val);
        l = e + 1;
    }
    return QR_OK;
}

/* The payload p (after the header) against the state fields: finite
 * adapters and moments, second moments >= 0, step counts 0..step, the
 * data order a permutation. */
static int check_payload(const char *path, const qr_checkpoint *c, const char *p, long long step) {
    const int64_t n = c->n_lora, na = c->n_adapters;
    for (int64_t i = 0; i < 3 * n; i++) {
        float x;
        memcpy(&x, p + 4 * i, 4);
        if (!isfinite(x) || (i >= 2 * n && x < 0))
            return qr_err_set("%s: %s value %lld is %s", path,
                              i < n ? "adapter" : i < 2 * n ? "first moment" : "second moment", (long long)(i % n),
                              isfinite(x) ? "negative" : "not finite");
    }
    const char *ps = p + 12 * n, *pp = ps + 4 * na;
    for (int64_t i = 0; i < na; i++) {
        int32_t s;
        memcpy(&s, ps + 4 * i, 4);
        if (s < 0 || s > step)
            return qr_err_set("%s: adapter step count %lld = %d: expected 0..%lld", path, (long long)i, s, step);
    }
    uint8_t *seen = qr_xcalloc((size_t)c->n_data, 1);
    int rc = QR_OK;
    for (int i = 0; i < c->n_data; i++) {
        int32_t x;
        memcpy(&x, pp + 4 * (int64_t)i, 4);
        if (x < 0 || x >= c->n_data || seen[x]) {
            rc = qr_err_set("%s: data order: entry %d = %d is not part of a permutation of %d", path, i, x,
                            c->n_data);
            break;
        }
        seen[x] = 1;
    }
    free(seen);
    return rc;
}

int qr_checkpoint_read(qr_checkpoint *c, const char *path) {
    size_t len;
    char *buf = qr_read_file(path, &len);
    if (!buf) return QR_ERR;
    int rc = QR_ERR;
    char *mine = NULL;
    char *hdr = NULL;
    if (len < 24 || memcmp(buf, CKPT_MAGIC, 8) != 0) {
        qr_err_set("%s: not a qrun training checkpoint (%s)", path, len < 8 ? "file too short" : "bad magic");
        goto out;
    }
    uint32_t ver, hl;
    memcpy(&ver, buf + 8, 4);
    memcpy(&hl, buf + 12, 4);
    if (ver != CKPT_VERSION) {
        qr_err_set("%s: version: checkpoint format %u, this qrun reads %u", path, ver, CKPT_VERSION);
        goto out;
    }
    if ((size_t)hl > len - 24) {
        qr_err_set("%s: header length %u exceeds the file (%zu bytes): truncated or corrupt", path, hl, len);
        goto out;
    }
    uint64_t stored, h = QR_FNV_INIT;
    memcpy(&stored, buf + len - 8, 8);
    h = qr_fnv_words(h, buf, (len - 8) / 4);
    if ((len - 8) % 4) h = qr_fnv(h, buf + (len - 8) - (len - 8) % 4, (len - 8) % 4);
    if (h != stored) {
        qr_err_set("%s: checksum: stored %016llx, computed %016llx: the file is truncated or corrupt", path,
                   (unsigned long long)stored, (unsigned long long)h);
        goto out;
    }
    hdr = qr_xmalloc((size_t)hl + 1);
    memcpy(hdr, buf + 16, hl);
    hdr[hl] = 0;
    mine = header_text(c);
    if (check_run_fields(path, mine, hdr)) goto out;
    char v[64];
    long long step = -1, epoch = -1, cursor = -1;
    unsigned long long rng = 0;
    if (!hget(hdr, "step", v, sizeof v) || sscanf(v, "%lld", &step) != 1 || step < 0 || step > c->o->steps ||
        !hget(hdr, "epoch", v, sizeof v) || sscanf(v, "%lld", &epoch) != 1 || epoch < 0 ||
        !hget(hdr, "cursor", v, sizeof v) || sscanf(v, "%lld", &cursor) != 1 || cursor < 0 || cursor > c->n_data ||
        !hget(hdr, "rng", v, sizeof v) || sscanf(v, "%llx", &rng) != 1) {
        qr_err_set("%s: state fields step/epoch/cursor/rng missing or out of range (step %lld of %d, cursor %lld of "
                   "%d)",
                   path, step, c->o->steps, cursor, c->n_data);
        goto out;
    }
    int64_t want = 24 + (int64_t)hl + payload_size(c);
    if ((int64_t)len != want) {
        qr_err_set("%s: size: %zu bytes, expected %lld for this header", path, len, (long long)want);
        goto out;
    }
    const char *p = buf + 16 + hl;
    if (check_payload(path, c, p, step)) goto out;
    /* everything checked: commit */
    const int64_t n = c->n_lora;
    memcpy(c->lora, p, (size_t)n * 4);
    memcpy(c->m1, p + 4 * n, (size_t)n * 4);
    memcpy(c->v1, p + 8 * n, (size_t)n * 4);
    memcpy(c->slot_t, p + 12 * n, (size_t)c->n_adapters * 4);
    memcpy(c->perm, p + 12 * n + 4 * (int64_t)c->n_adapters, (size_t)c->n_data * 4);
    c->step = (int)step;
    c->epoch = (int)epoch;
    c->cursor = (int)cursor;
    c->rng = rng;
    rc = QR_OK;
out:
    free(mine);
    free(hdr);
    free(buf);
    return rc;
}
