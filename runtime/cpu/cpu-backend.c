/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The CPU backend: CLIP's two encoders as plain C over OpenBLAS.
 *
 * A batch of n sequences of T tokens is one [n*T, width] matrix, so every
 * linear layer is one GEMM over the whole batch; only attention works per
 * sequence. Every step is shared over the encoder's own thread pool,
 * OpenBLAS's calls included (single-threaded, each on one thread's share).
 * The activations live in one arena sized for the largest batch seen.
 * Where the CPU has AVX2 or AVX-512, the linear layers' weights are
 * packed once for gemm.c's kernels, F16 and BF16 ones straight from the
 * file in 16 bits (the model never widens them), and their pages of the
 * mmapped file leave the resident set; other weights are read where the
 * model keeps them. The packed copy is made once per model, kernel and
 * precision in a process and shared by every CPU encoder on them (see
 * PackedSet). At BF16 precision the packed weights are rounded to BF16
 * (and on AMX or AVX512_BF16 the GEMM inputs too); at INT8 the transformer
 * blocks' weights are s8, and the patch embedding and the projections BF16
 * or F32 (edge_precision); layer norms, softmax, attention and the
 * residual stream stay F32. */
#include "backend.h"
#include "gemm.h"
#include "params.h"
#include "preprocess.h"
#include "ops.h"

#include <cblas.h>
#include <string.h>

/* The linear layers' weights of one model packed for one kernel, shared by
 * every CPU encoder open on that model with that kernel: the encoders of N
 * streams on one folder hold the packed weights once, not N times. Only
 * the packed weights are shared, since they are only read; each encoder
 * keeps its own thread pool (its `threads` option, as before) and its own
 * activations, so that encoders run at once without a lock and without
 * one's thread count bounding another's. */
typedef struct {
  int ref_count;              /* under packed_lock */
  const ClipWeights *weights; /* the model's, which outlives every user */
  const char *kernel;         /* clip_gemm_kernel_name_at: the resolved one */
  ClipPrecision precision;
  ClipPrecision edges; /* of the patch embedding and the projections */
  gboolean complete;   /* every deferred F16/BF16 weight is packed */
  GHashTable *linears; /* weight pointer -> ClipGemmWeight */
} PackedSet;

/* The packed sets in use. A set is found by its model's weights pointer:
 * every encoder holds a reference to its model, so the pointer names that
 * model for as long as a set made from it is in this list. Packing is done
 * under the lock, so that encoders opened at once on one model pack it
 * once. */
static GMutex packed_lock;
static GPtrArray *packed_sets;

typedef struct {
  ClipBackend base;
  int threads;
  float *arena;
  gsize arena_floats;
  char *description;
  PackedSet *packed; /* NULL: every linear layer on OpenBLAS */
  ClipGemmPool *pool;
} ClipCpuBackend;

/* The activations of one tower pass over rows = n * T tokens. */
typedef struct {
  float *x;      /* [rows, W] the residual stream */
  float *xn;     /* [rows, W] a sublayer's layer-normed input */
  float *qkv;    /* [rows, 3W] */
  float *att;    /* [rows, W] attention output, before out_proj */
  float *hidden; /* [rows, M] */
  float *scores; /* [threads][T, T]: one attention matrix per thread */
} Activations;

/* Floats of everything but the residual stream and xn. */
static gsize
layer_scratch_floats (const ClipCpuBackend *cpu, const ClipTowerConfig *tower,
    gsize rows, gsize tokens)
{
  return rows * (4 * (gsize) tower->width + tower->mlp_width)
      + (gsize) cpu->threads * tokens * tokens;
}

/* Makes the arena hold at least floats values; grows, never shrinks. */
static gboolean
reserve_arena (ClipCpuBackend *cpu, gsize floats, GError **error)
{
  if (floats <= cpu->arena_floats)
    return TRUE;
  float *arena = floats < G_MAXSIZE / sizeof (float)
      ? g_try_malloc (floats * sizeof (float))
      : NULL;
  if (arena == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
        "cpu: cannot allocate %" G_GSIZE_FORMAT " MiB of activations",
        floats / (1024 * 1024 / sizeof (float)));
    return FALSE;
  }
  g_free (cpu->arena);
  cpu->arena = arena;
  cpu->arena_floats = floats;
  return TRUE;
}

static void
carve_activations (ClipCpuBackend *cpu, const ClipTowerConfig *tower,
    gsize rows, Activations *act)
{
  gsize w = tower->width;
  act->x = cpu->arena;
  act->xn = act->x + rows * w;
  act->qkv = act->xn + rows * w;
  act->att = act->qkv + rows * 3 * w;
  act->hidden = act->att + rows * w;
  act->scores = act->hidden + rows * tower->mlp_width;
}

static gboolean
linears_are_packed (const ClipCpuBackend *cpu)
{
  return cpu->packed != NULL && g_hash_table_size (cpu->packed->linears) > 0;
}

static const ClipGemmWeight *
packed_copy (const ClipCpuBackend *cpu, const float *w, int out_dim, int in_dim)
{
  const ClipGemmWeight *packed = cpu->packed != NULL
      ? g_hash_table_lookup (cpu->packed->linears, w)
      : NULL;
  return packed != NULL && clip_gemm_weight_has_shape (packed, out_dim, in_dim)
      ? packed
      : NULL;
}

/* Below this many multiply-adds OpenBLAS keeps a GEMM on one thread too
 * (its GEMM_MULTITHREAD_THRESHOLD): a second costs more than it saves. */
#define MIN_SHARED_GEMM (1 << 18)
/* Output columns are shared in blocks of a cache line of floats, so that
 * no two threads write one line. */
#define COLUMN_BLOCK 16

typedef struct {
  float *out;
  int ldo;
  const float *in, *w, *b;
  int n, in_dim, out_dim;
  gboolean accumulate;
  const ClipActivation *activation; /* applied after, or NULL */
} PlainLinearJob;

/* Thread index's share of the output columns, that is of w's rows: each
 * thread packs only its part of w, where sharing the input rows would have
 * every thread pack all of it (at batch 1, twice as slow here as a split
 * by columns, and slower than OpenBLAS's own threads). */
static void
plain_linear_share (gpointer data, int index, int threads)
{
  const PlainLinearJob *job = data;
  int blocks = (job->out_dim + COLUMN_BLOCK - 1) / COLUMN_BLOCK;
  int first = blocks * index / threads * COLUMN_BLOCK;
  int cols = MIN (job->out_dim, blocks * (index + 1) / threads * COLUMN_BLOCK)
      - first;
  if (cols <= 0)
    return;
  float *out = job->out + first;
  clip_op_linear_forward (out, job->ldo, job->in,
      job->w + (gsize) first * job->in_dim,
      job->b != NULL ? job->b + first : NULL, job->n, job->in_dim, cols,
      job->accumulate);
  if (job->activation != NULL)
    clip_op_gelu_forward (out, out, job->ldo, job->n, cols, *job->activation);
}

/* clip_op_linear_forward (then activation, when not NULL) shared over the pool,
 * each share on single-threaded OpenBLAS: the encoder's own threads,
 * whatever another encoder of the process uses. */
static void
plain_linear (ClipCpuBackend *cpu, float *out, int ldo, const float *in,
    const float *w, const float *b, int n, int in_dim, int out_dim,
    gboolean accumulate, const ClipActivation *activation)
{
  PlainLinearJob job = { out, ldo, in, w, b, n, in_dim, out_dim, accumulate,
    activation };
  gint64 work = (gint64) n * in_dim * out_dim;
  clip_gemm_pool_run (work >= MIN_SHARED_GEMM ? cpu->pool : NULL,
      plain_linear_share, &job);
}

/* clip_op_linear_forward, on the packed copy of w when there is one. */
static void
linear (ClipCpuBackend *cpu, float *out, int ldo, const float *in,
    const float *w, const float *b, int n, int in_dim, int out_dim,
    gboolean accumulate)
{
  const ClipGemmWeight *packed = packed_copy (cpu, w, out_dim, in_dim);
  if (packed != NULL)
    clip_gemm_linear (cpu->pool, packed, out, ldo, in, b, n, accumulate);
  else
    plain_linear (cpu, out, ldo, in, w, b, n, in_dim, out_dim, accumulate,
        NULL);
}

static void
activation_epilogue (float *c, gsize ldc, int rows, int cols, gpointer data)
{
  clip_op_gelu_forward (c, c, ldc, rows, cols, *(const ClipActivation *) data);
}

/* out[n, out_dim] = act(in W^T + b): each block of out is activated by the
 * thread that computed it, while still in its cache. */
static void
linear_activated (ClipCpuBackend *cpu, float *out, const float *in,
    const float *w, const float *b, int n, int in_dim, int out_dim,
    ClipActivation activation)
{
  const ClipGemmWeight *packed = packed_copy (cpu, w, out_dim, in_dim);
  if (packed != NULL)
    clip_gemm_linear_then (cpu->pool, packed, out, out_dim, in, b, n, FALSE,
        activation_epilogue, &activation);
  else
    plain_linear (cpu, out, out_dim, in, w, b, n, in_dim, out_dim, FALSE,
        &activation);
}

typedef struct {
  float *out;
  const float *in, *w, *b;
  int rows, c;
  float eps;
} LayerNormJob;

/* Thread index's share of the rows: contiguous, as even as possible. */
static void
layer_norm_share (gpointer data, int index, int threads)
{
  const LayerNormJob *job = data;
  int first = job->rows * index / threads;
  int last = job->rows * (index + 1) / threads;
  gsize skip = (gsize) first * job->c;
  clip_op_layernorm_forward (job->out + skip, NULL, NULL, job->in + skip,
      job->w, job->b, last - first, job->c, job->eps);
}

/* clip_op_layernorm_forward over the pool's threads. */
static void
layer_norm (ClipCpuBackend *cpu, float *out, const float *in, const float *w,
    const float *b, int rows, int c, float eps)
{
  LayerNormJob job = { out, in, w, b, rows, c, eps };
  clip_gemm_pool_run (rows > 1 ? cpu->pool : NULL, layer_norm_share, &job);
}

typedef struct {
  const Activations *act;
  int n, l, w, heads;
  gboolean causal;
} AttentionJob;

/* Thread index's share of the n * heads (sequence, head) pairs, each on its
 * own scores matrix. */
static void
attention_share (gpointer data, int index, int threads)
{
  const AttentionJob *job = data;
  const Activations *act = job->act;
  float *scores = act->scores + (gsize) index * job->l * job->l;
  for (int pair = index; pair < job->n * job->heads; pair += threads) {
    gsize first = (gsize) (pair / job->heads) * job->l;
    clip_op_attention_head_forward (act->att + first * job->w, job->w,
        act->qkv + first * 3 * job->w, scores, job->l, job->w, job->heads,
        pair % job->heads, job->causal);
  }
}

/* The residual block, over n sequences of l tokens:
 * x += attn(ln_1(x)); x += mlp(ln_2(x)). */
static void
transformer_layer (ClipCpuBackend *cpu, const ClipTowerConfig *tower,
    const ClipLayerWeights *lw, Activations *act, int n, int l, gboolean causal)
{
  int w = tower->width, m = tower->mlp_width, rows = n * l;

  layer_norm (cpu, act->xn, act->x, lw->ln1_w, lw->ln1_b, rows, w, tower->eps);
  if (lw->qkv_fused) {
    linear (cpu, act->qkv, 3 * w, act->xn, lw->q_w, lw->q_b, rows, w, 3 * w,
        FALSE);
  } else {
    linear (cpu, act->qkv, 3 * w, act->xn, lw->q_w, lw->q_b, rows, w, w, FALSE);
    linear (cpu, act->qkv + w, 3 * w, act->xn, lw->k_w, lw->k_b, rows, w, w,
        FALSE);
    linear (cpu, act->qkv + 2 * w, 3 * w, act->xn, lw->v_w, lw->v_b, rows, w, w,
        FALSE);
  }
  AttentionJob attention = { act, n, l, w, tower->heads, causal };
  clip_gemm_pool_run (cpu->pool, attention_share, &attention);
  linear (cpu, act->x, w, act->att, lw->out_w, lw->out_b, rows, w, w, TRUE);

  layer_norm (cpu, act->xn, act->x, lw->ln2_w, lw->ln2_b, rows, w, tower->eps);
  linear_activated (cpu, act->hidden, act->xn, lw->fc1_w, lw->fc1_b, rows, w, m,
      tower->activation);
  linear (cpu, act->x, w, act->hidden, lw->fc2_w, lw->fc2_b, rows, m, w, TRUE);
}

/* im2col of one [3, S, S] image: row p (patches in row-major grid order)
 * holds the channel-major P x P pixels of patch p, the order of conv1's
 * [W, 3, P, P] weight, so that the strided convolution is one GEMM. */
static void
image_to_patch_rows (float *rows, const float *image, int size, int patch)
{
  int grid = size / patch;
  gsize plane = (gsize) size * size;
  for (int gy = 0; gy < grid; gy++)
    for (int gx = 0; gx < grid; gx++) {
      float *row = rows + ((gsize) gy * grid + gx) * 3 * patch * patch;
      for (int c = 0; c < 3; c++)
        for (int ky = 0; ky < patch; ky++) {
          const float *src = image + c * plane
              + ((gsize) gy * patch + ky) * size + (gsize) gx * patch;
          memcpy (row, src, patch * sizeof (float));
          row += patch;
        }
    }
}

/* Writes the patch rows of the n images of an encoder call into
 * patch_rows (encode_patch_rows). */
typedef gboolean (
    *PatchRowsFill) (gpointer data, float *patch_rows, GError **error);

/* The image encoder on n images, from their patch rows as fill writes them
 * into the layers' scratch. */
static gboolean
encode_patch_rows (ClipBackend *b, int n, PatchRowsFill fill, gpointer data,
    float *out, GError **error)
{
  ClipCpuBackend *cpu = (ClipCpuBackend *) b;
  const ClipConfig *cfg = b->model.config;
  const ClipTowerConfig *tower = &cfg->vision;
  const ClipVisionWeights *vw = &b->model.weights->vision;
  int w = tower->width, patch = cfg->patch_size;
  int t = clip_config_vision_tokens (cfg), patches = t - 1;
  int patch_len = 3 * patch * patch;
  gsize rows = (gsize) n * t;

  /* The patch rows and their embeddings only live before the first layer:
   * they share the layers' scratch. */
  gsize embed_floats = (gsize) n * patches * (patch_len + w);
  gsize floats = 2 * rows * w
      + MAX (layer_scratch_floats (cpu, tower, rows, t), embed_floats);
  if (!reserve_arena (cpu, floats, error))
    return FALSE;
  Activations act;
  carve_activations (cpu, tower, rows, &act);

  float *patch_rows = act.qkv;
  float *patch_emb = patch_rows + (gsize) n * patches * patch_len;
  if (!fill (data, patch_rows, error))
    return FALSE;
  linear (cpu, patch_emb, w, patch_rows, vw->patch_w, NULL, n * patches,
      patch_len, w, FALSE);

  /* Per image: the class token, then the patches; plus the positions. */
  for (int i = 0; i < n; i++) {
    float *x = act.x + (gsize) i * t * w;
    const float *emb = patch_emb + (gsize) i * patches * w;
    for (int j = 0; j < w; j++)
      x[j] = vw->class_emb[j] + vw->pos_emb[j];
    for (gsize k = w; k < (gsize) t * w; k++)
      x[k] = emb[k - w] + vw->pos_emb[k];
  }
  layer_norm (cpu, act.x, act.x, vw->ln_pre_w, vw->ln_pre_b, rows, w,
      tower->eps);

  for (int layer = 0; layer < tower->layers; layer++)
    transformer_layer (cpu, tower, &vw->layers[layer], &act, n, t, FALSE);

  /* ln_post of each class token, then the projection. */
  for (int i = 0; i < n; i++)
    clip_op_layernorm_forward (act.xn + (gsize) i * w, NULL, NULL,
        act.x + (gsize) i * t * w, vw->ln_post_w, vw->ln_post_b, 1, w,
        tower->eps);
  linear (cpu, out, cfg->embed_dim, act.xn, vw->proj, NULL, n, w,
      cfg->embed_dim, FALSE);
  return TRUE;
}

typedef struct {
  const float *pixels;
  int n, size, patch;
} ImagesToPatchRows;

static gboolean
images_to_patch_rows (gpointer data, float *patch_rows, GError **error)
{
  const ImagesToPatchRows *images = data;
  gsize image_floats = (gsize) 3 * images->size * images->size;
  (void) error;
  for (int i = 0; i < images->n; i++)
    image_to_patch_rows (patch_rows + i * image_floats,
        images->pixels + i * image_floats, images->size, images->patch);
  return TRUE;
}

static gboolean
cpu_images (ClipBackend *b, const float *pixels, int n, float *out,
    GError **error)
{
  const ClipConfig *cfg = b->model.config;
  ImagesToPatchRows images = { pixels, n, cfg->image_size, cfg->patch_size };
  return encode_patch_rows (b, n, images_to_patch_rows, &images, out, error);
}

/* Frames preprocessed per encoder call: the batch's patch rows, 600 KB a
 * frame at 224, need not all exist at once. */
#define FRAMES_CHUNK 16

/* Output rows a thread takes from a region at a time: few, so that a
 * thread that starts late (a worker waking up) leaves its region's rows to
 * the others instead of holding them up. */
#define BAND_ROWS 8

/* The frames' rows are split into regions, each first the job of one
 * thread, which goes down it a band at a time; a thread done with its own
 * regions takes bands from the bottom of the others', going up. Each
 * thread keeps going one way through a region, so the input rows its
 * bands read are resampled once (ClipPreprocessRun); only where two
 * threads meet are a few done twice. */
typedef struct {
  ClipGemmPool *pool;
  int threads; /* the encoder's: the size of errors and error_frame */
  const ClipFrame *frames;
  int n;
  int regions; /* per frame */
  const ClipConfig *cfg;
  float *patch_rows; /* the encoder's input, written straight */
  /* per region: its next row from the top | its end from the bottom << 16 */
  gint *bounds;
  GError **errors; /* per thread: the first error, of frame error_frame */
  int *error_frame;
} PreprocessJob;

/* A band of region u: from the top (own) or the bottom; FALSE when the
 * region is done. */
static gboolean
take_band (PreprocessJob *job, int u, gboolean from_top, int *first, int *end)
{
  for (;;) {
    gint bounds = g_atomic_int_get (&job->bounds[u]);
    int top = bounds & 0xffff, bottom = bounds >> 16;
    if (top >= bottom)
      return FALSE;
    *first = from_top ? top : MAX (bottom - BAND_ROWS, top);
    *end = from_top ? MIN (top + BAND_ROWS, bottom) : bottom;
    gint taken = from_top ? *end | bottom << 16 : top | *first << 16;
    if (g_atomic_int_compare_and_exchange (&job->bounds[u], bounds, taken))
      return TRUE;
  }
}

static void
preprocess_share (gpointer data, int index, int threads)
{
  PreprocessJob *job = data;
  int size = job->cfg->image_size, n_regions = job->n * job->regions;
  gsize image = 3 * (gsize) size * size;
  g_autoptr (ClipPreprocessRun) run = NULL;
  int run_frame = -1;
  /* own regions first, then the others' from thread index + 1 on */
  for (int pass = 0; pass < 2; pass++)
    for (int k = 0; k < n_regions; k++) {
      int u = (index + k) % n_regions;
      gboolean own = u % threads == index;
      if (own != (pass == 0))
        continue;
      int i = u / job->regions, first, end;
      while (take_band (job, u, own, &first, &end)) {
        if (run_frame != i) {
          g_clear_pointer (&run, clip_preprocess_run_free);
          GError *error = NULL;
          run = clip_preprocess_run_new (&job->frames[i], job->cfg, &error);
          run_frame = i;
          if (error
              && (job->errors[index] == NULL || job->error_frame[index] > i)) {
            g_clear_error (&job->errors[index]);
            job->errors[index] = error;
            job->error_frame[index] = i;
          } else {
            g_clear_error (&error);
          }
        }
        if (run)
          clip_preprocess_run_rows (run, first, end, job->cfg->patch_size,
              job->patch_rows + i * image);
      }
    }
}

/* PatchRowsFill of a chunk of frames: preprocessed on the pool's threads
 * (preprocess_share) straight into the patch rows, a frame each, or, with
 * fewer frames than threads (a camera at batch 1), each frame split among
 * them. Fails with the first bad frame's error, as one thread going in
 * order gives. */
static gboolean
preprocess_frames (gpointer data, float *patch_rows, GError **error)
{
  PreprocessJob *job = data;
  int size = job->cfg->image_size, regions = job->regions;
  job->patch_rows = patch_rows;
  for (int u = 0; u < job->n * regions; u++) {
    int r = u % regions;
    job->bounds[u] = r * size / regions | (r + 1) * size / regions << 16;
  }
  clip_gemm_pool_run (job->n * regions > 1 ? job->pool : NULL, preprocess_share,
      job);
  int first = -1;
  for (int t = 0; t < job->threads; t++)
    if (job->errors[t]
        && (first < 0 || job->error_frame[t] < job->error_frame[first]))
      first = t;
  if (first < 0)
    return TRUE;
  g_propagate_error (error, g_steal_pointer (&job->errors[first]));
  for (int t = 0; t < job->threads; t++)
    g_clear_error (&job->errors[t]);
  return FALSE;
}

static gboolean
cpu_frames (ClipBackend *b, const ClipFrame *frames, int n, float *out,
    GError **error)
{
  ClipCpuBackend *cpu = (ClipCpuBackend *) b;
  const ClipConfig *cfg = b->model.config;
  /* A size that preprocessing refuses fails every frame; the others fit
   * the 16 bits of a region's bounds. */
  if (!clip_preprocess_check_size (cfg, error))
    return FALSE;
  int regions = n < cpu->threads ? CLAMP (cpu->threads / n, 1, cfg->image_size)
                                 : 1;
  g_autofree gint *bounds = g_new (gint, FRAMES_CHUNK * regions);
  g_autofree GError **errors = g_new0 (GError *, cpu->threads);
  g_autofree int *error_frame = g_new0 (int, cpu->threads);
  for (int done = 0; done < n; done += FRAMES_CHUNK) {
    PreprocessJob job = { cpu->pool, cpu->threads, frames + done,
      MIN (n - done, FRAMES_CHUNK), regions, cfg, NULL, bounds, errors,
      error_frame };
    if (!encode_patch_rows (b, job.n, preprocess_frames, &job,
            out + (gsize) done * cfg->embed_dim, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
cpu_texts (ClipBackend *b, const gint32 *tokens, int n, float *out,
    GError **error)
{
  ClipCpuBackend *cpu = (ClipCpuBackend *) b;
  const ClipConfig *cfg = b->model.config;
  const ClipTowerConfig *tower = &cfg->text;
  const ClipTextWeights *tw = &b->model.weights->text;
  int w = tower->width, context = cfg->context_length;

  /* Causal attention: the tokens after the last end-of-text of the batch
   * cannot change the pooled rows, so the batch runs only up to it. */
  g_autofree int *eot = g_new (int, n);
  int l = 1;
  for (int s = 0; s < n; s++) {
    const gint32 *ids = tokens + (gsize) s * context;
    for (int i = 0; i < context; i++)
      if (ids[i] < 0 || ids[i] >= cfg->vocab_size) {
        g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
            "token %d of text %d is %d, outside the vocabulary (0..%d)", i, s,
            ids[i], cfg->vocab_size - 1);
        return FALSE;
      }
    eot[s] = clip_tokens_eot_position (ids, context);
    l = MAX (l, eot[s] + 1);
  }

  gsize rows = (gsize) n * l;
  if (!reserve_arena (cpu,
          2 * rows * w + layer_scratch_floats (cpu, tower, rows, l), error))
    return FALSE;
  Activations act;
  carve_activations (cpu, tower, rows, &act);

  /* An F16/BF16 token embedding is read from the file, row by row. */
  ClipDType dtype = CLIP_DTYPE_F32;
  const guint16 *halves = clip_weights_view_source (&b->model, tw->token_emb,
      (gsize) cfg->vocab_size * w, &dtype);
  for (int s = 0; s < n; s++)
    for (int i = 0; i < l; i++) {
      gint32 id = tokens[(gsize) s * context + i];
      float *x = act.x + ((gsize) s * l + i) * w;
      const float *pos = tw->pos_emb + (gsize) i * w;
      if (halves != NULL) {
        const guint16 *tok = halves + (gsize) id * w;
        for (int j = 0; j < w; j++)
          x[j] = (dtype == CLIP_DTYPE_F16 ? clip_f16_to_f32 (tok[j])
                                          : clip_bf16_to_f32 (tok[j]))
              + pos[j];
      } else {
        const float *tok = tw->token_emb + (gsize) id * w;
        for (int j = 0; j < w; j++)
          x[j] = tok[j] + pos[j];
      }
    }

  for (int layer = 0; layer < tower->layers; layer++)
    transformer_layer (cpu, tower, &tw->layers[layer], &act, n, l, TRUE);

  /* ln_final is per token: only the pooled rows need it. */
  for (int s = 0; s < n; s++)
    clip_op_layernorm_forward (act.xn + (gsize) s * w, NULL, NULL,
        act.x + ((gsize) s * l + eot[s]) * w, tw->ln_final_w, tw->ln_final_b, 1,
        w, tower->eps);
  linear (cpu, out, cfg->embed_dim, act.xn, tw->proj, NULL, n, w,
      cfg->embed_dim, FALSE);
  return TRUE;
}

/* Packs w [out_dim, in_dim] when it lies in the model's file mapping, F32,
 * or F16/BF16 that the model left unconverted, whose pages can then leave
 * the resident set: the packed copy replaces them, so the weights stay
 * resident once. Returns FALSE when w is left unconverted and not packed:
 * then the weights must be widened for cblas_sgemm. */
static gboolean
pack_linear (GHashTable *linears, const ClipWeightsView *model,
    ClipGemmKernel kernel, ClipPrecision precision, const float *w, int out_dim,
    int in_dim)
{
  gsize floats = (gsize) out_dim * in_dim;
  if (w == NULL || g_hash_table_contains (linears, w))
    return TRUE;
  ClipDType dtype = CLIP_DTYPE_F32;
  const void *source = clip_weights_view_source (model, w, floats, &dtype);
  if (source == NULL) {
    if (!clip_weights_view_is_mapped (model, w, floats))
      return TRUE;
    source = w;
  }
  ClipGemmWeight *packed = clip_gemm_pack_at (source, dtype, out_dim, in_dim,
      kernel, precision);
  if (packed == NULL)
    return dtype == CLIP_DTYPE_F32; /* out of memory: on cblas_sgemm */
  g_hash_table_insert (linears, (gpointer) w, packed);
  clip_gemm_release_mapped (source, floats * clip_dtype_size (dtype));
  return TRUE;
}

/* Every linear layer's weight in the parameter table, with the shapes the
 * forward pass multiplies by: a group whose parts lie back to back (q, k,
 * v) as one matrix, as transformer_layer uses it. */
static GHashTable *
pack_weights (const ClipWeightsView *model, ClipGemmKernel kernel,
    ClipPrecision precision, ClipPrecision edges, gboolean *complete)
{
  const ClipConfig *cfg = model->config;
  const ClipWeights *weights = model->weights;
  GHashTable *linears = g_hash_table_new_full (NULL, NULL, NULL,
      (GDestroyNotify) clip_gemm_weight_free);
  ClipParamLayout params;
  clip_param_layout_init (&params, cfg);
  for (guint i = 0; i < params.spans->len; i++) {
    const ClipParamSpan *span = &g_array_index (params.spans, ClipParamSpan,
        i);
    if (!span->param->matrix)
      continue;
    gint64 shape[4];
    clip_param_span_shape (span, cfg, CLIP_LAYOUT_HF, shape);
    int in_dim = span->part_size / shape[0];
    ClipPrecision at = span->layer < 0 ? edges : precision;
    if (clip_param_span_is_fused (span, weights)) {
      *complete &= pack_linear (linears, model, kernel, at,
          *clip_param_span_view (span, weights, 0), span->size / in_dim,
          in_dim);
      continue;
    }
    for (gsize part = 0; part < span->size / span->part_size; part++)
      *complete &= pack_linear (linears, model, kernel, at,
          *clip_param_span_view (span, weights, part), shape[0], in_dim);
  }
  clip_param_layout_clear (&params);
  return linears;
}

/* The precision of the patch embedding and the projections at precision.
 * At INT8 they are 2% of ViT-B/32's multiply-adds but the largest error,
 * and run at BF16 where kernel has BF16 products: the patch embedding 2.4x
 * as fast on AMX and 1.6-1.9x on Zen 5's AVX512_BF16, the image embeddings
 * 1.6e-3 -> 1.8e-3 from the reference outputs; else at F32 (see
 * docs/performance.md). */
static ClipPrecision
edge_precision (ClipGemmKernel kernel, ClipPrecision precision)
{
  if (precision != CLIP_PRECISION_INT8)
    return precision;
  return clip_gemm_has_bf16_kernel (kernel) ? CLIP_PRECISION_BF16
                                            : CLIP_PRECISION_F32;
}

/* The packed set of model for kernel at precision: the one in use, with
 * one more reference, or a new one. */
static PackedSet *
packed_set_acquire (const ClipWeightsView *model, ClipGemmKernel kernel,
    ClipPrecision precision)
{
  const char *kernel_name = clip_gemm_kernel_name_at (kernel, precision);
  ClipPrecision edges = edge_precision (kernel, precision);
  g_mutex_lock (&packed_lock);
  if (packed_sets == NULL)
    packed_sets = g_ptr_array_new ();
  PackedSet *set = NULL;
  for (guint i = 0; i < packed_sets->len && set == NULL; i++) {
    PackedSet *candidate = g_ptr_array_index (packed_sets, i);
    if (candidate->weights == model->weights
        && strcmp (candidate->kernel, kernel_name) == 0
        && candidate->precision == precision && candidate->edges == edges)
      set = candidate;
  }
  if (set != NULL)
    set->ref_count++;
  else {
    set = g_new (PackedSet, 1);
    set->ref_count = 1;
    set->weights = model->weights;
    set->kernel = kernel_name;
    set->precision = precision;
    set->edges = edges;
    set->complete = TRUE;
    set->linears = pack_weights (model, kernel, precision, edges,
        &set->complete);
    g_ptr_array_add (packed_sets, set);
  }
  g_mutex_unlock (&packed_lock);
  return set;
}

static void
packed_set_release (PackedSet *set)
{
  g_mutex_lock (&packed_lock);
  gboolean last = --set->ref_count == 0;
  if (last)
    g_ptr_array_remove_fast (packed_sets, set);
  g_mutex_unlock (&packed_lock);
  if (!last)
    return;
  g_hash_table_destroy (set->linears);
  g_free (set);
}

gconstpointer
clip_cpu_backend_get_packed (ClipBackend *b)
{
  return ((ClipCpuBackend *) b)->packed;
}

guint
clip_cpu_count_packed (void)
{
  g_mutex_lock (&packed_lock);
  guint n = packed_sets != NULL ? packed_sets->len : 0;
  g_mutex_unlock (&packed_lock);
  return n;
}

ClipBackend *
clip_cpu_backend_open (const ClipWeightsView *model,
    const ClipCpuOptions *options)
{
  /* Every OpenBLAS call runs on one of the pool's threads, on its share of
   * the work: OpenBLAS's own threads would only compete with them. Its
   * thread count is one per process (OpenBLAS 0.3.21 has no per-call one),
   * and every CPU encoder wants the same, so it is set here, not per call. */
  if (openblas_get_num_threads () != 1)
    openblas_set_num_threads (1);
  ClipCpuBackend *cpu = g_new0 (ClipCpuBackend, 1);
  cpu->base.ops = &clip_backend_cpu;
  cpu->base.model = *model;
  cpu->threads = MAX (options->threads, 1);
  cpu->pool = clip_gemm_pool_new (cpu->threads);
  if (!options->openblas_only
      && clip_gemm_kernel_name_at (options->kernel, options->precision) != NULL)
    cpu->packed = packed_set_acquire (model, options->kernel,
        options->precision);
  /* Packed from the file's F16/BF16 where it can be; anything left for
   * cblas_sgemm reads the model's F32 views. */
  if (cpu->packed == NULL || !cpu->packed->complete)
    clip_weights_view_widen_all (&cpu->base.model);
  g_autofree char *packed = NULL;
  if (linears_are_packed (cpu)) {
    const PackedSet *set = cpu->packed;
    g_autofree char *edges = set->edges != set->precision
        ? g_strdup_printf (" (patch embedding and projections %s)",
            clip_precision_get_name (set->edges))
        : NULL;
    packed = g_strdup_printf (" + packed %s GEMM%s%s%s", set->kernel,
        set->precision != CLIP_PRECISION_F32 ? ", " : "",
        set->precision != CLIP_PRECISION_F32
            ? clip_precision_get_name (set->precision)
            : "",
        edges != NULL ? edges : "");
  }
  cpu->description = g_strdup_printf ("OpenBLAS %s%s, %d thread%s",
      openblas_get_corename (), packed != NULL ? packed : "", cpu->threads,
      cpu->threads == 1 ? "" : "s");
  return &cpu->base;
}

static const char *
cpu_describe (ClipBackend *b)
{
  return ((ClipCpuBackend *) b)->description;
}

static void
cpu_close (ClipBackend *b)
{
  ClipCpuBackend *cpu = (ClipCpuBackend *) b;
  g_free (cpu->arena);
  g_free (cpu->description);
  if (cpu->packed != NULL)
    packed_set_release (cpu->packed);
  clip_gemm_pool_free (cpu->pool);
  g_free (cpu);
}

const ClipBackendOps clip_backend_cpu = {
  .name = "cpu",
  .images = cpu_images,
  .frames = cpu_frames,
  .texts = cpu_texts,
  .describe = cpu_describe,
  .profile = NULL,
  .close = cpu_close,
};
