/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gst-clip index and search: per-frame image embeddings of video files in
 * a SQLite database, and the moments that best match a text or an example
 * image, printed or as an HTML page with a thumbnail of each. */
#include "commands.h"
#include "html.h"
#include "thumbnail.h"
#include "video-run.h"
#include "classifier.h"

#include <gst/video/video.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* Frames preprocessed and encoded together while indexing. */
#define INDEX_BATCH 8

/* One table per thing: the model whose embeddings the database holds (one
 * row), a video (its absolute path) and its analysed frames. Times are
 * nanoseconds. videos.model and videos.dim repeat the model's name and
 * embedding size for people reading the database. */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS model ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  name TEXT NOT NULL,"
    "  dir TEXT NOT NULL,"
    "  vocab TEXT,"
    "  fingerprint TEXT NOT NULL,"
    "  dim INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS videos ("
    "  id INTEGER PRIMARY KEY,"
    "  path TEXT NOT NULL UNIQUE,"
    "  model TEXT NOT NULL,"
    "  dim INTEGER NOT NULL,"
    "  indexed_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS frames ("
    "  video_id INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,"
    "  pts INTEGER NOT NULL,"
    "  duration INTEGER NOT NULL,"
    "  embedding BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS frames_by_video ON frames (video_id, pts);";

static gboolean
db_fail (sqlite3 *db, const char *db_path, GError **error)
{
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", db_path,
      sqlite3_errmsg (db));
  return FALSE;
}

static gboolean
db_exec (sqlite3 *db, const char *db_path, const char *sql, GError **error)
{
  if (sqlite3_exec (db, sql, NULL, NULL, NULL) == SQLITE_OK)
    return TRUE;
  return db_fail (db, db_path, error);
}

static gboolean
db_prepare (sqlite3 *db, const char *db_path, const char *sql,
    sqlite3_stmt **stmt, GError **error)
{
  if (sqlite3_prepare_v2 (db, sql, -1, stmt, NULL) == SQLITE_OK)
    return TRUE;
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
      "%s: not a gst-clip index: %s", db_path, sqlite3_errmsg (db));
  return FALSE;
}

/* The model a database was indexed with, as recorded in its model table. */
typedef struct {
  char *name;
  char *dir;   /* absolute */
  char *vocab; /* absolute, or NULL: the model folder's own */
  char *fingerprint;
  int dim;
} IndexedModel;

static void
indexed_model_clear (IndexedModel *m)
{
  g_clear_pointer (&m->name, g_free);
  g_clear_pointer (&m->dir, g_free);
  g_clear_pointer (&m->vocab, g_free);
  g_clear_pointer (&m->fingerprint, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (IndexedModel, indexed_model_clear)

static char *
column_strdup (sqlite3_stmt *stmt, int column)
{
  return g_strdup ((const char *) sqlite3_column_text (stmt, column));
}

/* Reads the recorded model into *recorded (fingerprint NULL when none is
 * recorded yet). A database of an older gst-clip, which recorded only the
 * model's folder name, is an error when it holds videos: nothing says which
 * model computed them. */
static gboolean
db_read_model (sqlite3 *db, const char *db_path, IndexedModel *recorded,
    GError **error)
{
  sqlite3_stmt *stmt = NULL;
  if (!db_prepare (db, db_path,
          "SELECT (SELECT count (*) FROM sqlite_master WHERE type = 'table' "
          "AND name = 'model'), (SELECT model FROM videos LIMIT 1)",
          &stmt, error))
    return FALSE;
  int rc = sqlite3_step (stmt);
  gboolean has_model_table = rc == SQLITE_ROW && sqlite3_column_int (stmt, 0);
  g_autofree char *old_name = rc == SQLITE_ROW ? column_strdup (stmt, 1) : NULL;
  sqlite3_finalize (stmt);
  if (rc != SQLITE_ROW)
    return db_fail (db, db_path, error);

  if (has_model_table) {
    if (!db_prepare (db, db_path,
            "SELECT name, dir, vocab, fingerprint, dim FROM model WHERE id = 1",
            &stmt, error))
      return FALSE;
    rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW) {
      recorded->name = column_strdup (stmt, 0);
      recorded->dir = column_strdup (stmt, 1);
      recorded->vocab = column_strdup (stmt, 2);
      recorded->fingerprint = column_strdup (stmt, 3);
      recorded->dim = sqlite3_column_int (stmt, 4);
    }
    sqlite3_finalize (stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      return db_fail (db, db_path, error);
  }
  if (recorded->fingerprint == NULL && old_name != NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "%s: made by an older gst-clip index, which recorded only the folder "
        "name of its model ('%s'), not which model it was: its embeddings "
        "cannot be checked; index the videos again into a new database",
        db_path, old_name);
    return FALSE;
  }
  return TRUE;
}

/* The first characters of a fingerprint's hash: enough to tell two apart
 * in a message. */
static char *
short_fingerprint (const char *fingerprint)
{
  const char *hash = strchr (fingerprint, ':');
  return g_strndup (hash ? hash + 1 : fingerprint, 12);
}

/* Fails, naming both models, unless model is the one the database was
 * indexed with (or the database has none yet). */
static gboolean
check_model (const char *db_path, const IndexedModel *recorded,
    ClipModel *model, GError **error)
{
  const char *fingerprint = clip_model_get_fingerprint (model);
  if (recorded->fingerprint == NULL
      || strcmp (recorded->fingerprint, fingerprint) == 0)
    return TRUE;
  g_autofree char *was = short_fingerprint (recorded->fingerprint);
  g_autofree char *is = short_fingerprint (fingerprint);
  g_autofree char *dir = g_canonicalize_filename (clip_model_get_dir (model),
      NULL);
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
      "%s: the database holds embeddings of model '%s' (%s, %d-dim, "
      "fingerprint %s), not of model '%s' (%s, %d-dim, fingerprint %s): "
      "embeddings of different models cannot be compared (use another --db, "
      "or the database's model)",
      db_path, recorded->name, recorded->dir, recorded->dim, was,
      clip_model_get_name (model), dir,
      clip_model_get_config (model)->embed_dim, is);
  return FALSE;
}

/* Records model as the database's model, or its folder's new place when it
 * moved. Inside store_video's transaction. */
static gboolean
db_record_model (sqlite3 *db, const char *db_path, ClipModel *model,
    const char *vocab_dir, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  if (!db_prepare (db, db_path,
          "INSERT OR REPLACE INTO model (id, name, dir, vocab, fingerprint, "
          "dim) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
          &stmt, error))
    return FALSE;
  g_autofree char *dir = g_canonicalize_filename (clip_model_get_dir (model),
      NULL);
  g_autofree char *vocab = vocab_dir ? g_canonicalize_filename (vocab_dir, NULL)
                                     : NULL;
  sqlite3_bind_text (stmt, 1, clip_model_get_name (model), -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 2, dir, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 3, vocab, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 4, clip_model_get_fingerprint (model), -1,
      SQLITE_STATIC);
  sqlite3_bind_int (stmt, 5, clip_model_get_config (model)->embed_dim);
  int rc = sqlite3_step (stmt);
  sqlite3_finalize (stmt);
  return rc == SQLITE_DONE || db_fail (db, db_path, error);
}

/* Reads the database's model and checks model against it. */
static gboolean
db_check_model (sqlite3 *db, const char *db_path, ClipModel *model,
    GError **error)
{
  g_auto (IndexedModel) recorded = { 0 };
  return db_read_model (db, db_path, &recorded, error)
      && check_model (db_path, &recorded, model, error);
}

/* ------------------------------------------------------------------ index */

typedef struct {
  GstClockTime pts;
  GstClockTime duration;
} FrameTime;

typedef struct {
  ClipEncoder *enc;
  int embed_dim;
  int interval;
  guint64 frame_number;

  /* The batch's decoded RGB frames, held until the encoder preprocesses
   * them (on the device with Vulkan). */
  GstBuffer *batch_buffers[INDEX_BATCH];
  GstVideoInfo batch_infos[INDEX_BATCH];
  FrameTime batch_times[INDEX_BATCH];
  int batch_count;

  GArray *times;      /* FrameTime per indexed frame */
  GArray *embeddings; /* float, embed_dim per indexed frame */
} Indexer;

static void
indexer_clear_batch (Indexer *ix)
{
  for (int i = 0; i < ix->batch_count; i++)
    gst_clear_buffer (&ix->batch_buffers[i]);
  ix->batch_count = 0;
}

/* Maps the batch's frames and encodes them. */
static gboolean
encode_batch (Indexer *ix, float *out, GError **error)
{
  GstVideoFrame mapped[INDEX_BATCH];
  ClipFrame frames[INDEX_BATCH];
  int n_mapped = 0;
  gboolean ok = TRUE;
  for (; n_mapped < ix->batch_count; n_mapped++) {
    GstVideoFrame *v = &mapped[n_mapped];
    if (!gst_video_frame_map (v, &ix->batch_infos[n_mapped],
            ix->batch_buffers[n_mapped], GST_MAP_READ)) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
          "cannot map a decoded frame");
      ok = FALSE;
      break;
    }
    frames[n_mapped] = (ClipFrame) {
      .format = CLIP_PIXEL_RGB,
      .width = GST_VIDEO_FRAME_WIDTH (v),
      .height = GST_VIDEO_FRAME_HEIGHT (v),
      .planes = { GST_VIDEO_FRAME_PLANE_DATA (v, 0) },
      .strides = { GST_VIDEO_FRAME_PLANE_STRIDE (v, 0) },
    };
  }
  if (ok)
    ok = clip_encoder_encode_frames (ix->enc, frames, ix->batch_count, out,
        error);
  for (int i = 0; i < n_mapped; i++)
    gst_video_frame_unmap (&mapped[i]);
  return ok;
}

static gboolean
indexer_flush (Indexer *ix, GError **error)
{
  if (ix->batch_count == 0)
    return TRUE;
  gsize old = ix->embeddings->len;
  g_array_set_size (ix->embeddings,
      old + (gsize) ix->batch_count * ix->embed_dim);
  float *out = &g_array_index (ix->embeddings, float, old);
  if (!encode_batch (ix, out, error)) {
    g_array_set_size (ix->embeddings, old);
    indexer_clear_batch (ix);
    return FALSE;
  }
  for (int i = 0; i < ix->batch_count; i++)
    clip_l2_normalize (out + (gsize) i * ix->embed_dim, ix->embed_dim);
  g_array_append_vals (ix->times, ix->batch_times, ix->batch_count);
  indexer_clear_batch (ix);
  return TRUE;
}

static gboolean
index_buffer (GstBuffer *buffer, GstPad *pad, gpointer user_data,
    GError **error)
{
  Indexer *ix = user_data;
  if (ix->frame_number++ % ix->interval != 0)
    return TRUE;
  if (!GST_BUFFER_PTS_IS_VALID (buffer))
    return TRUE; /* a frame without a time cannot be found again */

  g_autoptr (GstCaps) caps = gst_pad_get_current_caps (pad);
  GstVideoInfo *info = &ix->batch_infos[ix->batch_count];
  if (caps == NULL || !gst_video_info_from_caps (info, caps)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "a decoded frame came without usable video caps");
    return FALSE;
  }

  /* An analysed frame stands for the interval it was picked from. */
  GstClockTime duration = GST_BUFFER_DURATION (buffer);
  if (!GST_CLOCK_TIME_IS_VALID (duration) && GST_VIDEO_INFO_FPS_N (info) > 0)
    duration = gst_util_uint64_scale (GST_SECOND, GST_VIDEO_INFO_FPS_D (info),
        GST_VIDEO_INFO_FPS_N (info));
  ix->batch_buffers[ix->batch_count] = gst_buffer_ref (buffer);
  ix->batch_times[ix->batch_count++] = (FrameTime) {
    .pts = GST_BUFFER_PTS (buffer),
    .duration = GST_CLOCK_TIME_IS_VALID (duration) ? duration * ix->interval
                                                   : 0,
  };
  return ix->batch_count < INDEX_BATCH || indexer_flush (ix, error);
}

/* Replaces the video's rows with the indexed frames, in one transaction. */
static gboolean
store_video (sqlite3 *db, const char *db_path, const char *video_path,
    ClipModel *model, const char *vocab_dir, const Indexer *ix, GError **error)
{
  if (!db_exec (db, db_path, "BEGIN IMMEDIATE", error))
    return FALSE;
  sqlite3_stmt *stmt = NULL;
  /* Again inside the transaction: another gst-clip index may have stored
   * another model's videos meanwhile. */
  gboolean ok = db_check_model (db, db_path, model, error)
      && db_record_model (db, db_path, model, vocab_dir, error);

  if (ok
      && sqlite3_prepare_v2 (db, "DELETE FROM videos WHERE path = ?1", -1,
             &stmt, NULL)
          == SQLITE_OK) {
    sqlite3_bind_text (stmt, 1, video_path, -1, SQLITE_STATIC);
    ok = sqlite3_step (stmt) == SQLITE_DONE;
  } else {
    ok = FALSE;
  }
  g_clear_pointer (&stmt, sqlite3_finalize);

  if (ok
      && sqlite3_prepare_v2 (db,
             "INSERT INTO videos (path, model, dim, "
             "indexed_at) VALUES (?1, ?2, ?3, ?4)",
             -1, &stmt, NULL)
          == SQLITE_OK) {
    sqlite3_bind_text (stmt, 1, video_path, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, clip_model_get_name (model), -1, SQLITE_STATIC);
    sqlite3_bind_int (stmt, 3, ix->embed_dim);
    sqlite3_bind_int64 (stmt, 4, g_get_real_time () / G_USEC_PER_SEC);
    ok = sqlite3_step (stmt) == SQLITE_DONE;
  } else {
    ok = FALSE;
  }
  g_clear_pointer (&stmt, sqlite3_finalize);
  sqlite3_int64 video_id = sqlite3_last_insert_rowid (db);

  if (ok
      && sqlite3_prepare_v2 (db,
             "INSERT INTO frames (video_id, pts, "
             "duration, embedding) VALUES (?1, ?2, ?3, ?4)",
             -1, &stmt, NULL)
          == SQLITE_OK) {
    for (guint i = 0; ok && i < ix->times->len; i++) {
      const FrameTime *t = &g_array_index (ix->times, FrameTime, i);
      sqlite3_bind_int64 (stmt, 1, video_id);
      sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) t->pts);
      sqlite3_bind_int64 (stmt, 3, (sqlite3_int64) t->duration);
      sqlite3_bind_blob (stmt, 4,
          &g_array_index (ix->embeddings, float,
              (gsize) i * ix->embed_dim),
              ix->embed_dim * sizeof (float), SQLITE_STATIC);
      ok = sqlite3_step (stmt) == SQLITE_DONE;
      sqlite3_reset (stmt);
    }
  } else {
    ok = FALSE;
  }
  g_clear_pointer (&stmt, sqlite3_finalize);

  if (ok)
    return db_exec (db, db_path, "COMMIT", error);
  if (error == NULL || *error == NULL)
    db_fail (db, db_path, error);
  sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
  return FALSE;
}

static sqlite3 *
open_db (const char *db_path, gboolean create, GError **error)
{
  if (!create && !g_file_test (db_path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: no such file (make "
        "one with gst-clip index)",
        db_path);
    return NULL;
  }
  sqlite3 *db = NULL;
  int flags = create ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                     : SQLITE_OPEN_READONLY;
  if (sqlite3_open_v2 (db_path, &db, flags, NULL) != SQLITE_OK) {
    db_fail (db, db_path, error);
    sqlite3_close (db);
    return NULL;
  }
  /* Another gst-clip index may hold the write lock for a while. */
  sqlite3_busy_timeout (db, 10000);
  if (create
      && (!db_exec (db, db_path, "PRAGMA foreign_keys = ON", error)
          || !db_exec (db, db_path, schema_sql, error))) {
    sqlite3_close (db);
    return NULL;
  }
  return db;
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3, sqlite3_close)

int
tool_cmd_index (int argc, char **argv)
{
  g_auto (ToolModelOptions) opts = { 0 };
  g_autofree char *db_path = NULL;
  int interval = 1;
  gboolean quiet = FALSE;
  int status = TOOL_EXIT_OK;

  const GOptionEntry entries[] = {
    { "db", 'd', 0, G_OPTION_ARG_FILENAME, &db_path,
        "Database file (created when missing)", "FILE.sqlite" },
    { "interval", 'i', 0, G_OPTION_ARG_INT, &interval,
        "Index one frame in N (default 1)", "N" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress display", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = tool_option_context_new ("VIDEO...",
      "Stores the image embedding of every analysed frame of each VIDEO in a\n"
      "SQLite database, for gst-clip search. Indexing a video again replaces\n"
      "its frames; one database holds the embeddings of one model, recorded\n"
      "by its fingerprint (config and weights) and folder: another model is\n"
      "refused, whatever its folder is called.",
      NULL, entries, &opts, TRUE);
  if (!tool_parse (ctx, &argc, &argv, &status))
    return status;
  if (argc < 2)
    return tool_usage_error ("index", "no VIDEO given");
  if (db_path == NULL)
    return tool_usage_error ("index", "no --db FILE given");
  if (interval < 1)
    return tool_usage_error ("index", "--interval must be at least 1");

  g_autoptr (ClipModel) model = tool_load_model ("index", &opts, &status);
  if (model == NULL)
    return status;
  g_autoptr (ClipEncoder) enc = tool_open_encoder ("index", model, &opts, FALSE,
      &status);
  if (enc == NULL)
    return status;
  GError *error = NULL;
  g_autoptr (sqlite3) db = open_db (db_path, TRUE, &error);
  if (db == NULL || !db_check_model (db, db_path, model, &error))
    return tool_fail (error);

  const ClipConfig *config = clip_model_get_config (model);

  /* A truncated video is stored as far as it goes, with a warning; the
   * others go on, and the exit status tells. */
  int status_left = TOOL_EXIT_OK;
  for (int v = 1; v < argc; v++) {
    Indexer ix = {
      .enc = enc,
      .embed_dim = config->embed_dim,
      .interval = interval,
      .times = g_array_new (FALSE, FALSE, sizeof (FrameTime)),
      .embeddings = g_array_new (FALSE, FALSE, sizeof (float)),
    };
    g_autoptr (GArray) times = ix.times;
    g_autoptr (GArray) embeddings = ix.embeddings;
    g_autoptr (ToolVideo) video = tool_video_new (argv[v], TOOL_VIDEO_RGB,
        &error);
    if (video == NULL)
      return tool_fail (error);
    tool_video_set_buffer_func (video, index_buffer, &ix);
    g_autofree char *base = g_path_get_basename (argv[v]);
    tool_video_set_progress (video, base, quiet);
    gboolean interrupted = FALSE;
    gboolean ok = tool_video_run (video, &interrupted, &error)
        && indexer_flush (&ix, &error);
    indexer_clear_batch (&ix);
    if (!ok)
      return tool_fail (error);
    if (interrupted) {
      /* A half-indexed video would look complete to search: keep the old
       * rows instead. */
      fprintf (stderr, "gst-clip index: interrupted; %s not stored\n", argv[v]);
      return TOOL_EXIT_INTERRUPTED;
    }
    g_autofree char *absolute = g_canonicalize_filename (argv[v], NULL);
    const char *stored = gst_uri_is_valid (argv[v]) ? argv[v] : absolute;
    if (!store_video (db, db_path, stored, model, opts.vocab_dir, &ix, &error))
      return tool_fail (error);
    if (!quiet)
      fprintf (stderr, "gst-clip index: %s: %u frames\n", stored, times->len);
    if (tool_video_ended_early (video))
      status_left = TOOL_EXIT_TRUNCATED;
  }
  return status_left;
}

/* ----------------------------------------------------------------- search */

typedef struct {
  guint video; /* index into the path array */
  GstClockTime pts;
  GstClockTime duration;
  float score;
  gboolean taken; /* already part of a printed moment */
} ScoredFrame;

static void
print_time (GstClockTime t)
{
  guint64 ms = t / GST_MSECOND;
  printf ("%" G_GUINT64_FORMAT ":%02u:%02u.%03u", ms / 3600000,
      (guint) (ms / 60000 % 60), (guint) (ms / 1000 % 60), (guint) (ms % 1000));
}

/* Scores every frame of the database against the query embedding; frames
 * come grouped by video in time order, so neighbours are adjacent. */
static GArray *
score_frames (sqlite3 *db, const char *db_path, const float *query, int dim,
    GPtrArray *paths, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  if (sqlite3_prepare_v2 (db,
          "SELECT v.path, f.pts, f.duration, f.embedding "
          "FROM frames f JOIN videos v ON v.id = f.video_id "
          "ORDER BY v.id, f.pts",
          -1, &stmt, NULL)
      != SQLITE_OK) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: not a gst-clip index: %s", db_path, sqlite3_errmsg (db));
    return NULL;
  }
  g_autoptr (GArray) frames = g_array_new (FALSE, FALSE, sizeof (ScoredFrame));
  g_autofree float *embedding = g_new (float, dim);
  int rc;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
    const char *path = (const char *) sqlite3_column_text (stmt, 0);
    const void *blob = sqlite3_column_blob (stmt, 3);
    int bytes = sqlite3_column_bytes (stmt, 3);
    if (path == NULL || blob == NULL || bytes != dim * (int) sizeof (float)) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
          "%s: a frame of '%s' has a %d-byte embedding, expected %d floats",
          db_path, path ? path : "(null)", bytes, dim);
      sqlite3_finalize (stmt);
      return NULL;
    }
    if (paths->len == 0
        || strcmp (g_ptr_array_index (paths, paths->len - 1), path) != 0)
      g_ptr_array_add (paths, g_strdup (path));
    /* The blob need not be aligned for floats. */
    memcpy (embedding, blob, bytes);
    double dot = 0, norm = 0;
    for (int i = 0; i < dim; i++) {
      dot += (double) embedding[i] * query[i];
      norm += (double) embedding[i] * embedding[i];
    }
    ScoredFrame f = {
      .video = paths->len - 1,
      .pts = (GstClockTime) sqlite3_column_int64 (stmt, 1),
      .duration = (GstClockTime) sqlite3_column_int64 (stmt, 2),
      .score = norm > 0 ? dot / sqrt (norm) : 0,
    };
    g_array_append_val (frames, f);
  }
  sqlite3_finalize (stmt);
  if (rc != SQLITE_DONE) {
    db_fail (db, db_path, error);
    return NULL;
  }
  return g_steal_pointer (&frames);
}

/* A moment found: the frames first..last of a video, around its best
 * frame, peak. */
typedef struct {
  guint first, last, peak;
} Moment;

/* The top moments: the best frame not yet taken, grown over the
 * neighbouring frames of its video whose score is within tolerance of it.
 * The tolerance is a fraction of the spread of all scores, because that
 * spread depends on the model and the query: text-to-image cosines of a
 * real CLIP span a few hundredths, image-to-image ones far more. */
static GArray *
find_moments (GArray *frames_array, int top, double tolerance)
{
  ScoredFrame *frames = (ScoredFrame *) frames_array->data;
  guint n = frames_array->len;
  g_autofree float *scores = g_new (float, n);
  g_autofree guint *order = g_new (guint, n);
  for (guint i = 0; i < n; i++)
    scores[i] = frames[i].score;
  clip_rank_descending (scores, n, order);
  double spread = frames[order[0]].score - frames[order[n - 1]].score;

  GArray *moments = g_array_new (FALSE, FALSE, sizeof (Moment));
  for (guint k = 0; k < n && moments->len < (guint) top; k++) {
    guint peak = order[k];
    if (frames[peak].taken)
      continue;
    double floor = frames[peak].score - tolerance * spread;
    guint first = peak, last = peak;
    while (first > 0 && !frames[first - 1].taken
        && frames[first - 1].video == frames[peak].video
        && frames[first - 1].score >= floor)
      first--;
    while (last + 1 < n && !frames[last + 1].taken
        && frames[last + 1].video == frames[peak].video
        && frames[last + 1].score >= floor)
      last++;
    for (guint i = first; i <= last; i++)
      frames[i].taken = TRUE;
    Moment moment = { first, last, peak };
    g_array_append_val (moments, moment);
  }
  return moments;
}

/* VIDEO  START-END  SCORE, a line each, best first. */
static void
print_moments (GArray *moments, const ScoredFrame *frames, GPtrArray *paths)
{
  for (guint i = 0; i < moments->len; i++) {
    const Moment *m = &g_array_index (moments, Moment, i);
    printf ("%s  ",
        (const char *) g_ptr_array_index (paths, frames[m->peak].video));
    print_time (frames[m->first].pts);
    putchar ('-');
    print_time (frames[m->last].pts + frames[m->last].duration);
    printf ("  %.4f\n", frames[m->peak].score);
  }
}

/* The moments as an HTML page (html.h), each with a thumbnail of its best
 * frame. A frame that cannot be read again (the file moved) leaves its
 * moment without a thumbnail, with a warning. */
static gboolean
write_html (const char *html_path, const char *query, const char *db_path,
    const char *model_name, GArray *moments, const ScoredFrame *frames,
    GPtrArray *paths, GError **error)
{
  g_autofree ClipHtmlHit *hits = g_new0 (ClipHtmlHit, moments->len);
  for (guint i = 0; i < moments->len; i++) {
    const Moment *m = &g_array_index (moments, Moment, i);
    ClipHtmlHit *hit = &hits[i];
    hit->path = g_ptr_array_index (paths, frames[m->peak].video);
    hit->start = frames[m->first].pts;
    hit->end = frames[m->last].pts + frames[m->last].duration;
    hit->score = frames[m->peak].score;
    g_autoptr (GError) local = NULL;
    if (!tool_thumbnail_at (hit->path, frames[m->peak].pts, &hit->thumbnail,
            &local))
      fprintf (stderr, "gst-clip search: no thumbnail: %s\n", local->message);
  }
  const char *info[] = { "Database", db_path, "Model", model_name, NULL };
  g_autoptr (GString) page = clip_html_search_page (query, info, hits,
      moments->len);
  for (guint i = 0; i < moments->len; i++)
    tool_thumbnail_clear (&hits[i].thumbnail);
  if (!g_file_set_contents (html_path, page->str, page->len, error))
    return FALSE;
  return TRUE;
}

/* The model the database was indexed with, from its recorded folder (and
 * vocabulary folder, unless vocab_dir overrides it). */
static ClipModel *
load_indexed_model (const char *db_path, const IndexedModel *recorded,
    const char *vocab_dir, GError **error)
{
  if (!g_file_test (recorded->dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: the database's model '%s' was in %s, which no longer exists: "
        "give its new place with --model DIR",
        db_path, recorded->name, recorded->dir);
    return NULL;
  }
  g_autoptr (ClipModel) model = clip_model_load (recorded->dir,
      vocab_dir ? vocab_dir : recorded->vocab, error);
  if (model == NULL) {
    g_prefix_error (error, "%s: the database's model: ", db_path);
    return NULL;
  }
  if (strcmp (clip_model_get_fingerprint (model), recorded->fingerprint) != 0) {
    g_autofree char *was = short_fingerprint (recorded->fingerprint);
    g_autofree char *is = short_fingerprint (
        clip_model_get_fingerprint (model));
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "%s: the database's model folder %s has changed since it was indexed "
        "(model '%s', %d-dim, fingerprint %s; now %d-dim, fingerprint %s): "
        "index the videos again, or give the original model with --model DIR",
        db_path, recorded->dir, recorded->name, recorded->dim, was,
        clip_model_get_config (model)->embed_dim, is);
    return NULL;
  }
  return g_steal_pointer (&model);
}

int
tool_cmd_search (int argc, char **argv)
{
  g_auto (ToolModelOptions) opts = { 0 };
  g_autofree char *db_path = NULL;
  g_autofree char *image_path = NULL;
  g_autofree char *html_path = NULL;
  int top = 5;
  double tolerance = 0.1;
  int status = TOOL_EXIT_OK;

  const GOptionEntry entries[] = {
    { "db", 'd', 0, G_OPTION_ARG_FILENAME, &db_path,
        "Database made by gst-clip index", "FILE.sqlite" },
    { "image", 0, 0, G_OPTION_ARG_FILENAME, &image_path,
        "Search by an example picture instead of a text", "FILE" },
    { "top", 'n', 0, G_OPTION_ARG_INT, &top,
        "How many moments to print (default 5)", "N" },
    { "tolerance", 0, 0, G_OPTION_ARG_DOUBLE, &tolerance,
        "How close to a moment's best frame a neighbour must score to join "
        "it, as a fraction of the score spread (default 0.1)",
        "F" },
    { "html", 0, 0, G_OPTION_ARG_FILENAME, &html_path,
        "Also write the moments as an HTML page, with a thumbnail of each",
        "FILE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = tool_option_context_new ("[TEXT]",
      "Finds the moments of the indexed videos that best match TEXT (or the\n"
      "example picture of --image) and prints them best first, one per line:\n"
      "VIDEO  START-END  SCORE (times H:MM:SS.mmm, score the cosine\n"
      "similarity of the best frame). Neighbouring frames scoring close to a\n"
      "moment's best frame (within --tolerance times the spread between the\n"
      "best and the worst frame of the database) belong to the moment.\n"
      "--html also writes them as one offline page, with a thumbnail of each\n"
      "moment's best frame (see docs/report.md).\n"
      "Without --model, the model the database was indexed with (its folder\n"
      "as recorded by gst-clip index); a --model must be that same model.",
      NULL, entries, &opts, TRUE);
  if (!tool_parse (ctx, &argc, &argv, &status))
    return status;
  if (db_path == NULL)
    return tool_usage_error ("search", "no --db FILE given");
  if ((argc == 2) == (image_path != NULL) || argc > 2)
    return tool_usage_error ("search", "give one TEXT or --image FILE");
  /* An empty text still embeds (start and end tokens alone) and would rank
   * the frames by nothing anyone asked for. */
  if (argc == 2) {
    g_autofree char *stripped = g_strstrip (g_strdup (argv[1]));
    if (*stripped == '\0')
      return tool_usage_error ("search", "TEXT is empty");
  }
  if (!tool_check_range ("search", "--top", top, 1, TOOL_MAX_TOP, &status))
    return status;
  if (!(tolerance >= 0 && tolerance <= 1))
    return tool_usage_error ("search", "--tolerance must be between 0 and 1");

  GError *error = NULL;
  g_autoptr (sqlite3) db = open_db (db_path, FALSE, &error);
  g_auto (IndexedModel) recorded = { 0 };
  if (db == NULL || !db_read_model (db, db_path, &recorded, &error))
    return tool_fail (error);
  if (recorded.fingerprint == NULL) {
    fprintf (stderr, "gst-clip search: %s holds no frames\n", db_path);
    return TOOL_EXIT_OK;
  }
  g_autoptr (ClipModel) model = NULL;
  if (opts.model_dir != NULL) {
    if ((model = tool_load_model ("search", &opts, &status)) == NULL)
      return status;
  } else if ((model = load_indexed_model (db_path, &recorded, opts.vocab_dir,
                  &error))
      == NULL) {
    return tool_fail (error);
  }
  if (!check_model (db_path, &recorded, model, &error))
    return tool_fail (error);
  g_autoptr (ClipEncoder) enc = tool_open_encoder ("search", model, &opts,
      FALSE, &status);
  if (enc == NULL)
    return status;

  const ClipConfig *config = clip_model_get_config (model);
  int dim = config->embed_dim;
  g_autofree float *query = g_new (float, dim);
  if (image_path) {
    int size = config->image_size;
    g_autofree float *pixels = g_new (float, (gsize) 3 * size * size);
    if (!tool_load_image_tensor (image_path, config, pixels, &error)
        || !clip_encoder_encode_images (enc, pixels, 1, query, &error))
      return tool_fail (error);
    clip_l2_normalize (query, dim);
  } else {
    const char *text = argv[1];
    if (!clip_encoder_encode_strings (enc, &text, 1, query, &error))
      return tool_fail (error);
  }

  g_autoptr (GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) frames = score_frames (db, db_path, query, dim, paths,
      &error);
  if (frames == NULL)
    return tool_fail (error);
  if (frames->len == 0) {
    fprintf (stderr, "gst-clip search: %s holds no frames\n", db_path);
    return TOOL_EXIT_OK;
  }
  g_autoptr (GArray) moments = find_moments (frames, top, tolerance);
  const ScoredFrame *scored = (const ScoredFrame *) frames->data;
  print_moments (moments, scored, paths);
  if (html_path) {
    g_autofree char *query = image_path
        ? g_strdup_printf ("pictures like %s", image_path)
        : g_strdup (argv[1]);
    if (!write_html (html_path, query, db_path, clip_model_get_name (model),
            moments, scored, paths, &error))
      return tool_fail (error);
  }
  return TOOL_EXIT_OK;
}
