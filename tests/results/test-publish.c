/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clippublish's results core: when a stream's state changes and when that
 * is an event (min-segment, min-score, cooldown), the documents as text,
 * and their topics. */
#include "publish.h"

#define S(x) ((ClipTime) (x) *CLIP_SECOND)

/* Pushes a frame [t, t + 1 s) whose top label has score; returns whether
 * the state changed. */
static gboolean
push (ClipEventTracker *t, const char *label, int second, double score,
    ClipTime min_segment, double min_score, ClipTime cooldown,
    ClipStateChange *change)
{
  const char *labels[] = { label };
  double scores[] = { score };
  ClipFrameRecord frame = {
    .pts = S (second),
    .duration = S (1),
    .n_labels = label ? 1 : 0,
    .labels = labels,
    .scores = scores,
    .top_label = label,
    .top_score = label ? score : 0.0,
  };
  return clip_event_tracker_push (t, &frame, min_segment, min_score, cooldown,
      change);
}

static void
assert_change (ClipStateChange *c, const char *label, const char *previous,
    ClipTime start, double score, gboolean event)
{
  g_assert_cmpstr (c->label, ==, label);
  g_assert_cmpstr (c->previous, ==, previous);
  g_assert_cmpuint (c->start, ==, start);
  g_assert_cmpfloat_with_epsilon (c->score, score, 1e-12);
  g_assert_cmpint (c->event, ==, event);
  clip_state_change_clear (c);
}

/* The stream starts with no label: the first label must hold min-segment
 * too, then is an event; a flicker is not; the change back is. */
static void
test_hold (void)
{
  ClipEventTracker t;
  ClipStateChange c = { 0 };
  clip_event_tracker_init (&t);
  g_assert_false (push (&t, "cat", 0, 0.5, S (2), 0.0, 0, &c));
  g_assert_true (push (&t, "cat", 1, 0.7, S (2), 0.0, 0, &c));
  assert_change (&c, "cat", NULL, S (0), 0.6, TRUE);
  g_assert_false (push (&t, "dog", 2, 0.9, S (2), 0.0, 0, &c));
  g_assert_false (push (&t, "cat", 3, 0.9, S (2), 0.0, 0, &c));
  g_assert_false (push (&t, "dog", 4, 0.9, S (2), 0.0, 0, &c));
  g_assert_true (push (&t, "dog", 5, 0.7, S (2), 0.0, 0, &c));
  assert_change (&c, "dog", "cat", S (4), 0.8, TRUE);
  clip_event_tracker_clear (&t);
}

/* Frames below min-score count as no label: the state goes to none (not
 * an event), and the label's return is an event again. */
static void
test_min_score (void)
{
  ClipEventTracker t;
  ClipStateChange c = { 0 };
  clip_event_tracker_init (&t);
  g_assert_true (push (&t, "cat", 0, 0.9, 0, 0.5, 0, &c));
  assert_change (&c, "cat", NULL, S (0), 0.9, TRUE);
  g_assert_true (push (&t, "cat", 1, 0.4, 0, 0.5, 0, &c));
  assert_change (&c, NULL, "cat", S (1), 0.0, FALSE);
  g_assert_false (push (&t, NULL, 2, 0.0, 0, 0.5, 0, &c));
  g_assert_true (push (&t, "cat", 3, 0.5, 0, 0.5, 0, &c));
  assert_change (&c, "cat", NULL, S (3), 0.5, TRUE);
  clip_event_tracker_clear (&t);
}

/* The same label fires again only cooldown after its last event; the
 * state changes all the same; another label is not held back. A reset
 * forgets the cooldowns. */
static void
test_cooldown (void)
{
  ClipEventTracker t;
  ClipStateChange c = { 0 };
  clip_event_tracker_init (&t);
  g_assert_true (push (&t, "cat", 0, 0.9, 0, 0.0, S (10), &c));
  assert_change (&c, "cat", NULL, S (0), 0.9, TRUE);
  g_assert_true (push (&t, "dog", 1, 0.9, 0, 0.0, S (10), &c));
  assert_change (&c, "dog", "cat", S (1), 0.9, TRUE);
  g_assert_true (push (&t, "cat", 2, 0.9, 0, 0.0, S (10), &c));
  assert_change (&c, "cat", "dog", S (2), 0.9, FALSE);
  g_assert_true (push (&t, "dog", 9, 0.9, 0, 0.0, S (10), &c));
  assert_change (&c, "dog", "cat", S (9), 0.9, FALSE);
  g_assert_true (push (&t, "cat", 10, 0.9, 0, 0.0, S (10), &c));
  assert_change (&c, "cat", "dog", S (10), 0.9, TRUE);
  clip_event_tracker_reset (&t);
  g_assert_true (push (&t, "cat", 0, 0.9, 0, 0.0, S (10), &c));
  assert_change (&c, "cat", NULL, S (0), 0.9, TRUE);
  clip_event_tracker_clear (&t);
}

/* One document of each type, as text. */
static void
test_documents (void)
{
  /* 2026-12-02T13:05:09.000042Z */
  ClipDocumentHeader h = { "cam \"1\"", 7, 1796216709000042 };
  const char *labels[] = { "a dog", "a cat" };
  double scores[] = { 0.75, 0.25 };
  ClipFrameRecord frame = { S (3) / 2, S (1) / 25, 2, labels, scores, "a dog",
    0.75 };
  g_autoptr (GString) s = g_string_new (NULL);

  clip_document_append_result (s, &h, &frame);
  g_assert_cmpstr (s->str, ==,
      "{\"type\":\"result\",\"stream\":\"cam \\\"1\\\"\",\"seq\":7,"
      "\"time\":\"2026-12-02T13:05:09.000042Z\",\"pts\":1.5,"
      "\"duration\":0.04,\"labels\":[\"a dog\",\"a cat\"],"
      "\"scores\":[0.75,0.25],\"top\":\"a dog\",\"top-score\":0.75}");

  ClipStateChange change = { "a dog", NULL, S (12), 0.5, TRUE };
  g_string_truncate (s, 0);
  clip_document_append_change (s, CLIP_DOCUMENT_EVENT, &h, &change);
  g_assert_cmpstr (s->str, ==,
      "{\"type\":\"event\",\"stream\":\"cam \\\"1\\\"\",\"seq\":7,"
      "\"time\":\"2026-12-02T13:05:09.000042Z\",\"label\":\"a dog\","
      "\"score\":0.5,\"start\":12.0,\"previous\":null}");

  ClipStateChange none = { NULL, "a dog", S (13), 0.0, FALSE };
  g_string_truncate (s, 0);
  clip_document_append_change (s, CLIP_DOCUMENT_STATE, &h, &none);
  g_assert_cmpstr (s->str, ==,
      "{\"type\":\"state\",\"stream\":\"cam \\\"1\\\"\",\"seq\":7,"
      "\"time\":\"2026-12-02T13:05:09.000042Z\",\"label\":null,"
      "\"score\":null,\"start\":13.0,\"previous\":\"a dog\"}");

  ClipDocumentHeader will = { "cam", CLIP_DOCUMENT_NO_SEQUENCE, -1 };
  g_string_truncate (s, 0);
  clip_document_append_status (s, &will, FALSE);
  g_assert_cmpstr (s->str, ==,
      "{\"type\":\"status\",\"stream\":\"cam\",\"status\":\"offline\"}");
}

static void
test_topics (void)
{
  g_autofree char *event = clip_document_topic ("site/{name}", "cam1", "a dog",
      CLIP_DOCUMENT_EVENT);
  g_assert_cmpstr (event, ==, "site/cam1/event");
  g_autofree char *label = clip_document_topic ("s/{name}/{label}", "a/b+#",
      "x/y", CLIP_DOCUMENT_STATE);
  g_assert_cmpstr (label, ==, "s/a_b__/x_y/state");
  g_autofree char *none = clip_document_topic ("{label}", "cam", NULL,
      CLIP_DOCUMENT_STATUS);
  g_assert_cmpstr (none, ==, "none/status");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/publish/hold", test_hold);
  g_test_add_func ("/publish/min-score", test_min_score);
  g_test_add_func ("/publish/cooldown", test_cooldown);
  g_test_add_func ("/publish/documents", test_documents);
  g_test_add_func ("/publish/topics", test_topics);
  return g_test_run ();
}
