/* The operations of CLIP's forward pass, each with its backward pass, for
 * training on the CPU. Row-major float arrays; n rows of c columns.
 *
 * Rule for every backward function: it ADDS to each gradient it writes
 * (inputs and parameters alike), as llm.c's train_gpt2.c does, so that a
 * tensor used twice (the residual stream) collects both contributions.
 * Callers zero the gradients before a backward pass. */
#pragma once

#include <glib.h>

/* out[n, o] = in[n, i] w[o, i]^T + b[o]; b may be NULL. */
void clip_op_linear_forward (float *out, const float *in, const float *w,
    const float *b, int n, int i, int o);
/* din may be NULL (no gradient wanted for the input), as may db. */
void clip_op_linear_backward (float *din, float *dw, float *db,
    const float *dout, const float *in, const float *w, int n, int i, int o);

/* LayerNorm over the last axis; keeps each row's mean and 1/std. */
void clip_op_layernorm_forward (float *out, float *mean, float *rstd,
    const float *in, const float *w, const float *b, int n, int c, float eps);
void clip_op_layernorm_backward (float *din, float *dw, float *db,
    const float *dout, const float *in, const float *mean, const float *rstd,
    const float *w, int n, int c);

/* QuickGELU x * sigmoid(1.702 x) when quick, else the exact erf GELU. */
void clip_op_gelu_forward (float *out, const float *in, gsize n,
    gboolean quick);
void clip_op_gelu_backward (float *din, const float *dout, const float *in,
    gsize n, gboolean quick);

/* Multi-head self-attention core for b sequences of l tokens:
 * qkv [b, l, 3w] (q, k, v blocks of w columns, heads are contiguous
 * slices of each), out [b, l, w], probs [b, heads, l, l] kept for the
 * backward pass. causal: position i sees j <= i. */
void clip_op_attention_forward (float *out, float *probs, const float *qkv,
    int b, int l, int w, int heads, gboolean causal);
/* scratch: l * l floats. */
void clip_op_attention_backward (float *dqkv, float *scratch,
    const float *dout, const float *qkv, const float *probs, int b, int l,
    int w, int heads);

/* CLIP's loss for n image/text pairs of dimension e: both sides
 * L2-normalised, logits = min(exp(log_scale), 100) * img txt^T, the mean of
 * the cross-entropies over rows (image -> text) and over columns
 * (text -> image), the i-th text being the i-th image's match. Returns the
 * loss and adds its gradients to dimg, dtxt and *dlog_scale (which stays
 * untouched while the scale is clamped). accuracy, when not NULL, gets the
 * fraction of rows whose best text is the matching one. */
double clip_op_contrastive_loss (const float *img, const float *txt, int n,
    int e, float log_scale, float *dimg, float *dtxt, float *dlog_scale,
    float *accuracy);
