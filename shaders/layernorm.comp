#version 450
// SPDX-License-Identifier: LGPL-2.1-or-later
/* LayerNorm over rows of width W: out[r] = (x - mean) / sqrt (var + eps) * w + b,
 * mean and variance in two passes (no cancellation from E[x^2] - E[x]^2).
 * With p.gather set, output row r reads input row rows[r]: the class token
 * of each image, or the end-of-text position of each prompt. A workgroup
 * normalises rows x, x + groups, ... so any row count fits the grid limits. */
layout (local_size_x = 128) in;

const uint THREADS = 128;

layout (push_constant) uniform Params {
  uint rows; /* output rows */
  uint width;
  uint gather;
  float eps;
} p;

layout (std430, binding = 0) readonly buffer In { float x[]; };
layout (std430, binding = 1) readonly buffer Weight { float weight[]; };
layout (std430, binding = 2) readonly buffer Bias { float bias[]; };
layout (std430, binding = 3) writeonly buffer Out { float y[]; };
layout (std430, binding = 4) readonly buffer Rows { uint rows[]; };

shared float partial[THREADS];

float
sum_over_workgroup (float v)
{
  uint tid = gl_LocalInvocationIndex;
  partial[tid] = v;
  for (uint stride = THREADS / 2; stride > 0; stride /= 2) {
    barrier ();
    if (tid < stride)
      partial[tid] += partial[tid + stride];
  }
  barrier ();
  float total = partial[0];
  barrier (); /* partial[] is reused by the next call */
  return total;
}

void
normalize_row (uint out_row)
{
  uint tid = gl_LocalInvocationIndex;
  uint in_row = p.gather != 0u ? rows[out_row] : out_row;
  uint in_base = in_row * p.width;
  uint out_base = out_row * p.width;

  float s = 0.0;
  for (uint i = tid; i < p.width; i += THREADS)
    s += x[in_base + i];
  float mean = sum_over_workgroup (s) / float (p.width);

  float s2 = 0.0;
  for (uint i = tid; i < p.width; i += THREADS) {
    float d = x[in_base + i] - mean;
    s2 += d * d;
  }
  float inv_std = inversesqrt (sum_over_workgroup (s2) / float (p.width) + p.eps);

  for (uint i = tid; i < p.width; i += THREADS)
    y[out_base + i] = (x[in_base + i] - mean) * inv_std * weight[i] + bias[i];
}

void
main ()
{
  for (uint row = gl_WorkGroupID.x; row < p.rows; row += gl_NumWorkGroups.x)
    normalize_row (row);
}
