/* model_internal.h - the model's layout, shared by model.c (compute) and
 * model_load.c (files). Not part of the public API. */
#ifndef QR_MODEL_INTERNAL_H
#define QR_MODEL_INTERNAL_H

#include "model.h"

typedef struct {
    int i_n1w, i_n1b, i_n2w, i_n2b; /* parameter indices; -1 when absent */
} qr_layer;

/* Saved activations of one layer for the backward pass; N = B*T rows. */
typedef struct {
    float *ln1, *n1_mean, *n1_rstd; /* (N,C), (N), (N) */
    float *q, *k, *v;               /* (N,QD), (N,KVD), (N,KVD); after RoPE */
    float *att;                     /* (B,NH,T,T) softmax probabilities */
    float *atty;                    /* (N,QD) */
    float *res2;                    /* (N,C) residual after attention */
    float *ln2, *n2_mean, *n2_rstd;
    float *fc1, *fc2, *act; /* (N,F): GPT-2 c_fc out / gelu; Llama gate, up, swiglu */
    float *out;             /* (N,C) the layer's output */
} qr_layer_acts;

struct qr_model {
    qr_model_config cfg;
    char *path;
    qr_tokenizer *tok;

    /* parameters: one buffer, one table */
    float *params, *grads;
    int64_t n_total;
    qr_param *ptab;
    int64_t *poff;
    int n_ptab, cap_ptab;
    int i_wte, i_wpe, i_nfw, i_nfb, i_head;
    qr_layer *layers;
    qr_linear *lins; /* n_layer * n_lin_per_layer, in layer order */
    int *lin_w, *lin_b;
    int n_lin_per_layer;

    /* the LoRA bank: every linear has lora_n_slots adapters in lora_mem */
    float *lora_mem, *lora_grad_mem;
    int64_t lora_n;
    int lora_n_slots, lora_rank;
    float lora_alpha;
    qr_lora *lora_slots; /* n_linears * n_slots */
    struct qr_instance *wq, *aq;

    /* training arena for (act_B, act_T) */
    float *act_mem;
    int act_B, act_T;
    qr_layer_acts *lacts;
    float *encoded, *lnf, *lnf_mean, *lnf_rstd, *logits, *probs, *losses;
    float *scr_qkv, *scr_proj;
    float *dx, *dtmp, *dF1, *dF2, *dF3, *dq, *dk, *dv, *datty, *dqkv, *att_scratch;
    int32_t *pos, *tgt, *ids;
    int has_targets, n_valid, logits_valid;
    /* logits for a subset of rows (qr_model_forward_rows): n_rows >= 0 and
     * the rows' indices, their last hidden state and its gradient (n_rows, C) */
    int n_rows, rows_cap;
    int32_t *rows;
    float *rows_x, *rows_dx;

    /* inference scratch for up to inf_cap rows */
    float *inf_mem;
    int inf_cap;
    float *ix, *iln, *imean, *irstd, *iqkv, *iq, *ik, *iv, *iatty, *iproj, *ifc1, *ifc2, *iact;
    int32_t *ipos, *iidx;
    float *att_buf;
    size_t att_cap;
};

/* Build the parameter table and buffer for m->cfg (model.c). */
/* Lay out and allocate the parameters of m->cfg (m->path set: messages
 * name it). file_elems: how many weights the file being loaded holds (its
 * tensors' element count), or -1 for none; a configuration needing more is
 * refused before anything is allocated. */
int qr_model_alloc(qr_model *m, int64_t file_elems);

/* Point every linear layer's adapters at their slices of lora_mem and
 * lora_grad_mem, with scale lora_alpha / lora_rank (lora.c). */
void qr_model_lora_wire(qr_model *m);

#endif
