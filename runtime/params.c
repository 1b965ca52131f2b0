/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The parameter table (see params.h) and what iterates it generically:
 * the parameter buffer's layout, names, shapes, views and initialisation.
 *
 * The initialisation is CLIP's (openai/CLIP, clip/model.py) for a ViT:
 * CLIP.initialize_parameters() draws the token embedding N(0, 0.02), the
 * text positions N(0, 0.01), and in each *text* block in_proj N(0, W^-0.5),
 * out_proj and c_proj N(0, W^-0.5 (2 layers)^-0.5), c_fc N(0, (2 W)^-0.5),
 * and text_projection N(0, W^-0.5). VisionTransformer draws its
 * class_embedding, positional_embedding and proj as W^-0.5 * randn.
 * Everything else keeps PyTorch's defaults: nn.MultiheadAttention's
 * in_proj_weight Xavier-uniform over the whole [3W, W] (vision blocks) and
 * in_proj_bias and out_proj.bias 0; nn.Linear's kaiming_uniform(a=sqrt(5))
 * weights and biases, both U(+-1/sqrt(fan_in)) (vision out_proj, c_fc,
 * c_proj; the MLP biases of both towers); nn.Conv2d's the same for conv1
 * (fan_in 3 P P); LayerNorms 1 and 0; logit_scale ln(1/0.07). */
#include "params.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define TOWER_VIEW(field) offsetof (ClipWeights, field)
#define BLOCK_VIEW(field) offsetof (ClipLayerWeights, field)
#define TOWER_OFFSET(field) offsetof (ClipParamLayout, field)
#define BLOCK_OFFSET(field) offsetof (ClipBlockOffsets, field)
#define BOTH(rule) \
  {                \
    rule, rule     \
  }

#define W CLIP_DIM_WIDTH
#define M CLIP_DIM_MLP

/* One row per tensor, in parameter-buffer order within its scope. */
static const ClipParam params[] = {
  { .scope = CLIP_SCOPE_VISION,
      .hf_names = { "vision_model.embeddings.patch_embedding.weight" },
      .openai_name = "visual.conv1.weight",
      .shape = { W, CLIP_DIM_RGB, CLIP_DIM_PATCH, CLIP_DIM_PATCH },
      .matrix = TRUE,
      .decay = TRUE,
      .init = BOTH (CLIP_INIT_UNIFORM_FAN_IN),
      .fan_in = CLIP_DIM_PIXELS,
      .view = { TOWER_VIEW (vision.patch_w) },
      .offset_field = TOWER_OFFSET (patch_w) },
  { .scope = CLIP_SCOPE_VISION,
      .hf_names = { "vision_model.embeddings.class_embedding" },
      .openai_name = "visual.class_embedding",
      .shape = { W },
      .init = BOTH (CLIP_INIT_NORMAL_WIDTH),
      .view = { TOWER_VIEW (vision.class_emb) },
      .offset_field = TOWER_OFFSET (class_emb) },
  { .scope = CLIP_SCOPE_VISION,
      .hf_names = { "vision_model.embeddings.position_embedding.weight" },
      .openai_name = "visual.positional_embedding",
      .shape = { CLIP_DIM_TOKENS, W },
      .init = BOTH (CLIP_INIT_NORMAL_WIDTH),
      .view = { TOWER_VIEW (vision.pos_emb) },
      .offset_field = TOWER_OFFSET (vision_pos) },
  { .scope = CLIP_SCOPE_VISION,
      .hf_names = { "vision_model.pre_layrnorm.weight" },
      .openai_name = "visual.ln_pre.weight",
      .shape = { W },
      .init = BOTH (CLIP_INIT_ONES),
      .view = { TOWER_VIEW (vision.ln_pre_w) },
      .offset_field = TOWER_OFFSET (ln_pre_w) },
  { .scope = CLIP_SCOPE_VISION,
      .hf_names = { "vision_model.pre_layrnorm.bias" },
      .openai_name = "visual.ln_pre.bias",
      .shape = { W },
      .init = BOTH (CLIP_INIT_ZEROS),
      .view = { TOWER_VIEW (vision.ln_pre_b) },
      .offset_field = TOWER_OFFSET (ln_pre_b) },
  { .scope = CLIP_SCOPE_VISION,
      .after_blocks = TRUE,
      .hf_names = { "vision_model.post_layernorm.weight" },
      .openai_name = "visual.ln_post.weight",
      .shape = { W },
      .init = BOTH (CLIP_INIT_ONES),
      .view = { TOWER_VIEW (vision.ln_post_w) },
      .offset_field = TOWER_OFFSET (ln_post_w) },
  { .scope = CLIP_SCOPE_VISION,
      .after_blocks = TRUE,
      .hf_names = { "vision_model.post_layernorm.bias" },
      .openai_name = "visual.ln_post.bias",
      .shape = { W },
      .init = BOTH (CLIP_INIT_ZEROS),
      .view = { TOWER_VIEW (vision.ln_post_b) },
      .offset_field = TOWER_OFFSET (ln_post_b) },
  { .scope = CLIP_SCOPE_VISION,
      .after_blocks = TRUE,
      .hf_names = { "visual_projection.weight" },
      .openai_name = "visual.proj",
      .shape = { CLIP_DIM_EMBED, W },
      .openai_transposed = TRUE,
      .matrix = TRUE,
      .decay = TRUE,
      .init = BOTH (CLIP_INIT_NORMAL_WIDTH),
      .view = { TOWER_VIEW (vision.proj) },
      .offset_field = TOWER_OFFSET (vision_proj) },

  { .scope = CLIP_SCOPE_TEXT,
      .hf_names = { "text_model.embeddings.token_embedding.weight" },
      .openai_name = "token_embedding.weight",
      .shape = { CLIP_DIM_VOCAB, W },
      .by_token = TRUE,
      .init = BOTH (CLIP_INIT_NORMAL_TOKEN),
      .view = { TOWER_VIEW (text.token_emb) },
      .offset_field = TOWER_OFFSET (token_emb) },
  { .scope = CLIP_SCOPE_TEXT,
      .hf_names = { "text_model.embeddings.position_embedding.weight" },
      .openai_name = "positional_embedding",
      .shape = { CLIP_DIM_CONTEXT, W },
      .init = BOTH (CLIP_INIT_NORMAL_CONTEXT),
      .view = { TOWER_VIEW (text.pos_emb) },
      .offset_field = TOWER_OFFSET (text_pos) },
  { .scope = CLIP_SCOPE_TEXT,
      .after_blocks = TRUE,
      .hf_names = { "text_model.final_layer_norm.weight" },
      .openai_name = "ln_final.weight",
      .shape = { W },
      .init = BOTH (CLIP_INIT_ONES),
      .view = { TOWER_VIEW (text.ln_final_w) },
      .offset_field = TOWER_OFFSET (ln_final_w) },
  { .scope = CLIP_SCOPE_TEXT,
      .after_blocks = TRUE,
      .hf_names = { "text_model.final_layer_norm.bias" },
      .openai_name = "ln_final.bias",
      .shape = { W },
      .init = BOTH (CLIP_INIT_ZEROS),
      .view = { TOWER_VIEW (text.ln_final_b) },
      .offset_field = TOWER_OFFSET (ln_final_b) },
  { .scope = CLIP_SCOPE_TEXT,
      .after_blocks = TRUE,
      .hf_names = { "text_projection.weight" },
      .openai_name = "text_projection",
      .shape = { CLIP_DIM_EMBED, W },
      .openai_transposed = TRUE,
      .matrix = TRUE,
      .decay = TRUE,
      .init = BOTH (CLIP_INIT_NORMAL_WIDTH),
      .view = { TOWER_VIEW (text.proj) },
      .offset_field = TOWER_OFFSET (text_proj) },

  /* A scalar with no view: ClipWeights holds its value. */
  { .scope = CLIP_SCOPE_MODEL,
      .hf_names = { "logit_scale" },
      .openai_name = "logit_scale",
      .init = BOTH (CLIP_INIT_LOGIT_SCALE),
      .offset_field = TOWER_OFFSET (logit_scale) },

  /* The residual blocks: x += attn(ln_1(x)); x += mlp(ln_2(x)). Where the
   * two towers differ, the vision rule comes first (PyTorch's defaults),
   * then the text rule (initialize_parameters'). */
  { .scope = CLIP_SCOPE_BLOCK,
      .hf_names = { "layer_norm1.weight" },
      .openai_name = "ln_1.weight",
      .shape = { W },
      .init = BOTH (CLIP_INIT_ONES),
      .view = { BLOCK_VIEW (ln1_w) },
      .offset_field = BLOCK_OFFSET (ln1_w) },
  { .scope = CLIP_SCOPE_BLOCK,
      .hf_names = { "layer_norm1.bias" },
      .openai_name = "ln_1.bias",
      .shape = { W },
      .init = BOTH (CLIP_INIT_ZEROS),
      .view = { BLOCK_VIEW (ln1_b) },
      .offset_field = BLOCK_OFFSET (ln1_b) },
  { .scope = CLIP_SCOPE_BLOCK,
      .hf_names = { "self_attn.q_proj.weight", "self_attn.k_proj.weight",
          "self_attn.v_proj.weight" },
      .openai_name = "attn.in_proj_weight",
      .n_parts = 3,
      .shape = { W, W },
      .matrix = TRUE,
      .decay = TRUE,
      .init = { CLIP_INIT_XAVIER, CLIP_INIT_NORMAL_WIDTH },
      .fan_in = W,
      .view = { BLOCK_VIEW (q_w), BLOCK_VIEW (k_w), BLOCK_VIEW (v_w) },
      .fused_flag = BLOCK_VIEW (qkv_fused),
      .offset_field = BLOCK_OFFSET (qkv_w) },
  { .scope = CLIP_SCOPE_BLOCK,
      .hf_names = { "self_attn.q_proj.bias", "self_attn.k_proj.bias",
          "self_attn.v_proj.bias" },
      .openai_name = "attn.in_proj_bias",
      .n_parts = 3,
      .shape = { W },
      .init = BOTH (CLIP_INIT_ZEROS),
      .view = { BLOCK_VIEW (q_b), BLOCK_VIEW (k_b), BLOCK_VIEW (v_b) },
      .fused_flag = BLOCK_VIEW (qkv_fused),
      .offset_field = BLOCK_OFFSET (qkv_b) },
  { .scope = CLIP_SCOPE_BLOCK,
      .hf_names = { "self_attn.out_proj.weight" },
      .openai_name = "attn.out_proj.weight",
      .shape = { W, W },
      .matrix = TRUE,
      .decay = TRUE,
      .init = { CLIP_INIT_UNIFORM_FAN_IN, CLIP_INIT_NORMAL_RESIDUAL },
      .fan_in = W,
      .view = { BLOCK_VIEW (out_w) },
      .offset_field = BLOCK_OFFSET (out_w) },
  { .scope = CLIP_SCOPE_BLOCK,
      .hf_names = { "self_attn.out_proj.bias" },
      .openai_name = "attn.out_proj.bias",
      .shape = { W },
      .init = BOTH (CLIP_INIT_ZEROS),
      .view = { BLOCK_VIEW (out_b) },
      .offset_field = BLOCK_OFFSET (out_b) },
  { .scope = CLIP_SCOPE_BLOCK,
      .hf_names = { "layer_norm2.weight" },
      .openai_name = "ln_2.weight",
      .shape = { W },
      .init = BOTH (CLIP_INIT_ONES),
      .view = { BLOCK_VIEW (ln2_w) },
      .offset_field = BLOCK_OFFSET (ln2_w) },
  { .scope = CLIP_SCOPE_BLOCK,
      .hf_names = { "layer_norm2.bias" },
      .openai_name = "ln_2.bias",
      .shape = { W },
      .init = BOTH (CLIP_INIT_ZEROS),
      .view = { BLOCK_VIEW (ln2_b) },
      .offset_field = BLOCK_OFFSET (ln2_b) },
  { .scope = CLIP_SCOPE_BLOCK,
      .hf_names = { "mlp.fc1.weight" },
      .openai_name = "mlp.c_fc.weight",
      .shape = { M, W },
      .matrix = TRUE,
      .decay = TRUE,
      .init = { CLIP_INIT_UNIFORM_FAN_IN, CLIP_INIT_NORMAL_FC },
      .fan_in = W,
      .view = { BLOCK_VIEW (fc1_w) },
      .offset_field = BLOCK_OFFSET (fc1_w) },
  { .scope = CLIP_SCOPE_BLOCK,
      .hf_names = { "mlp.fc1.bias" },
      .openai_name = "mlp.c_fc.bias",
      .shape = { M },
      .init = BOTH (CLIP_INIT_UNIFORM_FAN_IN),
      .fan_in = W,
      .view = { BLOCK_VIEW (fc1_b) },
      .offset_field = BLOCK_OFFSET (fc1_b) },
  { .scope = CLIP_SCOPE_BLOCK,
      .hf_names = { "mlp.fc2.weight" },
      .openai_name = "mlp.c_proj.weight",
      .shape = { W, M },
      .matrix = TRUE,
      .decay = TRUE,
      .init = { CLIP_INIT_UNIFORM_FAN_IN, CLIP_INIT_NORMAL_RESIDUAL },
      .fan_in = M,
      .view = { BLOCK_VIEW (fc2_w) },
      .offset_field = BLOCK_OFFSET (fc2_w) },
  { .scope = CLIP_SCOPE_BLOCK,
      .hf_names = { "mlp.fc2.bias" },
      .openai_name = "mlp.c_proj.bias",
      .shape = { W },
      .init = BOTH (CLIP_INIT_UNIFORM_FAN_IN),
      .fan_in = M,
      .view = { BLOCK_VIEW (fc2_b) },
      .offset_field = BLOCK_OFFSET (fc2_b) },
};

#undef W
#undef M

/* A block's names: [layout][tower], before the row's name. */
static const char *const block_prefixes[2][2] = {
  [CLIP_LAYOUT_HF] = { "vision_model.encoder.layers.%d.",
      "text_model.encoder.layers.%d." },
  [CLIP_LAYOUT_OPENAI] = { "visual.transformer.resblocks.%d.",
      "transformer.resblocks.%d." },
};

static int
n_parts (const ClipParam *param)
{
  return MAX (param->n_parts, 1);
}

static const ClipTowerConfig *
tower_config (const ClipConfig *c, ClipTower tower)
{
  return tower == CLIP_TOWER_TEXT ? &c->text : &c->vision;
}

static gint64
dim_size (ClipDim dim, const ClipConfig *c, ClipTower tower)
{
  const ClipTowerConfig *t = tower_config (c, tower);
  switch (dim) {
    case CLIP_DIM_WIDTH:
      return t->width;
    case CLIP_DIM_MLP:
      return t->mlp_width;
    case CLIP_DIM_EMBED:
      return c->embed_dim;
    case CLIP_DIM_RGB:
      return 3;
    case CLIP_DIM_PATCH:
      return c->patch_size;
    case CLIP_DIM_PIXELS:
      return 3 * (gint64) c->patch_size * c->patch_size;
    case CLIP_DIM_TOKENS:
      return clip_config_vision_tokens (c);
    case CLIP_DIM_VOCAB:
      return c->vocab_size;
    case CLIP_DIM_CONTEXT:
      return c->context_length;
    default:
      return 0;
  }
}

/* One part's shape, as ClipWeights holds it. */
static int
part_shape (const ClipParam *param, const ClipConfig *c, ClipTower tower,
    gint64 shape[4])
{
  int n_dims = 0;
  while (n_dims < 4 && param->shape[n_dims] != CLIP_DIM_NONE) {
    shape[n_dims] = dim_size (param->shape[n_dims], c, tower);
    n_dims++;
  }
  return n_dims;
}

static void
add_span (ClipParamLayout *layout, const ClipConfig *c, const ClipParam *param,
    ClipTower tower, int layer)
{
  gint64 shape[4];
  int n_dims = part_shape (param, c, tower, shape);
  gsize part_size = 1;
  for (int d = 0; d < n_dims; d++)
    part_size *= shape[d];
  ClipParamSpan span = {
    .param = param,
    .tower = tower,
    .layer = layer,
    .offset = layout->total,
    .part_size = part_size,
    .size = part_size * n_parts (param),
  };
  span.name = clip_param_span_name (&span, CLIP_LAYOUT_OPENAI, 0);
  guint8 *fields = (guint8 *) layout;
  if (layer >= 0)
    fields = (guint8 *) &(tower == CLIP_TOWER_TEXT
            ? layout->text_layers
            : layout->vision_layers)[layer];
  *(gsize *) (fields + param->offset_field) = span.offset;
  layout->total += span.size;
  g_array_append_val (layout->spans, span);
}

static void
add_tower (ClipParamLayout *layout, const ClipConfig *c, ClipTower tower)
{
  ClipScope scope = tower == CLIP_TOWER_TEXT ? CLIP_SCOPE_TEXT
                                             : CLIP_SCOPE_VISION;
  for (gsize i = 0; i < G_N_ELEMENTS (params); i++)
    if (params[i].scope == scope && !params[i].after_blocks)
      add_span (layout, c, &params[i], tower, -1);
  for (int layer = 0; layer < tower_config (c, tower)->layers; layer++)
    for (gsize i = 0; i < G_N_ELEMENTS (params); i++)
      if (params[i].scope == CLIP_SCOPE_BLOCK)
        add_span (layout, c, &params[i], tower, layer);
  for (gsize i = 0; i < G_N_ELEMENTS (params); i++)
    if (params[i].scope == scope && params[i].after_blocks)
      add_span (layout, c, &params[i], tower, -1);
}

void
clip_param_layout_init (ClipParamLayout *layout, const ClipConfig *config)
{
  memset (layout, 0, sizeof *layout);
  layout->spans = g_array_new (FALSE, FALSE, sizeof (ClipParamSpan));
  layout->vision_layers = g_new0 (ClipBlockOffsets, config->vision.layers);
  layout->text_layers = g_new0 (ClipBlockOffsets, config->text.layers);
  add_tower (layout, config, CLIP_TOWER_VISION);
  add_tower (layout, config, CLIP_TOWER_TEXT);
  for (gsize i = 0; i < G_N_ELEMENTS (params); i++)
    if (params[i].scope == CLIP_SCOPE_MODEL)
      add_span (layout, config, &params[i], CLIP_TOWER_NONE, -1);
}

void
clip_param_layout_clear (ClipParamLayout *layout)
{
  for (guint i = 0; i < layout->spans->len; i++)
    g_free (g_array_index (layout->spans, ClipParamSpan, i).name);
  g_array_unref (layout->spans);
  g_free (layout->vision_layers);
  g_free (layout->text_layers);
}

char *
clip_param_span_name (const ClipParamSpan *span, ClipLayout layout, int part)
{
  const ClipParam *param = span->param;
  const char *name = layout == CLIP_LAYOUT_HF ? param->hf_names[part]
                                              : param->openai_name;
  if (span->layer < 0)
    return g_strdup (name);
  g_autofree char *prefix = g_strdup_printf (
      block_prefixes[layout][span->tower], span->layer);
  return g_strconcat (prefix, name, NULL);
}

int
clip_param_span_n_stored (const ClipParamSpan *span, ClipLayout layout)
{
  return layout == CLIP_LAYOUT_HF ? n_parts (span->param) : 1;
}

int
clip_param_span_shape (const ClipParamSpan *span, const ClipConfig *config,
    ClipLayout layout, gint64 shape[4])
{
  const ClipParam *param = span->param;
  int n_dims = part_shape (param, config, span->tower, shape);
  if (layout == CLIP_LAYOUT_OPENAI) {
    shape[0] *= n_parts (param);
    if (param->openai_transposed) {
      gint64 rows = shape[0];
      shape[0] = shape[1];
      shape[1] = rows;
    }
  }
  return n_dims;
}

static guint8 *
span_weights (const ClipParamSpan *span, const ClipWeights *weights)
{
  if (span->layer < 0)
    return (guint8 *) weights;
  ClipLayerWeights *layers = span->tower == CLIP_TOWER_TEXT
      ? weights->text.layers
      : weights->vision.layers;
  return (guint8 *) &layers[span->layer];
}

const float **
clip_param_span_view (const ClipParamSpan *span, const ClipWeights *weights,
    int part)
{
  g_assert (span->param->scope != CLIP_SCOPE_MODEL);
  return (
      const float **) (span_weights (span, weights) + span->param->view[part]);
}

gboolean
clip_param_span_is_fused (const ClipParamSpan *span, const ClipWeights *weights)
{
  return span->param->n_parts > 1
      && *(gboolean *) (span_weights (span, weights) + span->param->fused_flag);
}

void
clip_param_span_set_fused (const ClipParamSpan *span, ClipWeights *weights,
    gboolean fused)
{
  if (span->param->n_parts > 1)
    *(gboolean *) (span_weights (span, weights)
        + span->param->fused_flag) = fused;
}

/* ------------------------------------------------------ initialisation */

/* Normals by Box-Muller in float, from one 32-bit draw per uniform: the
 * transcendental functions are most of the time of a ViT-L's 428M draws,
 * and float is precise enough for an initialisation. */
typedef struct {
  GRand *rand;
  gboolean have_spare; /* Box-Muller makes normals in pairs */
  float spare;
} Normals;

static float
normal_next (Normals *g)
{
  if (g->have_spare) {
    g->have_spare = FALSE;
    return g->spare;
  }
  /* u1 in (0, 1] keeps the log finite */
  float u1 = (float) ((g_rand_int (g->rand) + 1.0) / 4294967296.0);
  float u2 = (float) (g_rand_int (g->rand) / 4294967296.0);
  float r = sqrtf (-2.0f * logf (u1));
  g->spare = r * sinf (2.0f * (float) G_PI * u2);
  g->have_spare = TRUE;
  return r * cosf (2.0f * (float) G_PI * u2);
}

static void
fill_normal (Normals *g, float *v, gsize n, double std)
{
  for (gsize i = 0; i < n; i++)
    v[i] = (float) std * normal_next (g);
}

static void
fill_uniform (Normals *g, float *v, gsize n, double bound)
{
  for (gsize i = 0; i < n; i++)
    v[i] = (float) g_rand_double_range (g->rand, -bound, bound);
}

static void
fill_constant (float *v, gsize n, float value)
{
  for (gsize i = 0; i < n; i++)
    v[i] = value;
}

static void
init_span (Normals *g, const ClipParamSpan *span, const ClipConfig *c, float *v)
{
  const ClipParam *param = span->param;
  ClipInit rule = param->init[span->tower == CLIP_TOWER_TEXT];
  const ClipTowerConfig *t = tower_config (c, span->tower);
  double width = t->width, fan_in = dim_size (param->fan_in, c, span->tower);
  switch (rule) {
    case CLIP_INIT_ZEROS:
      fill_constant (v, span->size, 0.0f);
      break;
    case CLIP_INIT_ONES:
      fill_constant (v, span->size, 1.0f);
      break;
    case CLIP_INIT_NORMAL_TOKEN:
      fill_normal (g, v, span->size, 0.02);
      break;
    case CLIP_INIT_NORMAL_CONTEXT:
      fill_normal (g, v, span->size, 0.01);
      break;
    case CLIP_INIT_NORMAL_WIDTH:
      fill_normal (g, v, span->size, pow (width, -0.5));
      break;
    case CLIP_INIT_NORMAL_RESIDUAL:
      fill_normal (g, v, span->size,
          pow (width, -0.5) * pow (2.0 * t->layers, -0.5));
      break;
    case CLIP_INIT_NORMAL_FC:
      fill_normal (g, v, span->size, pow (2.0 * width, -0.5));
      break;
    case CLIP_INIT_UNIFORM_FAN_IN:
      fill_uniform (g, v, span->size, 1.0 / sqrt (fan_in));
      break;
    case CLIP_INIT_XAVIER: {
      double fan_out = (double) span->size / fan_in;
      fill_uniform (g, v, span->size, sqrt (6.0 / (fan_in + fan_out)));
      break;
    }
    case CLIP_INIT_LOGIT_SCALE:
      v[0] = logf (1.0f / 0.07f);
      break;
  }
}

void
clip_params_init (const ClipParamLayout *layout, const ClipConfig *config,
    guint32 seed, float *buffer)
{
  Normals g = { .rand = g_rand_new_with_seed (seed) };
  for (guint i = 0; i < layout->spans->len; i++) {
    const ClipParamSpan *span = &g_array_index (layout->spans, ClipParamSpan,
        i);
    init_span (&g, span, config, buffer + span->offset);
  }
  g_rand_free (g.rand);
}

void
clip_params_views (const ClipParamLayout *layout, const float *buffer,
    ClipWeights *weights)
{
  for (guint i = 0; i < layout->spans->len; i++) {
    const ClipParamSpan *span = &g_array_index (layout->spans, ClipParamSpan,
        i);
    if (span->param->scope == CLIP_SCOPE_MODEL) {
      weights->logit_scale = buffer[span->offset];
      continue;
    }
    for (int p = 0; p < n_parts (span->param); p++)
      *clip_param_span_view (span, weights, p) = buffer + span->offset
          + p * span->part_size;
    clip_param_span_set_fused (span, weights, TRUE);
  }
}

void
clip_params_copy (const ClipParamLayout *layout, const ClipWeights *weights,
    float *buffer)
{
  for (guint i = 0; i < layout->spans->len; i++) {
    const ClipParamSpan *span = &g_array_index (layout->spans, ClipParamSpan,
        i);
    if (span->param->scope == CLIP_SCOPE_MODEL) {
      buffer[span->offset] = weights->logit_scale;
      continue;
    }
    for (int p = 0; p < n_parts (span->param); p++)
      memcpy (buffer + span->offset + p * span->part_size,
          *clip_param_span_view (span, weights, p),
          span->part_size * sizeof (float));
  }
}
