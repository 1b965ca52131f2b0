// SPDX-License-Identifier: LGPL-2.1-or-later
/* What the two preprocessing kernels share: the layout of the Ints buffer
 * that the host writes per batch (runtime/vulkan/vk-backend.c, Frame
 * parameters, must match) and the fixed-point constants of
 * runtime/preprocess.h. Everything in Ints is an int, the normalisation
 * table's floats as their bits.
 *
 *   [0, 768)             table[c * 256 + byte] = (byte / 255 - mean[c]) / std[c]
 *   [768, ...)           PARAM_WORDS per frame of the batch
 *   then                 YUV tables and axis plans the parameters point at
 *
 * An axis plan of a crop of side S with T taps is start[S], length[S],
 * weights[S * T]. */
#define NORMALIZE_TABLE 0
#define PARAMS 768
#define PARAM_WORDS 24

#define P_FORMAT 0     /* runtime/clip.h ClipPixelFormat */
#define P_IMAGE 1      /* the output image of the batch */
#define P_OFFSET 2     /* [3] byte offset of each plane's first uploaded row */
#define P_STRIDE 5     /* [3] bytes per uploaded row */
#define P_ROW0 8       /* [3] plane row of the first uploaded row */
#define P_COL0 11      /* [3] plane column of each uploaded row's first byte */
#define P_YUV 14       /* index of the YUV tables: luma, r_from_v, g_from_u,
                          g_from_v, b_from_u, 256 each; -1 for RGB */
#define P_ROW_FIRST 15 /* frame row of the first horizontally filtered row */
#define P_ROWS 16      /* how many rows the horizontal pass produces */
#define P_COL_PLAN 17  /* index of the column plan, -1 when not filtered */
#define P_COL_TAPS 18
#define P_LEFT 19      /* first kept column when not filtered */
#define P_ROW_PLAN 20  /* index of the row plan, -1 when not filtered */
#define P_ROW_TAPS 21
#define P_TOP 22       /* first kept row when not filtered */
#define P_BETWEEN 23   /* index of the frame's rows in Between */

#define FORMAT_RGB 0
#define FORMAT_RGBA 1
#define FORMAT_BGRA 2
#define FORMAT_I420 3
#define FORMAT_NV12 4

/* Pillow's 8-bit fixed point (CLIP_RESIZE_WEIGHT_BITS) and the YUV
 * tables' (CLIP_YUV_BITS, CLIP_YUV_BIAS). */
#define WEIGHT_BITS 22
#define WEIGHT_HALF (1 << (WEIGHT_BITS - 1))
#define YUV_BITS 16
#define YUV_BIAS 1024

/* Between holds one RGB pixel per uint, red in the low byte. */
uint
pack_rgb (ivec3 rgb)
{
  return uint (rgb.r) | (uint (rgb.g) << 8) | (uint (rgb.b) << 16);
}

ivec3
unpack_rgb (uint packed)
{
  return ivec3 (packed & 255u, (packed >> 8) & 255u, (packed >> 16) & 255u);
}

/* Pillow's clip8 of a weighted sum. */
ivec3
weighted_to_u8 (ivec3 sum)
{
  return clamp (sum >> WEIGHT_BITS, 0, 255);
}
