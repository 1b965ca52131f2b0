/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clipexport: the files it writes, parsed back (json-glib for JSON Lines, a
 * strict parser here for WebVTT and SRT, plus Debian's python3-webvtt when
 * installed), from metas the tests attach themselves. */
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "gstclipmeta.h"
#include "reference.h"

#define FRAME (GST_SECOND / 10)
#define NONE_LABEL (-1)

static const char *const labels[] = { "a dog", "a cat", "a \"quoted\" <bird>" };

static GstClipLabelTable *
table (void)
{
  static GstClipLabelTable *t;
  if (t == NULL)
    t = gst_clip_label_table_new (labels, G_N_ELEMENTS (labels));
  return t;
}

static char *
temp_file (const char *name)
{
  g_autofree char *dir = clip_test_tmpdir ();
  return g_build_filename (dir, name, NULL);
}

static GstHarness *
export_new (const char *location, const char *format, GstClockTime min_segment)
{
  g_autofree char *desc = g_strdup_printf (
      "clipexport location=\"%s\" "
      "format=%s min-segment=%" G_GUINT64_FORMAT,
      location, format, min_segment);
  GstHarness *h = gst_harness_new_parse (desc);
  gst_harness_set_src_caps_str (h,
      "video/x-raw,format=RGBA,width=4,height=4,framerate=10/1");
  return h;
}

/* Pushes frame i (pts i/10 s). top is a label index with probability 0.8
 * (the next label follows with 0.2), or NONE_LABEL for a result without a
 * label. The buffer must come out unchanged. */
static void
push_frame (GstHarness *h, guint i, int top, gboolean fresh)
{
  GstBuffer *in = gst_buffer_new_allocate (NULL, 4 * 4 * 4, NULL);
  gst_buffer_memset (in, 0, 0x42, 4 * 4 * 4);
  GST_BUFFER_PTS (in) = i * FRAME;
  GST_BUFFER_DURATION (in) = FRAME;
  if (top == NONE_LABEL) {
    g_assert_nonnull (gst_buffer_add_clip_meta (in, table (), 0, NULL, NULL,
        NULL, -1, i * FRAME, FRAME, fresh, "test", NULL));
  } else {
    guint indices[] = { top, (top + 1) % G_N_ELEMENTS (labels) };
    float probs[] = { 0.8f, 0.2f }, logits[] = { 2.0f, 0.6f };
    g_assert_nonnull (gst_buffer_add_clip_meta (in, table (), 2, indices, probs,
        logits, 0, i * FRAME, FRAME, fresh, "test", NULL));
  }
  GstBuffer *out = gst_harness_push_and_pull (h, in);
  g_assert_true (out == in);
  g_assert_true (gst_buffer_memcmp (out, 0, "BBBBBBBBBBBBBBBB", 16) == 0);
  gst_buffer_unref (out);
}

/* Pushes one fresh result per frame, tops[i] for frame i. */
static void
push_tops (GstHarness *h, const int *tops, guint n)
{
  for (guint i = 0; i < n; i++)
    push_frame (h, i, tops[i], TRUE);
}

static char *
read_file (const char *path)
{
  char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return text;
}

/* ----------------------------------------------------------- cue parsers */

typedef struct {
  guint64 start_ms, end_ms;
  char *text;
} Cue;

static void
cue_clear (gpointer data)
{
  g_free (((Cue *) data)->text);
}

/* Parses a WebVTT (no cue identifiers) or SRT file strictly: header, timing
 * lines "HH:MM:SS.mmm --> HH:MM:SS.mmm" (',' for SRT) with start < end and
 * cues in time order, not overlapping, each with one or more payload lines
 * and a blank line after. Fails the test on any deviation. */
static GArray *
parse_cues (const char *text, gboolean srt)
{
  g_autoptr (GRegex) timing = g_regex_new (srt
          ? "^(\\d{2,}):([0-5]\\d):([0-5]\\d),(\\d{3}) --> (\\d{2,}):([0-5]\\d):([0-5]\\d),(\\d{3})$"
          : "^(\\d{2,}):([0-5]\\d):([0-5]\\d)\\.(\\d{3}) --> (\\d{2,}):([0-5]\\d):([0-5]\\d)\\.(\\d{3})$",
      0, 0, NULL);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  GArray *cues = g_array_new (FALSE, TRUE, sizeof (Cue));
  g_array_set_clear_func (cues, cue_clear);
  guint i = 0, n = g_strv_length (lines);

  g_assert_true (g_str_has_suffix (text, "\n"));
  if (!srt) {
    g_assert_cmpstr (lines[0], ==, "WEBVTT");
    g_assert_cmpstr (lines[1], ==, "");
    i = 2;
  }
  /* the last element is what follows the final newline: nothing */
  while (i + 1 < n) {
    if (srt) {
      g_autofree char *number = g_strdup_printf ("%u", cues->len + 1);
      g_assert_cmpstr (lines[i], ==, number);
      i++;
    }
    g_autoptr (GMatchInfo) match = NULL;
    g_assert_true (g_regex_match (timing, lines[i], 0, &match));
    guint64 t[8];
    for (int k = 0; k < 8; k++) {
      g_autofree char *field = g_match_info_fetch (match, k + 1);
      t[k] = g_ascii_strtoull (field, NULL, 10);
    }
    Cue cue = {
      .start_ms = ((t[0] * 60 + t[1]) * 60 + t[2]) * 1000 + t[3],
      .end_ms = ((t[4] * 60 + t[5]) * 60 + t[6]) * 1000 + t[7],
    };
    g_assert_cmpuint (cue.start_ms, <, cue.end_ms);
    if (cues->len > 0)
      g_assert_cmpuint (cue.start_ms, >=,
          g_array_index (cues, Cue, cues->len - 1).end_ms);
    i++;
    GString *payload = g_string_new (NULL);
    for (; i < n && lines[i][0] != '\0'; i++) {
      g_assert_null (strstr (lines[i], "-->"));
      if (payload->len > 0)
        g_string_append_c (payload, '\n');
      g_string_append (payload, lines[i]);
    }
    g_assert_cmpuint (payload->len, >, 0);
    g_assert_cmpuint (i, <, n - 1); /* the blank line after the cue */
    i++;
    cue.text = g_string_free (payload, FALSE);
    g_array_append_val (cues, cue);
  }
  return cues;
}

static void
assert_cue (GArray *cues, guint i, guint64 start_ms, guint64 end_ms,
    const char *text)
{
  g_assert_cmpuint (i, <, cues->len);
  Cue *cue = &g_array_index (cues, Cue, i);
  g_assert_cmpuint (cue->start_ms, ==, start_ms);
  g_assert_cmpuint (cue->end_ms, ==, end_ms);
  g_assert_cmpstr (cue->text, ==, text);
}

/* Debian's python3-webvtt, where installed, must read the file too and find
 * the same number of cues. */
static void
check_with_python_webvtt (const char *path, gboolean srt, guint n_cues)
{
  const char *program = srt
      ? "import sys, webvtt; print(len(webvtt.from_srt(sys.argv[1]).captions))"
      : "import sys, webvtt; print(len(webvtt.read(sys.argv[1]).captions))";
  char *probe[] = { "/usr/bin/python3", "-c", "import webvtt", NULL };
  int status = 0;
  if (!g_spawn_sync (NULL, probe, NULL,
          G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
          NULL, NULL, &status, NULL)
      || !g_spawn_check_wait_status (status, NULL)) {
    g_test_message ("python3-webvtt not installed: only the strict parser ran");
    return;
  }
  char *argv[] = { "/usr/bin/python3", "-c", (char *) program, (char *) path,
    NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_true (g_spawn_sync (NULL, argv, NULL, 0, NULL, NULL, &out, &err,
      &status, NULL));
  g_test_message ("python3-webvtt: %s%s", out, err);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_cmpuint (g_ascii_strtoull (out, NULL, 10), ==, n_cues);
}

/* ------------------------------------------------------------------ tests */

static JsonObject *
parse_line (JsonParser *parser, const char *line)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_data (parser, line, -1, &error));
  g_assert_no_error (error);
  return json_node_get_object (json_parser_get_root (parser));
}

static void
test_jsonl (void)
{
  g_autofree char *path = temp_file ("out.jsonl");
  GstHarness *h = export_new (path, "jsonl", 0);
  push_frame (h, 0, 2, TRUE);
  push_frame (h, 1, 2, FALSE); /* carried: not a new analysis */
  push_frame (h, 2, NONE_LABEL, TRUE);
  push_frame (h, 3, 0, TRUE);
  gst_harness_push_event (h, gst_event_new_eos ());
  gst_harness_teardown (h);

  g_autofree char *text = read_file (path);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 4);
  g_assert_cmpstr (lines[3], ==, "");
  g_autoptr (JsonParser) parser = json_parser_new ();

  JsonObject *o = parse_line (parser, lines[0]);
  g_assert_cmpfloat (json_object_get_double_member (o, "pts"), ==, 0.0);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (o, "duration"),
      0.1, 1e-12);
  JsonArray *names = json_object_get_array_member (o, "labels");
  JsonArray *scores = json_object_get_array_member (o, "scores");
  g_assert_cmpuint (json_array_get_length (names), ==, 2);
  g_assert_cmpstr (json_array_get_string_element (names, 0), ==, labels[2]);
  g_assert_cmpstr (json_array_get_string_element (names, 1), ==, labels[0]);
  g_assert_cmpfloat_with_epsilon (json_array_get_double_element (scores, 0),
      0.8, 1e-6);
  g_assert_cmpfloat_with_epsilon (json_array_get_double_element (scores, 1),
      0.2, 1e-6);
  g_assert_cmpstr (json_object_get_string_member (o, "top"), ==, labels[2]);

  o = parse_line (parser, lines[1]);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (o, "pts"), 0.2,
      1e-12);
  g_assert_cmpuint (
      json_array_get_length (json_object_get_array_member (o, "labels")), ==,
      0);
  g_assert_true (json_object_get_null_member (o, "top"));

  o = parse_line (parser, lines[2]);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (o, "pts"), 0.3,
      1e-12);
  g_assert_cmpstr (json_object_get_string_member (o, "top"), ==, "a dog");
}

static void
test_webvtt (void)
{
  g_autofree char *path = temp_file ("out.vtt");
  GstHarness *h = export_new (path, "webvtt", 0);
  const int tops[] = { 0, 0, 1, 1, 1, NONE_LABEL, 2 };
  push_tops (h, tops, G_N_ELEMENTS (tops));
  gst_harness_push_event (h, gst_event_new_eos ());
  gst_harness_teardown (h);

  g_autofree char *text = read_file (path);
  g_test_message ("%s", text);
  g_autoptr (GArray) cues = parse_cues (text, FALSE);
  g_assert_cmpuint (cues->len, ==, 3);
  assert_cue (cues, 0, 0, 200, "a dog (0.80)");
  assert_cue (cues, 1, 200, 500, "a cat (0.80)");
  /* markup characters escaped; the last segment closed at EOS */
  assert_cue (cues, 2, 600, 700, "a \"quoted\" &lt;bird&gt; (0.80)");
  check_with_python_webvtt (path, FALSE, 3);
}

/* A label that holds for less than min-segment belongs to the segment
 * around it. */
static void
test_min_segment (void)
{
  g_autofree char *path = temp_file ("out.vtt");
  GstHarness *h = export_new (path, "webvtt", 150 * GST_MSECOND);
  const int tops[] = { 0, 0, 1, 0, 0, 1, 1, 1 };
  push_tops (h, tops, G_N_ELEMENTS (tops));
  gst_harness_push_event (h, gst_event_new_eos ());
  gst_harness_teardown (h);

  g_autofree char *text = read_file (path);
  g_autoptr (GArray) cues = parse_cues (text, FALSE);
  g_assert_cmpuint (cues->len, ==, 2);
  assert_cue (cues, 0, 0, 500, "a dog (0.80)");
  assert_cue (cues, 1, 500, 800, "a cat (0.80)");
}

static void
test_srt (void)
{
  g_autofree char *path = temp_file ("out.srt");
  GstHarness *h = export_new (path, "srt", 0);
  const int tops[] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 };
  push_tops (h, tops, G_N_ELEMENTS (tops));
  gst_harness_push_event (h, gst_event_new_eos ());
  gst_harness_teardown (h);

  g_autofree char *text = read_file (path);
  g_test_message ("%s", text);
  g_assert_true (g_str_has_prefix (text, "1\n00:00:00,000 --> 00:00:01,200\n"));
  g_autoptr (GArray) cues = parse_cues (text, TRUE);
  g_assert_cmpuint (cues->len, ==, 2);
  assert_cue (cues, 0, 0, 1200, "a cat (0.80)");
  assert_cue (cues, 1, 1200, 1300, "a dog (0.80)");
  check_with_python_webvtt (path, TRUE, 2);
}

static void
test_csv (void)
{
  g_autofree char *path = temp_file ("out.csv");
  GstHarness *h = export_new (path, "csv", 0);
  const int tops[] = { 2, 2, 0 };
  push_tops (h, tops, G_N_ELEMENTS (tops));
  gst_harness_push_event (h, gst_event_new_eos ());
  gst_harness_teardown (h);

  g_autofree char *text = read_file (path);
  g_assert_cmpstr (text, ==,
      "start,end,label,score\n"
      "0.0,0.2,\"a \"\"quoted\"\" <bird>\",0.8000\n"
      "0.2,0.3,\"a dog\",0.8000\n");
}

/* One page, written at EOS and not again when the element stops, with the
 * segments in its table and the label escaped. */
static void
test_html (void)
{
  g_autofree char *path = temp_file ("out.html");
  GstHarness *h = export_new (path, "html", 0);
  const int tops[] = { 2, 2, 0 };
  push_tops (h, tops, G_N_ELEMENTS (tops));
  gst_harness_push_event (h, gst_event_new_eos ());
  gst_harness_teardown (h);

  g_autofree char *text = read_file (path);
  g_assert_true (g_str_has_prefix (text, "<!DOCTYPE html>\n"));
  g_assert_null (strstr (text + 1, "<!DOCTYPE"));
  g_assert_nonnull (strstr (text,
      "<bdi>a &quot;quoted&quot; &lt;bird&gt;</bdi></td><td class=\"num\" "
      "data-v=\"0.8000\">"));
  g_assert_nonnull (strstr (text,
      "<tr><td class=\"num\" data-v=\"0.200\">0:00:00.200</td>"
      "<td class=\"num\" data-v=\"0.300\">0:00:00.300</td>"));
  g_assert_null (strstr (text, "<bird>"));
}

/* A line per segment, the stretch without a label included; the same bytes
 * as gst-clip annotate --format jsonl-segments (tests/tools/test-annotate.sh
 * compares the two on a video). */
static void
test_jsonl_segments (void)
{
  g_autofree char *path = temp_file ("out.jsonl");
  GstHarness *h = export_new (path, "jsonl-segments", 0);
  const int tops[] = { 0, 0, 1, NONE_LABEL, 2 };
  push_tops (h, tops, G_N_ELEMENTS (tops));
  gst_harness_push_event (h, gst_event_new_eos ());
  gst_harness_teardown (h);

  g_autofree char *text = read_file (path);
  g_assert_cmpstr (text, ==,
      "{\"start\":0.0,\"end\":0.2,\"label\":\"a dog\",\"score\":0.8}\n"
      "{\"start\":0.2,\"end\":0.3,\"label\":\"a cat\",\"score\":0.8}\n"
      "{\"start\":0.3,\"end\":0.4,\"label\":null,\"score\":0.0}\n"
      "{\"start\":0.4,\"end\":0.5,"
      "\"label\":\"a \\\"quoted\\\" <bird>\",\"score\":0.8}\n");
}

/* The names in dir that start with '.': clipexport's temporary files. */
static guint
count_hidden_files (const char *dir_path)
{
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  guint n = 0;
  const char *name;
  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    n += name[0] == '.';
  return n;
}

/* The file is written in full or not at all: while the stream runs and
 * after a stop without EOS (an errored pipeline stops so), location keeps
 * what it held and the temporary file goes away; at EOS it is replaced by
 * the whole new file. */
static void
test_written_at_eos (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *jsonl = g_build_filename (dir, "kept.jsonl", NULL);
  g_autofree char *vtt = g_build_filename (dir, "kept.vtt", NULL);
  const char old[] = "the old contents\n";
  g_assert_true (g_file_set_contents (jsonl, old, -1, NULL));
  g_assert_true (g_file_set_contents (vtt, old, -1, NULL));
  guint hidden_before = count_hidden_files (dir);

  for (int with_eos = 0; with_eos <= 1; with_eos++) {
    GstHarness *hj = export_new (jsonl, "jsonl", 0);
    GstHarness *hv = export_new (vtt, "webvtt", 0);
    for (guint i = 0; i < 15; i++) {
      push_frame (hj, i, 0, TRUE);
      push_frame (hv, i, i < 5 ? 0 : 1, TRUE);
    }
    g_autofree char *during = read_file (jsonl);
    g_assert_cmpstr (during, ==, old);
    g_assert_cmpuint (count_hidden_files (dir), ==, hidden_before + 2);
    if (with_eos) {
      gst_harness_push_event (hj, gst_event_new_eos ());
      gst_harness_push_event (hv, gst_event_new_eos ());
    }
    gst_harness_teardown (hv);
    gst_harness_teardown (hj);
    g_assert_cmpuint (count_hidden_files (dir), ==, hidden_before);
    if (!with_eos) {
      g_autofree char *kept_jsonl = read_file (jsonl);
      g_autofree char *kept_vtt = read_file (vtt);
      g_assert_cmpstr (kept_jsonl, ==, old);
      g_assert_cmpstr (kept_vtt, ==, old);
    }
  }

  g_autofree char *text = read_file (jsonl);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 16);
  g_autoptr (JsonParser) parser = json_parser_new ();
  for (guint i = 0; i < 15; i++)
    parse_line (parser, lines[i]);
  g_autofree char *cues_text = read_file (vtt);
  g_autoptr (GArray) cues = parse_cues (cues_text, FALSE);
  g_assert_cmpuint (cues->len, ==, 2);
  assert_cue (cues, 0, 0, 500, "a dog (0.80)");
  assert_cue (cues, 1, 500, 1500, "a cat (0.80)");
}

/* A seek back discards the open segment and never writes a cue before one
 * already written. */
static void
test_flush (void)
{
  g_autofree char *path = temp_file ("out.vtt");
  GstHarness *h = export_new (path, "webvtt", 0);
  const int tops[] = { 0, 0, 1, 1 };
  push_tops (h, tops, G_N_ELEMENTS (tops));
  gst_harness_push_event (h, gst_event_new_flush_start ());
  gst_harness_push_event (h, gst_event_new_flush_stop (TRUE));
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  gst_harness_push_event (h, gst_event_new_segment (&segment));
  const int again[] = { 2, 2, 0, 0, 0, 0, 0 };
  push_tops (h, again, G_N_ELEMENTS (again));
  gst_harness_push_event (h, gst_event_new_eos ());
  gst_harness_teardown (h);

  g_autofree char *text = read_file (path);
  g_autoptr (GArray) cues = parse_cues (text, FALSE);
  g_assert_cmpuint (cues->len, ==, 2);
  assert_cue (cues, 0, 0, 200, "a dog (0.80)");
  assert_cue (cues, 1, 200, 700, "a dog (0.80)");
}

static void
test_unwritable (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "missing", "out.vtt", NULL);
  GstElement *element = gst_element_factory_make ("clipexport", NULL);
  g_assert_nonnull (element);
  g_object_set (element, "location", path, NULL);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (element, bus);

  g_assert_cmpint (gst_element_set_state (element, GST_STATE_PAUSED), ==,
      GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  g_assert_nonnull (msg);
  g_autoptr (GError) error = NULL;
  gst_message_parse_error (msg, &error, NULL);
  g_assert_true (g_error_matches (error, GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_OPEN_WRITE));
  g_assert_nonnull (strstr (error->message, path));
  gst_message_unref (msg);

  gst_element_set_state (element, GST_STATE_NULL);
  gst_element_set_bus (element, NULL);
  gst_object_unref (bus);
  gst_object_unref (element);
}

/* Runs a launch line to EOS; returns how many WARNING messages named
 * clipclassify. */
static guint
count_missing_results_warnings (const char *desc)
{
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  GstBus *bus = gst_element_get_bus (pipeline);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  guint warnings = 0;
  GstMessage *msg;
  while ((msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
              GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_WARNING))) {
    GstMessageType type = GST_MESSAGE_TYPE (msg);
    if (type == GST_MESSAGE_WARNING) {
      g_autoptr (GError) warning = NULL;
      gst_message_parse_warning (msg, &warning, NULL);
      g_test_message ("warning: %s", warning->message);
      if (strstr (warning->message, "Put clipclassify upstream"))
        warnings++;
    }
    g_assert_true (type != GST_MESSAGE_ERROR);
    gst_message_unref (msg);
    if (type == GST_MESSAGE_EOS)
      break;
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  return warnings;
}

/* Video without results gives a warning, not a silent empty file. */
static void
test_no_results_warns (void)
{
  g_autofree char *path = temp_file ("empty.jsonl");
  g_autofree char *bare = g_strdup_printf (
      "videotestsrc num-buffers=5 ! clipexport location=\"%s\" ! fakesink",
      path);
  g_assert_cmpuint (count_missing_results_warnings (bare), ==, 1);

  if (!clip_test_reference ())
    return;
  g_autofree char *model = clip_test_ref_path ("models/tiny-hf");
  g_autofree char *classified = g_strdup_printf (
      "videotestsrc num-buffers=5 ! clipclassify model=\"%s\" labels=a,b ! "
      "clipexport location=\"%s\" ! fakesink",
      model, path);
  g_assert_cmpuint (count_missing_results_warnings (classified), ==, 0);
}

/* pipelines/annotate-to-files.sh on the tiny model: every format, valid. */
static void
test_annotate_script (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *prefix = g_build_filename (dir, "clip test", NULL);
  g_autofree char *script = g_build_filename (g_getenv ("CLIP_PIPELINES_DIR"),
      "annotate-to-files.sh", NULL);
  g_autofree char *video = g_build_filename (dir, "clip test.webm", NULL);
  g_autofree char *sink = g_strdup_printf ("location=%s", video);
  char *encode[] = { "gst-launch-1.0", "-q", "videotestsrc", "num-buffers=20",
    "!", "video/x-raw,width=64,height=48,framerate=10/1", "!", "vp8enc", "!",
    "webmmux", "!", "filesink", sink, NULL };
  int status = 0;
  g_assert_true (g_spawn_sync (NULL, encode, NULL, G_SPAWN_SEARCH_PATH, NULL,
      NULL, NULL, NULL, &status, NULL));
  g_assert_true (g_spawn_check_wait_status (status, NULL));

  g_autofree char *model = clip_test_ref_path ("models/tiny-hf");
  char **env = g_environ_setenv (g_get_environ (), "CLIP_MODEL", model, TRUE);
  char *argv[] = { "bash", script, video, prefix, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_true (g_spawn_sync (NULL, argv, env, G_SPAWN_SEARCH_PATH, NULL, NULL,
      &out, &err, &status, NULL));
  g_strfreev (env);
  g_test_message ("stdout:\n%s\nstderr:\n%s", out, err);
  g_assert_true (g_spawn_check_wait_status (status, NULL));

  g_autofree char *jsonl_path = g_strconcat (prefix, ".jsonl", NULL);
  g_autofree char *jsonl = read_file (jsonl_path);
  g_auto (GStrv) lines = g_strsplit (jsonl, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 21);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *last = parse_line (parser, lines[19]);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (last, "pts"),
      1.9, 1e-9);

  for (int srt = 0; srt <= 1; srt++) {
    g_autofree char *path = g_strconcat (prefix, srt ? ".srt" : ".vtt", NULL);
    g_autofree char *text = read_file (path);
    g_autoptr (GArray) cues = parse_cues (text, srt);
    g_assert_cmpuint (cues->len, >=, 1);
    /* the segments end at the end of the stream */
    g_assert_cmpuint (g_array_index (cues, Cue, cues->len - 1).end_ms, ==,
        2000);
    check_with_python_webvtt (path, srt, cues->len);
  }
  g_autofree char *csv_path = g_strconcat (prefix, ".csv", NULL);
  g_autofree char *csv = read_file (csv_path);
  g_assert_true (g_str_has_prefix (csv, "start,end,label,score\n0.0,"));
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/clipexport/jsonl", test_jsonl);
  g_test_add_func ("/clipexport/webvtt", test_webvtt);
  g_test_add_func ("/clipexport/min-segment", test_min_segment);
  g_test_add_func ("/clipexport/srt", test_srt);
  g_test_add_func ("/clipexport/csv", test_csv);
  g_test_add_func ("/clipexport/html", test_html);
  g_test_add_func ("/clipexport/jsonl-segments", test_jsonl_segments);
  g_test_add_func ("/clipexport/written-at-eos", test_written_at_eos);
  g_test_add_func ("/clipexport/flush", test_flush);
  g_test_add_func ("/clipexport/unwritable", test_unwritable);
  g_test_add_func ("/clipexport/no-results-warns", test_no_results_warns);
  g_test_add_func ("/clipexport/annotate-script", test_annotate_script);
  return g_test_run ();
}
