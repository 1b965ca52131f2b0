/* The inference kernels of the CPU backend: row-major float arrays, n rows
 * of c columns. Linear layers go to OpenBLAS; the rest are plain loops
 * written so that the compiler vectorises them. Internal to runtime/cpu. */
#pragma once

#include "clip.h"

/* out[n, o] (row stride ldo) = in[n, i] w[o, i]^T + b[o], or += when
 * accumulate (the residual adds). b may be NULL. */
void clip_cpu_linear (float *out, int ldo, const float *in, const float *w,
    const float *b, int n, int in_dim, int out_dim, gboolean accumulate);

/* LayerNorm over each row of c values, with weight and bias. out may be in. */
void clip_cpu_layer_norm (float *out, const float *in, const float *w,
    const float *b, int n, int c, float eps);

/* x = act(x) in place over n rows of c values, row stride ldx. */
void clip_cpu_activation (float *x, gsize ldx, int n, int c,
    ClipActivation activation);

/* e^x[k] in place, within 3e-7 relative on [-87.3, 88.3]; clamped to
 * that range outside it (no inf, no denormals). */
void clip_cpu_exp (float *x, int n);

/* One head of multi-head self-attention over one sequence of l tokens:
 * qkv [l, 3w] (q, k, v blocks of w columns; heads are contiguous slices of
 * w / heads columns of each); writes the head's columns of out [l, w] (row
 * stride ldo). scores: l * l floats of scratch. causal: position i sees
 * j <= i. */
void clip_cpu_attention_head (float *out, int ldo, const float *qkv,
    float *scores, int l, int w, int heads, int head, gboolean causal);
