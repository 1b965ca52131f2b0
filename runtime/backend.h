/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The backend seam: a whole encoder, not an op, so that a GPU backend keeps
 * its activations on the device and records one command buffer per batch.
 * Each backend embeds ClipBackend as the first member of its own struct.
 *
 * A backend sees the model only as a ClipWeightsView and is configured only
 * by its own options struct: the encoder maps the public ClipBackendOptions
 * and the environment's knobs onto it (clip_cpu_options_init,
 * clip_vulkan_options_init), and picks the backend from its table. */
#pragma once

#include "cpu/gemm.h"
#include "model.h"

typedef struct _ClipBackendOps ClipBackendOps;

/* A label set as a backend scores against it. id changes whenever the
 * labels do, so that a backend may keep a copy of them. */
typedef struct {
  const float *embeddings; /* [n_labels, E], rows L2-normalised */
  int n_labels;
  float logit_scale; /* exp(logit_scale), as the label set keeps it */
  guint64 id;
} ClipBackendLabels;

/* The model as a backend reads it: sizes and weights, read-only. */
typedef struct {
  const char *name; /* the model's, for messages */
  const ClipConfig *config;
  const ClipWeights *weights;
  const ClipSafetensors *file; /* private: see clip_weights_view_is_mapped */
  ClipModel *owner;            /* private: see clip_weights_view_source */
} ClipWeightsView;

/* The view of model; it points into model, which must outlive it. */
void clip_weights_view_init (ClipWeightsView *view, const ClipModel *model);
/* TRUE when w [floats] lies inside one F32 tensor of the model file's
 * read-only mapping: pages a backend may drop from the resident set once
 * it holds its own copy, since they fault back in from the file. FALSE for
 * weights converted at load (F16, BF16, transposed projections). */
gboolean clip_weights_view_is_mapped (const ClipWeightsView *view,
    const float *w, gsize floats);

/* The model's F16 or BF16 file data behind the view w [floats], and its
 * dtype, while clip_model_load has not widened it (F16/BF16 linear weights
 * and token embedding; see ClipDeferredTensor): a backend that packs or
 * reads it from there never needs the F32 copy. NULL otherwise. */
const void *clip_weights_view_source (const ClipWeightsView *view,
    const float *w, gsize floats, ClipDType *dtype);
/* Makes every view of the weights readable, widening the deferred tensors:
 * a backend calls it before it reads a weight that it did not take from
 * clip_weights_view_source. */
void clip_weights_view_widen_all (const ClipWeightsView *view);

typedef struct {
  const ClipBackendOps *ops;
  ClipWeightsView model;
} ClipBackend;

struct _ClipBackendOps {
  const char *name;
  /* pixels [n, 3, S, S] -> out [n, E], raw (not normalised) */
  gboolean (*images) (ClipBackend *b, const float *pixels, int n, float *out,
      GError **error);
  /* frames -> out [n, E], preprocessing included and bit for bit as
   * clip_preprocess */
  gboolean (*frames) (ClipBackend *b, const ClipFrame *frames, int n,
      float *out, GError **error);
  /* Optional: frames() plus each frame's scores against labels, in the same
   * pass (as clip_label_set_score): logits, probs [n, n_labels], either may
   * be NULL. Without it the label set scores on the CPU. */
  gboolean (*classify) (ClipBackend *b, const ClipFrame *frames, int n,
      const ClipBackendLabels *labels, float *out, float *logits, float *probs,
      GError **error);
  /* tokens [n, C] -> out [n, E], raw (not normalised) */
  gboolean (*texts) (ClipBackend *b, const gint32 *tokens, int n, float *out,
      GError **error);
  /* Optional: a human-readable device description, and per-stage timings. */
  const char *(*describe) (ClipBackend *b);
  const char *(*profile) (ClipBackend *b);
  void (*close) (ClipBackend *b);
};

/* ------------------------------------------------------------------- cpu */

typedef struct {
  int threads;            /* the encoder's own pool: >= 1 */
  gboolean openblas_only; /* no packed GEMM: every linear layer on OpenBLAS */
  ClipGemmKernel kernel;  /* the packed GEMM's, unless openblas_only */
  ClipPrecision precision;
} ClipCpuOptions;

/* The CPU options for the public ones: threads 0 = as many as cores;
 * CLIP_CPU_GEMM=amx|avx512vnni|avx512bf16|avx512|avx2|c|off picks the
 * packed GEMM's kernel, or none (OpenBLAS only), instead of the widest this
 * CPU runs (amx: BF16 and INT8 precision on AMX tiles; avx512: BF16
 * precision on AVX-512F, weights widened in registers; avx512vnni: INT8 on
 * vpdpbusd; c: INT8 in plain C, OpenBLAS at the other precisions; avx512,
 * avx512bf16 and avx512vnni all run INT8 on AVX512_VNNI where the CPU has
 * it; F32 runs on AVX-512F under amx). Fails with
 * CLIP_ERROR_BACKEND on another value, or a kernel this CPU does not run.
 * options may be NULL: the defaults. */
gboolean clip_cpu_options_init (ClipCpuOptions *cpu,
    const ClipBackendOptions *options, GError **error);

extern const ClipBackendOps clip_backend_cpu;
/* Packs the linear layers' weights for options' kernel, or shares the
 * packed copy another CPU backend open on the same model with the same
 * kernel holds. Thread-safe. */
ClipBackend *clip_cpu_backend_open (const ClipWeightsView *model,
    const ClipCpuOptions *options);
/* For the tests: the packed weight set a CPU backend uses (NULL: none), the
 * same for every CPU backend sharing it; and how many sets are in use. */
gconstpointer clip_cpu_backend_get_packed (ClipBackend *b);
guint clip_cpu_count_packed (void);

/* ---------------------------------------------------------------- vulkan */

#ifdef CLIP_HAVE_VULKAN
typedef struct {
  int device_index;        /* -1: by name, else the best device */
  const char *device_name; /* a substring of the name, or NULL */
  gboolean f16;            /* F16 weight storage where supported */
  gboolean profile;        /* timestamp queries per stage */
  int max_batch;           /* items per submission at most; 0 = no limit */
  int matmul_tile;         /* 64 or 128 rows; 0 = chosen per matmul */
  gsize frame_budget;      /* bytes of frames a batch uploads at most;
                            * 0 = the default */
  gboolean validation;     /* the Khronos validation layer */
} ClipVulkanOptions;

/* The Vulkan options for the public ones, plus the environment's knobs:
 * CLIP_VULKAN_VALIDATION=1, CLIP_VULKAN_MATMUL_TILE=64|128,
 * CLIP_VULKAN_MAX_BATCH=N, CLIP_VULKAN_FRAME_BUDGET=BYTES (other values
 * are ignored). options may be NULL: the defaults. */
void clip_vulkan_options_init (ClipVulkanOptions *vk,
    const ClipBackendOptions *options);

extern const ClipBackendOps clip_backend_vulkan;
ClipBackend *clip_vulkan_backend_open (const ClipWeightsView *model,
    const ClipVulkanOptions *options, GError **error);
/* TRUE when a Vulkan device that is not a CPU implementation exists. */
gboolean clip_vulkan_has_gpu (void);
/* For the tests: the n preprocessed images [n, 3, S, S] the last batch of
 * the image encoder ran on, read back from the device. */
gboolean clip_vulkan_read_images (ClipBackend *b, int n, float *pixels,
    GError **error);
#endif

/* --------------------------------------------------------------- encoder */

/* The backend enc runs on (for the tests). */
ClipBackend *clip_encoder_get_backend (const ClipEncoder *enc);

/* clip_encoder_encode_frames, plus each frame's scores against labels
 * (logits, probs [n, n_labels], either may be NULL) where the backend
 * computes them in the same pass: then *scored is TRUE. Otherwise only the
 * embeddings are written, and the caller scores them. The labels' rows
 * must have the model's embedding size. */
gboolean clip_encoder_encode_and_score_frames (ClipEncoder *enc,
    const ClipFrame *frames, int n, const ClipBackendLabels *labels,
    float *embeddings, float *logits, float *probs, gboolean *scored,
    GError **error);

/* A number no other label set of this process has (for ClipBackendLabels). */
guint64 clip_label_set_get_id (const ClipLabelSet *set);

/* Position of the first end-of-text token (the argmax of the ids, as the
 * official code pools), per row; and the longest such position + 1 over the
 * batch, the only part of the sequence the causal text encoder must run. */
int clip_tokens_eot_position (const gint32 *ids, int context_length);
