/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Hub names in a hand-built HuggingFace cache: the cache folder's
 * environment precedence, names and revisions (refs, commits, hf-hub:),
 * clear errors for what is not cached, an existing folder winning over a
 * name, and a model loaded by name from snapshot links to blobs. */
#include "hub.h"
#include "reference.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define COMMIT_MAIN "0123456789abcdef0123456789abcdef01234567"
#define COMMIT_V2 "89abcdef0123456789abcdef0123456789abcdef"

static void
write_file (const char *path, const char *text)
{
  g_autofree char *folder = g_path_get_dirname (path);
  g_assert_cmpint (g_mkdir_with_parents (folder, 0755), ==, 0);
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_set_contents (path, text, -1, &error));
}

/* CACHE/models--org--name with refs/main, refs/v2 (and refs/pr/1) and
 * their snapshots, as huggingface_hub leaves them. */
static char *
make_cache (void)
{
  char *cache = clip_test_tmpdir ();
  g_autofree char *repo = clip_hub_repo_dir (cache, "org/name");
  const char *refs[][2] = { { "main", COMMIT_MAIN "\n" }, { "v2", COMMIT_V2 },
    { "pr/1", COMMIT_V2 } };
  for (gsize i = 0; i < G_N_ELEMENTS (refs); i++) {
    g_autofree char *ref = g_build_filename (repo, "refs", refs[i][0], NULL);
    write_file (ref, refs[i][1]);
  }
  const char *commits[] = { COMMIT_MAIN, COMMIT_V2 };
  for (gsize i = 0; i < G_N_ELEMENTS (commits); i++) {
    g_autofree char *snapshot = g_build_filename (repo, "snapshots", commits[i],
        NULL);
    g_assert_cmpint (g_mkdir_with_parents (snapshot, 0755), ==, 0);
  }
  return cache;
}

static char *
snapshot_of (const char *cache, const char *commit)
{
  g_autofree char *repo = clip_hub_repo_dir (cache, "org/name");
  return g_build_filename (repo, "snapshots", commit, NULL);
}

static void
test_parse_name (void)
{
  struct {
    const char *name, *repo, *revision;
  } good[] = {
    { "openai/clip-vit-base-patch32", "openai/clip-vit-base-patch32", "main" },
    { "org/name@v2", "org/name", "v2" },
    { "org/name@refs/pr/1", "org/name", "refs/pr/1" },
    { "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "main" },
    { "hf-hub:org/name@" COMMIT_V2, "org/name", COMMIT_V2 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (good); i++) {
    g_autofree char *repo = NULL;
    g_autofree char *revision = NULL;
    g_assert_true (clip_hub_parse_name (good[i].name, &repo, &revision));
    g_assert_cmpstr (repo, ==, good[i].repo);
    g_assert_cmpstr (revision, ==, good[i].revision);
  }
  const char *bad[] = { "name", "a/b/c", "/abs/path", "org/", "/name",
    "./models", "models/default/", "org/na--me", "org/..", "org/name@",
    "org/name@../../x", "org/name@a//b", "hf-hub:name", "org/na me" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (clip_hub_parse_name (bad[i], NULL, NULL));
}

static void
test_cache_dir_precedence (void)
{
  g_setenv ("HOME", "/home/u", TRUE);
  g_setenv ("HF_HUB_CACHE", "/a/hub", TRUE);
  g_setenv ("HF_HOME", "/b", TRUE);
  g_setenv ("XDG_CACHE_HOME", "/c", TRUE);
  g_autofree char *from_hub_cache = clip_hub_cache_dir ();
  g_assert_cmpstr (from_hub_cache, ==, "/a/hub");
  g_unsetenv ("HF_HUB_CACHE");
  g_autofree char *from_home = clip_hub_cache_dir ();
  g_assert_cmpstr (from_home, ==, "/b/hub");
  g_unsetenv ("HF_HOME");
  g_autofree char *from_xdg = clip_hub_cache_dir ();
  g_assert_cmpstr (from_xdg, ==, "/c/huggingface/hub");
  g_unsetenv ("XDG_CACHE_HOME");
  g_autofree char *fallback = clip_hub_cache_dir ();
  g_autofree char *expected = g_build_filename (g_get_home_dir (), ".cache",
      "huggingface", "hub", NULL);
  g_assert_cmpstr (fallback, ==, expected);
}

static void
test_resolve_revisions (void)
{
  g_autofree char *cache = make_cache ();
  g_setenv ("HF_HUB_CACHE", cache, TRUE);
  g_autofree char *main_dir = snapshot_of (cache, COMMIT_MAIN);
  g_autofree char *v2_dir = snapshot_of (cache, COMMIT_V2);
  struct {
    const char *name, *expected;
  } cases[] = {
    { "org/name", main_dir },
    { "hf-hub:org/name", main_dir },
    { "org/name@main", main_dir },
    { "org/name@v2", v2_dir },
    { "org/name@pr/1", v2_dir },
    { "org/name@" COMMIT_V2, v2_dir },
    { "hf-hub:org/name@" COMMIT_MAIN, main_dir },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (GError) error = NULL;
    g_autofree char *dir = clip_model_resolve (cases[i].name, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (dir, ==, cases[i].expected);
  }
  /* HF_HOME/hub is used when HF_HUB_CACHE is not set. */
  g_unsetenv ("HF_HUB_CACHE");
  g_autofree char *home = clip_test_tmpdir ();
  g_autofree char *hub = g_build_filename (home, "hub", NULL);
  g_assert_cmpint (symlink (cache, hub), ==, 0);
  g_setenv ("HF_HOME", home, TRUE);
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = clip_model_resolve ("org/name@v2", &error);
  g_assert_no_error (error);
  g_autofree char *expected = g_build_filename (hub, "models--org--name",
      "snapshots", COMMIT_V2, NULL);
  g_assert_cmpstr (dir, ==, expected);
  g_unsetenv ("HF_HOME");
}

static void
expect_not_cached (const char *name, const char *const *phrases)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = clip_model_resolve (name, &error);
  g_assert_null (dir);
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_IO);
  for (const char *const *p = phrases; *p; p++)
    if (strstr (error->message, *p) == NULL)
      g_error ("'%s': the message '%s' does not say '%s'", name, error->message,
          *p);
}

static void
test_not_cached (void)
{
  g_autofree char *cache = make_cache ();
  g_setenv ("HF_HUB_CACHE", cache, TRUE);
  g_autofree char *other = clip_hub_repo_dir (cache, "org/other");
  const char *missing_repo[] = { "looked in", other,
    "run gst-clip pull org/other", NULL };
  expect_not_cached ("org/other", missing_repo);
  const char *missing_ref[] = { "no refs/v3", "gst-clip pull org/name@v3",
    NULL };
  expect_not_cached ("org/name@v3", missing_ref);
  /* A ref whose snapshot is gone. */
  g_autofree char *repo = clip_hub_repo_dir (cache, "org/name");
  g_autofree char *ref = g_build_filename (repo, "refs", "v9", NULL);
  write_file (ref, "ffffffffffffffffffffffffffffffffffffffff");
  const char *missing_snapshot[] = {
    "no snapshot ffffffffffffffffffffffffffffffffffffffff", NULL
  };
  expect_not_cached ("org/name@v9", missing_snapshot);
  const char *missing_commit[] = { "no snapshot", NULL };
  expect_not_cached ("org/name@ffffffffffffffffffffffffffffffffffffffff",
      missing_commit);
  /* A model folder that is not there and is no hub name either is left to
   * the loader, which says "no such model folder". */
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = clip_model_resolve ("no/such/folder", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dir, ==, "no/such/folder");
  ClipModel *model = clip_model_load ("org/other", NULL, &error);
  g_assert_null (model);
  g_assert_nonnull (strstr (error->message, "gst-clip pull org/other"));
}

static void
test_folder_wins (void)
{
  g_autofree char *cache = make_cache ();
  g_setenv ("HF_HUB_CACHE", cache, TRUE);
  g_autofree char *work = clip_test_tmpdir ();
  g_autofree char *old_cwd = g_get_current_dir ();
  g_autofree char *folder = g_build_filename (work, "org", "name", NULL);
  g_assert_cmpint (g_mkdir_with_parents (folder, 0755), ==, 0);
  g_assert_cmpint (chdir (work), ==, 0);
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = clip_model_resolve ("org/name", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dir, ==, "org/name");
  g_assert_cmpint (chdir (old_cwd), ==, 0);
}

/* The reference tiny-hf model as a pull leaves it: each file a relative
 * link to a blob; loading it by name gives the folder's model. */
static void
test_load_by_name (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *cache = clip_test_tmpdir ();
  g_setenv ("HF_HUB_CACHE", cache, TRUE);
  g_autofree char *source = clip_test_ref_path ("models/tiny-hf");
  g_autofree char *repo = clip_hub_repo_dir (cache, "test/tiny-hf");
  g_autofree char *snapshot = g_build_filename (repo, "snapshots", COMMIT_MAIN,
      NULL);
  g_autofree char *blobs = g_build_filename (repo, "blobs", NULL);
  g_assert_cmpint (g_mkdir_with_parents (snapshot, 0755), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (blobs, 0755), ==, 0);
  const char *files[] = { "config.json", "model.safetensors", "vocab.json",
    "merges.txt", "preprocessor_config.json" };
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++) {
    g_autofree char *from = g_build_filename (source, files[i], NULL);
    g_autofree char *blob_name = g_strdup_printf ("%040zu", i);
    g_autofree char *blob = g_build_filename (blobs, blob_name, NULL);
    g_autofree char *link = g_build_filename (snapshot, files[i], NULL);
    g_autofree char *target = g_build_filename ("..", "..", "blobs", blob_name,
        NULL);
    g_autofree char *from_abs = g_canonicalize_filename (from, NULL);
    g_assert_cmpint (symlink (from_abs, blob), ==, 0);
    g_assert_cmpint (symlink (target, link), ==, 0);
  }
  g_autofree char *ref = g_build_filename (repo, "refs", "main", NULL);
  write_file (ref, COMMIT_MAIN);

  g_autoptr (GError) error = NULL;
  g_autoptr (ClipModel) by_name = clip_model_load ("test/tiny-hf", NULL,
      &error);
  g_assert_no_error (error);
  g_assert_cmpstr (clip_model_get_name (by_name), ==, "tiny-hf");
  g_assert_cmpstr (clip_model_get_dir (by_name), ==, snapshot);
  g_autoptr (ClipModel) by_folder = clip_model_load (source, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (clip_model_get_config (by_name), sizeof (ClipConfig),
      clip_model_get_config (by_folder), sizeof (ClipConfig));
  /* The vocabulary argument takes hub names too. */
  g_autoptr (ClipModel) with_vocab = clip_model_load (source,
      "hf-hub:test/tiny-hf", &error);
  g_assert_no_error (error);
}

static void
test_offline_values (void)
{
  const char *on[] = { "1", "ON", "yes", "True" };
  const char *off[] = { "0", "", "no", "false" };
  for (gsize i = 0; i < G_N_ELEMENTS (on); i++) {
    g_setenv ("HF_HUB_OFFLINE", on[i], TRUE);
    g_assert_true (clip_hub_offline ());
  }
  for (gsize i = 0; i < G_N_ELEMENTS (off); i++) {
    g_setenv ("HF_HUB_OFFLINE", off[i], TRUE);
    g_assert_false (clip_hub_offline ());
  }
  g_unsetenv ("HF_HUB_OFFLINE");
  g_assert_false (clip_hub_offline ());
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/hub/parse-name", test_parse_name);
  g_test_add_func ("/hub/cache-dir-precedence", test_cache_dir_precedence);
  g_test_add_func ("/hub/resolve-revisions", test_resolve_revisions);
  g_test_add_func ("/hub/not-cached", test_not_cached);
  g_test_add_func ("/hub/folder-wins", test_folder_wins);
  g_test_add_func ("/hub/load-by-name", test_load_by_name);
  g_test_add_func ("/hub/offline-values", test_offline_values);
  return g_test_run ();
}
