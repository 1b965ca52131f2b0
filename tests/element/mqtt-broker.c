/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mqtt-broker.h"
#include "reference.h"

#include <arpa/inet.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long a broker may take to come up, or a subscriber to connect. */
#define STARTUP_TIMEOUT (30 * G_USEC_PER_SEC)
#define WAIT_TIMEOUT (60 * G_USEC_PER_SEC)

static char *
mosquitto_program (void)
{
  char *path = g_find_program_in_path ("mosquitto");
  if (path == NULL
      && g_file_test ("/usr/sbin/mosquitto", G_FILE_TEST_IS_EXECUTABLE))
    path = g_strdup ("/usr/sbin/mosquitto");
  return path;
}

gboolean
test_broker_available (void)
{
  g_autofree char *path = mosquitto_program ();
  if (path != NULL)
    return TRUE;
  if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
    g_test_fail_printf ("mosquitto is not installed (scripts/install-deps.sh)");
  else
    g_test_skip ("mosquitto is not installed: apt-get install mosquitto");
  g_printerr ("SKIP: mosquitto not found\n");
  return FALSE;
}

int
test_free_port (void)
{
  int fd = socket (AF_INET, SOCK_STREAM, 0);
  g_assert_cmpint (fd, >=, 0);
  struct sockaddr_in addr = { .sin_family = AF_INET,
    .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof addr;
  g_assert_cmpint (bind (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &addr, &len), ==, 0);
  close (fd);
  return ntohs (addr.sin_port);
}

static gboolean
port_accepts (int port)
{
  int fd = socket (AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = { .sin_family = AF_INET,
    .sin_port = htons (port),
    .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  gboolean ok = connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0;
  close (fd);
  return ok;
}

static void
spawn (TestBroker *broker)
{
  g_autofree char *program = mosquitto_program ();
  g_autoptr (GError) error = NULL;
  char *argv[] = { program, "-c", broker->config, NULL };
  g_spawn_async (NULL, argv, NULL,
      G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL
          | G_SPAWN_STDERR_TO_DEV_NULL,
      NULL, NULL, &broker->pid, &error);
  g_assert_no_error (error);

  gint64 until = g_get_monotonic_time () + STARTUP_TIMEOUT;
  while (!port_accepts (broker->port)) {
    int status;
    if (waitpid (broker->pid, &status, WNOHANG) == broker->pid) {
      g_autofree char *log = g_build_filename (broker->dir, "broker.log", NULL);
      g_autofree char *text = NULL;
      g_file_get_contents (log, &text, NULL, NULL);
      g_error ("mosquitto exited at start: %s", text ? text : "(no log)");
    }
    if (g_get_monotonic_time () > until)
      g_error ("mosquitto did not listen on port %d", broker->port);
    g_usleep (10000);
  }
}

TestBroker *
test_broker_start (const char *listener_options)
{
  TestBroker *broker = g_new0 (TestBroker, 1);
  broker->dir = clip_test_tmpdir ();
  broker->port = test_free_port ();
  broker->config = g_build_filename (broker->dir, "mosquitto.conf", NULL);
  /* Running as root, mosquitto would become user mosquitto, who cannot read
   * the test's folder: it stays whoever runs the test. */
  g_autofree char *config = g_strdup_printf ("user %s\n"
                                             "log_dest file %s/broker.log\n"
                                             "log_type all\n"
                                             "max_queued_messages 0\n"
                                             "listener %d 127.0.0.1\n"
                                             "%s\n",
      g_get_user_name (), broker->dir, broker->port, listener_options);
  g_autoptr (GError) error = NULL;
  g_file_set_contents (broker->config, config, -1, &error);
  g_assert_no_error (error);
  spawn (broker);
  return broker;
}

void
test_broker_kill (TestBroker *broker)
{
  g_assert_cmpint (broker->pid, >, 0);
  kill (broker->pid, SIGKILL);
  waitpid (broker->pid, NULL, 0);
  g_spawn_close_pid (broker->pid);
  broker->pid = 0;
}

void
test_broker_restart (TestBroker *broker)
{
  g_assert_cmpint (broker->pid, ==, 0);
  spawn (broker);
}

void
test_broker_free (TestBroker *broker)
{
  if (broker->pid > 0)
    test_broker_kill (broker);
  g_free (broker->dir);
  g_free (broker->config);
  g_free (broker);
}

/* ------------------------------------------------------------- subscriber */

struct _TestSubscriber {
  struct mosquitto *mosq;
  char *filter;
  GMutex lock;
  GCond cond;
  GPtrArray *messages;
  gboolean subscribed;
};

static void
message_free (TestMessage *m)
{
  g_free (m->topic);
  g_free (m->payload);
  g_free (m);
}

static void
on_connect (struct mosquitto *mosq, void *data, int rc)
{
  TestSubscriber *s = data;
  if (rc == 0)
    mosquitto_subscribe (mosq, NULL, s->filter, 1);
}

static void
on_subscribe (struct mosquitto *mosq, void *data, int mid, int n,
    const int *granted)
{
  TestSubscriber *s = data;
  g_mutex_lock (&s->lock);
  s->subscribed = TRUE;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

static void
on_message (struct mosquitto *mosq, void *data,
    const struct mosquitto_message *message)
{
  TestSubscriber *s = data;
  TestMessage *m = g_new0 (TestMessage, 1);
  m->topic = g_strdup (message->topic);
  m->payload = g_strndup (message->payload, message->payloadlen);
  m->retained = message->retain;
  g_mutex_lock (&s->lock);
  g_ptr_array_add (s->messages, m);
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

TestSubscriber *
test_subscriber_new (TestBroker *broker, const char *filter,
    const char *client_id, const char *username, const char *password)
{
  static gsize initialised;
  if (g_once_init_enter (&initialised)) {
    mosquitto_lib_init ();
    g_once_init_leave (&initialised, 1);
  }

  TestSubscriber *s = g_new0 (TestSubscriber, 1);
  g_mutex_init (&s->lock);
  g_cond_init (&s->cond);
  s->filter = g_strdup (filter);
  s->messages = g_ptr_array_new_with_free_func ((GDestroyNotify) message_free);
  s->mosq = mosquitto_new (client_id, client_id == NULL, s);
  g_assert_nonnull (s->mosq);
  mosquitto_connect_callback_set (s->mosq, on_connect);
  mosquitto_subscribe_callback_set (s->mosq, on_subscribe);
  mosquitto_message_callback_set (s->mosq, on_message);
  mosquitto_reconnect_delay_set (s->mosq, 1, 1, false);
  if (username != NULL)
    mosquitto_username_pw_set (s->mosq, username, password);
  g_assert_cmpint (mosquitto_connect (s->mosq, "127.0.0.1", broker->port, 60),
      ==, MOSQ_ERR_SUCCESS);
  g_assert_cmpint (mosquitto_loop_start (s->mosq), ==, MOSQ_ERR_SUCCESS);

  gint64 until = g_get_monotonic_time () + STARTUP_TIMEOUT;
  g_mutex_lock (&s->lock);
  while (!s->subscribed)
    if (!g_cond_wait_until (&s->cond, &s->lock, until))
      g_error ("no subscription to %s", filter);
  g_mutex_unlock (&s->lock);
  return s;
}

void
test_subscriber_free (TestSubscriber *s)
{
  mosquitto_disconnect (s->mosq);
  mosquitto_loop_stop (s->mosq, FALSE);
  mosquitto_destroy (s->mosq);
  g_ptr_array_unref (s->messages);
  g_free (s->filter);
  g_mutex_clear (&s->lock);
  g_cond_clear (&s->cond);
  g_free (s);
}

gboolean
test_subscriber_wait (TestSubscriber *s,
    gboolean (*done) (GPtrArray *messages, gpointer data), gpointer data)
{
  gint64 until = g_get_monotonic_time () + WAIT_TIMEOUT;
  g_mutex_lock (&s->lock);
  gboolean ok;
  while (!(ok = done (s->messages, data))
      && g_cond_wait_until (&s->cond, &s->lock, until))
    ;
  if (!ok)
    ok = done (s->messages, data);
  g_mutex_unlock (&s->lock);
  return ok;
}

GPtrArray *
test_subscriber_messages (TestSubscriber *s)
{
  GPtrArray *copy = g_ptr_array_new_with_free_func (
      (GDestroyNotify) message_free);
  g_mutex_lock (&s->lock);
  for (guint i = 0; i < s->messages->len; i++) {
    const TestMessage *m = s->messages->pdata[i];
    TestMessage *c = g_new0 (TestMessage, 1);
    c->topic = g_strdup (m->topic);
    c->payload = g_strdup (m->payload);
    c->retained = m->retained;
    g_ptr_array_add (copy, c);
  }
  g_mutex_unlock (&s->lock);
  return copy;
}
