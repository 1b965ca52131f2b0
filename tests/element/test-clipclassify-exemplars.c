/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clipclassify with a labels file whose labels are defined by example
 * images, on the default model: frames get the label of the examples they
 * look like; a new labels file while PLAYING is built on the label thread
 * and swapped in; a bad one (a missing image, a folder without images) is a
 * WARNING naming the line and the item, and the old labels stay; at start
 * it is an ERROR. The cache file appears beside the labels file. */
#include <cairo.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <glib/gstdio.h>
#include <string.h>

#include "gstclipmeta.h"
#include "reference.h"

#define WIDTH 64
#define HEIGHT 48

typedef enum { RED, BLUE, GREEN, N_COLOURS } Colour;
static const char *colour_names[] = { "red", "blue", "green" };
static const guint8 colour_rgb[][3] = { { 220, 30, 30 }, { 30, 30, 220 },
  { 30, 200, 30 } };

/* Three drawings of each colour (a disc of it on white, of jittered size)
 * in DIR/red/, DIR/blue/, DIR/green/. */
static void
write_examples (const char *dir)
{
  for (int c = 0; c < N_COLOURS; c++) {
    g_autofree char *folder = g_build_filename (dir, colour_names[c], NULL);
    g_assert_cmpint (g_mkdir_with_parents (folder, 0755), ==, 0);
    for (int i = 0; i < 3; i++) {
      cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_RGB24,
          80, 60);
      cairo_t *cr = cairo_create (surface);
      cairo_set_source_rgb (cr, 1, 1, 1);
      cairo_paint (cr);
      cairo_set_source_rgb (cr, colour_rgb[c][0] / 255.0,
          colour_rgb[c][1] / 255.0, colour_rgb[c][2] / 255.0);
      cairo_arc (cr, 40, 30, 20 + 4 * i, 0, 2 * G_PI);
      cairo_fill (cr);
      cairo_destroy (cr);
      g_autofree char *name = g_strdup_printf ("%d.png", i);
      g_autofree char *path = g_build_filename (folder, name, NULL);
      g_assert_cmpint (cairo_surface_write_to_png (surface, path), ==,
          CAIRO_STATUS_SUCCESS);
      cairo_surface_destroy (surface);
    }
  }
}

static char *
write_labels (const char *dir, const char *name, const char *text)
{
  char *path = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

/* A frame of the colour, a disc on white like the examples. */
static GstBuffer *
frame_buffer (Colour colour, guint i)
{
  const gsize size = WIDTH * HEIGHT * 3;
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, size, NULL);
  GstMapInfo map;
  g_assert_true (gst_buffer_map (buffer, &map, GST_MAP_WRITE));
  for (int y = 0; y < HEIGHT; y++)
    for (int x = 0; x < WIDTH; x++) {
      int dx = x - WIDTH / 2, dy = y - HEIGHT / 2;
      gboolean inside = dx * dx + dy * dy < 18 * 18;
      for (int k = 0; k < 3; k++)
        map.data[(y * WIDTH + x) * 3 + k] = inside ? colour_rgb[colour][k]
                                                   : 255;
    }
  gst_buffer_unmap (buffer, &map);
  GST_BUFFER_PTS (buffer) = i * GST_SECOND / 25;
  GST_BUFFER_DURATION (buffer) = GST_SECOND / 25;
  return buffer;
}

static GstElement *
new_element (const char *labels_file, GstBus **bus)
{
  g_autofree char *model = g_build_filename (g_getenv ("CLIP_SOURCE_DIR"),
      "models", "default", NULL);
  GstElement *element = gst_element_factory_make ("clipclassify", NULL);
  g_assert_nonnull (element);
  g_object_set (element, "model", model, "threads", 1, "labels-file",
      labels_file, NULL);
  gst_util_set_object_arg (G_OBJECT (element), "mode", "sync");
  gst_util_set_object_arg (G_OBJECT (element), "backend", "cpu");
  *bus = gst_bus_new ();
  gst_element_set_bus (element, *bus);
  return element;
}

static char *
top_label (GstHarness *h, Colour colour, guint i)
{
  GstBuffer *out = gst_harness_push_and_pull (h, frame_buffer (colour, i));
  GstClipMeta *meta = gst_buffer_get_clip_meta (out);
  g_assert_nonnull (meta);
  char *label = g_strdup (gst_clip_meta_get_label (meta, 0));
  gst_buffer_unref (out);
  return label;
}

static guint
n_labels (GstHarness *h, guint i)
{
  GstBuffer *out = gst_harness_push_and_pull (h, frame_buffer (RED, i));
  guint n = gst_clip_label_table_get_n_labels (
      gst_buffer_get_clip_meta (out)->label_table);
  gst_buffer_unref (out);
  return n;
}

/* Waits for the label thread's WARNING and returns its text. */
static char *
next_warning (GstBus *bus)
{
  g_autoptr (GstMessage) msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
      GST_MESSAGE_WARNING);
  g_assert_nonnull (msg);
  g_autoptr (GError) error = NULL;
  gst_message_parse_warning (msg, &error, NULL);
  g_test_message ("WARNING: %s", error->message);
  return g_strdup (error->message);
}

static void
test_examples_while_playing (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  write_examples (dir);
  g_autofree char *two = write_labels (dir, "two.txt",
      "red: @red/\nblue: @blue/0.png | @blue/1.png | @blue/2.png\n");
  GstBus *bus;
  GstElement *element = new_element (two, &bus);
  GstHarness *h = gst_harness_new_with_element (element, "sink", "src");
  gst_harness_set_src_caps_str (h,
      "video/x-raw,format=RGB,width=64,height=48,framerate=25/1");
  guint frame = 0;
  g_autofree char *red = top_label (h, RED, frame++);
  g_autofree char *blue = top_label (h, BLUE, frame++);
  g_assert_cmpstr (red, ==, "red");
  g_assert_cmpstr (blue, ==, "blue");
  g_autofree char *cache = g_strconcat (two, ".exemplars", NULL);
  g_assert_true (g_file_test (cache, G_FILE_TEST_IS_REGULAR));

  /* Bad sets while PLAYING: a WARNING each, the old labels stay. */
  g_autofree char *missing = write_labels (dir, "missing.txt",
      "red: @red/\n# a comment\ngreen: @green/absent.png\n");
  g_object_set (element, "labels-file", missing, NULL);
  g_autofree char *warning = next_warning (bus);
  g_assert_nonnull (strstr (warning, "missing.txt:3"));
  g_assert_nonnull (strstr (warning, "absent.png"));
  g_assert_cmpuint (n_labels (h, frame++), ==, 2);

  g_autofree char *empty_dir = g_build_filename (dir, "empty", NULL);
  g_assert_cmpint (g_mkdir (empty_dir, 0755), ==, 0);
  g_autofree char *empty = write_labels (dir, "empty.txt",
      "red: @red/\nnothing: @empty/\n");
  g_object_set (element, "labels-file", empty, NULL);
  g_autofree char *warning2 = next_warning (bus);
  g_assert_nonnull (strstr (warning2, "empty.txt:2"));
  g_assert_nonnull (strstr (warning2, "no images"));
  g_assert_cmpuint (n_labels (h, frame++), ==, 2);
  g_autofree char *still_blue = top_label (h, BLUE, frame++);
  g_assert_cmpstr (still_blue, ==, "blue");

  /* A good set: swapped in once built. */
  g_autofree char *three = write_labels (dir, "three.txt",
      "red: @red/\nblue: @blue/\ngreen: @green/\n");
  g_object_set (element, "labels-file", three, NULL);
  while (n_labels (h, frame++) != 3)
    g_usleep (10000);
  g_autofree char *green = top_label (h, GREEN, frame++);
  g_assert_cmpstr (green, ==, "green");

  /* Text beside the examples, and the rule's properties while PLAYING. */
  g_autofree char *mixed = write_labels (dir, "mixed.txt",
      "red: @red/\nblue: @blue/\ngreen: @green/\na photo of a cat\n");
  g_object_set (element, "labels-file", mixed, "exemplar-weight", 4.0f,
      "exemplar-sharpness", 3.0f, NULL);
  while (n_labels (h, frame++) != 4)
    g_usleep (10000);
  g_autofree char *green2 = top_label (h, GREEN, frame++);
  g_assert_cmpstr (green2, ==, "green");
  gfloat weight;
  g_object_get (element, "exemplar-weight", &weight, NULL);
  g_assert_cmpfloat (weight, ==, 4.0f);

  gst_harness_teardown (h);
  gst_object_unref (element);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}

static void
test_bad_examples_at_start (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *labels = write_labels (dir, "labels.txt", "red: @red.png\n");
  GstBus *bus;
  GstElement *element = new_element (labels, &bus);
  g_assert_cmpint (gst_element_set_state (element, GST_STATE_PAUSED), ==,
      GST_STATE_CHANGE_FAILURE);
  g_autoptr (GstMessage) msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  g_assert_nonnull (msg);
  g_autoptr (GError) error = NULL;
  gst_message_parse_error (msg, &error, NULL);
  g_test_message ("ERROR: %s", error->message);
  g_assert_nonnull (strstr (error->message, "labels.txt:1"));
  g_assert_nonnull (strstr (error->message, "red.png"));
  gst_element_set_state (element, GST_STATE_NULL);
  gst_object_unref (element);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/clipclassify-exemplars/while-playing",
      test_examples_while_playing);
  g_test_add_func ("/clipclassify-exemplars/bad-at-start",
      test_bad_examples_at_start);
  return g_test_run ();
}
