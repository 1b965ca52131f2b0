/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* read-meta: how an application reads GstClipMeta.
 *
 * Runs a pipeline that ends in an appsink named "sink" and prints, for
 * every buffer, the classification clipclassify attached to it:
 *
 *   read-meta 'videotestsrc num-buffers=30 ! clipclassify model=MODEL \
 *       labels="test pattern,cat" ! appsink name=sink'
 *
 * prints lines like
 *
 *   0:00:00.000000000 fresh  frame 0:00:00.000000000 top "test pattern" 0.83 | "cat" 0.17
 *
 * and, with clipclassify regions=rois or both, a line per region of
 * interest: its id, rectangle and labels
 *
 *     region 1 0,0 160x120 top "a person" 0.91 | "a car" 0.09
 *
 * Build against the installed meta library with
 *   cc read-meta.c $(pkg-config --cflags --libs gstreamer-clip-meta-1.0 gstreamer-app-1.0)
 */
#include <gst/app/gstappsink.h>
#include <gst/gst.h>

#include <gst/clip/gstclipmeta.h>

static void
print_meta (GstBuffer *buffer)
{
  GstClipMeta *meta = gst_buffer_get_clip_meta (buffer);

  g_print ("%" GST_TIME_FORMAT " ", GST_TIME_ARGS (GST_BUFFER_PTS (buffer)));
  if (meta == NULL) {
    /* live mode: no result has finished yet */
    g_print ("no result yet\n");
    return;
  }
  g_print ("%-6s frame %" GST_TIME_FORMAT " top ",
      gst_clip_meta_is_fresh (meta) ? "fresh" : "carried",
      GST_TIME_ARGS (gst_clip_meta_get_pts (meta)));
  if (gst_clip_meta_get_top (meta) < 0)
    g_print ("(none)");
  for (guint i = 0; i < gst_clip_meta_get_n_labels (meta); i++)
    g_print ("%s\"%s\" %.2f", i ? " | " : "", gst_clip_meta_get_label (meta, i),
        gst_clip_meta_get_probability (meta, i));
  g_print ("\n");

  /* clipclassify regions=rois|both: a line per region of interest */
  for (guint r = 0; r < gst_clip_meta_get_n_regions (meta); r++) {
    guint x, y, width, height;
    gst_clip_meta_get_region_rect (meta, r, &x, &y, &width, &height);
    g_print ("  region %d %u,%u %ux%u top ",
        gst_clip_meta_get_region_id (meta, r), x, y, width, height);
    if (gst_clip_meta_get_region_top_label (meta, r) == NULL)
      g_print ("(none)");
    for (guint i = 0; i < gst_clip_meta_get_region_n_labels (meta, r); i++)
      g_print ("%s\"%s\" %.2f", i ? " | " : "",
          gst_clip_meta_get_region_label (meta, r, i),
          gst_clip_meta_get_region_probability (meta, r, i));
    g_print ("\n");
  }
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;

  gst_init (&argc, &argv);
  if (argc != 2) {
    g_printerr ("usage: %s 'PIPELINE ! appsink name=sink'\n", argv[0]);
    return 2;
  }
  GstElement *pipeline = gst_parse_launch (argv[1], &error);
  if (pipeline == NULL) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  if (sink == NULL || !GST_IS_APP_SINK (sink)) {
    g_printerr ("the pipeline needs an appsink named \"sink\"\n");
    gst_clear_object (&sink);
    gst_object_unref (pipeline);
    return 2;
  }

  int status = 0;
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING)
      == GST_STATE_CHANGE_FAILURE)
    status = 1;
  GstSample *sample;
  while (status == 0
      && (sample = gst_app_sink_pull_sample (GST_APP_SINK (sink)))) {
    print_meta (gst_sample_get_buffer (sample));
    gst_sample_unref (sample);
  }

  /* an error ends the stream early: report it */
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  if (msg != NULL) {
    g_autoptr (GError) err = NULL;
    gst_message_parse_error (msg, &err, NULL);
    g_printerr ("error: %s\n", err->message);
    gst_message_unref (msg);
    status = 1;
  }
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  return status;
}
