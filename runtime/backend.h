/* The backend seam: a whole encoder, not an op, so that a GPU backend keeps
 * its activations on the device and records one command buffer per batch.
 * Each backend embeds ClipBackend as the first member of its own struct. */
#pragma once

#include "model.h"

typedef struct _ClipBackendOps ClipBackendOps;

/* A label set as a backend scores against it. id changes whenever the
 * labels do, so that a backend may keep a copy of them. */
typedef struct {
  const float *embeddings; /* [n_labels, E], rows L2-normalised */
  int n_labels;
  float logit_scale;       /* exp(logit_scale), as the label set keeps it */
  guint64 id;
} ClipBackendLabels;

typedef struct {
  const ClipBackendOps *ops;
  const ClipModel *model;
} ClipBackend;

struct _ClipBackendOps {
  const char *name;
  ClipBackend *(*open) (const ClipModel *model, const ClipBackendOptions *opts,
      GError **error);
  /* pixels [n, 3, S, S] -> out [n, E], raw (not normalised) */
  gboolean (*images) (ClipBackend *b, const float *pixels, int n, float *out,
      GError **error);
  /* frames -> out [n, E], preprocessing included and bit for bit as
   * clip_preprocess */
  gboolean (*frames) (ClipBackend *b, const ClipFrame *frames, int n,
      float *out, GError **error);
  /* Optional: frames() plus each frame's scores against labels, in the same
   * pass (as clip_label_set_score): logits, probs [n, n_labels], either may
   * be NULL. Without it the encoder scores on the CPU. */
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

extern const ClipBackendOps clip_backend_cpu;
#ifdef CLIP_HAVE_VULKAN
extern const ClipBackendOps clip_backend_vulkan;
/* TRUE when a Vulkan device that is not a CPU implementation exists. */
gboolean clip_vulkan_has_gpu (void);
/* For the tests: the n preprocessed images [n, 3, S, S] the last batch of
 * the image encoder ran on, read back from the device. */
gboolean clip_vulkan_read_images (ClipBackend *b, int n, float *pixels,
    GError **error);
#endif

/* A number no other label set of this process has (for ClipBackendLabels). */
guint64 clip_label_set_get_id (const ClipLabelSet *set);

/* Position of the first end-of-text token (the argmax of the ids, as the
 * official code pools), per row; and the longest such position + 1 over the
 * batch, the only part of the sequence the causal text encoder must run. */
int clip_tokens_eot_position (const gint32 *ids, int context_length);
