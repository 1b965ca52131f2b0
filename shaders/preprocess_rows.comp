#version 450
// SPDX-License-Identifier: LGPL-2.1-or-later
#extension GL_GOOGLE_include_directive : require
/* CLIP preprocessing on the device, second half: the vertical pass of
 * Pillow's bicubic resize over the horizontally filtered rows (same integer
 * arithmetic as runtime/preprocess.c), then ToTensor and Normalize through
 * the host's table, into images [n, 3, S, S]. x: column, y: row (looping),
 * z: frame of the batch. */
#include "preprocess.glsl"

layout (local_size_x = 64, local_size_y = 4) in;

layout (push_constant) uniform Params {
  int size;
} p;

layout (std430, binding = 0) readonly buffer Ints { int ints[]; };
layout (std430, binding = 1) readonly buffer Between { uint between[]; };
layout (std430, binding = 2) writeonly buffer Images { float images[]; };

void
main ()
{
  int S = p.size;
  int i = int (gl_GlobalInvocationID.x);
  int base = PARAMS + int (gl_GlobalInvocationID.z) * PARAM_WORDS;
  if (i >= S)
    return;
  int plan = ints[base + P_ROW_PLAN];
  int taps = ints[base + P_ROW_TAPS];
  int row_first = ints[base + P_ROW_FIRST];
  int rows_at = ints[base + P_BETWEEN] + i;
  int image = ints[base + P_IMAGE];
  int step = int (gl_NumWorkGroups.y * gl_WorkGroupSize.y);
  for (int j = int (gl_GlobalInvocationID.y); j < S; j += step) {
    ivec3 rgb;
    if (plan < 0) {
      rgb = unpack_rgb (between[rows_at + (ints[base + P_TOP] + j - row_first) * S]);
    } else {
      int start = ints[plan + j], length = ints[plan + S + j];
      int weights = plan + 2 * S + j * taps;
      ivec3 sum = ivec3 (WEIGHT_HALF);
      for (int t = 0; t < length; t++)
        sum += unpack_rgb (between[rows_at + (start + t - row_first) * S])
            * ints[weights + t];
      rgb = weighted_to_u8 (sum);
    }
    int at = (image * 3 * S + j) * S + i;
    images[at] = intBitsToFloat (ints[NORMALIZE_TABLE + rgb.r]);
    images[at + S * S] = intBitsToFloat (ints[NORMALIZE_TABLE + 256 + rgb.g]);
    images[at + 2 * S * S] = intBitsToFloat (ints[NORMALIZE_TABLE + 512 + rgb.b]);
  }
}
