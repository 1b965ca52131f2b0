/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pipelines/ scripts and the read-meta example, run end to end with
 * gst-launch-1.0 on the tiny reference model. */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "reference.h"

/* Runs a command with the model in the environment; returns its stdout and
 * asserts its exit status. */
static char *
run (char **argv, char **extra_env, gboolean expect_success)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *model = clip_test_ref_path ("models/tiny-openai");
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  char **env = g_get_environ ();
  env = g_environ_setenv (env, "CLIP_MODEL", model, TRUE);
  env = g_environ_setenv (env, "CLIP_VOCAB", vocab, TRUE);
  for (guint i = 0; extra_env && extra_env[i]; i += 2)
    env = g_environ_setenv (env, extra_env[i], extra_env[i + 1], TRUE);

  char *out = NULL, *err = NULL;
  int status = 0;
  g_assert_true (g_spawn_sync (NULL, argv, env, G_SPAWN_SEARCH_PATH, NULL, NULL,
      &out, &err, &status, &error));
  g_assert_no_error (error);
  g_strfreev (env);
  g_test_message ("%s: stdout:\n%s\nstderr:\n%s", argv[1] ? argv[1] : argv[0],
      out, err);
  if (expect_success)
    g_assert_true (g_spawn_check_wait_status (status, NULL));
  else
    g_assert_false (g_spawn_check_wait_status (status, NULL));
  g_free (err);
  return out;
}

static char *
script (const char *name)
{
  return g_build_filename (g_getenv ("CLIP_PIPELINES_DIR"), name, NULL);
}

static guint
count (const char *haystack, const char *needle)
{
  guint n = 0;
  for (const char *p = haystack; (p = strstr (p, needle)) != NULL; p++)
    n++;
  return n;
}

/* The README's first command: with the shipped default model, the demo
 * names each videotestsrc pattern it cycles through, two frames a second. */
static void
test_demo (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *path = script ("demo-videotestsrc.sh");
  g_autofree char *default_model = g_build_filename (
      g_getenv ("CLIP_SOURCE_DIR"), "models", "default", NULL);
  char *argv[] = { "bash", path, NULL };
  char *env[] = { "CLIP_MODEL", "", "CLIP_VOCAB", "", "GST_CLIP_DEFAULT_MODEL",
    default_model, "CLIP_PATTERNS", "smpte ball red", NULL };
  g_autofree char *out = run (argv, env, TRUE);
  /* 60 frames of each pattern, one analysed in 15: lines at 0, 0.5, ... s */
  const char *expected[] = { "smpte color bars", "bouncing ball", "red frame" };
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);
  guint results = 0;
  for (guint i = 0; lines[i] != NULL; i++) {
    double seconds;
    char label[64];
    if (sscanf (lines[i], "%lf s %63[^0-9]", &seconds, label) != 2)
      continue;
    g_strchomp (label);
    g_assert_cmpstr (label, ==, expected[MIN ((int) (seconds / 2), 2)]);
    results++;
  }
  g_assert_cmpuint (results, ==, 12);
}

static void
test_tag_camera (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *path = script ("tag-camera.sh");
  char *argv[] = { "bash", path, NULL };
  /* a live test source stands in for the camera */
  char *env[] = { "CLIP_CAMERA_SRC", "videotestsrc is-live=true num-buffers=15",
    "CLIP_SINK", "fakesink", NULL };
  g_autofree char *out = run (argv, env, TRUE);
  /* at least the last segment, announced at EOS */
  g_assert_cmpuint (count (out, "label change: label="), >=, 1);
}

static void
test_annotate_file (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *video = g_build_filename (dir, "clip test.webm", NULL);
  g_autofree char *location = g_strdup_printf ("location=%s", video);
  char *encode[] = { "gst-launch-1.0", "-q", "videotestsrc", "num-buffers=20",
    "!", "video/x-raw,width=160,height=120,framerate=10/1", "!", "vp8enc", "!",
    "webmmux", "!", "filesink", location, NULL };
  g_free (run (encode, NULL, TRUE));

  g_autofree char *path = script ("annotate-file.sh");
  g_autofree char *messages = g_build_filename (dir, "messages.txt", NULL);
  char *argv[] = { "bash", path, video, NULL };
  char *env[] = { "CLIP_MESSAGES", messages, NULL };
  g_autofree char *out = run (argv, env, TRUE);
  /* a timeline covering the file's 2 s */
  g_assert_true (g_str_has_prefix (out, "0:00:00.000 - "));
  g_assert_nonnull (strstr (out, " - 0:00:02.000  "));
  g_assert_nonnull (strstr (out, "(mean 0."));

  g_autofree char *log = NULL;
  g_assert_true (g_file_get_contents (messages, &log, NULL, NULL));
  g_assert_cmpuint (count (log, "clipclassify, timestamp"), ==, 20);

  /* a missing file fails */
  g_autofree char *missing = g_build_filename (dir, "missing.webm", NULL);
  char *bad[] = { "bash", path, missing, NULL };
  g_free (run (bad, NULL, FALSE));
}

static void
test_read_meta (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *model = clip_test_ref_path ("models/tiny-hf");
  g_autofree char *desc = g_strdup_printf (
      "videotestsrc num-buffers=4 ! "
      "clipclassify model=\"%s\" labels=\"a ball,a cat\" ! appsink name=sink",
      model);
  char *argv[] = { (char *) g_getenv ("CLIP_READ_META"), desc, NULL };
  g_autofree char *out = run (argv, NULL, TRUE);
  g_assert_cmpuint (count (out, " fresh  frame "), ==, 4);
  g_assert_nonnull (strstr (out, "\"a ball\""));
}

/* pipelines/read-meta.py reads the same metas through GObject introspection
 * (GstClip-1.0) and prints exactly what the C example prints. */
static void
test_read_meta_python (void)
{
  if (!clip_test_reference ())
    return;
  if (g_getenv ("CLIP_SANITIZED_BUILD") != NULL) {
    /* python3 is not instrumented: it cannot load an ASan-built
     * libgstclipmeta and plugin (the ordinary build runs this test) */
    g_test_skip ("python3 cannot load a sanitizer build's libraries");
    return;
  }
  const char *typelib_dir = g_getenv ("GI_TYPELIB_PATH");
  if (typelib_dir == NULL || *typelib_dir == '\0') {
    /* built without gobject-introspection */
    if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
      g_error ("CI=true but no GstClip typelib was built");
    g_test_skip ("no GstClip typelib (gobject-introspection not installed)");
    return;
  }
  g_autofree char *model = clip_test_ref_path ("models/tiny-hf");
  g_autofree char *desc = g_strdup_printf (
      "videotestsrc num-buffers=4 ! "
      "clipclassify model=\"%s\" labels=\"a ball,a cat\" ! appsink name=sink",
      model);
  char *c_argv[] = { (char *) g_getenv ("CLIP_READ_META"), desc, NULL };
  g_autofree char *c_out = run (c_argv, NULL, TRUE);
  g_autofree char *path = script ("read-meta.py");
  /* Debian's interpreter, which python3-gi and python3-gst-1.0 belong to */
  char *py_argv[] = { "/usr/bin/python3", path, desc, NULL };
  g_autofree char *py_out = run (py_argv, NULL, TRUE);
  g_assert_cmpuint (count (py_out, " fresh  frame "), ==, 4);
  g_assert_cmpstr (py_out, ==, c_out);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/pipelines/demo-videotestsrc", test_demo);
  g_test_add_func ("/pipelines/tag-camera", test_tag_camera);
  g_test_add_func ("/pipelines/annotate-file", test_annotate_file);
  g_test_add_func ("/pipelines/read-meta", test_read_meta);
  g_test_add_func ("/pipelines/read-meta-python", test_read_meta_python);
  return g_test_run ();
}
