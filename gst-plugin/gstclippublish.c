/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-clippublish
 * @title: clippublish
 *
 * Publishes the #GstClipMeta results that clipclassify attaches to buffers
 * as JSON documents to an MQTT broker (through libmosquitto), or writes the
 * same documents as JSON Lines to a file, while the buffers pass through
 * untouched.
 *
 * Every document is one JSON object with a "type" member, the stream name
 * ("stream", the stream-name property or else the element's name), a
 * sequence number ("seq", counting the stream's documents from 0, so that a
 * subscriber sees a gap or a repeat) and the wall-clock time it was made
 * ("time", ISO 8601 in UTC); docs/publish.md has the schema and an example of
 * each. The topic property is a prefix; the documents go to:
 * - PREFIX/event: a label change. A new top label must hold for min-segment,
 *   counting only frames whose top score reaches min-score, and the same
 *   label fires again only cooldown after its last event.
 *   `{"type":"event","stream":"cam1","seq":7,"time":"...","label":"a dog",
 *   "score":0.83,"start":12.5,"previous":"a cat"}`
 * - PREFIX/state, retained: the stream's current label (null when none
 *   holds), sent on every change, so that a subscriber that connects later
 *   (Home Assistant, say) sees it at once. Cooldown does not apply.
 * - PREFIX/result, only with publish-results: every analysed frame, as
 *   clipexport's jsonl lines plus "top-score".
 * - PREFIX/status, retained: "online" when the element starts, "offline"
 *   when it stops, and "offline" as the connection's Last Will, which the
 *   broker sends when the process dies or the network goes.
 *
 * In the topic, {name} stands for the stream name and {label} for the
 * document's label (the new label, the state's, the frame's top label;
 * "none" where there is none); '/', '+' and '#' in them become '_'.
 *
 * The streaming thread never waits for the network: documents go into a
 * queue of at most max-queue documents, which a network thread sends.
 * While the broker cannot be reached the documents wait there, at either
 * qos, and the thread reconnects after 0.5 s, then after twice as long each
 * time, up to 10 s; documents in flight when a connection was lost are sent
 * again (at qos=1 a subscriber may then see a document twice: its seq tells).
 * When the queue is full, the oldest document is dropped; the dropped
 * property counts them, and the first drop posts a warning. Failing to
 * connect (wrong address, TLS handshake refused, name or password refused)
 * posts a warning naming the cause, once per outage, and video keeps
 * flowing. When the element stops, it sends its "offline" status and the
 * documents still queued for up to 5 s, then disconnects.
 *
 * With method=file the same documents (without the Last Will) are written
 * to location, one per line, each with one write() as the frame passes,
 * so that events can be tested and archived without a broker.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 v4l2src ! queue ! videoconvert ! clipclassify labels="a person,a cat,an empty room" interval=3 ! clippublish address=broker.local:1883 stream-name=porch min-segment=2000000000 min-score=0.6 cooldown=60000000000 ! fakesink
 * ]| Publishes to gst-clip/porch/event each label that holds for 2 s with a
 * probability of at least 0.6 (the same label at most once a minute), and
 * the current label to gst-clip/porch/state.
 */
#include "gstclippublish.h"
#include "gstclipelement.h"
#include "gstclipmeta.h"
#include "publish.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <mosquitto.h>
#include <string.h>
#include <unistd.h>

GST_DEBUG_CATEGORY_STATIC (gst_clip_publish_debug);
#define GST_CAT_DEFAULT gst_clip_publish_debug

#define DEFAULT_METHOD GST_CLIP_PUBLISH_METHOD_MQTT
#define DEFAULT_ADDRESS "localhost:1883"
#define DEFAULT_PORT 1883
#define DEFAULT_TOPIC "gst-clip/{name}"
#define DEFAULT_QOS 1
#define DEFAULT_MIN_SEGMENT 0
#define DEFAULT_MIN_SCORE 0.0f
#define DEFAULT_COOLDOWN 0
#define DEFAULT_PUBLISH_RESULTS FALSE
#define DEFAULT_KEEP_ALIVE 60
#define DEFAULT_MAX_QUEUE 1000

/* Reconnecting: the first wait, and the longest. */
#define FIRST_BACKOFF (G_USEC_PER_SEC / 2)
#define MAX_BACKOFF (10 * G_USEC_PER_SEC)
/* How long stop waits for the queue to empty. */
#define DRAIN_TIME (5 * G_USEC_PER_SEC)
/* How long the network thread waits on the socket before it looks at the
 * queue again, in milliseconds. */
#define POLL_MS 20
/* Documents handed to libmosquitto and not yet acknowledged. */
#define WINDOW 64

enum {
  PROP_0,
  PROP_METHOD,
  PROP_LOCATION,
  PROP_ADDRESS,
  PROP_TOPIC,
  PROP_STREAM_NAME,
  PROP_QOS,
  PROP_MIN_SEGMENT,
  PROP_MIN_SCORE,
  PROP_COOLDOWN,
  PROP_PUBLISH_RESULTS,
  PROP_CLIENT_ID,
  PROP_USERNAME,
  PROP_PASSWORD_FILE,
  PROP_TLS_CA_FILE,
  PROP_KEEP_ALIVE,
  PROP_MAX_QUEUE,
  PROP_DROPPED,
  PROP_PENDING,
};

/* A document waiting to be sent, or in flight. */
typedef struct {
  guint64 order; /* for putting documents in flight back in order */
  char *topic;
  char *payload;
  gsize length;
  gboolean retain;
  int mid; /* libmosquitto's message id, while in flight */
} Message;

static void
message_free (Message *m)
{
  g_free (m->topic);
  g_free (m->payload);
  g_free (m);
}

typedef enum {
  LINK_CONNECTING, /* connected, waiting for the broker's CONNACK */
  LINK_UP,
  LINK_REFUSED,
} LinkState;

struct _GstClipPublish {
  GstBaseTransform parent;

  /* properties, under the object lock */
  GstClipPublishMethod method;
  char *location, *address, *topic, *stream_name;
  guint qos;
  GstClockTime min_segment, cooldown;
  gfloat min_score;
  gboolean publish_results;
  char *client_id, *username, *password_file, *tls_ca_file;
  guint keep_alive, max_queue;

  /* between start and stop; set by start, then read-only, except where
   * said */
  GstClipPublishMethod running_method;
  char *name;
  char *topic_prefix;
  int fd; /* the file method's */
  char *file_name;
  char *host;
  int port, running_qos, running_keep_alive;
  char *running_client_id, *running_username, *password, *running_ca_file;
  guint running_max_queue;
  /* the streaming thread's */
  ClipEventTracker tracker;
  guint64 sequence;

  /* under queue_lock */
  GMutex queue_lock;
  GCond queue_cond;
  GQueue queue; /* of Message, oldest first */
  guint64 order, dropped;
  gboolean stopping;

  /* the network thread's */
  GThread *thread;
  struct mosquitto *mosq;
  LinkState link;
  int refusal;           /* CONNACK's code, when LINK_REFUSED */
  GHashTable *in_flight; /* mid -> Message */
  gint n_in_flight;      /* its size, atomic, for the pending property */
  GHashTable *done;      /* mids acknowledged before mosquitto_publish
                          * returned */
  char *last_log_error;  /* libmosquitto's last error log line */
};

#define gst_clip_publish_parent_class parent_class
G_DEFINE_FINAL_TYPE (GstClipPublish, gst_clip_publish, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (clippublish, "clippublish",
    GST_RANK_NONE, GST_TYPE_CLIP_PUBLISH,
    GST_DEBUG_CATEGORY_INIT (gst_clip_publish_debug, "clippublish", 0,
        "CLIP results publisher"));

GType
gst_clip_publish_method_get_type (void)
{
  static GType type;
  static const GEnumValue values[] = {
    { GST_CLIP_PUBLISH_METHOD_MQTT, "Publish to an MQTT broker", "mqtt" },
    { GST_CLIP_PUBLISH_METHOD_FILE, "Write JSON Lines to a file", "file" },
    { 0, NULL, NULL },
  };
  return gst_clip_enum_register_once (&type, "GstClipPublishMethod", values);
}

/* ----------------------------------------------------------------- queue */

/* Drops the oldest documents until there is room for one more; under
 * queue_lock. Returns TRUE for the first drop of the element's life. */
static gboolean
make_room (GstClipPublish *self)
{
  gboolean first = FALSE;
  while (self->queue.length >= self->running_max_queue) {
    message_free (g_queue_pop_head (&self->queue));
    first |= self->dropped == 0;
    self->dropped++;
  }
  return first;
}

static void
warn_dropping (GstClipPublish *self)
{
  GST_ELEMENT_WARNING (self, RESOURCE, WRITE,
      ("The queue of documents to publish is full (max-queue=%u): dropping "
       "the oldest.",
          self->running_max_queue),
      ("The broker at %s:%d is unreachable or slower than the results.",
          self->host, self->port));
}

/* Hands one document to the network thread; never waits for it. */
static void
enqueue (GstClipPublish *self, char *topic, GString *document, gboolean retain)
{
  Message *m = g_new0 (Message, 1);
  m->topic = topic;
  m->length = document->len;
  m->payload = g_string_free (document, FALSE);
  m->retain = retain;

  g_mutex_lock (&self->queue_lock);
  gboolean first_drop = make_room (self);
  m->order = self->order++;
  g_queue_push_tail (&self->queue, m);
  g_cond_signal (&self->queue_cond);
  g_mutex_unlock (&self->queue_lock);
  if (first_drop)
    warn_dropping (self);
}

/* Writes one document as a line of the file; FALSE after posting an
 * error. */
static gboolean
write_line (GstClipPublish *self, GString *document)
{
  g_string_append_c (document, '\n');
  gssize written = write (self->fd, document->str, document->len);
  int saved = errno;
  gboolean ok = written == (gssize) document->len;
  if (!ok)
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
        ("Could not write to file \"%s\".", self->file_name),
        ("%s", written < 0 ? g_strerror (saved) : "short write"));
  g_string_free (document, TRUE);
  return ok;
}

/* Sends or writes one document of the stream; document is consumed. */
static gboolean
publish (GstClipPublish *self, ClipDocumentType type, const char *label,
    GString *document, gboolean retain)
{
  if (self->running_method == GST_CLIP_PUBLISH_METHOD_FILE)
    return write_line (self, document);
  enqueue (self,
      clip_document_topic (self->topic_prefix, self->name, label, type),
      document, retain);
  return TRUE;
}

static ClipDocumentHeader
next_header (GstClipPublish *self)
{
  return (ClipDocumentHeader) {
    .stream = self->name,
    .sequence = self->sequence++,
    .time = g_get_real_time (),
  };
}

static gboolean
publish_status (GstClipPublish *self, gboolean online)
{
  ClipDocumentHeader header = next_header (self);
  GString *document = g_string_new (NULL);
  clip_document_append_status (document, &header, online);
  return publish (self, CLIP_DOCUMENT_STATUS, NULL, document, TRUE);
}

/* --------------------------------------------------------- network thread */

static void
on_connect (struct mosquitto *mosq, void *data, int rc)
{
  GstClipPublish *self = data;
  self->link = rc == 0 ? LINK_UP : LINK_REFUSED;
  self->refusal = rc;
}

/* Publishes the in-flight count for the pending property; called by the
 * network thread after every change of in_flight. */
static void
count_in_flight (GstClipPublish *self)
{
  g_atomic_int_set (&self->n_in_flight, g_hash_table_size (self->in_flight));
}

static void
on_publish (struct mosquitto *mosq, void *data, int mid)
{
  GstClipPublish *self = data;
  if (!g_hash_table_remove (self->in_flight, GINT_TO_POINTER (mid)))
    g_hash_table_add (self->done, GINT_TO_POINTER (mid));
  count_in_flight (self);
}

static void
on_log (struct mosquitto *mosq, void *data, int level, const char *text)
{
  GstClipPublish *self = data;
  GST_DEBUG_OBJECT (self, "libmosquitto: %s", text);
  if (level == MOSQ_LOG_ERR) {
    g_free (self->last_log_error);
    self->last_log_error = g_strdup (text);
  }
}

/* Why libmosquitto's call failed, in words. */
static char *
describe_failure (GstClipPublish *self, int rc, int saved_errno)
{
  const char *what = rc == MOSQ_ERR_ERRNO ? g_strerror (saved_errno)
                                          : mosquitto_strerror (rc);
  if (rc == MOSQ_ERR_TLS && self->last_log_error != NULL)
    return g_strdup_printf ("TLS handshake failed (%s)", self->last_log_error);
  /* The messages end with a full stop; the warnings add their own. */
  char *text = g_strdup (what);
  gsize len = strlen (text);
  if (len > 0 && text[len - 1] == '.')
    text[len - 1] = '\0';
  return text;
}

/* A new client, connected (or connecting) to the broker; NULL and *cause
 * when it fails. */
static struct mosquitto *
connect_broker (GstClipPublish *self, char **cause)
{
  struct mosquitto *mosq = mosquitto_new (self->running_client_id, TRUE, self);
  if (mosq == NULL) {
    *cause = g_strdup (g_strerror (errno));
    return NULL;
  }
  mosquitto_connect_callback_set (mosq, on_connect);
  mosquitto_publish_callback_set (mosq, on_publish);
  mosquitto_log_callback_set (mosq, on_log);
  mosquitto_max_inflight_messages_set (mosq, WINDOW);
  g_clear_pointer (&self->last_log_error, g_free);

  ClipDocumentHeader will_header = { .stream = self->name,
    .sequence = CLIP_DOCUMENT_NO_SEQUENCE,
    .time = -1 };
  g_autoptr (GString) will = g_string_new (NULL);
  clip_document_append_status (will, &will_header, FALSE);
  g_autofree char *will_topic = clip_document_topic (self->topic_prefix,
      self->name, NULL, CLIP_DOCUMENT_STATUS);

  int rc = mosquitto_will_set (mosq, will_topic, will->len, will->str,
      self->running_qos, TRUE);
  if (rc == MOSQ_ERR_SUCCESS && self->running_username != NULL)
    rc = mosquitto_username_pw_set (mosq, self->running_username,
        self->password);
  if (rc == MOSQ_ERR_SUCCESS && self->running_ca_file != NULL)
    rc = mosquitto_tls_set (mosq, self->running_ca_file, NULL, NULL, NULL,
        NULL);
  if (rc == MOSQ_ERR_SUCCESS) {
    self->link = LINK_CONNECTING;
    rc = mosquitto_connect (mosq, self->host, self->port,
        self->running_keep_alive);
  }
  if (rc != MOSQ_ERR_SUCCESS) {
    *cause = describe_failure (self, rc, errno);
    mosquitto_destroy (mosq);
    return NULL;
  }
  return mosq;
}

static gint
by_order (gconstpointer a, gconstpointer b)
{
  guint64 x = ((const Message *) a)->order, y = ((const Message *) b)->order;
  return x < y ? -1 : x > y;
}

/* Closes the connection; the documents in flight go back to the front of
 * the queue, to be sent again on the next one. */
static void
drop_connection (GstClipPublish *self)
{
  g_clear_pointer (&self->mosq, mosquitto_destroy);
  g_hash_table_remove_all (self->done);

  GList *back = g_list_sort (g_hash_table_get_values (self->in_flight),
      by_order);
  g_hash_table_steal_all (self->in_flight);
  count_in_flight (self);
  g_mutex_lock (&self->queue_lock);
  for (GList *l = g_list_last (back); l != NULL; l = l->prev)
    g_queue_push_head (&self->queue, l->data);
  gboolean first_drop = FALSE;
  while (self->queue.length > self->running_max_queue) {
    message_free (g_queue_pop_head (&self->queue));
    first_drop |= self->dropped == 0;
    self->dropped++;
  }
  g_mutex_unlock (&self->queue_lock);
  g_list_free (back);
  if (first_drop)
    warn_dropping (self);
}

/* Hands queued documents to libmosquitto, up to WINDOW in flight. */
static void
send_queued (GstClipPublish *self)
{
  while (g_hash_table_size (self->in_flight) < WINDOW) {
    g_mutex_lock (&self->queue_lock);
    Message *m = g_queue_pop_head (&self->queue);
    g_mutex_unlock (&self->queue_lock);
    if (m == NULL)
      return;

    int rc = mosquitto_publish (self->mosq, &m->mid, m->topic, m->length,
        m->payload, self->running_qos, m->retain);
    if (rc != MOSQ_ERR_SUCCESS) {
      /* The connection is going; the loop will tell. */
      GST_DEBUG_OBJECT (self, "publish: %s", mosquitto_strerror (rc));
      g_mutex_lock (&self->queue_lock);
      g_queue_push_head (&self->queue, m);
      g_mutex_unlock (&self->queue_lock);
      return;
    }
    if (g_hash_table_remove (self->done, GINT_TO_POINTER (m->mid)))
      message_free (m);
    else
      g_hash_table_insert (self->in_flight, GINT_TO_POINTER (m->mid), m);
    count_in_flight (self);
  }
}

/* Waits *backoff (or less, when the element stops), then doubles it. */
static void
wait_backoff (GstClipPublish *self, gint64 *backoff)
{
  gint64 until = g_get_monotonic_time () + *backoff;
  g_mutex_lock (&self->queue_lock);
  while (!self->stopping
      && g_cond_wait_until (&self->queue_cond, &self->queue_lock, until))
    ;
  g_mutex_unlock (&self->queue_lock);
  *backoff = MIN (*backoff * 2, MAX_BACKOFF);
}

static gboolean
all_sent (GstClipPublish *self)
{
  g_mutex_lock (&self->queue_lock);
  gboolean empty = self->queue.length == 0;
  g_mutex_unlock (&self->queue_lock);
  return empty && g_hash_table_size (self->in_flight) == 0;
}

/* Connects, sends, and reconnects, until the element stops; then sends
 * what is left while it can, for up to DRAIN_TIME. */
static gpointer
network_thread (gpointer data)
{
  GstClipPublish *self = data;
  gint64 backoff = FIRST_BACKOFF, drain_until = -1;
  gboolean was_up = FALSE, warned = FALSE, tried = FALSE;

  for (;;) {
    g_mutex_lock (&self->queue_lock);
    gboolean stopping = self->stopping;
    g_mutex_unlock (&self->queue_lock);
    if (stopping) {
      if (drain_until < 0)
        drain_until = g_get_monotonic_time () + DRAIN_TIME;
      /* Nothing left, or no connection to send it on. */
      if ((self->mosq == NULL && tried) || all_sent (self)
          || g_get_monotonic_time () > drain_until)
        break;
    }

    g_autofree char *cause = NULL;
    if (self->mosq == NULL) {
      self->mosq = connect_broker (self, &cause);
      tried = TRUE;
      if (self->mosq == NULL) {
        GST_INFO_OBJECT (self, "connecting to %s:%d: %s", self->host,
            self->port, cause);
        if (!warned)
          GST_ELEMENT_WARNING (self, RESOURCE, OPEN_WRITE,
              ("Could not connect to the MQTT broker at %s:%d: %s.", self->host,
                  self->port, cause),
              ("Retrying, at most every %d s; documents wait in the queue.",
                  (int) (MAX_BACKOFF / G_USEC_PER_SEC)));
        warned = TRUE;
        wait_backoff (self, &backoff);
        continue;
      }
    }

    if (self->link == LINK_UP) {
      if (!was_up)
        GST_INFO_OBJECT (self, "connected to %s:%d", self->host, self->port);
      was_up = TRUE;
      warned = FALSE;
      backoff = FIRST_BACKOFF;
      send_queued (self);
    }

    int rc = mosquitto_loop (self->mosq, POLL_MS, 1);
    int saved = errno;
    if (self->link == LINK_REFUSED) {
      GST_INFO_OBJECT (self, "refused: %s",
          mosquitto_connack_string (self->refusal));
      if (!warned)
        GST_ELEMENT_WARNING (self, RESOURCE, OPEN_WRITE,
            ("The MQTT broker at %s:%d refused the connection: %s", self->host,
                self->port, mosquitto_connack_string (self->refusal)),
            ("Check username and password-file."));
      warned = TRUE;
      drop_connection (self);
      wait_backoff (self, &backoff);
    } else if (rc != MOSQ_ERR_SUCCESS) {
      cause = describe_failure (self, rc, saved);
      GST_INFO_OBJECT (self, "connection lost: %s", cause);
      if (!warned && was_up)
        GST_ELEMENT_WARNING (self, RESOURCE, WRITE,
            ("Lost the connection to the MQTT broker at %s:%d: %s.", self->host,
                self->port, cause),
            ("Reconnecting; documents wait in the queue."));
      else if (!warned)
        GST_ELEMENT_WARNING (self, RESOURCE, OPEN_WRITE,
            ("Could not connect to the MQTT broker at %s:%d: %s.", self->host,
                self->port, cause),
            ("Retrying; documents wait in the queue."));
      warned = TRUE;
      was_up = FALSE;
      drop_connection (self);
      wait_backoff (self, &backoff);
    }
  }

  if (self->mosq != NULL && self->link == LINK_UP) {
    /* A clean disconnect: the broker keeps the Last Will to itself. */
    mosquitto_disconnect (self->mosq);
    mosquitto_loop (self->mosq, POLL_MS, 1);
  }
  g_clear_pointer (&self->mosq, mosquitto_destroy);
  guint unsent = g_hash_table_size (self->in_flight);
  g_mutex_lock (&self->queue_lock);
  unsent += self->queue.length;
  g_queue_clear_full (&self->queue, (GDestroyNotify) message_free);
  g_mutex_unlock (&self->queue_lock);
  g_hash_table_remove_all (self->in_flight);
  count_in_flight (self);
  g_hash_table_remove_all (self->done);
  if (unsent > 0)
    GST_WARNING_OBJECT (self, "stopped with %u documents unsent", unsent);
  return NULL;
}

/* -------------------------------------------------------------- streaming */

static GstFlowReturn
gst_clip_publish_transform_ip (GstBaseTransform *trans, GstBuffer *buffer)
{
  GstClipPublish *self = GST_CLIP_PUBLISH (trans);
  GstClipMeta *meta = gst_buffer_get_clip_meta (buffer);
  if (meta == NULL || !gst_clip_meta_is_fresh (meta))
    return GST_FLOW_OK;

  ClipFrameRecord frame;
  gst_clip_frame_record_from_meta (&frame, meta);

  GST_OBJECT_LOCK (self);
  GstClockTime min_segment = self->min_segment, cooldown = self->cooldown;
  double min_score = self->min_score;
  gboolean publish_results = self->publish_results;
  GST_OBJECT_UNLOCK (self);

  gboolean ok = TRUE;
  if (publish_results) {
    ClipDocumentHeader header = next_header (self);
    GString *document = g_string_new (NULL);
    clip_document_append_result (document, &header, &frame);
    ok = publish (self, CLIP_DOCUMENT_RESULT, frame.top_label, document, FALSE);
  }

  ClipStateChange change = { 0 };
  if (ok
      && clip_event_tracker_push (&self->tracker, &frame, min_segment,
          min_score, cooldown, &change)) {
    if (change.event) {
      ClipDocumentHeader header = next_header (self);
      GString *document = g_string_new (NULL);
      clip_document_append_change (document, CLIP_DOCUMENT_EVENT, &header,
          &change);
      ok = publish (self, CLIP_DOCUMENT_EVENT, change.label, document, FALSE);
    }
    if (ok) {
      ClipDocumentHeader header = next_header (self);
      GString *document = g_string_new (NULL);
      clip_document_append_change (document, CLIP_DOCUMENT_STATE, &header,
          &change);
      ok = publish (self, CLIP_DOCUMENT_STATE, change.label, document, TRUE);
    }
    clip_state_change_clear (&change);
  }
  gst_clip_frame_record_clear (&frame);
  return ok ? GST_FLOW_OK : GST_FLOW_ERROR;
}

static gboolean
gst_clip_publish_sink_event (GstBaseTransform *trans, GstEvent *event)
{
  GstClipPublish *self = GST_CLIP_PUBLISH (trans);

  /* A seek restarts time: the state and the cooldowns start again. */
  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP)
    clip_event_tracker_reset (&self->tracker);
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

/* ---------------------------------------------------------- start and stop */

/* host:port, [v6 address]:port or host alone (port 1883). */
static gboolean
parse_address (const char *address, char **host, int *port)
{
  const char *colon = strrchr (address, ':');
  const char *bracket = strrchr (address, ']');
  if (address[0] == '[' && bracket == NULL)
    return FALSE;
  if (colon == NULL || (bracket != NULL && colon < bracket)) {
    *port = DEFAULT_PORT;
    colon = address + strlen (address);
  } else {
    guint64 value;
    if (!g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &value, NULL))
      return FALSE;
    *port = value;
  }
  if (address[0] == '[')
    *host = g_strndup (address + 1, bracket - address - 1);
  else
    *host = g_strndup (address, colon - address);
  return (*host)[0] != '\0';
}

/* The first line of the password file. */
static gboolean
read_password (GstClipPublish *self, const char *file)
{
  g_autoptr (GError) error = NULL;
  char *contents;
  if (!g_file_get_contents (file, &contents, NULL, &error)) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not read the password file \"%s\".", file),
        ("%s", error->message));
    return FALSE;
  }
  contents[strcspn (contents, "\r\n")] = '\0';
  self->password = contents;
  return TRUE;
}

static gboolean
open_file (GstClipPublish *self, const char *location)
{
  if (location == NULL || location[0] == '\0') {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No file name specified for writing (method=file needs location)."),
        (NULL));
    return FALSE;
  }
  self->fd = g_open (location, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (self->fd < 0) {
    int saved = errno;
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
        ("Could not open file \"%s\" for writing.", location),
        ("%s", g_strerror (saved)));
    return FALSE;
  }
  self->file_name = g_strdup (location);
  return TRUE;
}

/* Takes the properties that hold from start to stop. */
static void
take_settings (GstClipPublish *self)
{
  GST_OBJECT_LOCK (self);
  self->running_method = self->method;
  self->name = g_strdup (self->stream_name != NULL && self->stream_name[0]
          ? self->stream_name
          : GST_OBJECT_NAME (self));
  self->topic_prefix = g_strdup (self->topic);
  self->running_qos = self->qos;
  self->running_keep_alive = self->keep_alive;
  self->running_client_id = g_strdup (self->client_id);
  self->running_username = g_strdup (self->username);
  self->running_ca_file = g_strdup (self->tls_ca_file);
  self->running_max_queue = self->max_queue;
  GST_OBJECT_UNLOCK (self);
}

static gboolean
gst_clip_publish_start (GstBaseTransform *trans)
{
  GstClipPublish *self = GST_CLIP_PUBLISH (trans);

  take_settings (self);
  GST_OBJECT_LOCK (self);
  g_autofree char *location = g_strdup (self->location);
  g_autofree char *address = g_strdup (self->address);
  g_autofree char *password_file = g_strdup (self->password_file);
  GST_OBJECT_UNLOCK (self);

  self->sequence = 0;
  clip_event_tracker_init (&self->tracker);
  if (self->running_method == GST_CLIP_PUBLISH_METHOD_FILE)
    return open_file (self, location) && publish_status (self, TRUE);

  if (address == NULL || !parse_address (address, &self->host, &self->port)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Invalid broker address \"%s\": expected host:port.",
            GST_STR_NULL (address)),
        (NULL));
    return FALSE;
  }
  if (password_file != NULL && !read_password (self, password_file))
    return FALSE;

  self->stopping = FALSE;
  self->dropped = 0;
  self->in_flight = g_hash_table_new_full (NULL, NULL, NULL,
      (GDestroyNotify) message_free);
  self->done = g_hash_table_new (NULL, NULL);
  publish_status (self, TRUE);
  self->thread = g_thread_new ("clippublish", network_thread, self);
  return TRUE;
}

static gboolean
gst_clip_publish_stop (GstBaseTransform *trans)
{
  GstClipPublish *self = GST_CLIP_PUBLISH (trans);

  if (self->fd >= 0) {
    publish_status (self, FALSE);
    if (close (self->fd) != 0)
      GST_WARNING_OBJECT (self, "closing %s: %s", self->file_name,
          g_strerror (errno));
    self->fd = -1;
  }
  if (self->thread != NULL) {
    publish_status (self, FALSE);
    g_mutex_lock (&self->queue_lock);
    self->stopping = TRUE;
    g_cond_signal (&self->queue_cond);
    g_mutex_unlock (&self->queue_lock);
    g_clear_pointer (&self->thread, g_thread_join);
  }
  g_clear_pointer (&self->in_flight, g_hash_table_unref);
  g_clear_pointer (&self->done, g_hash_table_unref);
  g_clear_pointer (&self->last_log_error, g_free);
  if (self->tracker.last_event != NULL)
    clip_event_tracker_clear (&self->tracker);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->topic_prefix, g_free);
  g_clear_pointer (&self->file_name, g_free);
  g_clear_pointer (&self->host, g_free);
  g_clear_pointer (&self->running_client_id, g_free);
  g_clear_pointer (&self->running_username, g_free);
  g_clear_pointer (&self->password, g_free);
  g_clear_pointer (&self->running_ca_file, g_free);
  return TRUE;
}

/* ------------------------------------------------------------- properties */

static void
gst_clip_publish_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstClipPublish *self = GST_CLIP_PUBLISH (object);

  if (prop_id == PROP_DROPPED) {
    g_mutex_lock (&self->queue_lock);
    g_value_set_uint64 (value, self->dropped);
    g_mutex_unlock (&self->queue_lock);
  } else if (prop_id == PROP_PENDING) {
    g_mutex_lock (&self->queue_lock);
    guint queued = self->queue.length;
    g_mutex_unlock (&self->queue_lock);
    g_value_set_uint (value, queued + g_atomic_int_get (&self->n_in_flight));
  } else
    gst_clip_fields_get_property (object, prop_id, value, pspec);
}

static void
gst_clip_publish_finalize (GObject *object)
{
  GstClipPublish *self = GST_CLIP_PUBLISH (object);

  g_free (self->location);
  g_free (self->address);
  g_free (self->topic);
  g_free (self->stream_name);
  g_free (self->client_id);
  g_free (self->username);
  g_free (self->password_file);
  g_free (self->tls_ca_file);
  g_mutex_clear (&self->queue_lock);
  g_cond_clear (&self->queue_cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_clip_publish_init (GstClipPublish *self)
{
  self->method = DEFAULT_METHOD;
  self->address = g_strdup (DEFAULT_ADDRESS);
  self->topic = g_strdup (DEFAULT_TOPIC);
  self->qos = DEFAULT_QOS;
  self->min_segment = DEFAULT_MIN_SEGMENT;
  self->min_score = DEFAULT_MIN_SCORE;
  self->cooldown = DEFAULT_COOLDOWN;
  self->publish_results = DEFAULT_PUBLISH_RESULTS;
  self->keep_alive = DEFAULT_KEEP_ALIVE;
  self->max_queue = DEFAULT_MAX_QUEUE;
  self->fd = -1;
  g_mutex_init (&self->queue_lock);
  g_cond_init (&self->queue_cond);
  g_queue_init (&self->queue);
  /* Only reads metas: buffers are never made writable. */
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), TRUE);
}

static void
install_string (GObjectClass *klass, guint prop_id, gsize offset,
    const char *name, const char *nick, const char *blurb,
    const char *default_value)
{
  gst_clip_install_field_property (klass, prop_id, offset,
      g_param_spec_string (name, nick, blurb, default_value,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY));
}

static void
gst_clip_publish_class_init (GstClipPublishClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  const GParamFlags ready = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_READY;
  const GParamFlags playing = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_PLAYING;

  /* Not thread-safe, and needed once per process. */
  mosquitto_lib_init ();

  gobject_class->set_property = gst_clip_fields_set_property;
  gobject_class->get_property = gst_clip_publish_get_property;
  gobject_class->finalize = gst_clip_publish_finalize;

#define FIELD(f) G_STRUCT_OFFSET (GstClipPublish, f)
  gst_clip_install_field_property (gobject_class, PROP_METHOD, FIELD (method),
      g_param_spec_enum ("method", "Method",
          "Where the documents go: mqtt, to the broker at address; file, as "
          "JSON Lines to location",
          GST_TYPE_CLIP_PUBLISH_METHOD, DEFAULT_METHOD, ready));
  install_string (gobject_class, PROP_LOCATION, FIELD (location), "location",
      "Location",
      "File to write with method=file (created or truncated at start)", NULL);
  install_string (gobject_class, PROP_ADDRESS, FIELD (address), "address",
      "Address",
      "The MQTT broker, host:port ([v6 address]:port; port 1883 when left "
      "out)",
      DEFAULT_ADDRESS);
  install_string (gobject_class, PROP_TOPIC, FIELD (topic), "topic", "Topic",
      "Topic prefix: documents go to PREFIX/event, PREFIX/state, "
      "PREFIX/result and PREFIX/status; {name} is the stream name, {label} "
      "the document's label",
      DEFAULT_TOPIC);
  install_string (gobject_class, PROP_STREAM_NAME, FIELD (stream_name),
      "stream-name", "Stream name",
      "The stream's name in documents and topics; NULL = the element's name",
      NULL);
  gst_clip_install_field_property (gobject_class, PROP_QOS, FIELD (qos),
      g_param_spec_uint ("qos", "QoS",
          "MQTT quality of service: 0 = at most once, 1 = at least once", 0, 1,
          DEFAULT_QOS, ready));
  gst_clip_install_field_property (gobject_class, PROP_MIN_SEGMENT,
      FIELD (min_segment),
      g_param_spec_uint64 ("min-segment", "Minimum segment",
          "Nanoseconds a new top label must hold before it is an event and "
          "the state; 0 = at once",
          0, G_MAXUINT64, DEFAULT_MIN_SEGMENT, playing));
  gst_clip_install_field_property (gobject_class, PROP_MIN_SCORE,
      FIELD (min_score),
      g_param_spec_float ("min-score", "Minimum score",
          "A frame counts for a label's event and state only when its top "
          "probability is at least this; a frame below counts as no label",
          0.0f, 1.0f, DEFAULT_MIN_SCORE, playing));
  gst_clip_install_field_property (gobject_class, PROP_COOLDOWN,
      FIELD (cooldown),
      g_param_spec_uint64 ("cooldown", "Cooldown",
          "Nanoseconds (stream time) before the same label is an event again; "
          "0 = every change is one",
          0, G_MAXUINT64, DEFAULT_COOLDOWN, playing));
  gst_clip_install_field_property (gobject_class, PROP_PUBLISH_RESULTS,
      FIELD (publish_results),
      g_param_spec_boolean ("publish-results", "Publish results",
          "Also publish every analysed frame's result to PREFIX/result",
          DEFAULT_PUBLISH_RESULTS, playing));
  install_string (gobject_class, PROP_CLIENT_ID, FIELD (client_id), "client-id",
      "Client ID", "MQTT client identifier; NULL = a random one", NULL);
  install_string (gobject_class, PROP_USERNAME, FIELD (username), "username",
      "User name", "MQTT user name; NULL = none", NULL);
  install_string (gobject_class, PROP_PASSWORD_FILE, FIELD (password_file),
      "password-file", "Password file",
      "File whose first line is the MQTT password (kept off the command "
      "line); NULL = none",
      NULL);
  install_string (gobject_class, PROP_TLS_CA_FILE, FIELD (tls_ca_file),
      "tls-ca-file", "TLS CA file",
      "PEM file of the certificate authorities to check the broker against; "
      "set, the connection uses TLS; NULL = plain TCP",
      NULL);
  gst_clip_install_field_property (gobject_class, PROP_KEEP_ALIVE,
      FIELD (keep_alive),
      g_param_spec_uint ("keep-alive", "Keep alive",
          "Seconds between MQTT pings when idle; the broker sends the Last "
          "Will after 1.5 times this without a word",
          5, 65535, DEFAULT_KEEP_ALIVE, ready));
  gst_clip_install_field_property (gobject_class, PROP_MAX_QUEUE,
      FIELD (max_queue),
      g_param_spec_uint ("max-queue", "Maximum queue",
          "Documents waiting to be sent, at most; beyond, the oldest is "
          "dropped (and counted in dropped)",
          1, G_MAXINT, DEFAULT_MAX_QUEUE, ready));
#undef FIELD
  g_object_class_install_property (gobject_class, PROP_DROPPED,
      g_param_spec_uint64 ("dropped", "Dropped",
          "Documents dropped from the full queue since the element started", 0,
          G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_PENDING,
      g_param_spec_uint ("pending", "Pending",
          "Documents not yet delivered: waiting in the queue, or sent and "
          "not yet acknowledged by the broker",
          0, G_MAXUINT, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_set_static_metadata (element_class,
      "CLIP results publisher", "Filter/Analyzer/Video",
      "Publishes GstClipMeta results, label events and states as JSON to an "
      "MQTT broker or a JSON Lines file as the buffers pass",
      "gst-clip developers");
  gst_clip_add_pass_through_pad_templates (element_class, "ANY");

  trans_class->passthrough_on_same_caps = TRUE;
  trans_class->transform_ip_on_passthrough = TRUE;
  trans_class->start = GST_DEBUG_FUNCPTR (gst_clip_publish_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_clip_publish_stop);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_clip_publish_transform_ip);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_clip_publish_sink_event);

  gst_type_mark_as_plugin_api (GST_TYPE_CLIP_PUBLISH_METHOD, 0);
}
