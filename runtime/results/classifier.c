/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "classifier.h"

#include <string.h>

static int
compare_descending (gconstpointer a, gconstpointer b, gpointer user_data)
{
  const float *values = user_data;
  guint i = *(const guint *) a, j = *(const guint *) b;
  int by_value = (values[i] < values[j]) - (values[i] > values[j]);
  return by_value != 0 ? by_value : (i > j) - (i < j);
}

void
clip_rank_descending (const float *values, guint n, guint *order)
{
  for (guint i = 0; i < n; i++)
    order[i] = i;
  g_qsort_with_data (order, n, sizeof *order, compare_descending,
      (gpointer) values);
}

/* ------------------------------------------------------------------ labels */

/* A label set with its owner's data, shared by the classifier and every
 * result scored against it. */
typedef struct {
  ClipLabelSet *set;
  gpointer data;
  GDestroyNotify destroy;
} Labels;

static void
labels_clear (Labels *labels)
{
  clip_label_set_unref (labels->set);
  if (labels->destroy != NULL)
    labels->destroy (labels->data);
}

static Labels *
labels_new (ClipLabelSet *set, gpointer data, GDestroyNotify destroy)
{
  Labels *labels = g_atomic_rc_box_new0 (Labels);
  labels->set = clip_label_set_ref (set);
  labels->data = data;
  labels->destroy = destroy;
  return labels;
}

static Labels *
labels_ref (Labels *labels)
{
  return g_atomic_rc_box_acquire (labels);
}

static void
labels_unref (Labels *labels)
{
  if (labels != NULL)
    g_atomic_rc_box_release_full (labels, (GDestroyNotify) labels_clear);
}

/* ------------------------------------------------------------------ result */

struct _ClipResult {
  Labels *labels;
  guint n_reported;
  guint *indices;     /* [n_reported] into the label set, best first */
  float *probs;       /* [n_reported] */
  float *logits;      /* [n_reported] */
  const char **names; /* [n_reported], the set's strings */
  double *scores;     /* [n_reported], probs as the record has them */
  int top;            /* 0, or -1 for none */
  float top_score;    /* probability of the top label, 0 when none */
  ClipTime pts, duration;
  GBytes *embedding;
};

static void
result_clear (ClipResult *r)
{
  labels_unref (r->labels);
  g_free (r->indices);
  g_free (r->probs);
  g_free (r->logits);
  g_free (r->names);
  g_free (r->scores);
  g_clear_pointer (&r->embedding, g_bytes_unref);
}

/* Takes the ref on labels. */
static ClipResult *
result_new (Labels *labels, const float *logits, const float *probs,
    const ClipReportOptions *report, ClipTime pts, ClipTime duration)
{
  const ClipLabelSet *set = labels->set;
  const guint n = clip_label_set_get_n_labels (set);
  g_autofree guint *order = g_new (guint, n);
  clip_rank_descending (probs, n, order);

  ClipResult *r = g_atomic_rc_box_new0 (ClipResult);
  r->labels = labels;
  r->indices = g_new (guint, n);
  r->probs = g_new (float, n);
  r->logits = g_new (float, n);
  for (guint i = 0; i < n && r->n_reported < report->top_k; i++) {
    guint k = order[i];
    if (clip_label_set_is_negative (set, (int) k)
        || probs[k] < report->threshold)
      continue;
    r->indices[r->n_reported] = k;
    r->probs[r->n_reported] = probs[k];
    r->logits[r->n_reported] = logits[k];
    r->n_reported++;
  }
  r->names = g_new (const char *, r->n_reported);
  r->scores = g_new (double, r->n_reported);
  for (guint i = 0; i < r->n_reported; i++) {
    r->names[i] = clip_label_set_get_label (set, (int) r->indices[i]);
    r->scores[i] = r->probs[i];
  }
  /* A negative label that wins means "none of these". */
  r->top = r->n_reported > 0 && r->indices[0] == order[0] ? 0 : -1;
  r->top_score = r->top >= 0 ? r->probs[0] : 0.0f;
  r->pts = pts;
  r->duration = duration;
  return r;
}

ClipResult *
clip_result_new (ClipLabelSet *set, const float *logits, const float *probs,
    const ClipReportOptions *report, ClipTime pts, ClipTime duration)
{
  return result_new (labels_new (set, NULL, NULL), logits, probs, report, pts,
      duration);
}

ClipResult *
clip_result_ref (ClipResult *result)
{
  return g_atomic_rc_box_acquire (result);
}

void
clip_result_unref (ClipResult *result)
{
  if (result != NULL)
    g_atomic_rc_box_release_full (result, (GDestroyNotify) result_clear);
}

ClipLabelSet *
clip_result_get_label_set (const ClipResult *result)
{
  return result->labels->set;
}

gpointer
clip_result_get_label_data (const ClipResult *result)
{
  return result->labels->data;
}

guint
clip_result_get_n_reported (const ClipResult *result)
{
  return result->n_reported;
}

const guint *
clip_result_get_indices (const ClipResult *result)
{
  return result->indices;
}

const float *
clip_result_get_probs (const ClipResult *result)
{
  return result->probs;
}

const float *
clip_result_get_logits (const ClipResult *result)
{
  return result->logits;
}

int
clip_result_get_top (const ClipResult *result)
{
  return result->top;
}

GBytes *
clip_result_get_embedding (const ClipResult *result)
{
  return result->embedding;
}

void
clip_result_get_record (const ClipResult *result, ClipFrameRecord *record)
{
  *record = (ClipFrameRecord) {
    .pts = result->pts,
    .duration = result->duration,
    .n_labels = result->n_reported,
    .labels = result->names,
    .scores = result->scores,
    .top_label = result->top >= 0 ? result->names[0] : NULL,
    .top_score = result->top_score,
  };
}

/* -------------------------------------------------------------- classifier */

struct _ClipClassifier {
  /* Guards everything below; held while a frame is classified, which is
   * short (a dot product per label), and while the label set is swapped. */
  GMutex lock;
  int embed_dim;
  Labels *labels;
  /* [window_capacity, embed_dim] ring of normalised embeddings */
  float *window;
  guint window_capacity, window_count, window_next;
  ClipSegmenter segmenter;
};

ClipClassifier *
clip_classifier_new (int embed_dim)
{
  g_return_val_if_fail (embed_dim > 0, NULL);
  ClipClassifier *c = g_new0 (ClipClassifier, 1);
  g_mutex_init (&c->lock);
  c->embed_dim = embed_dim;
  return c;
}

void
clip_classifier_free (ClipClassifier *c)
{
  if (c == NULL)
    return;
  labels_unref (c->labels);
  g_free (c->window);
  clip_segmenter_reset (&c->segmenter);
  g_mutex_clear (&c->lock);
  g_free (c);
}

void
clip_classifier_set_label_set (ClipClassifier *c, ClipLabelSet *set,
    gpointer data, GDestroyNotify destroy)
{
  g_return_if_fail (clip_label_set_get_embed_dim (set) == c->embed_dim);
  Labels *labels = labels_new (set, data, destroy);
  g_mutex_lock (&c->lock);
  Labels *old = c->labels;
  c->labels = labels;
  g_mutex_unlock (&c->lock);
  labels_unref (old);
}

ClipLabelSet *
clip_classifier_get_label_set (ClipClassifier *c)
{
  g_mutex_lock (&c->lock);
  ClipLabelSet *set = c->labels ? clip_label_set_ref (c->labels->set) : NULL;
  g_mutex_unlock (&c->lock);
  return set;
}

ClipResult *
clip_classifier_score (ClipClassifier *c, const float *embedding,
    const ClipReportOptions *report, ClipTime pts, ClipTime duration)
{
  g_mutex_lock (&c->lock);
  g_assert (c->labels != NULL);
  Labels *labels = labels_ref (c->labels);
  g_mutex_unlock (&c->lock);

  const int n = clip_label_set_get_n_labels (labels->set);
  g_autofree float *logits = g_new (float, n);
  g_autofree float *probs = g_new (float, n);
  clip_label_set_score (labels->set, embedding, logits, probs);
  return result_new (labels, logits, probs, report, pts, duration);
}

/* Adds a normalised embedding to the window and sums the window into
 * smoothed. Called with the lock held. */
static void
window_push (ClipClassifier *c, const float *normalised, guint smoothing,
    float *smoothed)
{
  const int dim = c->embed_dim;
  if (c->window_capacity != smoothing) {
    c->window = g_renew (float, c->window, (gsize) smoothing * dim);
    c->window_capacity = smoothing;
    c->window_count = c->window_next = 0;
  }
  memcpy (c->window + (gsize) c->window_next * dim, normalised,
      dim * sizeof (float));
  c->window_next = (c->window_next + 1) % c->window_capacity;
  c->window_count = MIN (c->window_count + 1, c->window_capacity);

  memset (smoothed, 0, dim * sizeof (float));
  for (guint w = 0; w < c->window_count; w++)
    for (int d = 0; d < dim; d++)
      smoothed[d] += c->window[(gsize) w * dim + d];
}

gboolean
clip_classifier_classify (ClipClassifier *c, const ClipFrameEmbedding *frame,
    const ClipClassifyOptions *options, ClipResult **result, ClipSegment *ended)
{
  g_return_val_if_fail (options->smoothing >= 1, FALSE);
  const int dim = c->embed_dim;
  g_autofree float *normalised = g_memdup2 (frame->embedding,
      dim * sizeof (float));
  clip_l2_normalize (normalised, dim);
  g_autofree float *smoothed = g_new (float, dim);

  g_mutex_lock (&c->lock);
  g_assert (c->labels != NULL);
  window_push (c, normalised, options->smoothing, smoothed);

  const ClipLabelSet *set = c->labels->set;
  const int n = clip_label_set_get_n_labels (set);
  g_autofree float *logits = g_new (float, n);
  g_autofree float *probs = g_new (float, n);
  if (frame->scored_set == set && c->window_count == 1) {
    /* Unsmoothed, and scored by the encoder against these very labels. */
    memcpy (logits, frame->logits, n * sizeof (float));
    memcpy (probs, frame->probs, n * sizeof (float));
  } else {
    clip_label_set_score (set, smoothed, logits, probs);
  }
  ClipResult *r = result_new (labels_ref (c->labels), logits, probs,
      &options->report, frame->pts, frame->duration);
  if (options->keep_embedding)
    r->embedding = g_bytes_new_take (g_steal_pointer (&normalised),
        dim * sizeof (float));

  ClipTime end = frame->pts;
  if (CLIP_TIME_IS_VALID (frame->pts) && CLIP_TIME_IS_VALID (frame->duration))
    end = frame->pts + frame->duration;
  ClipFrameRecord record;
  clip_result_get_record (r, &record);
  gboolean segment_ended = clip_segmenter_push (&c->segmenter, record.top_label,
      frame->pts, end, record.top_score, options->min_segment, ended);
  g_mutex_unlock (&c->lock);

  *result = r;
  return segment_ended;
}

gboolean
clip_classifier_hold (ClipClassifier *c, ClipTime end, ClipTime min_segment,
    ClipSegment *ended)
{
  g_mutex_lock (&c->lock);
  gboolean segment_ended = clip_segmenter_hold (&c->segmenter, end, min_segment,
      ended);
  g_mutex_unlock (&c->lock);
  return segment_ended;
}

void
clip_classifier_reset_window (ClipClassifier *c)
{
  g_mutex_lock (&c->lock);
  c->window_count = c->window_next = 0;
  g_mutex_unlock (&c->lock);
}

void
clip_classifier_reset (ClipClassifier *c)
{
  g_mutex_lock (&c->lock);
  c->window_count = c->window_next = 0;
  clip_segmenter_reset (&c->segmenter);
  g_mutex_unlock (&c->lock);
}

gboolean
clip_classifier_finish (ClipClassifier *c, ClipTime stream_end,
    ClipSegment *last)
{
  g_mutex_lock (&c->lock);
  gboolean open = clip_segmenter_finish (&c->segmenter, stream_end, last);
  c->window_count = c->window_next = 0;
  g_mutex_unlock (&c->lock);
  return open;
}
