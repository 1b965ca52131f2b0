/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CLIP's operations on the CPU, for the CPU backend's forward pass and for
 * training: row-major float arrays, n rows of c columns. Each forward stands
 * beside its backward, as llm.c pairs them. Linear layers go to OpenBLAS
 * (where the CPU backend has packed a weight, gemm.c runs its forward
 * instead); the rest are plain loops written so that gcc vectorises them.
 *
 * Rule for every backward function: it ADDS to each gradient it writes
 * (inputs and parameters alike), as llm.c's train_gpt2.c does, so that a
 * tensor used twice (the residual stream) collects both contributions.
 * Callers zero the gradients before a backward pass. */
#pragma once

#include "clip.h"

/* out[n, o] (row stride ldo) = in[n, i] w[o, i]^T + b[o], or += when
 * accumulate (the residual adds). b may be NULL. */
void clip_op_linear_forward (float *out, int ldo, const float *in,
    const float *w, const float *b, int n, int in_dim, int out_dim,
    gboolean accumulate);
/* For out = in w^T + b with row stride out_dim. din may be NULL (no
 * gradient wanted for the input), as may db. */
void clip_op_linear_backward (float *din, float *dw, float *db,
    const float *dout, const float *in, const float *w, int n, int in_dim,
    int out_dim);

/* LayerNorm over each row of c values, with weight and bias. out may be in.
 * mean and rstd, unless NULL, get each row's mean and 1/std for the
 * backward pass. */
void clip_op_layernorm_forward (float *out, float *mean, float *rstd,
    const float *in, const float *w, const float *b, int n, int c, float eps);
void clip_op_layernorm_backward (float *din, float *dw, float *db,
    const float *dout, const float *in, const float *mean, const float *rstd,
    const float *w, int n, int c);

/* e^x[k] in place, within 3e-7 relative on [-87.3, 88.3]; clamped to
 * that range outside it (no inf, no denormals). */
void clip_op_exp (float *x, int n);

/* out = act(in) over n rows of c values, row stride ld (out may be in):
 * QuickGELU x * sigmoid(1.702 x) or the erf GELU. */
void clip_op_gelu_forward (float *out, const float *in, gsize ld, int n, int c,
    ClipActivation activation);
void clip_op_gelu_backward (float *din, const float *dout, const float *in,
    gsize n, ClipActivation activation);

/* One head of multi-head self-attention over one sequence of l tokens:
 * qkv [l, 3w] (q, k, v blocks of w columns; heads are contiguous slices of
 * w / heads columns of each); writes the head's columns of out [l, w] (row
 * stride ldo). scores: l * l floats of scratch. causal: position i sees
 * j <= i. */
void clip_op_attention_head_forward (float *out, int ldo, const float *qkv,
    float *scores, int l, int w, int heads, int head, gboolean causal);
/* All heads of b sequences of l tokens: qkv [b, l, 3w], out [b, l, w],
 * probs [b, heads, l, l] kept for the backward pass. */
void clip_op_attention_forward (float *out, float *probs, const float *qkv,
    int b, int l, int w, int heads, gboolean causal);
/* scratch: l * l floats. */
void clip_op_attention_backward (float *dqkv, float *scratch, const float *dout,
    const float *qkv, const float *probs, int b, int l, int w, int heads);
