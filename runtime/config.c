/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Model config: HF CLIPConfig or OpenCLIP model_cfg JSON into ClipConfig.
 *
 * A key that is absent takes the default its own library would use
 * (transformers' CLIPConfig, OpenCLIP's CLIPVisionCfg/CLIPTextCfg), so a
 * folder means here what it means there. Keys that select an architecture
 * we do not run are refused by name rather than silently ignored. */
#include "model.h"
#include "util.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

/* Large enough for any real CLIP, small enough that size products of a
 * validated config cannot overflow. */
#define MAX_SIZE 1000000
/* OpenCLIP's towers use 4 (ViT) to 4.9231 (ViT-bigG); beyond this a value
 * is a mistake. */
#define MAX_MLP_RATIO 64
#define MAX_VISION_TOKENS 100000

static const float openai_mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
static const float openai_std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };

void
clip_config_init_default (ClipConfig *config)
{
  /* ViT-B/32, which is also transformers' CLIPConfig default. */
  *config = (ClipConfig) {
    .vision = { 768, 12, 12, 3072, 1e-5f, CLIP_ACTIVATION_QUICK_GELU },
    .text = { 512, 12, 8, 2048, 1e-5f, CLIP_ACTIVATION_QUICK_GELU },
    .embed_dim = 512,
    .image_size = 224,
    .patch_size = 32,
    .context_length = 77,
    .vocab_size = 49408,
  };
  memcpy (config->image_mean, openai_mean, sizeof openai_mean);
  memcpy (config->image_std, openai_std, sizeof openai_std);
}

/* -------------------------------------------------------------- validate */

static gboolean
check_size (const char *field, gint64 value, gint64 min, gint64 max,
    GError **error)
{
  if (value >= min && value <= max)
    return TRUE;
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
      "%s is %" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT
      "..%" G_GINT64_FORMAT,
      field, value, min, max);
  return FALSE;
}

static gboolean
validate_tower (const char *tower, const ClipTowerConfig *t, GError **error)
{
  g_autofree char *width = g_strconcat (tower, " width", NULL);
  g_autofree char *layers = g_strconcat (tower, " layers", NULL);
  g_autofree char *heads = g_strconcat (tower, " heads", NULL);
  g_autofree char *mlp = g_strconcat (tower, " mlp_width", NULL);
  if (!check_size (width, t->width, 1, MAX_SIZE, error)
      || !check_size (layers, t->layers, 1, 10000, error)
      || !check_size (heads, t->heads, 1, MAX_SIZE, error)
      || !check_size (mlp, t->mlp_width, 1, MAX_SIZE, error))
    return FALSE;
  if (t->width % t->heads != 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%s width %d is not divisible by its %d heads", tower, t->width,
        t->heads);
    return FALSE;
  }
  if (!(t->eps > 0.0f && t->eps < 1.0f)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%s LayerNorm eps %g is not in (0, 1)", tower, t->eps);
    return FALSE;
  }
  if (t->activation != CLIP_ACTIVATION_QUICK_GELU
      && t->activation != CLIP_ACTIVATION_GELU) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%s activation %d is unknown", tower, t->activation);
    return FALSE;
  }
  return TRUE;
}

gboolean
clip_config_validate (const ClipConfig *c, GError **error)
{
  if (!validate_tower ("vision", &c->vision, error)
      || !validate_tower ("text", &c->text, error)
      || !check_size ("embed_dim", c->embed_dim, 1, MAX_SIZE, error)
      || !check_size ("image_size", c->image_size, 1, MAX_SIZE, error)
      || !check_size ("patch_size", c->patch_size, 1, c->image_size, error)
      /* room for <|startoftext|> and <|endoftext|> */
      || !check_size ("context_length", c->context_length, 2, MAX_SIZE, error)
      /* the tokenizer's ids go up to CLIP_TOKEN_END */
      || !check_size ("vocab_size", c->vocab_size, CLIP_TOKEN_END + 1, MAX_SIZE,
          error))
    return FALSE;
  if (c->image_size % c->patch_size != 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "image_size %d is not divisible by patch_size %d", c->image_size,
        c->patch_size);
    return FALSE;
  }
  gint64 grid = c->image_size / c->patch_size;
  if (!check_size ("the number of vision tokens", grid * grid + 1, 2,
          MAX_VISION_TOKENS, error))
    return FALSE;
  for (int i = 0; i < 3; i++) {
    if (!isfinite (c->image_mean[i]) || !isfinite (c->image_std[i])
        || !(c->image_std[i] > 0.0f)) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
          "image mean/std of channel %d (%g, %g): the mean must be finite and "
          "the std positive",
          i, c->image_mean[i], c->image_std[i]);
      return FALSE;
    }
  }
  return TRUE;
}

/* ---------------------------------------------------------- JSON reading */

/* The keys of one part of a config (e.g. "text_config"), looked up in one
 * or two objects in order: transformers lets text_config_dict override
 * text_config. */
typedef struct {
  const char *file;
  const char *label;
  JsonObject *objects[2];
} Section;

static JsonObject *
get_object (JsonObject *parent, const char *key)
{
  if (parent == NULL)
    return NULL;
  JsonNode *node = json_object_get_member (parent, key);
  return node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node)
                                               : NULL;
}

/* The member, or NULL when absent or null (both mean "the default"). */
static JsonNode *
section_get (const Section *s, const char *key)
{
  for (int i = 0; i < 2; i++) {
    if (s->objects[i] == NULL)
      continue;
    JsonNode *node = json_object_get_member (s->objects[i], key);
    if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
      return node;
  }
  return NULL;
}

static void
set_type_error (const Section *s, const char *key, const char *expected,
    GError **error)
{
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT, "%s: %s%s%s is not %s",
      s->file, s->label, *s->label ? "." : "", key, expected);
}

static gboolean
node_to_double (JsonNode *node, double *value)
{
  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  GType type = json_node_get_value_type (node);
  if (type != G_TYPE_INT64 && type != G_TYPE_DOUBLE)
    return FALSE;
  *value = json_node_get_double (node);
  return TRUE;
}

static gboolean
is_finite_number (double number)
{
  return isfinite (number);
}

/* 224.0 is accepted as 224, as Python would. */
static gboolean
is_int_number (double number)
{
  return number == floor (number) && fabs (number) <= G_MAXINT;
}

/* The key's number, or fallback when it is absent; when it is there but is
 * not a number that is_valid accepts, an error saying it is not expected. */
static gboolean
read_number (const Section *s, const char *key, double fallback,
    gboolean (*is_valid) (double), const char *expected, double *value,
    GError **error)
{
  JsonNode *node = section_get (s, key);
  *value = fallback;
  if (node != NULL && (!node_to_double (node, value) || !is_valid (*value))) {
    set_type_error (s, key, expected, error);
    return FALSE;
  }
  return TRUE;
}

static gboolean
read_double (const Section *s, const char *key, double fallback, double *value,
    GError **error)
{
  return read_number (s, key, fallback, is_finite_number, "a number", value,
      error);
}

static gboolean
read_int (const Section *s, const char *key, int fallback, int *value,
    GError **error)
{
  double number;
  if (!read_number (s, key, fallback, is_int_number, "an integer", &number,
          error))
    return FALSE;
  *value = (int) number;
  return TRUE;
}

/* A boolean or a string: *node is the value, or NULL when the key is absent. */
static gboolean
read_value (const Section *s, const char *key, GType type, JsonNode **node,
    GError **error)
{
  *node = section_get (s, key);
  if (*node != NULL
      && (!JSON_NODE_HOLDS_VALUE (*node)
          || json_node_get_value_type (*node) != type)) {
    set_type_error (s, key,
        type == G_TYPE_BOOLEAN ? "true or false" : "a string", error);
    return FALSE;
  }
  return TRUE;
}

static gboolean
read_bool (const Section *s, const char *key, gboolean fallback,
    gboolean *value, GError **error)
{
  JsonNode *node;
  if (!read_value (s, key, G_TYPE_BOOLEAN, &node, error))
    return FALSE;
  *value = node != NULL ? json_node_get_boolean (node) : fallback;
  return TRUE;
}

static gboolean
read_string (const Section *s, const char *key, const char *fallback,
    const char **value, GError **error)
{
  JsonNode *node;
  if (!read_value (s, key, G_TYPE_STRING, &node, error))
    return FALSE;
  *value = node != NULL ? json_node_get_string (node) : fallback;
  return TRUE;
}

/* Three numbers (mean or std); values is left alone when the key is absent. */
static gboolean
read_float3 (const Section *s, const char *key, float values[3], GError **error)
{
  JsonNode *node = section_get (s, key);
  if (node == NULL)
    return TRUE;
  JsonArray *array = JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node)
                                                  : NULL;
  double v[3];
  if (array == NULL || json_array_get_length (array) != 3
      || !node_to_double (json_array_get_element (array, 0), &v[0])
      || !node_to_double (json_array_get_element (array, 1), &v[1])
      || !node_to_double (json_array_get_element (array, 2), &v[2])) {
    set_type_error (s, key, "a list of 3 numbers (R, G, B)", error);
    return FALSE;
  }
  for (int i = 0; i < 3; i++)
    values[i] = (float) v[i];
  return TRUE;
}

/* A key that, set to anything but its default (null, false, an empty
 * object or the given string), selects an architecture we do not run. */
static gboolean
refuse_unless_default (const Section *s, const char *key,
    const char *default_string, GError **error)
{
  JsonNode *node = section_get (s, key);
  if (node == NULL)
    return TRUE;
  if (JSON_NODE_HOLDS_VALUE (node)) {
    GType type = json_node_get_value_type (node);
    if (type == G_TYPE_BOOLEAN && !json_node_get_boolean (node))
      return TRUE;
    if (type == G_TYPE_STRING && default_string != NULL
        && strcmp (json_node_get_string (node), default_string) == 0)
      return TRUE;
  }
  if (JSON_NODE_HOLDS_OBJECT (node)
      && json_object_get_size (json_node_get_object (node)) == 0)
    return TRUE;
  g_autofree char *text = json_to_string (node, FALSE);
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
      "%s: %s.%s = %s is not supported (only %s%s%s)", s->file, s->label, key,
      text, default_string ? "\"" : "",
      default_string ? default_string : "the standard ViT CLIP",
      default_string ? "\"" : "");
  return FALSE;
}

/* An OpenCLIP tower option we do not run, with the default we do run
 * (NULL: false, null or an empty object). */
typedef struct {
  const char *key;
  const char *default_string;
} UnsupportedOption;

static const UnsupportedOption vision_unsupported[] = {
  { "timm_model_name", NULL },
  { "attentional_pool", NULL },
  { "final_ln_after_pool", NULL },
  { "no_ln_pre", NULL },
  { "input_patchnorm", NULL },
  { "global_average_pool", NULL },
  { "ls_init_value", NULL },
  { "act_kwargs", NULL },
  { "pool_type", "tok" },
  { "pos_embed_type", "learnable" },
};

static const UnsupportedOption text_unsupported[] = {
  { "hf_model_name", NULL },
  { "hf_tokenizer_name", NULL },
  { "ls_init_value", NULL },
  { "embed_cls", NULL },
  { "no_causal_mask", NULL },
  { "proj_bias", NULL },
  { "act_kwargs", NULL },
  { "pool_type", "argmax" },
  { "proj_type", "linear" },
};

static gboolean
refuse_unsupported (const Section *s, const UnsupportedOption *options,
    gsize n_options, GError **error)
{
  for (gsize i = 0; i < n_options; i++)
    if (!refuse_unless_default (s, options[i].key, options[i].default_string,
            error))
      return FALSE;
  return TRUE;
}

static gboolean
read_activation (const Section *s, const char *key, ClipActivation *activation,
    GError **error)
{
  const char *name;
  if (!read_string (s, key, "quick_gelu", &name, error))
    return FALSE;
  if (strcmp (name, "quick_gelu") == 0) {
    *activation = CLIP_ACTIVATION_QUICK_GELU;
  } else if (strcmp (name, "gelu") == 0) {
    *activation = CLIP_ACTIVATION_GELU;
  } else {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "%s: %s.%s '%s' is not supported (quick_gelu or gelu)", s->file,
        s->label, key, name);
    return FALSE;
  }
  return TRUE;
}

/* -------------------------------------------------------------- HF form */

static gboolean
read_hf_tower (const Section *s, const ClipTowerConfig *defaults,
    ClipTowerConfig *t, GError **error)
{
  double eps;
  if (!read_int (s, "hidden_size", defaults->width, &t->width, error)
      || !read_int (s, "intermediate_size", defaults->mlp_width, &t->mlp_width,
          error)
      || !read_int (s, "num_hidden_layers", defaults->layers, &t->layers, error)
      || !read_int (s, "num_attention_heads", defaults->heads, &t->heads, error)
      || !read_double (s, "layer_norm_eps", defaults->eps, &eps, error)
      || !read_activation (s, "hidden_act", &t->activation, error))
    return FALSE;
  t->eps = (float) eps;
  return TRUE;
}

static gboolean
parse_hf (const char *file, JsonObject *root, ClipConfig *c, GError **error)
{
  ClipConfig defaults;
  clip_config_init_default (&defaults);
  Section top = { file, "", { root } };
  Section text = { file, "text_config",
    { get_object (root, "text_config_dict"),
        get_object (root, "text_config") } };
  Section vision = { file, "vision_config",
    { get_object (root, "vision_config_dict"),
        get_object (root, "vision_config") } };
  const char *model_type;
  int channels;
  if (!read_string (&top, "model_type", "clip", &model_type, error))
    return FALSE;
  if (strcmp (model_type, "clip") != 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "%s: model_type '%s' is not supported (only \"clip\", a CLIPModel)",
        file, model_type);
    return FALSE;
  }
  if (!read_int (&top, "projection_dim", defaults.embed_dim, &c->embed_dim,
          error)
      || !read_hf_tower (&text, &defaults.text, &c->text, error)
      || !read_int (&text, "max_position_embeddings", defaults.context_length,
          &c->context_length, error)
      || !read_int (&text, "vocab_size", defaults.vocab_size, &c->vocab_size,
          error)
      || !read_hf_tower (&vision, &defaults.vision, &c->vision, error)
      || !read_int (&vision, "image_size", defaults.image_size, &c->image_size,
          error)
      || !read_int (&vision, "patch_size", defaults.patch_size, &c->patch_size,
          error)
      || !read_int (&vision, "num_channels", 3, &channels, error))
    return FALSE;
  if (channels != 3) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "%s: vision_config.num_channels %d is not supported (only 3, RGB)",
        file, channels);
    return FALSE;
  }
  return TRUE;
}

/* -------------------------------------------------------- OpenCLIP form */

/* torch's LayerNorm default, which OpenCLIP keeps unless norm_kwargs says. */
#define OPENCLIP_LAYER_NORM_EPS 1e-5

static gboolean
read_openclip_eps (const Section *s, float *eps, GError **error)
{
  Section norm = { s->file, "norm_kwargs",
    { get_object (s->objects[0], "norm_kwargs") } };
  double value;
  if (!read_double (&norm, "eps", OPENCLIP_LAYER_NORM_EPS, &value, error))
    return FALSE;
  *eps = (float) value;
  return TRUE;
}

static gboolean
read_mlp_width (const Section *s, int width, int *mlp_width, GError **error)
{
  double ratio;
  if (!read_double (s, "mlp_ratio", 4.0, &ratio, error))
    return FALSE;
  if (!(ratio >= 0.0 && ratio <= MAX_MLP_RATIO)) {
    set_type_error (s, "mlp_ratio",
        "a ratio between 0 and " G_STRINGIFY (MAX_MLP_RATIO), error);
    return FALSE;
  }
  /* The ratio is sensible: a product out of range is the width's fault. */
  double product = width * ratio;
  if (width < 0 || product > MAX_SIZE) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%s: %s.width %d is %s (its MLP width, width x mlp_ratio %g, must be "
        "at most %d)",
        s->file, s->label, width, width < 0 ? "negative" : "too large", ratio,
        MAX_SIZE);
    return FALSE;
  }
  *mlp_width = (int) product; /* int(width * mlp_ratio), as OpenCLIP does */
  return TRUE;
}

/* image_size may be an int or a square [h, w]. */
static gboolean
read_image_size (const Section *s, int *size, GError **error)
{
  JsonNode *node = section_get (s, "image_size");
  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return read_int (s, "image_size", 224, size, error);
  JsonArray *array = json_node_get_array (node);
  double h, w;
  if (json_array_get_length (array) != 2
      || !node_to_double (json_array_get_element (array, 0), &h)
      || !node_to_double (json_array_get_element (array, 1), &w) || h != w
      || h != floor (h) || fabs (h) > G_MAXINT) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "%s: vision_cfg.image_size: only a square size is supported", s->file);
    return FALSE;
  }
  *size = (int) h;
  return TRUE;
}

static gboolean
parse_openclip_vision (const Section *s, ClipConfig *c, gboolean quick_gelu,
    GError **error)
{
  JsonNode *layers = section_get (s, "layers");
  if (layers != NULL && JSON_NODE_HOLDS_ARRAY (layers)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "%s: ResNet CLIP models are not supported (vision_cfg.layers is a "
        "list of stages); use a ViT model",
        s->file);
    return FALSE;
  }
  int head_width;
  ClipTowerConfig *t = &c->vision;
  if (!refuse_unsupported (s, vision_unsupported,
          G_N_ELEMENTS (vision_unsupported), error)
      || !read_int (s, "layers", 12, &t->layers, error)
      || !read_int (s, "width", 768, &t->width, error)
      || !read_int (s, "head_width", 64, &head_width, error)
      || !read_mlp_width (s, t->width, &t->mlp_width, error)
      || !read_int (s, "patch_size", 16, &c->patch_size, error)
      || !read_image_size (s, &c->image_size, error)
      || !read_openclip_eps (s, &t->eps, error)
      || !read_float3 (s, "image_mean", c->image_mean, error)
      || !read_float3 (s, "image_std", c->image_std, error))
    return FALSE;
  if (head_width <= 0 || t->width % head_width != 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%s: vision_cfg.width %d is not a multiple of head_width %d", s->file,
        t->width, head_width);
    return FALSE;
  }
  t->heads = t->width / head_width;
  t->activation = quick_gelu ? CLIP_ACTIVATION_QUICK_GELU
                             : CLIP_ACTIVATION_GELU;
  return TRUE;
}

static gboolean
parse_openclip_text (const Section *s, ClipConfig *c, gboolean quick_gelu,
    GError **error)
{
  ClipTowerConfig *t = &c->text;
  if (!refuse_unsupported (s, text_unsupported, G_N_ELEMENTS (text_unsupported),
          error)
      || !read_int (s, "context_length", 77, &c->context_length, error)
      || !read_int (s, "vocab_size", 49408, &c->vocab_size, error)
      || !read_int (s, "width", 512, &t->width, error)
      || !read_int (s, "heads", 8, &t->heads, error)
      || !read_int (s, "layers", 12, &t->layers, error)
      || !read_mlp_width (s, t->width, &t->mlp_width, error)
      || !read_openclip_eps (s, &t->eps, error))
    return FALSE;
  t->activation = quick_gelu ? CLIP_ACTIVATION_QUICK_GELU
                             : CLIP_ACTIVATION_GELU;
  return TRUE;
}

static gboolean
parse_openclip (const char *file, JsonObject *root, JsonObject *model_cfg,
    ClipConfig *c, GError **error)
{
  Section top = { file, "model_cfg", { model_cfg } };
  Section vision = { file, "vision_cfg",
    { get_object (model_cfg, "vision_cfg") } };
  Section text = { file, "text_cfg", { get_object (model_cfg, "text_cfg") } };
  Section preprocess = { file, "preprocess_cfg",
    { get_object (root, "preprocess_cfg") } };
  gboolean quick_gelu;
  if (section_get (&top, "embed_dim") == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%s: the OpenCLIP config has no embed_dim", file);
    return FALSE;
  }
  /* A logit bias means a sigmoid-loss (SigLIP) model, scored differently. */
  if (!refuse_unless_default (&top, "init_logit_bias", NULL, error)
      || !read_int (&top, "embed_dim", 0, &c->embed_dim, error)
      || !read_bool (&top, "quick_gelu", FALSE, &quick_gelu, error)
      || !parse_openclip_vision (&vision, c, quick_gelu, error)
      || !parse_openclip_text (&text, c, quick_gelu, error)
      || !read_float3 (&preprocess, "mean", c->image_mean, error)
      || !read_float3 (&preprocess, "std", c->image_std, error)
      || !read_float3 (&preprocess, "image_mean", c->image_mean, error)
      || !read_float3 (&preprocess, "image_std", c->image_std, error))
    return FALSE;
  return TRUE;
}

/* ----------------------------------------------------------------- files */

static JsonParser *
parse_json_object (const char *json_text, gssize length, const char *file,
    JsonObject **root, GError **error)
{
  JsonParser *parser = json_parser_new_immutable ();
  g_autoptr (GError) json_error = NULL;
  if (!json_parser_load_from_data (parser, json_text, length, &json_error)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT, "%s: invalid JSON: %s",
        file, json_error->message);
    g_object_unref (parser);
    return NULL;
  }
  JsonNode *node = json_parser_get_root (parser);
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT, "%s: not a JSON object",
        file);
    g_object_unref (parser);
    return NULL;
  }
  *root = json_node_get_object (node);
  return parser;
}

gboolean
clip_config_parse (const char *json_text, gssize length,
    const char *name_for_errors, ClipConfig *config, GError **error)
{
  const char *file = name_for_errors ? name_for_errors : "config";
  JsonObject *root;
  g_autoptr (JsonParser) parser = parse_json_object (json_text, length, file,
      &root, error);
  if (parser == NULL)
    return FALSE;

  ClipConfig c;
  clip_config_init_default (&c);
  JsonObject *model_cfg = get_object (root, "model_cfg");
  gboolean ok;
  if (model_cfg != NULL)
    ok = parse_openclip (file, root, model_cfg, &c, error);
  else if (json_object_has_member (root, "vision_cfg")
      || json_object_has_member (root, "text_cfg")
      || json_object_has_member (root, "embed_dim"))
    ok = parse_openclip (file, root, root, &c, error);
  else if (json_object_has_member (root, "text_config")
      || json_object_has_member (root, "vision_config")
      || json_object_has_member (root, "text_config_dict")
      || json_object_has_member (root, "vision_config_dict")
      || json_object_has_member (root, "projection_dim")
      || json_object_has_member (root, "model_type"))
    ok = parse_hf (file, root, &c, error);
  else {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: neither a HuggingFace CLIPConfig (text_config, vision_config) "
        "nor an OpenCLIP config (model_cfg, vision_cfg, text_cfg)",
        file);
    return FALSE;
  }
  if (!ok)
    return FALSE;
  if (!clip_config_validate (&c, error)) {
    g_prefix_error (error, "%s: ", file);
    return FALSE;
  }
  *config = c;
  return TRUE;
}

/* HF keeps mean/std and the crop size in preprocessor_config.json. */
static gboolean
apply_hf_preprocessor (const char *path, ClipConfig *config,
    GChecksum *checksum, GError **error)
{
  g_autofree char *text = NULL;
  gsize length;
  if (!clip_read_file (path, &text, &length, error))
    return FALSE;
  if (checksum != NULL)
    g_checksum_update (checksum, (const guchar *) text, length);
  JsonObject *root;
  g_autoptr (JsonParser) parser = parse_json_object (text, length, path, &root,
      error);
  if (parser == NULL)
    return FALSE;
  Section s = { path, "", { root } };
  ClipConfig c = *config;
  int crop = c.image_size;
  Section crop_dict = { path, "crop_size", { get_object (root, "crop_size") } };
  gboolean ok = read_float3 (&s, "image_mean", c.image_mean, error)
      && read_float3 (&s, "image_std", c.image_std, error)
      && (crop_dict.objects[0] != NULL
              ? read_int (&crop_dict, "height", crop, &crop, error)
              : read_int (&s, "crop_size", crop, &crop, error));
  if (!ok)
    return FALSE;
  if (crop != c.image_size) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%s: crop_size %d differs from the model's image_size %d", path, crop,
        c.image_size);
    return FALSE;
  }
  if (!clip_config_validate (&c, error)) {
    g_prefix_error (error, "%s: ", path);
    return FALSE;
  }
  *config = c;
  return TRUE;
}

gboolean
clip_config_load_dir (const char *dir, ClipConfig *config, GChecksum *checksum,
    GError **error)
{
  g_autofree char *hf_path = g_build_filename (dir, "config.json", NULL);
  g_autofree char *openclip_path = g_build_filename (dir,
      "open_clip_config.json", NULL);
  const char *path = g_file_test (hf_path, G_FILE_TEST_EXISTS) ? hf_path
      : g_file_test (openclip_path, G_FILE_TEST_EXISTS)        ? openclip_path
                                                               : NULL;
  if (path == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: no config.json or open_clip_config.json in the model folder", dir);
    return FALSE;
  }
  g_autofree char *text = NULL;
  gsize length;
  if (!clip_read_file (path, &text, &length, error))
    return FALSE;
  if (!clip_config_parse (text, length, path, config, error))
    return FALSE;
  if (checksum != NULL)
    g_checksum_update (checksum, (const guchar *) text, length);
  g_autofree char *preprocessor = g_build_filename (dir,
      "preprocessor_config.json", NULL);
  if (g_file_test (preprocessor, G_FILE_TEST_EXISTS))
    return apply_hf_preprocessor (preprocessor, config, checksum, error);
  return TRUE;
}
