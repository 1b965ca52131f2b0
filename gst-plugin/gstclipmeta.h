/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GstClipMeta: the result of a CLIP classification, attached to a video
 * buffer by clipclassify.
 *
 * Installed with the pkg-config file gstreamer-clip-meta-1.0, so that
 * applications and other elements can read results without depending on the
 * CLIP runtime:
 *
 *   GstClipMeta *meta = gst_buffer_get_clip_meta (buffer);
 *   if (meta != NULL && gst_clip_meta_get_top (meta) >= 0)
 *     g_print ("%s %.2f\n", gst_clip_meta_get_top_label (meta),
 *         gst_clip_meta_get_probability (meta, gst_clip_meta_get_top (meta)));
 *
 * The meta has no tags: a classification describes the picture, not its
 * pixel layout, so it stays valid when a downstream element scales, crops
 * or converts the frame, and GStreamer's transform elements keep it.
 */
#pragma once

#include <gst/gst.h>

/* Marks what libgstclipmeta-1.0 exports (it is built with hidden
 * visibility), as GStreamer's own libraries do. */
#ifdef BUILDING_GST_CLIP_META
#define GST_CLIP_META_API GST_API_EXPORT
#else
#define GST_CLIP_META_API GST_API_IMPORT
#endif

G_BEGIN_DECLS

/* ------------------------------------------------------------ label table */

/* An immutable, refcounted list of label strings. clipclassify makes one per
 * label set, and every meta scored against that set points into it, so that
 * attaching a result to a buffer does not copy the strings. Thread-safe. */
typedef struct _GstClipLabelTable GstClipLabelTable;

#define GST_TYPE_CLIP_LABEL_TABLE (gst_clip_label_table_get_type ())
GST_CLIP_META_API
GType gst_clip_label_table_get_type (void);

GST_CLIP_META_API
GstClipLabelTable *gst_clip_label_table_new (const gchar *const *labels,
    guint n_labels);
GST_CLIP_META_API
GstClipLabelTable *gst_clip_label_table_ref (GstClipLabelTable *table);
GST_CLIP_META_API
void gst_clip_label_table_unref (GstClipLabelTable *table);
GST_CLIP_META_API
guint gst_clip_label_table_get_n_labels (const GstClipLabelTable *table);
/* NULL when index is out of range. */
GST_CLIP_META_API
const gchar *gst_clip_label_table_get_label (const GstClipLabelTable *table,
    guint index);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GstClipLabelTable, gst_clip_label_table_unref)

/* ------------------------------------------------------------------- meta */

#define GST_CLIP_META_API_TYPE (gst_clip_meta_api_get_type ())
#define GST_CLIP_META_INFO (gst_clip_meta_get_info ())

typedef struct _GstClipMeta GstClipMeta;

/**
 * GstClipMeta:
 * @meta: the parent #GstMeta
 * @label_table: every label of the set the frame was scored against,
 *     negative labels included
 * @n_labels: how many labels are reported: the top-k by probability whose
 *     probability reaches the element's threshold, negative labels excluded;
 *     may be 0
 * @label_indices: [@n_labels] indices into @label_table, best first
 * @probabilities: [@n_labels] softmax probabilities over all labels
 * @logits: [@n_labels] logit scale times cosine similarity
 * @top: index into the reported arrays of the top label, or -1 when there is
 *     none: nothing reaches the threshold, or a negative label won. When not
 *     -1 it is always 0, the best reported label.
 * @pts: presentation timestamp of the analysed frame the result belongs to
 * @duration: duration of that frame
 * @fresh: TRUE when the result is new on this buffer. In sync mode that means
 *     it was computed from this very buffer. In live mode a buffer never
 *     waits for inference, so the first buffer to carry a newly finished
 *     result is fresh; compare @pts with the buffer's to know whether the
 *     result is of its own frame.
 * @model_name: the model's name, e.g. "clip-vit-base-patch32"
 * @embedding: the analysed frame's L2-normalised image embedding (float32,
 *     native endianness, before temporal smoothing), or NULL unless the
 *     element's attach-embedding property is set
 * @source: the name of the element that attached the meta, e.g.
 *     "clipclassify0": a buffer that went through several classifiers
 *     carries one meta of each, in the order they were attached; "" when
 *     not set
 *
 * The results of the buffer's regions of interest (clipclassify
 * regions=rois or both) are read with gst_clip_meta_get_n_regions() and
 * the gst_clip_meta_get_region_*() accessors.
 *
 * With regions=rois the element classifies no whole frame: the meta then
 * reports no label of its own (@n_labels 0, @top -1, @pts and @duration
 * GST_CLOCK_TIME_NONE), only regions, and is @fresh when a region's result
 * is new on this buffer.
 *
 * Read-only for everyone but its creator. Use the accessors below.
 */
struct _GstClipMeta {
  GstMeta meta;

  GstClipLabelTable *label_table;
  guint n_labels;
  guint *label_indices;
  gfloat *probabilities;
  gfloat *logits;
  gint top;
  GstClockTime pts;
  GstClockTime duration;
  gboolean fresh;
  const gchar *model_name;
  GBytes *embedding;
  const gchar *source;

  /*< private >*/
  GArray *regions;
};

GST_CLIP_META_API
GType gst_clip_meta_api_get_type (void);
GST_CLIP_META_API
const GstMetaInfo *gst_clip_meta_get_info (void);

/* The first meta attached (of the first classifier upstream); see
 * gst_buffer_get_clip_meta_from to choose. */
GST_CLIP_META_API
GstClipMeta *gst_buffer_get_clip_meta (GstBuffer *buffer);

/* The meta that the element named source attached, or with source NULL the
 * last one attached (of the classifier nearest upstream); NULL when there
 * is none. */
GST_CLIP_META_API
GstClipMeta *gst_buffer_get_clip_meta_from (GstBuffer *buffer,
    const gchar *source);

/* Adds a meta to a writable buffer. The arrays are copied (@n_labels entries
 * each); the table and the embedding are referenced. Every label index must
 * be inside the table and @top must be -1 or below @n_labels, else NULL is
 * returned and nothing is added. */
GST_CLIP_META_API
GstClipMeta *gst_buffer_add_clip_meta (GstBuffer *buffer,
    GstClipLabelTable *label_table, guint n_labels, const guint *label_indices,
    const gfloat *probabilities, const gfloat *logits, gint top,
    GstClockTime pts, GstClockTime duration, gboolean fresh,
    const gchar *model_name, GBytes *embedding);

/* Records the name of the element that attached meta (its creator, right
 * after gst_buffer_add_clip_meta). */
GST_CLIP_META_API
void gst_clip_meta_set_source (GstClipMeta *meta, const gchar *source);
GST_CLIP_META_API
const gchar *gst_clip_meta_get_source (const GstClipMeta *meta);

GST_CLIP_META_API
guint gst_clip_meta_get_n_labels (const GstClipMeta *meta);
/* The i-th reported label, best first; NULL when i is out of range. */
GST_CLIP_META_API
const gchar *gst_clip_meta_get_label (const GstClipMeta *meta, guint i);
/* 0 when i is out of range. */
GST_CLIP_META_API
gfloat gst_clip_meta_get_probability (const GstClipMeta *meta, guint i);
GST_CLIP_META_API
gfloat gst_clip_meta_get_logit (const GstClipMeta *meta, guint i);
GST_CLIP_META_API
gint gst_clip_meta_get_top (const GstClipMeta *meta);
/* The top label, or NULL when there is none. */
GST_CLIP_META_API
const gchar *gst_clip_meta_get_top_label (const GstClipMeta *meta);
GST_CLIP_META_API
GstClockTime gst_clip_meta_get_pts (const GstClipMeta *meta);
GST_CLIP_META_API
GstClockTime gst_clip_meta_get_duration (const GstClipMeta *meta);
GST_CLIP_META_API
gboolean gst_clip_meta_is_fresh (const GstClipMeta *meta);
GST_CLIP_META_API
const gchar *gst_clip_meta_get_model_name (const GstClipMeta *meta);
/* The embedding and its length (*dim), or NULL (*dim = 0) when not
 * attached. dim may be NULL. */
GST_CLIP_META_API
const gfloat *gst_clip_meta_get_embedding (const GstClipMeta *meta, guint *dim);

/* ---------------------------------------------------------------- regions */

/* Adds the result of a region of interest (a GstVideoRegionOfInterestMeta
 * of the buffer, by its id) to meta (its creator's, like
 * gst_buffer_add_clip_meta; copies of the buffer copy the regions): its rectangle in pixels and its
 * reported labels, best first, as indices into label_table with their
 * probabilities; top is -1 or 0, as the meta's own. The arrays are copied,
 * the table referenced. FALSE on bad arguments (nothing added). */
GST_CLIP_META_API
gboolean gst_clip_meta_add_region (GstClipMeta *meta, gint roi_id, guint x,
    guint y, guint width, guint height, GstClipLabelTable *label_table,
    guint n_labels, const guint *label_indices, const gfloat *probabilities,
    gint top);

GST_CLIP_META_API
guint gst_clip_meta_get_n_regions (const GstClipMeta *meta);
/* The ROI id of region r (the GstVideoRegionOfInterestMeta's id); -1 when
 * r is out of range. */
GST_CLIP_META_API
gint gst_clip_meta_get_region_id (const GstClipMeta *meta, guint r);
/* The rectangle region r was classified on, in pixels of the frame
 * (the ROI clamped to the frame, before padding). FALSE when r is out of
 * range. */
GST_CLIP_META_API
gboolean gst_clip_meta_get_region_rect (const GstClipMeta *meta, guint r,
    guint *x, guint *y, guint *width, guint *height);
GST_CLIP_META_API
guint gst_clip_meta_get_region_n_labels (const GstClipMeta *meta, guint r);
/* Region r's i-th reported label, best first; NULL when out of range. */
GST_CLIP_META_API
const gchar *gst_clip_meta_get_region_label (const GstClipMeta *meta, guint r,
    guint i);
/* 0 when out of range. */
GST_CLIP_META_API
gfloat gst_clip_meta_get_region_probability (const GstClipMeta *meta, guint r,
    guint i);
/* Region r's top label, or NULL when it has none. */
GST_CLIP_META_API
const gchar *gst_clip_meta_get_region_top_label (const GstClipMeta *meta,
    guint r);

G_END_DECLS
