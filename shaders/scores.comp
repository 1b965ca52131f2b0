#version 450
// SPDX-License-Identifier: LGPL-2.1-or-later
/* Zero-shot scores at the end of the image encoder's pass, as
 * clip_label_set_score computes them: per image (one workgroup each), the
 * L2 norm of its embedding, logits[l] = scale * cos (embedding, label l)
 * against the L2-normalised label rows, then a max-subtracted softmax.
 * scores[image] holds the n_labels logits, then the n_labels probabilities. */
layout (local_size_x = 64) in;

layout (push_constant) uniform Params {
  uint n_labels;
  uint embed_dim;
  float logit_scale;
} p;

layout (std430, binding = 0) readonly buffer Embeddings { float embeddings[]; };
layout (std430, binding = 1) readonly buffer Labels { float labels[]; };
layout (std430, binding = 2) buffer Scores { float scores[]; };

shared float partial[64];

/* The sum (or the max) of every invocation's value, returned to all. */
float
reduce (float value, bool take_max)
{
  uint tid = gl_LocalInvocationID.x;
  partial[tid] = value;
  barrier ();
  for (uint half_size = 32; half_size > 0; half_size /= 2) {
    if (tid < half_size)
      partial[tid] = take_max ? max (partial[tid], partial[tid + half_size])
                              : partial[tid] + partial[tid + half_size];
    barrier ();
  }
  float result = partial[0];
  barrier ();
  return result;
}

void
main ()
{
  uint E = p.embed_dim, L = p.n_labels;
  uint tid = gl_LocalInvocationID.x;
  uint e0 = gl_WorkGroupID.x * E, s0 = gl_WorkGroupID.x * 2 * L;

  float sum = 0.0;
  for (uint d = tid; d < E; d += 64)
    sum += embeddings[e0 + d] * embeddings[e0 + d];
  float norm = reduce (sum, false);
  /* A zero embedding has no direction: every cosine is 0. */
  float inv_norm = norm > 0.0 ? 1.0 / sqrt (norm) : 0.0;

  float largest = -3.0e38;
  for (uint l = tid; l < L; l += 64) {
    float dot_product = 0.0;
    for (uint d = 0; d < E; d++)
      dot_product += labels[l * E + d] * embeddings[e0 + d];
    float logit = p.logit_scale * dot_product * inv_norm;
    scores[s0 + l] = logit;
    largest = max (largest, logit);
  }
  largest = reduce (largest, true);

  /* Each invocation reads back only the logits it wrote. */
  float total = 0.0;
  for (uint l = tid; l < L; l += 64) {
    float e = exp (scores[s0 + l] - largest);
    scores[s0 + L + l] = e;
    total += e;
  }
  total = reduce (total, false);
  for (uint l = tid; l < L; l += 64)
    scores[s0 + L + l] /= total;
}
