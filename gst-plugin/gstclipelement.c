/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the plugin's elements share (gstclipelement.h). */
#include "gstclipelement.h"

void
gst_clip_add_pass_through_pad_templates (GstElementClass *klass,
    const gchar *caps)
{
  GstCaps *pad_caps = gst_caps_from_string (caps);
  gst_element_class_add_pad_template (klass,
      gst_pad_template_new ("sink", GST_PAD_SINK, GST_PAD_ALWAYS, pad_caps));
  gst_element_class_add_pad_template (klass,
      gst_pad_template_new ("src", GST_PAD_SRC, GST_PAD_ALWAYS, pad_caps));
  gst_caps_unref (pad_caps);
}

GType
gst_clip_enum_register_once (GType *type, const gchar *name,
    const GEnumValue *values)
{
  if (g_once_init_enter (type)) {
    GType t = g_enum_register_static (name, values);
    g_once_init_leave (type, t);
  }
  return *type;
}

G_DEFINE_QUARK (gst - clip - field - offset, field_offset)

void
gst_clip_install_field_property (GObjectClass *klass, guint prop_id,
    gsize offset, GParamSpec *pspec)
{
  g_param_spec_set_qdata (pspec, field_offset_quark (),
      GSIZE_TO_POINTER (offset));
  g_object_class_install_property (klass, prop_id, pspec);
}

/* The field behind pspec, or NULL (with the usual warning) for a property
 * installed without one. Offset 0 is the parent instance, never a field. */
static gpointer
field_of (GObject *object, guint prop_id, GParamSpec *pspec)
{
  gsize offset = GPOINTER_TO_SIZE (
      g_param_spec_get_qdata (pspec, field_offset_quark ()));
  if (offset == 0) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    return NULL;
  }
  return G_STRUCT_MEMBER_P (object, offset);
}

/* Copies from into the field, or without from, the field into to. */
static void
field_copy (gpointer field, const GValue *from, GValue *to)
{
  switch (G_TYPE_FUNDAMENTAL (G_VALUE_TYPE (from ? from : to))) {
    case G_TYPE_STRING:
      if (from) {
        g_free (*(gchar **) field);
        *(gchar **) field = g_value_dup_string (from);
      } else
        g_value_set_string (to, *(gchar **) field);
      break;
    case G_TYPE_ENUM:
      if (from)
        *(gint *) field = g_value_get_enum (from);
      else
        g_value_set_enum (to, *(gint *) field);
      break;
    case G_TYPE_BOOLEAN:
      if (from)
        *(gboolean *) field = g_value_get_boolean (from);
      else
        g_value_set_boolean (to, *(gboolean *) field);
      break;
    case G_TYPE_INT:
      if (from)
        *(gint *) field = g_value_get_int (from);
      else
        g_value_set_int (to, *(gint *) field);
      break;
    case G_TYPE_UINT:
      if (from)
        *(guint *) field = g_value_get_uint (from);
      else
        g_value_set_uint (to, *(guint *) field);
      break;
    case G_TYPE_UINT64:
      if (from)
        *(guint64 *) field = g_value_get_uint64 (from);
      else
        g_value_set_uint64 (to, *(guint64 *) field);
      break;
    case G_TYPE_FLOAT:
      if (from)
        *(gfloat *) field = g_value_get_float (from);
      else
        g_value_set_float (to, *(gfloat *) field);
      break;
    case G_TYPE_DOUBLE:
      if (from)
        *(gdouble *) field = g_value_get_double (from);
      else
        g_value_set_double (to, *(gdouble *) field);
      break;
    default:
      g_assert_not_reached ();
  }
}

void
gst_clip_field_set (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec)
{
  gpointer field = field_of (object, prop_id, pspec);
  if (field != NULL)
    field_copy (field, value, NULL);
}

void
gst_clip_field_get (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  gpointer field = field_of (object, prop_id, pspec);
  if (field != NULL)
    field_copy (field, NULL, value);
}

void
gst_clip_fields_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GST_OBJECT_LOCK (object);
  gst_clip_field_set (object, prop_id, value, pspec);
  GST_OBJECT_UNLOCK (object);
}

void
gst_clip_fields_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GST_OBJECT_LOCK (object);
  gst_clip_field_get (object, prop_id, value, pspec);
  GST_OBJECT_UNLOCK (object);
}

void
gst_clip_frame_record_from_meta (ClipFrameRecord *frame,
    const GstClipMeta *meta)
{
  guint n = gst_clip_meta_get_n_labels (meta);
  const char **labels = g_new (const char *, n);
  double *scores = g_new (double, n);
  for (guint i = 0; i < n; i++) {
    labels[i] = gst_clip_meta_get_label (meta, i);
    scores[i] = gst_clip_meta_get_probability (meta, i);
  }
  gint top = gst_clip_meta_get_top (meta);
  *frame = (ClipFrameRecord) {
    .pts = gst_clip_meta_get_pts (meta),
    .duration = gst_clip_meta_get_duration (meta),
    .n_labels = n,
    .labels = labels,
    .scores = scores,
    .top_label = gst_clip_meta_get_top_label (meta),
    .top_score = top >= 0 ? gst_clip_meta_get_probability (meta, top) : 0.0,
  };

  guint n_regions = gst_clip_meta_get_n_regions (meta);
  if (n_regions == 0)
    return;
  ClipRegionRecord *regions = g_new0 (ClipRegionRecord, n_regions);
  for (guint r = 0; r < n_regions; r++) {
    ClipRegionRecord *region = &regions[r];
    guint x, y, width, height;
    gst_clip_meta_get_region_rect (meta, r, &x, &y, &width, &height);
    region->id = gst_clip_meta_get_region_id (meta, r);
    region->x = (int) x;
    region->y = (int) y;
    region->width = (int) width;
    region->height = (int) height;
    region->n_labels = gst_clip_meta_get_region_n_labels (meta, r);
    const char **region_labels = g_new (const char *, region->n_labels);
    double *region_scores = g_new (double, region->n_labels);
    for (guint i = 0; i < region->n_labels; i++) {
      region_labels[i] = gst_clip_meta_get_region_label (meta, r, i);
      region_scores[i] = gst_clip_meta_get_region_probability (meta, r, i);
    }
    region->labels = region_labels;
    region->scores = region_scores;
    region->top_label = gst_clip_meta_get_region_top_label (meta, r);
  }
  frame->n_regions = n_regions;
  frame->regions = regions;
}

void
gst_clip_frame_record_clear (ClipFrameRecord *frame)
{
  g_free ((gpointer) frame->labels);
  g_free ((gpointer) frame->scores);
  frame->labels = NULL;
  frame->scores = NULL;
  frame->n_labels = 0;
  for (guint r = 0; r < frame->n_regions; r++) {
    g_free ((gpointer) frame->regions[r].labels);
    g_free ((gpointer) frame->regions[r].scores);
  }
  g_free ((gpointer) frame->regions);
  frame->regions = NULL;
  frame->n_regions = 0;
}
