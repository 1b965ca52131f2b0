/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Image files to packed 8-bit RGB, as PIL's Image.open(path).convert("RGB"). */
#include "image.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <string.h>

guint8 *
clip_image_load_rgb (const char *path, int *width, int *height, GError **error)
{
  *width = *height = 0; /* callers that forget the NULL check get no garbage */
  /* gdk-pixbuf reports a folder as an empty image; say what it is. */
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: is a folder, not an image file", path);
    return NULL;
  }
  g_autoptr (GError) local = NULL;
  g_autoptr (GdkPixbuf) pixbuf = gdk_pixbuf_new_from_file (path, &local);
  if (pixbuf == NULL) {
    gboolean unreadable = local->domain == G_FILE_ERROR;
    g_set_error (error, CLIP_ERROR,
        unreadable ? CLIP_ERROR_IO : CLIP_ERROR_FORMAT,
        "%s: cannot %s the image: %s", path, unreadable ? "read" : "decode",
        local->message);
    return NULL;
  }

  int w = gdk_pixbuf_get_width (pixbuf);
  int h = gdk_pixbuf_get_height (pixbuf);
  int channels = gdk_pixbuf_get_n_channels (pixbuf);
  int stride = gdk_pixbuf_get_rowstride (pixbuf);
  if (gdk_pixbuf_get_colorspace (pixbuf) != GDK_COLORSPACE_RGB
      || gdk_pixbuf_get_bits_per_sample (pixbuf) != 8
      || (channels != 3 && channels != 4) || w < 1 || h < 1) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: decoded to an unsupported layout (%dx%d, %d channels of %d bits)",
        path, w, h, channels, gdk_pixbuf_get_bits_per_sample (pixbuf));
    return NULL;
  }

  guint8 *rgb = g_try_malloc ((gsize) w * h * 3);
  if (rgb == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: %dx%d is too large to hold in memory", path, w, h);
    return NULL;
  }
  const guint8 *pixels = gdk_pixbuf_read_pixels (pixbuf);
  for (int y = 0; y < h; y++) {
    const guint8 *src = pixels + (gsize) y * stride;
    guint8 *dest = rgb + (gsize) y * w * 3;
    if (channels == 3) {
      memcpy (dest, src, (gsize) w * 3);
      continue;
    }
    /* PIL's convert("RGB") drops alpha without compositing: the colour of a
     * transparent pixel is kept as stored. */
    for (int x = 0; x < w; x++) {
      dest[3 * x + 0] = src[4 * x + 0];
      dest[3 * x + 1] = src[4 * x + 1];
      dest[3 * x + 2] = src[4 * x + 2];
    }
  }
  *width = w;
  *height = h;
  return rgb;
}

gboolean
clip_image_has_image_name (const char *path)
{
  const char *dot = strrchr (path, '.');
  if (dot == NULL || strchr (dot, G_DIR_SEPARATOR) != NULL)
    return FALSE;
  g_autofree char *extension = g_ascii_strdown (dot + 1, -1);
  gboolean found = FALSE;
  GSList *formats = gdk_pixbuf_get_formats ();
  for (GSList *f = formats; f && !found; f = f->next) {
    g_auto (GStrv) extensions = gdk_pixbuf_format_get_extensions (f->data);
    found = g_strv_contains ((const char *const *) extensions, extension);
  }
  g_slist_free (formats);
  return found;
}
