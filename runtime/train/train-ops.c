/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CLIP's contrastive loss and its gradient. See train-ops.h. */
#include "train-ops.h"

#include <math.h>

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
#define LOGIT(i, j)                              \
  (scale                                         \
      * (dir == 0 ? cosine[(gsize) (i) *n + (j)] \
                  : cosine[(gsize) (j) *n + (i)]))
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
