/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "segmenter.h"

#include <string.h>

static void
label_run_clear (ClipLabelRun *run)
{
  g_free (run->label);
  memset (run, 0, sizeof *run);
}

static void
label_run_start (ClipLabelRun *run, const char *label, ClipTime start,
    ClipTime end, double score)
{
  label_run_clear (run);
  run->open = TRUE;
  run->label = g_strdup (label);
  run->start = start;
  run->end = end;
  run->score_sum = score;
  run->n = 1;
}

/* The later of two times, an unknown one counting as earliest. */
static ClipTime
latest (ClipTime a, ClipTime b)
{
  if (!CLIP_TIME_IS_VALID (a))
    return b;
  if (!CLIP_TIME_IS_VALID (b))
    return a;
  return MAX (a, b);
}

static void
label_run_extend (ClipLabelRun *run, ClipTime end, double score)
{
  run->end = latest (run->end, end);
  run->score_sum += score;
  run->n++;
}

/* Gives the run's label to the segment. */
static void
segment_take (ClipSegment *segment, ClipLabelRun *run, ClipTime end)
{
  segment->label = g_steal_pointer (&run->label);
  segment->start = run->start;
  segment->end = end;
  segment->mean_score = run->n ? run->score_sum / run->n : 0.0;
}

/* Makes the candidate the current segment once it has held for
 * min_segment; *ended receives the segment it ends. */
static gboolean
promote_candidate (ClipSegmenter *s, ClipTime min_segment, ClipSegment *ended)
{
  ClipLabelRun *cur = &s->current, *cand = &s->candidate;

  /* Without times a change cannot be timed: it is announced at once. */
  if (CLIP_TIME_IS_VALID (cand->start) && CLIP_TIME_IS_VALID (cand->end)
      && cand->end - cand->start < min_segment)
    return FALSE;

  segment_take (ended, cur, cand->start);
  label_run_clear (cur);
  *cur = *cand;
  memset (cand, 0, sizeof *cand);
  return TRUE;
}

void
clip_segment_clear (ClipSegment *segment)
{
  g_clear_pointer (&segment->label, g_free);
}

void
clip_segmenter_reset (ClipSegmenter *s)
{
  label_run_clear (&s->current);
  label_run_clear (&s->candidate);
}

gboolean
clip_segmenter_push (ClipSegmenter *s, const char *label, ClipTime start,
    ClipTime end, double score, ClipTime min_segment, ClipSegment *ended)
{
  ClipLabelRun *cur = &s->current, *cand = &s->candidate;

  if (!cur->open) {
    label_run_start (cur, label, start, end, score);
    return FALSE;
  }
  if (g_strcmp0 (label, cur->label) == 0) {
    label_run_clear (cand);
    label_run_extend (cur, end, score);
    return FALSE;
  }
  if (cand->open && g_strcmp0 (label, cand->label) == 0)
    label_run_extend (cand, end, score);
  else
    label_run_start (cand, label, start, end, score);
  return promote_candidate (s, min_segment, ended);
}

gboolean
clip_segmenter_hold (ClipSegmenter *s, ClipTime end, ClipTime min_segment,
    ClipSegment *ended)
{
  if (!s->candidate.open) {
    if (s->current.open)
      s->current.end = latest (s->current.end, end);
    return FALSE;
  }
  s->candidate.end = latest (s->candidate.end, end);
  return promote_candidate (s, min_segment, ended);
}

gboolean
clip_segmenter_finish (ClipSegmenter *s, ClipTime stream_end, ClipSegment *last)
{
  gboolean open = s->current.open;
  if (open) {
    ClipTime end = s->current.end;
    if (s->candidate.open)
      end = latest (end, s->candidate.end);
    segment_take (last, &s->current, latest (end, stream_end));
  }
  clip_segmenter_reset (s);
  return open;
}
