/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GstClipMeta and its label table. Depends on GStreamer only, never on the
 * CLIP runtime, so that readers of the meta need nothing else. */
#include "gstclipmeta.h"

#include <string.h>

/* ------------------------------------------------------------ label table */

struct _GstClipLabelTable {
  gint ref_count;
  guint n_labels;
  gchar **labels; /* NULL-terminated */
};

G_DEFINE_BOXED_TYPE (GstClipLabelTable, gst_clip_label_table,
    gst_clip_label_table_ref, gst_clip_label_table_unref)

/**
 * gst_clip_label_table_new:
 * @labels: (array length=n_labels): the labels
 * @n_labels: how many
 *
 * Returns: (transfer full): a new table holding copies of @labels
 */
GstClipLabelTable *
gst_clip_label_table_new (const gchar *const *labels, guint n_labels)
{
  g_return_val_if_fail (labels != NULL || n_labels == 0, NULL);

  GstClipLabelTable *table = g_new0 (GstClipLabelTable, 1);
  table->ref_count = 1;
  table->n_labels = n_labels;
  table->labels = g_new0 (gchar *, n_labels + 1);
  for (guint i = 0; i < n_labels; i++)
    table->labels[i] = g_strdup (labels[i] ? labels[i] : "");
  return table;
}

/**
 * gst_clip_label_table_ref: (skip)
 * @table: a table
 *
 * Returns: (transfer full): @table
 */
GstClipLabelTable *
gst_clip_label_table_ref (GstClipLabelTable *table)
{
  g_return_val_if_fail (table != NULL, NULL);
  g_atomic_int_inc (&table->ref_count);
  return table;
}

/**
 * gst_clip_label_table_unref: (skip)
 * @table: (transfer full) (nullable): a table
 */
void
gst_clip_label_table_unref (GstClipLabelTable *table)
{
  if (table == NULL || !g_atomic_int_dec_and_test (&table->ref_count))
    return;
  g_strfreev (table->labels);
  g_free (table);
}

guint
gst_clip_label_table_get_n_labels (const GstClipLabelTable *table)
{
  g_return_val_if_fail (table != NULL, 0);
  return table->n_labels;
}

/**
 * gst_clip_label_table_get_label:
 * @table: a table
 * @index: a label's index
 *
 * Returns: (transfer none) (nullable): the label, NULL when @index is out of
 *     range
 */
const gchar *
gst_clip_label_table_get_label (const GstClipLabelTable *table, guint index)
{
  g_return_val_if_fail (table != NULL, NULL);
  return index < table->n_labels ? table->labels[index] : NULL;
}

/* ------------------------------------------------------------------- meta */

GType
gst_clip_meta_api_get_type (void)
{
  static GType type;
  /* No tags: the result describes the picture's content, which scaling,
   * cropping or a format conversion downstream does not change. */
  static const gchar *tags[] = { NULL };

  if (g_once_init_enter (&type)) {
    GType t = gst_meta_api_type_register ("GstClipMetaAPI", tags);
    g_once_init_leave (&type, t);
  }
  return type;
}

static gboolean
clip_meta_init (GstMeta *meta, gpointer params, GstBuffer *buffer)
{
  GstClipMeta *m = (GstClipMeta *) meta;

  m->label_table = NULL;
  m->n_labels = 0;
  m->label_indices = NULL;
  m->probabilities = NULL;
  m->logits = NULL;
  m->top = -1;
  m->pts = GST_CLOCK_TIME_NONE;
  m->duration = GST_CLOCK_TIME_NONE;
  m->fresh = FALSE;
  m->model_name = NULL;
  m->embedding = NULL;
  m->source = g_intern_static_string ("");
  m->regions = NULL;
  return TRUE;
}

static void
clip_meta_free (GstMeta *meta, GstBuffer *buffer)
{
  GstClipMeta *m = (GstClipMeta *) meta;

  g_clear_pointer (&m->label_table, gst_clip_label_table_unref);
  /* label_indices owns the one block the three arrays live in */
  g_clear_pointer (&m->label_indices, g_free);
  g_clear_pointer (&m->embedding, g_bytes_unref);
  g_clear_pointer (&m->regions, g_array_unref);
}

/* Fills an initialised meta; the arrays share one allocation. */
static void
clip_meta_fill (GstClipMeta *m, GstClipLabelTable *label_table, guint n_labels,
    const guint *label_indices, const gfloat *probabilities,
    const gfloat *logits, gint top, GstClockTime pts, GstClockTime duration,
    gboolean fresh, const gchar *model_name, GBytes *embedding)
{
  m->label_table = gst_clip_label_table_ref (label_table);
  m->n_labels = n_labels;
  if (n_labels > 0) {
    G_STATIC_ASSERT (sizeof (guint) == sizeof (gfloat));
    m->label_indices = g_new (guint, 3 * (gsize) n_labels);
    m->probabilities = (gfloat *) (m->label_indices + n_labels);
    m->logits = m->probabilities + n_labels;
    memcpy (m->label_indices, label_indices, n_labels * sizeof (guint));
    memcpy (m->probabilities, probabilities, n_labels * sizeof (gfloat));
    memcpy (m->logits, logits, n_labels * sizeof (gfloat));
  }
  m->top = top;
  m->pts = pts;
  m->duration = duration;
  m->fresh = fresh;
  /* Interned: a pipeline uses a handful of models, and the meta then needs
   * no copy per buffer. */
  m->model_name = g_intern_string (model_name ? model_name : "");
  m->embedding = embedding ? g_bytes_ref (embedding) : NULL;
}

static void clip_meta_copy_region (GstClipMeta *dst, const GstClipMeta *src,
    guint r);

static gboolean
clip_meta_transform (GstBuffer *dest, GstMeta *meta, GstBuffer *buffer,
    GQuark type, gpointer data)
{
  GstClipMeta *src = (GstClipMeta *) meta;

  /* Every transform (copy, scale, crop, conversion) keeps the result: it
   * describes what the picture shows, not how its pixels are laid out. */
  GstClipMeta *dst = (GstClipMeta *) gst_buffer_add_meta (dest,
      GST_CLIP_META_INFO, NULL);
  if (dst == NULL)
    return FALSE;
  clip_meta_fill (dst, src->label_table, src->n_labels, src->label_indices,
      src->probabilities, src->logits, src->top, src->pts, src->duration,
      src->fresh, src->model_name, src->embedding);
  dst->source = src->source;
  for (guint r = 0; r < gst_clip_meta_get_n_regions (src); r++)
    clip_meta_copy_region (dst, src, r);
  return TRUE;
}

const GstMetaInfo *
gst_clip_meta_get_info (void)
{
  static const GstMetaInfo *info;

  if (g_once_init_enter (&info)) {
    const GstMetaInfo *i = gst_meta_register (GST_CLIP_META_API_TYPE,
        "GstClipMeta", sizeof (GstClipMeta), clip_meta_init, clip_meta_free,
        clip_meta_transform);
    g_once_init_leave (&info, i);
  }
  return info;
}

/**
 * gst_buffer_add_clip_meta:
 * @buffer: a writable buffer
 * @label_table: the labels scored against
 * @n_labels: how many labels are reported
 * @label_indices: (array length=n_labels): indices into @label_table, best
 *     first
 * @probabilities: (array length=n_labels): their probabilities
 * @logits: (array length=n_labels): their logits
 * @top: -1, or the index of the top label in the arrays
 * @pts: the analysed frame's timestamp
 * @duration: its duration
 * @fresh: whether the result is new on this buffer
 * @model_name: (nullable): the model's name
 * @embedding: (nullable): the frame's embedding (float32)
 *
 * Returns: (transfer none) (nullable): the meta, NULL on bad arguments
 */
GstClipMeta *
gst_buffer_add_clip_meta (GstBuffer *buffer, GstClipLabelTable *label_table,
    guint n_labels, const guint *label_indices, const gfloat *probabilities,
    const gfloat *logits, gint top, GstClockTime pts, GstClockTime duration,
    gboolean fresh, const gchar *model_name, GBytes *embedding)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (gst_buffer_is_writable (buffer), NULL);
  g_return_val_if_fail (label_table != NULL, NULL);
  g_return_val_if_fail (n_labels == 0
          || (label_indices != NULL && probabilities != NULL && logits != NULL),
      NULL);
  g_return_val_if_fail (top >= -1 && top < (gint) MIN (n_labels, G_MAXINT),
      NULL);
  for (guint i = 0; i < n_labels; i++)
    g_return_val_if_fail (label_indices[i] < label_table->n_labels, NULL);

  GstClipMeta *m = (GstClipMeta *) gst_buffer_add_meta (buffer,
      GST_CLIP_META_INFO, NULL);
  if (m == NULL)
    return NULL;
  clip_meta_fill (m, label_table, n_labels, label_indices, probabilities,
      logits, top, pts, duration, fresh, model_name, embedding);
  return m;
}

/**
 * gst_buffer_get_clip_meta:
 * @buffer: a buffer
 *
 * Returns: (transfer none) (nullable): the first #GstClipMeta attached to
 *     the buffer (of the first classifier upstream), or NULL
 */
GstClipMeta *
gst_buffer_get_clip_meta (GstBuffer *buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  return (GstClipMeta *) gst_buffer_get_meta (buffer, GST_CLIP_META_API_TYPE);
}

/**
 * gst_buffer_get_clip_meta_from:
 * @buffer: a buffer
 * @source: (nullable): the name of the element that attached the meta
 *
 * Returns: (transfer none) (nullable): the meta @source attached or, with
 *     @source NULL, the last one attached (of the classifier nearest
 *     upstream); NULL when there is none
 */
GstClipMeta *
gst_buffer_get_clip_meta_from (GstBuffer *buffer, const gchar *source)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  gpointer state = NULL;
  GstMeta *meta;
  GstClipMeta *found = NULL;
  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state,
              GST_CLIP_META_API_TYPE))
      != NULL) {
    GstClipMeta *m = (GstClipMeta *) meta;
    if (source == NULL)
      found = m;
    else if (strcmp (m->source, source) == 0)
      return m;
  }
  return found;
}

/**
 * gst_clip_meta_set_source:
 * @meta: a meta
 * @source: (nullable): the name of the element that attached it
 */
void
gst_clip_meta_set_source (GstClipMeta *meta, const gchar *source)
{
  g_return_if_fail (meta != NULL);
  /* Interned as the model name: a handful of elements per pipeline. */
  meta->source = g_intern_string (source ? source : "");
}

/**
 * gst_clip_meta_get_source:
 * @meta: a meta
 *
 * Returns: (transfer none): the name of the element that attached it
 */
const gchar *
gst_clip_meta_get_source (const GstClipMeta *meta)
{
  g_return_val_if_fail (meta != NULL, NULL);
  return meta->source;
}

guint
gst_clip_meta_get_n_labels (const GstClipMeta *meta)
{
  g_return_val_if_fail (meta != NULL, 0);
  return meta->n_labels;
}

/**
 * gst_clip_meta_get_label:
 * @meta: a meta
 * @i: a reported label's index, best first
 *
 * Returns: (transfer none) (nullable): the string, or NULL
 */
const gchar *
gst_clip_meta_get_label (const GstClipMeta *meta, guint i)
{
  g_return_val_if_fail (meta != NULL, NULL);
  if (i >= meta->n_labels)
    return NULL;
  return gst_clip_label_table_get_label (meta->label_table,
      meta->label_indices[i]);
}

gfloat
gst_clip_meta_get_probability (const GstClipMeta *meta, guint i)
{
  g_return_val_if_fail (meta != NULL, 0.0f);
  return i < meta->n_labels ? meta->probabilities[i] : 0.0f;
}

gfloat
gst_clip_meta_get_logit (const GstClipMeta *meta, guint i)
{
  g_return_val_if_fail (meta != NULL, 0.0f);
  return i < meta->n_labels ? meta->logits[i] : 0.0f;
}

gint
gst_clip_meta_get_top (const GstClipMeta *meta)
{
  g_return_val_if_fail (meta != NULL, -1);
  return meta->top;
}

/**
 * gst_clip_meta_get_top_label:
 * @meta: a meta
 *
 * Returns: (transfer none) (nullable): the string, or NULL
 */
const gchar *
gst_clip_meta_get_top_label (const GstClipMeta *meta)
{
  g_return_val_if_fail (meta != NULL, NULL);
  return meta->top >= 0 ? gst_clip_meta_get_label (meta, meta->top) : NULL;
}

GstClockTime
gst_clip_meta_get_pts (const GstClipMeta *meta)
{
  g_return_val_if_fail (meta != NULL, GST_CLOCK_TIME_NONE);
  return meta->pts;
}

GstClockTime
gst_clip_meta_get_duration (const GstClipMeta *meta)
{
  g_return_val_if_fail (meta != NULL, GST_CLOCK_TIME_NONE);
  return meta->duration;
}

gboolean
gst_clip_meta_is_fresh (const GstClipMeta *meta)
{
  g_return_val_if_fail (meta != NULL, FALSE);
  return meta->fresh;
}

/**
 * gst_clip_meta_get_model_name:
 * @meta: a meta
 *
 * Returns: (transfer none) (nullable): the string, or NULL
 */
const gchar *
gst_clip_meta_get_model_name (const GstClipMeta *meta)
{
  g_return_val_if_fail (meta != NULL, NULL);
  return meta->model_name;
}

/**
 * gst_clip_meta_get_embedding:
 * @meta: a meta
 * @dim: (out) (optional): the embedding's length
 *
 * Returns: (transfer none) (array length=dim) (nullable): the embedding
 */
const gfloat *
gst_clip_meta_get_embedding (const GstClipMeta *meta, guint *dim)
{
  gsize size = 0;
  const gfloat *data = NULL;

  g_return_val_if_fail (meta != NULL, NULL);
  if (meta->embedding != NULL)
    data = g_bytes_get_data (meta->embedding, &size);
  if (dim != NULL)
    *dim = (guint) (size / sizeof (gfloat));
  return data;
}

/* ---------------------------------------------------------------- regions */

/* One region's result. The array of them is shared between a meta and its
 * copies (never changed once the creator is done adding). */
typedef struct {
  gint id;
  guint x, y, width, height;
  GstClipLabelTable *label_table;
  guint n_labels;
  guint *label_indices;
  gfloat *probabilities;
  gint top;
} ClipRegionEntry;

static void
clip_region_entry_clear (ClipRegionEntry *e)
{
  g_clear_pointer (&e->label_table, gst_clip_label_table_unref);
  g_clear_pointer (&e->label_indices, g_free);
  g_clear_pointer (&e->probabilities, g_free);
}

static const ClipRegionEntry *
region_entry (const GstClipMeta *meta, guint r)
{
  if (meta->regions == NULL || r >= meta->regions->len)
    return NULL;
  return &g_array_index (meta->regions, ClipRegionEntry, r);
}

/**
 * gst_clip_meta_add_region:
 * @meta: a meta its creator is filling
 * @roi_id: the GstVideoRegionOfInterestMeta's id
 * @x: left edge, in pixels
 * @y: top edge, in pixels
 * @width: width, in pixels
 * @height: height, in pixels
 * @label_table: the labels scored against
 * @n_labels: how many labels are reported
 * @label_indices: (array length=n_labels): indices into @label_table, best
 *     first
 * @probabilities: (array length=n_labels): their probabilities
 * @top: -1, or 0 when the best reported label is the region's top label
 *
 * Returns: TRUE when added, FALSE on bad arguments
 */
gboolean
gst_clip_meta_add_region (GstClipMeta *meta, gint roi_id, guint x, guint y,
    guint width, guint height, GstClipLabelTable *label_table, guint n_labels,
    const guint *label_indices, const gfloat *probabilities, gint top)
{
  g_return_val_if_fail (meta != NULL, FALSE);
  g_return_val_if_fail (label_table != NULL, FALSE);
  g_return_val_if_fail (
      n_labels == 0 || (label_indices != NULL && probabilities != NULL), FALSE);
  g_return_val_if_fail (top >= -1 && top < (gint) MIN (n_labels, G_MAXINT),
      FALSE);
  for (guint i = 0; i < n_labels; i++)
    g_return_val_if_fail (label_indices[i] < label_table->n_labels, FALSE);

  if (meta->regions == NULL) {
    meta->regions = g_array_new (FALSE, TRUE, sizeof (ClipRegionEntry));
    g_array_set_clear_func (meta->regions,
        (GDestroyNotify) clip_region_entry_clear);
  }
  ClipRegionEntry e = {
    .id = roi_id,
    .x = x,
    .y = y,
    .width = width,
    .height = height,
    .label_table = gst_clip_label_table_ref (label_table),
    .n_labels = n_labels,
    .label_indices = g_memdup2 (label_indices, n_labels * sizeof (guint)),
    .probabilities = g_memdup2 (probabilities, n_labels * sizeof (gfloat)),
    .top = top,
  };
  g_array_append_val (meta->regions, e);
  return TRUE;
}

static void
clip_meta_copy_region (GstClipMeta *dst, const GstClipMeta *src, guint r)
{
  const ClipRegionEntry *e = region_entry (src, r);
  gst_clip_meta_add_region (dst, e->id, e->x, e->y, e->width, e->height,
      e->label_table, e->n_labels, e->label_indices, e->probabilities, e->top);
}

/**
 * gst_clip_meta_get_n_regions:
 * @meta: a meta
 *
 * Returns: how many regions of interest have a result on this meta
 */
guint
gst_clip_meta_get_n_regions (const GstClipMeta *meta)
{
  g_return_val_if_fail (meta != NULL, 0);
  return meta->regions != NULL ? meta->regions->len : 0;
}

/**
 * gst_clip_meta_get_region_id:
 * @meta: a meta
 * @r: a region's index
 *
 * Returns: the region's ROI id, or -1 when @r is out of range
 */
gint
gst_clip_meta_get_region_id (const GstClipMeta *meta, guint r)
{
  g_return_val_if_fail (meta != NULL, -1);
  const ClipRegionEntry *e = region_entry (meta, r);
  return e != NULL ? e->id : -1;
}

/**
 * gst_clip_meta_get_region_rect:
 * @meta: a meta
 * @r: a region's index
 * @x: (out) (optional): left edge, in pixels
 * @y: (out) (optional): top edge, in pixels
 * @width: (out) (optional): width, in pixels
 * @height: (out) (optional): height, in pixels
 *
 * Returns: TRUE, or FALSE when @r is out of range
 */
gboolean
gst_clip_meta_get_region_rect (const GstClipMeta *meta, guint r, guint *x,
    guint *y, guint *width, guint *height)
{
  g_return_val_if_fail (meta != NULL, FALSE);
  const ClipRegionEntry *e = region_entry (meta, r);
  if (e == NULL)
    return FALSE;
  if (x != NULL)
    *x = e->x;
  if (y != NULL)
    *y = e->y;
  if (width != NULL)
    *width = e->width;
  if (height != NULL)
    *height = e->height;
  return TRUE;
}

/**
 * gst_clip_meta_get_region_n_labels:
 * @meta: a meta
 * @r: a region's index
 *
 * Returns: how many labels the region reports (0 when @r is out of range)
 */
guint
gst_clip_meta_get_region_n_labels (const GstClipMeta *meta, guint r)
{
  g_return_val_if_fail (meta != NULL, 0);
  const ClipRegionEntry *e = region_entry (meta, r);
  return e != NULL ? e->n_labels : 0;
}

/**
 * gst_clip_meta_get_region_label:
 * @meta: a meta
 * @r: a region's index
 * @i: a reported label's index, best first
 *
 * Returns: (transfer none) (nullable): the string, or NULL
 */
const gchar *
gst_clip_meta_get_region_label (const GstClipMeta *meta, guint r, guint i)
{
  g_return_val_if_fail (meta != NULL, NULL);
  const ClipRegionEntry *e = region_entry (meta, r);
  if (e == NULL || i >= e->n_labels)
    return NULL;
  return gst_clip_label_table_get_label (e->label_table, e->label_indices[i]);
}

/**
 * gst_clip_meta_get_region_probability:
 * @meta: a meta
 * @r: a region's index
 * @i: a reported label's index, best first
 *
 * Returns: its probability, 0 when out of range
 */
gfloat
gst_clip_meta_get_region_probability (const GstClipMeta *meta, guint r, guint i)
{
  g_return_val_if_fail (meta != NULL, 0.0f);
  const ClipRegionEntry *e = region_entry (meta, r);
  return e != NULL && i < e->n_labels ? e->probabilities[i] : 0.0f;
}

/**
 * gst_clip_meta_get_region_top_label:
 * @meta: a meta
 * @r: a region's index
 *
 * Returns: (transfer none) (nullable): the region's top label, or NULL
 */
const gchar *
gst_clip_meta_get_region_top_label (const GstClipMeta *meta, guint r)
{
  g_return_val_if_fail (meta != NULL, NULL);
  const ClipRegionEntry *e = region_entry (meta, r);
  return e != NULL && e->top >= 0
      ? gst_clip_meta_get_region_label (meta, r, (guint) e->top)
      : NULL;
}
