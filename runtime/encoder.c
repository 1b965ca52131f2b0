/* ClipEncoder: a model plus the backend that runs it. */
#include "backend.h"

struct _ClipEncoder {
  ClipModel *model;
  ClipBackend *backend;
  char *backend_name;
};

static const ClipBackendOps *
choose_backend (ClipBackendKind kind, GError **error)
{
  switch (kind) {
    case CLIP_BACKEND_CPU:
      return &clip_backend_cpu;
    case CLIP_BACKEND_VULKAN:
#ifdef CLIP_HAVE_VULKAN
      return &clip_backend_vulkan;
#else
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
          "the Vulkan backend is not built in (meson option -Dvulkan=enabled)");
      return NULL;
#endif
    case CLIP_BACKEND_AUTO:
    default:
#ifdef CLIP_HAVE_VULKAN
      if (clip_vulkan_has_gpu ()) {
        g_info ("backend auto: a Vulkan GPU is present, using Vulkan");
        return &clip_backend_vulkan;
      }
      g_info ("backend auto: no Vulkan GPU, using the CPU");
#endif
      return &clip_backend_cpu;
  }
}

ClipEncoder *
clip_encoder_new (ClipModel *model, ClipBackendKind kind,
    const ClipBackendOptions *options, GError **error)
{
  ClipBackendOptions defaults = CLIP_BACKEND_OPTIONS_INIT;
  const ClipBackendOps *ops = choose_backend (kind, error);
  if (ops == NULL)
    return NULL;
  ClipBackend *backend = ops->open (model, options ? options : &defaults, error);
  if (backend == NULL && kind == CLIP_BACKEND_AUTO && ops != &clip_backend_cpu) {
    g_warning ("backend auto: %s failed (%s), falling back to the CPU",
        ops->name, error && *error ? (*error)->message : "unknown error");
    g_clear_error (error);
    ops = &clip_backend_cpu;
    backend = ops->open (model, options ? options : &defaults, error);
  }
  if (backend == NULL)
    return NULL;

  ClipEncoder *enc = g_new0 (ClipEncoder, 1);
  enc->model = clip_model_ref (model);
  enc->backend = backend;
  const char *device = ops->describe ? ops->describe (backend) : NULL;
  enc->backend_name = device ? g_strdup_printf ("%s (%s)", ops->name, device)
                             : g_strdup (ops->name);
  return enc;
}

void
clip_encoder_free (ClipEncoder *enc)
{
  if (enc == NULL)
    return;
  enc->backend->ops->close (enc->backend);
  clip_model_unref (enc->model);
  g_free (enc->backend_name);
  g_free (enc);
}

ClipModel *
clip_encoder_get_model (const ClipEncoder *enc)
{
  return enc->model;
}

const char *
clip_encoder_get_backend_name (const ClipEncoder *enc)
{
  return enc->backend_name;
}

const char *
clip_encoder_get_profile (const ClipEncoder *enc)
{
  const ClipBackendOps *ops = enc->backend->ops;
  return ops->profile ? ops->profile (enc->backend) : NULL;
}

gboolean
clip_encoder_encode_images (ClipEncoder *enc, const float *pixels, int n,
    float *embeddings, GError **error)
{
  if (n <= 0)
    return TRUE;
  if (!clip_model_check_weights (enc->model, error))
    return FALSE;
  return enc->backend->ops->images (enc->backend, pixels, n, embeddings, error);
}

gboolean
clip_encoder_encode_frames (ClipEncoder *enc, const ClipFrame *frames, int n,
    float *embeddings, GError **error)
{
  if (n <= 0)
    return TRUE;
  if (!clip_model_check_weights (enc->model, error))
    return FALSE;
  return enc->backend->ops->frames (enc->backend, frames, n, embeddings, error);
}

gboolean
clip_encoder_classify_frames (ClipEncoder *enc, const ClipFrame *frames, int n,
    const ClipLabelSet *set, float *embeddings, float *logits, float *probs,
    GError **error)
{
  const ClipConfig *cfg = clip_model_get_config (enc->model);
  if (clip_label_set_get_embed_dim (set) != cfg->embed_dim) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "the labels were embedded in %d dimensions, %s embeds in %d",
        clip_label_set_get_embed_dim (set), enc->model->name, cfg->embed_dim);
    return FALSE;
  }
  if (n <= 0)
    return TRUE;
  const ClipBackendOps *ops = enc->backend->ops;
  if (ops->classify) {
    ClipBackendLabels labels = {
      clip_label_set_get_embeddings (set), clip_label_set_get_n_labels (set),
      clip_label_set_get_logit_scale (set), clip_label_set_get_id (set),
    };
    return clip_model_check_weights (enc->model, error)
        && ops->classify (enc->backend, frames, n, &labels, embeddings, logits,
            probs, error);
  }
  if (!clip_encoder_encode_frames (enc, frames, n, embeddings, error))
    return FALSE;
  gsize L = clip_label_set_get_n_labels (set);
  for (int i = 0; i < n; i++)
    clip_label_set_score (set, embeddings + (gsize) i * cfg->embed_dim,
        logits ? logits + i * L : NULL, probs ? probs + i * L : NULL);
  return TRUE;
}

gboolean
clip_encoder_encode_texts (ClipEncoder *enc, const gint32 *tokens, int n,
    float *embeddings, GError **error)
{
  if (n <= 0)
    return TRUE;
  if (!clip_model_check_weights (enc->model, error))
    return FALSE;
  return enc->backend->ops->texts (enc->backend, tokens, n, embeddings, error);
}

gboolean
clip_encoder_encode_strings (ClipEncoder *enc, const char *const *texts, int n,
    float *embeddings, GError **error)
{
  const ClipConfig *cfg = clip_model_get_config (enc->model);
  const ClipTokenizer *tok = clip_model_get_tokenizer (enc->model);
  g_autofree gint32 *ids = g_new (gint32, (gsize) MAX (n, 1) * cfg->context_length);
  for (int i = 0; i < n; i++)
    if (!clip_tokenizer_encode (tok, texts[i], cfg->context_length,
            ids + (gsize) i * cfg->context_length, error))
      return FALSE;
  if (!clip_encoder_encode_texts (enc, ids, n, embeddings, error))
    return FALSE;
  for (int i = 0; i < n; i++)
    clip_l2_normalize (embeddings + (gsize) i * cfg->embed_dim, cfg->embed_dim);
  return TRUE;
}
