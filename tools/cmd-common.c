/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the gst-clip subcommands: options, errors, loading. */
#include "commands.h"
#include "image.h"

#include <stdio.h>
#include <string.h>

void
tool_add_model_options (GOptionContext *ctx, ToolModelOptions *opts,
    gboolean with_backend)
{
  const GOptionEntry model_entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &opts->model_dir,
        "Model folder (HuggingFace or OpenCLIP layout) or hub cache name "
        "ORG/NAME[@REVISION] (see gst-clip pull); default: the installed "
        "default model",
        "DIR|NAME" },
    { "vocab", 0, 0, G_OPTION_ARG_FILENAME, &opts->vocab_dir,
        "Folder (or hub name) with vocab.json + merges.txt or "
        "bpe_simple_vocab_16e6.txt.gz, "
        "for a model folder that has none",
        "DIR" },
    { NULL },
  };
  const GOptionEntry backend_entries[] = {
    { "backend", 0, 0, G_OPTION_ARG_STRING, &opts->backend,
        "cpu, vulkan or auto (default: a Vulkan GPU when there is one, else "
        "the CPU)",
        "NAME" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &opts->threads,
        "CPU threads (default 0: one per core)", "N" },
    { "device", 0, 0, G_OPTION_ARG_STRING, &opts->device,
        "Vulkan device: its index, or a substring of its name (default: the "
        "first GPU)",
        "INDEX|NAME" },
    { "f32", 0, 0, G_OPTION_ARG_NONE, &opts->f32,
        "Vulkan: keep the weights in F32 (default: F16 storage where the "
        "device supports it, F32 arithmetic either way)",
        NULL },
    { "precision", 0, 0, G_OPTION_ARG_STRING, &opts->precision,
        "CPU: the linear layers' arithmetic, f32 (default), bf16 (BF16 "
        "weights, and inputs on AMX or AVX512_BF16, F32 sums) or int8 (INT8 weights "
        "and inputs, int32 sums); Vulkan ignores it",
        "f32|bf16|int8" },
    { NULL },
  };
  /* GOption copies the entries, so stack arrays are fine. */
  g_option_context_add_main_entries (ctx, model_entries, NULL);
  if (with_backend)
    g_option_context_add_main_entries (ctx, backend_entries, NULL);
}

GOptionContext *
tool_option_context_new (const char *parameters, const char *summary,
    const char *description, const GOptionEntry *entries,
    ToolModelOptions *model_opts, gboolean with_backend)
{
  GOptionContext *ctx = g_option_context_new (parameters);
  g_option_context_set_summary (ctx, summary);
  if (description != NULL)
    g_option_context_set_description (ctx, description);
  if (entries != NULL)
    g_option_context_add_main_entries (ctx, entries, NULL);
  if (model_opts != NULL)
    tool_add_model_options (ctx, model_opts, with_backend);
  return ctx;
}

void
tool_model_options_clear (ToolModelOptions *opts)
{
  g_clear_pointer (&opts->model_dir, g_free);
  g_clear_pointer (&opts->vocab_dir, g_free);
  g_clear_pointer (&opts->backend, g_free);
  g_clear_pointer (&opts->device, g_free);
  g_clear_pointer (&opts->precision, g_free);
}

gboolean
tool_parse (GOptionContext *ctx, int *argc, char ***argv, int *status)
{
  g_autoptr (GError) error = NULL;
  if (g_option_context_parse (ctx, argc, argv, &error))
    return TRUE;
  fprintf (stderr, "gst-clip: %s\nTry '%s --help'.\n", error->message,
      (*argv)[0]);
  *status = TOOL_EXIT_USAGE;
  return FALSE;
}

gboolean
tool_parse_options_only (const char *command, GOptionContext *ctx, int *argc,
    char ***argv, int *status)
{
  if (!tool_parse (ctx, argc, argv, status))
    return FALSE;
  if (*argc > 1) {
    *status = tool_usage_error (command, "unexpected argument '%s'",
        (*argv)[1]);
    return FALSE;
  }
  return TRUE;
}

int
tool_usage_error (const char *command, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  fprintf (stderr, "gst-clip: %s\nTry 'gst-clip %s --help'.\n", message,
      command);
  return TOOL_EXIT_USAGE;
}

int
tool_fail (GError *error)
{
  fprintf (stderr, "gst-clip: %s\n", error->message);
  g_error_free (error);
  return TOOL_EXIT_FAILURE;
}

gboolean
tool_check_range (const char *command, const char *option, gint64 value,
    gint64 min, gint64 max, int *status)
{
  if (value >= min && value <= max)
    return TRUE;
  *status = tool_usage_error (command,
      "%s: %" G_GINT64_FORMAT " is outside %" G_GINT64_FORMAT
      "..%" G_GINT64_FORMAT,
      option, value, min, max);
  return FALSE;
}

gboolean
tool_check_double_range (const char *command, const char *option, double value,
    double min, double max, int *status)
{
  if (value >= min && value <= max)
    return TRUE;
  *status = tool_usage_error (command, "%s: %g is outside %g..%g", option,
      value, min, max);
  return FALSE;
}

gpointer
tool_try_alloc (gsize n, gsize size, const char *what, GError **error)
{
  gpointer p = size > 0 && n <= G_MAXSIZE / size ? g_try_malloc (n * size)
                                                 : NULL;
  if (p == NULL)
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "cannot allocate %" G_GSIZE_FORMAT " MiB for %s",
        n <= G_MAXSIZE / MAX (size, 1) ? n * size >> 20 : G_MAXSIZE >> 20,
        what);
  return p;
}

gboolean
tool_parse_dtype (const char *command, const char *name, ClipDType *dtype,
    int *status)
{
  if (name == NULL || strcmp (name, "f32") == 0)
    *dtype = CLIP_DTYPE_F32;
  else if (strcmp (name, "f16") == 0)
    *dtype = CLIP_DTYPE_F16;
  else {
    *status = tool_usage_error (command,
        "--dtype: '%s' is neither f32 nor "
        "f16",
        name);
    return FALSE;
  }
  return TRUE;
}

ClipModel *
tool_load_model (const char *command, const ToolModelOptions *opts, int *status)
{
  g_autofree char *default_dir = NULL;
  const char *dir = opts->model_dir;
  if (dir == NULL) {
    g_autoptr (GError) error = NULL;
    default_dir = clip_default_model_dir (&error);
    if (default_dir == NULL) {
      *status = tool_usage_error (command, "no --model given; %s",
          error->message);
      return NULL;
    }
    dir = default_dir;
  }
  GError *error = NULL;
  ClipModel *model = clip_model_load (dir, opts->vocab_dir, &error);
  if (model == NULL)
    *status = tool_fail (error);
  return model;
}

ClipEncoder *
tool_open_encoder (const char *command, ClipModel *model,
    const ToolModelOptions *opts, gboolean profile, int *status)
{
  ClipBackendKind kind;
  if (opts->backend == NULL || strcmp (opts->backend, "auto") == 0)
    kind = CLIP_BACKEND_AUTO;
  else if (strcmp (opts->backend, "cpu") == 0)
    kind = CLIP_BACKEND_CPU;
  else if (strcmp (opts->backend, "vulkan") == 0)
    kind = CLIP_BACKEND_VULKAN;
  else {
    *status = tool_usage_error (command,
        "--backend: unknown backend '%s' (cpu, vulkan or auto)", opts->backend);
    return NULL;
  }
  if (!tool_check_range (command, "--threads", opts->threads, 0,
          TOOL_MAX_THREADS, status))
    return NULL;

  ClipBackendOptions options = CLIP_BACKEND_OPTIONS_INIT;
  GError *error = NULL;
  if (opts->precision != NULL
      && !clip_precision_from_name (opts->precision, &options.precision,
          &error)) {
    *status = tool_usage_error (command, "--precision: %s", error->message);
    g_error_free (error);
    return NULL;
  }
  options.threads = opts->threads;
  options.profile = profile;
  options.f16 = !opts->f32;
  if (opts->device != NULL) {
    char *end = NULL;
    gint64 index = g_ascii_strtoll (opts->device, &end, 10);
    if (end != opts->device && *end == '\0' && index >= 0 && index < G_MAXINT)
      options.device_index = (int) index;
    else
      options.device_name = opts->device;
  }
  ClipEncoder *enc = clip_encoder_new (model, kind, &options, &error);
  if (enc == NULL)
    *status = tool_fail (error);
  return enc;
}

gboolean
tool_load_image_tensor (const char *path, const ClipConfig *config,
    float *tensor_out, GError **error)
{
  int width, height;
  g_autofree guint8 *rgb = clip_image_load_rgb (path, &width, &height, error);
  if (rgb == NULL)
    return FALSE;
  ClipFrame frame = {
    .format = CLIP_PIXEL_RGB,
    .width = width,
    .height = height,
    .planes = { rgb },
    .strides = { width * 3 },
  };
  GError *local = NULL;
  if (clip_preprocess (&frame, config, tensor_out, &local))
    return TRUE;
  /* The preprocessing sees pixels, not files: say which file it was. */
  g_set_error (error, local->domain, local->code, "%s: %s", path,
      local->message);
  g_error_free (local);
  return FALSE;
}

void
tool_warn_truncated_labels (const ClipLabelSet *set, const ClipModel *model)
{
  for (int i = 0; i < clip_label_set_get_n_labels (set); i++)
    if (clip_label_set_is_truncated (set, i))
      fprintf (stderr,
          "gst-clip: warning: label '%s': a prompt is longer than the "
          "%d tokens of %s's context and was cut; labels that differ only "
          "after the cut score the same\n",
          clip_label_set_get_label (set, i),
          clip_model_get_config (model)->context_length,
          clip_model_get_name (model));
}
