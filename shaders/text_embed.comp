#version 450
// SPDX-License-Identifier: LGPL-2.1-or-later
/* x[b, t] = token_embedding[tokens[b, t]] + pos[t] for the first `run_length`
 * positions of each row of context_length token ids. Ids are checked by the
 * host; the clamp only keeps a bad one from reading outside the table. */
layout (local_size_x = 256) in;

layout (push_constant) uniform Params {
  uint total; /* n * run_length * W */
  uint run_length;
  uint context_length;
  uint width;
  uint vocab_size;
} p;

layout (std430, binding = 0) readonly buffer Tokens { int tokens[]; };
layout (std430, binding = 1) readonly buffer TokenEmbedding { float token_embedding[]; };
layout (std430, binding = 2) readonly buffer Pos { float pos[]; };
layout (std430, binding = 3) writeonly buffer X { float x[]; };

void
main ()
{
  uint step = gl_NumWorkGroups.x * 256;
  for (uint i = gl_GlobalInvocationID.x; i < p.total; i += step) {
    uint w = i % p.width;
    uint t = (i / p.width) % p.run_length;
    uint b = i / (p.width * p.run_length);
    uint id = uint (clamp (tokens[b * p.context_length + t], 0, int (p.vocab_size) - 1));
    x[i] = token_embedding[id * p.width + w] + pos[t * p.width + w];
  }
}
