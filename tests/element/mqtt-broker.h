/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A real MQTT broker for the tests: Debian's mosquitto, started on a free
 * loopback port with a configuration file the test writes, and stopped by
 * its pid; and a subscriber (libmosquitto) that collects what it receives.
 * Never the system's broker service. */
#pragma once

#include <glib.h>

typedef struct {
  GPid pid; /* 0 while not running */
  int port;
  char *dir;    /* temporary folder: configuration, log, persistence */
  char *config; /* the configuration file */
} TestBroker;

/* Whether mosquitto is installed; if not, marks the test skipped (failed
 * under CI=true). */
gboolean test_broker_available (void);

/* Starts a broker on 127.0.0.1 on a free port; listener_options are
 * configuration lines after the listener line (allow_anonymous, TLS,
 * password file, persistence...). Fails the test if it does not come up. */
TestBroker *test_broker_start (const char *listener_options);
/* Kills it with SIGKILL and reaps it. */
void test_broker_kill (TestBroker *broker);
/* Starts it again on the same port with the same configuration. */
void test_broker_restart (TestBroker *broker);
void test_broker_free (TestBroker *broker);

/* A port on 127.0.0.1 where nothing listens. */
int test_free_port (void);

typedef struct {
  char *topic;
  char *payload;
  gboolean retained;
} TestMessage;

typedef struct _TestSubscriber TestSubscriber;

/* Connects to broker, subscribes to filter at QoS 1, and returns once the
 * subscription holds. With a client_id the session is persistent (clean
 * session off): a broker that keeps it queues messages while the
 * subscriber is away. username and password may be NULL. It reconnects and
 * subscribes again by itself. */
TestSubscriber *test_subscriber_new (TestBroker *broker, const char *filter,
    const char *client_id, const char *username, const char *password);
void test_subscriber_free (TestSubscriber *subscriber);

/* Waits until done (called under the subscriber's lock with the messages
 * received so far, a GPtrArray of TestMessage) returns TRUE, or at most
 * 60 s. Returns whether done did. */
gboolean test_subscriber_wait (TestSubscriber *subscriber,
    gboolean (*done) (GPtrArray *messages, gpointer data), gpointer data);

/* A copy of the messages received so far (free with g_ptr_array_unref). */
GPtrArray *test_subscriber_messages (TestSubscriber *subscriber);
