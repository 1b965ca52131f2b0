/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clippublish against a real broker (mosquitto, started by the test on
 * loopback, mqtt-broker.c): the documents and their schema, retained state,
 * the Last Will of a killed process, a broker killed and restarted
 * mid-stream, the ways a connection fails, 10,000 events at QoS 1; and the
 * file method's JSON Lines. Results come from clipclassify on the default
 * model, or from metas the test attaches. */
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "gstclipmeta.h"
#include "mqtt-broker.h"
#include "reference.h"

#define FRAME (GST_SECOND / 10)

static const char *const labels[] = { "a dog", "a cat" };

static GstClipLabelTable *
table (void)
{
  static GstClipLabelTable *t;
  if (t == NULL)
    t = gst_clip_label_table_new (labels, G_N_ELEMENTS (labels));
  return t;
}

/* ------------------------------------------------------------- documents */

static JsonObject *
parse_object (const char *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  if (!json_parser_load_from_data (parser, text, -1, &error))
    g_error ("not JSON: %s: %s", error->message, text);
  JsonNode *root = json_parser_get_root (parser);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  return json_object_ref (json_node_get_object (root));
}

static void
assert_member_type (JsonObject *o, const char *name, GType type,
    gboolean nullable)
{
  JsonNode *node = json_object_get_member (o, name);
  if (node == NULL)
    g_error ("no member \"%s\"", name);
  if (nullable && JSON_NODE_HOLDS_NULL (node))
    return;
  g_assert_true (JSON_NODE_HOLDS_VALUE (node));
  g_assert_true (json_node_get_value_type (node) == type);
}

static void
assert_members (JsonObject *o, const char *const *names)
{
  guint n = 0;
  for (; names[n] != NULL; n++)
    g_assert_true (json_object_has_member (o, names[n]));
  g_assert_cmpuint (json_object_get_size (o), ==, n);
}

/* Checks one document against the schema of docs/publish.md; returns its
 * type. The Last Will has neither seq nor time. */
static const char *
check_document (JsonObject *o, const char *stream)
{
  const char *type = json_object_get_string_member (o, "type");
  g_assert_cmpstr (json_object_get_string_member (o, "stream"), ==, stream);
  gboolean will = !json_object_has_member (o, "seq");
  if (!will) {
    assert_member_type (o, "seq", G_TYPE_INT64, FALSE);
    const char *time = json_object_get_string_member (o, "time");
    g_autoptr (GDateTime) t = g_date_time_new_from_iso8601 (time, NULL);
    g_assert_nonnull (t);
    g_assert_true (g_str_has_suffix (time, "Z"));
  }

  if (g_str_equal (type, "result")) {
    assert_members (o,
        (const char *[]) { "type", "stream", "seq", "time", "pts", "duration",
            "labels", "scores", "top", "top-score", NULL });
    assert_member_type (o, "pts", G_TYPE_DOUBLE, TRUE);
    assert_member_type (o, "duration", G_TYPE_DOUBLE, TRUE);
    JsonArray *l = json_object_get_array_member (o, "labels");
    JsonArray *s = json_object_get_array_member (o, "scores");
    g_assert_cmpuint (json_array_get_length (l), ==, json_array_get_length (s));
    for (guint i = 0; i < json_array_get_length (l); i++) {
      g_assert_nonnull (json_array_get_string_element (l, i));
      double p = json_array_get_double_element (s, i);
      g_assert_true (p >= 0.0 && p <= 1.0);
    }
    assert_member_type (o, "top", G_TYPE_STRING, TRUE);
    assert_member_type (o, "top-score", G_TYPE_DOUBLE, TRUE);
  } else if (g_str_equal (type, "event") || g_str_equal (type, "state")) {
    assert_members (o,
        (const char *[]) { "type", "stream", "seq", "time", "label", "score",
            "start", "previous", NULL });
    assert_member_type (o, "label", G_TYPE_STRING, g_str_equal (type, "state"));
    assert_member_type (o, "score", G_TYPE_DOUBLE, g_str_equal (type, "state"));
    assert_member_type (o, "start", G_TYPE_DOUBLE, TRUE);
    assert_member_type (o, "previous", G_TYPE_STRING, TRUE);
  } else if (g_str_equal (type, "status")) {
    if (will)
      assert_members (o, (const char *[]) { "type", "stream", "status", NULL });
    else
      assert_members (o,
          (const char *[]) { "type", "stream", "seq", "time", "status", NULL });
    const char *status = json_object_get_string_member (o, "status");
    g_assert_true (
        g_str_equal (status, "online") || g_str_equal (status, "offline"));
    g_assert_true (!will || g_str_equal (status, "offline"));
  } else
    g_error ("unknown type %s", type);
  return type;
}

/* The documents of one stream, in order: each checked, seq counting from
 * 0 without a gap; online first, offline last; the events' labels. */
static void
check_stream (GPtrArray *objects, const char *stream,
    const char *const *expected_events)
{
  g_assert_cmpuint (objects->len, >=, 2);
  guint n_events = 0;
  for (guint i = 0; i < objects->len; i++) {
    JsonObject *o = objects->pdata[i];
    const char *type = check_document (o, stream);
    g_assert_cmpint (json_object_get_int_member (o, "seq"), ==, i);
    if (g_str_equal (type, "event")) {
      g_assert_nonnull (expected_events[n_events]);
      g_assert_cmpstr (json_object_get_string_member (o, "label"), ==,
          expected_events[n_events]);
      n_events++;
    }
  }
  g_assert_null (expected_events[n_events]);
  g_assert_cmpstr (json_object_get_string_member (objects->pdata[0], "status"),
      ==, "online");
  g_assert_cmpstr (json_object_get_string_member (
                       objects->pdata[objects->len - 1], "status"),
      ==, "offline");
}

/* ------------------------------------------------------------- pipelines */

/* clipclassify on the default model over two videotestsrc patterns, then
 * publish (clippublish's properties), run to the end. */
static void
run_classify_pipeline (const char *publish)
{
  g_autofree char *model = g_build_filename (g_getenv ("CLIP_SOURCE_DIR"),
      "models", "default", NULL);
  g_autofree char *desc = g_strdup_printf (
      "concat name=c ! clipclassify model=\"%s\" "
      "labels=\"smpte color bars,red frame\" ! clippublish %s ! fakesink "
      "videotestsrc pattern=smpte num-buffers=6 ! "
      "video/x-raw,width=64,height=64,framerate=10/1 ! c. "
      "videotestsrc pattern=red num-buffers=6 ! "
      "video/x-raw,width=64,height=64,framerate=10/1 ! c.",
      model, publish);
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
      GST_STATE_CHANGE_FAILURE);
  g_autoptr (GstBus) bus = gst_element_get_bus (pipeline);
  g_autoptr (GstMessage) msg = gst_bus_timed_pop_filtered (bus,
      GST_CLOCK_TIME_NONE, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  g_assert_cmpint (GST_MESSAGE_TYPE (msg), ==, GST_MESSAGE_EOS);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
}

static const char *const pattern_events[] = { "smpte color bars", "red frame",
  NULL };

static gboolean
has_offline (GPtrArray *messages, gpointer data)
{
  for (guint i = 0; i < messages->len; i++) {
    TestMessage *m = messages->pdata[i];
    if (strstr (m->payload, "\"status\":\"offline\"") != NULL)
      return TRUE;
  }
  return FALSE;
}

/* Every document type arrives on its topic with the documented schema. */
static void
test_schema (void)
{
  if (!test_broker_available ())
    return;
  TestBroker *broker = test_broker_start ("allow_anonymous true");
  TestSubscriber *sub = test_subscriber_new (broker, "site/#", NULL, NULL,
      NULL);
  g_autofree char *publish = g_strdup_printf (
      "address=127.0.0.1:%d topic=site/{name} stream-name=cam1 "
      "publish-results=true",
      broker->port);
  run_classify_pipeline (publish);
  g_assert_true (test_subscriber_wait (sub, has_offline, NULL));

  g_autoptr (GPtrArray) messages = test_subscriber_messages (sub);
  g_autoptr (GPtrArray) objects = g_ptr_array_new_with_free_func (
      (GDestroyNotify) json_object_unref);
  guint n_results = 0;
  for (guint i = 0; i < messages->len; i++) {
    TestMessage *m = messages->pdata[i];
    JsonObject *o = parse_object (m->payload);
    const char *type = json_object_get_string_member (o, "type");
    g_autofree char *topic = g_strdup_printf ("site/cam1/%s", type);
    g_assert_cmpstr (m->topic, ==, topic);
    n_results += g_str_equal (type, "result");
    g_ptr_array_add (objects, o);
  }
  check_stream (objects, "cam1", pattern_events);
  g_assert_cmpuint (n_results, ==, 12);
  test_subscriber_free (sub);
  test_broker_free (broker);
}

/* method=file writes the same documents as JSON Lines. */
static void
test_file (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "events.jsonl", NULL);
  g_autofree char *publish = g_strdup_printf (
      "method=file location=\"%s\" stream-name=cam1 publish-results=true",
      path);
  run_classify_pipeline (publish);

  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_assert_true (g_str_has_suffix (text, "}\n"));
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_autoptr (GPtrArray) objects = g_ptr_array_new_with_free_func (
      (GDestroyNotify) json_object_unref);
  for (guint i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++)
    g_ptr_array_add (objects, parse_object (lines[i]));
  check_stream (objects, "cam1", pattern_events);
  /* status, 12 results, 2 events, 2 states, status */
  g_assert_cmpuint (objects->len, ==, 18);
}

/* -------------------------------------------------------------- harness */

static GstBus *harness_bus;

/* A harness around a clippublish with the given properties, its messages
 * going to harness_bus. */
static GstHarness *
publish_harness (const char *first_property, ...)
{
  GstElement *element = gst_element_factory_make ("clippublish", NULL);
  g_assert_nonnull (element);
  va_list args;
  va_start (args, first_property);
  g_object_set_valist (G_OBJECT (element), first_property, args);
  va_end (args);
  harness_bus = gst_bus_new ();
  gst_element_set_bus (element, harness_bus);
  GstHarness *h = gst_harness_new_with_element (element, "sink", "src");
  gst_object_unref (element);
  gst_harness_set_src_caps_str (h,
      "video/x-raw,format=RGBA,width=4,height=4,framerate=10/1");
  return h;
}

/* The messages left on the bus hold the element, which holds the bus:
 * flushed, both go. */
static void
publish_teardown (GstHarness *h)
{
  gst_bus_set_flushing (harness_bus, TRUE);
  gst_harness_teardown (h);
  g_clear_object (&harness_bus);
}

/* Pushes frame i with top label labels[top] (probability 0.8); the
 * buffer must come straight out. */
static void
push_frame (GstHarness *h, guint i, guint top)
{
  GstBuffer *in = gst_buffer_new_allocate (NULL, 4 * 4 * 4, NULL);
  GST_BUFFER_PTS (in) = i * FRAME;
  GST_BUFFER_DURATION (in) = FRAME;
  guint indices[] = { top, 1 - top };
  float probs[] = { 0.8f, 0.2f }, logits[] = { 2.0f, 0.6f };
  g_assert_nonnull (gst_buffer_add_clip_meta (in, table (), 2, indices, probs,
      logits, 0, i * FRAME, FRAME, TRUE, "test", NULL));
  GstBuffer *out = gst_harness_push_and_pull (h, in);
  g_assert_true (out == in);
  gst_buffer_unref (out);
}

/* Waits for a warning on harness_bus and returns its text. */
static char *
wait_warning (void)
{
  g_autoptr (GstMessage) msg = gst_bus_timed_pop_filtered (harness_bus,
      60 * GST_SECOND, GST_MESSAGE_WARNING);
  g_assert_nonnull (msg);
  g_autoptr (GError) error = NULL;
  g_autofree char *debug = NULL;
  gst_message_parse_warning (msg, &error, &debug);
  g_test_message ("warning: %s (%s)", error->message, debug);
  return g_strdup (error->message);
}

static gboolean
playing (GstHarness *h)
{
  GstState state;
  gst_element_get_state (h->element, &state, NULL, 0);
  return state == GST_STATE_PLAYING;
}

/* The seq of each message whose topic ends in suffix, as a set. */
static GHashTable *
sequences (GPtrArray *messages, const char *suffix)
{
  GHashTable *set = g_hash_table_new (NULL, NULL);
  for (guint i = 0; i < messages->len; i++) {
    TestMessage *m = messages->pdata[i];
    if (!g_str_has_suffix (m->topic, suffix))
      continue;
    g_autoptr (JsonObject) o = parse_object (m->payload);
    if (json_object_has_member (o, "seq"))
      g_hash_table_add (set,
          GSIZE_TO_POINTER (json_object_get_int_member (o, "seq")));
  }
  return set;
}

/* Distinct documents (by seq) seen on topics ending in suffix, counted as
 * they come: the 10,000 events must not be parsed again at each arrival. */
typedef struct {
  const char *suffix;
  guint n;
  guint scanned;
  GHashTable *seen;
} CountWanted;

static gboolean
has_count (GPtrArray *messages, gpointer data)
{
  CountWanted *want = data;
  if (want->seen == NULL)
    want->seen = g_hash_table_new (NULL, NULL);
  for (; want->scanned < messages->len; want->scanned++) {
    TestMessage *m = messages->pdata[want->scanned];
    const char *seq = strstr (m->payload, "\"seq\":");
    if (g_str_has_suffix (m->topic, want->suffix) && seq != NULL)
      g_hash_table_add (want->seen,
          GSIZE_TO_POINTER (g_ascii_strtoull (seq + 6, NULL, 10)));
  }
  return g_hash_table_size (want->seen) >= want->n;
}

static void
count_wanted_clear (CountWanted *want)
{
  g_clear_pointer (&want->seen, g_hash_table_unref);
}

typedef struct {
  const char *status;
  gboolean will;
} StatusWanted;

static gboolean
has_status (GPtrArray *messages, gpointer data)
{
  const StatusWanted *want = data;
  for (guint i = 0; i < messages->len; i++) {
    TestMessage *m = messages->pdata[i];
    if (!g_str_has_suffix (m->topic, "/status"))
      continue;
    g_autoptr (JsonObject) o = parse_object (m->payload);
    if (g_str_equal (json_object_get_string_member (o, "status"), want->status)
        && json_object_has_member (o, "seq") == !want->will)
      return TRUE;
  }
  return FALSE;
}

/* A subscriber that connects after the state was published gets it at
 * once, retained; so does the status. */
static void
test_retained (void)
{
  if (!test_broker_available ())
    return;
  TestBroker *broker = test_broker_start ("allow_anonymous true");
  TestSubscriber *early = test_subscriber_new (broker, "ret/#", NULL, NULL,
      NULL);
  g_autofree char *address = g_strdup_printf ("127.0.0.1:%d", broker->port);
  GstHarness *h = publish_harness ("address", address, "topic", "ret/{name}",
      "stream-name", "door", NULL);
  for (guint i = 0; i < 3; i++)
    push_frame (h, i, 1);
  CountWanted state = { "/state", 1 }, late_state = { "/state", 1 };
  g_assert_true (test_subscriber_wait (early, has_count, &state));
  count_wanted_clear (&state);

  TestSubscriber *late = test_subscriber_new (broker, "ret/#", NULL, NULL,
      NULL);
  g_assert_true (test_subscriber_wait (late, has_count, &late_state));
  count_wanted_clear (&late_state);
  g_autoptr (GPtrArray) messages = test_subscriber_messages (late);
  gboolean seen_state = FALSE, seen_status = FALSE;
  for (guint i = 0; i < messages->len; i++) {
    TestMessage *m = messages->pdata[i];
    g_autoptr (JsonObject) o = parse_object (m->payload);
    check_document (o, "door");
    if (g_str_equal (m->topic, "ret/door/state")) {
      g_assert_true (m->retained);
      g_assert_cmpstr (json_object_get_string_member (o, "label"), ==, "a cat");
      seen_state = TRUE;
    } else if (g_str_equal (m->topic, "ret/door/status")) {
      g_assert_true (m->retained);
      g_assert_cmpstr (json_object_get_string_member (o, "status"), ==,
          "online");
      seen_status = TRUE;
    }
  }
  g_assert_true (seen_state && seen_status);
  publish_teardown (h);
  test_subscriber_free (early);
  test_subscriber_free (late);
  test_broker_free (broker);
}

/* A pipeline process killed with SIGKILL: the broker sends its Last Will,
 * the stream's status offline. */
static void
test_last_will (void)
{
  if (!test_broker_available ())
    return;
  TestBroker *broker = test_broker_start ("allow_anonymous true");
  TestSubscriber *sub = test_subscriber_new (broker, "will/#", NULL, NULL,
      NULL);
  g_autofree char *address = g_strdup_printf ("address=127.0.0.1:%d",
      broker->port);
  char *argv[] = { "gst-launch-1.0", "-q", "videotestsrc", "is-live=true", "!",
    "clippublish", address, "topic=will/{name}", "stream-name=gate", "!",
    "fakesink", NULL };
  GPid pid;
  g_autoptr (GError) error = NULL;
  g_spawn_async (NULL, argv, NULL,
      G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
      &error);
  g_assert_no_error (error);

  StatusWanted online = { "online", FALSE }, will = { "offline", TRUE };
  g_assert_true (test_subscriber_wait (sub, has_status, &online));
  g_autoptr (GPtrArray) before = test_subscriber_messages (sub);
  g_assert_false (has_status (before, &will));
  kill (pid, SIGKILL);
  waitpid (pid, NULL, 0);
  g_spawn_close_pid (pid);
  g_assert_true (test_subscriber_wait (sub, has_status, &will));

  g_autoptr (GPtrArray) messages = test_subscriber_messages (sub);
  TestMessage *last = messages->pdata[messages->len - 1];
  g_assert_cmpstr (last->topic, ==, "will/gate/status");
  g_autoptr (JsonObject) o = parse_object (last->payload);
  check_document (o, "gate");
  test_subscriber_free (sub);
  test_broker_free (broker);
}

/* Waits (at most 20 s) until the element has every document acknowledged. */
static void
wait_nothing_pending (GstHarness *h)
{
  guint pending = G_MAXUINT;
  for (int i = 0; i < 2000 && pending > 0; i++) {
    g_object_get (h->element, "pending", &pending, NULL);
    if (pending > 0)
      g_usleep (10000);
  }
  g_assert_cmpuint (pending, ==, 0);
}

/* The broker killed mid-stream and restarted: video flows and the element
 * stays PLAYING; documents made during the outage wait in the queue, the
 * oldest beyond max-queue dropped and counted exactly; after the restart
 * the queued ones arrive. The broker keeps the subscriber's session on
 * disk, so that nothing sent after the restart is missed. */
static void
test_outage (void)
{
  if (!test_broker_available ())
    return;
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *options = g_strdup_printf ("allow_anonymous true\n"
                                              "persistence true\n"
                                              "persistence_location %s/\n"
                                              "autosave_on_changes true\n"
                                              "autosave_interval 1",
      dir);
  TestBroker *broker = test_broker_start (options);
  TestSubscriber *sub = test_subscriber_new (broker, "out/#", "outage-sub",
      NULL, NULL);
  g_autofree char *address = g_strdup_printf ("127.0.0.1:%d", broker->port);
  const guint max_queue = 50, before = 10, during = 80;
  GstHarness *h = publish_harness ("address", address, "topic", "out/{name}",
      "stream-name", "yard", "qos", 1, "publish-results", TRUE, "max-queue",
      max_queue, NULL);

  /* status 0; frame 0: result 1, event 2, state 3; frames 1-9: 4-12 */
  for (guint i = 0; i < before; i++)
    push_frame (h, i, 0);
  guint sent_before = 3 + before;
  CountWanted first = { "", sent_before };
  /* The broker acknowledges each document as it queues it for the
   * subscriber, and the element reads those acknowledgements before it sees
   * the connection close: with all of them at the subscriber, none is left
   * in flight to be sent again. */
  g_assert_true (test_subscriber_wait (sub, has_count, &first));
  count_wanted_clear (&first);
  /* and the element has read every acknowledgement: a broker killed with
   * acknowledgements unread resets the connection, which can discard them,
   * and the unacknowledged documents would be sent again */
  wait_nothing_pending (h);

  test_broker_kill (broker);
  g_autofree char *lost = wait_warning ();
  g_assert_nonnull (strstr (lost, "Lost the connection"));
  for (guint i = 0; i < during; i++)
    push_frame (h, before + i, 0);
  g_assert_true (playing (h));
  guint64 dropped;
  g_object_get (h->element, "dropped", &dropped, NULL);
  g_assert_cmpuint (dropped, ==, during - max_queue);
  g_autofree char *full = wait_warning ();
  g_assert_nonnull (strstr (full, "queue"));

  test_broker_restart (broker);
  CountWanted all = { "", sent_before + max_queue };
  g_assert_true (test_subscriber_wait (sub, has_count, &all));
  count_wanted_clear (&all);
  g_assert_true (playing (h));

  g_autoptr (GPtrArray) messages = test_subscriber_messages (sub);
  g_autoptr (GHashTable) seen = sequences (messages, "");
  g_assert_cmpuint (g_hash_table_size (seen), ==, sent_before + max_queue);
  for (guint seq = 0; seq < sent_before + during; seq++)
    g_assert_cmpint (g_hash_table_contains (seen, GSIZE_TO_POINTER (seq)), ==,
        seq < sent_before || seq >= sent_before + during - max_queue);
  g_object_get (h->element, "dropped", &dropped, NULL);
  g_assert_cmpuint (dropped, ==, during - max_queue);
  publish_teardown (h);
  test_subscriber_free (sub);
  test_broker_free (broker);
}

/* Pushes frames through a publisher that cannot connect: a warning naming
 * the cause, and the video flows. */
static void
assert_connect_warning (GstHarness *h, const char *cause)
{
  for (guint i = 0; i < 10; i++)
    push_frame (h, i, i % 2);
  g_autofree char *text = wait_warning ();
  if (strstr (text, cause) == NULL)
    g_error ("warning \"%s\" does not say \"%s\"", text, cause);
  for (guint i = 10; i < 20; i++)
    push_frame (h, i, i % 2);
  g_assert_true (playing (h));
  publish_teardown (h);
}

static void
test_wrong_address (void)
{
  g_autofree char *address = g_strdup_printf ("127.0.0.1:%d",
      test_free_port ());
  assert_connect_warning (publish_harness ("address", address, NULL),
      "Connection refused");
}

static void
make_certificate (const char *dir, const char *name, const char *cn)
{
  g_autofree char *key = g_strdup_printf ("%s/%s.key", dir, name);
  g_autofree char *cert = g_strdup_printf ("%s/%s.crt", dir, name);
  g_autofree char *subject = g_strdup_printf ("/CN=%s", cn);
  char *argv[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
    "-days", "2", "-subj", subject, NULL };
  int status;
  g_autoptr (GError) error = NULL;
  g_spawn_sync (NULL, argv, NULL,
      G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL
          | G_SPAWN_STDERR_TO_DEV_NULL,
      NULL, NULL, NULL, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
}

/* The broker's certificate is signed by an authority the element does not
 * trust: the handshake fails, and the warning says so. */
static void
test_tls_refused (void)
{
  if (!test_broker_available ())
    return;
  g_autofree char *dir = clip_test_tmpdir ();
  make_certificate (dir, "broker", "127.0.0.1");
  make_certificate (dir, "other-ca", "another authority");
  g_autofree char *options = g_strdup_printf ("allow_anonymous true\n"
                                              "certfile %s/broker.crt\n"
                                              "keyfile %s/broker.key",
      dir, dir);
  TestBroker *broker = test_broker_start (options);
  g_autofree char *address = g_strdup_printf ("127.0.0.1:%d", broker->port);
  g_autofree char *ca = g_strdup_printf ("%s/other-ca.crt", dir);
  assert_connect_warning (
      publish_harness ("address", address, "tls-ca-file", ca, NULL),
      "certificate verify failed");
  test_broker_free (broker);
}

/* A wrong password: the broker refuses, the warning says why; the right
 * one connects. */
static void
test_password (void)
{
  if (!test_broker_available ())
    return;
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *passwords = g_build_filename (dir, "passwords", NULL);
  char *argv[] = { "mosquitto_passwd", "-b", "-c", passwords, "camera",
    "right horse", NULL };
  int status;
  g_autoptr (GError) error = NULL;
  g_spawn_sync (NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
      &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_autofree char *options = g_strdup_printf ("allow_anonymous false\n"
                                              "password_file %s",
      passwords);
  TestBroker *broker = test_broker_start (options);
  g_autofree char *address = g_strdup_printf ("127.0.0.1:%d", broker->port);

  g_autofree char *wrong = g_build_filename (dir, "wrong", NULL);
  g_autofree char *right = g_build_filename (dir, "right", NULL);
  g_assert_true (g_file_set_contents (wrong, "wrong horse\n", -1, NULL));
  g_assert_true (g_file_set_contents (right, "right horse\n", -1, NULL));
  assert_connect_warning (publish_harness ("address", address, "username",
                              "camera", "password-file", wrong, NULL),
      "not authorised");

  TestSubscriber *sub = test_subscriber_new (broker, "pw/#", NULL, "camera",
      "right horse");
  GstHarness *h = publish_harness ("address", address, "username", "camera",
      "password-file", right, "topic", "pw/{name}", NULL);
  push_frame (h, 0, 0);
  CountWanted event = { "/event", 1 };
  g_assert_true (test_subscriber_wait (sub, has_count, &event));
  count_wanted_clear (&event);
  publish_teardown (h);
  test_subscriber_free (sub);
  test_broker_free (broker);
}

/* 10,000 events through one connection at QoS 1: every one arrives. */
static void
test_many_events (void)
{
  if (!test_broker_available ())
    return;
  const guint n = 10000;
  TestBroker *broker = test_broker_start ("allow_anonymous true");
  TestSubscriber *sub = test_subscriber_new (broker, "many/+/event", NULL, NULL,
      NULL);
  g_autofree char *address = g_strdup_printf ("127.0.0.1:%d", broker->port);
  /* room for every event and state: nothing may be dropped */
  GstHarness *h = publish_harness ("address", address, "topic", "many/{name}",
      "qos", 1, "max-queue", 3 * n, NULL);
  for (guint i = 0; i < n; i++)
    push_frame (h, i, i % 2);
  CountWanted events = { "/event", n };
  g_assert_true (test_subscriber_wait (sub, has_count, &events));
  count_wanted_clear (&events);
  guint64 dropped;
  g_object_get (h->element, "dropped", &dropped, NULL);
  g_assert_cmpuint (dropped, ==, 0);
  publish_teardown (h);
  test_subscriber_free (sub);
  test_broker_free (broker);
}

typedef struct {
  const char *label;
} EventWanted;

static gboolean
has_event (GPtrArray *messages, gpointer data)
{
  const EventWanted *want = data;
  g_autofree char *member = g_strdup_printf ("\"label\":\"%s\"", want->label);
  for (guint i = 0; i < messages->len; i++) {
    TestMessage *m = messages->pdata[i];
    if (g_str_has_suffix (m->topic, "/event")
        && strstr (m->payload, member) != NULL)
      return TRUE;
  }
  return FALSE;
}

/* pipelines/publish-camera.sh, a test source standing in for the camera:
 * the label's event arrives, and the status goes offline at the end. */
static void
test_script (void)
{
  if (!test_broker_available ())
    return;
  TestBroker *broker = test_broker_start ("allow_anonymous true");
  TestSubscriber *sub = test_subscriber_new (broker, "gst-clip/porch/#", NULL,
      NULL, NULL);
  g_autofree char *script = g_build_filename (g_getenv ("CLIP_PIPELINES_DIR"),
      "publish-camera.sh", NULL);
  g_autofree char *model = g_build_filename (g_getenv ("CLIP_SOURCE_DIR"),
      "models", "default", NULL);
  g_autofree char *address = g_strdup_printf ("127.0.0.1:%d", broker->port);
  char **env = g_get_environ ();
  env = g_environ_setenv (env, "CLIP_MODEL", model, TRUE);
  env = g_environ_unsetenv (env, "CLIP_VOCAB");
  env = g_environ_setenv (env, "CLIP_LABELS", "smpte color bars,red frame",
      TRUE);
  env = g_environ_setenv (env, "CLIP_CAMERA_SRC",
      "videotestsrc pattern=red num-buffers=60", TRUE);
  env = g_environ_setenv (env, "CLIP_MQTT_ADDRESS", address, TRUE);
  env = g_environ_setenv (env, "CLIP_STREAM_NAME", "porch", TRUE);
  char *argv[] = { "bash", script, NULL };
  int status;
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (GError) error = NULL;
  g_spawn_sync (NULL, argv, env, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
      &status, &error);
  g_strfreev (env);
  g_assert_no_error (error);
  g_test_message ("stdout:\n%s\nstderr:\n%s", out, err);
  g_assert_true (g_spawn_check_wait_status (status, NULL));

  EventWanted red = { "red frame" };
  g_assert_true (test_subscriber_wait (sub, has_event, &red));
  g_assert_true (test_subscriber_wait (sub, has_offline, NULL));
  test_subscriber_free (sub);
  test_broker_free (broker);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/clippublish/schema", test_schema);
  g_test_add_func ("/clippublish/file", test_file);
  g_test_add_func ("/clippublish/retained", test_retained);
  g_test_add_func ("/clippublish/last-will", test_last_will);
  g_test_add_func ("/clippublish/outage", test_outage);
  g_test_add_func ("/clippublish/wrong-address", test_wrong_address);
  g_test_add_func ("/clippublish/tls-refused", test_tls_refused);
  g_test_add_func ("/clippublish/password", test_password);
  g_test_add_func ("/clippublish/many-events", test_many_events);
  g_test_add_func ("/clippublish/script", test_script);
  return g_test_run ();
}
