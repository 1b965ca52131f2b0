/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gst-clip random-model: a model folder with random weights and the real
 * sizes of a CLIP architecture, for benchmarks and tests. */
#include "commands.h"
#include "params.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  const char *name;
  int image_size, patch_size, vision_width, vision_layers;
  int text_width, text_heads, text_layers, embed_dim;
} Architecture;

/* OpenAI's ViT CLIPs; "tiny" is the reference data's tiny model. The vision
 * tower has width / 64 heads, as in OpenAI's constructor. */
static const Architecture architectures[] = {
  { "ViT-B/32", 224, 32, 768, 12, 512, 8, 12, 512 },
  { "ViT-B/16", 224, 16, 768, 12, 512, 8, 12, 512 },
  { "ViT-L/14", 224, 14, 1024, 24, 768, 12, 12, 768 },
  { "ViT-L/14@336", 336, 14, 1024, 24, 768, 12, 12, 768 },
  { "tiny", 224, 32, 64, 2, 64, 2, 2, 32 },
};

static const Architecture *
find_architecture (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (architectures); i++)
    if (g_ascii_strcasecmp (architectures[i].name, name) == 0)
      return &architectures[i];
  return NULL;
}

static void
config_for_architecture (const Architecture *arch, ClipConfig *config)
{
  clip_config_init_default (config);
  config->image_size = arch->image_size;
  config->patch_size = arch->patch_size;
  config->embed_dim = arch->embed_dim;
  config->vision = (ClipTowerConfig) {
    .width = arch->vision_width,
    .layers = arch->vision_layers,
    .heads = MAX (arch->vision_width / 64, 1),
    .mlp_width = 4 * arch->vision_width,
    .eps = 1e-5f,
    .activation = CLIP_ACTIVATION_QUICK_GELU,
  };
  config->text = (ClipTowerConfig) {
    .width = arch->text_width,
    .layers = arch->text_layers,
    .heads = arch->text_heads,
    .mlp_width = 4 * arch->text_width,
    .eps = 1e-5f,
    .activation = CLIP_ACTIVATION_QUICK_GELU,
  };
}

int
tool_cmd_random_model (int argc, char **argv)
{
  g_autofree char *arch_name = NULL;
  g_autofree char *out_dir = NULL;
  g_autofree char *layout_name = NULL;
  g_autofree char *dtype_name = NULL;
  g_autofree char *vocab_dir = NULL;
  gint64 seed = 1;
  int status = TOOL_EXIT_OK;

  const GOptionEntry entries[] = {
    { "arch", 'a', 0, G_OPTION_ARG_STRING, &arch_name,
        "Architecture (see below)", "NAME" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out_dir, "Output folder (created)",
        "DIR" },
    { "layout", 0, 0, G_OPTION_ARG_STRING, &layout_name,
        "hf (config.json, HuggingFace names; default) or openclip "
        "(open_clip_config.json, OpenAI names)",
        "hf|openclip" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_name,
        "Weight type in model.safetensors (default f32)", "f32|f16" },
    { "seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Random seed (default 1)",
        "N" },
    { "vocab", 0, 0, G_OPTION_ARG_FILENAME, &vocab_dir,
        "Copy vocab.json + merges.txt from this folder into the model", "DIR" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = tool_option_context_new ("",
      "Writes a model folder with random weights and the real sizes of a CLIP\n"
      "architecture, initialised as OpenAI's code does, from a seeded\n"
      "generator: the same seed gives the same weights in any layout and dtype.",
      "Architectures: ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336 (OpenAI's\n"
      "sizes, QuickGELU), tiny (the reference data's tiny model: width 64,\n"
      "2 layers, embed 32).\n",
      entries, NULL, FALSE);

  if (!tool_parse_options_only ("random-model", ctx, &argc, &argv, &status))
    return status;
  if (arch_name == NULL || out_dir == NULL)
    return tool_usage_error ("random-model", "--arch and --out are required");
  const Architecture *arch = find_architecture (arch_name);
  if (arch == NULL)
    return tool_usage_error ("random-model",
        "--arch: unknown architecture "
        "'%s' (ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336 or tiny)",
        arch_name);
  ClipLayout layout;
  if (layout_name == NULL || strcmp (layout_name, "hf") == 0)
    layout = CLIP_LAYOUT_HF;
  else if (strcmp (layout_name, "openclip") == 0)
    layout = CLIP_LAYOUT_OPENAI;
  else
    return tool_usage_error ("random-model",
        "--layout: '%s' is neither hf "
        "nor openclip",
        layout_name);
  ClipDType dtype;
  if (!tool_parse_dtype ("random-model", dtype_name, &dtype, &status))
    return status;
  if (seed < 0 || seed > G_MAXUINT32)
    return tool_usage_error ("random-model",
        "--seed: %" G_GINT64_FORMAT " is outside 0..%u", seed, G_MAXUINT32);

  ClipConfig config;
  config_for_architecture (arch, &config);
  GError *error = NULL;
  if (!clip_config_validate (&config, &error))
    return tool_fail (error);

  /* Initialise + save: the parameter table's rules, from the seed. */
  ClipParamLayout params;
  clip_param_layout_init (&params, &config);
  g_autofree float *data = g_try_new (float, params.total);
  g_autofree ClipLayerWeights *vision_layers = g_new0 (ClipLayerWeights,
      config.vision.layers);
  g_autofree ClipLayerWeights *text_layers = g_new0 (ClipLayerWeights,
      config.text.layers);
  ClipWeights weights = { .vision.layers = vision_layers,
    .text.layers = text_layers };
  if (data == NULL) {
    fprintf (stderr,
        "gst-clip: not enough memory for the %s weights "
        "(%" G_GSIZE_FORMAT " MB)\n",
        arch->name, params.total * sizeof (float) >> 20);
    clip_param_layout_clear (&params);
    return TOOL_EXIT_FAILURE;
  }
  clip_params_init (&params, &config, (guint32) seed, data);
  clip_params_views (&params, data, &weights);
  if (g_mkdir_with_parents (out_dir, 0755) != 0) {
    fprintf (stderr, "gst-clip: %s: cannot create the folder: %s\n", out_dir,
        g_strerror (errno));
    status = TOOL_EXIT_FAILURE;
  } else if (!clip_model_save (out_dir, &config, &weights, layout, dtype,
                 vocab_dir, &error)) {
    status = tool_fail (error);
  }
  if (status == TOOL_EXIT_OK)
    /* logit_scale included, as in the usual figures (ViT-B/32:
     * 151277313). */
    printf ("%s: %s, %" G_GSIZE_FORMAT " parameters, %s layout, %s\n", out_dir,
        arch->name, params.total, layout == CLIP_LAYOUT_HF ? "hf" : "openclip",
        dtype == CLIP_DTYPE_F16 ? "f16" : "f32");
  clip_param_layout_clear (&params);
  return status;
}
