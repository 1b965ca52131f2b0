/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Benchmark, not a test: clip_preprocess's time per frame (224 crop, CLIP's
 * normalisation) for camera sizes and formats, with each kernel this CPU
 * runs. The kernels take turns frame by frame, so that all see the same
 * machine; the time is the calling thread's CPU time, which other
 * processes on a busy machine disturb less than wall time. Prints the
 * median and the fastest of N frames (argument, default 200).
 * Usage: bench-preprocess [N] */
#include "clip.h"
#include "preprocess.h"

#include "bench-timing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A frame of smooth content (a moving gradient: the values do not change
 * the work, only the cache state between frames does). */
static ClipFrame
make_frame (ClipPixelFormat format, int width, int height, guint8 **data)
{
  ClipFrame frame = { .format = format, .width = width, .height = height };
  gsize luma = (gsize) width * height;
  int chroma_w = (width + 1) / 2, chroma_h = (height + 1) / 2;
  gsize total = format == CLIP_PIXEL_RGB ? 3 * luma
      : format == CLIP_PIXEL_BGRA        ? 4 * luma
                                  : luma + 2 * (gsize) chroma_w * chroma_h;
  *data = g_malloc (total);
  for (gsize i = 0; i < total; i++)
    (*data)[i] = (guint8) (i * 7 / 5);
  frame.planes[0] = *data;
  switch (format) {
    case CLIP_PIXEL_RGB:
      frame.strides[0] = 3 * width;
      break;
    case CLIP_PIXEL_BGRA:
      frame.strides[0] = 4 * width;
      break;
    case CLIP_PIXEL_I420:
      frame.strides[0] = width;
      frame.planes[1] = *data + luma;
      frame.planes[2] = frame.planes[1] + (gsize) chroma_w * chroma_h;
      frame.strides[1] = frame.strides[2] = chroma_w;
      break;
    default:
      frame.strides[0] = width;
      frame.planes[1] = *data + luma;
      frame.strides[1] = 2 * chroma_w;
      break;
  }
  return frame;
}

int
main (int argc, char **argv)
{
  int n = argc > 1 ? atoi (argv[1]) : 200;
  n = CLAMP (n, 1, 100000);
  const int sizes[][2] = { { 640, 480 }, { 1280, 720 }, { 1920, 1080 } };
  const ClipPixelFormat formats[] = { CLIP_PIXEL_I420, CLIP_PIXEL_NV12,
    CLIP_PIXEL_RGB, CLIP_PIXEL_BGRA };
  const char *format_names[] = { "I420", "NV12", "RGB", "BGRx" };
  const ClipPreprocessKernel all_kernels[] = { CLIP_PREPROCESS_PLAIN,
    CLIP_PREPROCESS_AVX2, CLIP_PREPROCESS_AVX512 };
  const char *all_names[] = { "plain", "AVX2", "AVX-512" };
  ClipConfig config = { .image_size = 224,
    .image_mean = { 0.48145466f, 0.4578275f, 0.40821073f },
    .image_std = { 0.26862954f, 0.26130258f, 0.27577711f } };
  g_autofree float *tensor = g_new (float, 3 * 224 * 224);
  ClipPreprocessKernel initial = clip_preprocess_get_kernel ();
  ClipPreprocessKernel kernels[G_N_ELEMENTS (all_kernels)];
  const char *kernel_names[G_N_ELEMENTS (all_kernels)];
  int n_kernels = 0;
  for (guint k = 0; k < G_N_ELEMENTS (all_kernels); k++)
    if (clip_preprocess_set_kernel (all_kernels[k])) {
      kernels[n_kernels] = all_kernels[k];
      kernel_names[n_kernels++] = all_names[k];
    }
  g_autofree double *times = g_new (double, n_kernels * (gsize) n);

  printf ("clip_preprocess, 224 crop, ms of CPU per frame (median / fastest "
          "of %d)\n",
      n);
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
      g_autofree guint8 *data = NULL;
      ClipFrame frame = make_frame (formats[f], sizes[s][0], sizes[s][1],
          &data);
      for (int i = 0; i < n; i++)
        for (int k = 0; k < n_kernels; k++) {
          clip_preprocess_set_kernel (kernels[k]);
          double t0 = thread_ms ();
          if (!clip_preprocess (&frame, &config, tensor, NULL))
            g_error ("clip_preprocess failed");
          times[k * n + i] = thread_ms () - t0;
        }
      printf ("%dx%d %-4s", sizes[s][0], sizes[s][1], format_names[f]);
      for (int k = 0; k < n_kernels; k++) {
        qsort (times + k * n, n, sizeof (double), compare_doubles);
        printf ("  %s %.3f / %.3f", kernel_names[k], times[k * n + n / 2],
            times[k * n]);
      }
      printf ("\n");
    }
  clip_preprocess_set_kernel (initial);
  return 0;
}
