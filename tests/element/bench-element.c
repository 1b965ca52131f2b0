/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Benchmark, not a test (scripts/bench-element.sh, docs/performance.md):
 * clipclassify's own cost per frame, what it adds to inference (mapping,
 * preprocessing, scores, meta, message). In one process, taking turns
 * frame by frame so that both meet the same moments of a shared machine:
 * a frame through clipclassify (GstHarness; sync, batch-size 1, the CPU
 * backend, THREADS threads) and the same model's encoder alone on an
 * image already preprocessed. The cost is the difference of their
 * medians. With --compare, also that model's encoder at --precision
 * (default int8), batch 1, to set the cost against: a frame of it after
 * every COMPARE_EVERY pairs, so that its time comes from the same moments
 * of the machine as the cost (the pair right after it, whose caches it
 * emptied, is left out).
 *
 * Usage: bench-element MODEL VOCAB FRAMES THREADS [--compare MODEL
 *   [--precision P]] WxH:FORMAT... */
#include "clip.h"

#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <stdio.h>
#include <stdlib.h>

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double
median (double *values, int n)
{
  qsort (values, n, sizeof *values, compare_doubles);
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

static double
now_ms (void)
{
  return g_get_monotonic_time () / 1000.0;
}

static ClipEncoder *
open_encoder (const char *dir, const char *vocab, int threads,
    ClipPrecision precision)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipModel) model = clip_model_load (dir, vocab, &error);
  if (model == NULL)
    g_error ("%s", error->message);
  ClipBackendOptions options = CLIP_BACKEND_OPTIONS_INIT;
  options.threads = threads;
  options.precision = precision;
  ClipEncoder *enc = clip_encoder_new (model, CLIP_BACKEND_CPU, &options,
      &error);
  if (enc == NULL)
    g_error ("%s", error->message);
  return enc;
}

#define COMPARE_EVERY 20

/* One input: frames pairs of (a frame through the element, an image
 * through the encoder alone); prints both medians and their difference,
 * and with big the median of its frames taken among them and the
 * difference's share of it, which it returns (else the difference). */
static double
measure (const char *model, const char *vocab, ClipEncoder *enc, int threads,
    const char *input, int frames, ClipEncoder *big, const char *big_name,
    ClipPrecision big_precision)
{
  int width, height;
  char format[16];
  if (sscanf (input, "%dx%d:%15s", &width, &height, format) != 3)
    g_error ("%s: not WxH:FORMAT", input);
  GstVideoInfo info;
  gst_video_info_set_format (&info, gst_video_format_from_string (format),
      width, height);
  info.fps_n = 30;
  info.fps_d = 1;
  g_autoptr (GstCaps) caps = gst_video_info_to_caps (&info);

  GstElement *element = gst_element_factory_make ("clipclassify", NULL);
  if (element == NULL)
    g_error ("no clipclassify: set GST_PLUGIN_PATH");
  g_object_set (element, "model", model, "vocab", vocab, "threads", threads,
      "batch-size", 1, "labels", "a ball,a dog,a cat", NULL);
  gst_util_set_object_arg (G_OBJECT (element), "backend", "cpu");
  gst_util_set_object_arg (G_OBJECT (element), "mode", "sync");
  /* messages go to a bus, as in a pipeline, and are read between frames */
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (element, bus);
  GstHarness *h = gst_harness_new_with_element (element, "sink", "src");
  gst_object_unref (element);
  gst_harness_set_src_caps (h, gst_caps_ref (caps));

  /* a frame of changing bytes; each push gets its own writable copy */
  GstBuffer *pattern = gst_buffer_new_allocate (NULL, info.size, NULL);
  GstMapInfo map;
  gst_buffer_map (pattern, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < map.size; i++)
    map.data[i] = (guint8) (i * 7 + i / 4099);
  gst_buffer_unmap (pattern, &map);

  const ClipConfig *cfg = clip_model_get_config (clip_encoder_get_model (enc));
  gsize image = 3 * (gsize) cfg->image_size * cfg->image_size;
  g_autofree float *pixels = g_new0 (float, image);
  g_autofree float *embedding = g_new (float, cfg->embed_dim);
  g_autofree double *element_ms = g_new (double, frames);
  g_autofree double *encoder_ms = g_new (double, frames);
  g_autofree double *big_ms = g_new (double, frames / COMPARE_EVERY + 1);
  g_autofree float *big_pixels = NULL, *big_embedding = NULL;
  if (big) {
    const ClipConfig *big_cfg = clip_model_get_config (
        clip_encoder_get_model (big));
    int size = big_cfg->image_size;
    big_pixels = g_new0 (float, 3 * (gsize) size * size);
    big_embedding = g_new (float, big_cfg->embed_dim);
  }
  int kept = 0, n_big = 0;
  gboolean after_big = FALSE;
  const int warm_up = 5;
  for (int i = -warm_up; i < frames; i++) {
    GstBuffer *buffer = gst_buffer_copy_deep (pattern);
    GST_BUFFER_PTS (buffer) = (i + warm_up) * GST_SECOND / 30;
    double t0 = now_ms ();
    if (gst_harness_push (h, buffer) != GST_FLOW_OK)
      g_error ("%s: the element refused a frame", input);
    gst_buffer_unref (gst_harness_pull (h));
    double t1 = now_ms ();
    g_autoptr (GError) error = NULL;
    if (!clip_encoder_encode_images (enc, pixels, 1, embedding, &error))
      g_error ("%s", error->message);
    double t2 = now_ms ();
    if (i >= 0 && !after_big) {
      element_ms[kept] = t1 - t0;
      encoder_ms[kept++] = t2 - t1;
    }
    after_big = FALSE;
    /* its first frame, among the warm-up pairs, warms it up too */
    if (big
        && (i == -warm_up
            || (i >= 0 && ((i + 1) % COMPARE_EVERY == 0 || i == frames - 1)))) {
      double t3 = now_ms ();
      if (!clip_encoder_encode_images (big, big_pixels, 1, big_embedding,
              &error))
        g_error ("%s", error->message);
      if (i >= 0) {
        big_ms[n_big++] = now_ms () - t3;
        after_big = TRUE;
      }
    }
    GstMessage *message;
    while ((message = gst_bus_pop (bus)) != NULL) {
      if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ERROR)
        g_error ("%s: the element posted an error", input);
      gst_message_unref (message);
    }
  }
  gst_buffer_unref (pattern);
  gst_harness_teardown (h);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);

  double through = median (element_ms, kept);
  double alone = median (encoder_ms, kept);
  printf ("  %s: element %.3f ms/frame, encoder alone %.3f ms/image; "
          "element's own cost %.3f ms/frame\n",
      input, through, alone, through - alone);
  if (!big)
    return through - alone;
  double frame = median (big_ms, n_big);
  double share = 100 * (through - alone) / frame;
  printf ("    %s at %s beside it: %.2f ms/image (median of %d); the own "
          "cost is %.1f%% of it\n",
      big_name, clip_precision_get_name (big_precision), frame, n_big, share);
  return share;
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  if (argc < 6)
    g_error ("usage: bench-element MODEL VOCAB FRAMES THREADS [--compare "
             "MODEL [--precision P]] WxH:FORMAT...");
  const char *model = argv[1], *vocab = argv[2];
  int frames = atoi (argv[3]), threads = atoi (argv[4]);
  if (frames < 1 || threads < 1)
    g_error ("FRAMES and THREADS must be at least 1");
  const char *compare = NULL;
  ClipPrecision precision = CLIP_PRECISION_INT8;
  int arg = 5;
  for (; arg + 1 < argc && g_str_has_prefix (argv[arg], "--"); arg += 2) {
    g_autoptr (GError) error = NULL;
    if (g_str_equal (argv[arg], "--compare"))
      compare = argv[arg + 1];
    else if (!g_str_equal (argv[arg], "--precision")
        || !clip_precision_from_name (argv[arg + 1], &precision, &error))
      g_error ("%s %s: not an option", argv[arg], argv[arg + 1]);
  }

  g_autoptr (ClipEncoder) enc = open_encoder (model, vocab, threads,
      CLIP_PRECISION_F32);
  g_autoptr (ClipEncoder) big = compare
      ? open_encoder (compare, vocab, threads, precision)
      : NULL;
  double worst = -G_MAXDOUBLE;
  const char *worst_input = NULL;
  for (; arg < argc; arg++) {
    double result = measure (model, vocab, enc, threads, argv[arg], frames, big,
        compare, precision);
    if (result > worst) {
      worst = result;
      worst_input = argv[arg];
    }
  }
  if (big && worst_input)
    printf ("  the largest share: %.1f%% (%s) of %s's %s frame\n", worst,
        worst_input, compare, clip_precision_get_name (precision));
  return 0;
}
