#version 450
// SPDX-License-Identifier: LGPL-2.1-or-later
#extension GL_GOOGLE_include_directive : require
/* CLIP preprocessing on the device, first half: the horizontal pass of
 * Pillow's bicubic resize (runtime/preprocess.c, same integer arithmetic,
 * so the same bytes), from the frame's uploaded bytes in its own format
 * (packed RGB, RGBA, BGRA; planar I420, NV12 converted with the frame's
 * YUV tables) to 8-bit RGB rows of the kept columns. x: kept column,
 * y: rows (looping), z: frame of the batch. */
#include "preprocess.glsl"

layout (local_size_x = 64, local_size_y = 4) in;

layout (push_constant) uniform Params {
  int size; /* the crop's side */
} p;

layout (std430, binding = 0) readonly buffer Frames { uint frame_bytes[]; };
layout (std430, binding = 1) readonly buffer Ints { int ints[]; };
layout (std430, binding = 2) writeonly buffer Between { uint between[]; };

int base;

int
byte_at (int index)
{
  return int ((frame_bytes[index >> 2] >> ((index & 3) << 3)) & 255u);
}

/* The byte offset of plane column x in plane row y. */
int
plane_at (int plane, int x, int y)
{
  return ints[base + P_OFFSET + plane]
      + (y - ints[base + P_ROW0 + plane]) * ints[base + P_STRIDE + plane]
      + x - ints[base + P_COL0 + plane];
}

ivec3
pixel (int x, int y)
{
  int format = ints[base + P_FORMAT];
  if (format == FORMAT_RGB) {
    int at = plane_at (0, 3 * x, y);
    return ivec3 (byte_at (at), byte_at (at + 1), byte_at (at + 2));
  }
  if (format == FORMAT_RGBA) {
    int at = plane_at (0, 4 * x, y);
    return ivec3 (byte_at (at), byte_at (at + 1), byte_at (at + 2));
  }
  if (format == FORMAT_BGRA) {
    int at = plane_at (0, 4 * x, y);
    return ivec3 (byte_at (at + 2), byte_at (at + 1), byte_at (at));
  }
  /* Chroma sample (x / 2, y / 2) serves its 2x2 luma block. */
  int luma = byte_at (plane_at (0, x, y));
  int u, v;
  if (format == FORMAT_I420) {
    u = byte_at (plane_at (1, x / 2, y / 2));
    v = byte_at (plane_at (2, x / 2, y / 2));
  } else {
    int at = plane_at (1, 2 * (x / 2), y / 2);
    u = byte_at (at);
    v = byte_at (at + 1);
  }
  int t = ints[base + P_YUV];
  int l = ints[t + luma];
  ivec3 sum = ivec3 (l + ints[t + 256 + v],
      l + ints[t + 512 + u] + ints[t + 768 + v],
      l + ints[t + 1024 + u]);
  return clamp ((sum >> YUV_BITS) - YUV_BIAS, 0, 255);
}

void
main ()
{
  int S = p.size;
  int i = int (gl_GlobalInvocationID.x);
  base = PARAMS + int (gl_GlobalInvocationID.z) * PARAM_WORDS;
  if (i >= S)
    return;
  int rows = ints[base + P_ROWS];
  int row_first = ints[base + P_ROW_FIRST];
  int plan = ints[base + P_COL_PLAN];
  int out_at = ints[base + P_BETWEEN] + i;
  int step = int (gl_NumWorkGroups.y * gl_WorkGroupSize.y);
  for (int r = int (gl_GlobalInvocationID.y); r < rows; r += step) {
    int y = row_first + r;
    ivec3 rgb;
    if (plan < 0) {
      rgb = pixel (ints[base + P_LEFT] + i, y);
    } else {
      int start = ints[plan + i], length = ints[plan + S + i];
      int weights = plan + 2 * S + i * ints[base + P_COL_TAPS];
      ivec3 sum = ivec3 (WEIGHT_HALF);
      for (int t = 0; t < length; t++)
        sum += pixel (start + t, y) * ints[weights + t];
      rgb = weighted_to_u8 (sum);
    }
    between[out_at + r * S] = pack_rgb (rgb);
  }
}
