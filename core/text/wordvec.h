/* wordvec.h - the word-level resources of the attacks (docs/ATTACKS.md): a
 * word embedding of unit vectors (the .qrwv file scripts/setup_attacks.sh
 * builds: GloVe 6B 50-d counter-fitted with WordNet), its part-of-speech
 * table (WordNet's noun/verb/adjective/adverb per word), exact nearest
 * neighbours by cosine, and TextFooler's stop words.
 *
 * The .qrwv file (version 1, little-endian):
 *   0   char[4] magic "QRWV"
 *   4   u32 version = 1
 *   8   u32 n_words      >= 1
 *   12  u32 dim          1..4096
 *   16  u64 words_bytes  the word block: n_words words, each 1..63 bytes of
 *                        0x21..0xFF (no space, no control byte) and a NUL
 *   24  u32 crc32        CRC-32 (zlib's polynomial) of bytes 32..end
 *   28  u32 reserved = 0
 *   32  the word block, then 0..3 zero bytes to a multiple of 4
 *       n_words x dim float32: row i is word i's vector, of norm 1 (+-1e-3)
 * and the file is exactly that long. Words are unique. Every header field is
 * checked against the file's own size before anything is allocated, and a
 * file is refused with a message naming it, the field and the bound, e.g.
 *   "x.qrwv: header field words_bytes = 4294967296 exceeds the 120 bytes after
 *    the 32-byte header (truncated or corrupt)".
 *
 * The POS table (a text file, one line per word, in the file's order):
 *   word<TAB>letters      letters: a subset of "nvar" (noun, verb,
 *                         adjective, adverb), or "-" for none
 * checked line by line against the embedding's words.
 *
 * Lookups (qr_wordvec_find and everything that takes a word) try the word
 * as given, then with its ASCII letters lower-cased (GloVe 6B is lower
 * case). */
#ifndef QR_WORDVEC_H
#define QR_WORDVEC_H

#include <stddef.h>
#include <stdint.h>

#include "qr_plugin.h" /* qr_candidate, QR_POS_*, QR_POS_MATCH_*, QR_WORD_MAX */

#define QR_WORDVEC_VERSION 1
#define QR_WORDVEC_HEADER 32
#define QR_WORDVEC_DIM_MAX 4096

typedef struct qr_wordvec qr_wordvec;

typedef struct {
    int32_t index; /* the word's position in the file */
    float cos;     /* its cosine similarity to the query */
} qr_wordvec_hit;

/* Load a .qrwv file (mapped read-only; checked whole, checksum included).
 * NULL + message naming the file, the field and the bound. */
qr_wordvec *qr_wordvec_load(const char *path);
/* The same from bytes in memory (copied; name is for messages). */
qr_wordvec *qr_wordvec_from_memory(const void *data, size_t size, const char *name);
/* Attach a POS table (replacing one loaded before). QR_ERR + message naming
 * the file and the line: a file longer than the bound its word count allows
 * (n_words x 70 bytes), a line count or a word that differs from the
 * embedding's, a letter outside "nvar". On error the table is unchanged. */
int qr_wordvec_load_pos(qr_wordvec *wv, const char *path);
int qr_wordvec_parse_pos(qr_wordvec *wv, const char *text, size_t len, const char *name);
/* Free (NULL does nothing); a wordvec being served stops being served. */
void qr_wordvec_free(qr_wordvec *wv);

int qr_wordvec_count(const qr_wordvec *wv);
int qr_wordvec_dim(const qr_wordvec *wv);
const char *qr_wordvec_path(const qr_wordvec *wv);
const char *qr_wordvec_pos_path(const qr_wordvec *wv); /* NULL: no POS table */
uint32_t qr_wordvec_crc(const qr_wordvec *wv);          /* the header's checksum */
size_t qr_wordvec_bytes(const qr_wordvec *wv);          /* the file's size */
const char *qr_wordvec_word(const qr_wordvec *wv, int i);
const float *qr_wordvec_vector(const qr_wordvec *wv, int i); /* dim floats */
/* The index of word (as given, then ASCII-lower-cased), or -1. */
int qr_wordvec_find(const qr_wordvec *wv, const char *word);
/* Word i's QR_POS_* bits (0: WordNet knows none), or -1 without a table. */
int qr_wordvec_pos(const qr_wordvec *wv, int i);
/* Whether POS bits a and b match under mode QR_POS_MATCH_* (ANY: always;
 * SAME: a & b, or both 0; NOUN_VERB: as SAME with noun and verb one part). */
int qr_wordvec_pos_match(int mode, int a, int b);
/* The cosine of words i and j, in double (the vectors' dot product summed
 * in order: the value the neighbours are ranked by). */
double qr_wordvec_cos(const qr_wordvec *wv, int i, int j);

/* The k nearest neighbours of word (looked up as qr_wordvec_find does; a
 * word the embedding does not have has none: 0), as qr_wordvec_neighbours_of. */
int qr_wordvec_neighbours(const qr_wordvec *wv, const char *word, int k, double min_cos, int pos_match,
                          qr_wordvec_hit *out);
/* The k nearest neighbours of word i (i itself not counted), exactly: every
 * word scored with one sgemv, the finalists (all within the float error
 * bound of the k-th score) rescored in double, ordered by decreasing cosine
 * then index; then those with cos >= min_cos, then those whose POS matches
 * i's (pos_match QR_POS_MATCH_*; anything but ANY needs the POS table).
 * Writes out[0..] and returns how many (0..k; k larger than n_words - 1
 * means all), or QR_ERR (i out of range, k < 0, min_cos NaN, bad pos_match,
 * no POS table for pos_match). Allocates one score per word per call
 * (thread-safe on a shared wv). */
int qr_wordvec_neighbours_of(const qr_wordvec *wv, int i, int k, double min_cos, int pos_match,
                             qr_wordvec_hit *out);

/* TextFooler's stop words (TextAttack's textfooler_jin_2019 list, 266
 * words; scripts/attacks/stopwords_textfooler.txt): whether word is one
 * (ASCII letters compared without case); the list, sorted. */
int qr_wordvec_is_stopword(const char *word);
int qr_wordvec_stopword_count(void);
const char *qr_wordvec_stopword(int i); /* NULL out of range */

/* Serve wv (its vectors, POS table and TextFooler's stop words) to attack
 * plugins through the ABI 1.3 host services candidates and is_stopword
 * (qr_plugins_set_lexicon); NULL serves nothing. wv must outlive its
 * serving: qr_wordvec_free of the served one stops it. */
void qr_wordvec_serve(qr_wordvec *wv);
/* The wordvec being served, or NULL. */
qr_wordvec *qr_wordvec_served(void);

/* CRC-32 (zlib's: reflected polynomial 0xEDB88320, init and final xor
 * 0xFFFFFFFF) of n bytes, continuing from crc (0 to start). */
uint32_t qr_wordvec_crc32(uint32_t crc, const void *data, size_t n);

#endif
