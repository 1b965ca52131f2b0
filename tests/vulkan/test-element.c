/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clipclassify backend=vulkan end to end on the tiny reference model, with
 * the validation layer on: every analysed frame's embedding, preprocessed
 * and encoded on the device, against the CPU runtime's for the same pixels,
 * in sync mode (batches) and live mode (worker thread), from I420 and RGB. */
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <math.h>

#include "clip.h"
#include "gstclipmeta.h"
#include "reference.h"
#include "vulkan/vk-device.h"
#include "vulkan-test.h"

static char *model_dir;
static ClipModel *model;
static ClipEncoder *cpu;
static ClipLabelSet *cpu_labels;

#define LABELS "ball,square,stripes"

static gboolean
setup (void)
{
  if (!clip_test_reference () || !clip_vk_test_have_device ())
    return FALSE;
  if (model == NULL) {
    g_autoptr (GError) error = NULL;
    model_dir = clip_test_ref_path ("models/tiny-hf");
    model = clip_model_load (model_dir, NULL, &error);
    g_assert_no_error (error);
    cpu = clip_encoder_new (model, CLIP_BACKEND_CPU, NULL, &error);
    g_assert_no_error (error);
    g_autoptr (GPtrArray) specs = clip_labels_parse_list (LABELS);
    const char *templates[] = { "a photo of a {}.", NULL };
    cpu_labels = clip_label_set_new (cpu, specs, NULL, templates, &error);
    g_assert_no_error (error);
  }
  return TRUE;
}

/* The CPU runtime's normalised embedding of a buffer's pixels. */
static void
cpu_embedding (GstBuffer *buffer, const GstVideoInfo *info, float *embedding)
{
  GstVideoFrame frame;
  g_assert_true (gst_video_frame_map (&frame, info, buffer, GST_MAP_READ));
  ClipFrame f = { 0 };
  f.width = GST_VIDEO_FRAME_WIDTH (&frame);
  f.height = GST_VIDEO_FRAME_HEIGHT (&frame);
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES (&frame); p++) {
    f.planes[p] = GST_VIDEO_FRAME_PLANE_DATA (&frame, p);
    f.strides[p] = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, p);
  }
  /* What videotestsrc sends here: BT601 limited-range I420, or RGB. */
  f.format = GST_VIDEO_FRAME_FORMAT (&frame) == GST_VIDEO_FORMAT_I420
      ? CLIP_PIXEL_I420
      : CLIP_PIXEL_RGB;
  g_assert_cmpint (GST_VIDEO_INFO_COLORIMETRY (info).matrix, !=,
      GST_VIDEO_COLOR_MATRIX_BT709);
  f.matrix = CLIP_YUV_BT601;
  f.full_range = FALSE;
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_encoder_encode_frames (cpu, &f, 1, embedding, &error));
  g_assert_no_error (error);
  clip_l2_normalize (embedding, clip_model_get_config (model)->embed_dim);
  gst_video_frame_unmap (&frame);
}

/* The meta's embedding and scores (computed on the device) against the CPU
 * runtime's for the frame it came from. */
static void
assert_meta_matches_cpu (GstClipMeta *meta, GstBuffer *frame,
    const GstVideoInfo *info)
{
  int E = clip_model_get_config (model)->embed_dim;
  int L = clip_label_set_get_n_labels (cpu_labels);
  g_autofree float *want = g_new (float, E);
  g_autofree float *logits = g_new (float, L);
  g_autofree float *probs = g_new (float, L);
  guint dim = 0;
  const float *got = gst_clip_meta_get_embedding (meta, &dim);
  g_assert_cmpuint (dim, ==, E);
  cpu_embedding (frame, info, want);
  /* F32 on the device: the CPU backend's own bound. */
  for (int k = 0; k < E; k++)
    g_assert_cmpfloat (fabs (got[k] - want[k]), <, 1e-5);
  clip_label_set_score (cpu_labels, want, logits, probs);
  g_assert_cmpuint (gst_clip_meta_get_n_labels (meta), ==, L);
  for (int i = 0; i < L; i++) {
    guint k = meta->label_indices[i];
    g_assert_cmpfloat (
        fabs (gst_clip_meta_get_probability (meta, i) - probs[k]), <, 1e-5);
    g_assert_cmpfloat (fabs (gst_clip_meta_get_logit (meta, i) - logits[k]), <,
        1e-5 * clip_label_set_get_logit_scale (cpu_labels));
  }
}

typedef struct {
  const char *mode;
  const char *caps;
  guint batch_size, interval;
} Case;

static void
test_end_to_end (gconstpointer data)
{
  const Case *tc = data;
  if (!setup ())
    return;
  const int frames = 12;
  GstElement *element = gst_element_factory_make ("clipclassify", NULL);
  g_assert_nonnull (element);
  g_object_set (element, "model", model_dir, "backend", 2 /* vulkan */, "device", "0",
      "f16-weights", FALSE, "labels", LABELS, "attach-embedding", TRUE,
      "batch-size", tc->batch_size, "interval", tc->interval, NULL);
  gst_util_set_object_arg (G_OBJECT (element), "mode", tc->mode);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (element, bus);
  GstHarness *h = gst_harness_new_with_element (element, "sink", "src");
  gst_object_unref (element);
  g_autofree char *src = g_strdup_printf (
      "videotestsrc pattern=ball ! capsfilter caps=\"%s\"", tc->caps);
  gst_harness_add_src_parse (h, src, FALSE);
  GstVideoInfo info;
  g_autoptr (GstCaps) caps = gst_caps_from_string (tc->caps);
  g_assert_true (gst_video_info_from_caps (&info, caps));

  guint checked = 0, messages = 0;
  if (g_str_equal (tc->mode, "live")) {
    /* The worker's result for frame A arrives on the bus while A has long
     * gone downstream; the next buffer carries it, fresh. */
    g_assert_cmpint (gst_harness_push_from_src (h), ==, GST_FLOW_OK);
    GstBuffer *a = gst_harness_pull (h);
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, 120 * GST_SECOND,
        GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR);
    g_assert_nonnull (msg);
    g_assert_true (gst_message_has_name (msg, "clipclassify"));
    gst_message_unref (msg);
    messages++;
    g_assert_cmpint (gst_harness_push_from_src (h), ==, GST_FLOW_OK);
    GstBuffer *b = gst_harness_pull (h);
    GstClipMeta *meta = (GstClipMeta *) gst_buffer_get_meta (b,
        GST_CLIP_META_API_TYPE);
    g_assert_nonnull (meta);
    g_assert_true (gst_clip_meta_is_fresh (meta));
    g_assert_cmpuint (gst_clip_meta_get_pts (meta), ==, GST_BUFFER_PTS (a));
    assert_meta_matches_cpu (meta, a, &info);
    checked++;
    gst_buffer_unref (a);
    gst_buffer_unref (b);
  } else {
    /* Every analysed frame's meta holds its own embedding. */
    for (int i = 0; i < frames; i++)
      g_assert_cmpint (gst_harness_push_from_src (h), ==, GST_FLOW_OK);
    gst_harness_push_event (h, gst_event_new_eos ());
    for (int i = 0; i < frames; i++) {
      GstBuffer *out = gst_harness_pull (h);
      g_assert_nonnull (out);
      GstClipMeta *meta = (GstClipMeta *) gst_buffer_get_meta (out,
          GST_CLIP_META_API_TYPE);
      g_assert_nonnull (meta);
      if (gst_clip_meta_is_fresh (meta)) {
        g_assert_cmpint (i % tc->interval, ==, 0);
        assert_meta_matches_cpu (meta, out, &info);
        checked++;
      }
      gst_buffer_unref (out);
    }
    g_assert_cmpuint (checked, ==, (frames + tc->interval - 1) / tc->interval);
  }

  /* One "clipclassify" message per analysed frame, and no error. In live
   * mode the worker may or may not have analysed frame B by now: its
   * message is then the one extra. */
  GstMessage *msg;
  while ((msg = gst_bus_pop_filtered (bus,
              GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR))) {
    g_assert_cmpint (GST_MESSAGE_TYPE (msg), !=, GST_MESSAGE_ERROR);
    messages += gst_message_has_name (msg, "clipclassify");
    gst_message_unref (msg);
  }
  if (g_str_equal (tc->mode, "live"))
    g_assert_cmpuint (messages, <=, 2); /* frames A and B */
  else
    g_assert_cmpuint (messages, ==, checked);
  g_assert_cmpuint (messages, >=, checked);
  gst_harness_teardown (h);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  g_assert_cmpuint (clip_vulkan_validation_messages (), ==, 0);
}

int
main (int argc, char **argv)
{
  clip_vk_test_enable_validation ();
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  static const Case cases[] = {
    { "sync", "video/x-raw,format=I420,width=320,height=240,framerate=25/1", 4,
        1 },
    { "sync", "video/x-raw,format=RGB,width=100,height=180,framerate=25/1", 1,
        3 },
    { "live", "video/x-raw,format=I420,width=320,height=240,framerate=25/1", 1,
        1 },
  };
  g_test_add_data_func ("/vulkan/element/sync-i420-batches", &cases[0],
      test_end_to_end);
  g_test_add_data_func ("/vulkan/element/sync-rgb-interval", &cases[1],
      test_end_to_end);
  g_test_add_data_func ("/vulkan/element/live-i420", &cases[2],
      test_end_to_end);
  int status = g_test_run ();
  g_clear_pointer (&cpu_labels, clip_label_set_unref);
  g_clear_pointer (&cpu, clip_encoder_free);
  g_clear_pointer (&model, clip_model_unref);
  g_free (model_dir);
  return status;
}
