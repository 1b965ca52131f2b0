/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Example images of labels: listed, decoded, embedded, cached. */
#include "exemplars.h"

#include "image.h"
#include "output-file.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

/* The cache file: (model fingerprint, embed_dim, [(canonical path, size,
 * mtime in ns, embedding as embed_dim native floats)]). GVariant reads
 * untrusted bytes safely; a cache with another layout does not load. */
#define CACHE_TYPE "(sua(sxxay))"

/* An example image: which file it is, and its embedding once known. */
typedef struct {
  char *path; /* canonical */
  gint64 size, mtime_ns;
  ClipLabelSpec *spec;
  float *embedding; /* where in spec->example_embeddings */
} Example;

static void
example_clear (Example *example)
{
  g_free (example->path);
}

void
clip_exemplar_stats_clear (ClipExemplarStats *stats)
{
  g_clear_pointer (&stats->cache_note, g_free);
}

char *
clip_exemplar_cache_path (const char *labels_file)
{
  return g_strconcat (labels_file, ".exemplars", NULL);
}

gboolean
clip_labels_have_examples (GPtrArray *labels)
{
  for (guint i = 0; labels && i < labels->len; i++)
    if (((const ClipLabelSpec *) labels->pdata[i])->examples != NULL)
      return TRUE;
  return FALSE;
}

static char *
cache_key (const char *path, gint64 size, gint64 mtime_ns)
{
  return g_strdup_printf ("%" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %s", size,
      mtime_ns, path);
}

/* Adds the image at path (a file the labels file named, or found in a
 * folder it named) to examples. */
static gboolean
add_example (GArray *examples, ClipLabelSpec *spec, const char *path,
    GError **error)
{
  GStatBuf st;
  if (g_stat (path, &st) != 0) {
    int saved = errno;
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: label '%s': example image %s: %s", spec->origin, spec->label, path,
        g_strerror (saved));
    return FALSE;
  }
  Example example = {
    .path = g_canonicalize_filename (path, NULL),
    .size = st.st_size,
    .mtime_ns = (gint64) st.st_mtim.tv_sec * G_GINT64_CONSTANT (1000000000)
        + st.st_mtim.tv_nsec,
    .spec = spec,
  };
  g_array_append_val (examples, example);
  return TRUE;
}

static int
compare_paths (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* A folder's image files, by name (hidden files left out). */
static gboolean
add_folder (GArray *examples, ClipLabelSpec *spec, const char *folder,
    GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GDir) dir = g_dir_open (folder, 0, &local);
  if (dir == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: label '%s': example folder %s: %s", spec->origin, spec->label,
        folder, local->message);
    return FALSE;
  }
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (dir)) != NULL)
    if (name[0] != '.' && clip_image_has_image_name (name))
      g_ptr_array_add (names, g_build_filename (folder, name, NULL));
  if (names->len == 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "%s: label '%s': example folder %s has no images (.png, .jpg, ...)",
        spec->origin, spec->label, folder);
    return FALSE;
  }
  g_ptr_array_sort (names, compare_paths);
  for (guint i = 0; i < names->len; i++)
    if (!g_file_test (names->pdata[i], G_FILE_TEST_IS_DIR)
        && !add_example (examples, spec, names->pdata[i], error))
      return FALSE;
  return TRUE;
}

/* The cache's embeddings by cache_key, or NULL with *note saying why. */
static GHashTable *
load_cache (const char *cache_path, const char *fingerprint, int dim,
    char **note)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GMappedFile) file = g_mapped_file_new (cache_path, FALSE, &error);
  if (file == NULL) {
    *note = g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT)
        ? g_strdup_printf ("%s: no cache yet", cache_path)
        : g_strdup_printf ("%s: ignored (%s)", cache_path, error->message);
    return NULL;
  }
  g_autoptr (GBytes) bytes = g_mapped_file_get_bytes (file);
  g_autoptr (GVariant) cache = g_variant_ref_sink (
      g_variant_new_from_bytes (G_VARIANT_TYPE (CACHE_TYPE), bytes, FALSE));
  const char *cache_fingerprint;
  guint32 cache_dim;
  g_autoptr (GVariantIter) entries = NULL;
  g_variant_get (cache, "(&sua(sxxay))", &cache_fingerprint, &cache_dim,
      &entries);
  if (strcmp (cache_fingerprint, fingerprint) != 0
      || cache_dim != (guint) dim) {
    *note = g_strdup_printf ("%s: ignored: made by another model (%s, not %s)",
        cache_path, *cache_fingerprint ? cache_fingerprint : "unreadable",
        fingerprint);
    return NULL;
  }
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      (GDestroyNotify) g_bytes_unref);
  const char *path;
  gint64 size, mtime_ns;
  GVariant *embedding;
  while (g_variant_iter_next (entries, "(&sxx@ay)", &path, &size, &mtime_ns,
      &embedding)) {
    if (g_variant_get_size (embedding) == (gsize) dim * sizeof (float))
      g_hash_table_insert (table, cache_key (path, size, mtime_ns),
          g_variant_get_data_as_bytes (embedding));
    g_variant_unref (embedding);
  }
  return table;
}

static gboolean
write_cache (const char *cache_path, const char *fingerprint, int dim,
    GArray *examples, GError **error)
{
  GVariantBuilder entries;
  g_variant_builder_init (&entries, G_VARIANT_TYPE ("a(sxxay)"));
  g_autoptr (GHashTable) written = g_hash_table_new_full (g_str_hash,
      g_str_equal, g_free, NULL);
  for (guint i = 0; i < examples->len; i++) {
    const Example *e = &g_array_index (examples, Example, i);
    if (!g_hash_table_add (written, cache_key (e->path, e->size, e->mtime_ns)))
      continue; /* named twice */
    g_variant_builder_add (&entries, "(sxx@ay)", e->path, e->size, e->mtime_ns,
        g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, e->embedding,
            (gsize) dim * sizeof (float), 1));
  }
  g_autoptr (GVariant) cache = g_variant_ref_sink (
      g_variant_new ("(sua(sxxay))", fingerprint, (guint32) dim, &entries));
  return clip_output_file_set_contents (cache_path, g_variant_get_data (cache),
      g_variant_get_size (cache), error);
}

static gboolean
embed_example (const Example *example, int dim, ClipFrameEncodeFunc encode,
    gpointer user_data, GError **error)
{
  int width, height;
  g_autoptr (GError) local = NULL;
  g_autofree guint8 *rgb = clip_image_load_rgb (example->path, &width, &height,
      &local);
  if (rgb == NULL || local != NULL) {
    g_set_error (error, CLIP_ERROR, local ? local->code : CLIP_ERROR_FORMAT,
        "%s: label '%s': %s", example->spec->origin, example->spec->label,
        local ? local->message : "cannot decode the image");
    return FALSE;
  }
  ClipFrame frame = {
    .format = CLIP_PIXEL_RGB,
    .width = width,
    .height = height,
    .planes = { rgb },
    .strides = { width * 3 },
  };
  if (!encode (&frame, example->embedding, user_data, error)) {
    g_prefix_error (error, "%s: label '%s': %s: ", example->spec->origin,
        example->spec->label, example->path);
    return FALSE;
  }
  clip_l2_normalize (example->embedding, dim);
  return TRUE;
}

gboolean
clip_exemplars_embed (const ClipModel *model, GPtrArray *labels,
    const char *cache_path, ClipFrameEncodeFunc encode, gpointer user_data,
    ClipExemplarStats *stats, GError **error)
{
  ClipExemplarStats local_stats = { 0 };
  if (stats == NULL)
    stats = &local_stats;
  memset (stats, 0, sizeof *stats);
  const int dim = clip_model_get_config (model)->embed_dim;
  const char *fingerprint = clip_model_get_fingerprint (model);

  g_autoptr (GArray) examples = g_array_new (FALSE, FALSE, sizeof (Example));
  g_array_set_clear_func (examples, (GDestroyNotify) example_clear);
  for (guint i = 0; i < labels->len; i++) {
    ClipLabelSpec *spec = labels->pdata[i];
    guint first = examples->len;
    for (char **item = spec->examples; item && *item; item++) {
      gboolean ok = g_file_test (*item, G_FILE_TEST_IS_DIR)
          ? add_folder (examples, spec, *item, error)
          : add_example (examples, spec, *item, error);
      if (!ok)
        return FALSE;
    }
    g_clear_pointer (&spec->example_embeddings, g_free);
    spec->n_example_embeddings = examples->len - first;
    if (spec->n_example_embeddings > 0)
      spec->example_embeddings = g_new (float,
          (gsize) spec->n_example_embeddings * dim);
    for (guint e = first; e < examples->len; e++)
      g_array_index (examples, Example, e).embedding = spec->example_embeddings
              + (gsize) (e - first) * dim;
  }
  stats->n_images = examples->len;
  if (examples->len == 0) {
    clip_exemplar_stats_clear (&local_stats);
    return TRUE;
  }

  g_autoptr (GHashTable) cache = cache_path
      ? load_cache (cache_path, fingerprint, dim, &stats->cache_note)
      : NULL;
  /* The images of this set by cache_key: one named twice is embedded
   * once. */
  g_autoptr (GHashTable) done = g_hash_table_new_full (g_str_hash, g_str_equal,
      g_free, NULL);
  for (guint i = 0; i < examples->len; i++) {
    Example *e = &g_array_index (examples, Example, i);
    char *key = cache_key (e->path, e->size, e->mtime_ns);
    const float *same = g_hash_table_lookup (done, key);
    GBytes *cached = cache ? g_hash_table_lookup (cache, key) : NULL;
    if (same != NULL || cached != NULL) {
      memcpy (e->embedding, same ? same : g_bytes_get_data (cached, NULL),
          (gsize) dim * sizeof (float));
      stats->from_cache += same == NULL;
    } else if (embed_example (e, dim, encode, user_data, error)) {
      stats->embedded++;
    } else {
      g_free (key);
      clip_exemplar_stats_clear (&local_stats);
      return FALSE;
    }
    g_hash_table_replace (done, key, e->embedding);
  }

  /* Rewritten when it lacked an image or held one no longer named. */
  gboolean stale = cache != NULL
      && g_hash_table_size (cache) != g_hash_table_size (done);
  if (cache_path != NULL && (stats->embedded > 0 || stale || cache == NULL)) {
    g_autoptr (GError) write_error = NULL;
    if (!write_cache (cache_path, fingerprint, dim, examples, &write_error)) {
      char *note = g_strdup_printf ("%s%s%s: not written (%s)",
          stats->cache_note ? stats->cache_note : "",
          stats->cache_note ? "; " : "", cache_path, write_error->message);
      g_free (stats->cache_note);
      stats->cache_note = note;
    } else if (stats->cache_note == NULL) {
      stats->cache_note = g_strdup_printf ("%s: %u of %u images were new or "
                                           "changed; rewritten",
          cache_path, stats->embedded, stats->n_images);
    }
  }
  clip_exemplar_stats_clear (&local_stats);
  return TRUE;
}
