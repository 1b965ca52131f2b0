/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vulkan-test.h"
#include "backend.h"
#include "vulkan/vk-device.h"

#include <math.h>
#include <string.h>

void
clip_vk_test_enable_validation (void)
{
  /* Before any Vulkan instance exists: layers are chosen at its creation. */
  if (!g_getenv ("CLIP_VULKAN_VALIDATION"))
    g_setenv ("CLIP_VULKAN_VALIDATION", "1", TRUE);
}

gboolean
clip_vk_test_have_device (void)
{
  if (clip_vulkan_count_devices () > 0)
    return TRUE;
  if (g_strcmp0 (g_getenv ("CI"), "true") == 0) {
    g_test_message (
        "no Vulkan device (CI=true needs lavapipe: mesa-vulkan-drivers)");
    g_test_fail ();
  } else {
    g_printerr ("\n*** SKIPPING: no Vulkan device ***\n");
    g_test_skip ("no Vulkan device");
  }
  return FALSE;
}

/* ------------------------------------------------------- a random model */

/* The shape of clip_vk_test_random_model_new's model (vulkan-test.h). */
static void
random_config (ClipConfig *c)
{
  /* CLIP's normalisation, and so on, from the default; then this shape. */
  clip_config_init_default (c);
  c->vision = (ClipTowerConfig) { 48, 2, 3, 192, 1e-5f, CLIP_ACTIVATION_GELU };
  c->text = (ClipTowerConfig) { 30, 2, 3, 120, 1e-5f,
    CLIP_ACTIVATION_QUICK_GELU };
  c->embed_dim = 24;
  c->image_size = 64;
  c->patch_size = 16;
  c->context_length = 20;
  c->vocab_size = 500;
}

static float *
random_array (RandomModel *rm, GRand *rand, gsize n, double mean, double scale)
{
  float *a = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    a[i] = (float) (mean + scale * g_rand_double_range (rand, -1.0, 1.0));
  g_ptr_array_add (rm->arrays, a);
  return a;
}

static ClipLayerWeights *
random_layers (RandomModel *rm, GRand *rand, const ClipTowerConfig *c)
{
  gsize W = c->width, M = c->mlp_width;
  ClipLayerWeights *layers = g_new0 (ClipLayerWeights, c->layers);
  g_ptr_array_add (rm->arrays, layers);
  for (int l = 0; l < c->layers; l++) {
    ClipLayerWeights *w = &layers[l];
    double s = 1.0 / sqrt ((double) W);
    w->ln1_w = random_array (rm, rand, W, 1.0, 0.2);
    w->ln1_b = random_array (rm, rand, W, 0.0, 0.2);
    w->q_w = random_array (rm, rand, W * W, 0.0, 2 * s);
    w->k_w = random_array (rm, rand, W * W, 0.0, 2 * s);
    w->v_w = random_array (rm, rand, W * W, 0.0, s);
    w->q_b = random_array (rm, rand, W, 0.0, 0.2);
    w->k_b = random_array (rm, rand, W, 0.0, 0.2);
    w->v_b = random_array (rm, rand, W, 0.0, 0.2);
    w->out_w = random_array (rm, rand, W * W, 0.0, s);
    w->out_b = random_array (rm, rand, W, 0.0, 0.1);
    w->ln2_w = random_array (rm, rand, W, 1.0, 0.2);
    w->ln2_b = random_array (rm, rand, W, 0.0, 0.2);
    w->fc1_w = random_array (rm, rand, M * W, 0.0, s);
    w->fc1_b = random_array (rm, rand, M, 0.0, 0.2);
    w->fc2_w = random_array (rm, rand, W * M, 0.0, 1.0 / sqrt ((double) M));
    w->fc2_b = random_array (rm, rand, W, 0.0, 0.1);
  }
  return layers;
}

RandomModel *
clip_vk_test_random_model_new (guint32 seed)
{
  RandomModel *rm = g_new0 (RandomModel, 1);
  rm->arrays = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  ClipModel *m = &rm->model;
  ClipConfig *c = &m->config;
  random_config (c);
  m->ref_count = 1;
  m->name = (char *) "random";
  gsize Wv = c->vision.width, Wt = c->text.width, P = c->patch_size;
  gsize T = clip_config_vision_tokens (c), E = c->embed_dim;
  ClipVisionWeights *v = &m->weights.vision;
  v->patch_w = random_array (rm, rand, Wv * 3 * P * P, 0.0, 0.05);
  v->class_emb = random_array (rm, rand, Wv, 0.0, 0.5);
  v->pos_emb = random_array (rm, rand, T * Wv, 0.0, 0.5);
  v->ln_pre_w = random_array (rm, rand, Wv, 1.0, 0.2);
  v->ln_pre_b = random_array (rm, rand, Wv, 0.0, 0.2);
  v->layers = random_layers (rm, rand, &c->vision);
  v->ln_post_w = random_array (rm, rand, Wv, 1.0, 0.2);
  v->ln_post_b = random_array (rm, rand, Wv, 0.0, 0.2);
  v->proj = random_array (rm, rand, E * Wv, 0.0, 0.2);
  ClipTextWeights *t = &m->weights.text;
  t->token_emb = random_array (rm, rand, c->vocab_size * Wt, 0.0, 0.5);
  t->pos_emb = random_array (rm, rand, c->context_length * Wt, 0.0, 0.5);
  t->layers = random_layers (rm, rand, &c->text);
  t->ln_final_w = random_array (rm, rand, Wt, 1.0, 0.2);
  t->ln_final_b = random_array (rm, rand, Wt, 0.0, 0.2);
  t->proj = random_array (rm, rand, E * Wt, 0.0, 0.2);
  return rm;
}

void
clip_vk_test_random_model_free (RandomModel *rm)
{
  g_ptr_array_unref (rm->arrays);
  g_free (rm);
}

ClipBackend *
clip_vk_test_open_with (const ClipModel *model,
    const ClipBackendOptions *options, GError **error)
{
  ClipWeightsView view;
  clip_weights_view_init (&view, model);
  ClipVulkanOptions vk;
  clip_vulkan_options_init (&vk, options);
  return clip_vulkan_backend_open (&view, &vk, error);
}

ClipBackend *
clip_vk_test_open (const ClipModel *model, gboolean f16, gboolean profile)
{
  ClipBackendOptions opts = CLIP_BACKEND_OPTIONS_INIT;
  opts.f16 = f16;
  opts.profile = profile;
  g_autoptr (GError) error = NULL;
  ClipBackend *b = clip_vk_test_open_with (model, &opts, &error);
  g_assert_no_error (error);
  return b;
}
