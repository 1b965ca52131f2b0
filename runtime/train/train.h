/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Contrastive pre-training of a CLIP on the CPU, as in the CLIP paper: a
 * batch of n image/caption pairs through both encoders, L2-normalised
 * embeddings, logits scaled by a learned temperature (clamped at 100),
 * symmetric cross-entropy; AdamW with linear warm-up and cosine decay,
 * gradient clipping by global norm.
 *
 * All parameters live in one float buffer (gradients and the two AdamW
 * moments in buffers of the same layout); the forward pass keeps the
 * activations its backward pass needs. The result is deterministic for a
 * seed and a thread count. Internal to the runtime: used by `gst-clip
 * train`/`eval` and the tests. */
#pragma once

#include "model.h"

typedef struct {
  int batch;          /* pairs per step; also the activations' capacity */
  int steps;          /* total optimizer steps (the schedule's length) */
  int warmup_steps;   /* linear warm-up from lr / warmup_steps to lr */
  float lr;           /* peak learning rate; cosine decay to 0 */
  float weight_decay; /* AdamW, on weight matrices only */
  float beta1, beta2, adam_eps;
  float clip_grad_norm;   /* 0 = no clipping */
  float logit_scale_init; /* a new model's initial exp(logit scale) */
  guint32 seed;           /* weight initialisation */
  int threads;            /* OpenBLAS threads; 0 = leave as is */
} ClipTrainOptions;

/* CLIP's settings: AdamW betas 0.9/0.98, eps 1e-6, weight decay 0.2,
 * gradient norm 1, initial logit scale 1/0.07. */
void clip_train_options_init (ClipTrainOptions *opts);

typedef struct _ClipTrainer ClipTrainer;

/* A trainer for a new model of this config, initialised as OpenAI's code
 * does from opts->seed, or (init != NULL) from that model's weights, whose
 * config must have the same sizes (fine-tuning). */
ClipTrainer *clip_trainer_new (const ClipConfig *config,
    const ClipTrainOptions *opts, ClipModel *init, GError **error);
void clip_trainer_free (ClipTrainer *trainer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClipTrainer, clip_trainer_free)

const ClipConfig *clip_trainer_get_config (const ClipTrainer *trainer);
/* Steps done so far (0 for a new trainer). */
int clip_trainer_get_step (const ClipTrainer *trainer);
/* The learning rate the schedule gives a step. */
float clip_trainer_get_lr (const ClipTrainer *trainer, int step);

typedef struct {
  double loss;
  float accuracy;  /* in-batch image -> text top-1 */
  float grad_norm; /* before clipping */
  float lr;
  float logit_scale; /* exp of the parameter after the step */
} ClipTrainStats;

/* One optimizer step on a batch of opts->batch pairs: pixels
 * [batch, 3, S, S] preprocessed, tokens [batch, context_length]. Fails on
 * a token id outside the vocabulary. */
gboolean clip_trainer_step (ClipTrainer *trainer, const float *pixels,
    const gint32 *tokens, ClipTrainStats *stats, GError **error);

/* The loss of a batch of n <= opts->batch pairs and its gradients (left in
 * the gradient buffer), without an update: for gradient checks. */
gboolean clip_trainer_loss_and_grads (ClipTrainer *trainer, const float *pixels,
    const gint32 *tokens, int n, double *loss, GError **error);
/* The parameter and gradient buffers (same layout), n floats each. */
float *clip_trainer_get_params (ClipTrainer *trainer, gsize *n);
const float *clip_trainer_get_grads (const ClipTrainer *trainer);
/* The i-th tensor of those buffers, named as the parameter table names it
 * in the OpenAI layout (q, k, v as one): its offset and size in floats. FALSE past the last one. */
gboolean clip_trainer_get_tensor (const ClipTrainer *trainer, guint i,
    const char **name, gsize *offset, gsize *size);

/* The training forward pass alone: raw embeddings [n, embed_dim]. */
gboolean clip_trainer_encode_images (ClipTrainer *trainer, const float *pixels,
    int n, float *out, GError **error);
gboolean clip_trainer_encode_texts (ClipTrainer *trainer, const gint32 *tokens,
    int n, float *out, GError **error);

/* Views of the current weights, valid while the trainer lives and is not
 * stepped. */
void clip_trainer_get_weights (ClipTrainer *trainer, ClipWeights *weights);

/* Writes the model as an HF folder (config.json, model.safetensors in
 * dtype, vocab.json + merges.txt copied from vocab_dir). */
gboolean clip_trainer_save_model (ClipTrainer *trainer, const char *dir,
    ClipDType dtype, const char *vocab_dir, GError **error);

/* Checkpoints: the parameters, the AdamW moments and the step, in one
 * safetensors file written atomically (a temporary file renamed over the
 * old one). Loading checks that the checkpoint belongs to the same model
 * sizes, batch, step count and seed; resuming then continues bit for bit
 * as the uninterrupted run would. */
gboolean clip_trainer_save_checkpoint (ClipTrainer *trainer, const char *path,
    GError **error);
gboolean clip_trainer_load_checkpoint (ClipTrainer *trainer, const char *path,
    GError **error);
