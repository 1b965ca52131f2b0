/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ClipEncoder: a model plus the backend that runs it. */
#include "backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct _ClipEncoder {
  ClipModel *model;
  ClipBackend *backend;
  char *backend_name;
};

void
clip_weights_view_init (ClipWeightsView *view, const ClipModel *model)
{
  view->name = model->name;
  view->config = &model->config;
  view->weights = &model->weights;
  view->file = model->st;
  /* The deferred tensors are a cache of the model's weights that the
   * backends fill on demand: the model stays logically const. */
  view->owner = (ClipModel *) model;
}

const void *
clip_weights_view_source (const ClipWeightsView *view, const float *w,
    gsize floats, ClipDType *dtype)
{
  return clip_model_deferred_source (view->owner, w, floats, dtype);
}

void
clip_weights_view_widen_all (const ClipWeightsView *view)
{
  clip_model_get_weights (view->owner);
}

gboolean
clip_weights_view_is_mapped (const ClipWeightsView *view, const float *w,
    gsize floats)
{
  return clip_gemm_weight_is_mapped (view->file, w, floats);
}

/* The environment's knobs are read here and nowhere else. They are per
 * process: to compare the CPU's GEMM kernels, to turn on Vulkan's
 * validation layer, to give the tests small limits. */

gboolean
clip_cpu_options_init (ClipCpuOptions *cpu, const ClipBackendOptions *options,
    GError **error)
{
  int threads = options != NULL ? options->threads : 0;
  cpu->threads = threads > 0 ? threads : (int) g_get_num_processors ();
  cpu->openblas_only = FALSE;
  cpu->kernel = CLIP_GEMM_AUTO;
  cpu->precision = options != NULL ? options->precision : CLIP_PRECISION_F32;
  const char *name = g_getenv ("CLIP_CPU_GEMM");
  if (name == NULL || *name == '\0')
    return TRUE;
  if (g_strcmp0 (name, "off") == 0) {
    cpu->openblas_only = TRUE;
    return TRUE;
  }
  static const struct {
    const char *name;
    ClipGemmKernel kernel;
  } kernels[] = {
    { "amx", CLIP_GEMM_AMX },
    { "avx512vnni", CLIP_GEMM_AVX512_VNNI },
    { "avxvnni", CLIP_GEMM_AVX_VNNI },
    { "avx512bf16", CLIP_GEMM_AVX512_BF16 },
    { "avx512", CLIP_GEMM_AVX512 },
    { "avx2", CLIP_GEMM_AVX2 },
    { "c", CLIP_GEMM_PLAIN },
  };
  guint i = 0;
  while (i < G_N_ELEMENTS (kernels) && strcmp (name, kernels[i].name) != 0)
    i++;
  if (i == G_N_ELEMENTS (kernels)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
        "cpu: CLIP_CPU_GEMM is '%s'; expected amx, avx512vnni, avxvnni, avx512bf16, "
        "avx512, avx2, c or off",
        name);
    return FALSE;
  }
  cpu->kernel = kernels[i].kernel;
  if (!clip_gemm_kernel_supported (cpu->kernel)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
        "cpu: CLIP_CPU_GEMM=%s, but this CPU does not run that kernel", name);
    return FALSE;
  }
  return TRUE;
}

static const char *const precision_names[] = { "f32", "bf16", "int8" };

gboolean
clip_precision_from_name (const char *name, ClipPrecision *precision,
    GError **error)
{
  for (guint i = 0; i < G_N_ELEMENTS (precision_names); i++)
    if (g_strcmp0 (name, precision_names[i]) == 0) {
      *precision = (ClipPrecision) i;
      return TRUE;
    }
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
      "unknown precision '%s' (f32, bf16 or int8)", name ? name : "(null)");
  return FALSE;
}

const char *
clip_precision_get_name (ClipPrecision precision)
{
  return (guint) precision < G_N_ELEMENTS (precision_names)
      ? precision_names[precision]
      : NULL;
}

static ClipBackend *
open_cpu (const ClipWeightsView *model, const ClipBackendOptions *options,
    GError **error)
{
  ClipCpuOptions cpu;
  return clip_cpu_options_init (&cpu, options, error)
      ? clip_cpu_backend_open (model, &cpu)
      : NULL;
}

static gboolean
always (void)
{
  return TRUE;
}

#ifdef CLIP_HAVE_VULKAN
/* A positive integer, or 0. */
static int
positive_from_environment (const char *variable)
{
  const char *value = g_getenv (variable);
  return value != NULL && atoi (value) > 0 ? atoi (value) : 0;
}

void
clip_vulkan_options_init (ClipVulkanOptions *vk,
    const ClipBackendOptions *options)
{
  ClipBackendOptions defaults = CLIP_BACKEND_OPTIONS_INIT;
  if (options == NULL)
    options = &defaults;
  vk->device_index = options->device_index;
  vk->device_name = options->device_name;
  vk->f16 = options->f16;
  vk->profile = options->profile;
  vk->max_batch = positive_from_environment ("CLIP_VULKAN_MAX_BATCH");
  const char *tile = g_getenv ("CLIP_VULKAN_MATMUL_TILE");
  vk->matmul_tile = g_strcmp0 (tile, "64") == 0 || g_strcmp0 (tile, "128") == 0
      ? atoi (tile)
      : 0;
  vk->frame_budget = positive_from_environment ("CLIP_VULKAN_FRAME_BUDGET");
  vk->validation = g_strcmp0 (g_getenv ("CLIP_VULKAN_VALIDATION"), "1") == 0;
}

static ClipBackend *
open_vulkan (const ClipWeightsView *model, const ClipBackendOptions *options,
    GError **error)
{
  ClipVulkanOptions vk;
  clip_vulkan_options_init (&vk, options);
  clip_weights_view_widen_all (model);
  return clip_vulkan_backend_open (model, &vk, error);
}
#endif

typedef struct {
  ClipBackendKind kind;
  const char *name;
  /* For auto: FALSE where the backend would run, but slower than the next
   * one; unwanted says why. */
  gboolean (*wanted) (void);
  const char *unwanted;
  ClipBackend *(*open) (const ClipWeightsView *model,
      const ClipBackendOptions *options, GError **error);
} Backend;

/* The backends built in, in the order auto tries them. The CPU comes last:
 * it always runs. */
static const Backend backends[] = {
#ifdef CLIP_HAVE_VULKAN
  /* lavapipe, a CPU implementation, runs slower than the CPU backend. */
  { CLIP_BACKEND_VULKAN, "Vulkan", clip_vulkan_has_gpu, "no Vulkan GPU",
      open_vulkan },
#endif
  { CLIP_BACKEND_CPU, "the CPU", always, NULL, open_cpu },
};

static ClipBackend *
open_backend (const ClipModel *model, ClipBackendKind kind,
    const ClipBackendOptions *options, GError **error)
{
  ClipWeightsView view;
  clip_weights_view_init (&view, model);
  for (guint i = 0; i < G_N_ELEMENTS (backends); i++)
    if (backends[i].kind == kind)
      return backends[i].open (&view, options, error);
  if (kind == CLIP_BACKEND_VULKAN) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
        "the Vulkan backend is not built in (meson option -Dvulkan=enabled)");
    return NULL;
  }
  /* Auto (and any kind clip.h does not name): the first backend wanted
   * here that opens. */
  guint last = G_N_ELEMENTS (backends) - 1;
  for (guint i = 0;; i++) {
    const Backend *backend = &backends[i];
    if (i < last && !backend->wanted ()) {
      g_info ("backend auto: %s, not using %s", backend->unwanted,
          backend->name);
      continue;
    }
    g_info ("backend auto: using %s", backend->name);
    ClipBackend *opened = backend->open (&view, options, error);
    if (opened != NULL || i == last)
      return opened;
    g_warning ("backend auto: %s failed (%s), falling back to %s",
        backend->name, error && *error ? (*error)->message : "unknown error",
        backends[i + 1].name);
    g_clear_error (error);
  }
}

ClipEncoder *
clip_encoder_new (ClipModel *model, ClipBackendKind kind,
    const ClipBackendOptions *options, GError **error)
{
  ClipBackend *backend = open_backend (model, kind, options, error);
  if (backend == NULL)
    return NULL;

  ClipEncoder *enc = g_new0 (ClipEncoder, 1);
  enc->model = clip_model_ref (model);
  enc->backend = backend;
  const ClipBackendOps *ops = backend->ops;
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

ClipBackend *
clip_encoder_get_backend (const ClipEncoder *enc)
{
  return enc->backend;
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

/* A NaN or an infinity in an output is never a result: it comes from
 * broken weights (or an overflow in them), and would print as "nan" and
 * rank as anything. what is "image" or "text". */
static gboolean
check_finite (const ClipEncoder *enc, const char *what, const float *values,
    int n, gsize per_item, GError **error)
{
  for (gsize i = 0; i < (gsize) n * per_item; i++)
    if (!isfinite (values[i])) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_NOT_FINITE,
          "model %s: the embedding of %s %" G_GSIZE_FORMAT " of %d in the "
          "batch is not finite (NaN or infinite); the model's weights are "
          "broken",
          clip_model_get_dir (enc->model), what, i / per_item + 1, n);
      return FALSE;
    }
  return TRUE;
}

gboolean
clip_encoder_encode_images (ClipEncoder *enc, const float *pixels, int n,
    float *embeddings, GError **error)
{
  if (n <= 0)
    return TRUE;
  if (!clip_model_check_weights (enc->model, error))
    return FALSE;
  int dim = clip_model_get_config (enc->model)->embed_dim;
  return enc->backend->ops->images (enc->backend, pixels, n, embeddings, error)
      && check_finite (enc, "image", embeddings, n, dim, error);
}

gboolean
clip_encoder_encode_frames (ClipEncoder *enc, const ClipFrame *frames, int n,
    float *embeddings, GError **error)
{
  if (n <= 0)
    return TRUE;
  if (!clip_model_check_weights (enc->model, error))
    return FALSE;
  int dim = clip_model_get_config (enc->model)->embed_dim;
  return enc->backend->ops->frames (enc->backend, frames, n, embeddings, error)
      && check_finite (enc, "image", embeddings, n, dim, error);
}

gboolean
clip_encoder_encode_and_score_frames (ClipEncoder *enc, const ClipFrame *frames,
    int n, const ClipBackendLabels *labels, float *embeddings, float *logits,
    float *probs, gboolean *scored, GError **error)
{
  const ClipBackendOps *ops = enc->backend->ops;
  *scored = ops->classify != NULL;
  if (n <= 0 || ops->classify == NULL)
    return clip_encoder_encode_frames (enc, frames, n, embeddings, error);
  int dim = clip_model_get_config (enc->model)->embed_dim;
  return clip_model_check_weights (enc->model, error)
      && ops->classify (enc->backend, frames, n, labels, embeddings, logits,
          probs, error)
      && check_finite (enc, "image", embeddings, n, dim, error);
}

gboolean
clip_encoder_encode_texts (ClipEncoder *enc, const gint32 *tokens, int n,
    float *embeddings, GError **error)
{
  if (n <= 0)
    return TRUE;
  if (!clip_model_check_weights (enc->model, error))
    return FALSE;
  int dim = clip_model_get_config (enc->model)->embed_dim;
  return enc->backend->ops->texts (enc->backend, tokens, n, embeddings, error)
      && check_finite (enc, "text", embeddings, n, dim, error);
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
