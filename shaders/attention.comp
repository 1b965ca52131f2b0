#version 450
// SPDX-License-Identifier: LGPL-2.1-or-later
/* Multi-head self-attention for one query row of one head of one sequence
 * per workgroup: out = softmax (q k^T * scale) v, with the causal mask of the
 * text tower (query i sees keys j <= i) when p.causal is set.
 * qkv is [n, T, 3W] (the fused projection: q, then k, then v), out [n, T, W];
 * heads are contiguous slices of the width. */
layout (local_size_x = 64) in;

const uint THREADS = 64;
const uint MAX_POSITIONS = 1024; /* the backend refuses longer sequences */
const uint MAX_HEAD_DIM = 256;

layout (push_constant) uniform Params {
  uint positions; /* T */
  uint width;     /* W */
  uint head_dim;
  uint causal;
  float scale;    /* 1 / sqrt (head_dim) */
} p;

layout (std430, binding = 0) readonly buffer QKV { float qkv[]; };
layout (std430, binding = 1) writeonly buffer Out { float result[]; };

shared float q[MAX_HEAD_DIM];
shared float scores[MAX_POSITIONS];
shared float partial[THREADS];

/* Reduces partial[] to partial[0] with max (is_max) or sum. */
void
reduce (bool is_max)
{
  uint tid = gl_LocalInvocationIndex;
  for (uint stride = THREADS / 2; stride > 0; stride /= 2) {
    barrier ();
    if (tid < stride)
      partial[tid] = is_max ? max (partial[tid], partial[tid + stride])
                            : partial[tid] + partial[tid + stride];
  }
  barrier ();
}

void
main ()
{
  uint tid = gl_LocalInvocationIndex;
  uint row = gl_WorkGroupID.x;
  uint head = gl_WorkGroupID.y;
  uint seq = gl_WorkGroupID.z;
  uint stride = 3 * p.width;
  uint seq_base = seq * p.positions * stride + head * p.head_dim;
  uint keys = p.causal != 0u ? row + 1 : p.positions;

  for (uint d = tid; d < p.head_dim; d += THREADS)
    q[d] = qkv[seq_base + row * stride + d] * p.scale;
  barrier ();

  float local_max = -3.402823466e38;
  for (uint j = tid; j < keys; j += THREADS) {
    uint k_base = seq_base + j * stride + p.width;
    float s = 0.0;
    for (uint d = 0; d < p.head_dim; d++)
      s += q[d] * qkv[k_base + d];
    scores[j] = s;
    local_max = max (local_max, s);
  }
  partial[tid] = local_max;
  reduce (true);
  float row_max = partial[0];
  barrier ();

  /* Subtracting the row maximum keeps exp() from overflowing. */
  float local_sum = 0.0;
  for (uint j = tid; j < keys; j += THREADS) {
    float e = exp (scores[j] - row_max);
    scores[j] = e;
    local_sum += e;
  }
  partial[tid] = local_sum;
  reduce (false);
  float inv_sum = 1.0 / partial[0];

  uint out_base = (seq * p.positions + row) * p.width + head * p.head_dim;
  for (uint d = tid; d < p.head_dim; d += THREADS) {
    uint v_base = seq_base + 2 * p.width + d;
    float acc = 0.0;
    for (uint j = 0; j < keys; j++)
      acc += scores[j] * qkv[v_base + j * stride];
    result[out_base + d] = acc * inv_sum;
  }
}
