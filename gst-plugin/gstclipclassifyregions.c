/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gstclipclassifyregions.h"
#include "gstclipclassifyschedule.h"
#include "gstclipelement.h"

#include <string.h>

GST_DEBUG_CATEGORY_EXTERN (gst_clip_classify_debug);
#define GST_CAT_DEFAULT gst_clip_classify_debug

#define DEFAULT_REGIONS GST_CLIP_CLASSIFY_REGIONS_FRAME
#define DEFAULT_REGION_PADDING 0.0
#define MAX_REGION_PADDING 1.0
#define DEFAULT_REGION_MIN_SIZE 16
#define DEFAULT_REGION_INTERVAL 0

GType
gst_clip_classify_regions_get_type (void)
{
  static GType type;
  static const GEnumValue values[] = {
    { GST_CLIP_CLASSIFY_REGIONS_FRAME, "the whole frame", "frame" },
    { GST_CLIP_CLASSIFY_REGIONS_ROIS,
        "each region of interest (GstVideoRegionOfInterestMeta), not the "
        "frame",
        "rois" },
    { GST_CLIP_CLASSIFY_REGIONS_BOTH, "the whole frame and each region",
        "both" },
    { 0, NULL, NULL },
  };

  return gst_clip_enum_register_once (&type, "GstClipClassifyRegions", values);
}

/* What is wrong with a ROI: each is warned about once per run. */
typedef enum {
  REGION_ZERO_SIZE = 1 << 0,
  REGION_OUTSIDE = 1 << 1,
  REGION_ID_REUSED = 1 << 2,
  REGION_TOO_MANY = 1 << 3,
} RegionProblem;

/* One ROI id's history. */
typedef struct {
  GstClockTime classified_pts; /* when last sent to the encoder */
  ClipChangeGate gate;         /* change-threshold, on its crop */
  ClipResult *result;          /* the latest; NULL until the first */
  gboolean attached;           /* result is on a buffer already */
  guint64 seen;                /* the serial of the last frame it was on */
} RegionTrack;

static void
region_track_free (RegionTrack *t)
{
  g_clear_pointer (&t->result, clip_result_unref);
  g_free (t);
}

void
frame_regions_clear (FrameRegions *regions)
{
  g_clear_pointer (&regions->crops, g_array_unref);
  g_clear_pointer (&regions->embeddings, g_free);
}

void
gst_clip_classify_regions_start (GstClipClassify *self)
{
  self->region.tracks = g_hash_table_new_full (NULL, NULL, NULL,
      (GDestroyNotify) region_track_free);
  self->region.serial = 0;
  self->region.warned = 0;
}

void
gst_clip_classify_regions_stop (GstClipClassify *self)
{
  g_clear_pointer (&self->region.tracks, g_hash_table_unref);
}

void
gst_clip_classify_regions_reset (GstClipClassify *self)
{
  g_mutex_lock (&self->lock);
  if (self->region.tracks != NULL)
    g_hash_table_remove_all (self->region.tracks);
  g_mutex_unlock (&self->lock);
}

/* ------------------------------------------------------------- selecting */

static gboolean
type_wanted (GQuark type, const GStrv wanted)
{
  if (wanted == NULL || wanted[0] == NULL)
    return TRUE;
  for (guint i = 0; wanted[i] != NULL; i++)
    if (type == g_quark_try_string (wanted[i]))
      return TRUE;
  return FALSE;
}

static GStrv
parse_types (const char *text)
{
  if (text == NULL || *text == '\0')
    return NULL;
  GStrv types = g_strsplit (text, ",", -1);
  guint n = 0;
  for (guint i = 0; types[i] != NULL; i++) {
    char *type = g_strstrip (types[i]);
    if (*type != '\0')
      types[n++] = type;
    else
      g_free (type);
  }
  types[n] = NULL;
  return types;
}

/* The ROI clamped to a frame of width x height: FALSE when nothing of it
 * is inside. */
static gboolean
clamp_roi (const GstVideoRegionOfInterestMeta *roi, int width, int height,
    ClipRect *rect)
{
  gint64 x0 = MIN ((gint64) roi->x, width);
  gint64 y0 = MIN ((gint64) roi->y, height);
  gint64 x1 = MIN ((gint64) roi->x + roi->w, width);
  gint64 y1 = MIN ((gint64) roi->y + roi->h, height);
  rect->x = (int) x0;
  rect->y = (int) y0;
  rect->width = (int) (x1 - x0);
  rect->height = (int) (y1 - y0);
  return rect->width > 0 && rect->height > 0;
}

/* The ROI with padding (a fraction of its size on each side), clamped to
 * the frame; for 4:2:0 frames it starts on even coordinates, so that its
 * chroma planes start on a sample of their own. */
static ClipRect
padded_crop (const ClipRect *roi, double padding, const GstVideoInfo *info)
{
  const int width = GST_VIDEO_INFO_WIDTH (info);
  const int height = GST_VIDEO_INFO_HEIGHT (info);
  int pad_x = (int) (roi->width * padding + 0.5);
  int pad_y = (int) (roi->height * padding + 0.5);
  int x0 = MAX (roi->x - pad_x, 0), y0 = MAX (roi->y - pad_y, 0);
  int x1 = MIN (roi->x + roi->width + pad_x, width);
  int y1 = MIN (roi->y + roi->height + pad_y, height);
  if (GST_VIDEO_INFO_IS_YUV (info)) {
    x0 &= ~1;
    y0 &= ~1;
  }
  ClipRect crop = { x0, y0, x1 - x0, y1 - y0 };
  return crop;
}

/* Notes a problem, once per run: the WARNING's text, posted later without
 * the lock. */
static void note_problem (GstClipClassify *self, RegionProblem problem,
    GPtrArray *warnings, const char *format, ...) G_GNUC_PRINTF (4, 5);

static void
note_problem (GstClipClassify *self, RegionProblem problem, GPtrArray *warnings,
    const char *format, ...)
{
  if (self->region.warned & problem)
    return;
  self->region.warned |= problem;
  va_list args;
  va_start (args, format);
  g_ptr_array_add (warnings, g_strdup_vprintf (format, args));
  va_end (args);
}

gboolean
gst_clip_classify_regions_select (GstClipClassify *self, GstBuffer *buffer,
    const GstVideoInfo *info, const ClipFrame *frame, FrameRegions *regions)
{
  const int width = GST_VIDEO_INFO_WIDTH (info);
  const int height = GST_VIDEO_INFO_HEIGHT (info);
  const GstClockTime pts = GST_BUFFER_PTS (buffer);
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);

  g_mutex_lock (&self->lock);
  GstClipClassifyRegionState *state = &self->region;
  if (state->mode == GST_CLIP_CLASSIFY_REGIONS_FRAME) {
    g_hash_table_remove_all (state->tracks);
    g_mutex_unlock (&self->lock);
    return FALSE;
  }
  g_auto (GStrv) types = parse_types (state->roi_types);
  const guint64 serial = ++state->serial;
  regions->crops = g_array_new (FALSE, FALSE, sizeof (RegionCrop));
  guint taken = 0;

  gpointer iter = NULL;
  GstMeta *meta;
  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &iter,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))
      != NULL) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) meta;
    const char *type = g_quark_to_string (roi->roi_type);
    if (!type_wanted (roi->roi_type, types))
      continue;
    ClipRect rect;
    if (roi->w == 0 || roi->h == 0) {
      note_problem (self, REGION_ZERO_SIZE, warnings,
          "region of interest %d (%s) at %u,%u has zero size (%ux%u): not "
          "classified",
          roi->id, type ? type : "no type", roi->x, roi->y, roi->w, roi->h);
      continue;
    }
    if (!clamp_roi (roi, width, height, &rect)) {
      note_problem (self, REGION_OUTSIDE, warnings,
          "region of interest %d (%s) at %u,%u size %ux%u lies outside the "
          "%dx%d frame: not classified",
          roi->id, type ? type : "no type", roi->x, roi->y, roi->w, roi->h,
          width, height);
      continue;
    }
    RegionTrack *track = g_hash_table_lookup (state->tracks,
        GINT_TO_POINTER (roi->id));
    if (track != NULL && track->seen == serial) {
      note_problem (self, REGION_ID_REUSED, warnings,
          "region of interest id %d (%s) is used by two regions of one frame: "
          "only the first is classified; results are kept per id, so each "
          "region needs its own (a tracker's, or set by the application)",
          roi->id, type ? type : "no type");
      continue;
    }
    if (rect.width < (int) state->min_size
        || rect.height < (int) state->min_size) {
      GST_LOG_OBJECT (self, "region %d: %dx%d is below region-min-size",
          roi->id, rect.width, rect.height);
      continue;
    }
    if (taken == GST_CLIP_CLASSIFY_MAX_REGIONS) {
      note_problem (self, REGION_TOO_MANY, warnings,
          "more than %d regions of interest on a frame (region %d and later): "
          "only the first %d are classified",
          GST_CLIP_CLASSIFY_MAX_REGIONS, roi->id,
          GST_CLIP_CLASSIFY_MAX_REGIONS);
      continue;
    }
    taken++;
    if (track == NULL) {
      track = g_new0 (RegionTrack, 1);
      track->classified_pts = GST_CLOCK_TIME_NONE;
      clip_change_gate_reset (&track->gate);
      g_hash_table_insert (state->tracks, GINT_TO_POINTER (roi->id), track);
    }
    track->seen = serial;

    RegionCrop crop = {
      .id = roi->id,
      .roi = rect,
      .crop = padded_crop (&rect, state->padding, info),
    };
    /* the per-track rate limit, then the change check on its own crop */
    if (GST_CLOCK_TIME_IS_VALID (pts)
        && GST_CLOCK_TIME_IS_VALID (track->classified_pts)
        && pts >= track->classified_pts
        && pts - track->classified_pts < state->interval)
      continue;
    if (self->change_threshold > 0.0
        && !clip_change_gate_check (&track->gate, frame, &crop.crop, pts,
            self->change_threshold, self->max_skip, &crop.skipped, NULL))
      continue;
    track->classified_pts = pts;
    g_array_append_val (regions->crops, crop);
  }

  /* results expire with their id */
  GHashTableIter tracks;
  gpointer value;
  g_hash_table_iter_init (&tracks, state->tracks);
  while (g_hash_table_iter_next (&tracks, NULL, &value))
    if (((RegionTrack *) value)->seen != serial)
      g_hash_table_iter_remove (&tracks);
  g_mutex_unlock (&self->lock);

  for (guint i = 0; i < warnings->len; i++)
    GST_ELEMENT_WARNING (self, STREAM, FORMAT,
        ("%s", (const char *) g_ptr_array_index (warnings, i)), (NULL));
  return TRUE;
}

void
gst_clip_classify_regions_frames (const FrameRegions *regions,
    const ClipFrame *frame, GArray *frames)
{
  for (guint i = 0; regions->crops != NULL && i < regions->crops->len; i++) {
    const ClipRect *c = &g_array_index (regions->crops, RegionCrop, i).crop;
    ClipFrame f = *frame;
    f.width = c->width;
    f.height = c->height;
    switch (frame->format) {
      case CLIP_PIXEL_RGB:
        f.planes[0] += (gsize) c->y * f.strides[0] + (gsize) c->x * 3;
        break;
      case CLIP_PIXEL_RGBA:
      case CLIP_PIXEL_BGRA:
        f.planes[0] += (gsize) c->y * f.strides[0] + (gsize) c->x * 4;
        break;
      case CLIP_PIXEL_I420:
        /* x and y are even (padded_crop) */
        f.planes[0] += (gsize) c->y * f.strides[0] + c->x;
        f.planes[1] += (gsize) (c->y / 2) * f.strides[1] + c->x / 2;
        f.planes[2] += (gsize) (c->y / 2) * f.strides[2] + c->x / 2;
        break;
      case CLIP_PIXEL_NV12:
        f.planes[0] += (gsize) c->y * f.strides[0] + c->x;
        f.planes[1] += (gsize) (c->y / 2) * f.strides[1] + c->x;
        break;
    }
    g_array_append_val (frames, f);
  }
}

/* -------------------------------------------------------------- results */

void
gst_clip_classify_regions_analysed (GstClipClassify *self,
    const FrameRegions *regions, const FrameTimes *times, GPtrArray *messages)
{
  const ClipReportOptions report = { self->top_k, self->threshold };

  for (guint i = 0; regions->crops != NULL && i < regions->crops->len; i++) {
    const RegionCrop *crop = &g_array_index (regions->crops, RegionCrop, i);
    RegionTrack *track = self->region.tracks
        ? g_hash_table_lookup (self->region.tracks, GINT_TO_POINTER (crop->id))
        : NULL;
    if (track == NULL)
      continue; /* its id disappeared meanwhile */
    ClipResult *r = clip_classifier_score (self->classifier,
        regions->embeddings + (gsize) i * self->embed_dim, &report, times->pts,
        times->duration);
    g_clear_pointer (&track->result, clip_result_unref);
    track->result = r;
    track->attached = FALSE;

    FrameTimes region_times = *times;
    region_times.skipped = crop->skipped;
    GstStructure *s = gst_clip_classify_result_structure (r, &region_times);
    gst_structure_set (s,
        clip_field_structure_name (CLIP_FIELD_REGION_ID), G_TYPE_INT, crop->id,
        clip_field_structure_name (CLIP_FIELD_X), G_TYPE_INT, crop->roi.x,
        clip_field_structure_name (CLIP_FIELD_Y), G_TYPE_INT, crop->roi.y,
        clip_field_structure_name (CLIP_FIELD_WIDTH), G_TYPE_INT,
        crop->roi.width,
        clip_field_structure_name (CLIP_FIELD_HEIGHT), G_TYPE_INT,
        crop->roi.height, NULL);
    g_ptr_array_add (messages, gst_message_new_element (GST_OBJECT (self), s));
  }
}

void
gst_clip_classify_regions_dropped (GstClipClassify *self,
    const FrameRegions *regions)
{
  for (guint i = 0; regions->crops != NULL && i < regions->crops->len; i++) {
    const RegionCrop *crop = &g_array_index (regions->crops, RegionCrop, i);
    RegionTrack *track = g_hash_table_lookup (self->region.tracks,
        GINT_TO_POINTER (crop->id));
    if (track == NULL)
      continue;
    track->classified_pts = GST_CLOCK_TIME_NONE;
    clip_change_gate_reset (&track->gate);
  }
}

static GstStructure *
classification_param (const ClipFrameRecord *record)
{
  GValue labels = G_VALUE_INIT, scores = G_VALUE_INIT;
  g_value_init (&labels, GST_TYPE_ARRAY);
  g_value_init (&scores, GST_TYPE_ARRAY);
  for (guint i = 0; i < record->n_labels; i++) {
    GValue v = G_VALUE_INIT;
    g_value_init (&v, G_TYPE_STRING);
    g_value_set_string (&v, record->labels[i]);
    gst_value_array_append_and_take_value (&labels, &v);
    g_value_init (&v, G_TYPE_DOUBLE);
    g_value_set_double (&v, record->scores[i]);
    gst_value_array_append_and_take_value (&scores, &v);
  }
  GstStructure *s = gst_structure_new_empty (GST_CLIP_CLASSIFY_REGION_PARAM);
  gst_structure_take_value (s, clip_field_structure_name (CLIP_FIELD_LABELS),
      &labels);
  gst_structure_take_value (s, clip_field_structure_name (CLIP_FIELD_SCORES),
      &scores);
  gst_structure_set (s, clip_field_structure_name (CLIP_FIELD_TOP_LABEL),
      G_TYPE_STRING, record->top_label, NULL);
  return s;
}

void
gst_clip_classify_regions_attach (GstClipClassify *self, GstBuffer *buffer,
    GstClipMeta *meta)
{
  GHashTable *tracks = self->region.tracks;
  if (self->region.mode == GST_CLIP_CLASSIFY_REGIONS_FRAME || tracks == NULL
      || g_hash_table_size (tracks) == 0)
    return;
  const GstVideoInfo *info = &GST_VIDEO_FILTER (self)->in_info;
  g_autoptr (GHashTable) attached = g_hash_table_new (NULL, NULL);
  GstClipMeta *regions_only = NULL;
  gboolean any_new = FALSE;

  gpointer iter = NULL;
  GstMeta *m;
  while ((m = gst_buffer_iterate_meta_filtered (buffer, &iter,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))
      != NULL) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) m;
    RegionTrack *track = g_hash_table_lookup (tracks,
        GINT_TO_POINTER (roi->id));
    ClipRect rect;
    if (track == NULL || track->result == NULL
        || !clamp_roi (roi, GST_VIDEO_INFO_WIDTH (info),
            GST_VIDEO_INFO_HEIGHT (info), &rect)
        || !g_hash_table_add (attached, GINT_TO_POINTER (roi->id)))
      continue;
    ClipFrameRecord record;
    clip_result_get_record (track->result, &record);
    gst_video_region_of_interest_meta_add_param (roi,
        classification_param (&record));

    GstClipLabelTable *table = clip_result_get_label_data (track->result);
    if (meta == NULL) {
      meta = gst_buffer_add_clip_meta (buffer, table, 0, NULL, NULL, NULL, -1,
          GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE, FALSE,
          clip_model_get_name (self->model), NULL);
      if (meta == NULL)
        return;
      gst_clip_meta_set_source (meta, self->source_name);
      regions_only = meta;
    }
    any_new |= !track->attached;
    track->attached = TRUE;
    gst_clip_meta_add_region (meta, roi->id, rect.x, rect.y, rect.width,
        rect.height, table, clip_result_get_n_reported (track->result),
        clip_result_get_indices (track->result),
        clip_result_get_probs (track->result),
        clip_result_get_top (track->result));
  }
  /* without a frame result, the meta is fresh when a region's is */
  if (regions_only != NULL)
    regions_only->fresh = any_new;
}

/* ------------------------------------------------------------ properties */

void
gst_clip_classify_regions_install_properties (GObjectClass *klass,
    guint first_prop_id)
{
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  const GParamFlags playing = rw | GST_PARAM_MUTABLE_PLAYING;
  guint id = first_prop_id;

  gst_clip_install_field_property (klass, id++,
      G_STRUCT_OFFSET (GstClipClassify, region.mode),
      g_param_spec_enum ("regions", "Regions",
          "What is classified: the whole frame; each region of interest "
          "(GstVideoRegionOfInterestMeta) on the buffer, as a crop of the "
          "frame, with a clip/classification param on its meta; or both",
          GST_TYPE_CLIP_CLASSIFY_REGIONS, DEFAULT_REGIONS, playing));
  gst_clip_install_field_property (klass, id++,
      G_STRUCT_OFFSET (GstClipClassify, region.roi_types),
      g_param_spec_string ("roi-types", "ROI types",
          "Comma-separated region of interest types to classify (the "
          "meta's roi_type, e.g. \"person,car\"); NULL or empty = all",
          NULL, playing));
  gst_clip_install_field_property (klass, id++,
      G_STRUCT_OFFSET (GstClipClassify, region.padding),
      g_param_spec_double ("region-padding", "Region padding",
          "Widen each region's crop by this fraction of its width and "
          "height on every side (clamped to the frame), for context",
          0.0, MAX_REGION_PADDING, DEFAULT_REGION_PADDING, playing));
  gst_clip_install_field_property (klass, id++,
      G_STRUCT_OFFSET (GstClipClassify, region.min_size),
      g_param_spec_uint ("region-min-size", "Region minimum size",
          "Regions narrower or lower than this many pixels (inside the "
          "frame) are not classified",
          1, G_MAXINT, DEFAULT_REGION_MIN_SIZE, playing));
  gst_clip_install_field_property (klass, id++,
      G_STRUCT_OFFSET (GstClipClassify, region.interval),
      g_param_spec_uint64 ("region-interval", "Region interval",
          "Per ROI id: nanoseconds (of buffer timestamps) during which a "
          "region classified once reuses its result; 0 = classify every "
          "analysed frame's regions",
          0, G_MAXUINT64, DEFAULT_REGION_INTERVAL, playing));
  gst_type_mark_as_plugin_api (GST_TYPE_CLIP_CLASSIFY_REGIONS, 0);
}

void
gst_clip_classify_regions_init (GstClipClassify *self)
{
  self->region.mode = DEFAULT_REGIONS;
  self->region.padding = DEFAULT_REGION_PADDING;
  self->region.min_size = DEFAULT_REGION_MIN_SIZE;
  self->region.interval = DEFAULT_REGION_INTERVAL;
}

void
gst_clip_classify_regions_finalize (GstClipClassify *self)
{
  g_free (self->region.roi_types);
}
