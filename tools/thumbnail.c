/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "thumbnail.h"

#include "clip.h"

#include <gdk-pixbuf/gdk-pixbuf.h>

#define MIN_WIDTH 16
#define MAX_WIDTH (4 * TOOL_THUMBNAIL_HEIGHT)
/* Small files that still show what a frame is. */
#define JPEG_QUALITY "75"
/* How long opening, prerolling or seeking a file may take. */
#define WAIT_SECONDS 30

struct _ToolThumbnailer {
  GstCaps *caps; /* of the converter's input */
  GstVideoInfo in, out;
  GstVideoConverter *converter;
};

ToolThumbnailer *
tool_thumbnailer_new (void)
{
  return g_new0 (ToolThumbnailer, 1);
}

void
tool_thumbnailer_free (ToolThumbnailer *t)
{
  if (t == NULL)
    return;
  if (t->converter)
    gst_video_converter_free (t->converter);
  gst_clear_caps (&t->caps);
  g_free (t);
}

/* A converter from caps to RGB at the thumbnail's size. */
static gboolean
set_caps (ToolThumbnailer *t, GstCaps *caps, GError **error)
{
  if (t->caps && gst_caps_is_equal (t->caps, caps))
    return TRUE;
  if (t->converter)
    gst_video_converter_free (t->converter);
  t->converter = NULL;
  gst_clear_caps (&t->caps);
  if (!gst_video_info_from_caps (&t->in, caps)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "thumbnail: not raw video caps");
    return FALSE;
  }
  double aspect = (double) GST_VIDEO_INFO_WIDTH (&t->in)
      * GST_VIDEO_INFO_PAR_N (&t->in)
      / ((double) GST_VIDEO_INFO_HEIGHT (&t->in)
          * GST_VIDEO_INFO_PAR_D (&t->in));
  int width = CLAMP ((int) (TOOL_THUMBNAIL_HEIGHT * aspect + 0.5), MIN_WIDTH,
      MAX_WIDTH);
  gst_video_info_set_format (&t->out, GST_VIDEO_FORMAT_RGB, width,
      TOOL_THUMBNAIL_HEIGHT);
  /* The converter changes size and format, never the rate. */
  GST_VIDEO_INFO_FPS_N (&t->out) = GST_VIDEO_INFO_FPS_N (&t->in);
  GST_VIDEO_INFO_FPS_D (&t->out) = GST_VIDEO_INFO_FPS_D (&t->in);
  t->converter = gst_video_converter_new (&t->in, &t->out, NULL);
  if (t->converter == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "thumbnail: cannot convert %s frames",
        gst_video_format_to_string (GST_VIDEO_INFO_FORMAT (&t->in)));
    return FALSE;
  }
  t->caps = gst_caps_ref (caps);
  return TRUE;
}

gboolean
tool_thumbnailer_make (ToolThumbnailer *t, GstBuffer *buffer, GstCaps *caps,
    ClipHtmlThumbnail *thumbnail, GError **error)
{
  if (!set_caps (t, caps, error))
    return FALSE;
  GstVideoFrame in, out;
  if (!gst_video_frame_map (&in, &t->in, buffer, GST_MAP_READ)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "thumbnail: cannot map a frame");
    return FALSE;
  }
  g_autoptr (GstBuffer) rgb = gst_buffer_new_allocate (NULL,
      GST_VIDEO_INFO_SIZE (&t->out), NULL);
  gst_video_frame_map (&out, &t->out, rgb, GST_MAP_WRITE);
  gst_video_converter_frame (t->converter, &in, &out);
  gst_video_frame_unmap (&in);

  int width = GST_VIDEO_INFO_WIDTH (&t->out);
  int height = GST_VIDEO_INFO_HEIGHT (&t->out);
  g_autoptr (GdkPixbuf) pixbuf = gdk_pixbuf_new_from_data (
      GST_VIDEO_FRAME_PLANE_DATA (&out, 0), GDK_COLORSPACE_RGB, FALSE, 8, width,
      height, GST_VIDEO_FRAME_PLANE_STRIDE (&out, 0), NULL, NULL);
  char *jpeg = NULL;
  gsize size = 0;
  gboolean ok = gdk_pixbuf_save_to_buffer (pixbuf, &jpeg, &size, "jpeg", error,
      "quality", JPEG_QUALITY, NULL);
  gst_video_frame_unmap (&out);
  if (!ok)
    return FALSE;
  thumbnail->jpeg = g_bytes_new_take (jpeg, size);
  thumbnail->width = width;
  thumbnail->height = height;
  return TRUE;
}

void
tool_thumbnail_clear (ClipHtmlThumbnail *thumbnail)
{
  g_clear_pointer (&thumbnail->jpeg, g_bytes_unref);
}

/* Waits for the end of a state change or seek; FALSE with error on an
 * error message or after WAIT_SECONDS. */
static gboolean
wait_async_done (GstElement *playbin, const char *path, GError **error)
{
  g_autoptr (GstBus) bus = gst_element_get_bus (playbin);
  g_autoptr (GstMessage) msg = gst_bus_timed_pop_filtered (bus,
      WAIT_SECONDS * GST_SECOND, GST_MESSAGE_ASYNC_DONE | GST_MESSAGE_ERROR);
  if (msg != NULL && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ASYNC_DONE)
    return TRUE;
  g_autoptr (GError) gerror = NULL;
  if (msg != NULL)
    gst_message_parse_error (msg, &gerror, NULL);
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", path,
      gerror ? gerror->message : "timed out reading a frame");
  return FALSE;
}

gboolean
tool_thumbnail_at (const char *path, GstClockTime pts,
    ClipHtmlThumbnail *thumbnail, GError **error)
{
  if (!gst_init_check (NULL, NULL, error))
    return FALSE;
  g_autofree char *uri = NULL;
  if (gst_uri_is_valid (path))
    uri = g_strdup (path);
  else if (!(uri = gst_filename_to_uri (path, error)))
    return FALSE;

  GstElement *playbin = gst_element_factory_make ("playbin", NULL);
  GstElement *sink = gst_element_factory_make ("fakesink", NULL);
  if (playbin == NULL || sink == NULL) {
    gst_clear_object (&playbin);
    gst_clear_object (&sink);
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "GStreamer's playbin is not available");
    return FALSE;
  }
  g_object_set (playbin, "uri", uri, "video-sink", sink, NULL);
  gst_util_set_object_arg (G_OBJECT (playbin), "flags", "video");

  gboolean ok = FALSE;
  g_autoptr (GstSample) sample = NULL;
  if (gst_element_set_state (playbin, GST_STATE_PAUSED)
          != GST_STATE_CHANGE_FAILURE
      && wait_async_done (playbin, path, error)) {
    if (gst_element_seek_simple (playbin, GST_FORMAT_TIME,
            GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE, pts)
        && !wait_async_done (playbin, path, error)) {
      /* error set */
    } else {
      g_object_get (playbin, "sample", &sample, NULL);
      if (sample == NULL)
        g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
            "%s: no frame at that time", path);
    }
  } else if (error != NULL && *error == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: cannot be played",
        path);
  }
  if (sample != NULL) {
    g_autoptr (ToolThumbnailer) t = tool_thumbnailer_new ();
    ok = tool_thumbnailer_make (t, gst_sample_get_buffer (sample),
        gst_sample_get_caps (sample), thumbnail, error);
  }
  gst_element_set_state (playbin, GST_STATE_NULL);
  gst_object_unref (playbin);
  return ok;
}
