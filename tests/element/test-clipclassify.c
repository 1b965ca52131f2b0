/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clipclassify on the tiny reference model: its meta against the runtime's
 * own scores for the same frames, and its behaviour in both modes. */
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <math.h>
#include <string.h>

#include "classify-harness.h"
#include "clip.h"
#include "gstclipmeta.h"
#include "reference.h"

#define FRAME_DURATION (GST_SECOND / 25)

static char *model_dir;
static ClipModel *model;
static ClipEncoder *encoder;

/* Loads the tiny model for the expected values; FALSE (skipped) without the
 * reference data. */
static gboolean
setup_model (void)
{
  if (!clip_test_reference ())
    return FALSE;
  if (model == NULL) {
    g_autoptr (GError) error = NULL;
    model_dir = clip_test_ref_path ("models/tiny-hf");
    model = clip_model_load (model_dir, NULL, &error);
    g_assert_no_error (error);
    encoder = clip_encoder_new (model, CLIP_BACKEND_CPU, NULL, &error);
    g_assert_no_error (error);
  }
  return TRUE;
}

/* ----------------------------------------------------------------- frames */

/* A synthetic picture, tightly packed, from which a buffer of any format is
 * made; its content depends on the seed. */
typedef struct {
  int width, height;
  guint8 *rgb;       /* [h, w, 3] */
  guint8 *y, *u, *v; /* planar 4:2:0, for the YUV formats */
} Picture;

static Picture *
picture_new (int width, int height, guint seed)
{
  Picture *p = g_new0 (Picture, 1);
  p->width = width;
  p->height = height;
  p->rgb = g_malloc ((gsize) width * height * 3);
  p->y = g_malloc ((gsize) width * height);
  p->u = g_malloc ((gsize) (width / 2) * (height / 2));
  p->v = g_malloc ((gsize) (width / 2) * (height / 2));
  for (int r = 0; r < height; r++)
    for (int c = 0; c < width; c++) {
      guint8 *px = p->rgb + ((gsize) r * width + c) * 3;
      px[0] = (guint8) (c * (3 + seed % 5) + seed * 53);
      px[1] = (guint8) (r * (2 + seed % 7) + seed * 97);
      px[2] = (guint8) ((r ^ c) * (seed % 3 + 1) + seed * 31);
      p->y[(gsize) r * width + c] = px[1];
    }
  for (int r = 0; r < height / 2; r++)
    for (int c = 0; c < width / 2; c++) {
      p->u[(gsize) r * (width / 2) + c] = (guint8) (c * 9 + seed * 17);
      p->v[(gsize) r * (width / 2) + c] = (guint8) (r * 11 + seed * 41);
    }
  return p;
}

static void
picture_free (Picture *p)
{
  g_free (p->rgb);
  g_free (p->y);
  g_free (p->u);
  g_free (p->v);
  g_free (p);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Picture, picture_free)

/* The picture as the runtime sees it, without GStreamer. */
static ClipFrame
picture_clip_frame (const Picture *p, GstVideoFormat format)
{
  ClipFrame f = { 0 };
  f.width = p->width;
  f.height = p->height;
  f.matrix = CLIP_YUV_BT601;
  if (format == GST_VIDEO_FORMAT_I420 || format == GST_VIDEO_FORMAT_NV12) {
    f.format = CLIP_PIXEL_I420;
    f.planes[0] = p->y;
    f.planes[1] = p->u;
    f.planes[2] = p->v;
    f.strides[0] = p->width;
    f.strides[1] = f.strides[2] = p->width / 2;
  } else {
    f.format = CLIP_PIXEL_RGB;
    f.planes[0] = p->rgb;
    f.strides[0] = p->width * 3;
  }
  return f;
}

static GstCaps *
picture_caps (const Picture *p, GstVideoFormat format)
{
  GstVideoInfo info;
  gst_video_info_set_format (&info, format, p->width, p->height);
  GST_VIDEO_INFO_FPS_N (&info) = 25;
  GST_VIDEO_INFO_FPS_D (&info) = 1;
  if (GST_VIDEO_INFO_IS_YUV (&info)) {
    info.colorimetry.matrix = GST_VIDEO_COLOR_MATRIX_BT601;
    info.colorimetry.range = GST_VIDEO_COLOR_RANGE_16_235;
  }
  return gst_video_info_to_caps (&info);
}

/* The picture in a GStreamer buffer of the given format, with GStreamer's
 * strides and plane offsets. */
static GstBuffer *
picture_buffer (const Picture *p, GstVideoFormat format, GstClockTime pts)
{
  GstVideoInfo info;
  GstVideoFrame frame;
  gst_video_info_set_format (&info, format, p->width, p->height);
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, info.size, NULL);
  g_assert_true (gst_video_frame_map (&frame, &info, buffer, GST_MAP_WRITE));

  const int w = p->width, h = p->height;
  for (int r = 0; r < h; r++) {
    guint8 *row = (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&frame, 0)
        + (gsize) r * GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);
    for (int c = 0; c < w; c++) {
      const guint8 *px = p->rgb + ((gsize) r * w + c) * 3;
      switch (format) {
        case GST_VIDEO_FORMAT_RGB:
          memcpy (row + c * 3, px, 3);
          break;
        case GST_VIDEO_FORMAT_BGRx:
          row[c * 4] = px[2];
          row[c * 4 + 1] = px[1];
          row[c * 4 + 2] = px[0];
          row[c * 4 + 3] = 0xee;
          break;
        default:
          row[c] = p->y[(gsize) r * w + c];
          break;
      }
    }
  }
  for (int r = 0; r < h / 2; r++) {
    guint8 *p1 = (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&frame, 1)
        + (gsize) r * GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 1);
    guint8 *p2 = format == GST_VIDEO_FORMAT_I420
        ? (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&frame, 2)
            + (gsize) r * GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 2)
        : NULL;
    for (int c = 0; c < w / 2; c++) {
      guint8 u = p->u[(gsize) r * (w / 2) + c],
             v = p->v[(gsize) r * (w / 2) + c];
      if (format == GST_VIDEO_FORMAT_I420) {
        p1[c] = u;
        p2[c] = v;
      } else if (format == GST_VIDEO_FORMAT_NV12) {
        p1[2 * c] = u;
        p1[2 * c + 1] = v;
      }
    }
  }
  gst_video_frame_unmap (&frame);
  GST_BUFFER_PTS (buffer) = pts;
  GST_BUFFER_DURATION (buffer) = FRAME_DURATION;
  return buffer;
}

/* The runtime's raw image embedding of a picture. */
static float *
runtime_embedding (const Picture *p, GstVideoFormat format)
{
  const ClipConfig *config = clip_model_get_config (model);
  g_autoptr (GError) error = NULL;
  g_autofree float *tensor = g_new (float, 3 * config->image_size * config->image_size);
  float *embedding = g_new (float, config->embed_dim);
  ClipFrame f = picture_clip_frame (p, format);
  g_assert_true (clip_preprocess (&f, config, tensor, &error));
  g_assert_true (
      clip_encoder_encode_images (encoder, tensor, 1, embedding, &error));
  g_assert_no_error (error);
  return embedding;
}

/* Checks a meta against the runtime's scores of an embedding: same labels,
 * probabilities and logits, best first, top-k without negatives. */
static void
assert_meta_scores (const GstClipMeta *meta, ClipLabelSet *set,
    const float *embedding, guint top_k)
{
  const int n = clip_label_set_get_n_labels (set);
  g_autofree float *logits = g_new (float, n);
  g_autofree float *probs = g_new (float, n);
  clip_label_set_score (set, embedding, logits, probs);

  guint reportable = 0;
  for (int i = 0; i < n; i++)
    reportable += !clip_label_set_is_negative (set, i);
  g_assert_nonnull (meta);
  g_assert_cmpuint (gst_clip_meta_get_n_labels (meta), ==,
      MIN (top_k, reportable));
  g_assert_cmpuint (gst_clip_label_table_get_n_labels (meta->label_table), ==,
      n);
  g_assert_cmpstr (gst_clip_meta_get_model_name (meta), ==, "tiny-hf");

  /* the top is the best label overall, unless that one is negative */
  int best = 0;
  for (int i = 1; i < n; i++)
    if (probs[i] > probs[best])
      best = i;
  g_assert_cmpint (gst_clip_meta_get_top (meta), ==,
      clip_label_set_is_negative (set, best) ? -1 : 0);

  const double logit_tolerance = 2e-5 * clip_label_set_get_logit_scale (set);
  for (guint i = 0; i < gst_clip_meta_get_n_labels (meta); i++) {
    guint k = meta->label_indices[i];
    g_assert_cmpuint (k, <, n);
    g_assert_false (clip_label_set_is_negative (set, k));
    g_assert_cmpstr (gst_clip_meta_get_label (meta, i), ==,
        clip_label_set_get_label (set, k));
    g_assert_cmpfloat_with_epsilon (gst_clip_meta_get_probability (meta, i),
        probs[k], 1e-5);
    g_assert_cmpfloat_with_epsilon (gst_clip_meta_get_logit (meta, i),
        logits[k], logit_tolerance);
    if (i > 0)
      g_assert_cmpfloat (gst_clip_meta_get_probability (meta, i), <=,
          gst_clip_meta_get_probability (meta, i - 1));
  }
}

/* -------------------------------------------------------------- harness */

static GstElement *
new_element (const char *first_property, ...)
{
  va_list args;
  va_start (args, first_property);
  GstElement *element = clip_test_classify_new_valist (model_dir,
      first_property, args);
  va_end (args);
  return element;
}

static guint
count_messages (GstBus *bus, const char *name, GPtrArray *keep)
{
  guint n = 0;
  GstMessage *msg;
  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT)) != NULL) {
    if (gst_message_has_name (msg, name)) {
      n++;
      if (keep != NULL) {
        g_ptr_array_add (keep, gst_message_ref (msg));
      }
    }
    gst_message_unref (msg);
  }
  return n;
}

/* --------------------------------------------------------------- tests */

static void
test_properties (void)
{
  GstElement *e = gst_element_factory_make ("clipclassify", NULL);
  g_autofree char *model = NULL, *vocab = NULL, *labels = NULL,
                  *labels_file = NULL;
  g_autofree char *templates = NULL, *negatives = NULL, *device = NULL;
  int threads, backend, mode, precision;
  guint interval, batch, top_k, smoothing;
  float threshold;
  guint64 min_segment;
  gboolean attach, f16_weights;

  g_assert_nonnull (e);
  g_object_get (e, "model", &model, "vocab", &vocab, "labels", &labels,
      "labels-file", &labels_file, "templates", &templates,
      "negative-labels", &negatives, "backend", &backend, "device", &device,
      "threads", &threads, "interval", &interval, "mode", &mode,
      "batch-size", &batch, "top-k", &top_k, "threshold", &threshold,
      "smoothing", &smoothing, "min-segment", &min_segment,
      "attach-embedding", &attach, "f16-weights", &f16_weights, "precision",
      &precision, NULL);
  g_assert_null (model);
  g_assert_null (vocab);
  g_assert_null (labels);
  g_assert_null (labels_file);
  g_assert_cmpstr (templates, ==, "a photo of a {}.");
  g_assert_null (negatives);
  g_assert_null (device);
  g_assert_cmpint (threads, ==, 0);
  g_assert_cmpuint (interval, ==, 1);
  g_assert_cmpuint (batch, ==, 1);
  g_assert_cmpuint (top_k, ==, 5);
  g_assert_cmpfloat (threshold, ==, 0.0f);
  g_assert_cmpuint (smoothing, ==, 1);
  g_assert_cmpuint (min_segment, ==, 0);
  g_assert_false (attach);
  g_assert_true (f16_weights);

  GObjectClass *klass = G_OBJECT_GET_CLASS (e);
  GParamSpec *pspec = g_object_class_find_property (klass, "backend");
  GEnumValue *v = g_enum_get_value (G_PARAM_SPEC_ENUM (pspec)->enum_class,
      backend);
  g_assert_cmpstr (v->value_nick, ==, "auto");
  g_assert_nonnull (g_enum_get_value_by_nick (
      G_PARAM_SPEC_ENUM (pspec)->enum_class, "vulkan"));
  pspec = g_object_class_find_property (klass, "precision");
  v = g_enum_get_value (G_PARAM_SPEC_ENUM (pspec)->enum_class, precision);
  g_assert_cmpstr (v->value_nick, ==, "f32");
  g_assert_cmpint (
      g_enum_get_value_by_nick (G_PARAM_SPEC_ENUM (pspec)->enum_class, "bf16")
          ->value,
      ==, CLIP_PRECISION_BF16);
  g_assert_cmpint (
      g_enum_get_value_by_nick (G_PARAM_SPEC_ENUM (pspec)->enum_class, "int8")
          ->value,
      ==, CLIP_PRECISION_INT8);
  pspec = g_object_class_find_property (klass, "mode");
  v = g_enum_get_value (G_PARAM_SPEC_ENUM (pspec)->enum_class, mode);
  g_assert_cmpstr (v->value_nick, ==, "auto");
  g_assert_nonnull (
      g_enum_get_value_by_nick (G_PARAM_SPEC_ENUM (pspec)->enum_class, "live"));

  const char *while_playing[] = { "labels", "labels-file", "templates",
    "negative-labels", "interval", "batch-size", "top-k", "threshold",
    "smoothing", "min-segment", "attach-embedding" };
  for (guint i = 0; i < G_N_ELEMENTS (while_playing); i++) {
    pspec = g_object_class_find_property (klass, while_playing[i]);
    g_assert_nonnull (pspec);
    g_assert_true (pspec->flags & GST_PARAM_MUTABLE_PLAYING);
    g_assert_nonnull (g_param_spec_get_blurb (pspec));
  }
  const char *at_ready[] = { "model", "vocab", "backend", "device",
    "f16-weights", "precision", "threads", "mode" };
  for (guint i = 0; i < G_N_ELEMENTS (at_ready); i++) {
    pspec = g_object_class_find_property (klass, at_ready[i]);
    g_assert_nonnull (pspec);
    g_assert_true (pspec->flags & GST_PARAM_MUTABLE_READY);
  }
  gst_object_unref (e);
}

/* Every buffer carries a meta equal to the runtime's scores of its frame. */
static void
test_meta_matches_runtime (void)
{
  if (!setup_model ())
    return;
  const char *labels = "cat,dog,red car,a tree,the sea,background";
  GstBus *bus;
  GstHarness *h = clip_test_harness_new (
      new_element ("labels", labels, "top-k", 3, "negative-labels", "nothing",
          "mode", 1 /* sync */, "attach-embedding", TRUE, NULL),
      &bus);
  g_autoptr (ClipLabelSet) set = clip_test_label_set (encoder, labels,
      "nothing");

  /* width 50: RGB rows are padded to a multiple of 4 bytes */
  for (guint i = 0; i < 4; i++) {
    g_autoptr (Picture) p = picture_new (50, 40, i);
    if (i == 0) {
      GstCaps *caps = picture_caps (p, GST_VIDEO_FORMAT_RGB);
      gst_harness_set_src_caps (h, caps);
    }
    GstBuffer *out = gst_harness_push_and_pull (h,
        picture_buffer (p, GST_VIDEO_FORMAT_RGB, i * FRAME_DURATION));
    GstClipMeta *meta = gst_buffer_get_clip_meta (out);
    g_autofree float *embedding = runtime_embedding (p, GST_VIDEO_FORMAT_RGB);
    assert_meta_scores (meta, set, embedding, 3);
    g_assert_true (gst_clip_meta_is_fresh (meta));
    g_assert_cmpuint (gst_clip_meta_get_pts (meta), ==, i * FRAME_DURATION);
    g_assert_cmpuint (gst_clip_meta_get_duration (meta), ==, FRAME_DURATION);

    guint dim;
    const gfloat *attached = gst_clip_meta_get_embedding (meta, &dim);
    g_assert_cmpuint (dim, ==, clip_model_get_config (model)->embed_dim);
    clip_l2_normalize (embedding, dim);
    g_assert_cmpfloat (clip_test_max_abs_diff (attached, embedding, dim), <,
        1e-5);
    gst_buffer_unref (out);
  }

  g_autoptr (GPtrArray) messages = g_ptr_array_new_with_free_func (
      (GDestroyNotify) gst_message_unref);
  g_assert_cmpuint (count_messages (bus, "clipclassify", messages), ==, 4);
  const GstStructure *s = gst_message_get_structure (messages->pdata[3]);
  guint64 ts;
  g_assert_true (gst_structure_get_uint64 (s, "timestamp", &ts));
  g_assert_cmpuint (ts, ==, 3 * FRAME_DURATION);
  g_assert_true (gst_structure_has_field (s, "running-time"));
  g_assert_true (gst_structure_has_field (s, "stream-time"));
  const GValue *names = gst_structure_get_value (s, "labels");
  g_assert_cmpuint (gst_value_array_get_size (names), ==, 3);
  g_assert_cmpuint (
      gst_value_array_get_size (gst_structure_get_value (s, "scores")), ==, 3);
  clip_test_harness_free (h, bus);
}

/* precision reaches the CPU encoder: the attached embedding is the
 * runtime's at that precision, within bound of the F32 one but not it. */
static void
check_precision (ClipPrecision precision, double bound)
{
  if (!setup_model ())
    return;
  GstBus *bus;
  GstHarness *h = clip_test_harness_new (
      new_element ("labels", "one,two", "mode", 1 /* sync */,
          "attach-embedding", TRUE, "precision", precision, NULL),
      &bus);
  ClipBackendOptions options = CLIP_BACKEND_OPTIONS_INIT;
  options.precision = precision;
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipEncoder) reduced = clip_encoder_new (model, CLIP_BACKEND_CPU,
      &options, &error);
  g_assert_no_error (error);
  g_autoptr (Picture) p = picture_new (64, 48, 5);
  gst_harness_set_src_caps (h, picture_caps (p, GST_VIDEO_FORMAT_RGB));
  GstBuffer *out = gst_harness_push_and_pull (h,
      picture_buffer (p, GST_VIDEO_FORMAT_RGB, 0));
  guint dim;
  const gfloat *attached = gst_clip_meta_get_embedding (
      gst_buffer_get_clip_meta (out), &dim);
  const ClipConfig *config = clip_model_get_config (model);
  g_autofree float *tensor = g_new (float,
      3 * config->image_size * config->image_size);
  g_autofree float *want = g_new (float, dim);
  ClipFrame f = picture_clip_frame (p, GST_VIDEO_FORMAT_RGB);
  g_assert_true (clip_preprocess (&f, config, tensor, &error));
  g_assert_true (clip_encoder_encode_images (reduced, tensor, 1, want, &error));
  clip_l2_normalize (want, dim);
  g_assert_cmpfloat (clip_test_max_abs_diff (attached, want, dim), <, 1e-5);
  g_autofree float *f32 = runtime_embedding (p, GST_VIDEO_FORMAT_RGB);
  clip_l2_normalize (f32, dim);
  double off = clip_test_max_abs_diff (attached, f32, dim);
  g_assert_cmpfloat (off, >, 0.0);
  g_assert_cmpfloat (off, <, bound);
  gst_buffer_unref (out);
  clip_test_harness_free (h, bus);
}

static void
test_precision (void)
{
  check_precision (CLIP_PRECISION_BF16, 5e-3);
  check_precision (CLIP_PRECISION_INT8, 2e-2);
}

/* Formats and a resolution change mid-stream: every format's meta equals
 * the runtime's scores of the same picture. */
static void
test_caps_change (void)
{
  if (!setup_model ())
    return;
  const GstVideoFormat formats[] = { GST_VIDEO_FORMAT_RGB,
    GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12 };
  const int sizes[][2] = { { 64, 48 }, { 38, 90 }, { 96, 54 }, { 40, 40 } };
  GstBus *bus;
  GstHarness *h = clip_test_harness_new (
      new_element ("labels", "one,two,three", "mode", 1, "batch-size", 2, NULL),
      &bus);
  g_autoptr (ClipLabelSet) set = clip_test_label_set (encoder, "one,two,three",
      NULL);

  for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
    g_autoptr (Picture) p = picture_new (sizes[f][0], sizes[f][1], 7 + f);
    gst_harness_set_src_caps (h, picture_caps (p, formats[f]));
    /* one frame of a batch of two: the caps change must flush it */
    gst_harness_push (h, picture_buffer (p, formats[f], f * FRAME_DURATION));
  }
  gst_harness_push_event (h, gst_event_new_eos ());

  g_assert_cmpuint (gst_harness_buffers_received (h), ==,
      G_N_ELEMENTS (formats));
  for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
    g_autoptr (Picture) p = picture_new (sizes[f][0], sizes[f][1], 7 + f);
    GstBuffer *out = gst_harness_pull (h);
    g_autofree float *embedding = runtime_embedding (p, formats[f]);
    assert_meta_scores (gst_buffer_get_clip_meta (out), set, embedding, 5);
    gst_buffer_unref (out);
  }
  clip_test_harness_free (h, bus);
}

/* interval=3: frames 0, 3, 6 are analysed; the others carry their result. */
static void
test_interval (void)
{
  if (!setup_model ())
    return;
  GstBus *bus;
  GstHarness *h = clip_test_harness_new (
      new_element ("labels", "a,b", "mode", 1, "interval", 3, NULL), &bus);
  g_autoptr (Picture) p = picture_new (32, 32, 1);
  gst_harness_set_src_caps (h, picture_caps (p, GST_VIDEO_FORMAT_RGB));

  for (guint i = 0; i < 7; i++) {
    GstBuffer *out = gst_harness_push_and_pull (h,
        picture_buffer (p, GST_VIDEO_FORMAT_RGB, i * FRAME_DURATION));
    GstClipMeta *meta = gst_buffer_get_clip_meta (out);
    g_assert_nonnull (meta);
    g_assert_cmpuint (gst_clip_meta_get_pts (meta), ==,
        (i / 3) * 3 * FRAME_DURATION);
    g_assert_cmpint (gst_clip_meta_is_fresh (meta), ==, i % 3 == 0);
    gst_buffer_unref (out);
  }
  g_assert_cmpuint (count_messages (bus, "clipclassify", NULL), ==, 3);
  clip_test_harness_free (h, bus);
}

/* batch-size=3: buffers wait for their batch, then leave in order, each with
 * its own result; EOS flushes a partial batch. */
static void
test_sync_batching (void)
{
  if (!setup_model ())
    return;
  GstBus *bus;
  GstHarness *h = clip_test_harness_new (
      new_element ("labels", "x,y,z", "mode", 1, "batch-size", 3, NULL), &bus);
  g_autoptr (ClipLabelSet) set = clip_test_label_set (encoder, "x,y,z", NULL);
  Picture *pictures[5];
  for (guint i = 0; i < 5; i++)
    pictures[i] = picture_new (48, 32, 20 + i);
  gst_harness_set_src_caps (h,
      picture_caps (pictures[0], GST_VIDEO_FORMAT_RGB));

  for (guint i = 0; i < 5; i++) {
    g_assert_cmpint (gst_harness_push (h,
                         picture_buffer (pictures[i], GST_VIDEO_FORMAT_RGB,
                             i * FRAME_DURATION)),
        ==, GST_FLOW_OK);
    g_assert_cmpuint (gst_harness_buffers_received (h), ==, i < 2 ? 0 : 3);
  }
  gst_harness_push_event (h, gst_event_new_eos ());
  g_assert_cmpuint (gst_harness_buffers_received (h), ==, 5);

  for (guint i = 0; i < 5; i++) {
    GstBuffer *out = gst_harness_pull (h);
    GstClipMeta *meta = gst_buffer_get_clip_meta (out);
    g_autofree float *embedding = runtime_embedding (pictures[i],
        GST_VIDEO_FORMAT_RGB);
    g_assert_cmpuint (GST_BUFFER_PTS (out), ==, i * FRAME_DURATION);
    g_assert_cmpuint (gst_clip_meta_get_pts (meta), ==, i * FRAME_DURATION);
    g_assert_true (gst_clip_meta_is_fresh (meta));
    assert_meta_scores (meta, set, embedding, 5);
    gst_buffer_unref (out);
    picture_free (pictures[i]);
  }
  g_assert_cmpuint (count_messages (bus, "clipclassify", NULL), ==, 5);
  clip_test_harness_free (h, bus);
}

/* Live mode with the worker stalled (its first bus message is held by a sync
 * handler): every pushed buffer still comes out at once. */
typedef struct {
  GMutex lock;
  GCond cond;
  gboolean blocked, release;
  guint analysed;
} Gate;

static GstBusSyncReply
gate_handler (GstBus *bus, GstMessage *msg, gpointer data)
{
  Gate *gate = data;
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ELEMENT
      && gst_message_has_name (msg, "clipclassify")) {
    g_mutex_lock (&gate->lock);
    gate->analysed++;
    gate->blocked = TRUE;
    g_cond_broadcast (&gate->cond);
    while (!gate->release)
      g_cond_wait (&gate->cond, &gate->lock);
    g_mutex_unlock (&gate->lock);
  }
  return GST_BUS_PASS;
}

static void
test_live_never_waits (void)
{
  if (!setup_model ())
    return;
  Gate gate = { 0 };
  g_mutex_init (&gate.lock);
  g_cond_init (&gate.cond);
  GstBus *bus;
  GstHarness *h = clip_test_harness_new (
      new_element ("labels", "a,b,c", "mode", 2 /* live */, NULL), &bus);
  gst_bus_set_sync_handler (bus, gate_handler, &gate, NULL);
  g_autoptr (Picture) p = picture_new (64, 48, 3);
  gst_harness_set_src_caps (h, picture_caps (p, GST_VIDEO_FORMAT_RGB));

  gst_harness_push (h, picture_buffer (p, GST_VIDEO_FORMAT_RGB, 0));
  g_assert_cmpuint (gst_harness_buffers_received (h), ==, 1);
  gint64 deadline = g_get_monotonic_time () + 30 * G_TIME_SPAN_SECOND;
  g_mutex_lock (&gate.lock);
  while (!gate.blocked)
    g_assert_true (g_cond_wait_until (&gate.cond, &gate.lock, deadline));
  g_mutex_unlock (&gate.lock);

  /* the worker is stuck: buffers must not wait for it */
  const guint pushed = 40;
  for (guint i = 1; i <= pushed; i++) {
    g_assert_cmpint (
        gst_harness_push (h,
            picture_buffer (p, GST_VIDEO_FORMAT_RGB, i * FRAME_DURATION)),
        ==, GST_FLOW_OK);
    g_assert_cmpuint (gst_harness_buffers_received (h), ==, i + 1);
  }
  /* frame 0 itself may or may not have left before its result */
  guint fresh = 0;
  for (guint i = 0; i <= pushed; i++) {
    GstBuffer *out = gst_harness_pull (h);
    GstClipMeta *meta = gst_buffer_get_clip_meta (out);
    if (i == 0 && meta == NULL) {
      gst_buffer_unref (out);
      continue;
    }
    /* the one result published so far is frame 0's */
    g_assert_nonnull (meta);
    g_assert_cmpuint (gst_clip_meta_get_pts (meta), ==, 0);
    fresh += gst_clip_meta_is_fresh (meta);
    gst_buffer_unref (out);
  }
  g_assert_cmpuint (fresh, ==, 1);

  g_mutex_lock (&gate.lock);
  gate.release = TRUE;
  g_cond_broadcast (&gate.cond);
  g_mutex_unlock (&gate.lock);
  gst_harness_push_event (h, gst_event_new_eos ());
  /* frame 0 and at most the newest frame in the mailbox */
  g_mutex_lock (&gate.lock);
  g_assert_cmpuint (gate.analysed, <=, 2);
  g_mutex_unlock (&gate.lock);

  gst_harness_teardown (h);
  gst_bus_set_sync_handler (bus, NULL, NULL, NULL);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  g_mutex_clear (&gate.lock);
  g_cond_clear (&gate.cond);
}

/* Shared batches: four live elements on one model, each with labels and a
 * frame size of its own. While the batcher is held on its first result, a
 * frame waits in every element; once released, the four are encoded as one
 * batch (the scheduler's log says so), all results come from one thread,
 * and each element's result is its own frame scored against its own
 * labels. */
#define N_SHARING 4

typedef struct {
  Gate gate; /* first: gate_handler's */
  GThread *poster;
  gboolean several_posters;
  gboolean full_batch;
} SharedGate;

static GstBusSyncReply
shared_gate_handler (GstBus *bus, GstMessage *msg, gpointer data)
{
  SharedGate *shared = data;
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ELEMENT
      && gst_message_has_name (msg, "clipclassify")) {
    g_mutex_lock (&shared->gate.lock);
    if (shared->poster == NULL)
      shared->poster = g_thread_self ();
    shared->several_posters |= shared->poster != g_thread_self ();
    g_mutex_unlock (&shared->gate.lock);
  }
  return gate_handler (bus, msg, &shared->gate);
}

static void
log_full_batch (GstDebugCategory *category, GstDebugLevel level,
    const gchar *file, const gchar *function, gint line, GObject *object,
    GstDebugMessage *message, gpointer data)
{
  SharedGate *shared = data;
  if (strcmp (gst_debug_category_get_name (category), "clipclassify") != 0
      || strstr (gst_debug_message_get (message), "shared batch of 4 from 4")
          == NULL)
    return;
  g_mutex_lock (&shared->gate.lock);
  shared->full_batch = TRUE;
  g_mutex_unlock (&shared->gate.lock);
}

static void
wait_analysed (Gate *gate, guint n)
{
  gint64 deadline = g_get_monotonic_time () + 30 * G_TIME_SPAN_SECOND;
  g_mutex_lock (&gate->lock);
  while (gate->analysed < n)
    g_assert_true (g_cond_wait_until (&gate->cond, &gate->lock, deadline));
  g_mutex_unlock (&gate->lock);
}

static void
test_shared_batches (void)
{
  if (!setup_model ())
    return;
  const char *labels[N_SHARING] = { "cat,dog", "red,green,blue", "a,b",
    "sun,moon,star,sky" };
  SharedGate shared = { 0 };
  g_mutex_init (&shared.gate.lock);
  g_cond_init (&shared.gate.cond);
  gst_debug_set_threshold_for_name ("clipclassify", GST_LEVEL_LOG);
  gst_debug_add_log_function (log_full_batch, &shared, NULL);

  GstHarness *h[N_SHARING];
  GstBus *bus[N_SHARING];
  Picture *p[N_SHARING];
  for (int i = 0; i < N_SHARING; i++) {
    h[i] = clip_test_harness_new (new_element ("labels", labels[i], "mode",
                                      2 /* live */, "shared-batches", TRUE,
                                      "batch-size", N_SHARING, "batch-wait",
                                      (guint64) 0, NULL),
        &bus[i]);
    gst_bus_set_sync_handler (bus[i], shared_gate_handler, &shared, NULL);
    p[i] = picture_new (40 + 8 * i, 30, 20 + i);
    gst_harness_set_src_caps (h[i], picture_caps (p[i], GST_VIDEO_FORMAT_RGB));
  }

  /* The batcher analyses element 0's first frame, and is held there. */
  gst_harness_push (h[0], picture_buffer (p[0], GST_VIDEO_FORMAT_RGB, 0));
  gst_buffer_unref (gst_harness_pull (h[0]));
  wait_analysed (&shared.gate, 1);
  for (int i = 0; i < N_SHARING; i++) {
    gst_harness_push (h[i],
        picture_buffer (p[i], GST_VIDEO_FORMAT_RGB, FRAME_DURATION));
    gst_buffer_unref (gst_harness_pull (h[i]));
  }
  g_mutex_lock (&shared.gate.lock);
  shared.gate.release = TRUE;
  g_cond_broadcast (&shared.gate.cond);
  g_mutex_unlock (&shared.gate.lock);
  wait_analysed (&shared.gate, 1 + N_SHARING);

  for (int i = 0; i < N_SHARING; i++) {
    GstBuffer *out = gst_harness_push_and_pull (h[i],
        picture_buffer (p[i], GST_VIDEO_FORMAT_RGB, 2 * FRAME_DURATION));
    GstClipMeta *meta = gst_buffer_get_clip_meta (out);
    g_assert_nonnull (meta);
    /* That frame's result, or already this one's (the same picture). */
    g_assert_cmpuint (gst_clip_meta_get_pts (meta), >=, FRAME_DURATION);
    g_autofree float *embedding = runtime_embedding (p[i],
        GST_VIDEO_FORMAT_RGB);
    g_autoptr (ClipLabelSet) set = clip_test_label_set (encoder, labels[i],
        NULL);
    assert_meta_scores (meta, set, embedding, 5);
    gst_buffer_unref (out);
  }
  g_mutex_lock (&shared.gate.lock);
  g_assert_true (shared.full_batch);
  g_assert_false (shared.several_posters);
  g_assert_true (shared.poster != g_thread_self ());
  g_mutex_unlock (&shared.gate.lock);

  /* The elements leave one by one; the last frees the batcher. */
  for (int i = 0; i < N_SHARING; i++) {
    gst_harness_teardown (h[i]);
    gst_bus_set_sync_handler (bus[i], NULL, NULL, NULL);
    gst_bus_set_flushing (bus[i], TRUE);
    gst_object_unref (bus[i]);
    picture_free (p[i]);
  }
  gst_debug_remove_log_function_by_data (&shared);
  gst_debug_set_threshold_for_name ("clipclassify", GST_LEVEL_NONE);
  g_mutex_clear (&shared.gate.lock);
  g_cond_clear (&shared.gate.cond);
}

/* Pulls buffers until one carries a meta scored against n_labels labels. */
static GstClipMeta *
wait_for_label_count (GstHarness *h, const Picture *p, guint n_labels,
    GstBuffer **out, guint *frame)
{
  gint64 deadline = g_get_monotonic_time () + 30 * G_TIME_SPAN_SECOND;
  while (g_get_monotonic_time () < deadline) {
    *out = gst_harness_push_and_pull (h,
        picture_buffer (p, GST_VIDEO_FORMAT_RGB, (*frame)++ * FRAME_DURATION));
    GstClipMeta *meta = gst_buffer_get_clip_meta (*out);
    if (meta
        && gst_clip_label_table_get_n_labels (meta->label_table) == n_labels)
      return meta;
    gst_buffer_unref (*out);
    g_usleep (5000);
  }
  g_assert_not_reached ();
}

static void
test_label_change_while_playing (void)
{
  if (!setup_model ())
    return;
  for (int mode = 1; mode <= 2; mode++) {
    GstBus *bus;
    GstElement *e = new_element ("labels", "cat,dog", "mode", mode, NULL);
    GstHarness *h = clip_test_harness_new (gst_object_ref (e), &bus);
    g_autoptr (Picture) p = picture_new (40, 30, 5);
    g_autofree float *embedding = runtime_embedding (p, GST_VIDEO_FORMAT_RGB);
    gst_harness_set_src_caps (h, picture_caps (p, GST_VIDEO_FORMAT_RGB));
    guint frame = 0;
    GstBuffer *out;

    g_autoptr (ClipLabelSet) before = clip_test_label_set (encoder, "cat,dog",
        NULL);
    GstClipMeta *meta = mode == 1
        ? gst_buffer_get_clip_meta (out = gst_harness_push_and_pull (h,
                                        picture_buffer (p, GST_VIDEO_FORMAT_RGB,
                                            frame++ * FRAME_DURATION)))
        : wait_for_label_count (h, p, 2, &out, &frame);
    assert_meta_scores (meta, before, embedding, 5);
    gst_buffer_unref (out);

    g_assert_cmpint (GST_STATE (e), ==, GST_STATE_PLAYING);
    g_object_set (e, "labels", "red,green,blue", "templates", "a {} thing", NULL);
    g_autoptr (GError) error = NULL;
    g_autoptr (GPtrArray) specs = clip_labels_parse_list ("red,green,blue");
    const char *templates[] = { "a {} thing", NULL };
    g_autoptr (ClipLabelSet) after = clip_label_set_new (encoder, specs, NULL,
        templates, &error);
    g_assert_no_error (error);
    /* Built off the streaming thread in both modes: the old labels score
     * until the new ones are in. */
    meta = wait_for_label_count (h, p, 3, &out, &frame);
    assert_meta_scores (meta, after, embedding, 5);
    gst_buffer_unref (out);

    gst_harness_teardown (h);
    gst_object_unref (e);
    gst_bus_set_flushing (bus, TRUE);
    gst_object_unref (bus);
  }
}

/* Holds each clipclassify result in the posting thread, as a busy machine
 * can hold the element's worker between finishing a frame and posting. */
static GstBusSyncReply
delay_results (GstBus *bus, GstMessage *message, gpointer data)
{
  (void) bus;
  (void) data;
  if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ELEMENT
      && gst_message_has_name (message, "clipclassify"))
    g_usleep (200 * 1000);
  return GST_BUS_PASS;
}

/* Live mode, with its own worker and with a shared batcher: when EOS has
 * gone through the element, the results of the frames before it are on
 * the bus, ahead of the EOS message that an application stops reading
 * at. */
static void
test_live_results_before_eos (void)
{
  if (!setup_model ())
    return;
  for (int shared = 0; shared < 2; shared++) {
    GstBus *bus;
    GstHarness *h = clip_test_harness_new (new_element ("labels", "p,q,r",
                                               "mode", 2 /* live */,
                                               "shared-batches", shared, NULL),
        &bus);
    gst_bus_set_sync_handler (bus, delay_results, NULL, NULL);
    g_autoptr (Picture) a = picture_new (32, 24, 30);
    gst_harness_set_src_caps (h, picture_caps (a, GST_VIDEO_FORMAT_RGB));
    gst_harness_push (h, picture_buffer (a, GST_VIDEO_FORMAT_RGB, 0));
    g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));
    g_assert_cmpuint (count_messages (bus, "clipclassify", NULL), ==, 1);
    clip_test_harness_free (h, bus);
  }
}

/* A flush discards held buffers and resets smoothing; EOS flushes. */
static void
test_flush_and_eos (void)
{
  if (!setup_model ())
    return;
  GstBus *bus;
  GstHarness *h = clip_test_harness_new (new_element ("labels", "p,q,r", "mode",
                                             1, "batch-size", 3, "smoothing", 4,
                                             NULL),
      &bus);
  g_autoptr (ClipLabelSet) set = clip_test_label_set (encoder, "p,q,r", NULL);
  g_autoptr (Picture) a = picture_new (32, 24, 30);
  g_autoptr (Picture) b = picture_new (32, 24, 31);
  gst_harness_set_src_caps (h, picture_caps (a, GST_VIDEO_FORMAT_RGB));

  gst_harness_push (h, picture_buffer (a, GST_VIDEO_FORMAT_RGB, 0));
  gst_harness_push (h,
      picture_buffer (a, GST_VIDEO_FORMAT_RGB, FRAME_DURATION));
  g_assert_true (gst_harness_push_event (h, gst_event_new_flush_start ()));
  g_assert_true (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  g_assert_true (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  g_assert_cmpuint (gst_harness_buffers_received (h), ==, 0);

  gst_harness_push (h, picture_buffer (b, GST_VIDEO_FORMAT_RGB, 0));
  gst_harness_push_event (h, gst_event_new_eos ());
  g_assert_cmpuint (gst_harness_buffers_received (h), ==, 1);
  GstBuffer *out = gst_harness_pull (h);
  /* smoothing restarted: b alone, not a mean with a */
  g_autofree float *embedding = runtime_embedding (b, GST_VIDEO_FORMAT_RGB);
  assert_meta_scores (gst_buffer_get_clip_meta (out), set, embedding, 5);
  gst_buffer_unref (out);
  g_assert_cmpuint (count_messages (bus, "clipclassify", NULL), ==, 1);
  clip_test_harness_free (h, bus);
}

/* smoothing=3 scores the mean of the last three normalised embeddings. */
static void
test_smoothing (void)
{
  if (!setup_model ())
    return;
  const int dim = clip_model_get_config (model)->embed_dim;
  GstBus *bus;
  GstHarness *h = clip_test_harness_new (
      new_element ("labels", "u,v,w", "mode", 1, "smoothing", 3, NULL), &bus);
  g_autoptr (ClipLabelSet) set = clip_test_label_set (encoder, "u,v,w", NULL);
  float *embeddings[5];

  for (int i = 0; i < 5; i++) {
    g_autoptr (Picture) p = picture_new (32, 32, 40 + i);
    if (i == 0)
      gst_harness_set_src_caps (h, picture_caps (p, GST_VIDEO_FORMAT_RGB));
    embeddings[i] = runtime_embedding (p, GST_VIDEO_FORMAT_RGB);
    clip_l2_normalize (embeddings[i], dim);
    GstBuffer *out = gst_harness_push_and_pull (h,
        picture_buffer (p, GST_VIDEO_FORMAT_RGB, i * FRAME_DURATION));
    g_autofree float *mean = g_new0 (float, dim);
    for (int j = MAX (0, i - 2); j <= i; j++)
      for (int d = 0; d < dim; d++)
        mean[d] += embeddings[j][d];
    assert_meta_scores (gst_buffer_get_clip_meta (out), set, mean, 5);
    gst_buffer_unref (out);
  }
  for (int i = 0; i < 5; i++)
    g_free (embeddings[i]);
  clip_test_harness_free (h, bus);
}

/* Two pictures whose top labels differ, found by search so that the test
 * does not depend on the random model's preferences. */
static void
find_distinct_pictures (ClipLabelSet *set, guint *seed_a, guint *seed_b)
{
  const int n = clip_label_set_get_n_labels (set);
  g_autofree float *probs = g_new (float, n);
  int first_top = -1;
  for (guint seed = 0; seed < 64; seed++) {
    g_autoptr (Picture) p = picture_new (32, 32, seed);
    g_autofree float *e = runtime_embedding (p, GST_VIDEO_FORMAT_RGB);
    clip_label_set_score (set, e, NULL, probs);
    int top = 0;
    for (int i = 1; i < n; i++)
      if (probs[i] > probs[top])
        top = i;
    if (first_top < 0) {
      first_top = top;
      *seed_a = seed;
    } else if (top != first_top) {
      *seed_b = seed;
      return;
    }
  }
  g_assert_not_reached ();
}

typedef struct {
  const char *label;
  guint64 start, end;
} Segment;

static Segment
parse_segment (GstMessage *msg)
{
  const GstStructure *s = gst_message_get_structure (msg);
  Segment seg;
  seg.label = gst_structure_get_string (s, "label");
  g_assert_true (gst_structure_get_uint64 (s, "start", &seg.start));
  g_assert_true (gst_structure_get_uint64 (s, "end", &seg.end));
  double mean;
  g_assert_true (gst_structure_get_double (s, "mean-score", &mean));
  g_assert_cmpfloat (mean, >, 0.0);
  g_assert_cmpfloat (mean, <=, 1.0);
  return seg;
}

/* A stream whose content changes: segment messages name the labels and
 * their times; with min-segment a one-frame flicker is not announced. */
static void
test_segments (void)
{
  if (!setup_model ())
    return;
  const char *labels = "red,green,blue,cat,dog,car,tree,sky";
  g_autoptr (ClipLabelSet) set = clip_test_label_set (encoder, labels, NULL);
  guint seed_a = 0, seed_b = 0;
  find_distinct_pictures (set, &seed_a, &seed_b);
  g_autoptr (Picture) a = picture_new (32, 32, seed_a);
  g_autoptr (Picture) b = picture_new (32, 32, seed_b);
  /* A x3, B (flicker), A x3, B x4 */
  const char *script = "AAABAAABBBB";
  const GstClockTime min_segments[] = { 0, 100 * GST_MSECOND };

  for (guint m = 0; m < G_N_ELEMENTS (min_segments); m++) {
    GstBus *bus;
    GstHarness *h = clip_test_harness_new (new_element ("labels", labels,
                                               "mode", 1, "min-segment",
                                               min_segments[m], NULL),
        &bus);
    gst_harness_set_src_caps (h, picture_caps (a, GST_VIDEO_FORMAT_RGB));
    char top_a[64] = "", top_b[64] = "";
    for (guint i = 0; script[i]; i++) {
      GstBuffer *out = gst_harness_push_and_pull (h,
          picture_buffer (script[i] == 'A' ? a : b, GST_VIDEO_FORMAT_RGB,
              i * FRAME_DURATION));
      const char *top = gst_clip_meta_get_top_label (
          gst_buffer_get_clip_meta (out));
      g_assert_nonnull (top);
      g_strlcpy (script[i] == 'A' ? top_a : top_b, top, sizeof top_a);
      gst_buffer_unref (out);
    }
    gst_harness_push_event (h, gst_event_new_eos ());
    g_assert_cmpstr (top_a, !=, top_b);

    g_autoptr (GPtrArray) messages = g_ptr_array_new_with_free_func (
        (GDestroyNotify) gst_message_unref);
    count_messages (bus, "clipclassify-segment", messages);
    const guint64 d = FRAME_DURATION;
    if (min_segments[m] == 0) {
      /* every change: A [0,3) B [3,4) A [4,7) B [7,11) */
      const Segment expected[] = { { top_a, 0, 3 * d }, { top_b, 3 * d, 4 * d },
        { top_a, 4 * d, 7 * d }, { top_b, 7 * d, 11 * d } };
      g_assert_cmpuint (messages->len, ==, G_N_ELEMENTS (expected));
      for (guint i = 0; i < messages->len; i++) {
        Segment seg = parse_segment (messages->pdata[i]);
        g_assert_cmpstr (seg.label, ==, expected[i].label);
        g_assert_cmpuint (seg.start, ==, expected[i].start);
        g_assert_cmpuint (seg.end, ==, expected[i].end);
      }
    } else {
      /* the flicker is absorbed: A [0,7) then B [7,11) */
      g_assert_cmpuint (messages->len, ==, 2);
      Segment first = parse_segment (messages->pdata[0]);
      Segment last = parse_segment (messages->pdata[1]);
      g_assert_cmpstr (first.label, ==, top_a);
      g_assert_cmpuint (first.start, ==, 0);
      g_assert_cmpuint (first.end, ==, 7 * d);
      g_assert_cmpstr (last.label, ==, top_b);
      g_assert_cmpuint (last.start, ==, 7 * d);
      g_assert_cmpuint (last.end, ==, 11 * d);
    }
    gst_harness_teardown (h);
    gst_bus_set_flushing (bus, TRUE);
    gst_object_unref (bus);
  }
}

/* The latency answer: sync adds the frames a batch holds back; live adds
 * nothing; auto under a live upstream (the harness) is live. */
static void
test_latency (void)
{
  if (!setup_model ())
    return;
  const int modes[] = { 1, 2, 0 };
  for (guint m = 0; m < G_N_ELEMENTS (modes); m++) {
    GstBus *bus;
    GstHarness *h = clip_test_harness_new (
        new_element ("labels", "a,b", "mode", modes[m], "batch-size", 4, NULL),
        &bus);
    gst_harness_set_upstream_latency (h, 10 * GST_MSECOND);
    g_autoptr (Picture) p = picture_new (32, 32, 1);
    gst_harness_set_src_caps (h, picture_caps (p, GST_VIDEO_FORMAT_RGB));
    gst_harness_push (h, picture_buffer (p, GST_VIDEO_FORMAT_RGB, 0));

    GstClockTime latency = gst_harness_query_latency (h);
    if (modes[m] == 1)
      g_assert_cmpuint (latency, >=, 10 * GST_MSECOND + 3 * FRAME_DURATION);
    else
      g_assert_cmpuint (latency, ==, 10 * GST_MSECOND);
    gst_harness_teardown (h);
    gst_bus_set_flushing (bus, TRUE);
    gst_object_unref (bus);
  }
}

/* auto under a non-live source is sync: every frame gets its own result;
 * the element also survives READY <-> PLAYING cycles. */
static GstPadProbeReturn
check_fresh_meta (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  GstClipMeta *meta = gst_buffer_get_clip_meta (buffer);
  g_assert_nonnull (meta);
  g_assert_true (gst_clip_meta_is_fresh (meta));
  g_assert_cmpuint (gst_clip_meta_get_pts (meta), ==, GST_BUFFER_PTS (buffer));
  g_atomic_int_inc ((gint *) user_data);
  return GST_PAD_PROBE_OK;
}

static void
test_auto_sync_and_restarts (void)
{
  if (!setup_model ())
    return;
  g_autofree char *desc = g_strdup_printf (
      "videotestsrc pattern=ball num-buffers=8 ! "
      "video/x-raw,format=I420,width=80,height=60,framerate=25/1 ! "
      "clipclassify model=\"%s\" labels=ball,square backend=cpu threads=1 "
      "batch-size=2 ! fakesink name=sink sync=false",
      model_dir);
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstPad *pad = gst_element_get_static_pad (sink, "sink");
  gint buffers = 0;
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, check_fresh_meta, &buffers,
      NULL);
  GstBus *bus = gst_element_get_bus (pipeline);

  /* Each run plays to its end (EOS), then back to READY. */
  for (int cycle = 0; cycle < 3; cycle++) {
    g_atomic_int_set (&buffers, 0);
    g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
        GST_STATE_CHANGE_FAILURE);
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
        GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    g_assert_cmpint (GST_MESSAGE_TYPE (msg), ==, GST_MESSAGE_EOS);
    gst_message_unref (msg);
    g_assert_cmpint (g_atomic_int_get (&buffers), ==, 8);
    g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_READY), ==,
        GST_STATE_CHANGE_SUCCESS);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pad);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
}

/* Starts an element that must fail; returns the ERROR message's text. */
static char *
start_error (GstElement *element)
{
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (element, bus);
  g_assert_cmpint (gst_element_set_state (element, GST_STATE_PAUSED), ==,
      GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  g_assert_nonnull (msg);
  g_autoptr (GError) error = NULL;
  gst_message_parse_error (msg, &error, NULL);
  gst_message_unref (msg);
  gst_element_set_state (element, GST_STATE_NULL);
  gst_object_unref (element);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  return g_strdup (error->message);
}

static void
test_errors (void)
{
  if (!setup_model ())
    return;
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *empty = g_build_filename (dir, "empty-labels.txt", NULL);
  g_assert_true (g_file_set_contents (empty, "# only a comment\n\n", -1, NULL));
  g_autofree char *missing = g_build_filename (dir, "no-such-labels.txt", NULL);
  g_autofree char *text = NULL;

  text = start_error (
      new_element ("model", "/nonexistent/clip-model", "labels", "a", NULL));
  g_test_message ("bad model: %s", text);
  g_assert_nonnull (strstr (text, "/nonexistent/clip-model"));
  g_free (text);

  text = start_error (new_element ("labels-file", missing, NULL));
  g_test_message ("missing labels file: %s", text);
  g_assert_nonnull (strstr (text, "no-such-labels.txt"));
  g_free (text);

  text = start_error (new_element ("labels-file", empty, NULL));
  g_test_message ("empty labels file: %s", text);
  g_assert_nonnull (strstr (text, "empty-labels.txt"));
  g_free (text);

  text = start_error (new_element ("labels", " , ", NULL));
  g_test_message ("no labels: %s", text);
  g_assert_nonnull (strstr (text, "labels"));
  g_free (text);

  /* main () pointed GST_CLIP_DEFAULT_MODEL at nothing */
  GstElement *e = gst_element_factory_make ("clipclassify", NULL);
  g_object_set (e, "labels", "a", NULL);
  text = start_error (e);
  g_test_message ("no model: %s", text);
  /* names the property, where it looked and the variable */
  g_assert_nonnull (strstr (text, "model property"));
  g_assert_nonnull (strstr (text, "/nonexistent/default-model"));
  g_assert_nonnull (strstr (text, "GST_CLIP_DEFAULT_MODEL"));
}

int
main (int argc, char **argv)
{
  /* no installed default model may stand in for a missing model property;
   * set before any thread exists */
  g_setenv ("GST_CLIP_DEFAULT_MODEL", "/nonexistent/default-model", TRUE);
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/clipclassify/properties", test_properties);
  g_test_add_func ("/clipclassify/precision", test_precision);
  g_test_add_func ("/clipclassify/meta-matches-runtime",
      test_meta_matches_runtime);
  g_test_add_func ("/clipclassify/caps-change", test_caps_change);
  g_test_add_func ("/clipclassify/interval", test_interval);
  g_test_add_func ("/clipclassify/sync-batching", test_sync_batching);
  g_test_add_func ("/clipclassify/live-never-waits", test_live_never_waits);
  g_test_add_func ("/clipclassify/shared-batches", test_shared_batches);
  g_test_add_func ("/clipclassify/label-change-while-playing",
      test_label_change_while_playing);
  g_test_add_func ("/clipclassify/flush-and-eos", test_flush_and_eos);
  g_test_add_func ("/clipclassify/live-results-before-eos",
      test_live_results_before_eos);
  g_test_add_func ("/clipclassify/smoothing", test_smoothing);
  g_test_add_func ("/clipclassify/segments", test_segments);
  g_test_add_func ("/clipclassify/latency", test_latency);
  g_test_add_func ("/clipclassify/auto-sync-and-restarts",
      test_auto_sync_and_restarts);
  g_test_add_func ("/clipclassify/errors", test_errors);
  int status = g_test_run ();
  g_clear_pointer (&encoder, clip_encoder_free);
  g_clear_pointer (&model, clip_model_unref);
  g_free (model_dir);
  return status;
}
