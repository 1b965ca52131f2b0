/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-clipoverlay
 * @title: clipoverlay
 *
 * Draws the labels of the #GstClipMeta that clipclassify attached to a
 * buffer onto the frame: a box in one corner with, for each of the best
 * labels, its text and probability and a bar as long as the probability.
 * Text is laid out by pango and drawn by cairo.
 *
 * Formats: BGRx and BGRA are drawn on in place by cairo (their byte order is
 * cairo's on little-endian machines; BGRA is assumed opaque, as cairo treats
 * it as premultiplied). RGBx, RGBA, I420 and NV12 get the box rendered to a
 * small ARGB surface, which is blended into the frame; for I420 and NV12 the
 * colours are converted with the frame's matrix (BT.601, BT.709, ...) and
 * range, and the box is placed on even coordinates so that chroma outside
 * it is never touched.
 *
 * Regions (clipclassify regions=rois or both): each region of the meta
 * gets its rectangle outlined in bar-color and a tag with its top label
 * and probability at its top-left corner, in text-color on
 * background-color, at full opacity (a region's result is reused by design
 * while region-interval lasts, so it is never drawn as stale).
 *
 * Buffers without a meta, or whose meta reports no label and no region,
 * pass untouched: they are not even mapped for writing. Only the pixels of
 * the box and the regions' outlines and tags change.
 *
 * Several classifiers: a buffer that went through several clipclassify
 * elements carries one #GstClipMeta of each, told apart by the element's
 * name (gst_clip_meta_get_source()). The classifier property names the one
 * to draw; by default the nearest one upstream, whose meta was attached
 * last. Put one clipoverlay per classifier (with another position) to show
 * several.
 *
 * Stale results: a result is stale on a buffer when it describes a frame
 * more than stale-age older than the buffer (buffer pts minus the meta's
 * pts), e.g. when live-mode inference lags behind the video. When either
 * timestamp is unknown, a result is stale unless the meta is fresh. Stale
 * results are drawn at half opacity when show-stale is TRUE, else not at
 * all. Results carried over a few frames by clipclassify's interval are not
 * stale as long as they are younger than stale-age, so the box does not
 * blink between analysed frames.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 videotestsrc ! clipclassify model=/path/model labels="a test pattern,a cat,a dog" ! clipoverlay position=bottom-right font-desc="Sans Bold 18" max-labels=2 ! videoconvert ! autovideosink
 * ]| Shows the two best labels in the bottom-right corner.
 * |[
 * gst-launch-1.0 v4l2src ! queue ! videoconvert ! video/x-raw,format=I420 ! clipclassify model=/path/model labels-file=labels.txt mode=live ! clipoverlay show-stale=false ! videoconvert ! autovideosink
 * ]| A camera, where labels older than a second are hidden.
 */
#include "gstclipoverlay.h"
#include "gstclipelement.h"
#include "gstclipmeta.h"
#include "palette.h"

#include <cairo.h>
#include <gst/video/video.h>
#include <pango/pangocairo.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_clip_overlay_debug);
#define GST_CAT_DEFAULT gst_clip_overlay_debug

#define DEFAULT_POSITION GST_CLIP_OVERLAY_POSITION_TOP_LEFT
#define DEFAULT_FONT_DESC "Sans 14"
#define DEFAULT_MAX_LABELS 3
#define MAX_MAX_LABELS 20
#define DEFAULT_TEXT_COLOR 0xffffffff
/* The results core's first label colour, opaque. */
#define DEFAULT_BAR_COLOR (0xff000000 | clip_palette_colour (0))
#define DEFAULT_BACKGROUND_COLOR 0xa0000000
#define DEFAULT_SHOW_STALE TRUE
#define DEFAULT_STALE_AGE GST_SECOND

/* Layout, in pixels; even so that the box stays on chroma sample pairs. */
#define MARGIN 8
#define PADDING 6
#define ROW_SPACING 4
#define MIN_BAR_WIDTH 80
#define REGION_LINE 2

enum {
  PROP_0,
  PROP_POSITION,
  PROP_FONT_DESC,
  PROP_MAX_LABELS,
  PROP_TEXT_COLOR,
  PROP_BAR_COLOR,
  PROP_BACKGROUND_COLOR,
  PROP_SHOW_STALE,
  PROP_STALE_AGE,
  PROP_CLASSIFIER,
};

/* What one frame's box shows, copied from the properties under the lock. */
typedef struct {
  GstClipOverlayPosition position;
  PangoFontDescription *font;
  guint32 text_color, bar_color, background_color;
  double opacity;
  guint n_rows;
} BoxStyle;

struct _GstClipOverlay {
  GstVideoFilter parent;

  /* properties, under the object lock */
  GstClipOverlayPosition position;
  char *font_desc;
  PangoFontDescription *font; /* parsed font_desc */
  guint max_labels;
  guint32 text_color, bar_color, background_color;
  gboolean show_stale;
  GstClockTime stale_age;
  char *classifier; /* whose meta to draw; NULL: the nearest upstream */

  /* The element's own, not pango's per-thread default, which each new
   * streaming thread would load again. Used by the streaming thread only. */
  PangoFontMap *font_map;
};

#define gst_clip_overlay_parent_class parent_class
G_DEFINE_FINAL_TYPE (GstClipOverlay, gst_clip_overlay, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (clipoverlay, "clipoverlay",
    GST_RANK_NONE, GST_TYPE_CLIP_OVERLAY,
    GST_DEBUG_CATEGORY_INIT (gst_clip_overlay_debug, "clipoverlay", 0,
        "CLIP results overlay"));

#define VIDEO_FORMATS "{ BGRx, BGRA, RGBx, RGBA, I420, NV12 }"

GType
gst_clip_overlay_position_get_type (void)
{
  static GType type;
  static const GEnumValue values[] = {
    { GST_CLIP_OVERLAY_POSITION_TOP_LEFT, "Top left corner", "top-left" },
    { GST_CLIP_OVERLAY_POSITION_TOP_RIGHT, "Top right corner", "top-right" },
    { GST_CLIP_OVERLAY_POSITION_BOTTOM_LEFT, "Bottom left corner",
        "bottom-left" },
    { GST_CLIP_OVERLAY_POSITION_BOTTOM_RIGHT, "Bottom right corner",
        "bottom-right" },
    { 0, NULL, NULL },
  };

  return gst_clip_enum_register_once (&type, "GstClipOverlayPosition", values);
}

/* ---------------------------------------------------------------- drawing */

/* How many rows to draw for this buffer and how opaque, per the properties;
 * FALSE when there is nothing to draw. */
/* The meta of the classifier the classifier property names. */
static GstClipMeta *
overlay_meta (GstClipOverlay *self, GstBuffer *buffer)
{
  GST_OBJECT_LOCK (self);
  GstClipMeta *meta = gst_buffer_get_clip_meta_from (buffer, self->classifier);
  GST_OBJECT_UNLOCK (self);
  return meta;
}

static gboolean
box_style_init (GstClipOverlay *self, GstBuffer *buffer, BoxStyle *style)
{
  GstClipMeta *meta = overlay_meta (self, buffer);
  if (meta == NULL
      || (gst_clip_meta_get_n_labels (meta) == 0
          && gst_clip_meta_get_n_regions (meta) == 0))
    return FALSE;

  GstClockTime result_pts = gst_clip_meta_get_pts (meta);
  GstClockTime buffer_pts = GST_BUFFER_PTS (buffer);
  gboolean stale;

  GST_OBJECT_LOCK (self);
  if (GST_CLOCK_TIME_IS_VALID (result_pts)
      && GST_CLOCK_TIME_IS_VALID (buffer_pts))
    stale = buffer_pts > result_pts
        && buffer_pts - result_pts > self->stale_age;
  else
    stale = !gst_clip_meta_is_fresh (meta);
  gboolean draw = !stale || self->show_stale;
  if (draw) {
    style->position = self->position;
    style->font = pango_font_description_copy (self->font);
    style->text_color = self->text_color;
    style->bar_color = self->bar_color;
    style->background_color = self->background_color;
    style->opacity = stale ? 0.5 : 1.0;
    style->n_rows = MIN (self->max_labels, gst_clip_meta_get_n_labels (meta));
  }
  GST_OBJECT_UNLOCK (self);
  return draw;
}

static void
set_source_argb (cairo_t *cr, guint32 argb, double opacity)
{
  cairo_set_source_rgba (cr, ((argb >> 16) & 0xff) / 255.0,
      ((argb >> 8) & 0xff) / 255.0, (argb & 0xff) / 255.0,
      (argb >> 24) / 255.0 * opacity);
}

/* The box's rows laid out, and its size. */
typedef struct {
  PangoContext *context;
  PangoLayout **rows;
  guint n_rows;
  int line_height, bar_height;
  int width, height; /* even */
} BoxLayout;

static void
box_layout_clear (BoxLayout *layout)
{
  for (guint i = 0; i < layout->n_rows; i++)
    g_object_unref (layout->rows[i]);
  g_free (layout->rows);
  g_clear_object (&layout->context);
}

/* Lays out the rows for a frame of the given size; FALSE when the frame is
 * too small for a box. */
static gboolean
box_layout_init (BoxLayout *layout, PangoFontMap *font_map,
    const BoxStyle *style, GstClipMeta *meta, int frame_width, int frame_height)
{
  int max_text_width = frame_width - 2 * MARGIN - 2 * PADDING;
  int text_width = 0;

  memset (layout, 0, sizeof *layout);
  if (max_text_width < PADDING)
    return FALSE;
  layout->context = pango_font_map_create_context (font_map);
  layout->n_rows = style->n_rows;
  layout->rows = g_new0 (PangoLayout *, style->n_rows);
  for (guint i = 0; i < style->n_rows; i++) {
    g_autofree char *text = g_strdup_printf ("%s  %.2f",
        gst_clip_meta_get_label (meta, i),
        gst_clip_meta_get_probability (meta, i));
    PangoLayout *row = pango_layout_new (layout->context);
    pango_layout_set_font_description (row, style->font);
    /* Plain text, not markup: labels are the user's strings. */
    pango_layout_set_text (row, text, -1);
    pango_layout_set_single_paragraph_mode (row, TRUE);
    pango_layout_set_ellipsize (row, PANGO_ELLIPSIZE_END);
    pango_layout_set_width (row, max_text_width * PANGO_SCALE);
    int w, h;
    pango_layout_get_pixel_size (row, &w, &h);
    text_width = MAX (text_width, w);
    layout->line_height = MAX (layout->line_height, h);
    layout->rows[i] = row;
  }
  layout->bar_height = MAX (3, layout->line_height / 4);
  int inner_width = MIN (MAX (text_width, MIN_BAR_WIDTH), max_text_width);
  int height = 2 * PADDING
      + style->n_rows * (layout->line_height + layout->bar_height + ROW_SPACING)
      - ROW_SPACING;
  layout->width = MIN ((inner_width + 2 * PADDING + 1) & ~1,
      (frame_width - 2 * MARGIN) & ~1);
  layout->height = MIN ((height + 1) & ~1, (frame_height - 2 * MARGIN) & ~1);
  return layout->height > 0 && layout->width > 0;
}

/* Draws the box with its top-left corner at the context's origin. */
static void
box_draw (cairo_t *cr, const BoxLayout *layout, const BoxStyle *style,
    GstClipMeta *meta)
{
  int inner_width = layout->width - 2 * PADDING;

  cairo_rectangle (cr, 0, 0, layout->width, layout->height);
  cairo_clip (cr);
  set_source_argb (cr, style->background_color, style->opacity);
  cairo_paint (cr);
  pango_cairo_update_context (cr, layout->context);
  for (guint i = 0; i < layout->n_rows; i++) {
    double y = PADDING
        + i * (layout->line_height + layout->bar_height + ROW_SPACING);
    double probability = gst_clip_meta_get_probability (meta, i);
    if (!(probability >= 0)) /* NaN too */
      probability = 0;
    probability = MIN (probability, 1);

    pango_layout_context_changed (layout->rows[i]);
    set_source_argb (cr, style->text_color, style->opacity);
    cairo_move_to (cr, PADDING, y);
    pango_cairo_show_layout (cr, layout->rows[i]);

    y += layout->line_height;
    /* the track a third as opaque as the bar, so the scale shows */
    set_source_argb (cr, style->bar_color, style->opacity / 3);
    cairo_rectangle (cr, PADDING, y, inner_width, layout->bar_height);
    cairo_fill (cr);
    set_source_argb (cr, style->bar_color, style->opacity);
    cairo_rectangle (cr, PADDING, y, inner_width * probability,
        layout->bar_height);
    cairo_fill (cr);
  }
}

/* ---------------------------------------------------------------- blending */

/* A premultiplied cairo pixel, native endian. */
static inline void
argb_unpack (guint32 px, guint *a, guint *r, guint *g, guint *b)
{
  *a = px >> 24;
  *r = (px >> 16) & 0xff;
  *g = (px >> 8) & 0xff;
  *b = px & 0xff;
}

static inline guint8
over (guint src_premultiplied, guint8 dst, guint alpha)
{
  return src_premultiplied + (dst * (255 - alpha) + 127) / 255;
}

static void
blend_rgb (GstVideoFrame *frame, cairo_surface_t *box, int x0, int y0)
{
  const guint8 *src = cairo_image_surface_get_data (box);
  int src_stride = cairo_image_surface_get_stride (box);
  int width = cairo_image_surface_get_width (box);
  int height = cairo_image_surface_get_height (box);
  gboolean has_alpha = GST_VIDEO_INFO_HAS_ALPHA (&frame->info);
  int pstride = GST_VIDEO_FRAME_COMP_PSTRIDE (frame, 0);
  int stride = GST_VIDEO_FRAME_COMP_STRIDE (frame, 0);
  guint8 *red = GST_VIDEO_FRAME_COMP_DATA (frame, GST_VIDEO_COMP_R);
  guint8 *green = GST_VIDEO_FRAME_COMP_DATA (frame, GST_VIDEO_COMP_G);
  guint8 *blue = GST_VIDEO_FRAME_COMP_DATA (frame, GST_VIDEO_COMP_B);
  guint8 *alpha = has_alpha
      ? GST_VIDEO_FRAME_COMP_DATA (frame, GST_VIDEO_COMP_A)
      : NULL;

  for (int y = 0; y < height; y++) {
    const guint32 *row = (const guint32 *) (src + (gsize) y * src_stride);
    for (int x = 0; x < width; x++) {
      guint a, r, g, b;
      argb_unpack (row[x], &a, &r, &g, &b);
      if (a == 0)
        continue;
      gsize offset = (gsize) (y0 + y) * stride + (gsize) (x0 + x) * pstride;
      red[offset] = over (r, red[offset], a);
      green[offset] = over (g, green[offset], a);
      blue[offset] = over (b, blue[offset], a);
      if (alpha != NULL)
        alpha[offset] = over (a, alpha[offset], a);
    }
  }
}

/* Y'CbCr of an RGB colour in the frame's matrix and range. */
typedef struct {
  double kr, kb;
  double y_offset, y_scale, c_scale;
} YuvMatrix;

static void
yuv_matrix_init (YuvMatrix *m, const GstVideoInfo *info)
{
  const GstVideoColorimetry *colorimetry = &GST_VIDEO_INFO_COLORIMETRY (info);

  if (!gst_video_color_matrix_get_Kr_Kb (colorimetry->matrix, &m->kr, &m->kb)) {
    /* unknown: what GStreamer assumes for such sizes */
    GstVideoColorMatrix guess = GST_VIDEO_INFO_HEIGHT (info) >= 720
        ? GST_VIDEO_COLOR_MATRIX_BT709
        : GST_VIDEO_COLOR_MATRIX_BT601;
    gst_video_color_matrix_get_Kr_Kb (guess, &m->kr, &m->kb);
  }
  if (colorimetry->range == GST_VIDEO_COLOR_RANGE_0_255) {
    m->y_offset = 0;
    m->y_scale = 255;
    m->c_scale = 255;
  } else {
    m->y_offset = 16;
    m->y_scale = 219;
    m->c_scale = 224;
  }
}

/* r, g, b in 0..1, straight (not premultiplied). */
static void
yuv_from_rgb (const YuvMatrix *m, double r, double g, double b, double *y,
    double *u, double *v)
{
  double luma = m->kr * r + (1 - m->kr - m->kb) * g + m->kb * b;
  *y = m->y_offset + m->y_scale * luma;
  *u = 128 + m->c_scale * (b - luma) / (2 * (1 - m->kb));
  *v = 128 + m->c_scale * (r - luma) / (2 * (1 - m->kr));
}

static inline guint8
mix (double src, guint8 dst, double alpha)
{
  return (guint8) CLAMP (src * alpha + dst * (1 - alpha) + 0.5, 0, 255);
}

/* 4:2:0 (I420, NV12): x0, y0 and the box size are even, so every chroma
 * sample it touches lies wholly inside the box. */
static void
blend_yuv420 (GstVideoFrame *frame, cairo_surface_t *box, int x0, int y0)
{
  const guint8 *src = cairo_image_surface_get_data (box);
  int src_stride = cairo_image_surface_get_stride (box);
  int width = cairo_image_surface_get_width (box);
  int height = cairo_image_surface_get_height (box);
  guint8 *luma = GST_VIDEO_FRAME_COMP_DATA (frame, GST_VIDEO_COMP_Y);
  guint8 *cb = GST_VIDEO_FRAME_COMP_DATA (frame, GST_VIDEO_COMP_U);
  guint8 *cr = GST_VIDEO_FRAME_COMP_DATA (frame, GST_VIDEO_COMP_V);
  int luma_stride = GST_VIDEO_FRAME_COMP_STRIDE (frame, GST_VIDEO_COMP_Y);
  int chroma_stride = GST_VIDEO_FRAME_COMP_STRIDE (frame, GST_VIDEO_COMP_U);
  int chroma_pstride = GST_VIDEO_FRAME_COMP_PSTRIDE (frame, GST_VIDEO_COMP_U);
  YuvMatrix m;

  yuv_matrix_init (&m, &frame->info);
  for (int y = 0; y < height; y += 2) {
    for (int x = 0; x < width; x += 2) {
      double sum_a = 0, sum_r = 0, sum_g = 0, sum_b = 0;
      for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
          const guint32 *row = (const guint32 *) (src
              + (gsize) (y + dy) * src_stride);
          guint a, r, g, b;
          argb_unpack (row[x + dx], &a, &r, &g, &b);
          sum_a += a;
          sum_r += r;
          sum_g += g;
          sum_b += b;
          if (a == 0)
            continue;
          double yy, uu, vv;
          yuv_from_rgb (&m, r / (double) a, g / (double) a, b / (double) a, &yy,
              &uu, &vv);
          guint8 *dst = luma + (gsize) (y0 + y + dy) * luma_stride + x0 + x
              + dx;
          *dst = mix (yy, *dst, a / 255.0);
        }
      if (sum_a == 0)
        continue;
      /* the chroma of the four pixels' mean colour, at their mean alpha */
      double yy, uu, vv;
      yuv_from_rgb (&m, sum_r / sum_a, sum_g / sum_a, sum_b / sum_a, &yy, &uu,
          &vv);
      gsize offset = (gsize) ((y0 + y) / 2) * chroma_stride
          + (gsize) ((x0 + x) / 2) * chroma_pstride;
      cb[offset] = mix (uu, cb[offset], sum_a / (4 * 255.0));
      cr[offset] = mix (vv, cr[offset], sum_a / (4 * 255.0));
    }
  }
}

/* cairo's own pixel layout: the frame is drawn on directly. */
static gboolean
frame_is_cairo_native (GstVideoFrame *frame, cairo_format_t *format)
{
  if (G_BYTE_ORDER != G_LITTLE_ENDIAN
      || GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0) % 4 != 0)
    return FALSE;
  switch (GST_VIDEO_FRAME_FORMAT (frame)) {
    case GST_VIDEO_FORMAT_BGRx:
      *format = CAIRO_FORMAT_RGB24;
      return TRUE;
    case GST_VIDEO_FORMAT_BGRA:
      *format = CAIRO_FORMAT_ARGB32;
      return TRUE;
    default:
      return FALSE;
  }
}

/* Draws with draw (its top-left corner at the context's origin, width x
 * height, both even) at x0, y0 (even) of the frame: on the frame itself
 * when cairo can, else on a surface blended in. */
typedef void (*DrawFunc) (cairo_t *cr, int width, int height, gpointer data);

static void
draw_at (GstVideoFrame *frame, int x0, int y0, int width, int height,
    DrawFunc draw, gpointer data)
{
  cairo_format_t native_format;
  cairo_surface_t *surface;
  if (frame_is_cairo_native (frame, &native_format)) {
    surface = cairo_image_surface_create_for_data (
        GST_VIDEO_FRAME_PLANE_DATA (frame, 0), native_format,
        GST_VIDEO_FRAME_WIDTH (frame), GST_VIDEO_FRAME_HEIGHT (frame),
        GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0));
    cairo_t *cr = cairo_create (surface);
    cairo_translate (cr, x0, y0);
    draw (cr, width, height, data);
    cairo_destroy (cr);
    cairo_surface_flush (surface);
  } else {
    surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, width, height);
    cairo_t *cr = cairo_create (surface);
    draw (cr, width, height, data);
    cairo_destroy (cr);
    cairo_surface_flush (surface);
    if (GST_VIDEO_INFO_IS_YUV (&frame->info))
      blend_yuv420 (frame, surface, x0, y0);
    else
      blend_rgb (frame, surface, x0, y0);
  }
  cairo_surface_destroy (surface);
}

/* A region being drawn. */
typedef struct {
  const BoxStyle *style;
  PangoContext *context;
  const char *label; /* its top label, or NULL */
  double probability;
} RegionDraw;

/* A region's outline, and its tag in the top-left corner. */
static void
region_draw (cairo_t *cr, int width, int height, gpointer data)
{
  const RegionDraw *region = data;
  const BoxStyle *style = region->style;

  cairo_rectangle (cr, 0, 0, width, height);
  cairo_clip (cr);
  set_source_argb (cr, style->bar_color, 1.0);
  cairo_set_line_width (cr, REGION_LINE);
  cairo_rectangle (cr, REGION_LINE / 2.0, REGION_LINE / 2.0,
      width - REGION_LINE, height - REGION_LINE);
  cairo_stroke (cr);
  if (region->label == NULL)
    return;

  g_autofree char *text = g_strdup_printf ("%s  %.2f", region->label,
      region->probability);
  PangoLayout *tag = pango_layout_new (region->context);
  pango_layout_set_font_description (tag, style->font);
  /* Plain text, not markup: labels are the user's strings. */
  pango_layout_set_text (tag, text, -1);
  pango_layout_set_single_paragraph_mode (tag, TRUE);
  pango_layout_set_ellipsize (tag, PANGO_ELLIPSIZE_END);
  pango_layout_set_width (tag, MAX (width - 2 * PADDING, 1) * PANGO_SCALE);
  pango_cairo_update_context (cr, region->context);
  pango_layout_context_changed (tag);
  int w, h;
  pango_layout_get_pixel_size (tag, &w, &h);
  set_source_argb (cr, style->background_color, 1.0);
  cairo_rectangle (cr, 0, 0, w + 2 * PADDING, h + PADDING);
  cairo_fill (cr);
  set_source_argb (cr, style->text_color, 1.0);
  cairo_move_to (cr, PADDING, PADDING / 2);
  pango_cairo_show_layout (cr, tag);
  g_object_unref (tag);
}

/* Each region of meta, on even coordinates inside the frame. */
static void
draw_regions (GstClipOverlay *self, GstVideoFrame *frame, GstClipMeta *meta,
    const BoxStyle *style)
{
  const guint n = gst_clip_meta_get_n_regions (meta);
  const int frame_width = GST_VIDEO_FRAME_WIDTH (frame);
  const int frame_height = GST_VIDEO_FRAME_HEIGHT (frame);
  if (n == 0)
    return;
  RegionDraw region = { style, pango_font_map_create_context (self->font_map),
    NULL, 0 };
  for (guint r = 0; r < n; r++) {
    guint x, y, w, h;
    gst_clip_meta_get_region_rect (meta, r, &x, &y, &w, &h);
    if (x >= (guint) frame_width || y >= (guint) frame_height)
      continue;
    int x0 = (int) x & ~1, y0 = (int) y & ~1;
    int width = ((int) MIN ((guint64) x + w, (guint64) frame_width) - x0) & ~1;
    int height = ((int) MIN ((guint64) y + h, (guint64) frame_height) - y0)
        & ~1;
    if (width < 2 * REGION_LINE || height < 2 * REGION_LINE)
      continue;
    region.label = gst_clip_meta_get_region_top_label (meta, r);
    region.probability = gst_clip_meta_get_region_probability (meta, r, 0);
    draw_at (frame, x0, y0, width, height, region_draw, &region);
  }
  g_object_unref (region.context);
}

/* The labels' box. */
typedef struct {
  const BoxLayout *layout;
  const BoxStyle *style;
  GstClipMeta *meta;
} BoxDraw;

static void
box_draw_at_origin (cairo_t *cr, int width, int height, gpointer data)
{
  const BoxDraw *box = data;
  box_draw (cr, box->layout, box->style, box->meta);
}

static GstFlowReturn
gst_clip_overlay_transform_frame_ip (GstVideoFilter *filter,
    GstVideoFrame *frame)
{
  GstClipOverlay *self = GST_CLIP_OVERLAY (filter);
  GstClipMeta *meta = overlay_meta (self, frame->buffer);
  int frame_width = GST_VIDEO_FRAME_WIDTH (frame);
  int frame_height = GST_VIDEO_FRAME_HEIGHT (frame);
  BoxStyle style = { 0 };
  BoxLayout layout = { 0 };

  if (!box_style_init (self, frame->buffer, &style))
    return GST_FLOW_OK;
  draw_regions (self, frame, meta, &style);
  if (style.n_rows == 0)
    goto done;
  if (!box_layout_init (&layout, self->font_map, &style, meta, frame_width,
          frame_height)) {
    GST_LOG_OBJECT (self, "frame too small for the labels");
    goto done;
  }

  gboolean right = style.position == GST_CLIP_OVERLAY_POSITION_TOP_RIGHT
      || style.position == GST_CLIP_OVERLAY_POSITION_BOTTOM_RIGHT;
  gboolean bottom = style.position == GST_CLIP_OVERLAY_POSITION_BOTTOM_LEFT
      || style.position == GST_CLIP_OVERLAY_POSITION_BOTTOM_RIGHT;
  int x0 = right ? (frame_width - MARGIN - layout.width) & ~1 : MARGIN;
  int y0 = bottom ? (frame_height - MARGIN - layout.height) & ~1 : MARGIN;
  BoxDraw box = { &layout, &style, meta };
  draw_at (frame, x0, y0, layout.width, layout.height, box_draw_at_origin,
      &box);

done:
  box_layout_clear (&layout);
  pango_font_description_free (style.font);
  return GST_FLOW_OK;
}

/* Buffers with nothing to draw are not mapped, so never copied for
 * writing; the others go through GstVideoFilter's mapping. */
static GstFlowReturn
gst_clip_overlay_transform_ip (GstBaseTransform *trans, GstBuffer *buffer)
{
  GstClipOverlay *self = GST_CLIP_OVERLAY (trans);
  BoxStyle style = { 0 };

  if (!box_style_init (self, buffer, &style))
    return GST_FLOW_OK;
  pango_font_description_free (style.font);
  return GST_BASE_TRANSFORM_CLASS (parent_class)->transform_ip (trans, buffer);
}

/* ------------------------------------------------------------- properties */

static void
gst_clip_overlay_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstClipOverlay *self = GST_CLIP_OVERLAY (object);

  GST_OBJECT_LOCK (self);
  gst_clip_field_set (object, prop_id, value, pspec);
  if (prop_id == PROP_FONT_DESC) {
    pango_font_description_free (self->font);
    self->font = pango_font_description_from_string (
        self->font_desc ? self->font_desc : DEFAULT_FONT_DESC);
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_clip_overlay_finalize (GObject *object)
{
  GstClipOverlay *self = GST_CLIP_OVERLAY (object);

  g_free (self->font_desc);
  g_free (self->classifier);
  pango_font_description_free (self->font);
  g_object_unref (self->font_map);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_clip_overlay_init (GstClipOverlay *self)
{
  self->position = DEFAULT_POSITION;
  self->font_desc = g_strdup (DEFAULT_FONT_DESC);
  self->font = pango_font_description_from_string (DEFAULT_FONT_DESC);
  self->max_labels = DEFAULT_MAX_LABELS;
  self->text_color = DEFAULT_TEXT_COLOR;
  self->bar_color = DEFAULT_BAR_COLOR;
  self->background_color = DEFAULT_BACKGROUND_COLOR;
  self->show_stale = DEFAULT_SHOW_STALE;
  self->stale_age = DEFAULT_STALE_AGE;
  self->font_map = pango_cairo_font_map_new ();
}

static void
gst_clip_overlay_class_init (GstClipOverlayClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);
  const GParamFlags playing = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_PLAYING;

  gobject_class->set_property = gst_clip_overlay_set_property;
  gobject_class->get_property = gst_clip_fields_get_property;
  gobject_class->finalize = gst_clip_overlay_finalize;

  gst_clip_install_field_property (gobject_class, PROP_POSITION,
      G_STRUCT_OFFSET (GstClipOverlay, position),
      g_param_spec_enum ("position", "Position", "Corner of the label box",
          GST_TYPE_CLIP_OVERLAY_POSITION, DEFAULT_POSITION, playing));
  gst_clip_install_field_property (gobject_class, PROP_FONT_DESC,
      G_STRUCT_OFFSET (GstClipOverlay, font_desc),
      g_param_spec_string ("font-desc", "Font description",
          "Pango font description of the labels, e.g. \"Sans Bold 18\"",
          DEFAULT_FONT_DESC, playing));
  gst_clip_install_field_property (gobject_class, PROP_MAX_LABELS,
      G_STRUCT_OFFSET (GstClipOverlay, max_labels),
      g_param_spec_uint ("max-labels", "Maximum labels",
          "Show at most this many of the reported labels, best first", 1,
          MAX_MAX_LABELS, DEFAULT_MAX_LABELS, playing));
  gst_clip_install_field_property (gobject_class, PROP_TEXT_COLOR,
      G_STRUCT_OFFSET (GstClipOverlay, text_color),
      g_param_spec_uint ("text-color", "Text colour",
          "Colour of the label text, 0xAARRGGBB", 0, G_MAXUINT32,
          DEFAULT_TEXT_COLOR, playing));
  gst_clip_install_field_property (gobject_class, PROP_BAR_COLOR,
      G_STRUCT_OFFSET (GstClipOverlay, bar_color),
      g_param_spec_uint ("bar-color", "Bar colour",
          "Colour of the probability bars, 0xAARRGGBB (the empty part of a "
          "bar is drawn at a third of its alpha)",
          0, G_MAXUINT32, DEFAULT_BAR_COLOR, playing));
  gst_clip_install_field_property (gobject_class, PROP_BACKGROUND_COLOR,
      G_STRUCT_OFFSET (GstClipOverlay, background_color),
      g_param_spec_uint ("background-color", "Background colour",
          "Colour of the box behind the labels, 0xAARRGGBB", 0, G_MAXUINT32,
          DEFAULT_BACKGROUND_COLOR, playing));
  gst_clip_install_field_property (gobject_class, PROP_SHOW_STALE,
      G_STRUCT_OFFSET (GstClipOverlay, show_stale),
      g_param_spec_boolean ("show-stale", "Show stale results",
          "Draw stale results (see stale-age) at half opacity; FALSE = do not "
          "draw them",
          DEFAULT_SHOW_STALE, playing));
  gst_clip_install_field_property (gobject_class, PROP_STALE_AGE,
      G_STRUCT_OFFSET (GstClipOverlay, stale_age),
      g_param_spec_uint64 ("stale-age", "Stale age",
          "A result is stale when the buffer is more than this many "
          "nanoseconds after the frame it was computed from (without "
          "timestamps: when the meta is not fresh)",
          0, G_MAXUINT64, DEFAULT_STALE_AGE, playing));
  gst_clip_install_field_property (gobject_class, PROP_CLASSIFIER,
      G_STRUCT_OFFSET (GstClipOverlay, classifier),
      g_param_spec_string ("classifier", "Classifier",
          "Name of the clipclassify whose results to draw, when a buffer went "
          "through several; NULL = the nearest one upstream (the last meta "
          "attached)",
          NULL, playing));

  gst_element_class_set_static_metadata (element_class, "CLIP results overlay",
      "Filter/Effect/Video",
      "Draws the labels and probabilities of GstClipMeta onto the video",
      "gst-clip developers");
  gst_clip_add_pass_through_pad_templates (element_class,
      GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS));

  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_clip_overlay_transform_ip);
  filter_class->transform_frame_ip = GST_DEBUG_FUNCPTR (
      gst_clip_overlay_transform_frame_ip);

  gst_type_mark_as_plugin_api (GST_TYPE_CLIP_OVERLAY_POSITION, 0);
}
