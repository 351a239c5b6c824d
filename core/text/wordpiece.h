/* wordpiece.h - BERT's uncased WordPiece tokenizer, as Hugging Face
 * `tokenizers` runs it for bert-base-uncased and all-MiniLM-L6-v2
 * (BertNormalizer, BertPreTokenizer, WordPiece, [CLS] ... [SEP]).
 *
 * Pipeline, on Unicode code points (classes from utf8proc):
 *  0. Special tokens written literally in the text ("[PAD]", "[UNK]",
 *     "[CLS]", "[SEP]", "[MASK]", those the vocabulary has; case-sensitive,
 *     not normalised, leftmost first) become their own id; the text between
 *     them is encoded independently (HF's added-token split).
 *  1. Clean: U+0000, U+FFFD and every character of category Cc, Cf, Cn, Co,
 *     Cs other than \t \n \r are dropped (so U+000B, U+000C, U+0085 and
 *     U+200B vanish); then each White_Space character becomes ' '. Bytes
 *     that are not valid UTF-8 are dropped one by one (Python would decode
 *     them to U+FFFD, which step 1 drops too).
 *  2. CJK: each ideograph of the blocks BERT lists (U+4E00..9FFF,
 *     3400..4DBF, 20000..2A6DF, 2A700..2B73F, 2B740..2B81F, 2B920..2CEAF,
 *     F900..FAFF, 2F800..2FA1F; tokenizers' ranges, see wordpiece.c) gets a
 *     space on each side.
 *  3. Strip accents: canonical decomposition (NFD, with canonical
 *     reordering), then every Mn (non-spacing mark) is dropped.
 *  4. Lower-case each code point (simple mapping).
 *  5. Split into words at ' ', and every punctuation character (ASCII
 *     !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~, or category Pc Pd Ps Pe Pi Pf Po)
 *     is a word of its own.
 *  6. WordPiece per word: a word of more than 100 code points is [UNK];
 *     else greedy longest match from the left, pieces after the first
 *     prefixed "##"; if some position has no match the whole word is [UNK].
 *  7. [CLS] + pieces + [SEP], the pieces cut to max_len - 2 (HF's
 *     truncation of a single sequence keeps the first tokens).
 *
 * A tokenizer is immutable after construction: encode may run from several
 * threads at once. */
#ifndef QR_WORDPIECE_H
#define QR_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

typedef struct qr_wordpiece qr_wordpiece;

/* A vocabulary larger than this is refused before it is read. */
#define QR_WORDPIECE_MAX_FILE (64u << 20)
/* Words longer than this many code points are [UNK] (BERT's
 * max_input_chars_per_word). */
#define QR_WORDPIECE_MAX_WORD 100

/* vocab.txt: one token per line, id = line number - 1; a trailing "\r" is
 * not part of the token; a token on two lines keeps the later id (as a
 * Python dict does). [UNK], [CLS], [SEP] and [PAD] must be there. NULL +
 * message naming the file and the problem. */
qr_wordpiece *qr_wordpiece_from_file(const char *vocab_txt);
/* The same from tokens[n] (id = index; copied); label names it in
 * messages. */
qr_wordpiece *qr_wordpiece_new(const char *const *tokens, int n, const char *label);
void qr_wordpiece_free(qr_wordpiece *w); /* NULL ok */

/* text[len] (any bytes) -> *ids (malloc'd, caller frees), [CLS] ... [SEP],
 * at most max_len ids (max_len >= 2; 0 = no limit). QR_ERR + message only
 * on bad arguments. */
int qr_wordpiece_encode(const qr_wordpiece *w, const char *text, size_t len, int max_len, int32_t **ids, int *n_ids);

/* Steps 1-4 above on text[len] (no special-token split): malloc'd UTF-8,
 * NUL-terminated, byte count in *out_len (may be NULL). What HF's
 * normalizer.normalize_str gives; tests compare the two code point by code
 * point. */
char *qr_wordpiece_normalize(const char *text, size_t len, size_t *out_len);

/* How step 5 sees a code point of normalised text: QR_WP_SPACE (' ',
 * the only white space left), QR_WP_PUNCT (a word of its own) or
 * QR_WP_OTHER (part of a word). */
enum { QR_WP_OTHER = 0, QR_WP_SPACE = 1, QR_WP_PUNCT = 2 };
int qr_wordpiece_char_class(uint32_t cp);

int qr_wordpiece_n_vocab(const qr_wordpiece *w);
int32_t qr_wordpiece_token_id(const qr_wordpiece *w, const char *token); /* -1 if absent */
const char *qr_wordpiece_token_str(const qr_wordpiece *w, int32_t id);   /* NULL if out of range */
int32_t qr_wordpiece_unk(const qr_wordpiece *w);
int32_t qr_wordpiece_cls(const qr_wordpiece *w);
int32_t qr_wordpiece_sep(const qr_wordpiece *w);
int32_t qr_wordpiece_pad(const qr_wordpiece *w);

#endif
