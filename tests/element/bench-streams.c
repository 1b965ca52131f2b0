/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Measures N live streams on one model (docs/many-streams.md): N live
 * 640x480 videotestsrc at 5 fps, each through its own live clipclassify,
 * for SECONDS; prints the images analysed per second in all, each
 * stream's count against its fair share, and the result latency (the
 * pipeline clock when the result is posted, minus the running time of the
 * frame it is for), and the CPU time the process used per analysed image
 * (less sensitive than images/s to other load on the machine). The first
 * two seconds are left out (warm-up).
 *
 *   bench-streams N SECONDS SHARED MODEL [BATCH_SIZE]
 *
 * SHARED 1: shared-batches=true, one batch for all streams; 0: a worker
 * and an encoder per element. Not a test: it asserts nothing, and its
 * figures depend on the machine. */
#include <gst/gst.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#define FPS 5
#define WARM_UP (2 * GST_SECOND)

typedef struct {
  GstElement *pipeline;
  int n;
  guint *counts;
  GArray *latencies;   /* GstClockTime */
  double cpu_at_first; /* CPU seconds used when the first result counted */
} Bench;

static double
cpu_seconds (void)
{
  struct rusage usage;
  getrusage (RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec
      + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

static GstBusSyncReply
on_message (GstBus *bus, GstMessage *message, gpointer data)
{
  Bench *bench = data;
  const GstStructure *s = gst_message_get_structure (message);
  if (GST_MESSAGE_TYPE (message) != GST_MESSAGE_ELEMENT
      || !gst_structure_has_name (s, "clipclassify"))
    return GST_BUS_PASS;
  GstClock *clock = gst_element_get_clock (bench->pipeline);
  guint64 running_time;
  if (clock != NULL
      && gst_structure_get_uint64 (s, "running-time", &running_time)
      && running_time >= WARM_UP) {
    GstClockTime now = gst_clock_get_time (clock)
        - gst_element_get_base_time (bench->pipeline);
    if (bench->latencies->len == 0)
      bench->cpu_at_first = cpu_seconds ();
    int stream = atoi (GST_OBJECT_NAME (GST_MESSAGE_SRC (message)) + 1);
    bench->counts[stream]++;
    GstClockTime latency = now - running_time;
    g_array_append_val (bench->latencies, latency);
  }
  g_clear_object (&clock);
  return GST_BUS_PASS;
}

static int
compare_times (gconstpointer a, gconstpointer b)
{
  GstClockTime x = *(const GstClockTime *) a, y = *(const GstClockTime *) b;
  return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  if (argc < 5) {
    fprintf (stderr, "usage: %s N SECONDS SHARED MODEL [BATCH_SIZE]\n",
        argv[0]);
    return 2;
  }
  Bench bench = { 0 };
  bench.n = atoi (argv[1]);
  int seconds = atoi (argv[2]);
  gboolean shared = atoi (argv[3]) != 0;
  int batch_size = argc > 5 ? atoi (argv[5]) : 8;
  GString *description = g_string_new (NULL);
  for (int i = 0; i < bench.n; i++)
    g_string_append_printf (description,
        "videotestsrc is-live=true num-buffers=%d pattern=%d "
        "! video/x-raw,width=640,height=480,framerate=%d/1 ! videoconvert "
        "! clipclassify name=c%d model=\"%s\" mode=live "
        "labels=\"a red frame,a ball,colour bars\" shared-batches=%s "
        "batch-size=%d ! fakesink sync=true ",
        seconds * FPS, i % 20, FPS, i, argv[4], shared ? "true" : "false",
        batch_size);
  g_autoptr (GError) error = NULL;
  bench.pipeline = gst_parse_launch (description->str, &error);
  g_string_free (description, TRUE);
  if (bench.pipeline == NULL) {
    fprintf (stderr, "%s\n", error->message);
    return 1;
  }
  bench.counts = g_new0 (guint, bench.n);
  bench.latencies = g_array_new (FALSE, FALSE, sizeof (GstClockTime));
  GstBus *bus = gst_element_get_bus (bench.pipeline);
  gst_bus_set_sync_handler (bus, on_message, &bench, NULL);
  gst_element_set_state (bench.pipeline, GST_STATE_PLAYING);
  GstMessage *end = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  gboolean failed = GST_MESSAGE_TYPE (end) == GST_MESSAGE_ERROR;
  if (failed) {
    g_autoptr (GError) stream_error = NULL;
    gst_message_parse_error (end, &stream_error, NULL);
    fprintf (stderr, "%s\n", stream_error->message);
  }
  gst_message_unref (end);
  double cpu = cpu_seconds () - bench.cpu_at_first;
  gst_element_set_state (bench.pipeline, GST_STATE_NULL);
  gst_bus_set_sync_handler (bus, NULL, NULL, NULL);
  gst_object_unref (bus);
  gst_object_unref (bench.pipeline);
  if (failed || bench.latencies->len == 0)
    return 1;

  guint total = 0, least = G_MAXUINT, most = 0;
  for (int i = 0; i < bench.n; i++) {
    total += bench.counts[i];
    least = MIN (least, bench.counts[i]);
    most = MAX (most, bench.counts[i]);
  }
  double fair = (double) total / bench.n;
  g_array_sort (bench.latencies, compare_times);
  GstClockTime median = g_array_index (bench.latencies, GstClockTime,
      bench.latencies->len / 2);
  GstClockTime worst = g_array_index (bench.latencies, GstClockTime,
      bench.latencies->len - 1);
  printf ("streams %d shared %s: %.2f images/s in all; per stream %u..%u "
          "(%.2f..%.2f of the fair share); latency median %.0f ms, worst "
          "%.0f ms; %.0f ms of CPU per image\n",
      bench.n, shared ? "yes" : "no",
      total / ((double) seconds - (double) WARM_UP / GST_SECOND), least, most,
      least / fair, most / fair, (double) median / GST_MSECOND,
      (double) worst / GST_MSECOND, 1000 * cpu / MAX (total - 1, 1));
  g_free (bench.counts);
  g_array_unref (bench.latencies);
  return 0;
}
