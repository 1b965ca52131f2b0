/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "record.h"

#include "json.h"

/* One row per field: its name in JSON/CSV, and in a GstStructure. The two
 * differ where the bus messages predate the files; both are kept as users
 * read them today. */
static const struct {
  const char *json, *structure;
} field_names[CLIP_N_FIELDS] = {
  [CLIP_FIELD_PTS] = { "pts", "timestamp" },
  [CLIP_FIELD_DURATION] = { "duration", "duration" },
  [CLIP_FIELD_LABELS] = { "labels", "labels" },
  [CLIP_FIELD_SCORES] = { "scores", "scores" },
  [CLIP_FIELD_TOP_LABEL] = { "top", "top-label" },
  [CLIP_FIELD_TOP_SCORE] = { "top-score", "top-score" },
  [CLIP_FIELD_START] = { "start", "start" },
  [CLIP_FIELD_END] = { "end", "end" },
  [CLIP_FIELD_LABEL] = { "label", "label" },
  [CLIP_FIELD_MEAN_SCORE] = { "score", "mean-score" },
  [CLIP_FIELD_STREAM_TIME] = { "stream-time", "stream-time" },
  [CLIP_FIELD_RUNNING_TIME] = { "running-time", "running-time" },
  [CLIP_FIELD_IMAGE] = { "image", "image" },
  [CLIP_FIELD_TYPE] = { "type", "type" },
  [CLIP_FIELD_STREAM] = { "stream", "stream" },
  [CLIP_FIELD_TIME] = { "time", "time" },
  [CLIP_FIELD_SEQUENCE] = { "seq", "seq" },
  [CLIP_FIELD_STATUS] = { "status", "status" },
  [CLIP_FIELD_PREVIOUS_LABEL] = { "previous", "previous" },
  [CLIP_FIELD_SKIPPED] = { "skipped", "skipped" },
  [CLIP_FIELD_REGIONS] = { "regions", "regions" },
  [CLIP_FIELD_REGION_ID] = { "id", "region-id" },
  [CLIP_FIELD_X] = { "x", "x" },
  [CLIP_FIELD_Y] = { "y", "y" },
  [CLIP_FIELD_WIDTH] = { "width", "width" },
  [CLIP_FIELD_HEIGHT] = { "height", "height" },
};

const char *
clip_field_json_name (ClipField field)
{
  g_return_val_if_fail (field < CLIP_N_FIELDS, NULL);
  return field_names[field].json;
}

const char *
clip_field_structure_name (ClipField field)
{
  g_return_val_if_fail (field < CLIP_N_FIELDS, NULL);
  return field_names[field].structure;
}

void
clip_field_append_json_member (GString *s, ClipField field)
{
  clip_json_append_member (s, clip_field_json_name (field));
}

void
clip_field_append_json_time (GString *s, ClipField field, ClipTime t)
{
  clip_field_append_json_member (s, field);
  if (CLIP_TIME_IS_VALID (t))
    clip_json_append_seconds (s, t);
  else
    g_string_append (s, "null");
}

void
clip_frame_record_append_json_members (GString *s, const ClipFrameRecord *frame)
{
  clip_field_append_json_time (s, CLIP_FIELD_PTS, frame->pts);
  clip_field_append_json_time (s, CLIP_FIELD_DURATION, frame->duration);
  clip_field_append_json_member (s, CLIP_FIELD_LABELS);
  clip_json_append_string_array (s, frame->labels, frame->n_labels);
  clip_field_append_json_member (s, CLIP_FIELD_SCORES);
  clip_json_append_double_array (s, frame->scores, frame->n_labels,
      CLIP_JSON_SCORE_DIGITS);
  clip_field_append_json_member (s, CLIP_FIELD_TOP_LABEL);
  clip_json_append_string (s, frame->top_label);
  if (frame->n_regions == 0)
    return;
  clip_field_append_json_member (s, CLIP_FIELD_REGIONS);
  g_string_append_c (s, '[');
  for (guint r = 0; r < frame->n_regions; r++) {
    const ClipRegionRecord *region = &frame->regions[r];
    g_string_append (s, r > 0 ? ",{" : "{");
    clip_field_append_json_member (s, CLIP_FIELD_REGION_ID);
    g_string_append_printf (s, "%d", region->id);
    clip_field_append_json_member (s, CLIP_FIELD_X);
    g_string_append_printf (s, "%d", region->x);
    clip_field_append_json_member (s, CLIP_FIELD_Y);
    g_string_append_printf (s, "%d", region->y);
    clip_field_append_json_member (s, CLIP_FIELD_WIDTH);
    g_string_append_printf (s, "%d", region->width);
    clip_field_append_json_member (s, CLIP_FIELD_HEIGHT);
    g_string_append_printf (s, "%d", region->height);
    clip_field_append_json_member (s, CLIP_FIELD_LABELS);
    clip_json_append_string_array (s, region->labels, region->n_labels);
    clip_field_append_json_member (s, CLIP_FIELD_SCORES);
    clip_json_append_double_array (s, region->scores, region->n_labels,
        CLIP_JSON_SCORE_DIGITS);
    clip_field_append_json_member (s, CLIP_FIELD_TOP_LABEL);
    clip_json_append_string (s, region->top_label);
    g_string_append_c (s, '}');
  }
  g_string_append_c (s, ']');
}
