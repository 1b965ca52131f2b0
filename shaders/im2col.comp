#version 450
// SPDX-License-Identifier: LGPL-2.1-or-later
/* Patch extraction for the stride = patch convolution: images [n, 3, S, S]
 * -> patches [n * G * G, 3 * P * P], each row one patch flattened in the
 * conv weight's (channel, y, x) order, rows in row-major grid order; the
 * convolution is then one matmul against conv1's [W, 3 * P * P] weight. */
layout (local_size_x = 256) in;

layout (push_constant) uniform Params {
  uint total; /* n * G * G * 3 * P * P */
  uint image_size;
  uint patch_size;
  uint grid;
} p;

layout (std430, binding = 0) readonly buffer Images { float images[]; };
layout (std430, binding = 1) writeonly buffer Patches { float patches[]; };

void
main ()
{
  uint P = p.patch_size, S = p.image_size, G = p.grid;
  uint row_len = 3 * P * P;
  uint step = gl_NumWorkGroups.x * 256;
  for (uint i = gl_GlobalInvocationID.x; i < p.total; i += step) {
    uint patch_index = i / row_len, within = i % row_len;
    uint image = patch_index / (G * G), cell = patch_index % (G * G);
    uint channel = within / (P * P), py = (within / P) % P, px = within % P;
    uint y = (cell / G) * P + py, x = (cell % G) * P + px;
    patches[i] = images[((image * 3 + channel) * S + y) * S + x];
  }
}
