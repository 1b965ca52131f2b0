/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Training: every op's backward pass and the whole loss's gradient against
 * finite differences; a short run whose loss falls and whose zero-shot
 * accuracy beats chance; the trained weights give the same embeddings
 * through the inference CPU backend; determinism; checkpoint resume. */
#include "reference.h"
#include "cpu/ops.h"
#include "train/train-ops.h"
#include "train/train.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

static void
fill_random (GRand *rand, float *v, gsize n, double scale)
{
  for (gsize i = 0; i < n; i++)
    v[i] = (float) g_rand_double_range (rand, -scale, scale);
}

typedef double (*LossFunc) (gpointer data);

/* Central differences on x[i] for (up to 64 of) n values against the
 * analytic gradient: |numeric - analytic| <= atol + rtol |numeric|. The
 * losses are accumulated in double so that float rounding stays far below
 * the tolerance. */
static void
check_gradient (const char *what, float *x, const float *analytic, gsize n,
    LossFunc loss, gpointer data, float h, double atol, double rtol)
{
  GRand *rand = g_rand_new_with_seed (n);
  gsize checks = MIN (n, 64);
  double worst = 0.0;
  for (gsize c = 0; c < checks; c++) {
    gsize i = checks == n ? c : (gsize) g_rand_int_range (rand, 0, n);
    float saved = x[i];
    x[i] = saved + h;
    double plus = loss (data);
    x[i] = saved - h;
    double minus = loss (data);
    x[i] = saved;
    double numeric = (plus - minus) / (2.0 * h);
    double error = fabs (numeric - analytic[i]);
    worst = MAX (worst, error / (atol + rtol * fabs (numeric)));
    if (error > atol + rtol * fabs (numeric))
      g_error ("%s[%" G_GSIZE_FORMAT "]: analytic %.6g, numeric %.6g", what, i,
          analytic[i], numeric);
  }
  g_test_message ("%s: %" G_GSIZE_FORMAT " values, worst error %.2f of the "
                  "tolerance",
      what, checks, worst);
  g_rand_free (rand);
}

/* sum(out * weights), the scalar every op check differentiates. */
static double
weighted_sum (const float *out, const float *weights, gsize n)
{
  double sum = 0.0;
  for (gsize i = 0; i < n; i++)
    sum += (double) out[i] * weights[i];
  return sum;
}

/* ---------------------------------------------------------- op checks */

typedef struct {
  int n, i, o;
  float *in, *w, *b, *out, *dout;
} LinearCase;

static double
linear_loss (gpointer data)
{
  LinearCase *c = data;
  clip_op_linear_forward (c->out, c->o, c->in, c->w, c->b, c->n, c->i, c->o,
      FALSE);
  return weighted_sum (c->out, c->dout, (gsize) c->n * c->o);
}

static void
test_linear (void)
{
  LinearCase c = { .n = 5, .i = 7, .o = 3 };
  GRand *rand = g_rand_new_with_seed (1);
  c.in = g_new (float, c.n * c.i);
  c.w = g_new (float, c.o * c.i);
  c.b = g_new (float, c.o);
  c.out = g_new (float, c.n * c.o);
  c.dout = g_new (float, c.n * c.o);
  fill_random (rand, c.in, c.n * c.i, 1.0);
  fill_random (rand, c.w, c.o * c.i, 1.0);
  fill_random (rand, c.b, c.o, 1.0);
  fill_random (rand, c.dout, c.n * c.o, 1.0);
  float *din = g_new0 (float, c.n * c.i), *dw = g_new0 (float, c.o * c.i);
  float *db = g_new0 (float, c.o);
  clip_op_linear_backward (din, dw, db, c.dout, c.in, c.w, c.n, c.i, c.o);
  check_gradient ("linear input", c.in, din, c.n * c.i, linear_loss, &c, 1e-2f,
      1e-4, 1e-3);
  check_gradient ("linear weight", c.w, dw, c.o * c.i, linear_loss, &c, 1e-2f,
      1e-4, 1e-3);
  check_gradient ("linear bias", c.b, db, c.o, linear_loss, &c, 1e-2f, 1e-4,
      1e-3);

  /* Backward adds to what is there: a second call doubles the gradients. */
  float before = dw[0];
  clip_op_linear_backward (NULL, dw, NULL, c.dout, c.in, c.w, c.n, c.i, c.o);
  g_assert_cmpfloat_with_epsilon (dw[0], 2 * before, 1e-5);
  g_free (din);
  g_free (dw);
  g_free (db);
  g_free (c.in);
  g_free (c.w);
  g_free (c.b);
  g_free (c.out);
  g_free (c.dout);
  g_rand_free (rand);
}

typedef struct {
  int n, c;
  float *in, *w, *b, *out, *mean, *rstd, *dout;
} NormCase;

static double
layernorm_loss (gpointer data)
{
  NormCase *c = data;
  clip_op_layernorm_forward (c->out, c->mean, c->rstd, c->in, c->w, c->b, c->n,
      c->c, 1e-5f);
  return weighted_sum (c->out, c->dout, (gsize) c->n * c->c);
}

static void
test_layernorm (void)
{
  NormCase c = { .n = 4, .c = 9 };
  GRand *rand = g_rand_new_with_seed (2);
  c.in = g_new (float, c.n * c.c);
  c.w = g_new (float, c.c);
  c.b = g_new (float, c.c);
  c.out = g_new (float, c.n * c.c);
  c.dout = g_new (float, c.n * c.c);
  c.mean = g_new (float, c.n);
  c.rstd = g_new (float, c.n);
  fill_random (rand, c.in, c.n * c.c, 2.0);
  fill_random (rand, c.w, c.c, 1.5);
  fill_random (rand, c.b, c.c, 1.0);
  fill_random (rand, c.dout, c.n * c.c, 1.0);
  layernorm_loss (&c);
  float *din = g_new0 (float, c.n * c.c), *dw = g_new0 (float, c.c);
  float *db = g_new0 (float, c.c);
  clip_op_layernorm_backward (din, dw, db, c.dout, c.in, c.mean, c.rstd, c.w,
      c.n, c.c);
  check_gradient ("layernorm input", c.in, din, c.n * c.c, layernorm_loss, &c,
      1e-2f, 1e-3, 1e-2);
  check_gradient ("layernorm weight", c.w, dw, c.c, layernorm_loss, &c, 1e-2f,
      1e-3, 1e-2);
  check_gradient ("layernorm bias", c.b, db, c.c, layernorm_loss, &c, 1e-2f,
      1e-3, 1e-2);
  g_free (din);
  g_free (dw);
  g_free (db);
  g_free (c.in);
  g_free (c.w);
  g_free (c.b);
  g_free (c.out);
  g_free (c.dout);
  g_free (c.mean);
  g_free (c.rstd);
  g_rand_free (rand);
}

static ClipActivation
activation (gboolean quick)
{
  return quick ? CLIP_ACTIVATION_QUICK_GELU : CLIP_ACTIVATION_GELU;
}

typedef struct {
  gsize n;
  gboolean quick;
  float *in, *out, *dout;
} GeluCase;

static double
gelu_loss (gpointer data)
{
  GeluCase *c = data;
  clip_op_gelu_forward (c->out, c->in, c->n, 1, c->n, activation (c->quick));
  return weighted_sum (c->out, c->dout, c->n);
}

static void
test_gelu (void)
{
  for (int quick = 0; quick < 2; quick++) {
    GeluCase c = { .n = 40, .quick = quick };
    GRand *rand = g_rand_new_with_seed (3);
    c.in = g_new (float, c.n);
    c.out = g_new (float, c.n);
    c.dout = g_new (float, c.n);
    fill_random (rand, c.in, c.n, 4.0);
    fill_random (rand, c.dout, c.n, 1.0);
    float *din = g_new0 (float, c.n);
    clip_op_gelu_backward (din, c.dout, c.in, c.n, activation (quick));
    check_gradient (quick ? "quick_gelu" : "gelu", c.in, din, c.n, gelu_loss,
        &c, 1e-3f, 1e-3, 1e-2);
    /* The two activations differ: GELU(1) = 0.8413, QuickGELU(1) = 0.8458. */
    float one = 1.0f, y;
    clip_op_gelu_forward (&y, &one, 1, 1, 1, activation (quick));
    g_assert_cmpfloat_with_epsilon (y, quick ? 0.845796f : 0.841345f, 1e-5);
    g_free (din);
    g_free (c.in);
    g_free (c.out);
    g_free (c.dout);
    g_rand_free (rand);
  }
}

typedef struct {
  int b, l, w, heads;
  gboolean causal;
  float *qkv, *out, *probs, *dout;
} AttentionCase;

static double
attention_loss (gpointer data)
{
  AttentionCase *c = data;
  clip_op_attention_forward (c->out, c->probs, c->qkv, c->b, c->l, c->w,
      c->heads, c->causal);
  return weighted_sum (c->out, c->dout, (gsize) c->b * c->l * c->w);
}

static void
test_attention (void)
{
  for (int causal = 0; causal < 2; causal++) {
    AttentionCase c = { .b = 2, .l = 5, .w = 8, .heads = 2, .causal = causal };
    GRand *rand = g_rand_new_with_seed (4);
    gsize rows = (gsize) c.b * c.l;
    c.qkv = g_new (float, rows * 3 * c.w);
    c.out = g_new (float, rows * c.w);
    c.dout = g_new (float, rows * c.w);
    c.probs = g_new (float, (gsize) c.b * c.heads * c.l * c.l);
    fill_random (rand, c.qkv, rows * 3 * c.w, 1.5);
    fill_random (rand, c.dout, rows * c.w, 1.0);
    attention_loss (&c);
    float *dqkv = g_new0 (float, rows * 3 * c.w);
    float *scratch = g_new (float, c.l * c.l);
    clip_op_attention_backward (dqkv, scratch, c.dout, c.qkv, c.probs, c.b, c.l,
        c.w, c.heads);
    check_gradient (causal ? "causal attention" : "attention", c.qkv, dqkv,
        rows * 3 * c.w, attention_loss, &c, 1e-2f, 1e-3, 1e-2);

    if (causal) {
      /* Position 0 sees only itself: its output is its own value row. */
      for (int k = 0; k < c.w; k++)
        g_assert_cmpfloat_with_epsilon (c.out[k], c.qkv[2 * c.w + k], 1e-6);
    }
    g_free (dqkv);
    g_free (scratch);
    g_free (c.qkv);
    g_free (c.out);
    g_free (c.dout);
    g_free (c.probs);
    g_rand_free (rand);
  }
}

typedef struct {
  int n, e;
  float *img, *txt, log_scale;
} LossCase;

static double
contrastive_loss (gpointer data)
{
  LossCase *c = data;
  gsize size = (gsize) c->n * c->e;
  g_autofree float *dimg = g_new0 (float, size);
  g_autofree float *dtxt = g_new0 (float, size);
  float dscale = 0.0f;
  return clip_op_contrastive_loss (c->img, c->txt, c->n, c->e, c->log_scale,
      dimg, dtxt, &dscale, NULL);
}

static void
test_contrastive_loss (void)
{
  LossCase c = { .n = 5, .e = 6, .log_scale = 1.2f };
  GRand *rand = g_rand_new_with_seed (5);
  gsize size = (gsize) c.n * c.e;
  c.img = g_new (float, size);
  c.txt = g_new (float, size);
  fill_random (rand, c.img, size, 1.0);
  fill_random (rand, c.txt, size, 1.0);
  float *dimg = g_new0 (float, size), *dtxt = g_new0 (float, size);
  float dscale = 0.0f, accuracy;
  double loss = clip_op_contrastive_loss (c.img, c.txt, c.n, c.e, c.log_scale,
      dimg, dtxt, &dscale, &accuracy);
  g_assert_cmpfloat (loss, >, 0.0);
  check_gradient ("loss image embeddings", c.img, dimg, size, contrastive_loss,
      &c, 1e-3f, 1e-4, 1e-2);
  check_gradient ("loss text embeddings", c.txt, dtxt, size, contrastive_loss,
      &c, 1e-3f, 1e-4, 1e-2);
  check_gradient ("loss logit scale", &c.log_scale, &dscale, 1,
      contrastive_loss, &c, 1e-3f, 1e-4, 1e-2);

  /* Identical, orthogonal pairs with a large scale: loss near 0, all right. */
  memset (c.img, 0, size * sizeof (float));
  for (int i = 0; i < c.n; i++)
    c.img[i * c.e + i] = 3.0f;
  dscale = 0.0f;
  loss = clip_op_contrastive_loss (c.img, c.img, c.n, c.e, logf (100.0f), dimg,
      dtxt, &dscale, &accuracy);
  g_assert_cmpfloat (loss, <, 1e-6);
  g_assert_cmpfloat (accuracy, ==, 1.0f);

  /* Past ln(100) the scale is clamped: 100, and no gradient. */
  fill_random (rand, c.img, size, 1.0);
  dscale = 0.0f;
  double at_100 = clip_op_contrastive_loss (c.img, c.txt, c.n, c.e,
      logf (100.0f) - 1e-6f, dimg, dtxt, &dscale, NULL);
  dscale = 0.0f;
  double above = clip_op_contrastive_loss (c.img, c.txt, c.n, c.e, 6.0f, dimg,
      dtxt, &dscale, NULL);
  g_assert_cmpfloat_with_epsilon (at_100, above, 1e-4);
  g_assert_cmpfloat (dscale, ==, 0.0f);
  g_free (dimg);
  g_free (dtxt);
  g_free (c.img);
  g_free (c.txt);
  g_rand_free (rand);
}

/* ------------------------------------------------------- whole model */

/* A tiny CLIP: both activations, causal text of 8 positions, 4 patches. */
static void
tiny_config (ClipConfig *c)
{
  *c = (ClipConfig) {
    .vision = { .width = 16,
        .layers = 2,
        .heads = 2,
        .mlp_width = 32,
        .eps = 1e-5f,
        .activation = CLIP_ACTIVATION_GELU },
    .text = { .width = 16,
        .layers = 2,
        .heads = 2,
        .mlp_width = 32,
        .eps = 1e-5f,
        .activation = CLIP_ACTIVATION_QUICK_GELU },
    .embed_dim = 8,
    .image_size = 16,
    .patch_size = 8,
    .context_length = 8,
    .vocab_size = 49408,
    .image_mean = { 0.48145466f, 0.4578275f, 0.40821073f },
    .image_std = { 0.26862954f, 0.26130258f, 0.27577711f },
  };
}

/* Caption of class k: start, two class tokens, end, zero padding (rows of
 * different lengths, so that pooling at the end token is exercised). */
static void
class_tokens (gint32 *row, int k, int context_length)
{
  memset (row, 0, context_length * sizeof (gint32));
  int n = 0;
  row[n++] = CLIP_TOKEN_START;
  row[n++] = 320 + k;
  if (k % 2)
    row[n++] = 1000 + k;
  row[n++] = CLIP_TOKEN_END;
}

/* Class k's picture: a solid colour of its own, with noise. */
static void
class_image (float *pixels, int k, int size, GRand *rand)
{
  for (int ch = 0; ch < 3; ch++) {
    float base = ((k >> ch) & 1) ? 1.5f : -1.5f;
    if (k >= 8)
      base *= 0.3f;
    for (int i = 0; i < size * size; i++)
      pixels[ch * size * size + i] = base
          + (float) g_rand_double_range (rand, -0.5, 0.5);
  }
}

static void
make_batch (const ClipConfig *c, int n, guint32 seed, float *pixels,
    gint32 *tokens, int classes)
{
  GRand *rand = g_rand_new_with_seed (seed);
  gsize image = 3 * (gsize) c->image_size * c->image_size;
  for (int i = 0; i < n; i++) {
    int k = g_rand_int_range (rand, 0, classes);
    class_image (pixels + i * image, k, c->image_size, rand);
    class_tokens (tokens + i * c->context_length, k, c->context_length);
  }
  g_rand_free (rand);
}

typedef struct {
  ClipTrainer *trainer;
  const float *pixels;
  const gint32 *tokens;
  int n;
} ModelCase;

static double
model_loss (gpointer data)
{
  ModelCase *c = data;
  double loss;
  g_assert_true (clip_trainer_loss_and_grads (c->trainer, c->pixels, c->tokens,
      c->n, &loss, NULL));
  return loss;
}

static void
test_model_gradient (void)
{
  ClipConfig config;
  tiny_config (&config);
  ClipTrainOptions opts;
  clip_train_options_init (&opts);
  opts.batch = 4;
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipTrainer) trainer = clip_trainer_new (&config, &opts, NULL,
      &error);
  g_assert_no_error (error);

  int n = 4;
  gsize image = 3 * 16 * 16;
  g_autofree float *pixels = g_new (float, n * image);
  g_autofree gint32 *tokens = g_new (gint32, n * config.context_length);
  make_batch (&config, n, 11, pixels, tokens, 4);
  ModelCase c = { trainer, pixels, tokens, n };

  gsize total;
  float *params = clip_trainer_get_params (trainer, &total);
  g_autofree float *grads = g_new (float, total);
  model_loss (&c);
  memcpy (grads, clip_trainer_get_grads (trainer), total * sizeof (float));

  /* Every tensor: its largest gradient and a few random entries (in the
   * token embedding, only rows the batch uses can have one). */
  const char *name;
  gsize offset, size;
  int tensors = 0;
  GRand *rand = g_rand_new_with_seed (12);
  for (guint t = 0; clip_trainer_get_tensor (trainer, t, &name, &offset, &size);
       t++) {
    gsize best = 0;
    for (gsize i = 1; i < size; i++)
      if (fabsf (grads[offset + i]) > fabsf (grads[offset + best]))
        best = i;
    gsize picks[3] = { best, g_rand_int_range (rand, 0, size),
      g_rand_int_range (rand, 0, size) };
    for (int k = 0; k < 3; k++) {
      g_autofree char *what = g_strdup_printf ("%s[%" G_GSIZE_FORMAT "]", name,
          picks[k]);
      check_gradient (what, params + offset + picks[k],
          grads + offset + picks[k], 1, model_loss, &c, 1e-3f, 2e-4, 3e-2);
    }
    g_assert_cmpfloat (fabsf (grads[offset + best]), >, 0.0f);
    tensors++;
  }
  g_rand_free (rand);
  /* 8 vision, 5 text, logit_scale, 12 per block */
  g_assert_cmpint (tensors, ==, 14 + 12 * 4);
}

/* A short run on 10 classes: the loss falls and zero-shot classification of
 * fresh pictures against the 10 captions is far above chance (10%). */
static void
test_short_run (void)
{
  ClipConfig config;
  tiny_config (&config);
  ClipTrainOptions opts;
  clip_train_options_init (&opts);
  opts.batch = 32;
  opts.steps = 60;
  opts.warmup_steps = 5;
  opts.lr = 3e-3f;
  opts.threads = 1;
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipTrainer) trainer = clip_trainer_new (&config, &opts, NULL,
      &error);
  g_assert_no_error (error);

  int classes = 10, n = opts.batch;
  gsize image = 3 * 16 * 16;
  g_autofree float *pixels = g_new (float, n * image);
  g_autofree gint32 *tokens = g_new (gint32, n * config.context_length);
  double first = 0.0, last = 0.0;
  for (int step = 0; step < opts.steps; step++) {
    ClipTrainStats stats;
    make_batch (&config, n, 100 + step, pixels, tokens, classes);
    g_assert_true (clip_trainer_step (trainer, pixels, tokens, &stats, &error));
    g_assert_no_error (error);
    g_assert_true (isfinite (stats.loss));
    if (step < 5)
      first += stats.loss / 5;
    if (step >= opts.steps - 5)
      last += stats.loss / 5;
  }
  g_test_message ("loss %.3f -> %.3f", first, last);
  g_assert_cmpint (clip_trainer_get_step (trainer), ==, opts.steps);
  g_assert_cmpfloat (last, <, 0.7 * first);

  g_autofree gint32 *labels = g_new (gint32, classes * config.context_length);
  for (int k = 0; k < classes; k++)
    class_tokens (labels + k * config.context_length, k, config.context_length);
  g_autofree float *text = g_new (float, classes * config.embed_dim);
  g_assert_true (
      clip_trainer_encode_texts (trainer, labels, classes, text, &error));
  for (int k = 0; k < classes; k++)
    clip_l2_normalize (text + k * config.embed_dim, config.embed_dim);

  GRand *rand = g_rand_new_with_seed (999);
  int correct = 0, trials = 100;
  float img[8];
  g_autofree float *picture = g_new (float, image);
  for (int i = 0; i < trials; i++) {
    int k = i % classes;
    class_image (picture, k, 16, rand);
    g_assert_true (
        clip_trainer_encode_images (trainer, picture, 1, img, &error));
    int best = 0;
    double best_score = -G_MAXDOUBLE;
    for (int j = 0; j < classes; j++) {
      double score = 0.0;
      for (int d = 0; d < config.embed_dim; d++)
        score += img[d] * text[j * config.embed_dim + d];
      if (score > best_score) {
        best_score = score;
        best = j;
      }
    }
    correct += best == k;
  }
  g_rand_free (rand);
  g_test_message ("zero-shot accuracy %d%% (chance 10%%)", correct);
  g_assert_cmpint (correct, >=, 80);
}

/* Steps on the batches of trained_trainer() up to `steps` in all. */
static void
continue_training (ClipTrainer *trainer, const ClipConfig *config, int steps)
{
  float pixels[8 * 3 * 16 * 16];
  gint32 tokens[8 * 8];
  for (int step = clip_trainer_get_step (trainer); step < steps; step++) {
    make_batch (config, 8, step, pixels, tokens, 6);
    g_assert_true (clip_trainer_step (trainer, pixels, tokens, NULL, NULL));
  }
}

/* A trainer of 8-pair batches after `steps` steps (of a 6-step schedule)
 * on the batches make_batch() draws for each step. */
static ClipTrainer *
trained_trainer (const ClipConfig *config, int steps, int threads)
{
  ClipTrainOptions opts;
  clip_train_options_init (&opts);
  opts.batch = 8;
  opts.steps = 6;
  opts.warmup_steps = 2;
  opts.threads = threads;
  GError *error = NULL;
  ClipTrainer *trainer = clip_trainer_new (config, &opts, NULL, &error);
  g_assert_no_error (error);
  continue_training (trainer, config, steps);
  return trainer;
}

static void
assert_same_params (ClipTrainer *a, ClipTrainer *b)
{
  gsize na, nb;
  float *pa = clip_trainer_get_params (a, &na);
  float *pb = clip_trainer_get_params (b, &nb);
  g_assert_cmpuint (na, ==, nb);
  g_assert_cmpint (memcmp (pa, pb, na * sizeof (float)), ==, 0);
}

/* Same seed and threads: the same weights, bit for bit; a run stopped after
 * 3 steps and resumed from its checkpoint ends exactly where the
 * uninterrupted one does. */
static void
test_determinism_and_resume (void)
{
  ClipConfig config;
  tiny_config (&config);
  g_autoptr (ClipTrainer) a = trained_trainer (&config, 6, 1);
  g_autoptr (ClipTrainer) b = trained_trainer (&config, 6, 1);
  assert_same_params (a, b);

  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "checkpoint.safetensors",
      NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipTrainer) first = trained_trainer (&config, 3, 1);
  g_assert_true (clip_trainer_save_checkpoint (first, path, &error));
  g_assert_no_error (error);
  g_autoptr (ClipTrainer) resumed = trained_trainer (&config, 0, 1);
  g_assert_true (clip_trainer_load_checkpoint (resumed, path, &error));
  g_assert_no_error (error);
  g_assert_cmpint (clip_trainer_get_step (resumed), ==, 3);
  continue_training (resumed, &config, 6);
  assert_same_params (a, resumed);

  /* A checkpoint of other sizes is refused, naming the file. */
  ClipConfig other = config;
  other.embed_dim = 4;
  g_autoptr (ClipTrainer) wrong = trained_trainer (&other, 0, 1);
  g_assert_false (clip_trainer_load_checkpoint (wrong, path, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "checkpoint.safetensors"));
}

/* The trained weights, saved (F32, HF layout) and loaded by the runtime,
 * give the training forward pass's embeddings through the CPU backend. */
static void
test_inference_matches (void)
{
  const char *ref = clip_test_reference ();
  if (ref == NULL)
    return;
  ClipConfig config;
  tiny_config (&config);
  g_autoptr (ClipTrainer) trainer = trained_trainer (&config, 6, 1);
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  g_autoptr (GError) error = NULL;
  g_assert_true (
      clip_trainer_save_model (trainer, dir, CLIP_DTYPE_F32, vocab, &error));
  g_assert_no_error (error);
  g_autoptr (ClipModel) model = clip_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (ClipEncoder) enc = clip_encoder_new (model, CLIP_BACKEND_CPU, NULL,
      &error);
  g_assert_no_error (error);

  int n = 6;
  gsize image = 3 * 16 * 16;
  g_autofree float *pixels = g_new (float, n * image);
  g_autofree gint32 *tokens = g_new (gint32, n * config.context_length);
  make_batch (&config, n, 77, pixels, tokens, 6);
  float trained[6 * 8], inferred[6 * 8];
  g_assert_true (
      clip_trainer_encode_images (trainer, pixels, n, trained, &error));
  g_assert_true (clip_encoder_encode_images (enc, pixels, n, inferred, &error));
  g_assert_no_error (error);
  for (int i = 0; i < n; i++) {
    clip_l2_normalize (trained + i * 8, 8);
    clip_l2_normalize (inferred + i * 8, 8);
  }
  g_assert_cmpfloat (clip_test_max_abs_diff (trained, inferred, n * 8), <,
      1e-5);
  g_assert_true (
      clip_trainer_encode_texts (trainer, tokens, n, trained, &error));
  g_assert_true (clip_encoder_encode_texts (enc, tokens, n, inferred, &error));
  g_assert_no_error (error);
  for (int i = 0; i < n; i++) {
    clip_l2_normalize (trained + i * 8, 8);
    clip_l2_normalize (inferred + i * 8, 8);
  }
  g_assert_cmpfloat (clip_test_max_abs_diff (trained, inferred, n * 8), <,
      1e-5);
  ClipWeights weights;
  clip_trainer_get_weights (trainer, &weights);
  g_assert_cmpfloat_with_epsilon (clip_model_get_logit_scale (model),
      expf (weights.logit_scale), 1e-4);
}

static void
test_bad_input (void)
{
  ClipConfig config;
  tiny_config (&config);
  ClipTrainOptions opts;
  clip_train_options_init (&opts);
  opts.batch = 1;
  g_autoptr (GError) error = NULL;
  g_assert_null (clip_trainer_new (&config, &opts, NULL, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_clear_error (&error);

  opts.batch = 2;
  g_autoptr (ClipTrainer) trainer = clip_trainer_new (&config, &opts, NULL,
      &error);
  g_assert_no_error (error);
  float pixels[2 * 3 * 16 * 16] = { 0 };
  gint32 tokens[2 * 8] = { CLIP_TOKEN_START, CLIP_TOKEN_END };
  tokens[9] = 49408; /* one past the vocabulary */
  g_assert_false (clip_trainer_step (trainer, pixels, tokens, NULL, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "49408"));
  g_assert_cmpint (clip_trainer_get_step (trainer), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/train/op/linear", test_linear);
  g_test_add_func ("/train/op/layernorm", test_layernorm);
  g_test_add_func ("/train/op/gelu", test_gelu);
  g_test_add_func ("/train/op/attention", test_attention);
  g_test_add_func ("/train/op/contrastive-loss", test_contrastive_loss);
  g_test_add_func ("/train/model-gradient", test_model_gradient);
  g_test_add_func ("/train/short-run", test_short_run);
  g_test_add_func ("/train/determinism-and-resume",
      test_determinism_and_resume);
  g_test_add_func ("/train/inference-matches", test_inference_matches);
  g_test_add_func ("/train/bad-input", test_bad_input);
  return g_test_run ();
}
