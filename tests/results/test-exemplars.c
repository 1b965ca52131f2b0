/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Labels defined by example images (runtime/results/exemplars.c and the
 * label set's scoring): two logos that no prompt names, told apart by the
 * default model from five drawings each; the mixed text + images rule on a
 * frame that matches neither; the cache beside the labels file; the errors
 * a bad example gives. */
#include "exemplars.h"
#include "reference.h"

#include <cairo.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#define N_EXAMPLES 5
#define N_HELD_OUT 50
#define SIDE 96

typedef enum { ROUNDEL, STRIPES } Logo;
static const char *logo_names[] = { "roundel", "stripes" };

static ClipEncoder *encoder;

static ClipEncoder *
default_encoder (void)
{
  if (encoder == NULL) {
    g_autoptr (GError) error = NULL;
    g_autofree char *dir = g_build_filename (g_getenv ("CLIP_SOURCE_DIR"),
        "models", "default", NULL);
    g_autoptr (ClipModel) model = clip_model_load (dir, NULL, &error);
    g_assert_no_error (error);
    ClipBackendOptions options = CLIP_BACKEND_OPTIONS_INIT;
    options.threads = 1;
    encoder = clip_encoder_new (model, CLIP_BACKEND_CPU, &options, &error);
    g_assert_no_error (error);
  }
  return encoder;
}

static const ClipModel *
default_model (void)
{
  return clip_encoder_get_model (default_encoder ());
}

static gboolean
encode_frame (const ClipFrame *frame, float *embedding, gpointer enc,
    GError **error)
{
  return clip_encoder_encode_frames (enc, frame, 1, embedding, error);
}

static gboolean
encode_prompts (const char *const *prompts, int n, float *embeddings,
    gpointer enc, GError **error)
{
  return clip_encoder_encode_strings (enc, prompts, n, embeddings, error);
}

/* A logo in a random colour on a light background, its place and size
 * jittered: a roundel (a ring crossed by a bar) or three stacked
 * stripes. */
static cairo_surface_t *
draw_logo (Logo logo, GRand *rand)
{
  cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_RGB24,
      SIDE, SIDE);
  cairo_t *cr = cairo_create (surface);
  double grey = g_rand_double_range (rand, 0.8, 1.0);
  cairo_set_source_rgb (cr, grey, grey, grey);
  cairo_paint (cr);
  cairo_set_source_rgb (cr, g_rand_double_range (rand, 0.0, 0.6),
      g_rand_double_range (rand, 0.0, 0.6),
      g_rand_double_range (rand, 0.0, 0.6));
  double scale = SIDE * g_rand_double_range (rand, 0.28, 0.38);
  double cx = SIDE / 2.0 + g_rand_double_range (rand, -0.1, 0.1) * SIDE;
  double cy = SIDE / 2.0 + g_rand_double_range (rand, -0.1, 0.1) * SIDE;
  cairo_set_line_width (cr, scale * 0.4);
  if (logo == ROUNDEL) {
    cairo_arc (cr, cx, cy, scale * 0.8, 0, 2 * G_PI);
    cairo_stroke (cr);
    cairo_rectangle (cr, cx - scale * 1.25, cy - scale * 0.18, scale * 2.5,
        scale * 0.36);
    cairo_fill (cr);
  } else {
    for (int i = -1; i <= 1; i++)
      cairo_rectangle (cr, cx - scale, cy + i * scale * 0.7 - scale * 0.15,
          2 * scale, scale * 0.3);
    cairo_fill (cr);
  }
  cairo_destroy (cr);
  cairo_surface_flush (surface);
  return surface;
}

static ClipFrame
surface_frame (cairo_surface_t *surface)
{
  /* CAIRO_FORMAT_RGB24 is B, G, R, x in memory on little-endian hosts. */
  g_assert_cmpint (G_BYTE_ORDER, ==, G_LITTLE_ENDIAN);
  ClipFrame frame = {
    .format = CLIP_PIXEL_BGRA,
    .width = cairo_image_surface_get_width (surface),
    .height = cairo_image_surface_get_height (surface),
    .planes = { cairo_image_surface_get_data (surface) },
    .strides = { cairo_image_surface_get_stride (surface) },
  };
  return frame;
}

/* Five drawings of each logo in DIR/roundel/ and DIR/stripes/ (seed 1). */
static void
write_examples (const char *dir)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (1);
  for (int logo = 0; logo < 2; logo++) {
    g_autofree char *folder = g_build_filename (dir, logo_names[logo], NULL);
    g_assert_cmpint (g_mkdir_with_parents (folder, 0755), ==, 0);
    for (int i = 0; i < N_EXAMPLES; i++) {
      cairo_surface_t *surface = draw_logo (logo, rand);
      g_autofree char *name = g_strdup_printf ("%02d.png", i);
      g_autofree char *path = g_build_filename (folder, name, NULL);
      g_assert_cmpint (cairo_surface_write_to_png (surface, path), ==,
          CAIRO_STATUS_SUCCESS);
      cairo_surface_destroy (surface);
    }
  }
}

static char *
write_labels_file (const char *dir, const char *text)
{
  char *path = g_build_filename (dir, "labels.txt", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_set_contents (path, text, -1, &error));
  return path;
}

/* The label set of a labels file, its examples embedded through the cache
 * beside it. */
static ClipLabelSet *
label_set_from_file (const char *labels_file, ClipExemplarStats *stats)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) labels = clip_labels_parse_file (labels_file, &error);
  g_assert_no_error (error);
  g_autofree char *cache = clip_exemplar_cache_path (labels_file);
  g_assert_true (clip_exemplars_embed (default_model (), labels, cache,
      encode_frame, default_encoder (), stats, &error));
  g_assert_no_error (error);
  const ClipExemplarRule rule = CLIP_EXEMPLAR_RULE_INIT;
  ClipLabelSet *set = clip_label_set_new_full (default_model (), labels, NULL,
      (const char *const *) (char *[]) { "a photo of a {}.", NULL }, &rule,
      encode_prompts, default_encoder (), &error);
  g_assert_no_error (error);
  return set;
}

static void
score_surface (const ClipLabelSet *set, cairo_surface_t *surface, float *probs)
{
  g_autoptr (GError) error = NULL;
  ClipFrame frame = surface_frame (surface);
  g_assert_true (clip_encoder_classify_frames (default_encoder (), &frame, 1,
      set, (float[64]) { 0 }, NULL, probs, &error));
  g_assert_no_error (error);
}

static int
argmax (const float *v, int n)
{
  int best = 0;
  for (int i = 1; i < n; i++)
    if (v[i] > v[best])
      best = i;
  return best;
}

/* Five examples each, 50 new drawings each (another seed): at least 90%
 * right. */
static void
test_few_shot (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  write_examples (dir);
  g_autofree char *labels_file = write_labels_file (dir,
      "roundel: @roundel/\n"
      "stripes: @stripes/00.png | @stripes/01.png | @stripes/02.png | "
      "@stripes/03.png | @stripes/04.png\n");
  g_autoptr (ClipLabelSet) set = label_set_from_file (labels_file, NULL);
  g_assert_cmpint (clip_label_set_get_embed_dim (set), ==, 64);
  g_assert_cmpint (clip_label_set_get_n_examples (set, 0), ==, N_EXAMPLES);
  g_assert_cmpint (clip_label_set_get_n_examples (set, 1), ==, N_EXAMPLES);

  g_autoptr (GRand) rand = g_rand_new_with_seed (2);
  int right[2] = { 0, 0 };
  for (int i = 0; i < N_HELD_OUT; i++)
    for (int logo = 0; logo < 2; logo++) {
      cairo_surface_t *surface = draw_logo (logo, rand);
      float probs[2];
      score_surface (set, surface, probs);
      right[logo] += argmax (probs, 2) == logo;
      cairo_surface_destroy (surface);
    }
  g_test_message ("held out: roundel %d/%d, stripes %d/%d", right[0],
      N_HELD_OUT, right[1], N_HELD_OUT);
  g_assert_cmpint (right[0], >=, N_HELD_OUT * 9 / 10);
  g_assert_cmpint (right[1], >=, N_HELD_OUT * 9 / 10);
}

static cairo_surface_t *
plain_surface (double grey)
{
  cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_RGB24,
      SIDE, SIDE);
  cairo_t *cr = cairo_create (surface);
  cairo_set_source_rgb (cr, grey, grey, grey);
  cairo_paint (cr);
  cairo_destroy (cr);
  cairo_surface_flush (surface);
  return surface;
}

typedef enum { RED_CIRCLE, BLUE_SQUARE, GREEN_TRIANGLE, N_CONCEPTS } Concept;
static const char *concept_names[] = { "red circle", "blue square",
  "green triangle" };
static const char *concept_folders[] = { "red-circle", "blue-square",
  "green-triangle" };
static const double concept_rgb[][3] = { { 0.9, 0.1, 0.1 }, { 0.1, 0.1, 0.9 },
  { 0.1, 0.8, 0.1 } };

/* One of the shapes the default model was trained on, on white, its place
 * and size jittered. */
static cairo_surface_t *
draw_concept (Concept concept, GRand *rand)
{
  cairo_surface_t *surface = plain_surface (1.0);
  cairo_t *cr = cairo_create (surface);
  cairo_set_source_rgb (cr, concept_rgb[concept][0], concept_rgb[concept][1],
      concept_rgb[concept][2]);
  double size = SIDE * g_rand_double_range (rand, 0.25, 0.35);
  double cx = SIDE / 2.0 + g_rand_double_range (rand, -0.1, 0.1) * SIDE;
  double cy = SIDE / 2.0 + g_rand_double_range (rand, -0.1, 0.1) * SIDE;
  if (concept == RED_CIRCLE) {
    cairo_arc (cr, cx, cy, size, 0, 2 * G_PI);
  } else if (concept == BLUE_SQUARE) {
    cairo_rectangle (cr, cx - size, cy - size, 2 * size, 2 * size);
  } else {
    cairo_move_to (cr, cx, cy - size);
    cairo_line_to (cr, cx + size, cy + size);
    cairo_line_to (cr, cx - size, cy + size);
    cairo_close_path (cr);
  }
  cairo_fill (cr);
  cairo_destroy (cr);
  cairo_surface_flush (surface);
  return surface;
}

/* The probability that labels [first, first + n) of set take on a frame. */
static double
share (const float *probs, int first, int n)
{
  double sum = 0.0;
  for (int i = first; i < first + n; i++)
    sum += probs[i];
  return sum;
}

/* Neither kind wins by construction: the same three concepts, each given
 * once as a text label and once by five drawings, scored on plain frames
 * of nine grey levels that show none of them. Each kind must take the
 * larger share on some of these frames and neither more than 80% of the
 * probability on average; on a drawing of a concept, one of its two labels
 * must win. (Measured with the default model: the example labels take
 * 74% on average, the text labels the larger share on one grey level.) */
static void
test_mixed_neutral (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  g_autoptr (GRand) rand = g_rand_new_with_seed (4);
  GString *text = g_string_new (NULL);
  for (int c = 0; c < N_CONCEPTS; c++)
    g_string_append_printf (text, "%s\n", concept_names[c]);
  for (int c = 0; c < N_CONCEPTS; c++) {
    g_autofree char *folder = g_build_filename (dir, concept_folders[c], NULL);
    g_assert_cmpint (g_mkdir_with_parents (folder, 0755), ==, 0);
    for (int i = 0; i < N_EXAMPLES; i++) {
      cairo_surface_t *surface = draw_concept (c, rand);
      g_autofree char *name = g_strdup_printf ("%02d.png", i);
      g_autofree char *path = g_build_filename (folder, name, NULL);
      g_assert_cmpint (cairo_surface_write_to_png (surface, path), ==,
          CAIRO_STATUS_SUCCESS);
      cairo_surface_destroy (surface);
    }
    g_string_append_printf (text, "%s drawings: @%s/\n", concept_names[c],
        concept_folders[c]);
  }
  g_autofree char *labels_file = write_labels_file (dir, text->str);
  g_string_free (text, TRUE);
  g_autoptr (ClipLabelSet) set = label_set_from_file (labels_file, NULL);
  g_assert_cmpint (clip_label_set_get_n_labels (set), ==, 2 * N_CONCEPTS);

  double examples_share = 0.0;
  int text_larger = 0, examples_larger = 0;
  const int levels = 9;
  for (int level = 0; level < levels; level++) {
    cairo_surface_t *surface = plain_surface (level / (levels - 1.0));
    float probs[2 * N_CONCEPTS];
    score_surface (set, surface, probs);
    cairo_surface_destroy (surface);
    double from_examples = share (probs, N_CONCEPTS, N_CONCEPTS);
    g_test_message ("grey %d/%d: text labels %.3f, example labels %.3f", level,
        levels - 1, share (probs, 0, N_CONCEPTS), from_examples);
    examples_share += from_examples / levels;
    examples_larger += from_examples > 0.5;
    text_larger += from_examples < 0.5;
  }
  g_test_message ("mean share of the example labels: %.3f", examples_share);
  g_assert_cmpint (text_larger, >=, 1);
  g_assert_cmpint (examples_larger, >=, 1);
  g_assert_cmpfloat (examples_share, >=, 0.2);
  g_assert_cmpfloat (examples_share, <=, 0.8);

  for (int c = 0; c < N_CONCEPTS; c++) {
    cairo_surface_t *surface = draw_concept (c, rand);
    float probs[2 * N_CONCEPTS];
    score_surface (set, surface, probs);
    cairo_surface_destroy (surface);
    int top = argmax (probs, 2 * N_CONCEPTS);
    g_test_message ("a %s: %s wins (%.3f)", concept_names[c],
        clip_label_set_get_label (set, top), probs[top]);
    g_assert_cmpint (top % N_CONCEPTS, ==, c);
  }
}

/* Text labels beside labels by example: a drawing of a text label's shape
 * goes to that label, a logo to its examples' label. */
static void
test_mixed_matches (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  write_examples (dir);
  g_autofree char *labels_file = write_labels_file (dir,
      "red circle\nblue square\ngreen triangle\n"
      "roundel: @roundel/\nstripes: @stripes/ | @stripes/\n");
  ClipExemplarStats stats = { 0 };
  g_autoptr (ClipLabelSet) set = label_set_from_file (labels_file, &stats);
  /* a folder named twice counts twice, and is embedded once */
  g_assert_cmpint (clip_label_set_get_n_examples (set, 4), ==, 2 * N_EXAMPLES);
  g_assert_cmpuint (stats.n_images, ==, 3 * N_EXAMPLES);
  g_assert_cmpuint (stats.embedded, ==, 2 * N_EXAMPLES);
  clip_exemplar_stats_clear (&stats);
  g_autoptr (ClipLabelSet) again = label_set_from_file (labels_file, &stats);
  g_assert_cmpuint (stats.from_cache, ==, 2 * N_EXAMPLES);
  g_assert_null (stats.cache_note); /* not rewritten */
  clip_exemplar_stats_clear (&stats);
  g_autoptr (GRand) rand = g_rand_new_with_seed (5);
  float probs[5];
  for (int c = 0; c < N_CONCEPTS; c++) {
    cairo_surface_t *surface = draw_concept (c, rand);
    score_surface (set, surface, probs);
    cairo_surface_destroy (surface);
    g_assert_cmpint (argmax (probs, 5), ==, c);
  }
  for (int logo = 0; logo < 2; logo++) {
    cairo_surface_t *surface = draw_logo (logo, rand);
    score_surface (set, surface, probs);
    cairo_surface_destroy (surface);
    g_assert_cmpint (argmax (probs, 5), ==, 3 + logo);
  }
}

/* The rule's parts, from the outside: with exemplar weight 0 the labels
 * with images alone have, on any frame, the mean logit of the text labels
 * (the modality-gap shift); the weight then adds the examples' affinities,
 * sum exp(-sharpness (1 - cosine)), to each label that has examples. */
static void
test_rule (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  write_examples (dir);
  g_autofree char *labels_file = write_labels_file (dir,
      "red circle\nblue square: a blue square | @stripes/00.png\n"
      "roundel: @roundel/\nstripes: @stripes/\n");
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) labels = clip_labels_parse_file (labels_file, &error);
  g_assert_no_error (error);
  g_assert_true (clip_exemplars_embed (default_model (), labels, NULL,
      encode_frame, default_encoder (), NULL, &error));
  const char *const templates[] = { "a photo of a {}.", NULL };
  ClipExemplarRule off = { 0.0f, 5.5f }, on = { 2.0f, 3.0f };
  g_autoptr (ClipLabelSet) set_off = clip_label_set_new_full (default_model (),
      labels, NULL, templates, &off, encode_prompts, default_encoder (),
      &error);
  g_autoptr (ClipLabelSet) set_on = clip_label_set_new_full (default_model (),
      labels, NULL, templates, &on, encode_prompts, default_encoder (), &error);
  g_assert_no_error (error);

  g_autoptr (GRand) rand = g_rand_new_with_seed (6);
  cairo_surface_t *surface = draw_logo (ROUNDEL, rand);
  ClipFrame frame = surface_frame (surface);
  float embedding[64], logits_off[4], logits_on[4];
  g_assert_true (clip_encoder_encode_frames (default_encoder (), &frame, 1,
      embedding, &error));
  cairo_surface_destroy (surface);
  clip_label_set_score (set_off, embedding, logits_off, NULL);
  clip_label_set_score (set_on, embedding, logits_on, NULL);
  g_assert_cmpfloat_with_epsilon ((logits_off[0] + logits_off[1]) / 2,
      (logits_off[2] + logits_off[3]) / 2, 1e-4);

  clip_l2_normalize (embedding, 64);
  for (int i = 0; i < 4; i++) {
    const ClipLabelSpec *spec = i < 1 ? NULL : labels->pdata[i];
    double affinity = 0.0;
    for (int e = 0; spec && e < spec->n_example_embeddings; e++) {
      double dot = 0.0;
      for (int j = 0; j < 64; j++)
        dot += (double) spec->example_embeddings[e * 64 + j] * embedding[j];
      affinity += exp (-on.sharpness * (1.0 - dot));
    }
    g_assert_cmpfloat_with_epsilon (logits_on[i],
        logits_off[i] + on.weight * affinity, 1e-3);
  }
  g_assert_cmpint (clip_label_set_get_n_examples (set_on, 0), ==, 0);
  g_assert_cmpint (clip_label_set_get_n_examples (set_on, 1), ==, 1);
}

/* The cache beside the labels file: written on the first build, read on
 * the second (nothing embedded, the file untouched), an image that changed
 * embedded again alone, and a cache made by another model ignored. */
static void
test_cache (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  write_examples (dir);
  g_autofree char *labels_file = write_labels_file (dir,
      "roundel: @roundel/\nstripes: @stripes/\n");
  g_autofree char *cache = clip_exemplar_cache_path (labels_file);
  ClipExemplarStats stats = { 0 };

  g_autoptr (ClipLabelSet) first = label_set_from_file (labels_file, &stats);
  g_assert_cmpuint (stats.n_images, ==, 2 * N_EXAMPLES);
  g_assert_cmpuint (stats.embedded, ==, 2 * N_EXAMPLES);
  g_assert_cmpuint (stats.from_cache, ==, 0);
  g_assert_true (g_file_test (cache, G_FILE_TEST_IS_REGULAR));
  clip_exemplar_stats_clear (&stats);
  GStatBuf before;
  g_assert_cmpint (g_stat (cache, &before), ==, 0);

  g_autoptr (ClipLabelSet) second = label_set_from_file (labels_file, &stats);
  g_assert_cmpuint (stats.from_cache, ==, 2 * N_EXAMPLES);
  g_assert_cmpuint (stats.embedded, ==, 0);
  g_assert_null (stats.cache_note);
  clip_exemplar_stats_clear (&stats);
  GStatBuf after;
  g_assert_cmpint (g_stat (cache, &after), ==, 0);
  g_assert_cmpint (after.st_mtim.tv_sec, ==, before.st_mtim.tv_sec);
  g_assert_cmpint (after.st_mtim.tv_nsec, ==, before.st_mtim.tv_nsec);
  /* the cached embeddings are the computed ones, bit for bit */
  g_assert_cmpmem (clip_label_set_get_embeddings (first), 2 * 64 * 4,
      clip_label_set_get_embeddings (second), 2 * 64 * 4);

  /* one image redrawn: only it is embedded again */
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  cairo_surface_t *surface = draw_logo (ROUNDEL, rand);
  g_autofree char *redrawn = g_build_filename (dir, "roundel", "03.png", NULL);
  g_assert_cmpint (cairo_surface_write_to_png (surface, redrawn), ==,
      CAIRO_STATUS_SUCCESS);
  cairo_surface_destroy (surface);
  g_autoptr (ClipLabelSet) third = label_set_from_file (labels_file, &stats);
  g_assert_cmpuint (stats.embedded, ==, 1);
  g_assert_cmpuint (stats.from_cache, ==, 2 * N_EXAMPLES - 1);
  clip_exemplar_stats_clear (&stats);

  /* another model: the cache is ignored, said so, and rebuilt */
  g_autoptr (ClipEncoder) other = clip_test_tiny_encoder ();
  if (other == NULL)
    return;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) labels = clip_labels_parse_file (labels_file, &error);
  g_assert_true (clip_exemplars_embed (clip_encoder_get_model (other), labels,
      cache, encode_frame, other, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats.embedded, ==, 2 * N_EXAMPLES);
  g_assert_nonnull (strstr (stats.cache_note, "made by another model"));
  g_test_message ("%s", stats.cache_note);
  clip_exemplar_stats_clear (&stats);
  /* and back: the default model finds the other model's cache foreign */
  g_autoptr (ClipLabelSet) fourth = label_set_from_file (labels_file, &stats);
  g_assert_cmpuint (stats.embedded, ==, 2 * N_EXAMPLES);
  g_assert_nonnull (strstr (stats.cache_note, "made by another model"));
  clip_exemplar_stats_clear (&stats);

  /* a cache that is not one: ignored and rewritten */
  g_assert_true (g_file_set_contents (cache, "not a cache", -1, NULL));
  g_autoptr (ClipLabelSet) fifth = label_set_from_file (labels_file, &stats);
  g_assert_cmpuint (stats.embedded, ==, 2 * N_EXAMPLES);
  g_assert_nonnull (stats.cache_note);
  clip_exemplar_stats_clear (&stats);
  g_autoptr (ClipLabelSet) sixth = label_set_from_file (labels_file, &stats);
  g_assert_cmpuint (stats.from_cache, ==, 2 * N_EXAMPLES);
  clip_exemplar_stats_clear (&stats);
}

/* A bad example: the error names the labels file's line, the label and
 * the item. */
static void
assert_embed_error (const char *dir, const char *text, const char *line,
    const char *item)
{
  g_autofree char *labels_file = write_labels_file (dir, text);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) labels = clip_labels_parse_file (labels_file, &error);
  g_assert_no_error (error);
  g_assert_false (clip_exemplars_embed (default_model (), labels, NULL,
      encode_frame, default_encoder (), NULL, &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_autofree char *where = g_strdup_printf ("labels.txt:%s: ", line);
  g_assert_nonnull (strstr (error->message, where));
  g_assert_nonnull (strstr (error->message, item));
}

static void
test_bad_examples (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  write_examples (dir);
  g_autofree char *text_file = g_build_filename (dir, "notes.jpg", NULL);
  g_assert_true (g_file_set_contents (text_file, "not an image", -1, NULL));
  g_autofree char *empty = g_build_filename (dir, "empty", NULL);
  g_assert_cmpint (g_mkdir (empty, 0755), ==, 0);
  g_autofree char *readme = g_build_filename (empty, "README.txt", NULL);
  g_assert_true (g_file_set_contents (readme, "no images here", -1, NULL));

  assert_embed_error (dir, "roundel: @roundel/\n\nforklift: @missing.jpg\n",
      "3", "missing.jpg");
  assert_embed_error (dir, "notes: @notes.jpg\n", "1", "notes.jpg");
  assert_embed_error (dir, "# none\nnothing: @empty/ | a photo\n", "2",
      "empty");
  assert_embed_error (dir, "gone: @no-such-folder/\n", "1", "no-such-folder");

  /* a set built from examples never embedded says which label */
  g_autofree char *labels_file = write_labels_file (dir,
      "roundel: @roundel/\n");
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) labels = clip_labels_parse_file (labels_file, &error);
  g_assert_null (clip_label_set_new_full (default_model (), labels, NULL, NULL,
      NULL, encode_prompts, default_encoder (), &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "labels.txt:1: label 'roundel'"));
  g_clear_error (&error);

  /* negative labels are text only */
  g_autoptr (GPtrArray) text = clip_labels_parse_list ("a,b");
  g_assert_null (clip_label_set_new_full (default_model (), text, labels, NULL,
      NULL, encode_prompts, default_encoder (), &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "negative label 'roundel'"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/exemplars/few-shot", test_few_shot);
  g_test_add_func ("/exemplars/mixed-neutral", test_mixed_neutral);
  g_test_add_func ("/exemplars/mixed-matches", test_mixed_matches);
  g_test_add_func ("/exemplars/rule", test_rule);
  g_test_add_func ("/exemplars/cache", test_cache);
  g_test_add_func ("/exemplars/bad-examples", test_bad_examples);
  int status = g_test_run ();
  g_clear_pointer (&encoder, clip_encoder_free);
  return status;
}
