/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The model as the backends see it: the config plus named weight views.
 * Internal to the runtime; the elements and tools use clip.h only. */
#pragma once

#include "clip.h"
#include "safetensors.h"

/* Every linear weight is [out, in] row-major, as torch's nn.Linear stores it:
 * y = x W^T + b. */
typedef struct {
  const float *ln1_w, *ln1_b;
  const float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b; /* [W, W], [W] */
  const float *out_w, *out_b;                     /* [W, W], [W] */
  const float *ln2_w, *ln2_b;
  const float *fc1_w, *fc1_b; /* [M, W], [M] */
  const float *fc2_w, *fc2_b; /* [W, M], [W] */
  /* q, k, v lie back to back, one [3W, W] matrix and one [3W] bias, where
   * the source stores them as one group (params.h): one GEMM for three. */
  gboolean qkv_fused;
} ClipLayerWeights;

typedef struct {
  const float *patch_w;   /* [W, 3, P, P] (conv1, no bias) */
  const float *class_emb; /* [W] */
  const float *pos_emb;   /* [T, W], T = patches + 1 */
  const float *ln_pre_w, *ln_pre_b;
  ClipLayerWeights *layers; /* [config.vision.layers] */
  const float *ln_post_w, *ln_post_b;
  /* [E, W]; the OpenAI layout stores it transposed (params.c) */
  const float *proj;
} ClipVisionWeights;

typedef struct {
  const float *token_emb;   /* [V, W] */
  const float *pos_emb;     /* [C, W] */
  ClipLayerWeights *layers; /* [config.text.layers] */
  const float *ln_final_w, *ln_final_b;
  /* [E, W]; the OpenAI layout stores it transposed (params.c) */
  const float *proj;
} ClipTextWeights;

typedef struct {
  ClipVisionWeights vision;
  ClipTextWeights text;
  float logit_scale; /* the stored log value */
} ClipWeights;

typedef enum {
  CLIP_LAYOUT_HF,     /* transformers' CLIPModel names */
  CLIP_LAYOUT_OPENAI, /* OpenAI / OpenCLIP names */
} ClipLayout;

struct _ClipModel {
  gint ref_count;
  char *key; /* in the table of loaded models (model.c), or NULL */
  char *dir;
  char *name;
  ClipConfig config;
  ClipLayout layout;
  ClipSafetensors *st; /* the mmapped file the F32 views point into */
  /* One anonymous mapping: F16/BF16 tensors as F32, transposed
   * projections. Its pages become resident only where written. */
  float *converted;
  gsize converted_bytes;
  /* ClipDeferredTensor: the F16/BF16 linear weights and token embedding,
   * whose place in converted is written only by clip_model_get_weights, so
   * that a backend reading them from the file never holds an F32 copy.
   * NULL in a model assembled in memory: nothing deferred. */
  GArray *deferred;
  GMutex deferred_lock;
  ClipWeights weights;
  ClipTokenizer *tokenizer;
  char *fingerprint; /* see clip_model_get_fingerprint */
};

/* How many models are loaded and shared now (for the tests). */
guint clip_model_count_loaded (void);

typedef struct {
  float *view; /* where ClipWeights' view points, in converted */
  const ClipTensor *source;
} ClipDeferredTensor;

/* The model's weights with every view readable: widens the deferred
 * tensors into place on the first call (thread-safe). Any reader of the
 * weights but the CPU backend's packed GEMM goes through it. */
const ClipWeights *clip_model_get_weights (ClipModel *model);
/* The file's F16 or BF16 data behind the view w [floats], with its dtype,
 * while that view is deferred (not yet written); else NULL. */
const void *clip_model_deferred_source (ClipModel *model, const float *w,
    gsize floats, ClipDType *dtype);

/* Fails with CLIP_ERROR_IO, naming the file, when the weights file was
 * truncated after loading (see clip_safetensors_check_file); the encoder
 * calls it before every batch. */
gboolean clip_model_check_weights (const ClipModel *model, GError **error);

/* Calls func for every weight tensor of a complete model (logit_scale
 * aside), in a fixed order, under its HF name, with its float count. */
typedef void (*ClipWeightFunc) (const char *name, const float *data,
    gsize n_floats, gpointer user_data);
void clip_weights_foreach (const ClipConfig *config, const ClipWeights *weights,
    ClipWeightFunc func, gpointer user_data);

/* Reads the config of a model folder: HF config.json (CLIPConfig), or
 * open_clip_config.json / an OpenCLIP-style config.json. Also reads an HF
 * preprocessor_config.json for mean/std when present. Refuses ResNet
 * towers. The result is validated. checksum (may be NULL) is fed the text
 * of every config file read, in the order read. */
gboolean clip_config_load_dir (const char *dir, ClipConfig *config,
    GChecksum *checksum, GError **error);
/* Parses one config file's JSON text (the fuzz target uses this). */
gboolean clip_config_parse (const char *json_text, gssize length,
    const char *name_for_errors, ClipConfig *config, GError **error);

/* clip_tokenizer_encode, and *truncated (may be NULL) TRUE when the text
 * had more tokens than context_length holds and was cut. */
gboolean clip_tokenizer_encode_full (const ClipTokenizer *tok, const char *text,
    int context_length, gint32 *ids, gboolean *truncated, GError **error);

/* A tokenizer from an HF vocab.json and merges.txt already in memory (the
 * fuzz target uses this); errors name "vocab.json" and "merges.txt". */
ClipTokenizer *clip_tokenizer_new_from_data (const char *vocab_json,
    gsize vocab_length, const char *merges_text, gsize merges_length,
    GError **error);

/* CLIP's defaults: 224, 32, 77, 49408, OpenAI mean/std, eps 1e-5. */
void clip_config_init_default (ClipConfig *config);

/* Writes a model folder in the given layout: config (config.json for HF,
 * open_clip_config.json for OpenCLIP), model.safetensors in dtype F32 or
 * F16, and vocab.json + merges.txt copied from vocab_dir when not NULL.
 * weights must be complete for the config. Used by random-model and train. */
gboolean clip_model_save (const char *dir, const ClipConfig *config,
    const ClipWeights *weights, ClipLayout layout, ClipDType dtype,
    const char *vocab_dir, GError **error);
