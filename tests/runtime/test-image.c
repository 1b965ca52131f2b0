/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clip_image_load_rgb: full-resolution RGB as PIL's convert("RGB") gives it,
 * and errors that name the file. */
#include "image.h"
#include "reference.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <zlib.h>

static void
test_reference_pngs (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *manifest_path = clip_test_ref_path ("manifest.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_file (parser, manifest_path, &error));
  JsonArray *images = json_object_get_array_member (
      json_node_get_object (json_parser_get_root (parser)), "images");
  g_assert_cmpuint (json_array_get_length (images), ==, 6);

  for (guint i = 0; i < json_array_get_length (images); i++) {
    JsonObject *image = json_array_get_object_element (images, i);
    g_autofree char *png = clip_test_ref_path (
        json_object_get_string_member (image, "png"));
    int width = 0, height = 0;
    g_autofree guint8 *rgb = clip_image_load_rgb (png, &width, &height, &error);
    g_assert_no_error (error);
    g_assert_cmpint (width, ==, json_object_get_int_member (image, "width"));
    g_assert_cmpint (height, ==, json_object_get_int_member (image, "height"));
    /* A 224x224 image is not resized, so PIL's crop is its decoded pixels. */
    if (width == 224 && height == 224) {
      g_autofree guint8 *expected = clip_test_read_u8 (
          json_object_get_string_member (image, "crop_u8"), 224 * 224 * 3);
      g_assert_cmpmem (rgb, 224 * 224 * 3, expected, 224 * 224 * 3);
    }
  }
}

static char *
write_pixbuf (GdkPixbuf *pixbuf, const char *name, const char *type)
{
  g_autofree char *dir = clip_test_tmpdir ();
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (gdk_pixbuf_save (pixbuf, path, type, &error, NULL));
  return path;
}

static void
test_alpha_dropped (void)
{
  /* 5x3: odd width, so gdk-pixbuf's rows are padded. */
  const int w = 5, h = 3;
  g_autoptr (GdkPixbuf) pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, TRUE, 8, w,
      h);
  guint8 *pixels = gdk_pixbuf_get_pixels (pixbuf);
  int stride = gdk_pixbuf_get_rowstride (pixbuf);
  guint8 expected[5 * 3 * 3];
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      guint8 *p = pixels + y * stride + x * 4;
      p[0] = 40 * x + 7, p[1] = 90 * y + 3, p[2] = 17 * (x + y);
      p[3] = (guint8) (x * 60); /* 0 = fully transparent, colour kept */
      memcpy (expected + (y * w + x) * 3, p, 3);
    }
  g_autofree char *path = write_pixbuf (pixbuf, "alpha.png", "png");
  int width, height;
  g_autoptr (GError) error = NULL;
  g_autofree guint8 *rgb = clip_image_load_rgb (path, &width, &height, &error);
  g_assert_no_error (error);
  g_assert_cmpint (width, ==, w);
  g_assert_cmpint (height, ==, h);
  g_assert_cmpmem (rgb, sizeof expected, expected, sizeof expected);
}

static void
png_chunk (GByteArray *png, const char *type, const guint8 *data, guint32 len)
{
  guint8 be[4] = { len >> 24, len >> 16, len >> 8, len };
  g_byte_array_append (png, be, 4);
  g_byte_array_append (png, (const guint8 *) type, 4);
  if (len)
    g_byte_array_append (png, data, len);
  uLong crc = crc32 (0, (const Bytef *) type, 4);
  if (len) /* crc32 of NULL is the initial value, not a no-op */
    crc = crc32 (crc, data, len);
  guint8 crc_be[4] = { crc >> 24, crc >> 16, crc >> 8, crc };
  g_byte_array_append (png, crc_be, 4);
}

/* A minimal PNG: 8-bit samples of the given colour type, no filtering. */
static char *
write_png (const char *name, int w, int h, int color_type, int channels,
    const guint8 *samples, const guint8 *palette, int n_palette)
{
  g_autoptr (GByteArray) png = g_byte_array_new ();
  const guint8 signature[8] = { 137, 'P', 'N', 'G', 13, 10, 26, 10 };
  g_byte_array_append (png, signature, 8);
  guint8 ihdr[13] = { 0, 0, 0, w, 0, 0, 0, h, 8, color_type, 0, 0, 0 };
  png_chunk (png, "IHDR", ihdr, 13);
  if (palette)
    png_chunk (png, "PLTE", palette, 3 * n_palette);
  gsize raw_len = (gsize) h * (1 + w * channels);
  g_autofree guint8 *raw = g_malloc0 (raw_len);
  for (int y = 0; y < h; y++)
    memcpy (raw + y * (1 + w * channels) + 1, samples + y * w * channels,
        w * channels);
  uLongf packed_len = compressBound (raw_len);
  g_autofree guint8 *packed = g_malloc (packed_len);
  g_assert_cmpint (compress (packed, &packed_len, raw, raw_len), ==, Z_OK);
  png_chunk (png, "IDAT", packed, packed_len);
  png_chunk (png, "IEND", NULL, 0);

  g_autofree char *dir = clip_test_tmpdir ();
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (
      g_file_set_contents (path, (const char *) png->data, png->len, &error));
  return path;
}

static void
test_gray_and_palette (void)
{
  const guint8 gray[6] = { 0, 50, 100, 150, 200, 255 };
  const guint8 gray_alpha[6 * 2] = { 0, 0, 50, 10, 100, 255, 150, 0, 200, 99,
    255, 255 };
  const guint8 palette[3 * 3] = { 255, 0, 0, 10, 20, 30, 0, 0, 255 };
  const guint8 indices[6] = { 0, 1, 2, 2, 1, 0 };
  struct {
    const char *name;
    int color_type, channels;
    const guint8 *samples;
  } cases[] = {
    { "gray.png", 0, 1, gray },
    { "gray-alpha.png", 4, 2, gray_alpha },
    { "palette.png", 3, 1, indices },
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    g_autofree char *path = write_png (cases[c].name, 3, 2, cases[c].color_type,
        cases[c].channels, cases[c].samples,
        cases[c].color_type == 3 ? palette : NULL, 3);
    int width, height;
    g_autoptr (GError) error = NULL;
    g_autofree guint8 *rgb = clip_image_load_rgb (path, &width, &height,
        &error);
    g_assert_no_error (error);
    g_assert_cmpint (width, ==, 3);
    g_assert_cmpint (height, ==, 2);
    for (int i = 0; i < 6; i++) {
      /* PIL: L and LA replicate the gray level (alpha dropped), P looks the
       * index up in the palette. */
      guint8 expected[3];
      if (cases[c].color_type == 3)
        memcpy (expected, palette + 3 * indices[i], 3);
      else
        memset (expected, cases[c].samples[i * cases[c].channels], 3);
      g_assert_cmpmem (rgb + 3 * i, 3, expected, 3);
    }
  }
}

static void
test_jpeg (void)
{
  g_autoptr (GdkPixbuf) pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8,
      33, 17);
  gdk_pixbuf_fill (pixbuf, 0x3c8cdc00);
  g_autofree char *path = write_pixbuf (pixbuf, "flat.jpg", "jpeg");
  int width, height;
  g_autoptr (GError) error = NULL;
  g_autofree guint8 *rgb = clip_image_load_rgb (path, &width, &height, &error);
  g_assert_no_error (error);
  g_assert_cmpint (width, ==, 33);
  g_assert_cmpint (height, ==, 17);
  const guint8 colour[3] = { 0x3c, 0x8c, 0xdc };
  for (int i = 0; i < 33 * 17; i++)
    for (int c = 0; c < 3; c++)
      g_assert_cmpint (ABS (rgb[3 * i + c] - colour[c]), <=, 3);
}

static void
expect_failure (const char *path, int code)
{
  int width = -1, height = -1;
  g_autoptr (GError) error = NULL;
  guint8 *rgb = clip_image_load_rgb (path, &width, &height, &error);
  g_assert_null (rgb);
  g_assert_error (error, CLIP_ERROR, code);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, path));
  /* no garbage for a caller that reads them anyway (gst-clip train once
   * computed a stride from them: UBSan caught the overflow) */
  g_assert_cmpint (width, ==, 0);
  g_assert_cmpint (height, ==, 0);
}

static void
test_bad_files (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *missing = g_build_filename (dir, "missing.png", NULL);
  expect_failure (missing, CLIP_ERROR_IO);
  expect_failure (dir, CLIP_ERROR_IO);

  g_autofree char *empty = g_build_filename (dir, "empty.png", NULL);
  g_assert_true (g_file_set_contents (empty, "", 0, NULL));
  expect_failure (empty, CLIP_ERROR_FORMAT);

  g_autofree char *garbage = g_build_filename (dir, "garbage.jpg", NULL);
  g_assert_true (
      g_file_set_contents (garbage, "this is not an image at all", -1, NULL));
  expect_failure (garbage, CLIP_ERROR_FORMAT);

  /* A PNG cut off in the middle of its pixel data. */
  const guint8 pixels[8 * 8 * 3] = { 1 };
  g_autofree char *whole = write_png ("whole.png", 8, 8, 2, 3, pixels, NULL, 0);
  g_autofree char *contents = NULL;
  gsize length;
  g_assert_true (g_file_get_contents (whole, &contents, &length, NULL));
  g_autofree char *truncated = g_build_filename (dir, "truncated.png", NULL);
  g_assert_true (g_file_set_contents (truncated, contents, 45, NULL));
  expect_failure (truncated, CLIP_ERROR_FORMAT);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/image/reference-pngs", test_reference_pngs);
  g_test_add_func ("/image/alpha-dropped", test_alpha_dropped);
  g_test_add_func ("/image/gray-and-palette", test_gray_and_palette);
  g_test_add_func ("/image/jpeg", test_jpeg);
  g_test_add_func ("/image/bad-files", test_bad_files);
  return g_test_run ();
}
