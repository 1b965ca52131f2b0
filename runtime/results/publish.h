/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What clippublish publishes, GStreamer-free: the documents (one JSON
 * object each, spelt by json.c with record.c's field names), the events and
 * states a stream's results make, and the topics they go to.
 *
 * A stream's state is its top label once it has held (the segmenter's
 * min_segment), counting only frames whose top score reaches min_score; a
 * frame below it counts as no label. Every change of state is a state
 * document; a change to a label is also an event, unless the same label
 * fired an event less than cooldown before. */
#pragma once

#include "record.h"

typedef enum {
  CLIP_DOCUMENT_EVENT,
  CLIP_DOCUMENT_STATE,
  CLIP_DOCUMENT_RESULT,
  CLIP_DOCUMENT_STATUS,
  CLIP_N_DOCUMENT_TYPES
} ClipDocumentType;

/* "event", "state", "result", "status": the type member's value and the
 * topic's last level. */
const char *clip_document_type_name (ClipDocumentType type);

/* No sequence number (the Last Will, written before anything happened). */
#define CLIP_DOCUMENT_NO_SEQUENCE G_MAXUINT64

/* What every document carries besides its own fields. */
typedef struct {
  const char *stream;
  guint64 sequence; /* the stream's documents counted from 0, or
                     * CLIP_DOCUMENT_NO_SEQUENCE */
  gint64 time;      /* wall clock, microseconds since the Unix epoch
                     * (g_get_real_time), or negative for none */
} ClipDocumentHeader;

/* A stream's change of state. */
typedef struct {
  char *label;    /* the new state: NULL for no label */
  char *previous; /* the state before, NULL for no label */
  ClipTime start; /* pts of the new state's first frame */
  double score;   /* the label's mean probability since start */
  gboolean event; /* a label, and not within cooldown of its last event */
} ClipStateChange;

void clip_state_change_clear (ClipStateChange *change);

typedef struct {
  ClipSegmenter segmenter;
  GHashTable *last_event; /* label -> start of its last event (ClipTime *) */
} ClipEventTracker;

void clip_event_tracker_init (ClipEventTracker *tracker);
/* Frees what the tracker holds; init makes it usable again. */
void clip_event_tracker_clear (ClipEventTracker *tracker);
/* Forgets the state and the cooldowns (after a flush: times restart). */
void clip_event_tracker_reset (ClipEventTracker *tracker);

/* One analysed frame. The stream starts with no label, so the first label
 * to hold is a change. Returns TRUE and fills *change when the state
 * changes; clear it with clip_state_change_clear. */
gboolean clip_event_tracker_push (ClipEventTracker *tracker,
    const ClipFrameRecord *frame, ClipTime min_segment, double min_score,
    ClipTime cooldown, ClipStateChange *change);

/* Append one document, a JSON object without a line break: */
/* {"type":"result",...,"pts":1.5,"duration":0.04,"labels":[...],
 * "scores":[...],"top":"a dog","top-score":0.81} */
void clip_document_append_result (GString *s, const ClipDocumentHeader *header,
    const ClipFrameRecord *frame);
/* {"type":"event" or "state",...,"label":"a dog","score":0.8,"start":1.5,
 * "previous":"a cat"}; type is CLIP_DOCUMENT_EVENT or CLIP_DOCUMENT_STATE */
void clip_document_append_change (GString *s, ClipDocumentType type,
    const ClipDocumentHeader *header, const ClipStateChange *change);
/* {"type":"status",...,"status":"online" or "offline"} */
void clip_document_append_status (GString *s, const ClipDocumentHeader *header,
    gboolean online);

/* The topic of a document: prefix with "{name}" replaced by name and
 * "{label}" by label ("none" when NULL), then "/" and the type's name.
 * In name and label, the characters that MQTT topics reserve ('/', '+',
 * '#') and control characters become '_'. */
char *clip_document_topic (const char *prefix, const char *name,
    const char *label, ClipDocumentType type);
