/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Model names of the HuggingFace hub, resolved in its local cache. */
#include "hub.h"

#include "clip.h"

#include <string.h>

#define HF_HUB_PREFIX "hf-hub:"

/* One part of a repository id: what the hub accepts, less "--" and ".."
 * (which it forbids too), so that models--ORG--NAME maps back uniquely. */
static gboolean
valid_repo_part (const char *part, gsize length)
{
  if (length == 0 || length > 96 || part[0] == '-' || part[0] == '.'
      || part[length - 1] == '-' || part[length - 1] == '.')
    return FALSE;
  for (gsize i = 0; i < length; i++) {
    char c = part[i];
    if (!g_ascii_isalnum (c) && c != '-' && c != '_' && c != '.')
      return FALSE;
    if (i > 0 && (c == '-' || c == '.') && part[i - 1] == c)
      return FALSE;
  }
  return TRUE;
}

/* A revision is a branch, tag or commit: it may hold '/' (refs/pr/1) but
 * must stay inside refs/ and snapshots/. */
static gboolean
valid_revision (const char *revision)
{
  if (*revision == '\0' || *revision == '/' || strstr (revision, "//"))
    return FALSE;
  g_auto (GStrv) parts = g_strsplit (revision, "/", -1);
  for (char **p = parts; *p; p++)
    if (**p == '\0' || strcmp (*p, ".") == 0 || strcmp (*p, "..") == 0)
      return FALSE;
  for (const char *c = revision; *c; c++)
    if ((guchar) *c < 0x20 || *c == '\\')
      return FALSE;
  return TRUE;
}

gboolean
clip_hub_parse_name (const char *name, char **repo_id, char **revision)
{
  if (g_str_has_prefix (name, HF_HUB_PREFIX))
    name += strlen (HF_HUB_PREFIX);
  const char *at = strchr (name, '@');
  gsize id_length = at ? (gsize) (at - name) : strlen (name);
  const char *slash = memchr (name, '/', id_length);
  if (slash == NULL || !valid_repo_part (name, slash - name)
      || !valid_repo_part (slash + 1, id_length - (slash + 1 - name)))
    return FALSE;
  const char *rev = at ? at + 1 : CLIP_HUB_DEFAULT_REVISION;
  if (!valid_revision (rev))
    return FALSE;
  if (repo_id)
    *repo_id = g_strndup (name, id_length);
  if (revision)
    *revision = g_strdup (rev);
  return TRUE;
}

char *
clip_hub_repo_dir (const char *cache, const char *repo_id)
{
  g_auto (GStrv) parts = g_strsplit (repo_id, "/", -1);
  g_autofree char *joined = g_strjoinv ("--", parts);
  g_autofree char *folder = g_strconcat ("models--", joined, NULL);
  return g_build_filename (cache, folder, NULL);
}

gboolean
clip_hub_is_commit (const char *revision)
{
  gsize n = 0;
  for (; revision[n]; n++)
    if (!g_ascii_isdigit (revision[n])
        && !(revision[n] >= 'a' && revision[n] <= 'f'))
      return FALSE;
  return n == 40;
}

gboolean
clip_hub_offline (void)
{
  const char *value = g_getenv ("HF_HUB_OFFLINE");
  if (value == NULL)
    return FALSE;
  return strcmp (value, "1") == 0 || g_ascii_strcasecmp (value, "on") == 0
      || g_ascii_strcasecmp (value, "yes") == 0
      || g_ascii_strcasecmp (value, "true") == 0;
}

char *
clip_hub_home_dir (void)
{
  /* huggingface_hub's constants.py. */
  const char *home = g_getenv ("HF_HOME");
  if (home && *home)
    return g_strdup (home);
  const char *xdg = g_getenv ("XDG_CACHE_HOME");
  if (xdg && *xdg)
    return g_build_filename (xdg, "huggingface", NULL);
  return g_build_filename (g_get_home_dir (), ".cache", "huggingface", NULL);
}

char *
clip_hub_cache_dir (void)
{
  const char *cache = g_getenv ("HF_HUB_CACHE");
  if (cache && *cache)
    return g_strdup (cache);
  g_autofree char *home = clip_hub_home_dir ();
  return g_build_filename (home, "hub", NULL);
}

static void
set_not_cached (GError **error, const char *repo_id, const char *revision,
    const char *what)
{
  g_autofree char *pull_name = strcmp (revision, CLIP_HUB_DEFAULT_REVISION)
      ? g_strdup_printf ("%s@%s", repo_id, revision)
      : g_strdup (repo_id);
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
      "%s: not a model folder, and not in the HuggingFace cache (%s); run "
      "gst-clip pull %s",
      pull_name, what, pull_name);
}

char *
clip_hub_snapshot_dir (const char *cache, const char *repo_id,
    const char *revision, GError **error)
{
  g_autofree char *repo_dir = clip_hub_repo_dir (cache, repo_id);
  g_autofree char *commit = NULL;
  if (!g_file_test (repo_dir, G_FILE_TEST_IS_DIR)) {
    g_autofree char *what = g_strdup_printf ("looked in %s", repo_dir);
    set_not_cached (error, repo_id, revision, what);
    return NULL;
  }
  if (clip_hub_is_commit (revision)) {
    commit = g_strdup (revision);
  } else {
    g_autofree char *ref = g_build_filename (repo_dir, "refs", revision, NULL);
    if (!g_file_get_contents (ref, &commit, NULL, NULL)) {
      g_autofree char *what = g_strdup_printf ("looked in %s: no %s", repo_dir,
          ref + strlen (repo_dir) + 1);
      set_not_cached (error, repo_id, revision, what);
      return NULL;
    }
    g_strstrip (commit);
    if (!clip_hub_is_commit (commit)) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
          "%s: not a commit hash (40 hex digits)", ref);
      return NULL;
    }
  }
  char *snapshot = g_build_filename (repo_dir, "snapshots", commit, NULL);
  if (!g_file_test (snapshot, G_FILE_TEST_IS_DIR)) {
    g_autofree char *what = g_strdup_printf ("looked in %s: no snapshot %s",
        repo_dir, commit);
    set_not_cached (error, repo_id, revision, what);
    g_free (snapshot);
    return NULL;
  }
  return snapshot;
}

char *
clip_hub_resolve (const char *model, char **name, GError **error)
{
  g_autofree char *repo_id = NULL;
  g_autofree char *revision = NULL;
  /* An existing path wins, so that a folder named like org/name is used
   * as it always was; the loader says what is wrong with a file. */
  if (g_file_test (model, G_FILE_TEST_EXISTS)
      || !clip_hub_parse_name (model, &repo_id, &revision)) {
    if (name)
      *name = g_path_get_basename (model);
    return g_strdup (model);
  }
  g_autofree char *cache = clip_hub_cache_dir ();
  char *snapshot = clip_hub_snapshot_dir (cache, repo_id, revision, error);
  if (snapshot && name)
    *name = g_strdup (strchr (repo_id, '/') + 1);
  return snapshot;
}

char *
clip_model_resolve (const char *model, GError **error)
{
  g_return_val_if_fail (model != NULL, NULL);
  return clip_hub_resolve (model, NULL, error);
}
