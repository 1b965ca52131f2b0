/* Forward and backward passes of CLIP's operations, on OpenBLAS where the
 * work is a matrix product. See train-ops.h for the conventions. */
#include "train-ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void
clip_op_linear_forward (float *out, const float *in, const float *w,
    const float *b, int n, int i, int o)
{
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n, o, i, 1.0f, in, i,
      w, i, 0.0f, out, o);
  if (b == NULL)
    return;
  for (int r = 0; r < n; r++) {
    float *row = out + (gsize) r * o;
    for (int c = 0; c < o; c++)
      row[c] += b[c];
  }
}

void
clip_op_linear_backward (float *din, float *dw, float *db, const float *dout,
    const float *in, const float *w, int n, int i, int o)
{
  if (din != NULL)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, i, o, 1.0f,
        dout, o, w, i, 1.0f, din, i);
  cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, o, i, n, 1.0f, dout, o,
      in, i, 1.0f, dw, i);
  if (db == NULL)
    return;
  for (int r = 0; r < n; r++) {
    const float *row = dout + (gsize) r * o;
    for (int c = 0; c < o; c++)
      db[c] += row[c];
  }
}

void
clip_op_layernorm_forward (float *out, float *mean, float *rstd,
    const float *in, const float *w, const float *b, int n, int c, float eps)
{
  for (int r = 0; r < n; r++) {
    const float *x = in + (gsize) r * c;
    float *y = out + (gsize) r * c;
    double sum = 0.0;
    for (int k = 0; k < c; k++)
      sum += x[k];
    float m = (float) (sum / c);
    double var = 0.0;
    for (int k = 0; k < c; k++)
      var += (double) (x[k] - m) * (x[k] - m);
    float s = (float) (1.0 / sqrt (var / c + eps));
    for (int k = 0; k < c; k++)
      y[k] = (x[k] - m) * s * w[k] + b[k];
    mean[r] = m;
    rstd[r] = s;
  }
}

void
clip_op_layernorm_backward (float *din, float *dw, float *db,
    const float *dout, const float *in, const float *mean, const float *rstd,
    const float *w, int n, int c)
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

void
clip_op_gelu_forward (float *out, const float *in, gsize n, gboolean quick)
{
  for (gsize k = 0; k < n; k++) {
    float x = in[k];
    out[k] = quick ? x / (1.0f + expf (-1.702f * x))
                   : 0.5f * x * (1.0f + erff (x * (float) M_SQRT1_2));
  }
}

void
clip_op_gelu_backward (float *din, const float *dout, const float *in,
    gsize n, gboolean quick)
{
  for (gsize k = 0; k < n; k++) {
    float x = in[k], grad;
    if (quick) {
      float s = 1.0f / (1.0f + expf (-1.702f * x));
      grad = s + 1.702f * x * s * (1.0f - s);
    } else {
      float pdf = expf (-0.5f * x * x) * (float) (0.5 * M_2_SQRTPI * M_SQRT1_2);
      grad = 0.5f * (1.0f + erff (x * (float) M_SQRT1_2)) + x * pdf;
    }
    din[k] += dout[k] * grad;
  }
}

/* Row-wise softmax of an l x l score matrix; masked (future) entries get
 * probability 0. */
static void
softmax_rows (float *p, int l, gboolean causal)
{
  for (int i = 0; i < l; i++) {
    float *row = p + (gsize) i * l;
    int visible = causal ? i + 1 : l;
    float max = row[0];
    for (int j = 1; j < visible; j++)
      max = MAX (max, row[j]);
    double sum = 0.0;
    for (int j = 0; j < visible; j++) {
      row[j] = expf (row[j] - max);
      sum += row[j];
    }
    float inv = (float) (1.0 / sum);
    for (int j = 0; j < visible; j++)
      row[j] *= inv;
    for (int j = visible; j < l; j++)
      row[j] = 0.0f;
  }
}

void
clip_op_attention_forward (float *out, float *probs, const float *qkv, int b,
    int l, int w, int heads, gboolean causal)
{
  int hd = w / heads, stride = 3 * w;
  float scale = 1.0f / sqrtf ((float) hd);
  for (int s = 0; s < b; s++) {
    const float *seq = qkv + (gsize) s * l * stride;
    for (int h = 0; h < heads; h++) {
      const float *q = seq + h * hd, *k = q + w, *v = q + 2 * w;
      float *p = probs + ((gsize) s * heads + h) * l * l;
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, l, l, hd, scale,
          q, stride, k, stride, 0.0f, p, l);
      softmax_rows (p, l, causal);
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, l, hd, l, 1.0f,
          p, l, v, stride, 0.0f, out + (gsize) s * l * w + h * hd, w);
    }
  }
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
      cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, l, hd, l, 1.0f,
          p, l, dy, w, 1.0f, dv, stride);
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, l, l, hd, 1.0f,
          dy, w, v, stride, 0.0f, dp, l);
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
      cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, l, hd, l, scale,
          dp, l, q, stride, 1.0f, dk, stride);
    }
  }
}

/* Unit rows of x [n, e] into out (double), and their norms. */
static void
normalize_rows (double *out, double *norms, const float *x, int n, int e)
{
  for (int r = 0; r < n; r++) {
    double sum = 0.0;
    for (int k = 0; k < e; k++)
      sum += (double) x[(gsize) r * e + k] * x[(gsize) r * e + k];
    norms[r] = MAX (sqrt (sum), 1e-12);
    for (int k = 0; k < e; k++)
      out[(gsize) r * e + k] = x[(gsize) r * e + k] / norms[r];
  }
}

/* Gradient through x -> x / |x|: (g - u (u . g)) / |x|, added to dx. */
static void
normalize_rows_backward (float *dx, const double *g, const double *unit,
    const double *norms, int n, int e)
{
  for (int r = 0; r < n; r++) {
    const double *u = unit + (gsize) r * e, *gr = g + (gsize) r * e;
    double dot = 0.0;
    for (int k = 0; k < e; k++)
      dot += u[k] * gr[k];
    for (int k = 0; k < e; k++)
      dx[(gsize) r * e + k] += (float) ((gr[k] - u[k] * dot) / norms[r]);
  }
}

double
clip_op_contrastive_loss (const float *img, const float *txt, int n, int e,
    float log_scale, float *dimg, float *dtxt, float *dlog_scale,
    float *accuracy)
{
  /* Small (n x n, n x e): double precision throughout costs nothing. */
  g_autofree double *a = g_new (double, (gsize) n * e);
  g_autofree double *t = g_new (double, (gsize) n * e);
  g_autofree double *anorm = g_new (double, n);
  g_autofree double *tnorm = g_new (double, n);
  g_autofree double *cosine = g_new (double, (gsize) n * n);
  g_autofree double *dlogits = g_new0 (double, (gsize) n * n);
  normalize_rows (a, anorm, img, n, e);
  normalize_rows (t, tnorm, txt, n, e);

  /* CLIP clamps the temperature at 100 so that training stays stable. */
  gboolean clamped = log_scale > logf (100.0f);
  double scale = clamped ? 100.0 : exp (log_scale);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double dot = 0.0;
      for (int k = 0; k < e; k++)
        dot += a[(gsize) i * e + k] * t[(gsize) j * e + k];
      cosine[(gsize) i * n + j] = dot;
    }

  /* Rows: image i against every text; columns: text j against every image.
   * Each direction's mean cross-entropy is weighted 1/2. */
  double loss = 0.0, weight = 0.5 / n;
  int correct = 0;
  g_autofree double *p = g_new (double, n);
  for (int dir = 0; dir < 2; dir++) {
    for (int i = 0; i < n; i++) {
      /* logit(i, j) in this direction */
#define LOGIT(i, j) (scale * (dir == 0 ? cosine[(gsize) (i) * n + (j)] \
                                       : cosine[(gsize) (j) * n + (i)]))
      double max = LOGIT (i, 0);
      int best = 0;
      for (int j = 1; j < n; j++)
        if (LOGIT (i, j) > max) {
          max = LOGIT (i, j);
          best = j;
        }
      if (dir == 0 && best == i)
        correct++;
      double sum = 0.0;
      for (int j = 0; j < n; j++) {
        p[j] = exp (LOGIT (i, j) - max);
        sum += p[j];
      }
      loss += weight * (max + log (sum) - LOGIT (i, i));
      for (int j = 0; j < n; j++) {
        double d = weight * (p[j] / sum - (i == j));
        if (dir == 0)
          dlogits[(gsize) i * n + j] += d;
        else
          dlogits[(gsize) j * n + i] += d;
      }
#undef LOGIT
    }
  }
  if (accuracy != NULL)
    *accuracy = (float) correct / n;

  g_autofree double *da = g_new0 (double, (gsize) n * e);
  g_autofree double *dt = g_new0 (double, (gsize) n * e);
  double dscale = 0.0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double d = dlogits[(gsize) i * n + j];
      dscale += d * cosine[(gsize) i * n + j];
      for (int k = 0; k < e; k++) {
        da[(gsize) i * e + k] += scale * d * t[(gsize) j * e + k];
        dt[(gsize) j * e + k] += scale * d * a[(gsize) i * e + k];
      }
    }
  normalize_rows_backward (dimg, da, a, anorm, n, e);
  normalize_rows_backward (dtxt, dt, t, tnorm, n, e);
  if (!clamped)
    *dlog_scale += (float) (dscale * scale);
  return loss;
}
