/* gst-clip random-model: a model folder with random weights and the real
 * sizes of a CLIP architecture, for benchmarks and tests. */
#include "commands.h"
#include "model.h"

#include <errno.h>
#include <math.h>
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

/* The weights live in one allocation that the views are carved from, in
 * a fixed order, so that a seed always gives the same model in either
 * layout and dtype. */
typedef struct {
  GRand *rand;
  float *next;
  gboolean have_spare; /* Box-Muller makes normals in pairs */
  float spare;
} Filler;

/* Box-Muller in float with one 32-bit draw per uniform: the transcendental
 * functions are most of the time of a ViT-B/32's 151M draws, and float is
 * precise enough for random weights. */
static float
next_normal (Filler *f)
{
  if (f->have_spare) {
    f->have_spare = FALSE;
    return f->spare;
  }
  /* u1 in (0, 1] keeps the log finite */
  float u1 = (float) ((g_rand_int (f->rand) + 1.0) / 4294967296.0);
  float u2 = (float) (g_rand_int (f->rand) / 4294967296.0);
  float r = sqrtf (-2.0f * logf (u1));
  f->spare = r * sinf (2.0f * (float) G_PI * u2);
  f->have_spare = TRUE;
  return r * cosf (2.0f * (float) G_PI * u2);
}

static const float *
take_normal (Filler *f, gsize n, double std)
{
  float *v = f->next;
  for (gsize i = 0; i < n; i++)
    v[i] = (float) std * next_normal (f);
  f->next += n;
  return v;
}

/* PyTorch's default for nn.Linear/nn.Conv2d: uniform in +-1/sqrt(fan_in). */
static const float *
take_uniform (Filler *f, gsize n, int fan_in)
{
  double bound = 1.0 / sqrt (fan_in);
  float *v = f->next;
  for (gsize i = 0; i < n; i++)
    v[i] = (float) g_rand_double_range (f->rand, -bound, bound);
  f->next += n;
  return v;
}

static const float *
take_constant (Filler *f, gsize n, float value)
{
  float *v = f->next;
  for (gsize i = 0; i < n; i++)
    v[i] = value;
  f->next += n;
  return v;
}

static gsize
layer_floats (const ClipTowerConfig *t)
{
  gsize w = t->width, m = t->mlp_width;
  return 4 * (w * w + w) + 2 * m * w + m + w + 4 * w;
}

static gsize
model_floats (const ClipConfig *c)
{
  gsize vw = c->vision.width, tw = c->text.width, e = c->embed_dim;
  gsize p = c->patch_size, t = clip_config_vision_tokens (c);
  return vw * 3 * p * p + vw + t * vw + 4 * vw + e * vw
      + c->vision.layers * layer_floats (&c->vision)
      + (gsize) c->vocab_size * tw + (gsize) c->context_length * tw + 2 * tw
      + e * tw + c->text.layers * layer_floats (&c->text);
}

/* OpenAI's initialize_parameters() rules for a transformer's blocks:
 * attention in_proj std width^-0.5, out_proj and c_proj
 * width^-0.5 * (2 layers)^-0.5, c_fc (2 width)^-0.5; attention biases 0
 * (nn.MultiheadAttention's init), MLP biases PyTorch's default. Applied to
 * both towers (OpenAI leaves the vision blocks at PyTorch's defaults, which
 * have about the same scale). */
static ClipLayerWeights *
fill_layers (Filler *f, const ClipTowerConfig *t)
{
  gsize w = t->width, m = t->mlp_width;
  double attn_std = pow (w, -0.5);
  double proj_std = attn_std * pow (2.0 * t->layers, -0.5);
  double fc_std = pow (2.0 * w, -0.5);
  ClipLayerWeights *layers = g_new0 (ClipLayerWeights, t->layers);
  for (int i = 0; i < t->layers; i++) {
    ClipLayerWeights *l = &layers[i];
    l->ln1_w = take_constant (f, w, 1.0f);
    l->ln1_b = take_constant (f, w, 0.0f);
    l->q_w = take_normal (f, w * w, attn_std);
    l->k_w = take_normal (f, w * w, attn_std);
    l->v_w = take_normal (f, w * w, attn_std);
    l->q_b = take_constant (f, w, 0.0f);
    l->k_b = take_constant (f, w, 0.0f);
    l->v_b = take_constant (f, w, 0.0f);
    l->out_w = take_normal (f, w * w, proj_std);
    l->out_b = take_constant (f, w, 0.0f);
    l->ln2_w = take_constant (f, w, 1.0f);
    l->ln2_b = take_constant (f, w, 0.0f);
    l->fc1_w = take_normal (f, m * w, fc_std);
    l->fc1_b = take_uniform (f, m, w);
    l->fc2_w = take_normal (f, w * m, proj_std);
    l->fc2_b = take_uniform (f, w, m);
  }
  return layers;
}

/* Vision embeddings and projection as OpenAI's VisionTransformer draws
 * them (width^-0.5 * randn), conv1 PyTorch's default; text as
 * initialize_parameters(): token std 0.02, positions 0.01, projection
 * width^-0.5. LayerNorms 1 and 0; logit_scale ln(1/0.07). */
static float *
fill_weights (const ClipConfig *c, guint32 seed, ClipWeights *w)
{
  gsize vw = c->vision.width, tw = c->text.width, e = c->embed_dim;
  gsize p = c->patch_size, t = clip_config_vision_tokens (c);
  gsize total = model_floats (c);
  float *data = g_try_new (float, total);
  if (data == NULL)
    return NULL;
  Filler f = { .rand = g_rand_new_with_seed (seed), .next = data };
  double vscale = pow (vw, -0.5);

  ClipVisionWeights *v = &w->vision;
  v->patch_w = take_uniform (&f, vw * 3 * p * p, 3 * p * p);
  v->class_emb = take_normal (&f, vw, vscale);
  v->pos_emb = take_normal (&f, t * vw, vscale);
  v->ln_pre_w = take_constant (&f, vw, 1.0f);
  v->ln_pre_b = take_constant (&f, vw, 0.0f);
  v->layers = fill_layers (&f, &c->vision);
  v->ln_post_w = take_constant (&f, vw, 1.0f);
  v->ln_post_b = take_constant (&f, vw, 0.0f);
  v->proj = take_normal (&f, e * vw, vscale);

  ClipTextWeights *x = &w->text;
  x->token_emb = take_normal (&f, (gsize) c->vocab_size * tw, 0.02);
  x->pos_emb = take_normal (&f, (gsize) c->context_length * tw, 0.01);
  x->layers = fill_layers (&f, &c->text);
  x->ln_final_w = take_constant (&f, tw, 1.0f);
  x->ln_final_b = take_constant (&f, tw, 0.0f);
  x->proj = take_normal (&f, e * tw, pow (tw, -0.5));

  w->logit_scale = logf (1.0f / 0.07f);
  g_assert ((gsize) (f.next - data) == total);
  g_rand_free (f.rand);
  return data;
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

  g_autoptr (GOptionContext) ctx = g_option_context_new ("");
  g_option_context_set_summary (ctx,
      "Writes a model folder with random weights and the real sizes of a CLIP\n"
      "architecture, initialised as OpenAI's code does, from a seeded\n"
      "generator: the same seed gives the same weights in any layout and dtype.");
  g_option_context_set_description (ctx,
      "Architectures: ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336 (OpenAI's\n"
      "sizes, QuickGELU), tiny (the reference data's tiny model: width 64,\n"
      "2 layers, embed 32).\n");
  const GOptionEntry entries[] = {
    { "arch", 'a', 0, G_OPTION_ARG_STRING, &arch_name,
      "Architecture (see below)", "NAME" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out_dir,
      "Output folder (created)", "DIR" },
    { "layout", 0, 0, G_OPTION_ARG_STRING, &layout_name,
      "hf (config.json, HuggingFace names; default) or openclip "
      "(open_clip_config.json, OpenAI names)", "hf|openclip" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_name,
      "Weight type in model.safetensors (default f32)", "f32|f16" },
    { "seed", 's', 0, G_OPTION_ARG_INT64, &seed,
      "Random seed (default 1)", "N" },
    { "vocab", 0, 0, G_OPTION_ARG_FILENAME, &vocab_dir,
      "Copy vocab.json + merges.txt from this folder into the model", "DIR" },
    { NULL },
  };
  g_option_context_add_main_entries (ctx, entries, NULL);

  if (!tool_parse (ctx, &argc, &argv, &status))
    return status;
  if (argc > 1)
    return tool_usage_error ("random-model", "unexpected argument '%s'",
        argv[1]);
  if (arch_name == NULL || out_dir == NULL)
    return tool_usage_error ("random-model", "--arch and --out are required");
  const Architecture *arch = find_architecture (arch_name);
  if (arch == NULL)
    return tool_usage_error ("random-model", "--arch: unknown architecture "
        "'%s' (ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336 or tiny)", arch_name);
  ClipLayout layout;
  if (layout_name == NULL || strcmp (layout_name, "hf") == 0)
    layout = CLIP_LAYOUT_HF;
  else if (strcmp (layout_name, "openclip") == 0)
    layout = CLIP_LAYOUT_OPENAI;
  else
    return tool_usage_error ("random-model", "--layout: '%s' is neither hf "
        "nor openclip", layout_name);
  ClipDType dtype;
  if (dtype_name == NULL || strcmp (dtype_name, "f32") == 0)
    dtype = CLIP_DTYPE_F32;
  else if (strcmp (dtype_name, "f16") == 0)
    dtype = CLIP_DTYPE_F16;
  else
    return tool_usage_error ("random-model", "--dtype: '%s' is neither f32 "
        "nor f16", dtype_name);
  if (seed < 0 || seed > G_MAXUINT32)
    return tool_usage_error ("random-model", "--seed: %" G_GINT64_FORMAT
        " is outside 0..%u", seed, G_MAXUINT32);

  ClipConfig config;
  config_for_architecture (arch, &config);
  GError *error = NULL;
  if (!clip_config_validate (&config, &error))
    return tool_fail (error);

  ClipWeights weights = { 0 };
  g_autofree float *data = fill_weights (&config, (guint32) seed, &weights);
  if (data == NULL) {
    fprintf (stderr, "gst-clip: not enough memory for the %s weights "
        "(%" G_GSIZE_FORMAT " MB)\n", arch->name,
        model_floats (&config) * sizeof (float) >> 20);
    return TOOL_EXIT_FAILURE;
  }
  if (g_mkdir_with_parents (out_dir, 0755) != 0) {
    fprintf (stderr, "gst-clip: %s: cannot create the folder: %s\n", out_dir,
        g_strerror (errno));
    status = TOOL_EXIT_FAILURE;
  } else if (!clip_model_save (out_dir, &config, &weights, layout, dtype,
          vocab_dir, &error)) {
    status = tool_fail (error);
  }
  if (status == TOOL_EXIT_OK)
    /* + 1: logit_scale, so that the count matches the usual figures
     * (ViT-B/32: 151277313). */
    printf ("%s: %s, %" G_GSIZE_FORMAT " parameters, %s layout, %s\n",
        out_dir, arch->name, model_floats (&config) + 1,
        layout == CLIP_LAYOUT_HF ? "hf" : "openclip",
        dtype == CLIP_DTYPE_F16 ? "f16" : "f32");
  g_free (weights.vision.layers);
  g_free (weights.text.layers);
  return status;
}
