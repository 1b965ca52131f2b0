/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gst-clip pull and models: CLIP models of the HuggingFace hub, kept in the
 * hub's own cache layout (runtime/hub.h) so that Python tools share them.
 *
 * pull asks the hub for each file it needs as huggingface_hub does: a HEAD
 * of {endpoint}/{repo}/resolve/{revision}/{file}, without following
 * redirects, gives the commit (X-Repo-Commit), the file's id (X-Linked-Etag
 * for an LFS file, its sha256; ETag else, the git blob id) and where the
 * bytes are (Location); the bytes go to blobs/ID.incomplete, resumed with
 * Range after a cut, and are renamed to blobs/ID once their hash matches
 * the id. The snapshot's file is then a relative link to the blob. */
#include "commands.h"
#include "hub.h"
#include "model.h"

#include <curl/curl.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_ENDPOINT "https://huggingface.co"
/* Tries of one file's download; each resumes where the last one stopped. */
#define DOWNLOAD_TRIES 5

/* What the loader reads (runtime/config.c, model.c, tokenizer.c), each
 * list in its order of preference: the first file the repository has. */
static const char *const config_files[] = { "config.json",
  "open_clip_config.json", NULL };
static const char *const weight_files[] = { "model.safetensors",
  "open_clip_model.safetensors", NULL };
/* Weights gst-clip cannot read, named when they are all there is. */
static const char *const pickle_files[] = { "pytorch_model.bin",
  "open_clip_pytorch_model.bin", NULL };
static const char *const preprocessor_file = "preprocessor_config.json";
static const char *const hf_vocab_files[] = { "vocab.json", "merges.txt",
  NULL };
static const char *const openai_vocab_file = "bpe_simple_vocab_16e6.txt.gz";

typedef struct {
  const char *endpoint;
  const char *token;
  char *repo_id;
  char *revision;
  char *repo_dir;
  char *commit; /* from the first answer; later requests ask for it */
  gboolean progress;
} Pull;

/* The headers of one answer that pull reads. */
typedef struct {
  char *commit, *etag, *linked_etag, *location, *error_code;
  gint64 linked_size;
} HubHeaders;

static void
hub_headers_clear (HubHeaders *h)
{
  g_free (h->commit);
  g_free (h->etag);
  g_free (h->linked_etag);
  g_free (h->location);
  g_free (h->error_code);
  memset (h, 0, sizeof *h);
  h->linked_size = -1;
}

static size_t
on_header (char *line, size_t size, size_t count, void *data)
{
  HubHeaders *h = data;
  size_t length = size * count;
  g_autofree char *text = g_strndup (line, length);
  char *colon = strchr (text, ':');
  if (colon == NULL)
    return length;
  *colon = '\0';
  char *value = g_strstrip (colon + 1);
  struct {
    const char *name;
    char **field;
  } fields[] = {
    { "x-repo-commit", &h->commit },
    { "etag", &h->etag },
    { "x-linked-etag", &h->linked_etag },
    { "location", &h->location },
    { "x-error-code", &h->error_code },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (fields); i++)
    if (g_ascii_strcasecmp (text, fields[i].name) == 0) {
      g_free (*fields[i].field);
      *fields[i].field = g_strdup (value);
    }
  if (g_ascii_strcasecmp (text, "x-linked-size") == 0)
    h->linked_size = g_ascii_strtoll (value, NULL, 10);
  return length;
}

/* An ETag without W/ and quotes: the hub's file id. */
static char *
normalise_etag (const char *etag)
{
  if (g_str_has_prefix (etag, "W/"))
    etag += 2;
  char *id = g_strdup (etag);
  gsize n = strlen (id);
  if (n >= 2 && id[0] == '"' && id[n - 1] == '"') {
    memmove (id, id + 1, n - 2);
    id[n - 2] = '\0';
  }
  return id;
}

/* Only these ids are used as blob names: anything else could leave
 * blobs/. */
static gboolean
is_hex_id (const char *id)
{
  gsize n = strlen (id);
  if (n != 40 && n != 64)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isxdigit (id[i]) || g_ascii_isupper (id[i]))
      return FALSE;
  return TRUE;
}

static CURL *
new_request (const Pull *pull, const char *url, struct curl_slist **headers)
{
  CURL *curl = curl_easy_init ();
  curl_easy_setopt (curl, CURLOPT_URL, url);
  curl_easy_setopt (curl, CURLOPT_USERAGENT, "gst-clip/" GST_CLIP_VERSION);
  curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, 30L);
  /* A stalled transfer (under 1 byte/s for a minute) is a cut one. */
  curl_easy_setopt (curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt (curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
  *headers = curl_slist_append (NULL, "Accept-Encoding: identity");
  /* The token goes to the hub only, never to the storage a redirect
   * names. */
  if (pull->token && g_str_has_prefix (url, pull->endpoint)) {
    g_autofree char *auth = g_strdup_printf ("Authorization: Bearer %s",
        pull->token);
    *headers = curl_slist_append (*headers, auth);
  }
  curl_easy_setopt (curl, CURLOPT_HTTPHEADER, *headers);
  return curl;
}

static char *
resolve_url (const Pull *pull, const char *file)
{
  CURL *curl = curl_easy_init ();
  char *rev = curl_easy_escape (curl,
      pull->commit ? pull->commit : pull->revision, 0);
  char *url = g_strdup_printf ("%s/%s/resolve/%s/%s", pull->endpoint,
      pull->repo_id, rev, file);
  curl_free (rev);
  curl_easy_cleanup (curl);
  return url;
}

typedef enum { FILE_FOUND, FILE_ABSENT, FILE_ERROR } FileLookup;

/* HEAD of the file's resolve URL: its id, size, commit and where its
 * bytes are. */
static FileLookup
lookup_file (Pull *pull, const char *file, char **id, gint64 *size,
    char **location, GError **error)
{
  g_autofree char *url = resolve_url (pull, file);
  HubHeaders h;
  memset (&h, 0, sizeof h);
  CURLcode code;
  long status = 0;
  curl_off_t content_length = -1;
  /* A renamed repository answers with a redirect relative to the hub: it
   * is followed, as huggingface_hub does; a redirect elsewhere is where
   * the bytes are. */
  for (int hops = 0;; hops++) {
    hub_headers_clear (&h);
    struct curl_slist *headers = NULL;
    CURL *curl = new_request (pull, url, &headers);
    curl_easy_setopt (curl, CURLOPT_NOBODY, 1L);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, &h);
    code = curl_easy_perform (curl);
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo (curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
        &content_length);
    curl_easy_cleanup (curl);
    curl_slist_free_all (headers);
    if (code != CURLE_OK || status < 300 || status >= 400 || h.location == NULL
        || h.location[0] != '/' || hops == 5)
      break;
    g_free (url);
    url = g_strconcat (pull->endpoint, h.location, NULL);
  }

  FileLookup result = FILE_ERROR;
  if (code != CURLE_OK) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: %s (HF_HUB_OFFLINE=1 uses what is cached without asking)", url,
        curl_easy_strerror (code));
  } else if (status == 401 || status == 403) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: HTTP %ld: %s is gated, private or does not exist; %s", url, status,
        pull->repo_id,
        pull->token ? "the token (HF_TOKEN, or the saved login) has no access "
                      "to it"
                    : "set HF_TOKEN to a token with access to it");
  } else if (status == 404 && h.error_code
      && (strcmp (h.error_code, "RepoNotFound") == 0
          || strcmp (h.error_code, "RevisionNotFound") == 0)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: no such %s on %s", url,
        strcmp (h.error_code, "RepoNotFound") == 0 ? "repository" : "revision",
        pull->endpoint);
  } else if (status == 404) {
    result = FILE_ABSENT;
  } else if (status >= 400 || status < 200) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: HTTP %ld", url, status);
  } else if (h.commit == NULL || !clip_hub_is_commit (h.commit)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: no commit hash (X-Repo-Commit) in the answer: is %s a "
        "HuggingFace hub?",
        url, pull->endpoint);
  } else if (pull->commit && strcmp (pull->commit, h.commit) != 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: answered for commit %s, not %s", url, h.commit, pull->commit);
  } else if (h.linked_etag == NULL && h.etag == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: no ETag or X-Linked-Etag in the answer", url);
  } else {
    *id = normalise_etag (h.linked_etag ? h.linked_etag : h.etag);
    if (!is_hex_id (*id)) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
          "%s: the file id '%s' is neither a sha256 nor a git blob id", url,
          *id);
      g_clear_pointer (id, g_free);
    } else {
      if (pull->commit == NULL)
        pull->commit = g_strdup (h.commit);
      *size = h.linked_size >= 0 ? h.linked_size : (gint64) content_length;
      *location = h.location && status >= 300 && status < 400
          ? g_strdup (h.location)
          : g_strdup (url);
      result = FILE_FOUND;
    }
  }
  hub_headers_clear (&h);
  return result;
}

typedef struct {
  FILE *out;
  const char *file;
  gint64 offset;   /* bytes already in the file when this try started */
  gint64 total;    /* expected size, or -1 */
  gint64 start_us; /* this try's start, for the rate */
  gint64 last_draw_us;
  gboolean progress;
  gboolean checked_status;
  CURL *curl;
} Transfer;

static size_t
on_body (char *data, size_t size, size_t count, void *user)
{
  Transfer *t = user;
  if (!t->checked_status) {
    long status = 0;
    curl_easy_getinfo (t->curl, CURLINFO_RESPONSE_CODE, &status);
    /* A server that ignores Range sends the whole file again. */
    if (status == 200 && t->offset > 0) {
      if (fflush (t->out) != 0 || ftruncate (fileno (t->out), 0) != 0
          || fseek (t->out, 0, SEEK_SET) != 0)
        return 0;
      t->offset = 0;
    }
    t->checked_status = TRUE;
  }
  return fwrite (data, size, count, t->out) * size;
}

static void
format_size (char *out, gsize n, gint64 bytes)
{
  g_autofree char *text = g_format_size (bytes);
  g_strlcpy (out, text, n);
}

static int
on_progress (void *user, curl_off_t dl_total, curl_off_t dl_now,
    curl_off_t ul_total, curl_off_t ul_now)
{
  Transfer *t = user;
  gint64 now = g_get_monotonic_time ();
  if (!t->progress || now - t->last_draw_us < 100000)
    return 0;
  t->last_draw_us = now;
  gint64 done = t->offset + dl_now;
  gint64 total = t->total > 0 ? t->total : t->offset + dl_total;
  double seconds = (now - t->start_us) / 1e6;
  char done_text[32], total_text[32], rate_text[32];
  format_size (done_text, sizeof done_text, done);
  format_size (total_text, sizeof total_text, total);
  format_size (rate_text, sizeof rate_text,
      seconds > 0 ? (gint64) (dl_now / seconds) : 0);
  int percent = total > 0 ? (int) (100 * done / total) : 0;
  int filled = percent / 5;
  fprintf (stderr, "\r  %-28s [%.*s%*s] %3d%%  %s / %s  %s/s\033[K", t->file,
      filled, "####################", 20 - filled, "", percent, done_text,
      total_text, rate_text);
  return 0;
}

/* sha256 of an LFS file's bytes, or the git blob id (sha1 of "blob SIZE\0"
 * and the bytes) of any other: what the hub's id is. */
static char *
file_id (const char *path, gsize id_length, GError **error)
{
  FILE *in = g_fopen (path, "rb");
  if (in == NULL) {
    int saved = errno;
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", path,
        g_strerror (saved));
    return NULL;
  }
  GChecksum *sum = g_checksum_new (
      id_length == 64 ? G_CHECKSUM_SHA256 : G_CHECKSUM_SHA1);
  if (id_length == 40) {
    GStatBuf st;
    g_stat (path, &st);
    g_autofree char *header = g_strdup_printf ("blob %" G_GINT64_FORMAT,
        (gint64) st.st_size);
    g_checksum_update (sum, (const guchar *) header, strlen (header) + 1);
  }
  guchar buffer[1 << 16];
  size_t n;
  while ((n = fread (buffer, 1, sizeof buffer, in)) > 0)
    g_checksum_update (sum, buffer, n);
  gboolean failed = ferror (in);
  fclose (in);
  char *id = failed ? NULL : g_strdup (g_checksum_get_string (sum));
  g_checksum_free (sum);
  if (failed)
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: read error", path);
  return id;
}

static gint64
file_size (const char *path)
{
  GStatBuf st;
  return g_stat (path, &st) == 0 ? (gint64) st.st_size : 0;
}

/* Downloads url into partial, resuming what is there, up to DOWNLOAD_TRIES
 * times. */
static gboolean
download (const Pull *pull, const char *file, const char *url,
    const char *partial, gint64 size, GError **error)
{
  for (int attempt = 1;; attempt++) {
    Transfer t = { .file = file, .total = size, .progress = pull->progress };
    t.offset = file_size (partial);
    /* Longer than the file: not a prefix of it, start again. */
    if (size >= 0 && t.offset > size) {
      g_unlink (partial);
      t.offset = 0;
    }
    if (size >= 0 && t.offset == size && t.offset > 0)
      return TRUE;
    if ((t.out = g_fopen (partial, "ab")) == NULL) {
      int saved = errno;
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", partial,
          g_strerror (saved));
      return FALSE;
    }
    struct curl_slist *headers = NULL;
    CURL *curl = t.curl = new_request (pull, url, &headers);
    t.start_us = g_get_monotonic_time ();
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt (curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt (curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt (curl, CURLOPT_XFERINFODATA, &t);
    if (t.offset > 0)
      curl_easy_setopt (curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t) t.offset);
    CURLcode code = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup (curl);
    curl_slist_free_all (headers);
    gboolean closed = fclose (t.out) == 0;
    if (pull->progress)
      fprintf (stderr, "\r\033[K");
    if (code == CURLE_OK && status >= 200 && status < 300 && closed)
      return TRUE;
    /* A Range past the end: what is there is no prefix of the file. */
    if (code == CURLE_OK && status == 416 && closed
        && attempt < DOWNLOAD_TRIES) {
      g_unlink (partial);
      continue;
    }
    g_autofree char *why = code != CURLE_OK
        ? g_strdup (curl_easy_strerror (code))
        : closed ? g_strdup_printf ("HTTP %ld", status)
                 : g_strdup_printf ("cannot write %s", partial);
    /* A cut or a timeout is worth resuming; a refusal is not. */
    gboolean retry = closed
        && (code == CURLE_PARTIAL_FILE || code == CURLE_RECV_ERROR
            || code == CURLE_OPERATION_TIMEDOUT || code == CURLE_GOT_NOTHING
            || code == CURLE_SEND_ERROR || status >= 500);
    if (!retry || attempt == DOWNLOAD_TRIES) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
          "%s: %s after %" G_GINT64_FORMAT
          " bytes; run the same pull again to resume",
          url, why, file_size (partial));
      return FALSE;
    }
    fprintf (stderr,
        "gst-clip: %s: %s after %" G_GINT64_FORMAT " bytes; resuming\n", file,
        why, file_size (partial));
  }
}

/* snapshots/COMMIT/FILE -> ../../blobs/ID, replacing any older link. */
static gboolean
link_snapshot_file (const Pull *pull, const char *file, const char *id,
    GError **error)
{
  g_autofree char *link = g_build_filename (pull->repo_dir, "snapshots",
      pull->commit, file, NULL);
  g_autofree char *folder = g_path_get_dirname (link);
  GString *target = g_string_new ("../../");
  for (const char *c = file; *c; c++)
    if (*c == '/')
      g_string_append (target, "../");
  g_string_append_printf (target, "blobs/%s", id);
  g_autofree char *temporary = g_strdup_printf ("%s.%d.link", link,
      (int) getpid ());
  int saved = 0;
  if (g_mkdir_with_parents (folder, 0755) != 0
      || (g_unlink (temporary), symlink (target->str, temporary)) != 0
      || g_rename (temporary, link) != 0)
    saved = errno;
  g_string_free (target, TRUE);
  if (saved) {
    g_unlink (temporary);
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", link,
        g_strerror (saved));
    return FALSE;
  }
  return TRUE;
}

/* One file into blobs/ and the snapshot. FILE_ABSENT when the repository
 * does not have it. */
static FileLookup
fetch_file (Pull *pull, const char *file, GError **error)
{
  g_autofree char *id = NULL;
  g_autofree char *location = NULL;
  gint64 size = -1;
  FileLookup found = lookup_file (pull, file, &id, &size, &location, error);
  if (found != FILE_FOUND)
    return found;
  g_autofree char *blobs = g_build_filename (pull->repo_dir, "blobs", NULL);
  g_autofree char *blob = g_build_filename (blobs, id, NULL);
  char size_text[32];
  if (g_file_test (blob, G_FILE_TEST_EXISTS)) {
    format_size (size_text, sizeof size_text, file_size (blob));
    fprintf (stderr, "  %-28s %10s  already in the cache\n", file, size_text);
    return link_snapshot_file (pull, file, id, error) ? FILE_FOUND : FILE_ERROR;
  }
  g_autofree char *partial = g_strconcat (blob, ".incomplete", NULL);
  if (g_mkdir_with_parents (blobs, 0755) != 0) {
    int saved = errno;
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", blobs,
        g_strerror (saved));
    return FILE_ERROR;
  }
  if (!download (pull, file, location, partial, size, error))
    return FILE_ERROR;
  g_autofree char *got = file_id (partial, strlen (id), error);
  if (got == NULL)
    return FILE_ERROR;
  if (strcmp (got, id) != 0) {
    g_unlink (partial);
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: the downloaded bytes have %s %s, the hub says %s; removed them, "
        "run the pull again",
        file, strlen (id) == 64 ? "sha256" : "git blob id", got, id);
    return FILE_ERROR;
  }
  if (g_rename (partial, blob) != 0) {
    int saved = errno;
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", blob,
        g_strerror (saved));
    return FILE_ERROR;
  }
  format_size (size_text, sizeof size_text, file_size (blob));
  fprintf (stderr, "  %-28s %10s  %s verified\n", file, size_text,
      strlen (id) == 64 ? "sha256" : "git blob id");
  return link_snapshot_file (pull, file, id, error) ? FILE_FOUND : FILE_ERROR;
}

/* The first of files the repository has; *which is its index, or -1 when
 * it has none. */
static gboolean
fetch_first (Pull *pull, const char *const *files, int *which, GError **error)
{
  *which = -1;
  for (int i = 0; files[i]; i++) {
    FileLookup found = fetch_file (pull, files[i], error);
    if (found == FILE_ERROR)
      return FALSE;
    if (found == FILE_FOUND) {
      *which = i;
      return TRUE;
    }
  }
  return TRUE;
}

/* Which of files the repository has, asked without downloading. */
static const char *
first_present (Pull *pull, const char *const *files, GError **error)
{
  for (int i = 0; files[i]; i++) {
    g_autofree char *id = NULL;
    g_autofree char *location = NULL;
    gint64 size;
    FileLookup found = lookup_file (pull, files[i], &id, &size, &location,
        error);
    if (found == FILE_ERROR)
      return NULL;
    if (found == FILE_FOUND)
      return files[i];
  }
  return NULL;
}

static gboolean
fetch_all (Pull *pull, GError **error)
{
  /* Weights gst-clip can read first, before anything is downloaded. */
  GError *lookup_error = NULL;
  if (first_present (pull, weight_files, &lookup_error) == NULL) {
    const char *pickle = lookup_error
        ? NULL
        : first_present (pull, pickle_files, &lookup_error);
    if (lookup_error) {
      g_propagate_error (error, lookup_error);
      return FALSE;
    }
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "%s has no model.safetensors or open_clip_model.safetensors%s%s%s",
        pull->repo_id, pickle ? ", only " : "", pickle ? pickle : "",
        pickle ? " (a PyTorch pickle, which gst-clip does not read)" : "");
    return FALSE;
  }
  int which;
  if (!fetch_first (pull, config_files, &which, error))
    return FALSE;
  if (which < 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s has no config.json or open_clip_config.json: not a CLIP model "
        "repository",
        pull->repo_id);
    return FALSE;
  }
  const char *const preprocessor[] = { preprocessor_file, NULL };
  if (!fetch_first (pull, preprocessor, &which, error)
      || !fetch_first (pull, weight_files, &which, error))
    return FALSE;
  if (which < 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: model.safetensors or open_clip_model.safetensors vanished during "
        "the download",
        pull->repo_id);
    return FALSE;
  }
  /* vocab.json and merges.txt together, else the OpenAI file. */
  const char *const vocab[] = { hf_vocab_files[0], NULL };
  const char *const merges[] = { hf_vocab_files[1], NULL };
  const char *const openai_vocab[] = { openai_vocab_file, NULL };
  int has_vocab, has_merges = -1;
  if (!fetch_first (pull, vocab, &has_vocab, error)
      || (has_vocab == 0 && !fetch_first (pull, merges, &has_merges, error)))
    return FALSE;
  return has_merges == 0 || fetch_first (pull, openai_vocab, &which, error);
}

static gboolean
write_ref (const Pull *pull, GError **error)
{
  if (clip_hub_is_commit (pull->revision))
    return TRUE;
  g_autofree char *ref = g_build_filename (pull->repo_dir, "refs",
      pull->revision, NULL);
  g_autofree char *folder = g_path_get_dirname (ref);
  g_autoptr (GError) local = NULL;
  /* g_file_set_contents writes a temporary file and renames it. */
  if (g_mkdir_with_parents (folder, 0755) != 0
      || !g_file_set_contents (ref, pull->commit, -1, &local)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", ref,
        local ? local->message : g_strerror (errno));
    return FALSE;
  }
  return TRUE;
}

/* HF_TOKEN, else the token file a login (`hf auth login`) writes:
 * $HF_TOKEN_PATH, else HF_HOME/token. NULL when there is none. */
static char *
read_token (void)
{
  const char *token = g_getenv ("HF_TOKEN");
  if (token && *token)
    return g_strdup (token);
  const char *path = g_getenv ("HF_TOKEN_PATH");
  g_autofree char *default_path = NULL;
  if (path == NULL || *path == '\0') {
    g_autofree char *home = clip_hub_home_dir ();
    path = default_path = g_build_filename (home, "token", NULL);
  }
  char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  g_strstrip (text);
  if (*text == '\0')
    g_clear_pointer (&text, g_free);
  return text;
}

static const char *
layout_name (ClipLayout layout)
{
  return layout == CLIP_LAYOUT_HF ? "HF" : "OpenCLIP";
}

int
tool_cmd_pull (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = tool_option_context_new (
      "ORG/NAME[@REVISION]",
      "Download a CLIP model from the HuggingFace hub into its cache",
      "Fetches only what gst-clip reads (the config, the safetensors weights, "
      "the\nvocabulary) into the hub cache ($HF_HUB_CACHE, else $HF_HOME/hub, "
      "else\n~/.cache/huggingface/hub), laid out as huggingface_hub does. The "
      "model is\nthen used by name: --model ORG/NAME, model=ORG/NAME.\n\n"
      "Environment: HF_ENDPOINT (default " DEFAULT_ENDPOINT "), HF_TOKEN "
      "(gated or private\nrepositories), HF_HUB_OFFLINE=1 (no network).",
      NULL, NULL, FALSE);
  int status;
  if (!tool_parse (ctx, &argc, &argv, &status))
    return status;
  if (argc != 2)
    return tool_usage_error ("pull",
        "give one model name, ORG/NAME[@REVISION]");

  Pull pull = { 0 };
  if (!clip_hub_parse_name (argv[1], &pull.repo_id, &pull.revision))
    return tool_usage_error ("pull",
        "'%s' is not a hub model name: ORG/NAME or ORG/NAME@REVISION", argv[1]);
  g_autofree char *cache = clip_hub_cache_dir ();
  pull.repo_dir = clip_hub_repo_dir (cache, pull.repo_id);
  GError *error = NULL;
  g_autofree char *snapshot = NULL;
  g_autofree char *token = NULL;

  if (clip_hub_offline ()) {
    snapshot = clip_hub_snapshot_dir (cache, pull.repo_id, pull.revision,
        &error);
    if (snapshot == NULL) {
      g_prefix_error (&error,
          "HF_HUB_OFFLINE is set, so nothing is "
          "downloaded: ");
      status = tool_fail (error);
      goto out;
    }
    fprintf (stderr,
        "gst-clip: HF_HUB_OFFLINE is set: using the cached "
        "snapshot\n");
  } else {
    const char *endpoint = g_getenv ("HF_ENDPOINT");
    g_autofree char *trimmed = g_strdup (
        endpoint && *endpoint ? endpoint : DEFAULT_ENDPOINT);
    while (g_str_has_suffix (trimmed, "/"))
      trimmed[strlen (trimmed) - 1] = '\0';
    pull.endpoint = trimmed;
    token = read_token ();
    pull.token = token;
    pull.progress = isatty (fileno (stderr));
    curl_global_init (CURL_GLOBAL_DEFAULT);
    gboolean ok = fetch_all (&pull, &error) && write_ref (&pull, &error);
    curl_global_cleanup ();
    if (!ok) {
      status = tool_fail (error);
      goto out;
    }
    snapshot = g_build_filename (pull.repo_dir, "snapshots", pull.commit, NULL);
  }

  /* What was fetched must load: say now, not at the first use. */
  ClipModel *model = clip_model_load (snapshot, NULL, &error);
  if (model == NULL) {
    g_prefix_error (&error,
        "%s is in the cache but gst-clip cannot use it: ", argv[1]);
    status = tool_fail (error);
    goto out;
  }
  printf ("%s\n", snapshot);
  fprintf (stderr, "gst-clip: %s ready (%s layout): --model %s\n", argv[1],
      layout_name (model->layout), argv[1]);
  clip_model_unref (model);
  status = TOOL_EXIT_OK;

out:
  g_free (pull.repo_id);
  g_free (pull.revision);
  g_free (pull.repo_dir);
  g_free (pull.commit);
  return status;
}

/* ----------------------------------------------------------------- models */

/* Why gst-clip cannot use a snapshot, or NULL when it can (*layout set). */
static char *
unusable_reason (const char *snapshot, ClipLayout *layout)
{
  gboolean has_config = FALSE, has_weights = FALSE;
  const char *pickle = NULL;
  for (int i = 0; config_files[i]; i++) {
    g_autofree char *path = g_build_filename (snapshot, config_files[i], NULL);
    has_config = has_config || g_file_test (path, G_FILE_TEST_EXISTS);
  }
  for (int i = 0; weight_files[i]; i++) {
    g_autofree char *path = g_build_filename (snapshot, weight_files[i], NULL);
    has_weights = has_weights || g_file_test (path, G_FILE_TEST_EXISTS);
  }
  for (int i = 0; pickle_files[i] && !pickle; i++) {
    g_autofree char *path = g_build_filename (snapshot, pickle_files[i], NULL);
    if (g_file_test (path, G_FILE_TEST_EXISTS))
      pickle = pickle_files[i];
  }
  if (!has_weights && pickle)
    return g_strdup_printf ("only %s, a PyTorch pickle: gst-clip reads "
                            "safetensors",
        pickle);
  if (!has_weights)
    return g_strdup ("no model.safetensors or open_clip_model.safetensors");
  if (!has_config)
    return g_strdup ("no config.json or open_clip_config.json");
  g_autoptr (GError) error = NULL;
  ClipModel *model = clip_model_load (snapshot, NULL, &error);
  if (model == NULL) {
    /* The message names the snapshot's path; the listing names the model. */
    const char *message = error->message;
    if (g_str_has_prefix (message, snapshot))
      message += strlen (snapshot);
    while (*message == '/' || *message == ':' || *message == ' ')
      message++;
    return g_strdup (message);
  }
  *layout = model->layout;
  clip_model_unref (model);
  return NULL;
}

static gint64
snapshot_size (const char *snapshot)
{
  gint64 total = 0;
  g_autoptr (GDir) dir = g_dir_open (snapshot, 0, NULL);
  const char *entry;
  while (dir && (entry = g_dir_read_name (dir))) {
    g_autofree char *path = g_build_filename (snapshot, entry, NULL);
    total += g_file_test (path, G_FILE_TEST_IS_DIR) ? snapshot_size (path)
                                                    : file_size (path);
  }
  return total;
}

/* refs/ as revision -> commit, branches with '/' included (refs/pr/1). */
static void
read_refs (const char *refs_dir, const char *prefix, GHashTable *refs)
{
  g_autoptr (GDir) dir = g_dir_open (refs_dir, 0, NULL);
  const char *entry;
  while (dir && (entry = g_dir_read_name (dir))) {
    g_autofree char *path = g_build_filename (refs_dir, entry, NULL);
    g_autofree char *name = prefix ? g_strdup_printf ("%s/%s", prefix, entry)
                                   : g_strdup (entry);
    char *commit = NULL;
    if (g_file_test (path, G_FILE_TEST_IS_DIR))
      read_refs (path, name, refs);
    else if (g_file_get_contents (path, &commit, NULL, NULL))
      g_hash_table_insert (refs, g_steal_pointer (&name), g_strstrip (commit));
  }
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static GPtrArray *
sorted_entries (const char *folder, const char *prefix)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GDir) dir = g_dir_open (folder, 0, NULL);
  const char *entry;
  while (dir && (entry = g_dir_read_name (dir)))
    if (prefix == NULL || g_str_has_prefix (entry, prefix))
      g_ptr_array_add (names, g_strdup (entry));
  g_ptr_array_sort (names, compare_strings);
  return names;
}

/* The revisions pointing at commit, "main" first, or "-". */
static char *
revisions_of (GHashTable *refs, const char *commit)
{
  GPtrArray *names = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer name, value;
  g_hash_table_iter_init (&iter, refs);
  while (g_hash_table_iter_next (&iter, &name, &value))
    if (strcmp (value, commit) == 0)
      g_ptr_array_add (names, name);
  g_ptr_array_sort (names, compare_strings);
  GString *text = g_string_new (NULL);
  for (guint i = 0; i < names->len; i++)
    if (strcmp (names->pdata[i], CLIP_HUB_DEFAULT_REVISION) == 0)
      g_string_append (text, CLIP_HUB_DEFAULT_REVISION);
  for (guint i = 0; i < names->len; i++)
    if (strcmp (names->pdata[i], CLIP_HUB_DEFAULT_REVISION) != 0)
      g_string_append_printf (text, "%s%s", text->len ? "," : "",
          (char *) names->pdata[i]);
  g_ptr_array_free (names, TRUE);
  if (text->len == 0)
    g_string_append (text, "-");
  return g_string_free (text, FALSE);
}

int
tool_cmd_models (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = tool_option_context_new (NULL,
      "List the HuggingFace hub cache's models gst-clip can use",
      "Reads the hub cache ($HF_HUB_CACHE, else $HF_HOME/hub, else\n"
      "~/.cache/huggingface/hub): one line per cached snapshot gst-clip can "
      "load\n(use it as --model NAME or NAME@REVISION), then the others with "
      "the reason.",
      NULL, NULL, FALSE);
  int status;
  if (!tool_parse_options_only ("models", ctx, &argc, &argv, &status))
    return status;
  g_autofree char *cache = clip_hub_cache_dir ();
  g_autoptr (GPtrArray) repos = sorted_entries (cache, "models--");
  g_autoptr (GString) unusable = g_string_new (NULL);
  int usable = 0;
  for (guint r = 0; r < repos->len; r++) {
    const char *folder = repos->pdata[r];
    g_auto (GStrv) parts = g_strsplit (folder + strlen ("models--"), "--", -1);
    g_autofree char *repo_id = g_strjoinv ("/", parts);
    g_autofree char *repo_dir = g_build_filename (cache, folder, NULL);
    g_autofree char *refs_dir = g_build_filename (repo_dir, "refs", NULL);
    g_autofree char *snapshots_dir = g_build_filename (repo_dir, "snapshots",
        NULL);
    g_autoptr (GHashTable) refs = g_hash_table_new_full (g_str_hash,
        g_str_equal, g_free, g_free);
    read_refs (refs_dir, NULL, refs);
    g_autoptr (GPtrArray) commits = sorted_entries (snapshots_dir, NULL);
    if (commits->len == 0)
      g_string_append_printf (unusable, "%s: no snapshot\n", repo_id);
    for (guint c = 0; c < commits->len; c++) {
      const char *commit = commits->pdata[c];
      g_autofree char *snapshot = g_build_filename (snapshots_dir, commit,
          NULL);
      g_autofree char *revisions = revisions_of (refs, commit);
      ClipLayout layout = CLIP_LAYOUT_HF;
      g_autofree char *reason = unusable_reason (snapshot, &layout);
      if (reason) {
        g_string_append_printf (unusable, "%s (%s, %.12s): %s\n", repo_id,
            revisions, commit, reason);
        continue;
      }
      if (usable++ == 0)
        printf ("%-44s %-10s %-12s %10s  %s\n", "NAME", "REVISION", "COMMIT",
            "SIZE", "LAYOUT");
      g_autofree char *size = g_format_size (snapshot_size (snapshot));
      printf ("%-44s %-10s %-12.12s %10s  %s\n", repo_id, revisions, commit,
          size, layout_name (layout));
    }
  }
  if (usable == 0)
    printf ("No model gst-clip can use in %s; fetch one with gst-clip pull "
            "ORG/NAME.\n",
        cache);
  if (unusable->len)
    printf ("\nNot usable by gst-clip:\n%s", unusable->str);
  return TOOL_EXIT_OK;
}
