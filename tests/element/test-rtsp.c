/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pipelines/tag-rtsp-camera.sh and multi-camera.sh (tag-streams) against a
 * real RTSP server on loopback (rtsp-test-server.c), with clippublish's
 * file method: labelling starts, the camera is stopped, the program says
 * so and stays up, and once the camera is back labelling resumes in the
 * same process. */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long a test waits for something before it fails: far more than it
 * takes, so that a loaded machine does not fail it. */
#define PATIENCE_US (120 * G_USEC_PER_SEC)

static gboolean
have_server (void)
{
  if (g_getenv ("CLIP_RTSP_SERVER") != NULL)
    return TRUE;
  if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
    g_error ("rtsp-test-server was not built (libgstrtspserver-1.0-dev), "
             "required under CI=true");
  g_test_skip ("rtsp-test-server was not built: install "
               "libgstrtspserver-1.0-dev (scripts/install-deps.sh)");
  return FALSE;
}

typedef struct {
  GPid pid;
  int port;
} Server;

/* Starts the server on port (0: a free one) and waits until it listens. */
static Server
server_start (int port)
{
  g_autofree char *port_text = g_strdup_printf ("%d", port);
  char *argv[] = { (char *) g_getenv ("CLIP_RTSP_SERVER"), port_text, "red",
    NULL };
  Server server = { 0 };
  int out_fd;
  g_autoptr (GError) error = NULL;
  g_assert_true (
      g_spawn_async_with_pipes (NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
          NULL, NULL, &server.pid, NULL, &out_fd, NULL, &error));
  g_assert_no_error (error);
  FILE *out = fdopen (out_fd, "r");
  char line[32];
  g_assert_nonnull (fgets (line, sizeof line, out));
  fclose (out);
  server.port = atoi (line);
  g_assert_cmpint (server.port, >, 0);
  return server;
}

static void
server_stop (Server *server)
{
  kill (server->pid, SIGTERM);
  waitpid (server->pid, NULL, 0);
  g_spawn_close_pid (server->pid);
}

typedef struct {
  char *tmp;
  char *log; /* the program's stdout and stderr */
  GPid pid;
} Tagger;

/* Runs a pipelines/ script with the default model, one result document
 * per analysed frame into tmp/NAME.jsonl, a 1 s retry delay and a 3 s stall
 * timeout. */
static Tagger
tagger_start (const char *script_name, char **args)
{
  Tagger tagger = { 0 };
  g_autoptr (GError) error = NULL;
  tagger.tmp = g_dir_make_tmp ("clip-rtsp-XXXXXX", &error);
  g_assert_no_error (error);
  tagger.log = g_build_filename (tagger.tmp, "log", NULL);
  g_autofree char *script = g_build_filename (g_getenv ("CLIP_PIPELINES_DIR"),
      script_name, NULL);
  g_autofree char *model = g_build_filename (g_getenv ("CLIP_SOURCE_DIR"),
      "models", "default", NULL);
  g_autofree char *files = g_build_filename (tagger.tmp, "{name}.jsonl", NULL);
  char **env = g_get_environ ();
  env = g_environ_setenv (env, "CLIP_MODEL", model, TRUE);
  env = g_environ_unsetenv (env, "CLIP_VOCAB");
  env = g_environ_setenv (env, "CLIP_LABELS", "smpte color bars,red frame",
      TRUE);
  env = g_environ_setenv (env, "CLIP_PUBLISH_FILE", files, TRUE);
  env = g_environ_setenv (env, "CLIP_PUBLISH_RESULTS", "1", TRUE);
  env = g_environ_setenv (env, "CLIP_RETRY_DELAY", "1", TRUE);
  env = g_environ_setenv (env, "CLIP_STALL_TIMEOUT", "3", TRUE);
  env = g_environ_setenv (env, "CLIP_STREAM_NAME", "porch", TRUE);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, "bash");
  g_ptr_array_add (argv, script);
  for (int i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, args[i]);
  g_ptr_array_add (argv, NULL);
  int log_fd = g_open (tagger.log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  g_assert_cmpint (log_fd, >=, 0);
  g_assert_true (g_spawn_async_with_fds (NULL, (char **) argv->pdata, env,
      G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &tagger.pid,
      -1, log_fd, log_fd, &error));
  g_assert_no_error (error);
  close (log_fd);
  g_strfreev (env);
  return tagger;
}

static char *
read_text (const char *path)
{
  char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return g_strdup ("");
  return text;
}

static guint
count (const char *text, const char *needle)
{
  guint n = 0;
  for (const char *p = text; (p = strstr (p, needle)) != NULL; p++)
    n++;
  return n;
}

/* The "result" documents in tmp/NAME.jsonl so far; each line is checked
 * to be one JSON object of the documented kind. */
static guint
results (const Tagger *tagger, const char *name)
{
  g_autofree char *file = g_strdup_printf ("%s.jsonl", name);
  g_autofree char *path = g_build_filename (tagger->tmp, file, NULL);
  g_autofree char *text = read_text (path);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  guint n = 0;
  /* The last line may still be being written. */
  for (guint i = 0; lines[i] != NULL && lines[i + 1] != NULL; i++) {
    g_autoptr (JsonParser) parser = json_parser_new ();
    g_autoptr (GError) error = NULL;
    g_assert_true (json_parser_load_from_data (parser, lines[i], -1, &error));
    JsonObject *doc = json_node_get_object (json_parser_get_root (parser));
    g_assert_cmpstr (json_object_get_string_member (doc, "stream"), ==, name);
    if (g_strcmp0 (json_object_get_string_member (doc, "type"), "result") == 0)
      n++;
  }
  return n;
}

static gboolean
running (const Tagger *tagger)
{
  return waitpid (tagger->pid, NULL, WNOHANG) == 0;
}

/* Waits until the log says needle `times` times. */
static void
wait_log (const Tagger *tagger, const char *needle, guint times)
{
  gint64 deadline = g_get_monotonic_time () + PATIENCE_US;
  for (;;) {
    g_autofree char *log = read_text (tagger->log);
    if (count (log, needle) >= times)
      return;
    if (g_get_monotonic_time () > deadline || !running (tagger))
      g_error ("no \"%s\" (%u times) from the program; its output:\n%s", needle,
          times, log);
    g_usleep (100000);
  }
}

/* Waits until stream name has at least n result documents. */
static void
wait_results (const Tagger *tagger, const char *name, guint n)
{
  gint64 deadline = g_get_monotonic_time () + PATIENCE_US;
  while (results (tagger, name) < n) {
    if (g_get_monotonic_time () > deadline || !running (tagger)) {
      g_autofree char *log = read_text (tagger->log);
      g_error ("%s: %u results, %u wanted; the program's output:\n%s", name,
          results (tagger, name), n, log);
    }
    g_usleep (100000);
  }
}

/* Ctrl-C: the program ends each stream cleanly, exits 0, and each
 * stream's last document says it is offline. */
static void
tagger_stop (Tagger *tagger, const char *const *names)
{
  kill (tagger->pid, SIGINT);
  int status;
  g_assert_cmpint (waitpid (tagger->pid, &status, 0), ==, tagger->pid);
  g_autofree char *log = read_text (tagger->log);
  g_test_message ("the program's output:\n%s", log);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  g_spawn_close_pid (tagger->pid);
  for (guint i = 0; names[i] != NULL; i++) {
    g_autofree char *file = g_strdup_printf ("%s.jsonl", names[i]);
    g_autofree char *path = g_build_filename (tagger->tmp, file, NULL);
    g_autofree char *text = read_text (path);
    g_strchomp (text);
    const char *last = strrchr (text, '\n');
    g_assert_nonnull (strstr (last ? last : text, "\"status\":\"offline\""));
    g_remove (path);
  }
  g_remove (tagger->log);
  g_rmdir (tagger->tmp);
  g_free (tagger->tmp);
  g_free (tagger->log);
}

static void
test_reconnect (void)
{
  if (!have_server ())
    return;
  Server server = server_start (0);
  g_autofree char *url = g_strdup_printf ("rtsp://127.0.0.1:%d/camera",
      server.port);
  char *args[] = { url, NULL };
  Tagger tagger = tagger_start ("tag-rtsp-camera.sh", args);
  wait_log (&tagger, "porch: playing", 1);
  wait_results (&tagger, "porch", 3);

  /* The camera goes away: the program notices (an error, or no frame for
   * 3 s), keeps running, and tries again every second. */
  server_stop (&server);
  wait_log (&tagger, "porch: lost", 1);
  guint before = results (&tagger, "porch");
  wait_log (&tagger, "porch: lost", 2);
  g_assert_true (running (&tagger));

  /* The camera is back on its address: labelling resumes, in the same
   * process, which holds the same model. */
  server = server_start (server.port);
  wait_log (&tagger, "porch: playing", 2);
  wait_results (&tagger, "porch", before + 3);
  g_assert_true (running (&tagger));

  const char *names[] = { "porch", NULL };
  tagger_stop (&tagger, names);
  server_stop (&server);
}

/* A camera that stops sending without closing its connection (here,
 * frozen): after 3 s without a frame the source is dropped and tried
 * again, and playing resumes once the camera does. */
static void
test_stall (void)
{
  if (!have_server ())
    return;
  Server server = server_start (0);
  g_autofree char *url = g_strdup_printf ("rtsp://127.0.0.1:%d/camera",
      server.port);
  char *args[] = { url, NULL };
  Tagger tagger = tagger_start ("tag-rtsp-camera.sh", args);
  wait_results (&tagger, "porch", 3);
  kill (server.pid, SIGSTOP);
  wait_log (&tagger, "porch: lost (no frame for 3 s)", 1);
  guint before = results (&tagger, "porch");
  kill (server.pid, SIGCONT);
  wait_log (&tagger, "porch: playing", 2);
  wait_results (&tagger, "porch", before + 3);
  const char *names[] = { "porch", NULL };
  tagger_stop (&tagger, names);
  server_stop (&server);
}

/* Two cameras in one process, each under its own name. */
static void
test_multi_camera (void)
{
  if (!have_server ())
    return;
  Server server = server_start (0);
  g_autofree char *porch = g_strdup_printf ("porch=rtsp://127.0.0.1:%d/camera",
      server.port);
  g_autofree char *yard = g_strdup_printf ("yard=rtsp://127.0.0.1:%d/camera",
      server.port);
  char *args[] = { porch, yard, NULL };
  Tagger tagger = tagger_start ("multi-camera.sh", args);
  wait_results (&tagger, "porch", 3);
  wait_results (&tagger, "yard", 3);
  const char *names[] = { "porch", "yard", NULL };
  tagger_stop (&tagger, names);
  server_stop (&server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/rtsp/reconnect", test_reconnect);
  g_test_add_func ("/rtsp/stall", test_stall);
  g_test_add_func ("/rtsp/multi-camera", test_multi_camera);
  return g_test_run ();
}
