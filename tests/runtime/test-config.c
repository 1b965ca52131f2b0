/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Config parsing: HF CLIPConfig and OpenCLIP model_cfg, their defaults,
 * preprocessing overrides, refused architectures, and validation. */
#include "model.h"
#include "reference.h"

#include <string.h>

static void
assert_tiny (const ClipConfig *c)
{
  g_assert_cmpint (c->vision.width, ==, 64);
  g_assert_cmpint (c->vision.layers, ==, 2);
  g_assert_cmpint (c->vision.heads, ==, 1);
  g_assert_cmpint (c->vision.mlp_width, ==, 256);
  g_assert_cmpfloat (c->vision.eps, ==, 1e-5f);
  g_assert_cmpint (c->vision.activation, ==, CLIP_ACTIVATION_QUICK_GELU);
  g_assert_cmpint (c->text.width, ==, 64);
  g_assert_cmpint (c->text.layers, ==, 2);
  g_assert_cmpint (c->text.heads, ==, 2);
  g_assert_cmpint (c->text.mlp_width, ==, 256);
  g_assert_cmpfloat (c->text.eps, ==, 1e-5f);
  g_assert_cmpint (c->text.activation, ==, CLIP_ACTIVATION_QUICK_GELU);
  g_assert_cmpint (c->embed_dim, ==, 32);
  g_assert_cmpint (c->image_size, ==, 224);
  g_assert_cmpint (c->patch_size, ==, 32);
  g_assert_cmpint (c->context_length, ==, 77);
  g_assert_cmpint (c->vocab_size, ==, 49408);
  g_assert_cmpint (clip_config_vision_tokens (c), ==, 50);
  const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
  const float std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
  g_assert_cmpmem (c->image_mean, sizeof mean, mean, sizeof mean);
  g_assert_cmpmem (c->image_std, sizeof std, std, sizeof std);
}

static void
test_reference_openai (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_ref_path ("models/tiny-openai");
  ClipConfig c;
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_config_load_dir (dir, &c, NULL, &error));
  g_assert_no_error (error);
  assert_tiny (&c);
}

static void
test_reference_hf (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_ref_path ("models/tiny-hf");
  ClipConfig c;
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_config_load_dir (dir, &c, NULL, &error));
  g_assert_no_error (error);
  assert_tiny (&c);
}

static gboolean
parse (const char *json, ClipConfig *c, GError **error)
{
  return clip_config_parse (json, -1, "test.json", c, error);
}

static ClipConfig
parse_ok (const char *json)
{
  ClipConfig c;
  g_autoptr (GError) error = NULL;
  if (!parse (json, &c, &error))
    g_error ("%s: %s", json, error->message);
  return c;
}

static void
assert_parse_fails (const char *json, int code, const char *fragment)
{
  ClipConfig c;
  g_autoptr (GError) error = NULL;
  g_assert_false (parse (json, &c, &error));
  g_assert_error (error, CLIP_ERROR, code);
  g_assert_true (g_str_has_prefix (error->message, "test.json: "));
  if (strstr (error->message, fragment) == NULL)
    g_error ("'%s' is not in '%s'", fragment, error->message);
}

/* Absent keys take transformers' CLIPConfig defaults (ViT-B/32). */
static void
test_hf_defaults (void)
{
  ClipConfig c = parse_ok ("{\"model_type\": \"clip\"}");
  ClipConfig b32;
  clip_config_init_default (&b32);
  g_assert_cmpmem (&c, sizeof c, &b32, sizeof b32);
  g_assert_cmpint (c.vision.width, ==, 768);
  g_assert_cmpint (c.vision.heads, ==, 12);
  g_assert_cmpint (c.text.width, ==, 512);
  g_assert_cmpint (c.text.heads, ==, 8);
  g_assert_cmpint (c.embed_dim, ==, 512);

  c = parse_ok (
      "{\"text_config\": {\"hidden_size\": 768, \"num_attention_heads\": 12, "
      "\"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-6},"
      " \"vision_config\": {\"patch_size\": 16, \"image_size\": 336.0}}");
  g_assert_cmpint (c.text.width, ==, 768);
  g_assert_cmpint (c.text.heads, ==, 12);
  g_assert_cmpint (c.text.mlp_width, ==, 2048);
  g_assert_cmpint (c.text.activation, ==, CLIP_ACTIVATION_GELU);
  g_assert_cmpfloat (c.text.eps, ==, 1e-6f);
  g_assert_cmpint (c.vision.activation, ==, CLIP_ACTIVATION_QUICK_GELU);
  g_assert_cmpint (c.patch_size, ==, 16);
  g_assert_cmpint (c.image_size, ==, 336);

  /* text_config_dict overrides text_config, as in transformers. */
  c = parse_ok (
      "{\"text_config\": {\"hidden_size\": 256, \"num_hidden_layers\": 3},"
      " \"text_config_dict\": {\"hidden_size\": 128}}");
  g_assert_cmpint (c.text.width, ==, 128);
  g_assert_cmpint (c.text.layers, ==, 3);
}

static void
test_hf_refused (void)
{
  assert_parse_fails ("{\"text_config\": {\"hidden_act\": \"gelu_new\"}}",
      CLIP_ERROR_UNSUPPORTED, "text_config.hidden_act 'gelu_new'");
  assert_parse_fails ("{\"model_type\": \"siglip\"}", CLIP_ERROR_UNSUPPORTED,
      "model_type 'siglip'");
  assert_parse_fails ("{\"vision_config\": {\"num_channels\": 1}}",
      CLIP_ERROR_UNSUPPORTED, "num_channels 1");
  assert_parse_fails ("{\"vision_config\": {\"hidden_size\": \"big\"}}",
      CLIP_ERROR_FORMAT, "vision_config.hidden_size is not an integer");
  assert_parse_fails ("{\"vision_config\": {\"patch_size\": 16.5}}",
      CLIP_ERROR_FORMAT, "vision_config.patch_size is not an integer");
  assert_parse_fails ("{\"text_config\": {\"layer_norm_eps\": \"small\"}}",
      CLIP_ERROR_FORMAT, "text_config.layer_norm_eps is not a number");
  assert_parse_fails ("{\"projection_dim\": 1e300}", CLIP_ERROR_FORMAT,
      "projection_dim is not an integer");
}

static void
test_openclip (void)
{
  /* The hub form: model_cfg plus preprocess_cfg; quick_gelu absent = GELU,
   * head_width and mlp_ratio by default 64 and 4. */
  ClipConfig c = parse_ok (
      "{\"model_cfg\": {\"embed_dim\": 512,"
      " \"vision_cfg\": {\"image_size\": 224, \"layers\": 12, \"width\": 768,"
      " \"patch_size\": 16},"
      " \"text_cfg\": {\"context_length\": 77, \"vocab_size\": 49408,"
      " \"width\": 512, \"heads\": 8, \"layers\": 12}},"
      " \"preprocess_cfg\": {\"mean\": [0.5, 0.5, 0.5], \"std\": [0.25, 0.5, 1]}}");
  g_assert_cmpint (c.vision.heads, ==, 12);
  g_assert_cmpint (c.vision.mlp_width, ==, 3072);
  g_assert_cmpint (c.vision.activation, ==, CLIP_ACTIVATION_GELU);
  g_assert_cmpint (c.text.activation, ==, CLIP_ACTIVATION_GELU);
  g_assert_cmpint (c.text.mlp_width, ==, 2048);
  g_assert_cmpint (c.patch_size, ==, 16);
  g_assert_cmpfloat (c.image_mean[1], ==, 0.5f);
  g_assert_cmpfloat (c.image_std[0], ==, 0.25f);
  g_assert_cmpfloat (c.image_std[2], ==, 1.0f);

  /* head_width, a fractional mlp_ratio, a square [h, w] image size,
   * norm_kwargs eps, image_mean/std in vision_cfg. */
  c = parse_ok (
      "{\"embed_dim\": 64, \"quick_gelu\": true,"
      " \"vision_cfg\": {\"image_size\": [336, 336], \"layers\": 2, \"width\": 128,"
      " \"head_width\": 32, \"mlp_ratio\": 4.5, \"patch_size\": 14,"
      " \"norm_kwargs\": {\"eps\": 1e-6}, \"image_mean\": [0.1, 0.2, 0.3],"
      " \"timm_model_name\": null, \"attentional_pool\": false, \"pool_type\": \"tok\"},"
      " \"text_cfg\": {\"width\": 64, \"heads\": 4, \"layers\": 1,"
      " \"hf_model_name\": null, \"proj_bias\": false}}");
  g_assert_cmpint (c.vision.heads, ==, 4);
  g_assert_cmpint (c.vision.mlp_width, ==, 576);
  g_assert_cmpint (c.image_size, ==, 336);
  g_assert_cmpint (c.patch_size, ==, 14);
  g_assert_cmpfloat (c.vision.eps, ==, 1e-6f);
  g_assert_cmpfloat (c.text.eps, ==, 1e-5f);
  g_assert_cmpfloat (c.image_mean[2], ==, 0.3f);
  g_assert_cmpint (c.vision.activation, ==, CLIP_ACTIVATION_QUICK_GELU);
  g_assert_cmpint (c.text.heads, ==, 4);
  g_assert_cmpint (c.context_length, ==, 77);
}

static void
test_openclip_refused (void)
{
  const int U = CLIP_ERROR_UNSUPPORTED;
  assert_parse_fails (
      "{\"embed_dim\": 1024, \"vision_cfg\": {\"layers\": [3, 4, 6, 3],"
      " \"width\": 64, \"patch_size\": null}}",
      U, "ResNet CLIP models are not supported");
  assert_parse_fails ("{\"model_cfg\": {\"embed_dim\": 512, \"vision_cfg\":"
                      " {\"timm_model_name\": \"convnext_base\"}}}",
      U, "vision_cfg.timm_model_name = \"convnext_base\" is not supported");
  assert_parse_fails ("{\"embed_dim\": 512, \"text_cfg\":"
                      " {\"hf_model_name\": \"xlm-roberta-base\"}}",
      U, "text_cfg.hf_model_name");
  assert_parse_fails ("{\"embed_dim\": 512, \"vision_cfg\":"
                      " {\"attentional_pool\": true}}",
      U, "vision_cfg.attentional_pool = true");
  assert_parse_fails ("{\"embed_dim\": 512, \"vision_cfg\":"
                      " {\"final_ln_after_pool\": true}}",
      U, "final_ln_after_pool");
  assert_parse_fails (
      "{\"embed_dim\": 512, \"vision_cfg\": {\"no_ln_pre\": true}}", U,
      "no_ln_pre");
  assert_parse_fails (
      "{\"embed_dim\": 512, \"vision_cfg\": {\"pool_type\": \"avg\"}}", U,
      "only \"tok\"");
  assert_parse_fails (
      "{\"embed_dim\": 512, \"text_cfg\": {\"ls_init_value\": 1e-5}}", U,
      "text_cfg.ls_init_value");
  assert_parse_fails ("{\"embed_dim\": 768, \"init_logit_bias\": -10}", U,
      "init_logit_bias");
  assert_parse_fails ("{\"embed_dim\": 512, \"vision_cfg\":"
                      " {\"image_size\": [224, 256]}}",
      U, "only a square size");
  assert_parse_fails ("{\"vision_cfg\": {\"width\": 768}}", CLIP_ERROR_CONFIG,
      "no embed_dim");
  assert_parse_fails ("{\"embed_dim\": 512, \"vision_cfg\": {\"width\": 100}}",
      CLIP_ERROR_CONFIG,
      "vision_cfg.width 100 is not a multiple of head_width 64");
  /* a width too large for its MLP is the width's fault, not the ratio's */
  assert_parse_fails ("{\"embed_dim\": 512, \"vision_cfg\":"
                      " {\"width\": 1000000000, \"head_width\": 1000}}",
      CLIP_ERROR_CONFIG, "vision_cfg.width 1000000000 is too large");
  assert_parse_fails ("{\"embed_dim\": 512, \"text_cfg\":"
                      " {\"width\": -512}}",
      CLIP_ERROR_CONFIG, "text_cfg.width -512 is");
  assert_parse_fails ("{\"embed_dim\": 512, \"vision_cfg\":"
                      " {\"mlp_ratio\": -4}}",
      CLIP_ERROR_FORMAT, "vision_cfg.mlp_ratio is not a ratio between 0 and");
  assert_parse_fails ("{\"embed_dim\": 512, \"quick_gelu\": 1}",
      CLIP_ERROR_FORMAT, "model_cfg.quick_gelu is not true or false");
  assert_parse_fails ("{\"embed_dim\": 512}, \"preprocess_cfg\": {}",
      CLIP_ERROR_FORMAT, "invalid JSON");
  assert_parse_fails ("{\"model_cfg\": {\"embed_dim\": 512},"
                      " \"preprocess_cfg\": {\"mean\": [0.5, 0.5]}}",
      CLIP_ERROR_FORMAT, "preprocess_cfg.mean is not a list of 3 numbers");
  assert_parse_fails ("{\"hello\": 1}", CLIP_ERROR_FORMAT,
      "neither a HuggingFace CLIPConfig");
  assert_parse_fails ("[]", CLIP_ERROR_FORMAT, "not a JSON object");
}

/* Each check of clip_config_validate, reached through a config file. */
static void
test_validation (void)
{
  const int C = CLIP_ERROR_CONFIG;
  assert_parse_fails ("{\"vision_config\": {\"hidden_size\": 0}}", C,
      "vision width is 0");
  assert_parse_fails ("{\"text_config\": {\"num_hidden_layers\": -2}}", C,
      "text layers is -2");
  assert_parse_fails ("{\"text_config\": {\"num_attention_heads\": 0}}", C,
      "text heads is 0");
  assert_parse_fails ("{\"vision_config\": {\"intermediate_size\": 0}}", C,
      "vision mlp_width is 0");
  assert_parse_fails ("{\"text_config\": {\"num_attention_heads\": 7}}", C,
      "text width 512 is not divisible by its 7 heads");
  assert_parse_fails ("{\"vision_config\": {\"layer_norm_eps\": 0}}", C,
      "vision LayerNorm eps 0");
  assert_parse_fails ("{\"vision_config\": {\"patch_size\": 30}}", C,
      "image_size 224 is not divisible by patch_size 30");
  assert_parse_fails ("{\"vision_config\": {\"patch_size\": 448}}", C,
      "patch_size is 448");
  assert_parse_fails ("{\"projection_dim\": 0}", C, "embed_dim is 0");
  assert_parse_fails ("{\"text_config\": {\"vocab_size\": 1000}}", C,
      "vocab_size is 1000, expected 49408..");
  assert_parse_fails ("{\"text_config\": {\"max_position_embeddings\": 1}}", C,
      "context_length is 1");
  assert_parse_fails ("{\"vision_config\": {\"hidden_size\": 100000000}}", C,
      "vision width is 100000000");
  assert_parse_fails (
      "{\"vision_config\": {\"image_size\": 100000, \"patch_size\": 1}}", C,
      "vision tokens");
  assert_parse_fails (
      "{\"embed_dim\": 8, \"preprocess_cfg\": {}, \"vision_cfg\":"
      " {\"image_std\": [0.5, 0, 0.5]}}",
      C, "channel 1");

  ClipConfig c;
  clip_config_init_default (&c);
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_config_validate (&c, &error));
  c.text.activation = 7;
  g_assert_false (clip_config_validate (&c, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG);
}

static void
write_file (const char *dir, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

static void
test_load_dir (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  ClipConfig c;
  g_autoptr (GError) error = NULL;
  g_assert_false (clip_config_load_dir (dir, &c, NULL, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_IO);
  g_assert_nonnull (
      strstr (error->message, "no config.json or open_clip_config.json"));
  g_clear_error (&error);

  /* open_clip_config.json when there is no config.json */
  write_file (dir, "open_clip_config.json",
      "{\"model_cfg\": {\"embed_dim\": 256,"
      " \"vision_cfg\": {\"width\": 128, \"layers\": 1, \"patch_size\": 32},"
      " \"text_cfg\": {\"width\": 128, \"heads\": 2, \"layers\": 1}}}");
  g_assert_true (clip_config_load_dir (dir, &c, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.embed_dim, ==, 256);

  /* HF preprocessor_config.json overrides mean/std; crop_size must agree. */
  write_file (dir, "config.json", "{\"projection_dim\": 128}");
  write_file (dir, "preprocessor_config.json",
      "{\"image_mean\": [0.5, 0.5, 0.5],"
      " \"image_std\": [0.5, 0.25, 0.125], \"crop_size\": {\"height\": 224, \"width\": 224}}");
  g_assert_true (clip_config_load_dir (dir, &c, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c.embed_dim, ==, 128);
  g_assert_cmpfloat (c.image_mean[0], ==, 0.5f);
  g_assert_cmpfloat (c.image_std[2], ==, 0.125f);

  write_file (dir, "preprocessor_config.json", "{\"crop_size\": 336}");
  g_assert_false (clip_config_load_dir (dir, &c, NULL, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG);
  g_assert_nonnull (
      strstr (error->message, "preprocessor_config.json: crop_size 336"));
  g_clear_error (&error);

  write_file (dir, "preprocessor_config.json", "{\"image_std\": [1, -1, 1]}");
  g_assert_false (clip_config_load_dir (dir, &c, NULL, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "preprocessor_config.json: "));
  g_clear_error (&error);

  write_file (dir, "preprocessor_config.json", "{oops");
  g_assert_false (clip_config_load_dir (dir, &c, NULL, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT);
  g_clear_error (&error);

  write_file (dir, "config.json", "");
  g_assert_false (clip_config_load_dir (dir, &c, NULL, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "config.json: "));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/config/reference/openai", test_reference_openai);
  g_test_add_func ("/config/reference/hf", test_reference_hf);
  g_test_add_func ("/config/hf/defaults", test_hf_defaults);
  g_test_add_func ("/config/hf/refused", test_hf_refused);
  g_test_add_func ("/config/openclip/values", test_openclip);
  g_test_add_func ("/config/openclip/refused", test_openclip_refused);
  g_test_add_func ("/config/validation", test_validation);
  g_test_add_func ("/config/load-dir", test_load_dir);
  return g_test_run ();
}
