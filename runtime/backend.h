/* The backend seam: a whole encoder, not an op, so that a GPU backend keeps
 * its activations on the device and records one command buffer per batch.
 * Each backend embeds ClipBackend as the first member of its own struct. */
#pragma once

#include "model.h"

typedef struct _ClipBackendOps ClipBackendOps;

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
  /* Optional: frames -> out [n, E], preprocessing included and bit for bit
   * as clip_preprocess. Without it the encoder preprocesses on the CPU. */
  gboolean (*frames) (ClipBackend *b, const ClipFrame *frames, int n,
      float *out, GError **error);
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

/* Position of the first end-of-text token (the argmax of the ids, as the
 * official code pools), per row; and the longest such position + 1 over the
 * batch, the only part of the sequence the causal text encoder must run. */
int clip_tokens_eot_position (const gint32 *ids, int context_length);
