/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: clip_resize_crop on frames of arbitrary format, size,
 * strides and content. The first 12 bytes are the frame's description; the
 * rest are its pixels, copied into a buffer of exactly the bytes the frame
 * claims, so that any read past a plane is an ASan error. Sizes are capped
 * to keep each run short. Every kernel the CPU runs must give the bytes
 * of the one it runs by default (the widest, unless CLIP_PREPROCESS caps
 * it), and so the plain kernel's; and with each kernel, the tensor taken
 * in bands of rows (1 to 8 of them, down, up, or the odd ones down then
 * the even ones up: bytes 8 and 9), as the CHW tensor or as patch rows
 * (byte 10), must be clip_preprocess's floats at their place. */
#include "clip.h"
#include "model.h"
#include "preprocess.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define HEADER_BYTES 12
#define MAX_SIDE 300
#define MAX_OUTPUT_SIZE 64

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < HEADER_BYTES)
    return 0;
  ClipFrame frame = { 0 };
  frame.format = data[0] % 5;
  /* Sides from 0 (invalid) up to MAX_SIDE. */
  frame.width = (data[1] | data[2] << 8) % (MAX_SIDE + 1);
  frame.height = (data[3] | data[4] << 8) % (MAX_SIDE + 1);
  frame.matrix = data[5] % 3;
  frame.full_range = data[5] & 0x80;
  int output_size = data[6] % (MAX_OUTPUT_SIZE + 1); /* 0 is invalid */
  /* Stride padding -8..+23 bytes: negative values test the short-stride
   * check, the rest odd alignments. */
  int padding = (data[7] & 31) - 8;

  gboolean planar = frame.format == CLIP_PIXEL_I420
      || frame.format == CLIP_PIXEL_NV12;
  int bytes_per_pixel = frame.format == CLIP_PIXEL_RGB ? 3 : planar ? 1 : 4;
  int chroma_width = (frame.width + 1) / 2,
      chroma_height = (frame.height + 1) / 2;
  int n_planes = frame.format == CLIP_PIXEL_I420 ? 3 : planar ? 2 : 1;
  gsize plane_bytes[3] = { 0 };
  for (int p = 0; p < n_planes; p++) {
    int row = p == 0                      ? frame.width * bytes_per_pixel
        : frame.format == CLIP_PIXEL_NV12 ? 2 * chroma_width
                                          : chroma_width;
    int rows = p == 0 ? frame.height : chroma_height;
    frame.strides[p] = MAX (row + padding, 0);
    /* The last row needs only its own bytes, not a whole stride. */
    plane_bytes[p] = rows > 0 ? (gsize) frame.strides[p] * (rows - 1) + row : 0;
  }

  const guint8 *pixels = data + HEADER_BYTES;
  gsize n_pixels = size - HEADER_BYTES;
  guint8 *planes[3] = { NULL };
  for (int p = 0; p < n_planes; p++) {
    /* Each plane is its own allocation, filled by repeating the input. */
    planes[p] = g_malloc (MAX (plane_bytes[p], 1));
    for (gsize b = 0; b < plane_bytes[p]; b++)
      planes[p][b] = n_pixels ? pixels[b % n_pixels] : (guint8) b;
    frame.planes[p] = planes[p];
  }

  gsize rgb_bytes = 3 * MAX_OUTPUT_SIZE * MAX_OUTPUT_SIZE;
  guint8 *rgb = g_malloc0 (rgb_bytes);
  GError *error = NULL;
  gboolean ok = clip_resize_crop (&frame, output_size, rgb, &error);
  if (!ok) {
    g_assert (error != NULL);
    g_clear_error (&error);
  }
  ClipPreprocessKernel initial = clip_preprocess_get_kernel ();
  const ClipPreprocessKernel kernels[] = { CLIP_PREPROCESS_PLAIN,
    CLIP_PREPROCESS_AVX2, CLIP_PREPROCESS_AVX512 };
  ClipConfig config;
  clip_config_init_default (&config);
  config.image_size = output_size;
  int bands = MIN (data[8] % 8 + 1, MAX (output_size, 1)), order = data[9] % 3;
  /* Byte 10: the bands go into the CHW tensor (0) or into patch rows of
   * the first divisor of the size from byte 10 on. */
  int patch = 0;
  for (int d = data[10] % 9; d > 0 && d <= output_size; d++)
    if (output_size % d == 0) {
      patch = d;
      break;
    }
  for (guint k = 0; ok && k < G_N_ELEMENTS (kernels); k++) {
    if (!clip_preprocess_set_kernel (kernels[k]))
      continue;
    if (kernels[k] != initial) {
      guint8 *other = g_malloc0 (rgb_bytes);
      g_assert (clip_resize_crop (&frame, output_size, other, NULL));
      g_assert (memcmp (rgb, other, rgb_bytes) == 0);
      g_free (other);
    }
    gsize floats = 3 * (gsize) output_size * output_size;
    float *whole = g_new0 (float, floats), *banded = g_new0 (float, floats);
    g_assert (clip_preprocess (&frame, &config, whole, NULL));
    ClipPreprocessRun *run = clip_preprocess_run_new (&frame, &config, NULL);
    g_assert (run != NULL);
    for (int i = 0; i < bands; i++) {
      int odd = bands / 2; /* how many of bands 1, 3, ... there are */
      int band = order == 0 ? i
          : order == 1      ? bands - 1 - i
          : i < odd         ? 2 * i + 1
                            : 2 * (bands - 1 - i);
      clip_preprocess_run_rows (run, band * output_size / bands,
          (band + 1) * output_size / bands, patch, banded);
    }
    clip_preprocess_run_free (run);
    /* In patch rows: each patch's channels, each a patch x patch block. */
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < output_size; y++)
        for (int x = 0; x < output_size; x++) {
          gsize at = (gsize) (c * output_size + y) * output_size + x;
          if (patch > 0) {
            gsize row = (gsize) (y / patch) * (output_size / patch) + x / patch;
            at = ((row * 3 + c) * patch + y % patch) * patch + x % patch;
          }
          g_assert (
              memcmp (&whole[(gsize) (c * output_size + y) * output_size + x],
                  &banded[at], sizeof (float))
              == 0);
        }
    g_free (whole);
    g_free (banded);
  }
  clip_preprocess_set_kernel (initial);
  g_free (rgb);
  for (int p = 0; p < n_planes; p++)
    g_free (planes[p]);
  return 0;
}
