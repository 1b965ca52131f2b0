/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ClipTrainer: the training forward pass (keeping activations), the
 * backward pass, AdamW and checkpoints. The ops are in cpu/ops.c. */
#include "train.h"
#include "backend.h"
#include "cpu/ops.h"
#include "train-ops.h"
#include "params.h"

#include <cblas.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

/* ------------------------------------------------------------- layout */

/* The parameter buffer as the table lays it out (params.h): q, k, v
 * weights are consecutive, so they form one [3W, W] matrix (and their
 * biases one [3W] vector): one GEMM computes all three. */
typedef ClipParamLayout Layout;
typedef ClipBlockOffsets LayerSlots;
typedef ClipParamSpan Span;

/* ---------------------------------------------------------- activations */

/* One tower's activations for up to `rows` = batch x tokens rows, every
 * per-layer array holding `layers` consecutive slices, and the scratch of
 * its backward pass. */
typedef struct {
  const ClipTowerConfig *cfg;
  gboolean causal;
  gsize rows, tokens, batch;
  float *embed, *embed_mean, *embed_rstd; /* vision: input of ln_pre */
  float *res; /* layers + 1 slices: block inputs, output */
  float *ln1, *ln1_mean, *ln1_rstd, *qkv, *probs, *attn, *mid;
  float *ln2, *ln2_mean, *ln2_rstd, *fc1, *act;
  float *pooled_ln, *pool_mean, *pool_rstd; /* [batch, W] */
  int *pool_row;                            /* row pooled per sequence */
  float *dres, *dln, *dattn, *dqkv, *dfc1, *dact, *dprobs, *dpooled;
} Tower;

static void
tower_init (Tower *t, const ClipTowerConfig *cfg, gboolean causal, gsize batch,
    gsize tokens)
{
  gsize w = cfg->width, m = cfg->mlp_width, layers = cfg->layers;
  gsize n = batch * tokens;
  memset (t, 0, sizeof *t);
  t->cfg = cfg;
  t->causal = causal;
  t->rows = n;
  t->tokens = tokens;
  t->batch = batch;
  t->embed = g_new (float, n * w);
  t->embed_mean = g_new (float, n);
  t->embed_rstd = g_new (float, n);
  t->res = g_new (float, (layers + 1) * n * w);
  t->ln1 = g_new (float, layers * n * w);
  t->ln1_mean = g_new (float, layers * n);
  t->ln1_rstd = g_new (float, layers * n);
  t->qkv = g_new (float, layers * n * 3 * w);
  t->probs = g_new (float, layers * batch * cfg->heads * tokens * tokens);
  t->attn = g_new (float, layers * n * w);
  t->mid = g_new (float, layers * n * w);
  t->ln2 = g_new (float, layers * n * w);
  t->ln2_mean = g_new (float, layers * n);
  t->ln2_rstd = g_new (float, layers * n);
  t->fc1 = g_new (float, layers * n * m);
  t->act = g_new (float, layers * n * m);
  t->pooled_ln = g_new (float, batch * w);
  t->pool_mean = g_new (float, batch);
  t->pool_rstd = g_new (float, batch);
  t->pool_row = g_new (int, batch);
  t->dres = g_new (float, n * w);
  t->dln = g_new (float, n * w);
  t->dattn = g_new (float, n * w);
  t->dqkv = g_new (float, n * 3 * w);
  t->dfc1 = g_new (float, n * m);
  t->dact = g_new (float, n * m);
  t->dprobs = g_new (float, tokens * tokens);
  t->dpooled = g_new (float, batch * w);
}

static void
tower_clear (Tower *t)
{
  float **arrays[] = { &t->embed, &t->embed_mean, &t->embed_rstd, &t->res,
    &t->ln1, &t->ln1_mean, &t->ln1_rstd, &t->qkv, &t->probs, &t->attn, &t->mid,
    &t->ln2, &t->ln2_mean, &t->ln2_rstd, &t->fc1, &t->act, &t->pooled_ln,
    &t->pool_mean, &t->pool_rstd, &t->dres, &t->dln, &t->dattn, &t->dqkv,
    &t->dfc1, &t->dact, &t->dprobs, &t->dpooled };
  for (gsize i = 0; i < G_N_ELEMENTS (arrays); i++)
    g_clear_pointer (arrays[i], g_free);
  g_clear_pointer (&t->pool_row, g_free);
}

/* ------------------------------------------------------------- trainer */

struct _ClipTrainer {
  ClipConfig config;
  ClipTrainOptions opts;
  Layout layout;
  float *params, *grads, *adam_m, *adam_v;
  guint8 *token_seen; /* [vocab]: rows the optimizer updates */
  int step;
  Tower vision, text;
  float *patches, *patch_out, *dpatch_out; /* im2col and its product */
  float *img, *txt, *dimg, *dtxt;          /* [batch, E] */
  int text_tokens;                         /* sequence length of the batch */
  float batch_accuracy;
  ClipLayerWeights *vision_views, *text_views;
};

void
clip_train_options_init (ClipTrainOptions *opts)
{
  *opts = (ClipTrainOptions) {
    .batch = 64,
    .steps = 1000,
    .warmup_steps = 100,
    .lr = 1e-3f,
    .weight_decay = 0.2f,
    .beta1 = 0.9f,
    .beta2 = 0.98f,
    .adam_eps = 1e-6f,
    .clip_grad_norm = 1.0f,
    .logit_scale_init = 1.0f / 0.07f,
    .seed = 1,
  };
}

static gboolean
same_sizes (const ClipConfig *a, const ClipConfig *b)
{
  const ClipTowerConfig *towers[2][2] = { { &a->vision, &b->vision },
    { &a->text, &b->text } };
  for (int i = 0; i < 2; i++) {
    const ClipTowerConfig *x = towers[i][0], *y = towers[i][1];
    if (x->width != y->width || x->layers != y->layers || x->heads != y->heads
        || x->mlp_width != y->mlp_width)
      return FALSE;
  }
  return a->embed_dim == b->embed_dim && a->image_size == b->image_size
      && a->patch_size == b->patch_size
      && a->context_length == b->context_length
      && a->vocab_size == b->vocab_size;
}

ClipTrainer *
clip_trainer_new (const ClipConfig *config, const ClipTrainOptions *opts,
    ClipModel *init, GError **error)
{
  if (!clip_config_validate (config, error))
    return NULL;
  if (opts->batch < 2 || opts->steps < 1 || opts->warmup_steps < 0
      || !(opts->lr > 0.0f) || opts->threads < 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "training options: need batch >= 2 (got %d), steps >= 1 (got %d), "
        "warm-up >= 0 (got %d), lr > 0 (got %g) and threads >= 0 (got %d)",
        opts->batch, opts->steps, opts->warmup_steps, opts->lr, opts->threads);
    return NULL;
  }
  if (init != NULL && !same_sizes (config, &init->config)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%s: the model's sizes differ from the training config's", init->dir);
    return NULL;
  }

  ClipTrainer *t = g_new0 (ClipTrainer, 1);
  t->config = *config;
  t->opts = *opts;
  if (opts->threads > 0)
    openblas_set_num_threads (opts->threads);
  clip_param_layout_init (&t->layout, config);
  gsize total = t->layout.total;
  t->params = g_try_new (float, total);
  t->grads = g_try_new0 (float, total);
  t->adam_m = g_try_new0 (float, total);
  t->adam_v = g_try_new0 (float, total);
  if (!t->params || !t->grads || !t->adam_m || !t->adam_v) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "not enough memory for %" G_GSIZE_FORMAT " MB of training state",
        total * 4 * sizeof (float) >> 20);
    clip_trainer_free (t);
    return NULL;
  }
  t->token_seen = g_new0 (guint8, config->vocab_size);
  if (init != NULL) {
    clip_params_copy (&t->layout, clip_model_get_weights (init), t->params);
  } else {
    clip_params_init (&t->layout, config, opts->seed, t->params);
    t->params[t->layout.logit_scale] = logf (opts->logit_scale_init);
  }

  const ClipConfig *c = &t->config;
  gsize b = opts->batch, e = c->embed_dim;
  gsize patches = clip_config_vision_tokens (c) - 1;
  tower_init (&t->vision, &c->vision, FALSE, b, patches + 1);
  tower_init (&t->text, &c->text, TRUE, b, c->context_length);
  t->patches = g_new (float, b * patches * 3 * c->patch_size * c->patch_size);
  t->patch_out = g_new (float, b * patches * c->vision.width);
  t->dpatch_out = g_new (float, b * patches * c->vision.width);
  t->img = g_new (float, b * e);
  t->txt = g_new (float, b * e);
  t->dimg = g_new (float, b * e);
  t->dtxt = g_new (float, b * e);
  t->vision_views = g_new0 (ClipLayerWeights, c->vision.layers);
  t->text_views = g_new0 (ClipLayerWeights, c->text.layers);
  return t;
}

void
clip_trainer_free (ClipTrainer *t)
{
  if (t == NULL)
    return;
  tower_clear (&t->vision);
  tower_clear (&t->text);
  g_free (t->patches);
  g_free (t->patch_out);
  g_free (t->dpatch_out);
  g_free (t->img);
  g_free (t->txt);
  g_free (t->dimg);
  g_free (t->dtxt);
  g_free (t->vision_views);
  g_free (t->text_views);
  g_free (t->params);
  g_free (t->grads);
  g_free (t->adam_m);
  g_free (t->adam_v);
  g_free (t->token_seen);
  clip_param_layout_clear (&t->layout);
  g_free (t);
}

const ClipConfig *
clip_trainer_get_config (const ClipTrainer *t)
{
  return &t->config;
}

int
clip_trainer_get_step (const ClipTrainer *t)
{
  return t->step;
}

float
clip_trainer_get_lr (const ClipTrainer *t, int step)
{
  const ClipTrainOptions *o = &t->opts;
  if (step < o->warmup_steps)
    return o->lr * (step + 1) / o->warmup_steps;
  int decay_steps = MAX (o->steps - o->warmup_steps, 1);
  double progress = MIN ((double) (step - o->warmup_steps) / decay_steps, 1.0);
  return (float) (o->lr * 0.5 * (1.0 + cos (G_PI * progress)));
}

gboolean
clip_trainer_get_tensor (const ClipTrainer *t, guint i, const char **name,
    gsize *offset, gsize *size)
{
  if (i >= t->layout.spans->len)
    return FALSE;
  const Span *s = &g_array_index (t->layout.spans, Span, i);
  *name = s->name;
  *offset = s->offset;
  *size = s->size;
  return TRUE;
}

float *
clip_trainer_get_params (ClipTrainer *t, gsize *n)
{
  *n = t->layout.total;
  return t->params;
}

const float *
clip_trainer_get_grads (const ClipTrainer *t)
{
  return t->grads;
}

/* ------------------------------------------------------- forward pass */

/* One block on n = batch x tokens rows: x += attn(ln_1(x)); x += mlp(ln_2(x)),
 * reading res slice `layer` and writing slice layer + 1. */
static void
block_forward (Tower *t, const float *p, const LayerSlots *s, int layer,
    int batch, int tokens)
{
  const ClipTowerConfig *c = t->cfg;
  gsize w = c->width, m = c->mlp_width, n = (gsize) batch * tokens;
  const float *in = t->res + layer * t->rows * w;
  float *out = t->res + (layer + 1) * t->rows * w;
  float *ln1 = t->ln1 + layer * t->rows * w;
  float *qkv = t->qkv + layer * t->rows * 3 * w;
  float *probs = t->probs + layer * t->batch * c->heads * t->tokens * t->tokens;
  float *attn = t->attn + layer * t->rows * w;
  float *mid = t->mid + layer * t->rows * w;
  float *ln2 = t->ln2 + layer * t->rows * w;
  float *fc1 = t->fc1 + layer * t->rows * m;
  float *act = t->act + layer * t->rows * m;

  clip_op_layernorm_forward (ln1, t->ln1_mean + layer * t->rows,
      t->ln1_rstd + layer * t->rows, in, p + s->ln1_w, p + s->ln1_b, n, w,
      c->eps);
  clip_op_linear_forward (qkv, 3 * w, ln1, p + s->qkv_w, p + s->qkv_b, n, w,
      3 * w, FALSE);
  clip_op_attention_forward (attn, probs, qkv, batch, tokens, w, c->heads,
      t->causal);
  clip_op_linear_forward (mid, w, attn, p + s->out_w, p + s->out_b, n, w, w,
      FALSE);
  for (gsize i = 0; i < n * w; i++)
    mid[i] += in[i];
  clip_op_layernorm_forward (ln2, t->ln2_mean + layer * t->rows,
      t->ln2_rstd + layer * t->rows, mid, p + s->ln2_w, p + s->ln2_b, n, w,
      c->eps);
  clip_op_linear_forward (fc1, m, ln2, p + s->fc1_w, p + s->fc1_b, n, w, m,
      FALSE);
  clip_op_gelu_forward (act, fc1, m, n, m, c->activation);
  clip_op_linear_forward (out, w, act, p + s->fc2_w, p + s->fc2_b, n, m, w,
      FALSE);
  for (gsize i = 0; i < n * w; i++)
    out[i] += mid[i];
}

/* The blocks, then the final LayerNorm on the pooled rows and the
 * projection into out [batch, E]. */
static void
tower_forward (Tower *t, const float *p, const LayerSlots *layers, gsize ln_w,
    gsize ln_b, gsize proj, int embed_dim, int batch, int tokens, float *out)
{
  const ClipTowerConfig *c = t->cfg;
  gsize w = c->width;
  for (int i = 0; i < c->layers; i++)
    block_forward (t, p, &layers[i], i, batch, tokens);
  const float *final = t->res + c->layers * t->rows * w;
  g_autofree float *pooled = g_new (float, batch * w);
  for (int b = 0; b < batch; b++)
    memcpy (pooled + b * w, final + (gsize) t->pool_row[b] * w,
        w * sizeof (float));
  clip_op_layernorm_forward (t->pooled_ln, t->pool_mean, t->pool_rstd, pooled,
      p + ln_w, p + ln_b, batch, w, c->eps);
  clip_op_linear_forward (out, embed_dim, t->pooled_ln, p + proj, NULL, batch,
      w, embed_dim, FALSE);
}

/* pixels [batch, 3, S, S] -> patches [batch x grid^2, 3 P P], each row laid
 * out as the conv1 weight [W, 3, P, P] is, patches in row-major grid order. */
static void
im2col (float *patches, const float *pixels, int batch, int size, int patch)
{
  int grid = size / patch, row_len = 3 * patch * patch;
  for (int b = 0; b < batch; b++)
    for (int gy = 0; gy < grid; gy++)
      for (int gx = 0; gx < grid; gx++) {
        float *row = patches + ((gsize) (b * grid + gy) * grid + gx) * row_len;
        for (int ch = 0; ch < 3; ch++)
          for (int ky = 0; ky < patch; ky++) {
            const float *src = pixels
                + (((gsize) b * 3 + ch) * size + gy * patch + ky) * size
                + gx * patch;
            memcpy (row + (ch * patch + ky) * patch, src,
                patch * sizeof (float));
          }
      }
}

static void
vision_forward (ClipTrainer *t, const float *pixels, int batch, float *out)
{
  const ClipConfig *c = &t->config;
  const Layout *l = &t->layout;
  const float *p = t->params;
  Tower *v = &t->vision;
  int w = c->vision.width, tokens = v->tokens, patches = tokens - 1;
  int row_len = 3 * c->patch_size * c->patch_size;
  gsize n = (gsize) batch * tokens;

  im2col (t->patches, pixels, batch, c->image_size, c->patch_size);
  clip_op_linear_forward (t->patch_out, w, t->patches, p + l->patch_w, NULL,
      batch * patches, row_len, w, FALSE);
  const float *pos = p + l->vision_pos;
  for (int b = 0; b < batch; b++) {
    float *seq = v->embed + (gsize) b * tokens * w;
    for (int k = 0; k < w; k++)
      seq[k] = p[l->class_emb + k] + pos[k];
    for (int i = 1; i < tokens; i++)
      for (int k = 0; k < w; k++)
        seq[i * w + k] = t->patch_out[((gsize) b * patches + i - 1) * w + k]
            + pos[i * w + k];
    v->pool_row[b] = b * tokens;
  }
  clip_op_layernorm_forward (v->res, v->embed_mean, v->embed_rstd, v->embed,
      p + l->ln_pre_w, p + l->ln_pre_b, n, w, c->vision.eps);
  tower_forward (v, p, l->vision_layers, l->ln_post_w, l->ln_post_b,
      l->vision_proj, c->embed_dim, batch, tokens, out);
}

static gboolean
check_tokens (const ClipConfig *c, const gint32 *tokens, int n, GError **error)
{
  for (gsize i = 0; i < (gsize) n * c->context_length; i++)
    if (tokens[i] < 0 || tokens[i] >= c->vocab_size) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
          "token id %d in row %" G_GSIZE_FORMAT " is outside the vocabulary "
          "(0..%d)",
          tokens[i], i / c->context_length, c->vocab_size - 1);
      return FALSE;
    }
  return TRUE;
}

/* The causal mask lets the batch run only up to its last end-of-text
 * token: later positions cannot change the pooled rows. */
static void
text_forward (ClipTrainer *t, const gint32 *ids, int batch, float *out)
{
  const ClipConfig *c = &t->config;
  const Layout *l = &t->layout;
  const float *p = t->params;
  Tower *x = &t->text;
  int w = c->text.width, ctx = c->context_length, tokens = 1;
  for (int b = 0; b < batch; b++)
    tokens = MAX (tokens, clip_tokens_eot_position (ids + b * ctx, ctx) + 1);
  t->text_tokens = tokens;
  for (int b = 0; b < batch; b++) {
    for (int i = 0; i < tokens; i++) {
      const float *emb = p + l->token_emb + (gsize) ids[b * ctx + i] * w;
      float *row = x->res + ((gsize) b * tokens + i) * w;
      for (int k = 0; k < w; k++)
        row[k] = emb[k] + p[l->text_pos + i * w + k];
    }
    x->pool_row[b] = b * tokens + clip_tokens_eot_position (ids + b * ctx, ctx);
  }
  tower_forward (x, p, l->text_layers, l->ln_final_w, l->ln_final_b,
      l->text_proj, c->embed_dim, batch, tokens, out);
}

/* ------------------------------------------------------ backward pass */

static void
block_backward (Tower *t, const float *p, float *g, const LayerSlots *s,
    int layer, int batch, int tokens)
{
  const ClipTowerConfig *c = t->cfg;
  gsize w = c->width, m = c->mlp_width, n = (gsize) batch * tokens;
  const float *in = t->res + layer * t->rows * w;
  const float *ln1 = t->ln1 + layer * t->rows * w;
  const float *qkv = t->qkv + layer * t->rows * 3 * w;
  const float *probs = t->probs
      + layer * t->batch * c->heads * t->tokens * t->tokens;
  const float *attn = t->attn + layer * t->rows * w;
  const float *mid = t->mid + layer * t->rows * w;
  const float *ln2 = t->ln2 + layer * t->rows * w;
  const float *fc1 = t->fc1 + layer * t->rows * m;
  const float *act = t->act + layer * t->rows * m;

  /* dres holds d(output); the residual passes it to mid unchanged, the MLP
   * branch adds its part, then the same through the attention branch. */
  memset (t->dact, 0, n * m * sizeof (float));
  clip_op_linear_backward (t->dact, g + s->fc2_w, g + s->fc2_b, t->dres, act,
      p + s->fc2_w, n, m, w);
  memset (t->dfc1, 0, n * m * sizeof (float));
  clip_op_gelu_backward (t->dfc1, t->dact, fc1, n * m, c->activation);
  memset (t->dln, 0, n * w * sizeof (float));
  clip_op_linear_backward (t->dln, g + s->fc1_w, g + s->fc1_b, t->dfc1, ln2,
      p + s->fc1_w, n, w, m);
  clip_op_layernorm_backward (t->dres, g + s->ln2_w, g + s->ln2_b, t->dln, mid,
      t->ln2_mean + layer * t->rows, t->ln2_rstd + layer * t->rows,
      p + s->ln2_w, n, w);

  memset (t->dattn, 0, n * w * sizeof (float));
  clip_op_linear_backward (t->dattn, g + s->out_w, g + s->out_b, t->dres, attn,
      p + s->out_w, n, w, w);
  memset (t->dqkv, 0, n * 3 * w * sizeof (float));
  clip_op_attention_backward (t->dqkv, t->dprobs, t->dattn, qkv, probs, batch,
      tokens, w, c->heads);
  memset (t->dln, 0, n * w * sizeof (float));
  clip_op_linear_backward (t->dln, g + s->qkv_w, g + s->qkv_b, t->dqkv, ln1,
      p + s->qkv_w, n, w, 3 * w);
  clip_op_layernorm_backward (t->dres, g + s->ln1_w, g + s->ln1_b, t->dln, in,
      t->ln1_mean + layer * t->rows, t->ln1_rstd + layer * t->rows,
      p + s->ln1_w, n, w);
}

/* From d(out) [batch, E] to t->dres = d(block 0's input). */
static void
tower_backward (Tower *t, const float *p, float *g, const LayerSlots *layers,
    gsize ln_w, gsize ln_b, gsize proj, int embed_dim, int batch, int tokens,
    const float *dout)
{
  const ClipTowerConfig *c = t->cfg;
  gsize w = c->width, n = (gsize) batch * tokens;
  memset (t->dpooled, 0, batch * w * sizeof (float));
  clip_op_linear_backward (t->dpooled, g + proj, NULL, dout, t->pooled_ln,
      p + proj, batch, w, embed_dim);
  /* The final LayerNorm saw only the pooled rows; its input gradient goes
   * back to those rows of the last block's output. */
  const float *final = t->res + c->layers * t->rows * w;
  g_autofree float *pooled = g_new (float, batch * w);
  g_autofree float *dpooled_in = g_new0 (float, batch * w);
  for (int b = 0; b < batch; b++)
    memcpy (pooled + b * w, final + (gsize) t->pool_row[b] * w,
        w * sizeof (float));
  clip_op_layernorm_backward (dpooled_in, g + ln_w, g + ln_b, t->dpooled,
      pooled, t->pool_mean, t->pool_rstd, p + ln_w, batch, w);
  memset (t->dres, 0, n * w * sizeof (float));
  for (int b = 0; b < batch; b++)
    memcpy (t->dres + (gsize) t->pool_row[b] * w, dpooled_in + b * w,
        w * sizeof (float));
  for (int i = c->layers - 1; i >= 0; i--)
    block_backward (t, p, g, &layers[i], i, batch, tokens);
}

static void
vision_backward (ClipTrainer *t, int batch, const float *dout)
{
  const ClipConfig *c = &t->config;
  const Layout *l = &t->layout;
  const float *p = t->params;
  float *g = t->grads;
  Tower *v = &t->vision;
  int w = c->vision.width, tokens = v->tokens, patches = tokens - 1;
  int row_len = 3 * c->patch_size * c->patch_size;
  gsize n = (gsize) batch * tokens;

  tower_backward (v, p, g, l->vision_layers, l->ln_post_w, l->ln_post_b,
      l->vision_proj, c->embed_dim, batch, tokens, dout);
  g_autofree float *dembed = g_new0 (float, n * w);
  clip_op_layernorm_backward (dembed, g + l->ln_pre_w, g + l->ln_pre_b, v->dres,
      v->embed, v->embed_mean, v->embed_rstd, p + l->ln_pre_w, n, w);
  for (int b = 0; b < batch; b++) {
    const float *seq = dembed + (gsize) b * tokens * w;
    for (int k = 0; k < w; k++)
      g[l->class_emb + k] += seq[k];
    for (int i = 0; i < tokens; i++)
      for (int k = 0; k < w; k++)
        g[l->vision_pos + i * w + k] += seq[i * w + k];
    memcpy (t->dpatch_out + (gsize) b * patches * w, seq + w,
        (gsize) patches * w * sizeof (float));
  }
  clip_op_linear_backward (NULL, g + l->patch_w, NULL, t->dpatch_out,
      t->patches, p + l->patch_w, batch * patches, row_len, w);
}

static void
text_backward (ClipTrainer *t, const gint32 *ids, int batch, const float *dout)
{
  const ClipConfig *c = &t->config;
  const Layout *l = &t->layout;
  float *g = t->grads;
  Tower *x = &t->text;
  int w = c->text.width, ctx = c->context_length, tokens = t->text_tokens;

  tower_backward (x, t->params, g, l->text_layers, l->ln_final_w, l->ln_final_b,
      l->text_proj, c->embed_dim, batch, tokens, dout);
  for (int b = 0; b < batch; b++)
    for (int i = 0; i < tokens; i++) {
      gint32 id = ids[b * ctx + i];
      t->token_seen[id] = 1;
      const float *d = x->dres + ((gsize) b * tokens + i) * w;
      float *demb = g + l->token_emb + (gsize) id * w;
      for (int k = 0; k < w; k++) {
        demb[k] += d[k];
        g[l->text_pos + i * w + k] += d[k];
      }
    }
}

static gboolean
check_batch (ClipTrainer *t, const gint32 *tokens, int n, GError **error)
{
  if (n < 1 || n > t->opts.batch) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "a batch of %d pairs: the trainer holds 1..%d", n, t->opts.batch);
    return FALSE;
  }
  return tokens == NULL || check_tokens (&t->config, tokens, n, error);
}

gboolean
clip_trainer_loss_and_grads (ClipTrainer *t, const float *pixels,
    const gint32 *tokens, int n, double *loss, GError **error)
{
  if (!check_batch (t, tokens, n, error))
    return FALSE;
  const ClipConfig *c = &t->config;
  gsize e = c->embed_dim;
  vision_forward (t, pixels, n, t->img);
  text_forward (t, tokens, n, t->txt);
  memset (t->grads, 0, t->layout.total * sizeof (float));
  memset (t->dimg, 0, n * e * sizeof (float));
  memset (t->dtxt, 0, n * e * sizeof (float));
  *loss = clip_op_contrastive_loss (t->img, t->txt, n, e,
      t->params[t->layout.logit_scale], t->dimg, t->dtxt,
      &t->grads[t->layout.logit_scale], &t->batch_accuracy);
  vision_backward (t, n, t->dimg);
  text_backward (t, tokens, n, t->dtxt);
  return TRUE;
}

/* ------------------------------------------------------------- AdamW */

static void
adamw_range (ClipTrainer *t, gsize offset, gsize size, float lr, float decay,
    float grad_scale)
{
  const ClipTrainOptions *o = &t->opts;
  double bias1 = 1.0 - pow (o->beta1, t->step + 1);
  double bias2 = 1.0 - pow (o->beta2, t->step + 1);
  float *p = t->params + offset, *g = t->grads + offset;
  float *m = t->adam_m + offset, *v = t->adam_v + offset;
  for (gsize i = 0; i < size; i++) {
    float grad = g[i] * grad_scale;
    m[i] = o->beta1 * m[i] + (1.0f - o->beta1) * grad;
    v[i] = o->beta2 * v[i] + (1.0f - o->beta2) * grad * grad;
    float m_hat = (float) (m[i] / bias1), v_hat = (float) (v[i] / bias2);
    p[i] -= lr * (m_hat / (sqrtf (v_hat) + o->adam_eps) + decay * p[i]);
  }
}

gboolean
clip_trainer_step (ClipTrainer *t, const float *pixels, const gint32 *tokens,
    ClipTrainStats *stats, GError **error)
{
  const ClipConfig *c = &t->config;
  const Layout *l = &t->layout;
  int n = t->opts.batch, w = c->text.width;
  double loss;
  if (!clip_trainer_loss_and_grads (t, pixels, tokens, n, &loss, error))
    return FALSE;
  double sum = 0.0;
  for (gsize i = 0; i < l->total; i++)
    sum += (double) t->grads[i] * t->grads[i];
  float norm = (float) sqrt (sum);
  float clip = t->opts.clip_grad_norm;
  float grad_scale = clip > 0.0f && norm > clip ? clip / norm : 1.0f;
  float lr = clip_trainer_get_lr (t, t->step);

  for (guint i = 0; i < l->spans->len; i++) {
    const Span *s = &g_array_index (l->spans, Span, i);
    float decay = s->param->decay ? t->opts.weight_decay : 0.0f;
    if (!s->param->by_token) {
      adamw_range (t, s->offset, s->size, lr, decay, grad_scale);
      continue;
    }
    /* Rows of tokens never seen keep their initial values exactly, as
     * full Adam would leave them (zero moments), at a fraction of the cost. */
    for (int id = 0; id < c->vocab_size; id++)
      if (t->token_seen[id])
        adamw_range (t, s->offset + (gsize) id * w, w, lr, decay, grad_scale);
  }
  float *scale = &t->params[l->logit_scale];
  *scale = CLAMP (*scale, 0.0f, logf (100.0f));
  t->step++;

  if (stats != NULL)
    *stats = (ClipTrainStats) {
      .loss = loss,
      .accuracy = t->batch_accuracy,
      .grad_norm = norm,
      .lr = lr,
      .logit_scale = expf (*scale),
    };
  return TRUE;
}

/* ---------------------------------------------------- encoding, export */

gboolean
clip_trainer_encode_images (ClipTrainer *t, const float *pixels, int n,
    float *out, GError **error)
{
  const ClipConfig *c = &t->config;
  gsize image = 3 * (gsize) c->image_size * c->image_size;
  for (int done = 0; done < n; done += t->opts.batch) {
    int chunk = MIN (t->opts.batch, n - done);
    vision_forward (t, pixels + done * image, chunk,
        out + (gsize) done * c->embed_dim);
  }
  return TRUE;
}

gboolean
clip_trainer_encode_texts (ClipTrainer *t, const gint32 *tokens, int n,
    float *out, GError **error)
{
  const ClipConfig *c = &t->config;
  if (!check_tokens (c, tokens, n, error))
    return FALSE;
  for (int done = 0; done < n; done += t->opts.batch) {
    int chunk = MIN (t->opts.batch, n - done);
    text_forward (t, tokens + (gsize) done * c->context_length, chunk,
        out + (gsize) done * c->embed_dim);
  }
  return TRUE;
}

void
clip_trainer_get_weights (ClipTrainer *t, ClipWeights *weights)
{
  *weights = (ClipWeights) {
    .vision.layers = t->vision_views,
    .text.layers = t->text_views,
  };
  clip_params_views (&t->layout, t->params, weights);
}

gboolean
clip_trainer_save_model (ClipTrainer *t, const char *dir, ClipDType dtype,
    const char *vocab_dir, GError **error)
{
  if (g_mkdir_with_parents (dir, 0755) != 0) {
    int saved = errno;
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: cannot create the folder: %s", dir, g_strerror (saved));
    return FALSE;
  }
  ClipWeights weights;
  clip_trainer_get_weights (t, &weights);
  return clip_model_save (dir, &t->config, &weights, CLIP_LAYOUT_HF, dtype,
      vocab_dir, error);
}

/* ---------------------------------------------------------- checkpoints */

/* What a checkpoint must match to be resumed: the sizes (the parameter
 * layout) and the run (batch, schedule, seed). */
static void
run_fingerprint (const ClipTrainer *t, gint64 *out, int *n)
{
  const ClipConfig *c = &t->config;
  const ClipTrainOptions *o = &t->opts;
  gint64 values[] = { c->image_size, c->patch_size, c->vision.width,
    c->vision.layers, c->vision.heads, c->vision.mlp_width, c->text.width,
    c->text.layers, c->text.heads, c->text.mlp_width, c->embed_dim,
    c->context_length, c->vocab_size, o->batch, o->steps, o->seed };
  memcpy (out, values, sizeof values);
  *n = G_N_ELEMENTS (values);
}

#define FINGERPRINT_MAX 16

static ClipTensor
tensor_1d (const char *name, ClipDType dtype, gsize n, const void *data)
{
  return (ClipTensor) {
    .name = name,
    .dtype = dtype,
    .n_dims = 1,
    .shape = { (gint64) n },
    .n_elements = (gint64) n,
    .data = data,
    .n_bytes = n * clip_dtype_size (dtype),
  };
}

gboolean
clip_trainer_save_checkpoint (ClipTrainer *t, const char *path, GError **error)
{
  gint64 fingerprint[FINGERPRINT_MAX], step = t->step;
  int n_fingerprint;
  run_fingerprint (t, fingerprint, &n_fingerprint);
  gsize total = t->layout.total;
  ClipTensor tensors[] = {
    tensor_1d ("params", CLIP_DTYPE_F32, total, t->params),
    tensor_1d ("adam.m", CLIP_DTYPE_F32, total, t->adam_m),
    tensor_1d ("adam.v", CLIP_DTYPE_F32, total, t->adam_v),
    tensor_1d ("token_seen", CLIP_DTYPE_U8, t->config.vocab_size,
        t->token_seen),
    tensor_1d ("step", CLIP_DTYPE_I64, 1, &step),
    tensor_1d ("run", CLIP_DTYPE_I64, n_fingerprint, fingerprint),
  };
  /* A run killed while writing must leave the previous checkpoint intact. */
  g_autofree char *tmp = g_strconcat (path, ".tmp", NULL);
  if (!clip_safetensors_write (tmp, tensors, G_N_ELEMENTS (tensors), error))
    return FALSE;
  if (g_rename (tmp, path) != 0) {
    int saved = errno;
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: cannot replace the checkpoint: %s", path, g_strerror (saved));
    g_unlink (tmp);
    return FALSE;
  }
  return TRUE;
}

static const ClipTensor *
find_tensor (ClipSafetensors *st, const char *path, const char *name,
    ClipDType dtype, gsize n, GError **error)
{
  const ClipTensor *tensor = clip_safetensors_find (st, name);
  if (tensor == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: no tensor '%s': not a gst-clip training checkpoint", path, name);
    return NULL;
  }
  if (tensor->dtype != dtype || tensor->n_dims != 1
      || tensor->n_elements != (gint64) n) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%s: tensor '%s' is %s with %" G_GINT64_FORMAT " values, expected %s "
        "with %" G_GSIZE_FORMAT ": the checkpoint is of another model",
        path, name, clip_dtype_name (tensor->dtype), tensor->n_elements,
        clip_dtype_name (dtype), n);
    return NULL;
  }
  return tensor;
}

gboolean
clip_trainer_load_checkpoint (ClipTrainer *t, const char *path, GError **error)
{
  ClipSafetensors *st = clip_safetensors_open (path, error);
  if (st == NULL)
    return FALSE;
  gint64 fingerprint[FINGERPRINT_MAX];
  int n_fingerprint;
  run_fingerprint (t, fingerprint, &n_fingerprint);
  gsize total = t->layout.total;
  const ClipTensor *run = find_tensor (st, path, "run", CLIP_DTYPE_I64,
      n_fingerprint, error);
  const ClipTensor *params = NULL, *m = NULL, *v = NULL, *seen = NULL;
  const ClipTensor *step = NULL;
  gboolean ok = run != NULL;
  if (ok && memcmp (run->data, fingerprint, run->n_bytes) != 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%s: written by a run with other model sizes, batch, steps or seed",
        path);
    ok = FALSE;
  }
  ok = ok
      && (params = find_tensor (st, path, "params", CLIP_DTYPE_F32, total,
              error))
      && (m = find_tensor (st, path, "adam.m", CLIP_DTYPE_F32, total, error))
      && (v = find_tensor (st, path, "adam.v", CLIP_DTYPE_F32, total, error))
      && (seen = find_tensor (st, path, "token_seen", CLIP_DTYPE_U8,
              t->config.vocab_size, error))
      && (step = find_tensor (st, path, "step", CLIP_DTYPE_I64, 1, error));
  if (ok) {
    gint64 value;
    memcpy (&value, step->data, sizeof value);
    if (value < 0 || value > t->opts.steps) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
          "%s: step %" G_GINT64_FORMAT " is outside 0..%d", path, value,
          t->opts.steps);
      ok = FALSE;
    } else {
      memcpy (t->params, params->data, params->n_bytes);
      memcpy (t->adam_m, m->data, m->n_bytes);
      memcpy (t->adam_v, v->data, v->n_bytes);
      memcpy (t->token_seen, seen->data, seen->n_bytes);
      t->step = (int) value;
    }
  }
  clip_safetensors_close (st);
  return ok;
}
