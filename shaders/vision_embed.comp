#version 450
// SPDX-License-Identifier: LGPL-2.1-or-later
/* x[b, t] = (t == 0 ? class_embedding : patch_embeds[b, t - 1]) + pos[t],
 * for b < n, t < T = patches + 1. */
layout (local_size_x = 256) in;

layout (push_constant) uniform Params {
  uint total; /* n * T * W */
  uint positions;
  uint width;
} p;

layout (std430, binding = 0) readonly buffer Patches { float patch_embeds[]; };
layout (std430, binding = 1) readonly buffer Class { float class_embedding[]; };
layout (std430, binding = 2) readonly buffer Pos { float pos[]; };
layout (std430, binding = 3) writeonly buffer X { float x[]; };

void
main ()
{
  uint step = gl_NumWorkGroups.x * 256;
  for (uint i = gl_GlobalInvocationID.x; i < p.total; i += step) {
    uint w = i % p.width;
    uint t = (i / p.width) % p.positions;
    uint b = i / (p.width * p.positions);
    float v = t == 0 ? class_embedding[w]
                     : patch_embeds[(b * (p.positions - 1) + t - 1) * p.width + w];
    x[i] = v + pos[t * p.width + w];
  }
}
