/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The label segmenter shared by clipclassify and clipexport. */
#include "segmenter.h"

#define S(x) ((ClipTime) (x) *CLIP_SECOND)

/* Pushes a frame [t, t + 1 s) and returns whether it ended a segment. */
static gboolean
push (ClipSegmenter *s, const char *label, int t, double score,
    ClipTime min_segment, ClipSegment *ended)
{
  return clip_segmenter_push (s, label, S (t), S (t + 1), score, min_segment,
      ended);
}

static void
assert_segment (ClipSegment *seg, const char *label, ClipTime start,
    ClipTime end, double mean_score)
{
  g_assert_cmpstr (seg->label, ==, label);
  g_assert_cmpuint (seg->start, ==, start);
  g_assert_cmpuint (seg->end, ==, end);
  g_assert_cmpfloat_with_epsilon (seg->mean_score, mean_score, 1e-12);
  clip_segment_clear (seg);
}

/* A change announced once the new label has held min_segment; the old
 * segment ends where the new one starts; the last one at finish. */
static void
test_change (void)
{
  ClipSegmenter s = { 0 };
  ClipSegment seg;
  g_assert_false (push (&s, "cat", 0, 0.5, S (2), &seg));
  g_assert_false (push (&s, "cat", 1, 0.7, S (2), &seg));
  g_assert_false (push (&s, "dog", 2, 0.9, S (2), &seg)); /* held 1 s */
  g_assert_true (push (&s, "dog", 3, 0.8, S (2), &seg));  /* held 2 s */
  assert_segment (&seg, "cat", S (0), S (2), 0.6);
  g_assert_false (push (&s, "dog", 4, 0.7, S (2), &seg));
  g_assert_true (clip_segmenter_finish (&s, CLIP_TIME_NONE, &seg));
  assert_segment (&seg, "dog", S (2), S (5), 0.8);
  g_assert_false (clip_segmenter_finish (&s, CLIP_TIME_NONE, &seg));
}

/* A flicker shorter than min_segment belongs to the current segment, which
 * goes on past it; a different flicker restarts the candidate. */
static void
test_flicker (void)
{
  ClipSegmenter s = { 0 };
  ClipSegment seg;
  g_assert_false (push (&s, "cat", 0, 0.5, S (3), &seg));
  g_assert_false (push (&s, "dog", 1, 0.9, S (3), &seg));
  g_assert_false (push (&s, "bird", 2, 0.9, S (3), &seg));
  g_assert_false (push (&s, "bird", 3, 0.9, S (3), &seg));
  g_assert_false (push (&s, "cat", 4, 0.7, S (3), &seg));
  g_assert_true (clip_segmenter_finish (&s, CLIP_TIME_NONE, &seg));
  assert_segment (&seg, "cat", S (0), S (5), 0.6);
}

/* min-segment 0 announces every change; no label is a label like others. */
static void
test_every_change (void)
{
  ClipSegmenter s = { 0 };
  ClipSegment seg;
  g_assert_false (push (&s, "cat", 0, 0.5, 0, &seg));
  g_assert_true (push (&s, NULL, 1, 0.0, 0, &seg));
  assert_segment (&seg, "cat", S (0), S (1), 0.5);
  g_assert_true (push (&s, "cat", 2, 0.25, 0, &seg));
  assert_segment (&seg, NULL, S (1), S (2), 0.0);
  g_assert_true (clip_segmenter_finish (&s, CLIP_TIME_NONE, &seg));
  assert_segment (&seg, "cat", S (2), S (3), 0.25);
}

/* At finish the segment ends at the latest known end: a pending label's, or
 * the stream's. */
static void
test_finish_end (void)
{
  ClipSegmenter s = { 0 };
  ClipSegment seg;
  push (&s, "cat", 0, 0.5, S (5), &seg);
  push (&s, "dog", 1, 0.5, S (5), &seg);
  g_assert_true (clip_segmenter_finish (&s, CLIP_TIME_NONE, &seg));
  assert_segment (&seg, "cat", S (0), S (2), 0.5);

  push (&s, "cat", 0, 0.5, S (5), &seg);
  g_assert_true (clip_segmenter_finish (&s, S (10), &seg));
  assert_segment (&seg, "cat", S (0), S (10), 0.5);
}

/* Frames without times: a change cannot wait for min-segment and is
 * announced at once; an unknown end never replaces a known one. */
static void
test_unknown_times (void)
{
  ClipSegmenter s = { 0 };
  ClipSegment seg;
  const ClipTime none = CLIP_TIME_NONE;
  g_assert_false (
      clip_segmenter_push (&s, "cat", S (0), S (1), 1.0, S (5), &seg));
  g_assert_false (
      clip_segmenter_push (&s, "cat", none, none, 1.0, S (5), &seg));
  g_assert_true (clip_segmenter_push (&s, "dog", none, none, 1.0, S (5), &seg));
  assert_segment (&seg, "cat", S (0), none, 1.0);
  g_assert_true (clip_segmenter_finish (&s, S (4), &seg));
  assert_segment (&seg, "dog", none, S (4), 1.0);
}

/* A reset forgets the open segment. */
static void
test_reset (void)
{
  ClipSegmenter s = { 0 };
  ClipSegment seg;
  push (&s, "cat", 0, 0.5, S (1), &seg);
  push (&s, "dog", 1, 0.5, S (5), &seg);
  clip_segmenter_reset (&s);
  g_assert_false (clip_segmenter_finish (&s, S (9), &seg));
  g_assert_false (push (&s, "bird", 7, 0.5, 0, &seg));
  g_assert_true (clip_segmenter_finish (&s, CLIP_TIME_NONE, &seg));
  assert_segment (&seg, "bird", S (7), S (8), 0.5);
}

/* hold: frames after the last pushed one kept its label (clipclassify's
 * change-threshold): a candidate that held long enough through them is
 * announced, as if each had been pushed; the current run is extended. */
static void
test_hold (void)
{
  ClipSegmenter s = { 0 };
  ClipSegment seg;
  g_assert_false (clip_segmenter_hold (&s, S (1), S (2), &seg));
  g_assert_false (push (&s, "cat", 0, 0.5, S (2), &seg));
  g_assert_false (clip_segmenter_hold (&s, S (5), S (2), &seg));
  g_assert_false (push (&s, "dog", 5, 0.9, S (2), &seg)); /* held 1 s */
  g_assert_false (clip_segmenter_hold (&s, S (6), S (2), &seg));
  g_assert_true (clip_segmenter_hold (&s, S (7), S (2), &seg)); /* 2 s */
  assert_segment (&seg, "cat", S (0), S (5), 0.5);
  g_assert_false (clip_segmenter_hold (&s, S (9), S (2), &seg));
  g_assert_true (clip_segmenter_finish (&s, CLIP_TIME_NONE, &seg));
  assert_segment (&seg, "dog", S (5), S (9), 0.9);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/segmenter/change", test_change);
  g_test_add_func ("/segmenter/flicker", test_flicker);
  g_test_add_func ("/segmenter/every-change", test_every_change);
  g_test_add_func ("/segmenter/finish-end", test_finish_end);
  g_test_add_func ("/segmenter/unknown-times", test_unknown_times);
  g_test_add_func ("/segmenter/reset", test_reset);
  g_test_add_func ("/segmenter/hold", test_hold);
  return g_test_run ();
}
