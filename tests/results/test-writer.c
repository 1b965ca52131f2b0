/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The results core's writers: the exact bytes of every format, the rules
 * for segments, and write errors. clipexport and gst-clip annotate both
 * write through these (tests/tools/test-annotate.sh compares the two). */
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define MS (CLIP_SECOND / 1000)
#define FRAME (100 * MS)

/* A label with everything that could break a record: a line break, a cue
 * arrow, markup, quotes and a comma. */
#define AWKWARD "a\nb --> <c> & \"d\", e"

typedef struct {
  const char *top; /* NULL: no label passed */
  double score;
} Top;

/* A writer to a temporary file. */
typedef struct {
  char *path;
  int fd;
  ClipResultWriter *writer;
} TestOutput;

static ClipResultWriter *
output_open (TestOutput *out, ClipResultFormat format)
{
  g_autoptr (GError) error = NULL;
  out->fd = g_file_open_tmp ("clip-writer-XXXXXX", &out->path, &error);
  g_assert_no_error (error);
  out->writer = clip_result_writer_new (format, out->fd);
  return out->writer;
}

/* Frees the writer; returns what it wrote and removes the file. */
static char *
output_close (TestOutput *out)
{
  char *text = NULL;
  clip_result_writer_free (out->writer);
  g_assert_cmpint (close (out->fd), ==, 0);
  g_assert_true (g_file_get_contents (out->path, &text, NULL, NULL));
  g_unlink (out->path);
  g_free (out->path);
  return text;
}

/* Frame i lasts [i, i + 1) * FRAME with the given top label; stream_end as
 * for clip_result_writer_finish. Returns what the writer wrote. */
static char *
write_tops (ClipResultFormat format, const Top *tops, guint n,
    ClipTime min_segment, ClipTime stream_end)
{
  g_autoptr (GError) error = NULL;
  TestOutput out;
  ClipResultWriter *w = output_open (&out, format);

  g_assert_true (clip_result_writer_start (w, &error));
  for (guint i = 0; i < n; i++) {
    ClipFrameRecord frame = {
      .pts = i * FRAME,
      .duration = FRAME,
      .n_labels = tops[i].top ? 1 : 0,
      .labels = &tops[i].top,
      .scores = &tops[i].score,
      .top_label = tops[i].top,
      .top_score = tops[i].top ? tops[i].score : 0,
    };
    g_assert_true (clip_result_writer_push (w, &frame, min_segment, &error));
  }
  g_assert_true (clip_result_writer_finish (w, stream_end, &error));
  g_assert_no_error (error);
  return output_close (&out);
}

/* Two frames of "a dog", one awkward label, a stretch with no label, and
 * "a dog" again, whose segment also covers the two frames after the last
 * analysed one (the stream ends at 700 ms). */
static const Top story[] = {
  { "a dog", 0.8 },
  { "a dog", 0.8 },
  { AWKWARD, 0.25 },
  { NULL, 0 },
  { "a dog", 0.8 },
};

static void
assert_story (ClipResultFormat format, const char *expected)
{
  g_autofree char *text = write_tops (format, story, G_N_ELEMENTS (story), 0,
      700 * MS);
  g_assert_cmpstr (text, ==, expected);
}

/* Cues are whole: the line break is a space and WebVTT's markup ("-->"
 * included) is escaped; the stretch with no label is a gap. */
static void
test_webvtt (void)
{
  assert_story (CLIP_RESULT_FORMAT_WEBVTT,
      "WEBVTT\n\n"
      "00:00:00.000 --> 00:00:00.200\na dog (0.80)\n\n"
      "00:00:00.200 --> 00:00:00.300\n"
      "a b --&gt; &lt;c&gt; &amp; \"d\", e (0.25)\n\n"
      "00:00:00.400 --> 00:00:00.700\na dog (0.80)\n\n");
}

/* SubRip has no escapes: only the line break goes (annotate wrote it raw,
 * which ended the cue early). */
static void
test_srt (void)
{
  assert_story (CLIP_RESULT_FORMAT_SRT,
      "1\n00:00:00,000 --> 00:00:00,200\na dog (0.80)\n\n"
      "2\n00:00:00,200 --> 00:00:00,300\na b --> <c> & \"d\", e (0.25)\n\n"
      "3\n00:00:00,400 --> 00:00:00,700\na dog (0.80)\n\n");
}

/* RFC 4180: the comma and the line break stay inside the quotes. */
static void
test_csv (void)
{
  assert_story (CLIP_RESULT_FORMAT_CSV,
      "start,end,label,score\n"
      "0.0,0.2,\"a dog\",0.8000\n"
      "0.2,0.3,\"a\nb --> <c> & \"\"d\"\", e\",0.2500\n"
      "0.4,0.7,\"a dog\",0.8000\n");
}

/* JSON Lines per segment keep the stretch with no label, as null. */
static void
test_jsonl_segments (void)
{
  assert_story (CLIP_RESULT_FORMAT_JSONL_SEGMENTS,
      "{\"start\":0.0,\"end\":0.2,\"label\":\"a dog\",\"score\":0.8}\n"
      "{\"start\":0.2,\"end\":0.3,"
      "\"label\":\"a\\nb --> <c> & \\\"d\\\", e\",\"score\":0.25}\n"
      "{\"start\":0.3,\"end\":0.4,\"label\":null,\"score\":0.0}\n"
      "{\"start\":0.4,\"end\":0.7,\"label\":\"a dog\",\"score\":0.8}\n");
}

/* Without a known stream end the last segment ends with its last frame. */
static void
test_last_segment (void)
{
  g_autofree char *text = write_tops (CLIP_RESULT_FORMAT_JSONL_SEGMENTS, story,
      1, 0, CLIP_TIME_NONE);
  g_assert_cmpstr (text, ==,
      "{\"start\":0.0,\"end\":0.1,\"label\":\"a dog\",\"score\":0.8}\n");
}

/* A flicker shorter than min_segment belongs to the segment around it (in
 * time; the mean score is over the segment's own label). */
static void
test_min_segment (void)
{
  const Top tops[] = { { "a dog", 0.5 }, { "a cat", 0.5 }, { "a dog", 1.0 } };
  g_autofree char *text = write_tops (CLIP_RESULT_FORMAT_CSV, tops,
      G_N_ELEMENTS (tops), 150 * MS, CLIP_TIME_NONE);
  g_assert_cmpstr (text, ==,
      "start,end,label,score\n"
      "0.0,0.3,\"a dog\",0.7500\n");
}

/* Per frame: every analysed frame, a frame without times included. */
static void
test_jsonl_frames (void)
{
  TestOutput out;
  ClipResultWriter *w = output_open (&out, CLIP_RESULT_FORMAT_JSONL);
  const char *labels[] = { "a \"b\"\n", "c" };
  const double scores[] = { 0.75, 1.0 / 3 };
  ClipFrameRecord frames[] = {
    { .pts = 1500 * MS,
        .duration = 40 * MS,
        .n_labels = 2,
        .labels = labels,
        .scores = scores,
        .top_label = labels[0],
        .top_score = 0.75 },
    { .pts = CLIP_TIME_NONE, .duration = CLIP_TIME_NONE },
  };

  g_assert_true (clip_result_writer_start (w, NULL));
  for (guint i = 0; i < G_N_ELEMENTS (frames); i++)
    g_assert_true (clip_result_writer_push (w, &frames[i], 0, NULL));
  g_assert_true (clip_result_writer_finish (w, 2 * CLIP_SECOND, NULL));

  g_autofree char *text = output_close (&out);
  g_assert_cmpstr (text, ==,
      "{\"pts\":1.5,\"duration\":0.04,\"labels\":[\"a \\\"b\\\"\\n\",\"c\"],"
      "\"scores\":[0.75,0.333333],\"top\":\"a \\\"b\\\"\\n\"}\n"
      "{\"pts\":null,\"duration\":null,\"labels\":[],\"scores\":[],"
      "\"top\":null}\n");
}

/* A segment within one millisecond would be an empty cue; after a flush, a
 * segment before the end of one written would go back in time. Neither is
 * written, in any per-segment format. */
static void
test_dropped_segments (void)
{
  TestOutput out;
  ClipResultWriter *w = output_open (&out, CLIP_RESULT_FORMAT_JSONL_SEGMENTS);
  const char *x = "x", *y = "y";
  ClipFrameRecord tiny = { .pts = 0, .duration = MS / 2, .top_label = x };
  ClipFrameRecord next = { .pts = MS / 2, .duration = MS, .top_label = y };
  ClipFrameRecord late = { .pts = 200 * MS, .duration = FRAME, .top_label = x };
  ClipFrameRecord early = { .pts = 0, .duration = FRAME, .top_label = y };
  ClipFrameRecord after = { .pts = 300 * MS,
    .duration = FRAME,
    .top_label = x };

  g_assert_true (clip_result_writer_push (w, &tiny, 0, NULL));
  g_assert_true (clip_result_writer_push (w, &next, 0, NULL)); /* x: empty */
  g_assert_true (clip_result_writer_push (w, &late, 0, NULL)); /* y written */
  clip_result_writer_discard (w);                              /* x dropped */
  g_assert_true (clip_result_writer_push (w, &early, 0, NULL));
  g_assert_true (clip_result_writer_push (w, &after, 0, NULL)); /* y: early */
  g_assert_true (clip_result_writer_finish (w, CLIP_TIME_NONE, NULL));

  g_autofree char *text = output_close (&out);
  g_assert_cmpstr (text, ==,
      "{\"start\":0.0005,\"end\":0.2,\"label\":\"y\",\"score\":0.0}\n"
      "{\"start\":0.3,\"end\":0.4,\"label\":\"x\",\"score\":0.0}\n");
}

/* A full disk: the system's message, as a GError the caller words. */
static void
test_write_error (void)
{
  int fd = open ("/dev/full", O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    g_test_skip ("no /dev/full");
    return;
  }
  g_autoptr (ClipResultWriter) w = clip_result_writer_new (
      CLIP_RESULT_FORMAT_WEBVTT, fd);
  g_autoptr (GError) error = NULL;
  g_assert_false (clip_result_writer_start (w, &error));
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOSPC);
  g_assert_cmpstr (error->message, ==, g_strerror (ENOSPC));
  close (fd);
}

/* The names the element's property and annotate's --format accept. */
static void
test_format_names (void)
{
  ClipResultFormat format;
  for (guint f = 0; f < CLIP_N_RESULT_FORMATS; f++) {
    const ClipResultFormatInfo *info = clip_result_format_info (f);
    g_assert_true (clip_result_format_from_name (info->name, &format));
    g_assert_cmpuint (format, ==, f);
    g_assert_nonnull (info->description);
  }
  g_assert_cmpstr (clip_result_format_info (CLIP_RESULT_FORMAT_JSONL)->name, ==,
      "jsonl");
  g_assert_cmpstr (
      clip_result_format_info (CLIP_RESULT_FORMAT_JSONL_SEGMENTS)->name, ==,
      "jsonl-segments");
  g_assert_false (clip_result_format_from_name ("vtt", &format));
  g_assert_false (clip_result_format_from_name (NULL, &format));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/writer/webvtt", test_webvtt);
  g_test_add_func ("/writer/srt", test_srt);
  g_test_add_func ("/writer/csv", test_csv);
  g_test_add_func ("/writer/jsonl-segments", test_jsonl_segments);
  g_test_add_func ("/writer/last-segment", test_last_segment);
  g_test_add_func ("/writer/min-segment", test_min_segment);
  g_test_add_func ("/writer/jsonl-frames", test_jsonl_frames);
  g_test_add_func ("/writer/dropped-segments", test_dropped_segments);
  g_test_add_func ("/writer/write-error", test_write_error);
  g_test_add_func ("/writer/format-names", test_format_names);
  return g_test_run ();
}
