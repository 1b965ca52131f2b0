/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clipclassify's regions of interest: which GstVideoRegionOfInterestMeta
 * of a frame are classified (types, size, padding, the per-id rate limit
 * and change check), their crops as ClipFrames into the frame's own
 * bytes, the per-id tracks that keep each region's last result, and the
 * results on the buffer (a "clip/classification" param on each ROI meta,
 * the GstClipMeta's region entries) and on the bus. Private to the
 * element, like gstclipclassifyschedule.h. */
#pragma once

#include "gstclipclassify.h"
#include "gstclipmeta.h"
#include "change.h"
#include "classifier.h"

#include <clip.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

typedef enum {
  GST_CLIP_CLASSIFY_REGIONS_FRAME,
  GST_CLIP_CLASSIFY_REGIONS_ROIS,
  GST_CLIP_CLASSIFY_REGIONS_BOTH,
} GstClipClassifyRegions;

#define GST_TYPE_CLIP_CLASSIFY_REGIONS (gst_clip_classify_regions_get_type ())
GType gst_clip_classify_regions_get_type (void);

/* Regions of one frame classified at most: the first ones in the
 * buffer's meta order; the others are left out, with a WARNING once. */
#define GST_CLIP_CLASSIFY_MAX_REGIONS 64

/* The name of the param each classified ROI meta receives. */
#define GST_CLIP_CLASSIFY_REGION_PARAM "clip/classification"

/* gstclipclassifyschedule.h's: an analysed frame's times. */
typedef struct _FrameTimes FrameTimes;

/* A region chosen to be encoded with its frame. */
typedef struct {
  gint id;
  ClipRect roi;    /* the ROI clamped to the frame, as results report it */
  ClipRect crop;   /* the ROI padded, clamped, what the encoder sees */
  guint64 skipped; /* frames its change check held back before */
} RegionCrop;

/* The regions a frame sends to the encoder, and their raw embeddings
 * [crops->len, embed_dim] once encoded. */
typedef struct {
  GArray *crops; /* RegionCrop; NULL: none */
  float *embeddings;
} FrameRegions;

void frame_regions_clear (FrameRegions *regions);

/* The element's regions properties and the state between start and stop;
 * under the element's lock. */
typedef struct {
  GstClipClassifyRegions mode;
  char *roi_types; /* comma-separated GQuark names; NULL or "": all */
  gdouble padding;
  guint min_size;
  GstClockTime interval;

  GHashTable *tracks; /* ROI id -> RegionTrack */
  guint64 serial;     /* of the last frame selected from */
  guint warned;       /* RegionProblem bits already warned about */
} GstClipClassifyRegionState;

/* The properties' defaults (instance init), and their memory
 * (finalize). */
void gst_clip_classify_regions_init (GstClipClassify *self);
void gst_clip_classify_regions_finalize (GstClipClassify *self);
void gst_clip_classify_regions_start (GstClipClassify *self);
void gst_clip_classify_regions_stop (GstClipClassify *self);
/* A flush: every region is classified afresh. */
void gst_clip_classify_regions_reset (GstClipClassify *self);
/* Installs regions, roi-types, region-padding, region-min-size and
 * region-interval as the property ids first_prop_id to first_prop_id + 4. */
void gst_clip_classify_regions_install_properties (GObjectClass *klass,
    guint first_prop_id);

/* The regions of a frame to encode now (FALSE when regions are off): the
 * ROIs of the buffer that pass the type and size filters and whose id was
 * not classified within region-interval, nor found unchanged by the change
 * check; their tracks are created. Tracks of ids that are not on the
 * buffer expire. Streaming thread, without the lock. */
gboolean gst_clip_classify_regions_select (GstClipClassify *self,
    GstBuffer *buffer, const GstVideoInfo *info, const ClipFrame *frame,
    FrameRegions *regions);

/* The crops as frames into frame's bytes, appended to frames. */
void gst_clip_classify_regions_frames (const FrameRegions *regions,
    const ClipFrame *frame, GArray *frames);

/* After the encoder: each region's result, kept by its track, and its bus
 * message added to messages. Called with the lock held. */
void gst_clip_classify_regions_analysed (GstClipClassify *self,
    const FrameRegions *regions, const FrameTimes *times, GPtrArray *messages);

/* Live mode: the regions of a frame that a newer one replaced before the
 * worker took it; their ids are selected again at the next frame that has
 * them, whatever region-interval and the change check say. Called with
 * the lock held. */
void gst_clip_classify_regions_dropped (GstClipClassify *self,
    const FrameRegions *regions);

/* Puts the tracks' results on buffer (writable): a param on each of its
 * ROI metas that has one, and a region entry on meta (made when NULL and
 * there is a result, without labels of its own). Called with the lock
 * held. */
void gst_clip_classify_regions_attach (GstClipClassify *self, GstBuffer *buffer,
    GstClipMeta *meta);

G_END_DECLS
