/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CLIP's operations on the CPU, forward and backward; see ops.h. The
 * loops over a row keep eight partial sums, or work element by element with
 * no library call, so that gcc vectorises them at -O2/-O3 without
 * -ffast-math. */
#include "ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define LANES 8

/* The element-wise kernels are built for AVX-512, AVX2/FMA and any x86-64
 * machines, and the loader picks one: QuickGELU on an 8x32 block in L1
 * took 0.18, 0.39 and 1.2 ns a value here. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MULTIVERSION \
  __attribute__ ((   \
      target_clones ("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MULTIVERSION
#endif

void
clip_op_linear_forward (float *out, int ldo, const float *in, const float *w,
    const float *b, int n, int in_dim, int out_dim, gboolean accumulate)
{
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n, out_dim, in_dim,
      1.0f, in, in_dim, w, in_dim, accumulate ? 1.0f : 0.0f, out, ldo);
  if (b == NULL)
    return;
  for (int r = 0; r < n; r++) {
    float *row = out + (gsize) r * ldo;
    for (int j = 0; j < out_dim; j++)
      row[j] += b[j];
  }
}

void
clip_op_linear_backward (float *din, float *dw, float *db, const float *dout,
    const float *in, const float *w, int n, int in_dim, int out_dim)
{
  if (din != NULL)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in_dim, out_dim,
        1.0f, dout, out_dim, w, in_dim, 1.0f, din, in_dim);
  cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, out_dim, in_dim, n,
      1.0f, dout, out_dim, in, in_dim, 1.0f, dw, in_dim);
  if (db == NULL)
    return;
  for (int r = 0; r < n; r++) {
    const float *row = dout + (gsize) r * out_dim;
    for (int j = 0; j < out_dim; j++)
      db[j] += row[j];
  }
}

/* Sum of (x[j] - shift)^2, or of x[j] when square is FALSE, in LANES
 * independent partial sums: one dependency chain per lane instead of one
 * for the row, and a loop the compiler turns into vector adds. */
static float
row_sum (const float *x, int c, float shift, gboolean square)
{
  float part[LANES] = { 0 };
  int j = 0;
  for (; j + LANES <= c; j += LANES)
    for (int k = 0; k < LANES; k++) {
      float d = x[j + k] - shift;
      part[k] += square ? d * d : d;
    }
  for (; j < c; j++) {
    float d = x[j] - shift;
    part[0] += square ? d * d : d;
  }
  double sum = 0.0;
  for (int k = 0; k < LANES; k++)
    sum += part[k];
  return (float) sum;
}

MULTIVERSION void
clip_op_layernorm_forward (float *out, float *mean, float *rstd,
    const float *in, const float *w, const float *b, int n, int c, float eps)
{
  for (int r = 0; r < n; r++) {
    const float *x = in + (gsize) r * c;
    float *y = out + (gsize) r * c;
    /* Two passes: the variance about the mean, not E[x^2] - mean^2, which
     * cancels badly on the residual stream's large values. */
    float m = row_sum (x, c, 0.0f, FALSE) / c;
    float var = row_sum (x, c, m, TRUE) / c;
    float s = 1.0f / sqrtf (var + eps);
    for (int j = 0; j < c; j++)
      y[j] = (x[j] - m) * s * w[j] + b[j];
    if (mean != NULL) {
      mean[r] = m;
      rstd[r] = s;
    }
  }
}

void
clip_op_layernorm_backward (float *din, float *dw, float *db, const float *dout,
    const float *in, const float *mean, const float *rstd, const float *w,
    int n, int c)
{
  for (int r = 0; r < n; r++) {
    const float *x = in + (gsize) r * c;
    const float *dy = dout + (gsize) r * c;
    float *dx = din + (gsize) r * c;
    float m = mean[r], s = rstd[r];
    /* dx = s * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w */
    double g_mean = 0.0, gx_mean = 0.0;
    for (int k = 0; k < c; k++) {
      float xhat = (x[k] - m) * s;
      float g = dy[k] * w[k];
      g_mean += g;
      gx_mean += (double) g * xhat;
      db[k] += dy[k];
      dw[k] += dy[k] * xhat;
    }
    g_mean /= c;
    gx_mean /= c;
    for (int k = 0; k < c; k++) {
      float xhat = (x[k] - m) * s;
      dx[k] += s * (float) (dy[k] * w[k] - g_mean - xhat * gx_mean);
    }
  }
}

/* Cephes' expf: e^x = 2^n e^r with n = round(x / ln 2), |r| <= ln 2 / 2,
 * e^r by a degree-7 polynomial. Inline and branch-free so that a loop
 * calling it vectorises, which glibc's expf does not. */
static inline float
exp_approx (float x)
{
  x = MIN (x, 88.3f); /* keeps 2^n finite */
  x = MAX (x, -87.33f);
  /* Adding 1.5 * 2^23 rounds to the nearest integer in the current mode. */
  float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  gint32 bits = ((gint32) n + 127) << 23;
  float scale;
  memcpy (&scale, &bits, sizeof scale);
  return p * scale;
}

MULTIVERSION void
clip_op_exp (float *x, int n)
{
  for (int k = 0; k < n; k++)
    x[k] = exp_approx (x[k]);
}

/* Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7: vectorises, erff does
 * not. */
static inline float
erf_approx (float x)
{
  float ax = fabsf (x);
  float t = 1.0f / (1.0f + 0.3275911f * ax);
  float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t
                    - 0.284496736f)
                       * t
                   + 0.254829592f)
      * t;
  return copysignf (1.0f - poly * exp_approx (-ax * ax), x);
}

MULTIVERSION void
clip_op_gelu_forward (float *out, const float *in, gsize ld, int n, int c,
    ClipActivation activation)
{
  for (int r = 0; r < n; r++) {
    const float *x = in + r * ld;
    float *y = out + r * ld;
    if (activation == CLIP_ACTIVATION_QUICK_GELU) {
      for (int j = 0; j < c; j++)
        y[j] = x[j] / (1.0f + exp_approx (-1.702f * x[j]));
    } else {
      for (int j = 0; j < c; j++)
        y[j] = 0.5f * x[j] * (1.0f + erf_approx (x[j] * (float) M_SQRT1_2));
    }
  }
}

/* The derivative of the forward's formula, on the same approximations. */
MULTIVERSION void
clip_op_gelu_backward (float *din, const float *dout, const float *in, gsize n,
    ClipActivation activation)
{
  for (gsize k = 0; k < n; k++) {
    float x = in[k], grad;
    if (activation == CLIP_ACTIVATION_QUICK_GELU) {
      float s = 1.0f / (1.0f + exp_approx (-1.702f * x));
      grad = s + 1.702f * x * s * (1.0f - s);
    } else {
      float pdf = exp_approx (-0.5f * x * x)
          * (float) (0.5 * M_2_SQRTPI * M_SQRT1_2);
      grad = 0.5f * (1.0f + erf_approx (x * (float) M_SQRT1_2)) + x * pdf;
    }
    din[k] += dout[k] * grad;
  }
}

/* Softmax of the first m scores of a row (the rest, masked, become 0). */
static void
softmax_row (float *row, int m, int l)
{
  float max = row[0];
  for (int j = 1; j < m; j++)
    max = MAX (max, row[j]);
  for (int j = 0; j < m; j++)
    row[j] -= max;
  clip_op_exp (row, m);
  float inv = 1.0f / row_sum (row, m, 0.0f, FALSE);
  for (int j = 0; j < m; j++)
    row[j] *= inv;
  for (int j = m; j < l; j++)
    row[j] = 0.0f;
}

void
clip_op_attention_head_forward (float *out, int ldo, const float *qkv,
    float *scores, int l, int w, int heads, int head, gboolean causal)
{
  int head_dim = w / heads;
  int ld = 3 * w;
  float scale = 1.0f / sqrtf ((float) head_dim);
  const float *q = qkv + head * head_dim;
  const float *k = q + w;
  const float *v = q + 2 * w;
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, l, l, head_dim, scale,
      q, ld, k, ld, 0.0f, scores, l);
  for (int i = 0; i < l; i++)
    softmax_row (scores + (gsize) i * l, causal ? i + 1 : l, l);
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, l, head_dim, l, 1.0f,
      scores, l, v, ld, 0.0f, out + head * head_dim, ldo);
}

void
clip_op_attention_forward (float *out, float *probs, const float *qkv, int b,
    int l, int w, int heads, gboolean causal)
{
  for (int s = 0; s < b; s++)
    for (int h = 0; h < heads; h++)
      clip_op_attention_head_forward (out + (gsize) s * l * w, w,
          qkv + (gsize) s * l * 3 * w, probs + ((gsize) s * heads + h) * l * l,
          l, w, heads, h, causal);
}

void
clip_op_attention_backward (float *dqkv, float *scratch, const float *dout,
    const float *qkv, const float *probs, int b, int l, int w, int heads)
{
  int hd = w / heads, stride = 3 * w;
  float scale = 1.0f / sqrtf ((float) hd);
  float *dp = scratch;
  for (int s = 0; s < b; s++) {
    const float *seq = qkv + (gsize) s * l * stride;
    float *dseq = dqkv + (gsize) s * l * stride;
    for (int h = 0; h < heads; h++) {
      const float *q = seq + h * hd, *k = q + w, *v = q + 2 * w;
      float *dq = dseq + h * hd, *dk = dq + w, *dv = dq + 2 * w;
      const float *p = probs + ((gsize) s * heads + h) * l * l;
      const float *dy = dout + (gsize) s * l * w + h * hd;
      /* dV += P^T dY; dP = dY V^T */
      cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, l, hd, l, 1.0f, p,
          l, dy, w, 1.0f, dv, stride);
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, l, l, hd, 1.0f, dy,
          w, v, stride, 0.0f, dp, l);
      /* Softmax backward: dS = P * (dP - rowsum(dP * P)); masked entries
       * have P = 0 and so get no gradient. */
      for (int i = 0; i < l; i++) {
        const float *prow = p + (gsize) i * l;
        float *drow = dp + (gsize) i * l;
        double dot = 0.0;
        for (int j = 0; j < l; j++)
          dot += (double) prow[j] * drow[j];
        for (int j = 0; j < l; j++)
          drow[j] = prow[j] * (drow[j] - (float) dot);
      }
      /* S = scale Q K^T: dQ += scale dS K, dK += scale dS^T Q */
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, l, hd, l, scale,
          dp, l, k, stride, 1.0f, dq, stride);
      cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, l, hd, l, scale, dp,
          l, q, stride, 1.0f, dk, stride);
    }
  }
}
