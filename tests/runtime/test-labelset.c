/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Label sets: prompt building, ensembling, negatives and scoring, checked
 * against clip_encoder_encode_strings and the reference logits. */
#include "clip.h"
#include "reference.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#define N_IMAGES 6
#define N_PROMPTS 12

static ClipModel *model;
static ClipEncoder *encoder;

/* Shared by every test (loaded once). */
static gboolean
setup (void)
{
  if (encoder == NULL && !(encoder = clip_test_tiny_encoder ()))
    return FALSE;
  model = clip_encoder_get_model (encoder);
  return TRUE;
}

static int
embed_dim (void)
{
  return clip_model_get_config (model)->embed_dim;
}

static void
spec_free (gpointer data)
{
  ClipLabelSpec *spec = data;
  g_free (spec->label);
  g_strfreev (spec->prompts);
  g_free (spec);
}

/* A label; its own prompts follow, NULL-terminated (none: templates). */
static ClipLabelSpec *
spec_new (const char *label, ...)
{
  ClipLabelSpec *spec = g_new0 (ClipLabelSpec, 1);
  spec->label = g_strdup (label);
  g_autoptr (GStrvBuilder) prompts = g_strv_builder_new ();
  va_list args;
  va_start (args, label);
  gboolean any = FALSE;
  for (const char *p = va_arg (args, const char *); p;
      p = va_arg (args, const char *)) {
    g_strv_builder_add (prompts, p);
    any = TRUE;
  }
  va_end (args);
  spec->prompts = any ? g_strv_builder_end (prompts) : NULL;
  return spec;
}

static GPtrArray *
labels_new (void)
{
  return g_ptr_array_new_with_free_func (spec_free);
}

/* The hand computation of the CLIP paper's ensembling: the renormalised
 * mean of the prompts' normalised embeddings, each encoded on its own. */
static void
ensemble_by_hand (const char *const *prompts, float *out)
{
  int dim = embed_dim ();
  g_autofree float *one = g_new (float, dim);
  memset (out, 0, dim * sizeof (float));
  for (const char *const *p = prompts; *p; p++) {
    g_autoptr (GError) error = NULL;
    g_assert_true (clip_encoder_encode_strings (encoder, p, 1, one, &error));
    g_assert_no_error (error);
    for (int j = 0; j < dim; j++)
      out[j] += one[j];
  }
  clip_l2_normalize (out, dim);
}

static void
assert_row_equals (const float *got, const float *want)
{
  g_assert_cmpfloat (clip_test_max_abs_diff (got, want, embed_dim ()), <=,
      1e-6);
}

static void
test_ensemble_templates (void)
{
  if (!setup ())
    return;
  g_autoptr (GPtrArray) labels = labels_new ();
  g_ptr_array_add (labels, spec_new ("dog", NULL));
  g_ptr_array_add (labels, spec_new ("red apple", NULL));
  const char *templates[] = { "a photo of a {}.", "a drawing of a {}.", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipLabelSet) set = clip_label_set_new (encoder, labels, NULL,
      templates, &error);
  g_assert_no_error (error);
  g_assert_cmpint (clip_label_set_get_n_labels (set), ==, 2);
  g_assert_cmpint (clip_label_set_get_embed_dim (set), ==, embed_dim ());
  g_assert_cmpstr (clip_label_set_get_label (set, 1), ==, "red apple");

  g_autofree float *want = g_new (float, embed_dim ());
  const char *dog[] = { "a photo of a dog.", "a drawing of a dog.", NULL };
  const char *apple[] = { "a photo of a red apple.",
    "a drawing of a red apple.", NULL };
  const float *rows = clip_label_set_get_embeddings (set);
  ensemble_by_hand (dog, want);
  assert_row_equals (rows, want);
  ensemble_by_hand (apple, want);
  assert_row_equals (rows + embed_dim (), want);

  /* The mean of two different unit vectors is shorter than 1: the row is
   * the renormalised mean, not the plain one. */
  const char *photo[] = { "a photo of a dog.", NULL };
  g_autofree float *single = g_new (float, embed_dim ());
  ensemble_by_hand (photo, single);
  g_assert_cmpfloat (clip_test_max_abs_diff (rows, single, embed_dim ()), >,
      1e-3);
}

static void
test_every_placeholder_replaced (void)
{
  if (!setup ())
    return;
  g_autoptr (GPtrArray) labels = labels_new ();
  g_ptr_array_add (labels, spec_new ("cat", NULL));
  const char *templates[] = { "a {} next to a {}, {}!", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipLabelSet) set = clip_label_set_new (encoder, labels, NULL,
      templates, &error);
  g_assert_no_error (error);
  const char *prompt[] = { "a cat next to a cat, cat!", NULL };
  g_autofree float *want = g_new (float, embed_dim ());
  ensemble_by_hand (prompt, want);
  assert_row_equals (clip_label_set_get_embeddings (set), want);
}

static void
test_own_prompts (void)
{
  if (!setup ())
    return;
  g_autoptr (GPtrArray) labels = labels_new ();
  g_ptr_array_add (labels,
      spec_new ("kitten", "a fluffy kitten", "a small cat asleep", NULL));
  g_ptr_array_add (labels, spec_new ("car", NULL));
  const char *templates[] = { "a photo of a {}.", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipLabelSet) set = clip_label_set_new (encoder, labels, NULL,
      templates, &error);
  g_assert_no_error (error);
  g_autofree float *want = g_new (float, embed_dim ());
  const char *kitten[] = { "a fluffy kitten", "a small cat asleep", NULL };
  ensemble_by_hand (kitten, want);
  assert_row_equals (clip_label_set_get_embeddings (set), want);
  const char *car[] = { "a photo of a car.", NULL };
  ensemble_by_hand (car, want);
  assert_row_equals (clip_label_set_get_embeddings (set) + embed_dim (), want);
}

/* No templates: the label is its own prompt. */
static void
test_no_templates (void)
{
  if (!setup ())
    return;
  g_autoptr (GPtrArray) labels = labels_new ();
  g_ptr_array_add (labels, spec_new ("a diagram", NULL));
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipLabelSet) set = clip_label_set_new (encoder, labels, NULL,
      NULL, &error);
  g_assert_no_error (error);
  const char *prompt[] = { "a diagram", NULL };
  g_autofree float *want = g_new (float, embed_dim ());
  ensemble_by_hand (prompt, want);
  assert_row_equals (clip_label_set_get_embeddings (set), want);
}

static void
test_negatives (void)
{
  if (!setup ())
    return;
  g_autoptr (GPtrArray) labels = labels_new ();
  g_autoptr (GPtrArray) negatives = labels_new ();
  g_ptr_array_add (labels, spec_new ("dog", NULL));
  g_ptr_array_add (labels, spec_new ("cat", NULL));
  g_ptr_array_add (negatives, spec_new ("nothing", NULL));
  const char *templates[] = { "a photo of a {}.", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipLabelSet) set = clip_label_set_new (encoder, labels, negatives,
      templates, &error);
  g_assert_no_error (error);
  g_assert_cmpint (clip_label_set_get_n_labels (set), ==, 3);
  g_assert_cmpstr (clip_label_set_get_label (set, 0), ==, "dog");
  g_assert_cmpstr (clip_label_set_get_label (set, 2), ==, "nothing");
  g_assert_false (clip_label_set_is_negative (set, 0));
  g_assert_false (clip_label_set_is_negative (set, 1));
  g_assert_true (clip_label_set_is_negative (set, 2));

  /* The negative takes part in the softmax. */
  const char *nothing[] = { "a photo of a nothing.", NULL };
  g_autofree float *image = g_new (float, embed_dim ());
  ensemble_by_hand (nothing, image);
  float probs[3];
  clip_label_set_score (set, image, NULL, probs);
  g_assert_cmpfloat (probs[2], >, probs[0]);
  g_assert_cmpfloat (probs[2], >, probs[1]);
  g_assert_cmpfloat_with_epsilon (probs[0] + probs[1] + probs[2], 1.0, 1e-6);
}

static void
test_errors (void)
{
  if (!setup ())
    return;
  g_autoptr (GPtrArray) empty = labels_new ();
  const char *templates[] = { "a photo of a {}.", NULL };
  g_autoptr (GError) error = NULL;
  g_assert_null (clip_label_set_new (encoder, empty, NULL, templates, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_assert_cmpstr (error->message, ==, "empty label list");
  g_clear_error (&error);
  g_assert_null (clip_label_set_new (encoder, NULL, NULL, templates, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_clear_error (&error);

  /* Only negatives: nothing could ever be reported. */
  g_autoptr (GPtrArray) negatives = labels_new ();
  g_ptr_array_add (negatives, spec_new ("nothing", NULL));
  g_assert_null (
      clip_label_set_new (encoder, empty, negatives, templates, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_clear_error (&error);

  g_autoptr (GPtrArray) labels = labels_new ();
  g_ptr_array_add (labels, spec_new ("dog", NULL));
  const char *no_placeholder[] = { "a photo of a {}.", "a photo", NULL };
  g_assert_null (
      clip_label_set_new (encoder, labels, NULL, no_placeholder, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "'a photo'"));
  g_clear_error (&error);

  /* The tokenizer's error comes through. */
  g_autoptr (GPtrArray) invalid = labels_new ();
  g_ptr_array_add (invalid, spec_new ("bad \xff utf-8", NULL));
  g_assert_null (
      clip_label_set_new (encoder, invalid, NULL, templates, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
}

/* A label that is also a negative label would share its probability with
 * itself: an error naming it. */
static void
test_label_also_negative (void)
{
  if (!setup ())
    return;
  g_autoptr (GPtrArray) labels = labels_new ();
  g_autoptr (GPtrArray) negatives = labels_new ();
  g_ptr_array_add (labels, spec_new ("a", NULL));
  g_ptr_array_add (labels, spec_new ("b", NULL));
  g_ptr_array_add (negatives, spec_new ("b", NULL));
  const char *templates[] = { "a photo of a {}.", NULL };
  g_autoptr (GError) error = NULL;
  g_assert_null (
      clip_label_set_new (encoder, labels, negatives, templates, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "'b'"));
  g_assert_nonnull (strstr (error->message, "negative"));
}

/* A prompt longer than the context flags its label; others are not. */
static void
test_truncated (void)
{
  if (!setup ())
    return;
  int context = clip_model_get_config (model)->context_length;
  g_autoptr (GString) long_label = g_string_new ("a");
  for (int i = 0; i < context; i++)
    g_string_append (long_label, " very");
  g_string_append (long_label, " long label");
  g_autoptr (GPtrArray) labels = labels_new ();
  g_ptr_array_add (labels, spec_new ("dog", NULL));
  g_ptr_array_add (labels, spec_new (long_label->str, NULL));
  g_ptr_array_add (labels, spec_new ("own", "short", long_label->str, NULL));
  const char *templates[] = { "a photo of a {}.", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipLabelSet) set = clip_label_set_new (encoder, labels, NULL,
      templates, &error);
  g_assert_no_error (error);
  g_assert_false (clip_label_set_is_truncated (set, 0));
  g_assert_true (clip_label_set_is_truncated (set, 1));
  g_assert_true (clip_label_set_is_truncated (set, 2));
}

typedef struct {
  guint calls;
  int most;
} EncodeCount;

static gboolean
counting_encode (const char *const *prompts, int n, float *embeddings,
    gpointer user_data, GError **error)
{
  EncodeCount *count = user_data;
  count->calls++;
  count->most = MAX (count->most, n);
  return clip_encoder_encode_strings (encoder, prompts, n, embeddings, error);
}

/* clip_label_set_new_with: the same set, its prompts in calls of at most
 * 32. */
static void
test_new_with (void)
{
  if (!setup ())
    return;
  g_autoptr (GPtrArray) labels = labels_new ();
  for (int i = 0; i < 40; i++) {
    g_autofree char *label = g_strdup_printf ("thing %d", i);
    g_ptr_array_add (labels, spec_new (label, NULL));
  }
  const char *templates[] = { "a photo of a {}.", "a {}.", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipLabelSet) set = clip_label_set_new (encoder, labels, NULL,
      templates, &error);
  g_assert_no_error (error);
  EncodeCount count = { 0 };
  g_autoptr (ClipLabelSet) with = clip_label_set_new_with (model, labels, NULL,
      templates, counting_encode, &count, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (count.calls, ==, 3); /* 80 prompts */
  g_assert_cmpint (count.most, ==, 32);
  g_assert_cmpmem (clip_label_set_get_embeddings (set),
      40 * embed_dim () * sizeof (float), clip_label_set_get_embeddings (with),
      40 * embed_dim () * sizeof (float));
}

static void
test_score (void)
{
  if (!setup ())
    return;
  int dim = embed_dim ();
  g_autoptr (GPtrArray) labels = labels_new ();
  g_ptr_array_add (labels, spec_new ("dog", NULL));
  g_ptr_array_add (labels, spec_new ("cat", NULL));
  g_ptr_array_add (labels, spec_new ("guitar", NULL));
  const char *templates[] = { "a photo of a {}.", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (ClipLabelSet) set = clip_label_set_new (encoder, labels, NULL,
      templates, &error);
  g_assert_no_error (error);
  float scale = clip_label_set_get_logit_scale (set);
  g_assert_cmpfloat_with_epsilon (scale,
      MIN (clip_model_get_logit_scale (model), 100.0f), 1e-6);

  g_autoptr (GRand) rand = g_rand_new_with_seed (3);
  g_autofree float *image = g_new (float, dim);
  for (int j = 0; j < dim; j++)
    image[j] = g_rand_double_range (rand, -3, 3); /* not normalised */
  float logits[3], probs[3], probs_only[3], scaled_logits[3];
  clip_label_set_score (set, image, logits, probs);
  clip_label_set_score (set, image, NULL, probs_only);

  g_autofree float *unit = g_memdup2 (image, dim * sizeof (float));
  clip_l2_normalize (unit, dim);
  const float *rows = clip_label_set_get_embeddings (set);
  double max = -INFINITY, sum = 0.0, want_probs[3];
  for (int i = 0; i < 3; i++) {
    double dot = 0.0;
    for (int j = 0; j < dim; j++)
      dot += (double) rows[i * dim + j] * unit[j];
    g_assert_cmpfloat (fabs (logits[i] - scale * dot), <=, 1e-5 * scale);
    max = MAX (max, logits[i]);
  }
  for (int i = 0; i < 3; i++)
    sum += want_probs[i] = exp (logits[i] - max);
  for (int i = 0; i < 3; i++) {
    g_assert_cmpfloat (fabs (probs[i] - want_probs[i] / sum), <=, 1e-6);
    g_assert_cmpfloat (probs_only[i], ==, probs[i]);
  }
  g_assert_cmpfloat_with_epsilon (probs[0] + probs[1] + probs[2], 1.0, 1e-6);

  /* Scaling the image embedding changes nothing. */
  for (int j = 0; j < dim; j++)
    image[j] *= 7.0f;
  clip_label_set_score (set, image, scaled_logits, NULL);
  for (int i = 0; i < 3; i++)
    g_assert_cmpfloat (fabs (scaled_logits[i] - logits[i]), <=, 1e-5 * scale);

  ClipLabelSet *ref = clip_label_set_ref (set);
  g_assert_true (ref == set);
  clip_label_set_unref (ref);
  g_assert_cmpint (clip_label_set_get_n_labels (set), ==, 3);
}

/* The 12 reference prompts as 12 labels with their own prompt: the scores
 * of the 6 reference images are the reference logits_per_image, and each
 * image's top label is the reference argmax. */
static void
test_reference_top_labels (void)
{
  if (!setup ())
    return;
  int dim = embed_dim ();
  g_autofree char *path = clip_test_ref_path ("manifest.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  json_parser_load_from_file (parser, path, &error);
  g_assert_no_error (error);
  JsonObject *manifest = json_node_get_object (json_parser_get_root (parser));
  JsonArray *prompts = json_object_get_array_member (manifest, "prompts");
  JsonArray *images = json_object_get_array_member (manifest, "images");

  g_autoptr (GPtrArray) labels = labels_new ();
  for (int p = 0; p < N_PROMPTS; p++) {
    const char *text = json_object_get_string_member (
        json_array_get_object_element (prompts, p), "text");
    g_ptr_array_add (labels, spec_new (text, text, NULL));
  }
  g_autoptr (ClipLabelSet) set = clip_label_set_new (encoder, labels, NULL,
      NULL, &error);
  g_assert_no_error (error);
  float scale = clip_label_set_get_logit_scale (set);

  g_autofree float *expected = clip_test_read_f32 (
      "expected/tiny-openai/logits_per_image.f32", N_IMAGES * N_PROMPTS);
  g_autofree float *embedding = g_new (float, dim);
  for (int i = 0; i < N_IMAGES; i++) {
    const char *pre = json_object_get_string_member (
        json_array_get_object_element (images, i), "pre");
    g_autofree float *pixels = clip_test_read_f32 (pre, 3 * 224 * 224);
    g_assert_true (
        clip_encoder_encode_images (encoder, pixels, 1, embedding, &error));
    g_assert_no_error (error);
    float logits[N_PROMPTS], probs[N_PROMPTS];
    clip_label_set_score (set, embedding, logits, probs);
    int top = 0, want_top = 0;
    for (int p = 0; p < N_PROMPTS; p++) {
      g_assert_cmpfloat (fabs (logits[p] - expected[i * N_PROMPTS + p]), <=,
          2e-5 * scale);
      if (probs[p] > probs[top])
        top = p;
      if (expected[i * N_PROMPTS + p] > expected[i * N_PROMPTS + want_top])
        want_top = p;
    }
    g_assert_cmpint (top, ==, want_top);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/labelset/ensemble-templates", test_ensemble_templates);
  g_test_add_func ("/labelset/every-placeholder-replaced",
      test_every_placeholder_replaced);
  g_test_add_func ("/labelset/own-prompts", test_own_prompts);
  g_test_add_func ("/labelset/no-templates", test_no_templates);
  g_test_add_func ("/labelset/negatives", test_negatives);
  g_test_add_func ("/labelset/errors", test_errors);
  g_test_add_func ("/labelset/label-also-negative", test_label_also_negative);
  g_test_add_func ("/labelset/truncated", test_truncated);
  g_test_add_func ("/labelset/new-with", test_new_with);
  g_test_add_func ("/labelset/score", test_score);
  g_test_add_func ("/labelset/reference-top-labels", test_reference_top_labels);
  int status = g_test_run ();
  g_clear_pointer (&encoder, clip_encoder_free);
  return status;
}
