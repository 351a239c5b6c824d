/* encoder.h - a BERT sentence encoder (sentence-transformers layout:
 * Transformer, mean Pooling, Normalize), for the sentence-similarity
 * constraint of the TextFooler / BERT-Attack style attacks. The model it is
 * written for is all-MiniLM-L6-v2 (scripts/fetch_encoder.sh,
 * docs/ENCODER.md), standing in for the Universal Sentence Encoder.
 *
 * A model is a directory as the sentence-transformers hub layout has it:
 *   config.json               BertModel: hidden_size, num_hidden_layers,
 *                             num_attention_heads, intermediate_size,
 *                             max_position_embeddings, type_vocab_size,
 *                             vocab_size, layer_norm_eps; hidden_act "gelu"
 *                             (erf), position_embedding_type "absolute"
 *   model.safetensors         F32/F16/BF16 weights, HF BertModel names
 *                             (an optional "bert." prefix; pooler and
 *                             position_ids ignored)
 *   vocab.txt                 WordPiece vocabulary (text/wordpiece.h)
 *   tokenizer_config.json     do_lower_case true, strip_accents null/true,
 *                             tokenize_chinese_chars true (the uncased
 *                             tokenizer is the only one implemented)
 *   sentence_bert_config.json max_seq_length (optional: else
 *                             max_position_embeddings)
 *   1_Pooling/config.json     pooling_mode_mean_tokens, the only mode
 *   modules.json              optional: Transformer, Pooling and, when
 *                             listed, Normalize (L2); other modules refused
 * Anything else is refused with a message naming the file and the field.
 *
 * Forward (post-LN BERT, float32):
 *   x = LN(word[id] + pos[t] + type[0])
 *   per layer: a = softmax(q k^T / sqrt(d) over keys with mask 1) v
 *              x = LN(x + W_o a + b_o);  x = LN(x + W_2 gelu(W_1 x + b_1) + b_2)
 *   gelu(u) = u/2 (1 + erf(u / sqrt 2)), erf to 1.5e-7 (Abramowitz & Stegun
 *   7.1.26, vectorised; GELU within 4.6e-7 of float64 on [-6, 6], where
 *   PyTorch's own CPU GELU is within 1.2e-6)
 *   pooled = sum_t mask x_t / max(sum_t mask, 1e-9), then / max(|pooled|, 1e-12)
 * Sizes come from config.json and are checked against the tensors' shapes
 * before anything is allocated, and the tensors against the file's size (by
 * the safetensors reader): no allocation is driven by a number alone.
 *
 * An encoder holds its activation arena: one forward/embed at a time per
 * encoder (use one encoder per thread). */
#ifndef QR_ENCODER_H
#define QR_ENCODER_H

#include "text/wordpiece.h"

#include <stddef.h>
#include <stdint.h>

typedef struct qr_encoder qr_encoder;

typedef struct {
    int n_vocab, dim, n_layer, n_head, n_ff, n_pos, n_type;
    int max_len;   /* tokens per sentence, [CLS] and [SEP] included */
    int normalize; /* 1: L2-normalise the pooled vector (modules.json's Normalize) */
    float eps;     /* LayerNorm epsilon */
} qr_encoder_config;

/* Tokens in one forward batch of qr_encoder_embed: the sentences are
 * packed back to back (no padding: each attends within its own rows) up
 * to this many tokens a batch. */
#define QR_ENCODER_BATCH_TOKENS 2048
/* Configuration files (the JSON ones) larger than this are refused. */
#define QR_ENCODER_MAX_JSON (1u << 20)

/* Open the model directory dir. NULL + message naming the file and the
 * field on any problem. */
qr_encoder *qr_encoder_open(const char *dir);
void qr_encoder_free(qr_encoder *e); /* NULL ok */

const qr_encoder_config *qr_encoder_cfg(const qr_encoder *e);
const qr_wordpiece *qr_encoder_tokenizer(const qr_encoder *e);
const char *qr_encoder_path(const qr_encoder *e);
int64_t qr_encoder_n_params(const qr_encoder *e);

/* ids, mask (B,T): token ids in [0, n_vocab) and 1/0 (HF's attention_mask:
 * 0 keys are ignored, 0 rows are left out of the pool), T <= n_pos.
 * hidden (B,T,dim) receives the last hidden state and pooled (B,dim) the
 * pooled (normalised) vectors; either may be NULL. A row whose mask is all 0
 * attends uniformly to all T keys and pools to the zero vector. QR_ERR +
 * message on an id out of range or sizes out of bounds. */
int qr_encoder_forward(qr_encoder *e, const int32_t *ids, const int32_t *mask, int B, int T, float *hidden,
                       float *pooled);

/* texts[n] (lens[n] bytes each; lens NULL: NUL-terminated) -> out (n,dim):
 * each text tokenized ([CLS] ... [SEP], cut to max_len), packed in
 * batches of up to QR_ENCODER_BATCH_TOKENS tokens, pooled. The same
 * vectors as qr_encoder_forward on a padded batch, up to rounding. */
int qr_encoder_embed(qr_encoder *e, const char *const *texts, const size_t *lens, int n, float *out);

/* a . b / (|a| |b|) over dim floats (accumulated in double); 0 if either is
 * the zero vector. */
double qr_encoder_cosine(const float *a, const float *b, int dim);

#endif
