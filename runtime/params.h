/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The parameter table: every tensor of a CLIP model, written once, with
 * its names in both layouts, its shape as a function of the config, the
 * group it is part of, its initialisation and whether weight decay applies.
 * Loading, saving, the trainer's parameter buffer, random-model, CPU
 * packing and the Vulkan upload all iterate it; adding a tensor is one row
 * (plus, for the code that reads it by name, its view in ClipWeights, its
 * offset in ClipParamLayout and its Vulkan binding). Internal to the
 * runtime. */
#pragma once

#include "model.h"

/* A size in a shape, read from the config (W and M from the row's tower). */
typedef enum {
  CLIP_DIM_NONE,
  CLIP_DIM_WIDTH,  /* W */
  CLIP_DIM_MLP,    /* M */
  CLIP_DIM_EMBED,  /* E */
  CLIP_DIM_RGB,    /* 3 */
  CLIP_DIM_PATCH,  /* P */
  CLIP_DIM_PIXELS, /* 3 P P: one patch's values, conv1's fan-in */
  CLIP_DIM_TOKENS, /* vision tokens: patches + 1 */
  CLIP_DIM_VOCAB,
  CLIP_DIM_CONTEXT,
} ClipDim;

typedef enum {
  CLIP_SCOPE_VISION, /* once, in the vision tower */
  CLIP_SCOPE_TEXT,   /* once, in the text tower */
  CLIP_SCOPE_BLOCK,  /* in every transformer block of both towers */
  CLIP_SCOPE_MODEL,  /* logit_scale */
} ClipScope;

/* The rules; params.c says which PyTorch code each one follows. */
typedef enum {
  CLIP_INIT_ZEROS,
  CLIP_INIT_ONES,
  CLIP_INIT_NORMAL_TOKEN,    /* N(0, 0.02) */
  CLIP_INIT_NORMAL_CONTEXT,  /* N(0, 0.01) */
  CLIP_INIT_NORMAL_WIDTH,    /* N(0, W^-0.5) */
  CLIP_INIT_NORMAL_RESIDUAL, /* N(0, W^-0.5 (2 layers)^-0.5) */
  CLIP_INIT_NORMAL_FC,       /* N(0, (2 W)^-0.5) */
  CLIP_INIT_UNIFORM_FAN_IN,  /* U(+-1/sqrt(fan_in)) */
  CLIP_INIT_XAVIER,      /* U(+-sqrt(6 / (fan_in + fan_out))), whole group */
  CLIP_INIT_LOGIT_SCALE, /* ln(1/0.07) */
} ClipInit;

#define CLIP_PARAM_MAX_PARTS 3

typedef struct {
  ClipScope scope;
  gboolean after_blocks; /* a tower's tensor that comes after its blocks */
  /* A block's names follow its prefix ("text_model.encoder.layers.3."). */
  const char *hf_names[CLIP_PARAM_MAX_PARTS]; /* one tensor per part */
  const char *openai_name;                    /* the parts as one tensor */
  int n_parts;      /* > 1: a group stacked along the rows (q, k, v) */
  ClipDim shape[4]; /* of one part, as ClipWeights holds it */
  gboolean openai_transposed; /* OpenAI stores [W, E] for ClipWeights' [E, W] */
  gboolean matrix;            /* a linear layer's [out, in...] weight */
  gboolean decay;             /* AdamW's weight decay applies */
  gboolean by_token;          /* one row per token id; the trainer updates the
                            * rows of tokens it saw */
  ClipInit init[2];           /* in the vision tower, in the text tower */
  ClipDim fan_in;             /* for the uniform and Xavier rules */
  /* offsetof each part's view in ClipWeights (tower rows) or
   * ClipLayerWeights (block rows); of the gboolean saying the parts lie
   * back to back (groups); of the offset in ClipParamLayout or
   * ClipBlockOffsets. */
  gsize view[CLIP_PARAM_MAX_PARTS];
  gsize fused_flag;
  gsize offset_field;
} ClipParam;

typedef enum {
  CLIP_TOWER_VISION,
  CLIP_TOWER_TEXT,
  CLIP_TOWER_NONE, /* logit_scale */
} ClipTower;

/* One tensor of a config: a row, in a tower and a block. */
typedef struct {
  const ClipParam *param;
  ClipTower tower;
  int layer;       /* the block, or -1 */
  char *name;      /* the OpenAI name: the group as one tensor */
  gsize offset;    /* floats before it in a parameter buffer */
  gsize part_size; /* floats of one part */
  gsize size;      /* floats of all parts */
} ClipParamSpan;

/* Where a block's tensors lie in a parameter buffer, in floats. */
typedef struct {
  gsize ln1_w, ln1_b, qkv_w, qkv_b, out_w, out_b;
  gsize ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;
} ClipBlockOffsets;

/* A parameter buffer: every tensor of a config in one float array, the
 * groups stored as one tensor, in the table's order. */
typedef struct {
  gsize patch_w, class_emb, vision_pos, ln_pre_w, ln_pre_b;
  gsize ln_post_w, ln_post_b, vision_proj;
  ClipBlockOffsets *vision_layers;
  gsize token_emb, text_pos, ln_final_w, ln_final_b, text_proj;
  ClipBlockOffsets *text_layers;
  gsize logit_scale;
  gsize total;   /* floats */
  GArray *spans; /* of ClipParamSpan, in buffer order */
} ClipParamLayout;

void clip_param_layout_init (ClipParamLayout *layout, const ClipConfig *config);
void clip_param_layout_clear (ClipParamLayout *layout);

/* The tensor's name in a layout: an HF part's, or the OpenAI group's. */
char *clip_param_span_name (const ClipParamSpan *span, ClipLayout layout,
    int part);
/* How many tensors the layout stores for the span: HF one per part. */
int clip_param_span_n_stored (const ClipParamSpan *span, ClipLayout layout);
/* The shape the layout stores (one HF part, or the OpenAI group, maybe
 * transposed); returns the number of dimensions. */
int clip_param_span_shape (const ClipParamSpan *span, const ClipConfig *config,
    ClipLayout layout, gint64 shape[4]);
/* The view of a part in weights (a block's: in its layer's weights). Not
 * for logit_scale, a float of its own. */
const float **clip_param_span_view (const ClipParamSpan *span,
    const ClipWeights *weights, int part);
/* Whether the parts of a group lie back to back in weights, as one tensor
 * of part_size x n_parts floats: then one GEMM does all of them. */
gboolean clip_param_span_is_fused (const ClipParamSpan *span,
    const ClipWeights *weights);
/* Sets that flag, for a layout that stores the group as one tensor. */
void clip_param_span_set_fused (const ClipParamSpan *span, ClipWeights *weights,
    gboolean fused);

/* Fills a buffer of layout->total floats from the table's rules and a seed:
 * the same seed gives the same model. */
void clip_params_init (const ClipParamLayout *layout, const ClipConfig *config,
    guint32 seed, float *buffer);
/* Points weights (whose layers arrays the caller allocated) into a buffer. */
void clip_params_views (const ClipParamLayout *layout, const float *buffer,
    ClipWeights *weights);
/* Copies complete weights into a buffer. */
void clip_params_copy (const ClipParamLayout *layout,
    const ClipWeights *weights, float *buffer);
