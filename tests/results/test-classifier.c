/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The results core's classifier: ranking, what a result reports, the
 * smoothing window, the encoder's own scores, the label-set swap while
 * another thread classifies, and the result's lifetime. Label sets come
 * from the tiny reference model on the CPU. */
#include "classifier.h"
#include "reference.h"

#include <string.h>

static ClipEncoder *encoder;

static gboolean
setup (void)
{
  return encoder != NULL || (encoder = clip_test_tiny_encoder ()) != NULL;
}

static int
embed_dim (void)
{
  return clip_model_get_config (clip_encoder_get_model (encoder))->embed_dim;
}

/* A deterministic, not normalised embedding that differs with seed. */
static float *
embedding_new (guint seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  float *e = g_new (float, embed_dim ());
  for (int d = 0; d < embed_dim (); d++)
    e[d] = (float) g_rand_double_range (rand, -2.0, 2.0);
  g_rand_free (rand);
  return e;
}

/* Classifies a frame whatever segment it ends. */
static ClipResult *
classify_frame (ClipClassifier *c, const ClipFrameEmbedding *frame,
    const ClipClassifyOptions *options)
{
  ClipResult *r;
  ClipSegment ended;
  if (clip_classifier_classify (c, frame, options, &r, &ended))
    clip_segment_clear (&ended);
  return r;
}

static ClipResult *
classify (ClipClassifier *c, const float *embedding, guint smoothing)
{
  const ClipClassifyOptions options = {
    .report = CLIP_REPORT_OPTIONS_ALL,
    .smoothing = smoothing,
  };
  const ClipFrameEmbedding frame = {
    .embedding = embedding,
    .pts = CLIP_TIME_NONE,
    .duration = CLIP_TIME_NONE,
  };
  return classify_frame (c, &frame, &options);
}

/* The probabilities of every label, in label order, from a result that
 * reports them all. */
static void
result_probs_by_label (const ClipResult *r, float *probs)
{
  const guint *indices = clip_result_get_indices (r);
  for (guint i = 0; i < clip_result_get_n_reported (r); i++)
    probs[indices[i]] = clip_result_get_probs (r)[i];
}

/* ------------------------------------------------------------------ tests */

static void
test_rank (void)
{
  const float values[] = { 0.2f, 0.5f, 0.2f, 0.9f, 0.5f, 0.0f };
  const guint expected[] = { 3, 1, 4, 0, 2, 5 };
  guint order[G_N_ELEMENTS (values)];
  clip_rank_descending (values, G_N_ELEMENTS (values), order);
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    g_assert_cmpuint (order[i], ==, expected[i]);
}

/* Top-k, the threshold and negative labels, on scores made by hand. */
static void
test_report (void)
{
  if (!setup ())
    return;
  g_autoptr (ClipLabelSet) set = clip_test_label_set (encoder,
      "cat,dog,bird,fish", "nothing");
  g_assert_true (clip_label_set_is_negative (set, 4));
  const float logits[] = { 1, 2, 3, 4, 5 };
  const float probs[] = { 0.25f, 0.05f, 0.30f, 0.10f, 0.30f };
  ClipReportOptions report = { 2, 0.0f };

  /* Two at most; the negative label is never reported. */
  g_autoptr (ClipResult) r = clip_result_new (set, logits, probs, &report, 5,
      7);
  g_assert_cmpuint (clip_result_get_n_reported (r), ==, 2);
  g_assert_cmpuint (clip_result_get_indices (r)[0], ==, 2);
  g_assert_cmpuint (clip_result_get_indices (r)[1], ==, 0);
  g_assert_cmpfloat (clip_result_get_probs (r)[0], ==, 0.30f);
  g_assert_cmpfloat (clip_result_get_logits (r)[1], ==, 1.0f);
  g_assert_cmpint (clip_result_get_top (r), ==, 0);
  ClipFrameRecord record;
  clip_result_get_record (r, &record);
  g_assert_cmpuint (record.pts, ==, 5);
  g_assert_cmpuint (record.duration, ==, 7);
  g_assert_cmpuint (record.n_labels, ==, 2);
  g_assert_cmpstr (record.labels[0], ==, "bird");
  g_assert_cmpstr (record.labels[1], ==, "cat");
  g_assert_cmpfloat (record.scores[0], ==, (double) 0.30f);
  /* bird (index 2) comes before the equally probable negative (index 4):
   * it is the best, so the top label. */
  g_assert_cmpstr (record.top_label, ==, "bird");
  g_assert_cmpfloat (record.top_score, ==, (double) 0.30f);

  /* When the negative label is strictly best, there is no top label. */
  const float negative_wins[] = { 0.25f, 0.05f, 0.20f, 0.10f, 0.40f };
  g_autoptr (ClipResult) none = clip_result_new (set, logits, negative_wins,
      &report, CLIP_TIME_NONE, CLIP_TIME_NONE);
  clip_result_get_record (none, &record);
  g_assert_cmpint (clip_result_get_top (none), ==, -1);
  g_assert_null (record.top_label);
  g_assert_cmpfloat (record.top_score, ==, 0.0);
  g_assert_cmpuint (record.n_labels, ==, 2);
  g_assert_cmpstr (record.labels[0], ==, "cat");
  g_assert_cmpstr (record.labels[1], ==, "bird");

  /* The threshold drops what is below it, k or not. */
  report = (ClipReportOptions) { 10, 0.2f };
  g_autoptr (ClipResult) above = clip_result_new (set, logits, probs, &report,
      CLIP_TIME_NONE, CLIP_TIME_NONE);
  g_assert_cmpuint (clip_result_get_n_reported (above), ==, 2);
  report.threshold = 0.5f;
  g_autoptr (ClipResult) nothing = clip_result_new (set, logits, probs, &report,
      CLIP_TIME_NONE, CLIP_TIME_NONE);
  g_assert_cmpuint (clip_result_get_n_reported (nothing), ==, 0);
  g_assert_cmpint (clip_result_get_top (nothing), ==, -1);

  /* Every label that is not negative. */
  report = (ClipReportOptions) CLIP_REPORT_OPTIONS_ALL;
  g_autoptr (ClipResult) all = clip_result_new (set, logits, probs, &report,
      CLIP_TIME_NONE, CLIP_TIME_NONE);
  clip_result_get_record (all, &record);
  g_assert_cmpuint (record.n_labels, ==, 4);
  g_assert_cmpstr (record.labels[3], ==, "dog");
}

/* The score of the sum of the last smoothing normalised embeddings,
 * bit for bit; a window reset starts over. */
static void
test_smoothing (void)
{
  if (!setup ())
    return;
  const int dim = embed_dim ();
  g_autoptr (ClipLabelSet) set = clip_test_label_set (encoder, "cat,dog,bird",
      NULL);
  const int n = clip_label_set_get_n_labels (set);
  g_autoptr (ClipClassifier) c = clip_classifier_new (dim);
  clip_classifier_set_label_set (c, set, NULL, NULL);

  float *normalised[5];
  for (guint f = 0; f < G_N_ELEMENTS (normalised); f++) {
    g_autofree float *raw = embedding_new (f + 1);
    normalised[f] = g_memdup2 (raw, dim * sizeof (float));
    clip_l2_normalize (normalised[f], dim);

    g_autoptr (ClipResult) r = classify (c, raw, 3);
    /* Summed in the ring's slot order: slot w holds the latest frame
     * whose number is w modulo 3. */
    g_autofree float *sum = g_new0 (float, dim);
    for (guint w = 0; w < MIN (f + 1, 3); w++) {
      guint latest = f - (f + 3 - w) % 3;
      for (int d = 0; d < dim; d++)
        sum[d] += normalised[latest][d];
    }
    g_autofree float *want = g_new (float, n);
    g_autofree float *got = g_new (float, n);
    clip_label_set_score (set, sum, NULL, want);
    result_probs_by_label (r, got);
    g_assert_cmpmem (got, n * sizeof (float), want, n * sizeof (float));
  }

  /* After a reset the window holds the next frame alone. */
  clip_classifier_reset_window (c);
  g_autofree float *raw = embedding_new (99);
  g_autoptr (ClipResult) r = classify (c, raw, 3);
  g_autofree float *want = g_new (float, n);
  g_autofree float *got = g_new (float, n);
  g_autofree float *alone = g_memdup2 (raw, dim * sizeof (float));
  clip_l2_normalize (alone, dim);
  clip_label_set_score (set, alone, NULL, want);
  result_probs_by_label (r, got);
  g_assert_cmpmem (got, n * sizeof (float), want, n * sizeof (float));

  for (guint f = 0; f < G_N_ELEMENTS (normalised); f++)
    g_free (normalised[f]);
}

/* The encoder's scores are taken only unsmoothed and against the current
 * set; the kept embedding is the normalised, unsmoothed one. */
static void
test_encoder_scores (void)
{
  if (!setup ())
    return;
  const int dim = embed_dim ();
  g_autoptr (ClipLabelSet) set = clip_test_label_set (encoder, "cat,dog", NULL);
  g_autoptr (ClipLabelSet) other = clip_test_label_set (encoder, "cat,dog",
      NULL);
  g_autoptr (ClipClassifier) c = clip_classifier_new (dim);
  clip_classifier_set_label_set (c, set, NULL, NULL);
  g_autofree float *raw = embedding_new (7);
  const float logits[] = { 3, 1 }, probs[] = { 0.75f, 0.25f };
  ClipClassifyOptions options = {
    .report = CLIP_REPORT_OPTIONS_ALL,
    .smoothing = 1,
    .keep_embedding = TRUE,
  };
  ClipFrameEmbedding frame = {
    .embedding = raw,
    .pts = 0,
    .duration = 1,
    .scored_set = set,
    .logits = logits,
    .probs = probs,
  };

  ClipResult *r = classify_frame (c, &frame, &options);
  g_assert_cmpfloat (clip_result_get_probs (r)[0], ==, 0.75f);
  g_assert_cmpfloat (clip_result_get_logits (r)[0], ==, 3.0f);
  gsize size;
  const float *kept = g_bytes_get_data (clip_result_get_embedding (r), &size);
  g_autofree float *normalised = g_memdup2 (raw, dim * sizeof (float));
  clip_l2_normalize (normalised, dim);
  g_assert_cmpmem (kept, size, normalised, dim * sizeof (float));
  clip_result_unref (r);

  /* Scored against another set: scored here. */
  frame.scored_set = other;
  r = classify_frame (c, &frame, &options);
  g_assert_cmpfloat (clip_result_get_probs (r)[0], !=, 0.75f);
  clip_result_unref (r);

  /* Smoothed (two frames in the window): scored here. */
  frame.scored_set = set;
  options.smoothing = 2;
  options.keep_embedding = FALSE;
  clip_result_unref (classify_frame (c, &frame, &options));
  r = classify_frame (c, &frame, &options);
  g_assert_cmpfloat (clip_result_get_probs (r)[0], !=, 0.75f);
  g_assert_null (clip_result_get_embedding (r));
  clip_result_unref (r);
}

/* Segments of the top label, through the classifier. */
static void
test_segments (void)
{
  if (!setup ())
    return;
  g_autoptr (ClipLabelSet) set = clip_test_label_set (encoder, "cat,dog", NULL);
  g_autoptr (ClipClassifier) c = clip_classifier_new (embed_dim ());
  clip_classifier_set_label_set (c, set, NULL, NULL);
  g_autofree float *raw = embedding_new (3);
  const float cat[] = { 0.9f, 0.1f }, dog[] = { 0.2f, 0.8f };
  const ClipClassifyOptions options = {
    .report = CLIP_REPORT_OPTIONS_ALL,
    .smoothing = 1,
  };
  ClipFrameEmbedding frame = {
    .embedding = raw,
    .duration = CLIP_SECOND,
    .scored_set = set,
    .logits = cat,
    .probs = cat,
  };
  ClipSegment seg;
  ClipResult *r;

  g_assert_false (clip_classifier_classify (c, &frame, &options, &r, &seg));
  clip_result_unref (r);
  frame.pts = CLIP_SECOND;
  frame.logits = frame.probs = dog;
  g_assert_true (clip_classifier_classify (c, &frame, &options, &r, &seg));
  clip_result_unref (r);
  g_assert_cmpstr (seg.label, ==, "cat");
  g_assert_cmpuint (seg.start, ==, 0);
  g_assert_cmpuint (seg.end, ==, CLIP_SECOND);
  g_assert_cmpfloat (seg.mean_score, ==, (double) 0.9f);
  clip_segment_clear (&seg);

  g_assert_true (clip_classifier_finish (c, CLIP_TIME_NONE, &seg));
  g_assert_cmpstr (seg.label, ==, "dog");
  g_assert_cmpuint (seg.end, ==, 2 * CLIP_SECOND);
  clip_segment_clear (&seg);
  g_assert_false (clip_classifier_finish (c, CLIP_TIME_NONE, &seg));
}

/* ------------------------------------------------------------------ swap */

#define SWAPS 200

typedef struct {
  ClipClassifier *classifier;
  ClipLabelSet *sets[2];
  gint stop;
} SwapTest;

static gpointer
swapper (gpointer data)
{
  SwapTest *t = data;
  for (guint i = 0; i < SWAPS; i++)
    clip_classifier_set_label_set (t->classifier, t->sets[i % 2],
        GUINT_TO_POINTER (i % 2 + 1), NULL);
  g_atomic_int_set (&t->stop, 1);
  return NULL;
}

/* While one thread swaps the label set, every result of the other is
 * scored against the one set it holds, with that set's data. */
static void
test_swap_while_scoring (void)
{
  if (!setup ())
    return;
  const int dim = embed_dim ();
  SwapTest t = {
    .classifier = clip_classifier_new (dim),
    .sets = {
      clip_test_label_set (encoder, "cat,dog", NULL), clip_test_label_set (encoder, "car,tree,house", "sky"),
    },
  };
  clip_classifier_set_label_set (t.classifier, t.sets[0], GUINT_TO_POINTER (1),
      NULL);
  g_autofree float *raw = embedding_new (11);
  g_autofree float *normalised = g_memdup2 (raw, dim * sizeof (float));
  clip_l2_normalize (normalised, dim);
  float want[2][4];
  for (guint s = 0; s < 2; s++)
    clip_label_set_score (t.sets[s], normalised, NULL, want[s]);

  GThread *thread = g_thread_new ("swapper", swapper, &t);
  guint seen[2] = { 0, 0 };
  guint frames = 0;
  while (!g_atomic_int_get (&t.stop) || frames < 10) {
    g_autoptr (ClipResult) r = classify (t.classifier, raw, 1);
    const ClipLabelSet *set = clip_result_get_label_set (r);
    guint s = set == t.sets[0] ? 0 : 1;
    g_assert_true (set == t.sets[s]);
    g_assert_cmpuint (GPOINTER_TO_UINT (clip_result_get_label_data (r)), ==,
        s + 1);
    float got[4];
    result_probs_by_label (r, got);
    g_assert_cmpuint (clip_result_get_n_reported (r), ==, s == 0 ? 2 : 3);
    for (guint i = 0; i < clip_result_get_n_reported (r); i++) {
      guint k = clip_result_get_indices (r)[i];
      g_assert_cmpfloat (got[k], ==, want[s][k]);
    }
    seen[s]++;
    frames++;
  }
  g_thread_join (thread);
  g_assert_cmpuint (seen[0] + seen[1], ==, frames);

  clip_classifier_free (t.classifier);
  clip_label_set_unref (t.sets[0]);
  clip_label_set_unref (t.sets[1]);
}

/* ------------------------------------------------------------ lifetime */

static void
count_destroy (gpointer data)
{
  (*(guint *) data)++;
}

/* A result keeps its label set and its data past a swap and past the
 * classifier, and later frames never change it. */
static void
test_result_lifetime (void)
{
  if (!setup ())
    return;
  const int dim = embed_dim ();
  guint destroyed = 0;
  ClipClassifier *c = clip_classifier_new (dim);
  ClipLabelSet *set = clip_test_label_set (encoder, "cat,dog,bird", NULL);
  clip_classifier_set_label_set (c, set, &destroyed, count_destroy);
  clip_label_set_unref (set);

  g_autofree float *first = embedding_new (21);
  ClipResult *r = classify (c, first, 1);
  ClipFrameRecord before;
  clip_result_get_record (r, &before);
  g_autofree char *label0 = g_strdup (before.labels[0]);
  g_autofree double *scores = g_memdup2 (before.scores,
      before.n_labels * sizeof (double));

  /* Another frame and a swap: r is as it was, its data still alive. */
  g_autofree float *second = embedding_new (22);
  clip_result_unref (classify (c, second, 1));
  g_autoptr (ClipLabelSet) other = clip_test_label_set (encoder, "car,tree",
      NULL);
  clip_classifier_set_label_set (c, other, NULL, NULL);
  g_assert_cmpuint (destroyed, ==, 0);
  clip_classifier_free (c);
  g_assert_cmpuint (destroyed, ==, 0);

  ClipFrameRecord after;
  g_assert_true (clip_result_ref (r) == r);
  clip_result_unref (r);
  clip_result_get_record (r, &after);
  g_assert_cmpuint (after.n_labels, ==, before.n_labels);
  g_assert_cmpstr (after.labels[0], ==, label0);
  g_assert_cmpmem (after.scores, after.n_labels * sizeof (double), scores,
      before.n_labels * sizeof (double));
  g_assert_cmpint (clip_label_set_get_n_labels (clip_result_get_label_set (r)),
      ==, 3);
  g_assert_true (clip_result_get_label_data (r) == &destroyed);

  /* The last result gone, the set's data goes. */
  clip_result_unref (r);
  g_assert_cmpuint (destroyed, ==, 1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/classifier/rank", test_rank);
  g_test_add_func ("/classifier/report", test_report);
  g_test_add_func ("/classifier/smoothing", test_smoothing);
  g_test_add_func ("/classifier/encoder-scores", test_encoder_scores);
  g_test_add_func ("/classifier/segments", test_segments);
  g_test_add_func ("/classifier/swap-while-scoring", test_swap_while_scoring);
  g_test_add_func ("/classifier/result-lifetime", test_result_lifetime);
  int status = g_test_run ();
  g_clear_pointer (&encoder, clip_encoder_free);
  return status;
}
