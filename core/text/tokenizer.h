/* tokenizer.h - byte-level BPE (GPT-2, SmolLM2), encode and decode.
 *
 * Pipeline (the same as Hugging Face `tokenizers` for these models):
 *  1. Special tokens (token_type 3 control or 4 user-defined, and GPT-2's
 *     "<|endoftext|>") that appear literally in the text are cut out first and
 *     become their single id (leftmost match, longest first); the text
 *     between them is encoded independently.
 *  2. Pre-tokenization. QR_PRE_GPT2: the GPT-2 regex
 *       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *     QR_PRE_SMOLLM: first every \p{N} character becomes a piece of its own
 *     (HF Digits(individual_digits=true); llama.cpp pre "smollm"), then the
 *     GPT-2 regex runs on the text between digits.
 *     Classes come from utf8proc: L = Lu Ll Lt Lm Lo, N = Nd Nl No,
 *     \s = Unicode White_Space (Zs Zl Zp, U+0009..U+000D, U+0085), as
 *     Python's `regex` and HF's Oniguruma see it (not U+001C..U+001F).
 *  3. Each piece's UTF-8 bytes go through GPT-2's byte-to-unicode table and
 *     are merged pairwise, lowest merge rank first (leftmost among equal
 *     ranks), until no merge applies; the symbols are then vocab ids.
 *
 * Invalid UTF-8 never fails or crashes: each byte that does not start a
 * valid sequence (or is a stray continuation, overlong form, surrogate or
 * > U+10FFFF) is one character of class "other" and is encoded as its raw
 * byte, so decode(encode(s)) == s for every byte string, valid or not,
 * as long as the vocabulary has a token for each of its bytes (GPT-2 has
 * all 256; for SmolLM2 see qr_tokenizer_encode).
 * decode returns raw bytes (no U+FFFD replacement, unlike HF's
 * from_utf8_lossy), NUL-terminated for convenience, length in *len.
 *
 * A tokenizer is immutable after construction (set_special aside): encode
 * and decode may run concurrently on one tokenizer from several threads. */
#ifndef QR_TOKENIZER_H
#define QR_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct qr_tokenizer qr_tokenizer;

typedef enum { QR_PRE_GPT2 = 0, QR_PRE_SMOLLM = 1 } qr_pretok;

/* GGUF tokenizer.ggml.token_type values. */
enum {
    QR_TOKEN_NORMAL = 1, QR_TOKEN_UNKNOWN = 2, QR_TOKEN_CONTROL = 3,
    QR_TOKEN_USER_DEFINED = 4, QR_TOKEN_UNUSED = 5, QR_TOKEN_BYTE = 6
};

/* GPT-2-style Hugging Face files: vocab_json = {"token": id, ...}
 * (encoder.json / vocab.json), merges_txt = one "a b" per line, an optional
 * first line "#version..." (vocab.bpe / merges.txt). "<|endoftext|>", if
 * present, is special and is both bos and eos. Pre-tokenizer QR_PRE_GPT2.
 * NULL + message naming the file, the entry and the problem. */
qr_tokenizer *qr_tokenizer_from_files(const char *vocab_json, const char *merges_txt);

/* tokens[n_tokens] (id = index, byte-level spelling, e.g. "Ġthe"),
 * merges[n_merges] ("a b", rank = index), token_types[n_tokens] (QR_TOKEN_*;
 * NULL = all normal). Everything is copied. If a string occurs twice in
 * tokens the later id wins for encoding (as in HF's vocab dict); a repeated
 * merge keeps its later rank (likewise). bos/eos start at -1. NULL +
 * message ("merges[12]: ...") on a malformed merge or one whose parts or
 * result are not in the vocabulary. */
qr_tokenizer *qr_tokenizer_new(const char *const *tokens, int n_tokens, const char *const *merges, int n_merges,
                               const int32_t *token_types, qr_pretok pre);
void qr_tokenizer_free(qr_tokenizer *t); /* NULL ok */

/* text[len] (need not be NUL-terminated, may hold NUL bytes) -> *ids
 * (malloc'd, caller frees; non-NULL even when *n_ids == 0). No BOS/EOS is
 * added. A byte whose one-character token is not in the vocabulary is
 * dropped, as HF's BPE does without an unk token (SmolLM2 lacks 21 bytes:
 * 0xC0 0xC1 0xF1 0xF2 0xF5..0xFF, which no common UTF-8 text holds, and the
 * controls 0x04 0x06 0x13 0x14 0x16 0x1D); see qr_tokenizer_byte_token.
 * QR_ERR + message only on bad arguments. */
int qr_tokenizer_encode(const qr_tokenizer *t, const char *text, size_t len, int32_t **ids, int *n_ids);

/* ids[n] -> malloc'd bytes, NUL-terminated, byte count in *len (may be
 * NULL). NULL + message naming the index and value of an id out of range. */
char *qr_tokenizer_decode(const qr_tokenizer *t, const int32_t *ids, int n, size_t *len);

int qr_tokenizer_n_vocab(const qr_tokenizer *t);
int32_t qr_tokenizer_token_id(const qr_tokenizer *t, const char *token); /* -1 if absent */
const char *qr_tokenizer_token_str(const qr_tokenizer *t, int32_t id);   /* raw vocab string; NULL if out of range */
int qr_tokenizer_is_special(const qr_tokenizer *t, int32_t id);          /* control / user-defined */
int32_t qr_tokenizer_byte_token(const qr_tokenizer *t, uint8_t byte);   /* id of the byte's token, -1 if none */
qr_pretok qr_tokenizer_pretok(const qr_tokenizer *t);
void qr_tokenizer_set_special(qr_tokenizer *t, int32_t bos, int32_t eos);
int32_t qr_tokenizer_bos(const qr_tokenizer *t);
int32_t qr_tokenizer_eos(const qr_tokenizer *t);

#endif
