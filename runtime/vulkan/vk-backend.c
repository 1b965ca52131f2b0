/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Vulkan backend: the whole CLIP forward pass as one recorded command
 * buffer of compute dispatches (the kernels in shaders/) per batch, from
 * preprocessed floats or from video frames' own bytes (preprocessing on
 * the device, bit for bit as clip_preprocess).
 *
 * Weights go to one device-local buffer at open (F16 for the linear layers
 * when asked for and supported). Each tower owns its activation buffers,
 * sized for the largest batch seen so far, and keeps the command buffer it
 * recorded: a batch of the same size (and, for text, the same sequence
 * length; for frames, the same layout: a video stream) is only resubmitted.
 * Activations never leave the device inside a forward pass; a global memory
 * barrier separates consecutive dispatches. */
#include "backend.h"
#include "params.h"
#include "preprocess.h"
#include "vk-device.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The attention kernel keeps a row of scores and a query in shared memory. */
#define MAX_POSITIONS 1024
#define MAX_HEAD_DIM 256

/* Device memory one tower's activations may take: ViT-B/32 runs 185 images
 * or 340 prompts per submission within it. */
#define ACTIVATION_BUDGET ((gsize) 512 << 20)

/* Frames whose bytes, or whose horizontally filtered rows, would take more
 * than this in one submission are preprocessed on the CPU instead (a
 * 20000 x 20000 photo, say); a video frame is far below it. */
#define FRAME_UPLOAD_BUDGET ((gsize) 256 << 20)

/* The Ints buffer of the preprocessing kernels: shaders/preprocess.glsl. */
#define PRE_PARAMS 768
#define PRE_PARAM_WORDS 24
enum {
  P_FORMAT,
  P_IMAGE,
  P_OFFSET,
  P_STRIDE = P_OFFSET + 3,
  P_ROW0 = P_STRIDE + 3,
  P_COL0 = P_ROW0 + 3,
  P_YUV = P_COL0 + 3,
  P_ROW_FIRST,
  P_ROWS,
  P_COL_PLAN,
  P_COL_TAPS,
  P_LEFT,
  P_ROW_PLAN,
  P_ROW_TAPS,
  P_TOP,
  P_BETWEEN,
};
G_STATIC_ASSERT (P_BETWEEN == PRE_PARAM_WORDS - 1);

/* What a batch of frames puts on the device: the Ints words, the frames'
 * bytes and the filtered rows, in bytes, and the most rows a frame's
 * horizontal pass makes. All zero for a batch of preprocessed floats. */
typedef struct {
  VkDeviceSize ints, bytes, between;
  guint rows;
} FramesLayout;

/* matmul.comp push-constant flags */
#define MATMUL_BIAS 1u
#define MATMUL_ACCUMULATE 2u
#define MATMUL_ACT_SHIFT 2u

typedef struct {
  ClipVkView ln1_w, ln1_b, qkv_w, qkv_b, out_w, out_b;
  ClipVkView ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;
} LayerViews;

typedef enum {
  TOWER_VISION,
  TOWER_TEXT,
} TowerKind;

/* One dispatch of the recorded pass, for the profile. */
typedef struct {
  const char *stage;
  double flops; /* of a matmul; 0 for the other kernels */
} Stage;

typedef struct {
  TowerKind kind;
  const ClipTowerConfig *cfg;
  int positions; /* vision tokens, or the context length */
  int max_chunk; /* most items one command buffer may hold */

  LayerViews *layers;
  ClipVkView embed_w; /* conv1 [W, 3 P P], or the token embedding [V, W] */
  ClipVkView class_emb, pos_emb, ln_pre_w, ln_pre_b, ln_final_w, ln_final_b,
      proj;

  int capacity; /* items the buffers below hold */
  ClipVkBuffer upload, download;
  /* Frames (vision only): what the host writes, its device copy, the
   * horizontal pass's rows. Grown on demand. */
  ClipVkBuffer frame_upload, frames, between;
  FramesLayout recorded_frames; /* what cmd holds */
  /* Scores against the labels (vision only): [n, 2 * n_labels] */
  ClipVkBuffer scores, scores_download;
  int recorded_labels; /* what cmd holds: how many labels it scores, or 0 */
  ClipVkBuffer input, rows, cols, patches, x, h, qkv, attn, mlp, pooled, out;
  VkCommandBuffer cmd;
  VkDescriptorPool descriptor_pool;
  guint max_dispatches;
  VkQueryPool queries;
  int recorded_n, recorded_length; /* what cmd holds; 0 = nothing */
  GArray *stages;
} Tower;

typedef struct {
  ClipBackend parent;
  ClipVkDevice *dev;
  gboolean f16;
  gboolean profile;
  int forced_tile;    /* 64 or 128, 0 = chosen per matmul */
  int max_batch;      /* items per submission at most, 0 = as memory allows */
  gsize frame_budget; /* FRAME_UPLOAD_BUDGET, or smaller for the tests */
  VkDeviceSize align;
  ClipVkBuffer weights;
  ClipVkBuffer dummy;
  /* [vec4 loads][large tiles] */
  VkPipeline matmul[2][2];
  VkPipeline attention, layernorm, im2col, vision_embed, text_embed;
  VkPipeline preprocess_columns, preprocess_rows, scores;
  /* The label set the image batches score against, when asked to. */
  ClipVkBuffer labels;
  guint64 labels_id;
  float labels_scale;
  Tower vision, text;
  char *description;
  char *profile_text;
} VkBackend;

/* ---------------------------------------------------------------- weights */

/* A tensor to upload: the host arrays of a group's parts placed back to
 * back (q, k, v), stored as F16 when half is set. */
typedef struct {
  const float *parts[CLIP_PARAM_MAX_PARTS];
  guint n_parts;
  gsize part_len;
  gboolean half;
  ClipVkView *view;
} Upload;

/* Where the shaders read each tensor of the parameter table (params.h):
 * its field in ClipParamLayout (ClipBlockOffsets for a block's), and the
 * view that binds it, in VkBackend (LayerViews). */
typedef struct {
  gsize param_field, view_field;
} WeightBinding;

static const WeightBinding tower_bindings[] = {
  { offsetof (ClipParamLayout, patch_w), offsetof (VkBackend, vision.embed_w) },
  { offsetof (ClipParamLayout, class_emb),
      offsetof (VkBackend, vision.class_emb) },
  { offsetof (ClipParamLayout, vision_pos),
      offsetof (VkBackend, vision.pos_emb) },
  { offsetof (ClipParamLayout, ln_pre_w),
      offsetof (VkBackend, vision.ln_pre_w) },
  { offsetof (ClipParamLayout, ln_pre_b),
      offsetof (VkBackend, vision.ln_pre_b) },
  { offsetof (ClipParamLayout, ln_post_w),
      offsetof (VkBackend, vision.ln_final_w) },
  { offsetof (ClipParamLayout, ln_post_b),
      offsetof (VkBackend, vision.ln_final_b) },
  { offsetof (ClipParamLayout, vision_proj),
      offsetof (VkBackend, vision.proj) },
  { offsetof (ClipParamLayout, token_emb), offsetof (VkBackend, text.embed_w) },
  { offsetof (ClipParamLayout, text_pos), offsetof (VkBackend, text.pos_emb) },
  { offsetof (ClipParamLayout, ln_final_w),
      offsetof (VkBackend, text.ln_final_w) },
  { offsetof (ClipParamLayout, ln_final_b),
      offsetof (VkBackend, text.ln_final_b) },
  { offsetof (ClipParamLayout, text_proj), offsetof (VkBackend, text.proj) },
};

static const WeightBinding block_bindings[] = {
  { offsetof (ClipBlockOffsets, ln1_w), offsetof (LayerViews, ln1_w) },
  { offsetof (ClipBlockOffsets, ln1_b), offsetof (LayerViews, ln1_b) },
  { offsetof (ClipBlockOffsets, qkv_w), offsetof (LayerViews, qkv_w) },
  { offsetof (ClipBlockOffsets, qkv_b), offsetof (LayerViews, qkv_b) },
  { offsetof (ClipBlockOffsets, out_w), offsetof (LayerViews, out_w) },
  { offsetof (ClipBlockOffsets, out_b), offsetof (LayerViews, out_b) },
  { offsetof (ClipBlockOffsets, ln2_w), offsetof (LayerViews, ln2_w) },
  { offsetof (ClipBlockOffsets, ln2_b), offsetof (LayerViews, ln2_b) },
  { offsetof (ClipBlockOffsets, fc1_w), offsetof (LayerViews, fc1_w) },
  { offsetof (ClipBlockOffsets, fc1_b), offsetof (LayerViews, fc1_b) },
  { offsetof (ClipBlockOffsets, fc2_w), offsetof (LayerViews, fc2_w) },
  { offsetof (ClipBlockOffsets, fc2_b), offsetof (LayerViews, fc2_b) },
};

/* The view of a tensor, or NULL for one the shaders do not read
 * (logit_scale: the label scores get it as a push constant). */
static ClipVkView *
weight_view (VkBackend *vk, const ClipParamSpan *span)
{
  gboolean block = span->layer >= 0;
  const WeightBinding *bindings = block ? block_bindings : tower_bindings;
  gsize n = block ? G_N_ELEMENTS (block_bindings)
                  : G_N_ELEMENTS (tower_bindings);
  Tower *tower = span->tower == CLIP_TOWER_TEXT ? &vk->text : &vk->vision;
  guint8 *base = block ? (guint8 *) &tower->layers[span->layer] : (guint8 *) vk;
  for (gsize i = 0; i < n; i++)
    if (bindings[i].param_field == span->param->offset_field)
      return (ClipVkView *) (base + bindings[i].view_field);
  return NULL;
}

static void
write_upload (const Upload *u, guint8 *dst)
{
  for (guint p = 0; p < u->n_parts; p++) {
    const float *src = u->parts[p];
    if (u->half) {
      guint16 *out = (guint16 *) dst + p * u->part_len;
      for (gsize i = 0; i < u->part_len; i++)
        out[i] = clip_f32_to_f16 (src[i]);
    } else {
      memcpy ((float *) dst + p * u->part_len, src,
          u->part_len * sizeof (float));
    }
  }
}

/* Copies src to dst on the device and waits. */
static gboolean
copy_and_wait (VkBackend *vk, const ClipVkBuffer *src, const ClipVkBuffer *dst,
    GError **error)
{
  VkCommandBufferAllocateInfo alloc = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .commandPool = vk->dev->command_pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  VkCommandBuffer cmd;
  VkResult r = vkAllocateCommandBuffers (vk->dev->device, &alloc, &cmd);
  if (r != VK_SUCCESS)
    return clip_vk_fail (r, "vkAllocateCommandBuffers", error);
  VkCommandBufferBeginInfo begin = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
    .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
  };
  vkBeginCommandBuffer (cmd, &begin);
  VkBufferCopy region = { 0, 0, src->size };
  vkCmdCopyBuffer (cmd, src->buffer, dst->buffer, 1, &region);
  VkMemoryBarrier barrier = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
    .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_SHADER_READ_BIT,
  };
  vkCmdPipelineBarrier (cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
      VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &barrier, 0, NULL, 0, NULL);
  vkEndCommandBuffer (cmd);
  gboolean ok = clip_vk_submit_and_wait (vk->dev, cmd, error);
  vkFreeCommandBuffers (vk->dev->device, vk->dev->command_pool, 1, &cmd);
  return ok;
}

static gboolean
upload_weights (VkBackend *vk, const ClipWeightsView *model, GError **error)
{
  const ClipConfig *cfg = model->config;
  const ClipWeights *w = model->weights;
  g_autoptr (GArray) uploads = g_array_new (FALSE, FALSE, sizeof (Upload));
  ClipParamLayout params;
  clip_param_layout_init (&params, cfg);
  for (guint i = 0; i < params.spans->len; i++) {
    const ClipParamSpan *span = &g_array_index (params.spans, ClipParamSpan, i);
    ClipVkView *view = weight_view (vk, span);
    if (view == NULL)
      continue;
    /* Linear layers' weights as F16 when asked; the rest stays F32 (the
     * token table too: a prompt reads only a few of its rows). A group's
     * parts go back to back, as one tensor. */
    Upload u = { .n_parts = span->size / span->part_size,
      .part_len = span->part_size,
      .half = vk->f16 && span->param->matrix,
      .view = view };
    for (guint p = 0; p < u.n_parts; p++)
      u.parts[p] = *clip_param_span_view (span, w, p);
    g_array_append_val (uploads, u);
  }
  clip_param_layout_clear (&params);

  VkDeviceSize total = 0;
  for (guint i = 0; i < uploads->len; i++) {
    Upload *u = &g_array_index (uploads, Upload, i);
    VkDeviceSize bytes = u->n_parts * u->part_len * (u->half ? 2 : 4);
    if (bytes > vk->dev->max_range) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
          "%s: a weight of %" G_GUINT64_FORMAT
          " bytes is larger than Vulkan device %s "
          "can bind (%" G_GUINT64_FORMAT ")",
          model->name, (guint64) bytes, vk->dev->props.deviceName,
          (guint64) vk->dev->max_range);
      return FALSE;
    }
    total = (total + vk->align - 1) / vk->align * vk->align;
    *u->view = (ClipVkView) { VK_NULL_HANDLE, total, bytes };
    total += bytes;
  }

  ClipVkBuffer staging;
  if (!clip_vk_buffer_init (vk->dev, &staging, total, TRUE, error))
    return FALSE;
  for (guint i = 0; i < uploads->len; i++) {
    Upload *u = &g_array_index (uploads, Upload, i);
    write_upload (u, (guint8 *) staging.mapped + u->view->offset);
  }
  gboolean ok = clip_vk_buffer_init (vk->dev, &vk->weights, total, FALSE, error)
      && copy_and_wait (vk, &staging, &vk->weights, error);
  clip_vk_buffer_clear (vk->dev, &staging);
  if (!ok)
    return FALSE;
  for (guint i = 0; i < uploads->len; i++)
    g_array_index (uploads, Upload, i).view->buffer = vk->weights.buffer;
  return TRUE;
}

/* ------------------------------------------------------------ activations */

typedef struct {
  gsize input, cols, patches, x, qkv, mlp;
} ItemSizes;

/* Bytes one batch item needs in each activation buffer. */
static ItemSizes
item_sizes (const VkBackend *vk, const Tower *t)
{
  const ClipConfig *cfg = vk->parent.model.config;
  gsize T = t->positions, W = t->cfg->width;
  ItemSizes s = { 0 };
  if (t->kind == TOWER_VISION) {
    gsize S = cfg->image_size, P = cfg->patch_size;
    s.input = 3 * S * S * 4;
    s.cols = (T - 1) * 3 * P * P * 4;
    s.patches = (T - 1) * W * 4;
  } else {
    s.input = T * 4;
  }
  s.x = T * W * 4;
  s.qkv = 3 * s.x;
  s.mlp = T * t->cfg->mlp_width * 4;
  return s;
}

static void
clear_activations (VkBackend *vk, Tower *t)
{
  ClipVkBuffer *buffers[] = { &t->upload, &t->download, &t->input, &t->rows,
    &t->cols, &t->patches, &t->x, &t->h, &t->qkv, &t->attn, &t->mlp, &t->pooled,
    &t->out, &t->frame_upload, &t->frames, &t->between, &t->scores,
    &t->scores_download };
  for (guint i = 0; i < G_N_ELEMENTS (buffers); i++)
    clip_vk_buffer_clear (vk->dev, buffers[i]);
  t->capacity = 0;
  t->recorded_n = 0;
}

static VkDeviceSize
aligned (const VkBackend *vk, VkDeviceSize size)
{
  return (size + vk->align - 1) / vk->align * vk->align;
}

/* Grows the activation buffers to hold n items; the recorded command buffer
 * refers to the old ones, so it goes too. */
static gboolean
ensure_capacity (VkBackend *vk, Tower *t, int n, GError **error)
{
  if (n <= t->capacity)
    return TRUE;
  clear_activations (vk, t);
  ItemSizes s = item_sizes (vk, t);
  gsize W = t->cfg->width, E = vk->parent.model.config->embed_dim;
  gsize rows_at = aligned (vk, n * s.input);
  gboolean vision = t->kind == TOWER_VISION;
  struct {
    ClipVkBuffer *buf;
    gsize size;
    gboolean host;
  } plan[] = {
    { &t->upload, rows_at + n * 4, TRUE },
    { &t->download, n * E * 4, TRUE },
    { &t->input, n * s.input, FALSE },
    { &t->rows, n * 4, FALSE },
    { &t->cols, vision ? n * s.cols : 4, FALSE },
    { &t->patches, vision ? n * s.patches : 4, FALSE },
    { &t->x, n * s.x, FALSE },
    { &t->h, n * s.x, FALSE },
    { &t->qkv, n * s.qkv, FALSE },
    { &t->attn, n * s.x, FALSE },
    { &t->mlp, n * s.mlp, FALSE },
    { &t->pooled, n * W * 4, FALSE },
    { &t->out, n * E * 4, FALSE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (plan); i++)
    if (!clip_vk_buffer_init (vk->dev, plan[i].buf, plan[i].size, plan[i].host,
            error)) {
      clear_activations (vk, t);
      return FALSE;
    }
  t->capacity = n;
  return TRUE;
}

static ClipVkView
whole (const ClipVkBuffer *buf)
{
  return clip_vk_view (buf, 0, buf->size);
}

/* -------------------------------------------------------------- recording */

typedef struct {
  VkBackend *vk;
  Tower *tower;
  VkCommandBuffer cmd;
  guint n_dispatches;
  GError **error;
  gboolean failed;
} Recorder;

static void
compute_barrier (VkCommandBuffer cmd, VkPipelineStageFlags src_stage,
    VkAccessFlags src_access, VkPipelineStageFlags dst_stage,
    VkAccessFlags dst_access)
{
  VkMemoryBarrier barrier = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
    .srcAccessMask = src_access,
    .dstAccessMask = dst_access,
  };
  vkCmdPipelineBarrier (cmd, src_stage, dst_stage, 0, 1, &barrier, 0, NULL, 0,
      NULL);
}

static void
dispatch (Recorder *rec, VkPipeline pipeline, const ClipVkView *views,
    guint n_views, const void *push, gsize push_size, guint gx, guint gy,
    guint gz, const char *stage, double flops)
{
  VkBackend *vk = rec->vk;
  Tower *t = rec->tower;
  if (rec->failed)
    return;
  g_assert (n_views <= CLIP_VK_BINDINGS && push_size <= CLIP_VK_PUSH_BYTES);
  g_assert (rec->n_dispatches < t->max_dispatches);

  VkDescriptorSetAllocateInfo alloc = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
    .descriptorPool = t->descriptor_pool,
    .descriptorSetCount = 1,
    .pSetLayouts = &vk->dev->set_layout,
  };
  VkDescriptorSet set;
  VkResult r = vkAllocateDescriptorSets (vk->dev->device, &alloc, &set);
  if (r != VK_SUCCESS) {
    rec->failed = TRUE;
    clip_vk_fail (r, "vkAllocateDescriptorSets", rec->error);
    return;
  }
  VkDescriptorBufferInfo infos[CLIP_VK_BINDINGS];
  VkWriteDescriptorSet writes[CLIP_VK_BINDINGS];
  for (guint i = 0; i < CLIP_VK_BINDINGS; i++) {
    ClipVkView v = i < n_views ? views[i] : whole (&vk->dummy);
    infos[i] = (VkDescriptorBufferInfo) { v.buffer, v.offset, v.range };
    writes[i] = (VkWriteDescriptorSet) {
      .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
      .dstSet = set,
      .dstBinding = i,
      .descriptorCount = 1,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .pBufferInfo = &infos[i],
    };
  }
  vkUpdateDescriptorSets (vk->dev->device, CLIP_VK_BINDINGS, writes, 0, NULL);

  vkCmdBindPipeline (rec->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
  vkCmdBindDescriptorSets (rec->cmd, VK_PIPELINE_BIND_POINT_COMPUTE,
      vk->dev->pipeline_layout, 0, 1, &set, 0, NULL);
  vkCmdPushConstants (rec->cmd, vk->dev->pipeline_layout,
      VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
  vkCmdDispatch (rec->cmd, gx, gy, gz);
  /* Every dispatch reads what the previous ones wrote. */
  compute_barrier (rec->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
      VK_ACCESS_SHADER_WRITE_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
      VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
  rec->n_dispatches++;
  if (vk->profile && t->queries) {
    vkCmdWriteTimestamp (rec->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
        t->queries, rec->n_dispatches);
    Stage s = { stage, flops };
    g_array_append_val (t->stages, s);
  }
}

/* Element-wise kernels and layernorm loop over their items, so that a grid
 * of this many workgroups covers any size: enough to fill a large GPU, few
 * enough that a CPU implementation (lavapipe) does not pay its cost of
 * starting a workgroup per handful of items. */
#define MAX_LOOPING_GROUPS 1024

static guint
groups (gsize items, guint per_group)
{
  return (guint) MIN ((items + per_group - 1) / per_group, MAX_LOOPING_GROUPS);
}

/* c = act (a . w^T + bias) (+ c when accumulating); a [M, K], w [N, K]. */
static void
matmul (Recorder *rec, ClipVkView a, ClipVkView w, const ClipVkView *bias,
    ClipVkView c, guint M, guint N, guint K, guint flags, const char *stage)
{
  VkBackend *vk = rec->vk;
  gboolean vec4 = K % 4 == 0;
  /* Large tiles reuse each loaded value more but only pay off when there
   * are enough of them for several waves over a big GPU (~132 SMs holding
   * two each): ViT-B/32 at batch 128 takes them for qkv and mlp_fc1 (900,
   * 1200 tiles), not for the N = 768 matmuls (300). To be tuned on a GPU. */
  gboolean large = vk->forced_tile
      ? vk->forced_tile == 128
      : (gsize) ((M + 127) / 128) * ((N + 127) / 128) >= 512;
  guint tile = large ? 128 : 64;
  ClipVkView views[4] = { a, w, bias ? *bias : whole (&vk->dummy), c };
  guint32 push[4] = { M, N, K, flags | (bias ? MATMUL_BIAS : 0) };
  dispatch (rec, vk->matmul[vec4][large], views, 4, push, sizeof (push),
      (N + tile - 1) / tile, (M + tile - 1) / tile, 1, stage, 2.0 * M * N * K);
}

static void
layernorm (Recorder *rec, ClipVkView in, ClipVkView w, ClipVkView b,
    ClipVkView out, guint rows, guint width, float eps, gboolean gather)
{
  ClipVkView views[5] = { in, w, b, out, whole (&rec->tower->rows) };
  struct {
    guint32 rows, width, gather;
    float eps;
  } push = { rows, width, gather, eps };
  dispatch (rec, rec->vk->layernorm, views, 5, &push, sizeof (push),
      MIN (rows, MAX_LOOPING_GROUPS), 1, 1, "layernorm", 0);
}

static void
record_layers (Recorder *rec, guint n, guint length, gboolean causal)
{
  Tower *t = rec->tower;
  const ClipTowerConfig *cfg = t->cfg;
  guint R = n * length, W = cfg->width, M = cfg->mlp_width;
  guint head_dim = W / cfg->heads;
  guint act = cfg->activation == CLIP_ACTIVATION_GELU ? 2 : 1;
  ClipVkView x = whole (&t->x), h = whole (&t->h), qkv = whole (&t->qkv);
  ClipVkView attn = whole (&t->attn), mlp = whole (&t->mlp);

  for (int l = 0; l < cfg->layers; l++) {
    const LayerViews *lw = &t->layers[l];
    layernorm (rec, x, lw->ln1_w, lw->ln1_b, h, R, W, cfg->eps, FALSE);
    matmul (rec, h, lw->qkv_w, &lw->qkv_b, qkv, R, 3 * W, W, 0, "qkv");
    struct {
      guint32 positions, width, head_dim, causal;
      float scale;
    } push = { length, W, head_dim, causal, 1.0f / sqrtf ((float) head_dim) };
    ClipVkView views[2] = { qkv, attn };
    dispatch (rec, rec->vk->attention, views, 2, &push, sizeof (push), length,
        cfg->heads, n, "attention", 0);
    matmul (rec, attn, lw->out_w, &lw->out_b, x, R, W, W, MATMUL_ACCUMULATE,
        "attn_out");
    layernorm (rec, x, lw->ln2_w, lw->ln2_b, h, R, W, cfg->eps, FALSE);
    matmul (rec, h, lw->fc1_w, &lw->fc1_b, mlp, R, M, W,
        act << MATMUL_ACT_SHIFT, "mlp_fc1");
    matmul (rec, mlp, lw->fc2_w, &lw->fc2_b, x, R, W, M, MATMUL_ACCUMULATE,
        "mlp_fc2");
  }
}

/* Frames -> images [n, 3, S, S] in t->input: the two passes of the resize,
 * then the normalisation (shaders/preprocess_*.comp). */
static void
record_preprocess (Recorder *rec, guint n, const FramesLayout *frames)
{
  VkBackend *vk = rec->vk;
  Tower *t = rec->tower;
  guint S = vk->parent.model.config->image_size;
  ClipVkView ints = clip_vk_view (&t->frames, 0, frames->ints);
  ClipVkView bytes = clip_vk_view (&t->frames, aligned (vk, frames->ints),
      frames->bytes);
  guint32 push = S;
  ClipVkView columns_views[3] = { bytes, ints, whole (&t->between) };
  dispatch (rec, vk->preprocess_columns, columns_views, 3, &push, sizeof (push),
      (S + 63) / 64, MIN ((frames->rows + 3) / 4, MAX_LOOPING_GROUPS), n,
      "preprocess", 0);
  ClipVkView rows_views[3] = { ints, whole (&t->between), whole (&t->input) };
  dispatch (rec, vk->preprocess_rows, rows_views, 3, &push, sizeof (push),
      (S + 63) / 64, MIN ((S + 3) / 4, MAX_LOOPING_GROUPS), n, "preprocess", 0);
}

static void
record_vision (Recorder *rec, guint n, const FramesLayout *frames)
{
  VkBackend *vk = rec->vk;
  Tower *t = rec->tower;
  const ClipConfig *cfg = vk->parent.model.config;
  guint T = t->positions, W = t->cfg->width, P = cfg->patch_size;
  guint grid = cfg->image_size / P, patches = n * (T - 1);

  if (frames->ints > 0)
    record_preprocess (rec, n, frames);

  struct {
    guint32 total, image_size, patch_size, grid;
  } im2col = { patches * 3 * P * P, cfg->image_size, P, grid };
  ClipVkView im2col_views[2] = { whole (&t->input), whole (&t->cols) };
  dispatch (rec, vk->im2col, im2col_views, 2, &im2col, sizeof (im2col),
      groups (im2col.total, 256), 1, 1, "im2col", 0);
  matmul (rec, whole (&t->cols), t->embed_w, NULL, whole (&t->patches), patches,
      W, 3 * P * P, 0, "patch_embed");

  struct {
    guint32 total, positions, width;
  } embed = { n * T * W, T, W };
  ClipVkView embed_views[4] = { whole (&t->patches), t->class_emb, t->pos_emb,
    whole (&t->h) };
  dispatch (rec, vk->vision_embed, embed_views, 4, &embed, sizeof (embed),
      groups (embed.total, 256), 1, 1, "embed", 0);
  layernorm (rec, whole (&t->h), t->ln_pre_w, t->ln_pre_b, whole (&t->x), n * T,
      W, t->cfg->eps, FALSE);

  record_layers (rec, n, T, FALSE);
}

static void
record_text (Recorder *rec, guint n, guint length)
{
  VkBackend *vk = rec->vk;
  Tower *t = rec->tower;
  const ClipConfig *cfg = vk->parent.model.config;
  guint W = t->cfg->width;
  struct {
    guint32 total, run_length, context_length, width, vocab_size;
  } embed = { n * length * W, length, t->positions, W, cfg->vocab_size };
  ClipVkView views[4] = { whole (&t->input), t->embed_w, t->pos_emb,
    whole (&t->x) };
  dispatch (rec, vk->text_embed, views, 4, &embed, sizeof (embed),
      groups (embed.total, 256), 1, 1, "embed", 0);
  record_layers (rec, n, length, TRUE);
}

/* Records upload, forward pass and download of n items into t->cmd. */
static gboolean
record (VkBackend *vk, Tower *t, int n, int length, const FramesLayout *frames,
    int n_labels, GError **error)
{
  const ClipConfig *cfg = vk->parent.model.config;
  VkDevice device = vk->dev->device;
  VkResult r = vkResetDescriptorPool (device, t->descriptor_pool, 0);
  if (r != VK_SUCCESS)
    return clip_vk_fail (r, "vkResetDescriptorPool", error);
  g_array_set_size (t->stages, 0);

  VkCommandBufferBeginInfo begin = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
  };
  r = vkBeginCommandBuffer (t->cmd, &begin);
  if (r != VK_SUCCESS)
    return clip_vk_fail (r, "vkBeginCommandBuffer", error);

  /* The last submission (waited for) read input and rows: order the copies
   * after it. */
  compute_barrier (t->cmd,
      VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0,
      VK_PIPELINE_STAGE_TRANSFER_BIT, 0);
  ItemSizes s = item_sizes (vk, t);
  if (frames->ints > 0) {
    VkBufferCopy frames_copy = { 0, 0,
      aligned (vk, frames->ints) + frames->bytes };
    vkCmdCopyBuffer (t->cmd, t->frame_upload.buffer, t->frames.buffer, 1,
        &frames_copy);
  } else {
    VkBufferCopy input_copy = { 0, 0, n * s.input };
    vkCmdCopyBuffer (t->cmd, t->upload.buffer, t->input.buffer, 1, &input_copy);
  }
  VkBufferCopy rows_copy = { aligned (vk, t->capacity * s.input), 0, n * 4 };
  vkCmdCopyBuffer (t->cmd, t->upload.buffer, t->rows.buffer, 1, &rows_copy);
  /* The previous submission's dispatches and download are done (we waited
   * on it) but their writes must still be ordered before this one's. */
  compute_barrier (t->cmd,
      VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
      VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_SHADER_WRITE_BIT,
      VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
      VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
  if (vk->profile && t->queries) {
    vkCmdResetQueryPool (t->cmd, t->queries, 0, t->max_dispatches + 1);
    vkCmdWriteTimestamp (t->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
        t->queries, 0);
  }

  Recorder rec = { vk, t, t->cmd, 0, error, FALSE };
  if (t->kind == TOWER_VISION)
    record_vision (&rec, n, frames);
  else
    record_text (&rec, n, length);
  /* Pooling: LayerNorm of the class token / end-of-text rows, projection. */
  layernorm (&rec, whole (&t->x), t->ln_final_w, t->ln_final_b,
      whole (&t->pooled), n, t->cfg->width, t->cfg->eps, TRUE);
  matmul (&rec, whole (&t->pooled), t->proj, NULL, whole (&t->out), n,
      cfg->embed_dim, t->cfg->width, 0, "projection");
  if (n_labels > 0) {
    struct {
      guint32 n_labels, embed_dim;
      float logit_scale;
    } push = { n_labels, cfg->embed_dim, vk->labels_scale };
    ClipVkView views[3] = { whole (&t->out), whole (&vk->labels),
      whole (&t->scores) };
    dispatch (&rec, vk->scores, views, 3, &push, sizeof (push), n, 1, 1,
        "scores", 0);
  }
  if (rec.failed) {
    vkEndCommandBuffer (t->cmd);
    return FALSE;
  }

  compute_barrier (t->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
      VK_ACCESS_SHADER_WRITE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT,
      VK_ACCESS_TRANSFER_READ_BIT);
  VkBufferCopy out_copy = { 0, 0, (VkDeviceSize) n * cfg->embed_dim * 4 };
  vkCmdCopyBuffer (t->cmd, t->out.buffer, t->download.buffer, 1, &out_copy);
  if (n_labels > 0) {
    VkBufferCopy scores_copy = { 0, 0, (VkDeviceSize) n * 2 * n_labels * 4 };
    vkCmdCopyBuffer (t->cmd, t->scores.buffer, t->scores_download.buffer, 1,
        &scores_copy);
  }
  compute_barrier (t->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
      VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_HOST_BIT,
      VK_ACCESS_HOST_READ_BIT);
  r = vkEndCommandBuffer (t->cmd);
  if (r != VK_SUCCESS)
    return clip_vk_fail (r, "vkEndCommandBuffer", error);
  t->recorded_n = n;
  t->recorded_length = length;
  t->recorded_frames = *frames;
  t->recorded_labels = n_labels;
  return TRUE;
}

/* ---------------------------------------------------------------- profile */

static void
update_profile (VkBackend *vk, Tower *t, int n, int length)
{
  guint n_stamps = t->stages->len + 1;
  g_autofree guint64 *stamps = g_new0 (guint64, n_stamps);
  VkResult r = vkGetQueryPoolResults (vk->dev->device, t->queries, 0, n_stamps,
      n_stamps * sizeof (guint64), stamps, sizeof (guint64),
      VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
  if (r != VK_SUCCESS)
    return;
  double ns_per_tick = vk->dev->props.limits.timestampPeriod;
  /* Sum per stage name, in the order the stages first ran. */
  g_autoptr (GArray) names = g_array_new (FALSE, FALSE, sizeof (const char *));
  g_autoptr (GArray) ms = g_array_new (FALSE, TRUE, sizeof (double));
  double total_ms = 0, matmul_ms = 0, matmul_flops = 0;
  for (guint i = 0; i < t->stages->len; i++) {
    const Stage *s = &g_array_index (t->stages, Stage, i);
    double stage_ms = (double) (stamps[i + 1] - stamps[i]) * ns_per_tick * 1e-6;
    guint k = 0;
    while (k < names->len
        && strcmp (g_array_index (names, const char *, k), s->stage) != 0)
      k++;
    if (k == names->len) {
      g_array_append_val (names, s->stage);
      g_array_set_size (ms, k + 1);
    }
    g_array_index (ms, double, k) += stage_ms;
    total_ms += stage_ms;
    if (s->flops > 0) {
      matmul_ms += stage_ms;
      matmul_flops += s->flops;
    }
  }
  GString *text = g_string_new (NULL);
  g_string_append_printf (text, "%s encoder, batch %d",
      t->kind == TOWER_VISION ? "image" : "text", n);
  if (t->kind == TOWER_TEXT)
    g_string_append_printf (text, ", %d positions", length);
  g_string_append_printf (text, ", on %s:\n", vk->dev->props.deviceName);
  for (guint k = 0; k < names->len; k++)
    g_string_append_printf (text, "  %-12s %9.3f ms\n",
        g_array_index (names, const char *, k), g_array_index (ms, double, k));
  g_string_append_printf (text, "  %-12s %9.3f ms\n", "total", total_ms);
  if (matmul_ms > 0)
    g_string_append_printf (text,
        "  matmuls: %.3f GFLOP in %.3f ms = %.1f GFLOP/s\n",
        matmul_flops * 1e-9, matmul_ms, matmul_flops * 1e-6 / matmul_ms);
  g_free (vk->profile_text);
  vk->profile_text = g_string_free (text, FALSE);
}

/* ------------------------------------------------------------------ batches */

static gboolean
frames_layout_equal (const FramesLayout *a, const FramesLayout *b)
{
  return a->ints == b->ints && a->bytes == b->bytes && a->between == b->between
      && a->rows == b->rows;
}

/* Runs n items already written to the upload buffers through the tower:
 * preprocessed floats, or frames laid out as frames says. A batch shaped as
 * the last one reuses its command buffer. */
static gboolean
run (VkBackend *vk, Tower *t, int n, int length, const FramesLayout *frames,
    int n_labels, float *out, GError **error)
{
  if (t->recorded_n != n || t->recorded_length != length
      || !frames_layout_equal (&t->recorded_frames, frames)
      || t->recorded_labels != n_labels)
    if (!record (vk, t, n, length, frames, n_labels, error)) {
      t->recorded_n = 0;
      return FALSE;
    }
  if (!clip_vk_submit_and_wait (vk->dev, t->cmd, error))
    return FALSE;
  memcpy (out, t->download.mapped,
      (gsize) n * vk->parent.model.config->embed_dim * 4);
  if (vk->profile && t->queries)
    update_profile (vk, t, n, length);
  return TRUE;
}

/* ------------------------------------------------------------------ scores */

/* Where a call's scores go: logits and probs [n, n_labels], either NULL. */
typedef struct {
  int n_labels;
  float *logits, *probs;
} ScoresOut;

/* The same outputs from item first on. */
static ScoresOut
scores_from (const ScoresOut *s, int first)
{
  gsize skip = (gsize) first * s->n_labels;
  ScoresOut shifted = { s->n_labels, s->logits ? s->logits + skip : NULL,
    s->probs ? s->probs + skip : NULL };
  return shifted;
}

/* Puts the label set on the device, once per set; the recorded command
 * buffer binds the old one, so it goes. */
static gboolean
use_labels (VkBackend *vk, const ClipBackendLabels *labels, GError **error)
{
  if (vk->labels.buffer && vk->labels_id == labels->id)
    return TRUE;
  const ClipConfig *cfg = vk->parent.model.config;
  VkDeviceSize bytes = (VkDeviceSize) labels->n_labels * cfg->embed_dim * 4;
  if (labels->n_labels < 1 || bytes > vk->dev->max_range) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "%d labels: Vulkan device %s cannot score against that many",
        labels->n_labels, vk->dev->props.deviceName);
    return FALSE;
  }
  clip_vk_buffer_clear (vk->dev, &vk->labels);
  vk->vision.recorded_n = 0;
  ClipVkBuffer staging;
  if (!clip_vk_buffer_init (vk->dev, &staging, bytes, TRUE, error))
    return FALSE;
  memcpy (staging.mapped, labels->embeddings, bytes);
  gboolean ok = clip_vk_buffer_init (vk->dev, &vk->labels, bytes, FALSE, error)
      && copy_and_wait (vk, &staging, &vk->labels, error);
  clip_vk_buffer_clear (vk->dev, &staging);
  if (!ok) {
    clip_vk_buffer_clear (vk->dev, &vk->labels);
    return FALSE;
  }
  vk->labels_id = labels->id;
  vk->labels_scale = labels->logit_scale;
  return TRUE;
}

static gboolean
ensure_scores_capacity (VkBackend *vk, Tower *t, int n, int n_labels,
    GError **error)
{
  VkDeviceSize bytes = (VkDeviceSize) n * 2 * n_labels * 4;
  if (bytes <= t->scores.size)
    return TRUE;
  clip_vk_buffer_clear (vk->dev, &t->scores);
  clip_vk_buffer_clear (vk->dev, &t->scores_download);
  t->recorded_n = 0;
  return clip_vk_buffer_init (vk->dev, &t->scores, bytes, FALSE, error)
      && clip_vk_buffer_init (vk->dev, &t->scores_download, bytes, TRUE, error);
}

/* Copies the last batch's n scores out. */
static void
copy_scores (const Tower *t, const ScoresOut *s, int n)
{
  const float *src = t->scores_download.mapped;
  gsize L = s->n_labels;
  for (int i = 0; i < n; i++) {
    if (s->logits)
      memcpy (s->logits + i * L, src + i * 2 * L, L * sizeof (float));
    if (s->probs)
      memcpy (s->probs + i * L, src + (i * 2 + 1) * L, L * sizeof (float));
  }
}

/* ------------------------------------------------------------------ images */

/* Preprocessed images through the vision tower, scored when scores is not
 * NULL (use_labels first). */
static gboolean
run_images (VkBackend *vk, const float *pixels, int n, const ScoresOut *scores,
    float *out, GError **error)
{
  Tower *t = &vk->vision;
  const ClipConfig *cfg = vk->parent.model.config;
  gsize image_floats = 3 * (gsize) cfg->image_size * cfg->image_size;
  for (int done = 0; done < n;) {
    int chunk = MIN (n - done, t->max_chunk);
    if (!ensure_capacity (vk, t, chunk, error)
        || (scores
            && !ensure_scores_capacity (vk, t, chunk, scores->n_labels, error)))
      return FALSE;
    memcpy (t->upload.mapped, pixels + done * image_floats,
        chunk * image_floats * 4);
    guint32 *rows = (guint32 *) ((guint8 *) t->upload.mapped
        + aligned (vk, t->capacity * image_floats * 4));
    for (int i = 0; i < chunk; i++)
      rows[i] = i * t->positions;
    FramesLayout floats = { 0 };
    if (!run (vk, t, chunk, t->positions, &floats,
            scores ? scores->n_labels : 0, out + (gsize) done * cfg->embed_dim,
            error))
      return FALSE;
    if (scores) {
      ScoresOut chunk_scores = scores_from (scores, done);
      copy_scores (t, &chunk_scores, chunk);
    }
    done += chunk;
  }
  return TRUE;
}

static gboolean
vk_images (ClipBackend *b, const float *pixels, int n, float *out,
    GError **error)
{
  return run_images ((VkBackend *) b, pixels, n, NULL, out, error);
}

/* ------------------------------------------------------------------ frames */

/* The part of one plane of a frame that its resize reads: rows row0 ..
 * row0 + rows - 1, bytes col0 .. col0 + bytes - 1 of each. */
typedef struct {
  int row0, rows, col0, bytes;
} PlaneRegion;

static gboolean
is_yuv (ClipPixelFormat format)
{
  return format == CLIP_PIXEL_I420 || format == CLIP_PIXEL_NV12;
}

/* Fills regions for each plane of the frame; returns how many planes. */
static int
plane_regions (const ClipFrame *frame, const ClipResizePlan *plan,
    PlaneRegion regions[3])
{
  int bpp = frame->format == CLIP_PIXEL_RGB ? 3
      : is_yuv (frame->format)              ? 1
                                            : 4;
  regions[0] = (PlaneRegion) { plan->row_first, plan->row_end - plan->row_first,
    plan->col_first * bpp, (plan->col_end - plan->col_first) * bpp };
  if (!is_yuv (frame->format))
    return 1;
  /* Chroma sample (x / 2, y / 2) serves its 2x2 luma block. */
  int row0 = plan->row_first / 2, row_end = (plan->row_end - 1) / 2 + 1;
  int col0 = plan->col_first / 2, col_end = (plan->col_end - 1) / 2 + 1;
  int sample = frame->format == CLIP_PIXEL_NV12 ? 2 : 1;
  regions[1] = (PlaneRegion) { row0, row_end - row0, col0 * sample,
    (col_end - col0) * sample };
  regions[2] = regions[1];
  return frame->format == CLIP_PIXEL_I420 ? 3 : 2;
}

static gsize
frame_upload_bytes (const ClipFrame *frame, const ClipResizePlan *plan)
{
  PlaneRegion regions[3];
  int planes = plane_regions (frame, plan, regions);
  gsize bytes = 0;
  for (int p = 0; p < planes; p++)
    bytes += ((gsize) regions[p].rows * regions[p].bytes + 3) / 4 * 4;
  return bytes;
}

static gsize
between_bytes (const ClipResizePlan *plan)
{
  return (gsize) (plan->row_end - plan->row_first) * plan->size * 4;
}

/* Grows the frames' buffers; the recorded command buffer refers to the old
 * ones, so it goes too. */
static gboolean
ensure_frames_capacity (VkBackend *vk, Tower *t, VkDeviceSize upload,
    VkDeviceSize between, GError **error)
{
  if (upload > t->frames.size) {
    clip_vk_buffer_clear (vk->dev, &t->frame_upload);
    clip_vk_buffer_clear (vk->dev, &t->frames);
    t->recorded_n = 0;
    if (!clip_vk_buffer_init (vk->dev, &t->frame_upload, upload, TRUE, error)
        || !clip_vk_buffer_init (vk->dev, &t->frames, upload, FALSE, error))
      return FALSE;
  }
  if (between > t->between.size) {
    clip_vk_buffer_clear (vk->dev, &t->between);
    t->recorded_n = 0;
    if (!clip_vk_buffer_init (vk->dev, &t->between, between, FALSE, error))
      return FALSE;
  }
  return TRUE;
}

/* Index in Ints of plan's words, appended to the layout the first time. */
static gint32
place_axis_plan (GHashTable *placed, const ClipAxisPlan *plan, gsize *n_ints)
{
  gpointer index;
  if (g_hash_table_lookup_extended (placed, plan, NULL, &index))
    return GPOINTER_TO_INT (index);
  gint32 at = (gint32) *n_ints;
  *n_ints += (gsize) plan->count * (2 + plan->taps);
  g_hash_table_insert (placed, (gpointer) plan, GINT_TO_POINTER (at));
  return at;
}

static void
write_axis_plan (gint32 *ints, gint32 at, const ClipAxisPlan *plan)
{
  int S = plan->count;
  memcpy (ints + at, plan->start, S * sizeof (gint32));
  memcpy (ints + at + S, plan->length, S * sizeof (gint32));
  memcpy (ints + at + 2 * S, plan->weights,
      (gsize) S * plan->taps * sizeof (gint32));
}

/* Lays n frames out in the frame upload buffer (Ints words, then the bytes
 * their resize reads) and runs them through the vision tower. */
static gboolean
run_frames (VkBackend *vk, const ClipFrame *frames, const ClipResizePlan *plans,
    int n, const ScoresOut *scores, float *out, GError **error)
{
  Tower *t = &vk->vision;
  const ClipConfig *cfg = vk->parent.model.config;
  int S = cfg->image_size;

  /* The layout: parameters, then each YUV table and axis plan once. */
  gsize n_ints = PRE_PARAMS + (gsize) n * PRE_PARAM_WORDS;
  gint32 yuv_at[CLIP_YUV_BT2020 + 1][2] = { { 0 } };
  g_autoptr (GHashTable) placed = g_hash_table_new (NULL, NULL);
  g_autofree gint32 *frame_words = g_new (gint32, (gsize) n * PRE_PARAM_WORDS);
  FramesLayout layout = { 0 };
  for (int f = 0; f < n; f++) {
    const ClipFrame *frame = &frames[f];
    const ClipResizePlan *plan = &plans[f];
    gint32 *w = frame_words + (gsize) f * PRE_PARAM_WORDS;
    PlaneRegion regions[3];
    int planes = plane_regions (frame, plan, regions);
    w[P_FORMAT] = frame->format;
    w[P_IMAGE] = f;
    for (int p = 0; p < 3; p++) {
      PlaneRegion r = regions[MIN (p, planes - 1)];
      w[P_OFFSET + p] = (gint32) layout.bytes;
      w[P_STRIDE + p] = r.bytes;
      w[P_ROW0 + p] = r.row0;
      w[P_COL0 + p] = r.col0;
      if (p < planes)
        layout.bytes += ((gsize) r.rows * r.bytes + 3) / 4 * 4;
    }
    w[P_YUV] = -1;
    if (is_yuv (frame->format)) {
      gint32 *slot = &yuv_at[frame->matrix][frame->full_range ? 1 : 0];
      if (*slot == 0) {
        *slot = (gint32) n_ints;
        n_ints += sizeof (ClipYuvTables) / sizeof (gint32);
      }
      w[P_YUV] = *slot;
    }
    w[P_ROW_FIRST] = plan->row_first;
    w[P_ROWS] = plan->row_end - plan->row_first;
    w[P_COL_PLAN] = plan->columns
        ? place_axis_plan (placed, plan->columns, &n_ints)
        : -1;
    w[P_COL_TAPS] = plan->columns ? plan->columns->taps : 0;
    w[P_LEFT] = plan->left;
    w[P_ROW_PLAN] = plan->rows ? place_axis_plan (placed, plan->rows, &n_ints)
                               : -1;
    w[P_ROW_TAPS] = plan->rows ? plan->rows->taps : 0;
    w[P_TOP] = plan->top;
    w[P_BETWEEN] = (gint32) (layout.between / 4);
    layout.between += between_bytes (plan);
    layout.rows = MAX (layout.rows, (guint) w[P_ROWS]);
  }
  layout.ints = n_ints * sizeof (gint32);
  layout.bytes = MAX (layout.bytes, 4);

  if (!ensure_capacity (vk, t, n, error)
      || !ensure_frames_capacity (vk, t,
          aligned (vk, layout.ints) + layout.bytes, layout.between, error)
      || (scores
          && !ensure_scores_capacity (vk, t, n, scores->n_labels, error)))
    return FALSE;

  gint32 *ints = t->frame_upload.mapped;
  float table[3][256];
  clip_normalize_table (cfg, table);
  memcpy (ints, table, sizeof (table));
  memcpy (ints + PRE_PARAMS, frame_words,
      (gsize) n * PRE_PARAM_WORDS * sizeof (gint32));
  for (int m = 0; m <= CLIP_YUV_BT2020; m++)
    for (int range = 0; range < 2; range++)
      if (yuv_at[m][range])
        memcpy (ints + yuv_at[m][range], clip_yuv_tables_get (m, range),
            sizeof (ClipYuvTables));
  GHashTableIter iter;
  gpointer plan, at;
  g_hash_table_iter_init (&iter, placed);
  while (g_hash_table_iter_next (&iter, &plan, &at))
    write_axis_plan (ints, GPOINTER_TO_INT (at), plan);

  /* The bytes each resize reads, row by row, packed. */
  guint8 *bytes = (guint8 *) t->frame_upload.mapped + aligned (vk, layout.ints);
  for (int f = 0; f < n; f++) {
    const ClipFrame *frame = &frames[f];
    PlaneRegion regions[3];
    int planes = plane_regions (frame, &plans[f], regions);
    const gint32 *w = frame_words + (gsize) f * PRE_PARAM_WORDS;
    for (int p = 0; p < planes; p++) {
      PlaneRegion r = regions[p];
      guint8 *dst = bytes + w[P_OFFSET + p];
      for (int y = 0; y < r.rows; y++)
        memcpy (dst + (gsize) y * r.bytes,
            frame->planes[p] + (gsize) (r.row0 + y) * frame->strides[p]
                + r.col0,
            r.bytes);
    }
  }

  guint32 *rows = (guint32 *) ((guint8 *) t->upload.mapped
      + aligned (vk, t->capacity * 3 * (gsize) S * S * 4));
  for (int i = 0; i < n; i++)
    rows[i] = i * t->positions;
  if (!run (vk, t, n, t->positions, &layout, scores ? scores->n_labels : 0, out,
          error))
    return FALSE;
  if (scores)
    copy_scores (t, scores, n);
  return TRUE;
}

/* A frame too big for the device's share goes through clip_preprocess. */
static gboolean
run_frame_on_cpu (VkBackend *vk, const ClipFrame *frame,
    const ScoresOut *scores, float *out, GError **error)
{
  const ClipConfig *cfg = vk->parent.model.config;
  g_autofree float *pixels = g_new (float, 3 * (gsize) cfg->image_size * cfg->image_size);
  return clip_preprocess (frame, cfg, pixels, error)
      && run_images (vk, pixels, 1, scores, out, error);
}

static gboolean
run_all_frames (VkBackend *vk, const ClipFrame *frames, int n,
    const ScoresOut *scores, float *out, GError **error)
{
  const ClipConfig *cfg = vk->parent.model.config;
  gsize budget = MIN (vk->frame_budget, vk->dev->max_range);
  g_autofree ClipResizePlan *plans = g_new0 (ClipResizePlan, n);
  gboolean ok = TRUE;
  for (int i = 0; i < n && ok; i++)
    ok = clip_resize_plan_init (&plans[i], &frames[i], cfg->image_size, error);

  /* Batches of frames that fit the budget together. */
  for (int done = 0; done < n && ok;) {
    int chunk = 0;
    gsize bytes = 0, between = 0;
    while (done + chunk < n && chunk < vk->vision.max_chunk) {
      gsize frame_bytes = frame_upload_bytes (&frames[done + chunk],
          &plans[done + chunk]);
      gsize frame_between = between_bytes (&plans[done + chunk]);
      if (bytes + frame_bytes > budget || between + frame_between > budget)
        break;
      bytes += frame_bytes;
      between += frame_between;
      chunk++;
    }
    float *chunk_out = out + (gsize) done * cfg->embed_dim;
    ScoresOut chunk_scores = scores ? scores_from (scores, done)
                                    : (ScoresOut) { 0 };
    const ScoresOut *s = scores ? &chunk_scores : NULL;
    if (chunk == 0) {
      ok = run_frame_on_cpu (vk, &frames[done], s, chunk_out, error);
      chunk = 1;
    } else {
      ok = run_frames (vk, frames + done, plans + done, chunk, s, chunk_out,
          error);
    }
    done += chunk;
  }
  for (int i = 0; i < n; i++)
    clip_resize_plan_clear (&plans[i]);
  return ok;
}

static gboolean
vk_frames (ClipBackend *b, const ClipFrame *frames, int n, float *out,
    GError **error)
{
  return run_all_frames ((VkBackend *) b, frames, n, NULL, out, error);
}

static gboolean
vk_classify (ClipBackend *b, const ClipFrame *frames, int n,
    const ClipBackendLabels *labels, float *out, float *logits, float *probs,
    GError **error)
{
  VkBackend *vk = (VkBackend *) b;
  ScoresOut scores = { labels->n_labels, logits, probs };
  return use_labels (vk, labels, error)
      && run_all_frames (vk, frames, n, &scores, out, error);
}

static gboolean
vk_texts (ClipBackend *b, const gint32 *tokens, int n, float *out,
    GError **error)
{
  VkBackend *vk = (VkBackend *) b;
  Tower *t = &vk->text;
  const ClipConfig *cfg = b->model.config;
  int C = cfg->context_length;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < C; j++) {
      gint32 id = tokens[(gsize) i * C + j];
      if (id < 0 || id >= cfg->vocab_size) {
        g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
            "token id %d (prompt %d, position %d) is outside the vocabulary of %s (%d ids)",
            id, i, j, b->model.name, cfg->vocab_size);
        return FALSE;
      }
    }

  for (int done = 0; done < n;) {
    int chunk = MIN (n - done, t->max_chunk);
    const gint32 *ids = tokens + (gsize) done * C;
    if (!ensure_capacity (vk, t, chunk, error))
      return FALSE;
    /* The causal encoder need only run up to the last end-of-text position. */
    int length = 1;
    for (int i = 0; i < chunk; i++)
      length = MAX (length,
          clip_tokens_eot_position (ids + (gsize) i * C, C) + 1);
    memcpy (t->upload.mapped, ids, (gsize) chunk * C * 4);
    guint32 *rows = (guint32 *) ((guint8 *) t->upload.mapped
        + aligned (vk, t->capacity * C * 4));
    for (int i = 0; i < chunk; i++)
      rows[i] = i * length + clip_tokens_eot_position (ids + (gsize) i * C, C);
    FramesLayout none = { 0 };
    if (!run (vk, t, chunk, length, &none, 0,
            out + (gsize) done * cfg->embed_dim, error))
      return FALSE;
    done += chunk;
  }
  return TRUE;
}

/* ------------------------------------------------------------ open, close */

static gboolean
create_pipelines (VkBackend *vk, GError **error)
{
  const char *names[2] = { vk->f16 ? "matmul_f16" : "matmul_f32",
    vk->f16 ? "matmul_f16_vec4" : "matmul_f32_vec4" };
  /* Both tile shapes run 256 invocations: 64x64 with 4x4 outputs each, or
   * 128x128 with 8x8 (more reuse of each value loaded from shared memory). */
  const guint32 small[5] = { 64, 64, 4, 4, 256 };
  const guint32 large[5] = { 128, 128, 8, 8, 256 };
  for (int v = 0; v < 2; v++)
    for (int l = 0; l < 2; l++)
      if (!(vk->matmul[v][l] = clip_vk_pipeline_new (vk->dev, names[v],
                l ? large : small, 5, error)))
        return FALSE;
  return (vk->attention = clip_vk_pipeline_new (vk->dev, "attention", NULL, 0,
              error))
      && (vk->layernorm = clip_vk_pipeline_new (vk->dev, "layernorm", NULL, 0,
              error))
      && (vk->im2col = clip_vk_pipeline_new (vk->dev, "im2col", NULL, 0, error))
      && (vk->vision_embed = clip_vk_pipeline_new (vk->dev, "vision_embed",
              NULL, 0, error))
      && (vk->text_embed = clip_vk_pipeline_new (vk->dev, "text_embed", NULL, 0,
              error))
      && (vk->preprocess_columns = clip_vk_pipeline_new (vk->dev,
              "preprocess_columns", NULL, 0, error))
      && (vk->preprocess_rows = clip_vk_pipeline_new (vk->dev,
              "preprocess_rows", NULL, 0, error))
      && (vk->scores = clip_vk_pipeline_new (vk->dev, "scores", NULL, 0,
              error));
}

static gboolean
init_tower (VkBackend *vk, Tower *t, TowerKind kind, GError **error)
{
  const ClipConfig *cfg = vk->parent.model.config;
  t->kind = kind;
  t->cfg = kind == TOWER_VISION ? &cfg->vision : &cfg->text;
  t->positions = kind == TOWER_VISION ? clip_config_vision_tokens (cfg)
                                      : cfg->context_length;
  t->layers = g_new0 (LayerViews, t->cfg->layers);
  t->stages = g_array_new (FALSE, FALSE, sizeof (Stage));
  const char *tower = kind == TOWER_VISION ? "vision" : "text";
  guint head_dim = t->cfg->width / t->cfg->heads;
  if (t->positions > MAX_POSITIONS || head_dim > MAX_HEAD_DIM) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "%s: the Vulkan backend runs at most %d positions with heads of at most %d, "
        "the %s tower has %d positions with heads of %u",
        vk->parent.model.name, MAX_POSITIONS, MAX_HEAD_DIM, tower, t->positions,
        head_dim);
    return FALSE;
  }

  ItemSizes s = item_sizes (vk, t);
  gsize largest = MAX (MAX (s.input, s.cols), MAX (s.qkv, s.mlp));
  if (largest > vk->dev->max_range) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "%s: one input of the %s tower needs a buffer of %" G_GSIZE_FORMAT
        " bytes, more "
        "than Vulkan device %s can bind",
        vk->parent.model.name, tower, largest, vk->dev->props.deviceName);
    return FALSE;
  }
  /* Bigger batches run as several submissions, so that every buffer stays
   * bindable, the activations within ACTIVATION_BUDGET and the grids within
   * the 65535 workgroups every device allows. */
  gsize per_item = s.input + s.cols + s.patches + 3 * s.x + s.qkv + s.mlp;
  gsize grid_limit = MIN (4096,
      65535 * 64 / t->positions); /* matmul: 65535 tiles of 64 rows */
  gsize chunk = MIN (
      MIN (vk->dev->max_range / largest, ACTIVATION_BUDGET / per_item),
      grid_limit);
  t->max_chunk = MAX (chunk, 1);
  /* A smaller limit for a GPU short of memory (and for the tests). */
  if (vk->max_batch > 0)
    t->max_chunk = MIN (t->max_chunk, vk->max_batch);

  /* Two preprocessing passes, im2col, patch matmul, embed, ln_pre; 7 per
   * layer; ln_post, projection, scores. */
  t->max_dispatches = 7 * t->cfg->layers + 9;
  VkDescriptorPoolSize size = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
    t->max_dispatches * CLIP_VK_BINDINGS };
  VkDescriptorPoolCreateInfo pool_info = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
    .maxSets = t->max_dispatches,
    .poolSizeCount = 1,
    .pPoolSizes = &size,
  };
  VkResult r = vkCreateDescriptorPool (vk->dev->device, &pool_info, NULL,
      &t->descriptor_pool);
  if (r != VK_SUCCESS)
    return clip_vk_fail (r, "vkCreateDescriptorPool", error);
  VkCommandBufferAllocateInfo alloc = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .commandPool = vk->dev->command_pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  r = vkAllocateCommandBuffers (vk->dev->device, &alloc, &t->cmd);
  if (r != VK_SUCCESS)
    return clip_vk_fail (r, "vkAllocateCommandBuffers", error);
  if (vk->profile && vk->dev->timestamps) {
    VkQueryPoolCreateInfo query_info = {
      .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
      .queryType = VK_QUERY_TYPE_TIMESTAMP,
      .queryCount = t->max_dispatches + 1,
    };
    r = vkCreateQueryPool (vk->dev->device, &query_info, NULL, &t->queries);
    if (r != VK_SUCCESS)
      return clip_vk_fail (r, "vkCreateQueryPool", error);
  }
  return TRUE;
}

static void
clear_tower (VkBackend *vk, Tower *t)
{
  VkDevice device = vk->dev->device;
  clear_activations (vk, t);
  if (t->queries)
    vkDestroyQueryPool (device, t->queries, NULL);
  if (t->descriptor_pool)
    vkDestroyDescriptorPool (device, t->descriptor_pool, NULL);
  if (t->cmd)
    vkFreeCommandBuffers (device, vk->dev->command_pool, 1, &t->cmd);
  if (t->stages)
    g_array_unref (t->stages);
  g_free (t->layers);
}

static void
vk_close (ClipBackend *b)
{
  VkBackend *vk = (VkBackend *) b;
  if (vk->dev) {
    VkDevice device = vk->dev->device;
    vkDeviceWaitIdle (device);
    clear_tower (vk, &vk->vision);
    clear_tower (vk, &vk->text);
    VkPipeline pipelines[] = { vk->matmul[0][0], vk->matmul[0][1],
      vk->matmul[1][0], vk->matmul[1][1], vk->attention, vk->layernorm,
      vk->im2col, vk->vision_embed, vk->text_embed, vk->preprocess_columns,
      vk->preprocess_rows, vk->scores };
    for (guint i = 0; i < G_N_ELEMENTS (pipelines); i++)
      if (pipelines[i])
        vkDestroyPipeline (device, pipelines[i], NULL);
    clip_vk_buffer_clear (vk->dev, &vk->weights);
    clip_vk_buffer_clear (vk->dev, &vk->labels);
    clip_vk_buffer_clear (vk->dev, &vk->dummy);
    clip_vk_device_close (vk->dev);
  }
  g_free (vk->description);
  g_free (vk->profile_text);
  g_free (vk);
}

ClipBackend *
clip_vulkan_backend_open (const ClipWeightsView *model,
    const ClipVulkanOptions *opts, GError **error)
{
  VkBackend *vk = g_new0 (VkBackend, 1);
  vk->parent.ops = &clip_backend_vulkan;
  vk->parent.model = *model;
  vk->profile = opts->profile;
  vk->forced_tile = opts->matmul_tile == 64 || opts->matmul_tile == 128
      ? opts->matmul_tile
      : 0;
  vk->max_batch = opts->max_batch;
  vk->frame_budget = opts->frame_budget > 0 ? opts->frame_budget
                                            : FRAME_UPLOAD_BUDGET;
  vk->dev = clip_vk_device_open (opts->device_index, opts->device_name,
      opts->f16, opts->validation, error);
  if (vk->dev == NULL) {
    vk_close (&vk->parent);
    return NULL;
  }
  /* The matmul kernel's workgroups: 256 invocations and 16 KiB of shared
   * memory, both above the least a device may offer. */
  const VkPhysicalDeviceLimits *limits = &vk->dev->props.limits;
  if (limits->maxComputeWorkGroupInvocations < 256
      || limits->maxComputeWorkGroupSize[0] < 256
      || limits->maxComputeSharedMemorySize < 16384) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "Vulkan device %s is too small for our kernels (workgroups of %u invocations "
        "and %u bytes of shared memory; 256 and 16384 are needed)",
        vk->dev->props.deviceName, limits->maxComputeWorkGroupInvocations,
        limits->maxComputeSharedMemorySize);
    vk_close (&vk->parent);
    return NULL;
  }
  vk->f16 = vk->dev->f16_storage;
  /* 16 bytes keeps every weight's start aligned for vec4 loads. */
  vk->align = MAX (vk->dev->props.limits.minStorageBufferOffsetAlignment, 16);
  if (!init_tower (vk, &vk->vision, TOWER_VISION, error)
      || !init_tower (vk, &vk->text, TOWER_TEXT, error)
      || !clip_vk_buffer_init (vk->dev, &vk->dummy, 256, FALSE, error)
      || !create_pipelines (vk, error)
      || !upload_weights (vk, &vk->parent.model, error)) {
    vk_close (&vk->parent);
    return NULL;
  }
  vk->description = g_strdup_printf ("%s, %s weights", vk->dev->description,
      vk->f16 ? "F16" : "F32");
  return &vk->parent;
}

gboolean
clip_vulkan_read_images (ClipBackend *b, int n, float *pixels, GError **error)
{
  VkBackend *vk = (VkBackend *) b;
  const ClipConfig *cfg = b->model.config;
  gsize bytes = (gsize) n * 3 * cfg->image_size * cfg->image_size * 4;
  g_return_val_if_fail (bytes <= vk->vision.input.size, FALSE);
  ClipVkBuffer host;
  if (!clip_vk_buffer_init (vk->dev, &host, vk->vision.input.size, TRUE, error))
    return FALSE;
  gboolean ok = copy_and_wait (vk, &vk->vision.input, &host, error);
  if (ok)
    memcpy (pixels, host.mapped, bytes);
  clip_vk_buffer_clear (vk->dev, &host);
  return ok;
}

static const char *
vk_describe (ClipBackend *b)
{
  VkBackend *vk = (VkBackend *) b;
  return vk->description;
}

static const char *
vk_profile (ClipBackend *b)
{
  VkBackend *vk = (VkBackend *) b;
  if (vk->profile && !vk->dev->timestamps)
    return "timestamp queries are not supported on this device";
  return vk->profile_text;
}

const ClipBackendOps clip_backend_vulkan = {
  .name = "vulkan",
  .images = vk_images,
  .frames = vk_frames,
  .classify = vk_classify,
  .texts = vk_texts,
  .describe = vk_describe,
  .profile = vk_profile,
  .close = vk_close,
};
