#version 450
// SPDX-License-Identifier: LGPL-2.1-or-later
/* C[M, N] = act (A[M, K] . B[N, K]^T + bias[N]) (+ C when accumulating).
 *
 * A is an activation (F32), B a linear weight as torch stores it ([out, in],
 * so both operands are contiguous along K), F16 when WEIGHT_F16 is defined.
 * Each workgroup computes a BM x BN tile, staging BK-wide slices of A and B
 * through shared memory; each invocation keeps a TM x TN block of outputs in
 * registers. VEC4 loads four K-consecutive values at once (needs K % 4 == 0);
 * the next slice is fetched into registers while the current one is used. */
#extension GL_EXT_control_flow_attributes : require
#ifdef WEIGHT_F16
#extension GL_EXT_shader_16bit_storage : require
#endif

layout (constant_id = 0) const uint BM = 64;
layout (constant_id = 1) const uint BN = 64;
layout (constant_id = 2) const uint TM = 4;
layout (constant_id = 3) const uint TN = 4;
layout (local_size_x_id = 4) in; /* (BM / TM) * (BN / TN) */

const uint BK = 16;
const uint THREADS_X = BN / TN;
const uint THREADS_Y = BM / TM;
const uint THREADS = THREADS_X * THREADS_Y;
/* Each invocation's rows (and columns) come in groups of four consecutive
 * ones so that shared memory is read as vec4 without bank conflicts. */
const uint GROUPS_M = TM / 4;
const uint GROUPS_N = TN / 4;
const uint CHUNKS_A = BM * BK / 4 / THREADS; /* vec4 chunks each invocation loads */
const uint CHUNKS_B = BN * BK / 4 / THREADS;

const uint FLAG_BIAS = 1u;
const uint FLAG_ACCUMULATE = 2u;
const uint ACT_SHIFT = 2u; /* 0 none, 1 QuickGELU, 2 erf GELU */

layout (push_constant) uniform Params {
  uint M, N, K;
  uint flags;
} p;

#ifdef VEC4
layout (std430, binding = 0) readonly buffer A { vec4 a[]; };
#ifdef WEIGHT_F16
layout (std430, binding = 1) readonly buffer B { f16vec4 b[]; };
#else
layout (std430, binding = 1) readonly buffer B { vec4 b[]; };
#endif
#else
layout (std430, binding = 0) readonly buffer A { float a[]; };
#ifdef WEIGHT_F16
layout (std430, binding = 1) readonly buffer B { float16_t b[]; };
#else
layout (std430, binding = 1) readonly buffer B { float b[]; };
#endif
#endif
layout (std430, binding = 2) readonly buffer Bias { float bias[]; };
layout (std430, binding = 3) buffer C { float c[]; };

/* Tiles stored K-major: tile_a[k][m], as vec4 over m. */
shared vec4 tile_a[BK * BM / 4];
shared vec4 tile_b[BK * BN / 4];

vec4
load_a (uint row, uint k)
{
  if (row >= p.M)
    return vec4 (0.0);
#ifdef VEC4
  return k < p.K ? a[(row * p.K + k) / 4] : vec4 (0.0);
#else
  vec4 v = vec4 (0.0);
  uint base = row * p.K + k;
  [[unroll]] for (uint i = 0; i < 4; i++)
    if (k + i < p.K)
      v[i] = a[base + i];
  return v;
#endif
}

vec4
load_b (uint row, uint k)
{
  if (row >= p.N)
    return vec4 (0.0);
#ifdef VEC4
  return k < p.K ? vec4 (b[(row * p.K + k) / 4]) : vec4 (0.0);
#else
  vec4 v = vec4 (0.0);
  uint base = row * p.K + k;
  [[unroll]] for (uint i = 0; i < 4; i++)
    if (k + i < p.K)
      v[i] = float (b[base + i]);
  return v;
#endif
}

/* erf with |error| < 1.2e-7 (Chebyshev fit of erfc, Numerical Recipes 6.2);
 * GLSL has no erf. */
float
erf_approx (float x)
{
  float z = abs (x);
  float t = 1.0 / (1.0 + 0.5 * z);
  float r = t * exp (-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196
      + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398
      + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0.0 ? 1.0 - r : r - 1.0;
}

float
activate (float x, uint act)
{
  if (act == 1u)
    return x / (1.0 + exp (-1.702 * x));
  if (act == 2u)
    return 0.5 * x * (1.0 + erf_approx (x * 0.70710678118654752));
  return x;
}

void
main ()
{
  uint tid = gl_LocalInvocationIndex;
  uint tx = tid % THREADS_X;
  uint ty = tid / THREADS_X;
  uint m0 = gl_WorkGroupID.y * BM;
  uint n0 = gl_WorkGroupID.x * BN;

  float acc[TM * TN];
  [[unroll]] for (uint i = 0; i < TM * TN; i++)
    acc[i] = 0.0;

  vec4 next_a[CHUNKS_A];
  vec4 next_b[CHUNKS_B];
  [[unroll]] for (uint i = 0; i < CHUNKS_A; i++) {
    uint chunk = tid + i * THREADS;
    next_a[i] = load_a (m0 + chunk / (BK / 4), (chunk % (BK / 4)) * 4);
  }
  [[unroll]] for (uint i = 0; i < CHUNKS_B; i++) {
    uint chunk = tid + i * THREADS;
    next_b[i] = load_b (n0 + chunk / (BK / 4), (chunk % (BK / 4)) * 4);
  }

  for (uint k0 = 0; k0 < p.K; k0 += BK) {
    [[unroll]] for (uint i = 0; i < CHUNKS_A; i++) {
      uint chunk = tid + i * THREADS;
      uint row = chunk / (BK / 4);
      uint k = (chunk % (BK / 4)) * 4;
      [[unroll]] for (uint j = 0; j < 4; j++)
        tile_a[(k + j) * (BM / 4) + row / 4][row % 4] = next_a[i][j];
    }
    [[unroll]] for (uint i = 0; i < CHUNKS_B; i++) {
      uint chunk = tid + i * THREADS;
      uint row = chunk / (BK / 4);
      uint k = (chunk % (BK / 4)) * 4;
      [[unroll]] for (uint j = 0; j < 4; j++)
        tile_b[(k + j) * (BN / 4) + row / 4][row % 4] = next_b[i][j];
    }
    barrier ();

    /* Fetch the next slice while this one is multiplied. */
    if (k0 + BK < p.K) {
      [[unroll]] for (uint i = 0; i < CHUNKS_A; i++) {
        uint chunk = tid + i * THREADS;
        next_a[i] = load_a (m0 + chunk / (BK / 4), k0 + BK + (chunk % (BK / 4)) * 4);
      }
      [[unroll]] for (uint i = 0; i < CHUNKS_B; i++) {
        uint chunk = tid + i * THREADS;
        next_b[i] = load_b (n0 + chunk / (BK / 4), k0 + BK + (chunk % (BK / 4)) * 4);
      }
    }

    [[unroll]] for (uint k = 0; k < BK; k++) {
      vec4 va[GROUPS_M];
      vec4 vb[GROUPS_N];
      [[unroll]] for (uint g = 0; g < GROUPS_M; g++)
        va[g] = tile_a[k * (BM / 4) + g * THREADS_Y + ty];
      [[unroll]] for (uint g = 0; g < GROUPS_N; g++)
        vb[g] = tile_b[k * (BN / 4) + g * THREADS_X + tx];
      [[unroll]] for (uint i = 0; i < TM; i++)
        [[unroll]] for (uint j = 0; j < TN; j++)
          acc[i * TN + j] += va[i / 4][i % 4] * vb[j / 4][j % 4];
    }
    barrier ();
  }

  uint act = p.flags >> ACT_SHIFT;
  [[unroll]] for (uint i = 0; i < TM; i++) {
    uint row = m0 + ((i / 4) * THREADS_Y + ty) * 4 + i % 4;
    if (row >= p.M)
      continue;
    [[unroll]] for (uint j = 0; j < TN; j++) {
      uint col = n0 + ((j / 4) * THREADS_X + tx) * 4 + j % 4;
      if (col >= p.N)
        continue;
      float v = acc[i * TN + j];
      if ((p.flags & FLAG_BIAS) != 0u)
        v += bias[col];
      v = activate (v, act);
      uint at = row * p.N + col;
      if ((p.flags & FLAG_ACCUMULATE) != 0u)
        v += c[at];
      c[at] = v;
    }
  }
}
