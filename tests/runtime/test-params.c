/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The parameter table (params.h): its tensors are exactly those of the
 * reference files in both layouts, the buffer layout is contiguous and
 * agrees with the named offsets, views and copies round-trip, and the
 * initialisation follows each row's rule. */
#include "params.h"
#include "reference.h"

#include <math.h>
#include <string.h>

static const ClipParamSpan *
span_at (const ClipParamLayout *layout, guint i)
{
  return &g_array_index (layout->spans, ClipParamSpan, i);
}

/* Every name the layout stores for the table, logit_scale included. */
static GHashTable *
table_names (const ClipParamLayout *layout, ClipLayout file_layout)
{
  GHashTable *names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      NULL);
  for (guint i = 0; i < layout->spans->len; i++) {
    const ClipParamSpan *span = span_at (layout, i);
    for (int p = 0; p < clip_param_span_n_stored (span, file_layout); p++) {
      char *name = clip_param_span_name (span, file_layout, p);
      g_assert_false (g_hash_table_contains (names, name));
      g_hash_table_add (names, name);
    }
  }
  return names;
}

/* The table names every float tensor of the reference files, and nothing
 * else (HF files also hold position_ids, integer buffers). */
static void
check_reference (const char *model, ClipLayout file_layout)
{
  g_autofree char *relative = g_build_filename ("models", model, NULL);
  g_autofree char *dir = clip_test_ref_path (relative);
  g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);
  g_autoptr (GError) error = NULL;
  ClipConfig config;
  g_assert_true (clip_config_load_dir (dir, &config, NULL, &error));
  g_assert_no_error (error);
  ClipSafetensors *st = clip_safetensors_open (path, &error);
  g_assert_no_error (error);

  ClipParamLayout layout;
  clip_param_layout_init (&layout, &config);
  g_autoptr (GHashTable) names = table_names (&layout, file_layout);
  guint n_floats = 0;
  for (guint i = 0; i < clip_safetensors_n_tensors (st); i++) {
    const ClipTensor *t = clip_safetensors_get (st, i);
    if (t->dtype != CLIP_DTYPE_F32)
      continue;
    g_assert_true (g_hash_table_contains (names, t->name));
    n_floats++;
  }
  g_assert_cmpuint (g_hash_table_size (names), ==, n_floats);

  /* Each tensor's stored shape, and the float count of the whole. */
  gint64 floats = 0;
  for (guint i = 0; i < layout.spans->len; i++) {
    const ClipParamSpan *span = span_at (&layout, i);
    for (int p = 0; p < clip_param_span_n_stored (span, file_layout); p++) {
      g_autofree char *name = clip_param_span_name (span, file_layout, p);
      const ClipTensor *t = clip_safetensors_find (st, name);
      gint64 shape[4];
      int n_dims = clip_param_span_shape (span, &config, file_layout, shape);
      g_assert_cmpint (t->n_dims, ==, n_dims);
      for (int d = 0; d < n_dims; d++)
        g_assert_cmpint (t->shape[d], ==, shape[d]);
      floats += t->n_elements;
    }
  }
  g_assert_cmpint (floats, ==, layout.total);
  clip_param_layout_clear (&layout);
  clip_safetensors_close (st);
}

static void
test_reference_files (void)
{
  if (!clip_test_reference ())
    return;
  check_reference ("tiny-hf", CLIP_LAYOUT_HF);
  check_reference ("tiny-openai", CLIP_LAYOUT_OPENAI);
}

/* OpenAI's ViT-B/32: its 151277313 parameters. */
static void
vit_b32 (ClipConfig *c)
{
  clip_config_init_default (c);
  c->embed_dim = 512;
  c->vision = (ClipTowerConfig) { 768, 12, 12, 3072, 1e-5f,
    CLIP_ACTIVATION_QUICK_GELU };
  c->text = (ClipTowerConfig) { 512, 12, 8, 2048, 1e-5f,
    CLIP_ACTIVATION_QUICK_GELU };
}

static void
tiny (ClipConfig *c)
{
  clip_config_init_default (c);
  c->embed_dim = 16;
  c->image_size = 32;
  c->patch_size = 8;
  c->context_length = 12;
  c->vocab_size = 40;
  c->vision = (ClipTowerConfig) { 24, 2, 2, 96, 1e-5f, CLIP_ACTIVATION_GELU };
  c->text = (ClipTowerConfig) { 16, 3, 2, 64, 1e-5f,
    CLIP_ACTIVATION_QUICK_GELU };
}

static void
test_layout (void)
{
  ClipConfig config;
  vit_b32 (&config);
  ClipParamLayout layout;
  clip_param_layout_init (&layout, &config);
  g_assert_cmpuint (layout.total, ==, 151277313);
  /* 8 vision, 5 text, logit_scale, 12 per block */
  g_assert_cmpuint (layout.spans->len, ==, 14 + 12 * 24);

  /* The spans tile the buffer; the named offsets are theirs. */
  gsize next = 0;
  for (guint i = 0; i < layout.spans->len; i++) {
    const ClipParamSpan *span = span_at (&layout, i);
    g_assert_cmpuint (span->offset, ==, next);
    g_assert_cmpuint (span->size % span->part_size, ==, 0);
    next += span->size;
  }
  g_assert_cmpuint (next, ==, layout.total);
  g_assert_cmpuint (layout.patch_w, ==, 0);
  g_assert_cmpuint (layout.logit_scale, ==, layout.total - 1);
  const ClipParamSpan *qkv = span_at (&layout, 5 + 2);
  g_assert_cmpstr (qkv->name, ==,
      "visual.transformer.resblocks.0.attn.in_proj_weight");
  g_assert_cmpuint (layout.vision_layers[0].qkv_w, ==, qkv->offset);
  g_assert_cmpuint (qkv->size, ==, 3 * 768 * 768);
  g_assert_cmpuint (layout.text_layers[11].fc2_b + 512, ==, layout.ln_final_w);

  /* HF stores q, k, v apart: two more tensors per group and block. */
  g_autoptr (GHashTable) hf = table_names (&layout, CLIP_LAYOUT_HF);
  g_autoptr (GHashTable) openai = table_names (&layout, CLIP_LAYOUT_OPENAI);
  g_assert_cmpuint (g_hash_table_size (openai), ==, layout.spans->len);
  g_assert_cmpuint (g_hash_table_size (hf), ==, layout.spans->len + 2 * 2 * 24);
  clip_param_layout_clear (&layout);
}

/* Views of a buffer are fused groups; copying them back gives the buffer. */
static void
test_views_and_copy (void)
{
  ClipConfig config;
  tiny (&config);
  ClipParamLayout layout;
  clip_param_layout_init (&layout, &config);
  g_autofree float *a = g_new (float, layout.total);
  g_autofree float *b = g_new0 (float, layout.total);
  clip_params_init (&layout, &config, 5, a);
  g_autofree ClipLayerWeights *vision = g_new0 (ClipLayerWeights, 2);
  g_autofree ClipLayerWeights *text = g_new0 (ClipLayerWeights, 3);
  ClipWeights weights = { .vision.layers = vision, .text.layers = text };
  clip_params_views (&layout, a, &weights);
  g_assert_true (weights.vision.patch_w == a);
  g_assert_true (text[2].qkv_fused);
  g_assert_true (text[2].k_w == text[2].q_w + 16 * 16);
  g_assert_true (text[2].q_w == a + layout.text_layers[2].qkv_w);
  g_assert_cmpfloat (weights.logit_scale, ==, a[layout.logit_scale]);
  clip_params_copy (&layout, &weights, b);
  g_assert_cmpmem (a, layout.total * sizeof (float), b,
      layout.total * sizeof (float));
  clip_param_layout_clear (&layout);
}

static double
std_of (const float *v, gsize n)
{
  double sum = 0.0, squares = 0.0;
  for (gsize i = 0; i < n; i++) {
    sum += v[i];
    squares += (double) v[i] * v[i];
  }
  return sqrt (squares / n - (sum / n) * (sum / n));
}

static float
max_abs (const float *v, gsize n)
{
  float m = 0.0f;
  for (gsize i = 0; i < n; i++)
    m = MAX (m, fabsf (v[i]));
  return m;
}

/* Each rule on a ViT-B/32 sized tower: CLIP's normals, PyTorch's uniform
 * bounds, constants; a seed is reproducible. */
static void
test_init (void)
{
  ClipConfig config;
  tiny (&config);
  config.vision.width = config.text.width = 256;
  config.vision.mlp_width = config.text.mlp_width = 1024;
  config.vision.heads = config.text.heads = 4;
  ClipParamLayout l;
  clip_param_layout_init (&l, &config);
  g_autofree float *p = g_new (float, l.total);
  g_autofree float *again = g_new (float, l.total);
  clip_params_init (&l, &config, 9, p);
  clip_params_init (&l, &config, 9, again);
  g_assert_cmpmem (p, l.total * sizeof (float), again,
      l.total * sizeof (float));

  /* layers: the text tower's, whose residual rules are checked */
  double w = 256, m = 1024, layers = 3, pixels = 3 * 8 * 8;
  const ClipBlockOffsets *vb = &l.vision_layers[1], *tb = &l.text_layers[0];
  struct {
    gsize offset, n;
    double std;   /* normal rules */
    double bound; /* uniform rules */
  } rules[] = {
    { l.token_emb, 40 * w, 0.02, 0 },
    { l.text_pos, 12 * w, 0.01, 0 },
    { tb->qkv_w, 3 * w * w, pow (w, -0.5), 0 },
    { tb->out_w, w * w, pow (w, -0.5) * pow (2 * layers, -0.5), 0 },
    { tb->fc1_w, m * w, pow (2 * w, -0.5), 0 },
    { tb->fc2_w, w * m, pow (w, -0.5) * pow (2 * layers, -0.5), 0 },
    { l.text_proj, 16 * w, pow (w, -0.5), 0 },
    { l.class_emb, w, pow (w, -0.5), 0 },
    { l.vision_pos, 17 * w, pow (w, -0.5), 0 },
    { l.vision_proj, 16 * w, pow (w, -0.5), 0 },
    { l.patch_w, w * pixels, 0, 1 / sqrt (pixels) },
    { vb->qkv_w, 3 * w * w, 0, sqrt (6 / (w + 3 * w)) },
    { vb->out_w, w * w, 0, 1 / sqrt (w) },
    { vb->fc1_w, m * w, 0, 1 / sqrt (w) },
    { vb->fc1_b, m, 0, 1 / sqrt (w) },
    { vb->fc2_w, w * m, 0, 1 / sqrt (m) },
    { tb->fc2_b, w, 0, 1 / sqrt (m) },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (rules); i++) {
    const float *v = p + rules[i].offset;
    gsize n = rules[i].n;
    if (rules[i].std > 0) {
      g_assert_cmpfloat (fabs (std_of (v, n) / rules[i].std - 1), <, 0.1);
    } else {
      g_assert_cmpfloat (max_abs (v, n), <=, rules[i].bound);
      g_assert_cmpfloat (max_abs (v, n), >, 0.9 * rules[i].bound);
    }
  }
  gsize zeros[] = { vb->qkv_b, vb->out_b, tb->qkv_b, tb->out_b, vb->ln1_b,
    l.ln_final_b };
  for (gsize i = 0; i < G_N_ELEMENTS (zeros); i++)
    g_assert_cmpfloat (max_abs (p + zeros[i], w), ==, 0.0f);
  gsize ones[] = { vb->ln2_w, tb->ln1_w, l.ln_pre_w, l.ln_post_w };
  for (gsize i = 0; i < G_N_ELEMENTS (ones); i++)
    for (gsize k = 0; k < w; k++)
      g_assert_cmpfloat (p[ones[i] + k], ==, 1.0f);
  g_assert_cmpfloat (p[l.logit_scale], ==, logf (1.0f / 0.07f));
  clip_param_layout_clear (&l);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/params/reference-files", test_reference_files);
  g_test_add_func ("/params/layout", test_layout);
  g_test_add_func ("/params/views-and-copy", test_views_and_copy);
  g_test_add_func ("/params/init", test_init);
  return g_test_run ();
}
