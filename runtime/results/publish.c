/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "publish.h"
#include "json.h"

#include <string.h>

static const char *const type_names[CLIP_N_DOCUMENT_TYPES] = {
  [CLIP_DOCUMENT_EVENT] = "event",
  [CLIP_DOCUMENT_STATE] = "state",
  [CLIP_DOCUMENT_RESULT] = "result",
  [CLIP_DOCUMENT_STATUS] = "status",
};

const char *
clip_document_type_name (ClipDocumentType type)
{
  g_return_val_if_fail (type < CLIP_N_DOCUMENT_TYPES, NULL);
  return type_names[type];
}

/* ----------------------------------------------------------------- events */

void
clip_state_change_clear (ClipStateChange *change)
{
  g_clear_pointer (&change->label, g_free);
  g_clear_pointer (&change->previous, g_free);
}

void
clip_event_tracker_init (ClipEventTracker *tracker)
{
  memset (&tracker->segmenter, 0, sizeof tracker->segmenter);
  tracker->last_event = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);
}

void
clip_event_tracker_clear (ClipEventTracker *tracker)
{
  clip_segmenter_reset (&tracker->segmenter);
  g_clear_pointer (&tracker->last_event, g_hash_table_unref);
}

void
clip_event_tracker_reset (ClipEventTracker *tracker)
{
  clip_segmenter_reset (&tracker->segmenter);
  g_hash_table_remove_all (tracker->last_event);
}

/* Whether label may fire at start: its last event is at least cooldown
 * before (or unknown, or later, as after times went back). */
static gboolean
cooled_down (ClipEventTracker *tracker, const char *label, ClipTime start,
    ClipTime cooldown)
{
  const ClipTime *last = g_hash_table_lookup (tracker->last_event, label);
  if (last == NULL || !CLIP_TIME_IS_VALID (start) || !CLIP_TIME_IS_VALID (*last)
      || start < *last)
    return TRUE;
  return start - *last >= cooldown;
}

gboolean
clip_event_tracker_push (ClipEventTracker *tracker,
    const ClipFrameRecord *frame, ClipTime min_segment, double min_score,
    ClipTime cooldown, ClipStateChange *change)
{
  ClipSegmenter *segmenter = &tracker->segmenter;
  const char *label = frame->top_label;
  if (label != NULL && frame->top_score < min_score)
    label = NULL;

  ClipTime start = frame->pts, end = frame->pts;
  if (CLIP_TIME_IS_VALID (start) && CLIP_TIME_IS_VALID (frame->duration))
    end = start + frame->duration;

  ClipSegment ended = { 0 };
  /* The stream starts with no label: the first label must hold too. */
  if (!segmenter->current.open)
    clip_segmenter_push (segmenter, NULL, start, start, 0.0, min_segment,
        &ended);
  if (!clip_segmenter_push (segmenter, label, start, end,
          label != NULL ? frame->top_score : 0.0, min_segment, &ended))
    return FALSE;

  const ClipLabelRun *now = &segmenter->current;
  change->previous = g_steal_pointer (&ended.label);
  change->label = g_strdup (now->label);
  change->start = now->start;
  change->score = now->n ? now->score_sum / now->n : 0.0;
  change->event = change->label != NULL
      && cooled_down (tracker, change->label, change->start, cooldown);
  if (change->event) {
    ClipTime *at = g_new (ClipTime, 1);
    *at = change->start;
    g_hash_table_insert (tracker->last_event, g_strdup (change->label), at);
  }
  return TRUE;
}

/* -------------------------------------------------------------- documents */

/* ISO 8601 in UTC to the microsecond: "2026-12-02T13:05:09.123456Z". */
static void
append_wall_clock (GString *s, gint64 microseconds)
{
  g_autoptr (GDateTime) t = g_date_time_new_from_unix_utc (
      microseconds / G_USEC_PER_SEC);
  g_autofree char *text = g_date_time_format (t, "%Y-%m-%dT%H:%M:%S");
  g_string_append_printf (s, "\"%s.%06dZ\"", text,
      (int) (microseconds % G_USEC_PER_SEC));
}

/* {"type":...,"stream":...,"seq":...,"time":... */
static void
open_document (GString *s, ClipDocumentType type,
    const ClipDocumentHeader *header)
{
  g_string_append_c (s, '{');
  clip_field_append_json_member (s, CLIP_FIELD_TYPE);
  clip_json_append_string (s, clip_document_type_name (type));
  clip_field_append_json_member (s, CLIP_FIELD_STREAM);
  clip_json_append_string (s, header->stream);
  if (header->sequence != CLIP_DOCUMENT_NO_SEQUENCE) {
    clip_field_append_json_member (s, CLIP_FIELD_SEQUENCE);
    g_string_append_printf (s, "%" G_GUINT64_FORMAT, header->sequence);
  }
  if (header->time >= 0) {
    clip_field_append_json_member (s, CLIP_FIELD_TIME);
    append_wall_clock (s, header->time);
  }
}

void
clip_document_append_result (GString *s, const ClipDocumentHeader *header,
    const ClipFrameRecord *frame)
{
  open_document (s, CLIP_DOCUMENT_RESULT, header);
  clip_frame_record_append_json_members (s, frame);
  clip_field_append_json_member (s, CLIP_FIELD_TOP_SCORE);
  if (frame->top_label != NULL)
    clip_json_append_double (s, frame->top_score, CLIP_JSON_SCORE_DIGITS);
  else
    g_string_append (s, "null");
  g_string_append_c (s, '}');
}

void
clip_document_append_change (GString *s, ClipDocumentType type,
    const ClipDocumentHeader *header, const ClipStateChange *change)
{
  g_return_if_fail (type == CLIP_DOCUMENT_EVENT || type == CLIP_DOCUMENT_STATE);
  open_document (s, type, header);
  clip_field_append_json_member (s, CLIP_FIELD_LABEL);
  clip_json_append_string (s, change->label);
  clip_field_append_json_member (s, CLIP_FIELD_MEAN_SCORE);
  if (change->label != NULL)
    clip_json_append_double (s, change->score, CLIP_JSON_SCORE_DIGITS);
  else
    g_string_append (s, "null");
  clip_field_append_json_time (s, CLIP_FIELD_START, change->start);
  clip_field_append_json_member (s, CLIP_FIELD_PREVIOUS_LABEL);
  clip_json_append_string (s, change->previous);
  g_string_append_c (s, '}');
}

void
clip_document_append_status (GString *s, const ClipDocumentHeader *header,
    gboolean online)
{
  open_document (s, CLIP_DOCUMENT_STATUS, header);
  clip_field_append_json_member (s, CLIP_FIELD_STATUS);
  clip_json_append_string (s, online ? "online" : "offline");
  g_string_append_c (s, '}');
}

/* ----------------------------------------------------------------- topics */

/* text as one level of a topic. */
static void
append_topic_level (GString *s, const char *text)
{
  for (const char *p = text; *p != '\0'; p++) {
    if (*p == '/' || *p == '+' || *p == '#' || (guchar) *p < 0x20 || *p == 0x7f)
      g_string_append_c (s, '_');
    else
      g_string_append_c (s, *p);
  }
}

char *
clip_document_topic (const char *prefix, const char *name, const char *label,
    ClipDocumentType type)
{
  GString *s = g_string_new (NULL);
  for (const char *p = prefix; *p != '\0';) {
    if (g_str_has_prefix (p, "{name}")) {
      append_topic_level (s, name);
      p += strlen ("{name}");
    } else if (g_str_has_prefix (p, "{label}")) {
      append_topic_level (s, label != NULL ? label : "none");
      p += strlen ("{label}");
    } else
      g_string_append_c (s, *p++);
  }
  g_string_append_c (s, '/');
  g_string_append (s, clip_document_type_name (type));
  return g_string_free (s, FALSE);
}
