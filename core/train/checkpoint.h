/* checkpoint.h - the trainer's checkpoint file format (internal to
 * core/train: the trainer is the loop, this is the file).
 *
 * Layout (little-endian, as the machine writes it; "endian=little" in the
 * header):
 *   "QRTRAIN\0"                        magic, 8 bytes
 *   u32 version (1), u32 H             header length
 *   header, H bytes                    "key=value\n" lines, '\n'-padded to
 *                                      whole 32-bit words; the lines before
 *                                      "step=" describe the run and must
 *                                      match on load, "step=" and after are
 *                                      the saved state (step, epoch,
 *                                      cursor, rng)
 *   f32 adapters, f32 first moments, f32 second moments   (n_lora each)
 *   i32 AdamW step count per (layer, slot) adapter        (n_adapters)
 *   i32 data order                                        (n_data)
 *   u64 FNV-1a 64 of everything before it, over 32-bit words (the bytes
 *       of a last partial word one by one)
 * Written to PATH.tmp.<pid>, fsync'd, renamed over PATH, the directory
 * fsync'd: a crash leaves the previous file or the new one, never a torn
 * one. */
#ifndef QR_CHECKPOINT_H
#define QR_CHECKPOINT_H

#include "model/model.h"
#include "trainer.h"

#include <stddef.h>
#include <stdint.h>

/* FNV-1a 64: the checkpoint's checksum, and the trainer's fingerprints of
 * the weights, the configurations and the data (in the header). */
#define QR_FNV_INIT 0xcbf29ce484222325ULL
static inline uint64_t qr_fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}
/* The same over 32-bit words (4x faster than bytewise; for big buffers). */
static inline uint64_t qr_fnv_words(uint64_t h, const void *p, size_t nwords) {
    const uint32_t *w = p;
    for (size_t i = 0; i < nwords; i++) h = (h ^ w[i]) * 0x100000001b3ULL;
    return h;
}

/* What a checkpoint holds, as pointers into the trainer (nothing owned). */
typedef struct {
    /* the run: the header lines before "step=", compared on load */
    qr_model *m; /* architecture, shape, LoRA rank and alpha */
    uint64_t weights_fnv, configs_fnv, data_fnv;
    int n_configs;
    const char *const *config_names;
    const char *schedule, *schedule_opts, *loss, *loss_opts, *teacher;
    const qr_train_opts *o; /* steps, batch, accum, seq, lr .. eps, seed */
    int n_data;             /* sequences */
    int64_t n_tokens;
    /* the state */
    float *lora, *m1, *v1; /* (n_lora) adapters and their AdamW moments */
    int64_t n_lora;
    int n_slots;     /* LoRA slots per layer (header) */
    int32_t *slot_t; /* (n_adapters) AdamW step count per (layer, slot) */
    int n_adapters;
    int32_t *perm; /* (n_data) data order */
    int step, epoch, cursor;
    uint64_t rng;
} qr_checkpoint;

/* Write c to path atomically (see above). Refuses non-finite adapters,
 * naming the value; the message names the file. */
int qr_checkpoint_write(const qr_checkpoint *c, const char *path);

/* Read path into c: verifies the magic, version, sizes, checksum, that
 * every header field before "step=" equals c's, the state's ranges (step
 * <= o->steps, cursor <= n_data, finite adapters and moments, second
 * moments >= 0, step counts <= step, the data order a permutation); only
 * when all holds are lora, m1, v1, slot_t, perm and step, epoch, cursor,
 * rng overwritten. Otherwise QR_ERR naming the file and the field, and
 * nothing changed. */
int qr_checkpoint_read(qr_checkpoint *c, const char *path);

#endif
