/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ClipLabelSet: labels, their ensembled text embeddings and the logit
 * scale; immutable once built, so that any thread may score against it
 * while a newer set is being built. */
#include "backend.h"

#include <math.h>
#include <string.h>

/* Prompts encoded per call: bounds the text encoder's activations. */
#define PROMPT_BATCH 32
/* CLIP clamps the learned temperature at 100 (OpenAI's training code). */
#define MAX_LOGIT_SCALE 100.0f

struct _ClipLabelSet {
  gint ref_count;
  int n_labels;
  int embed_dim;
  char **labels;       /* n_labels, positives first */
  gboolean *negative;  /* n_labels */
  gboolean *truncated; /* n_labels: a prompt was cut to the context */
  float *embeddings;   /* [n_labels, embed_dim], rows L2-normalised */
  float logit_scale;
  guint64 id;
  /* Example images: label i's are rows first_example[i] up to
   * first_example[i + 1] of examples [n_examples, embed_dim]. */
  gboolean *has_text; /* n_labels: prompts or templates, not images alone */
  int *first_example; /* n_labels + 1 */
  float *examples;
  /* Some labels have text and some examples: scores add the rule's term. */
  gboolean mixed;
  ClipExemplarRule rule;
};

/* Every "{}" of the template replaced by the label. */
static char *
fill_template (const char *template, const char *label, GError **error)
{
  if (strstr (template, "{}") == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "template '%s' has no {} for the label", template);
    return NULL;
  }
  g_auto (GStrv) parts = g_strsplit (template, "{}", -1);
  return g_strjoinv (label, parts);
}

static gboolean
spec_has_text (const ClipLabelSpec *spec)
{
  return spec->examples == NULL || spec->prompts != NULL;
}

/* Appends the label's prompts to prompts: its own, or one per template;
 * none for a label defined by images alone. */
static gboolean
add_prompts (GPtrArray *prompts, const ClipLabelSpec *spec,
    const char *const *templates, GError **error)
{
  if (!spec_has_text (spec))
    return TRUE;
  if (spec->prompts != NULL && spec->prompts[0] != NULL) {
    for (char **p = spec->prompts; *p; p++)
      g_ptr_array_add (prompts, g_strdup (*p));
    return TRUE;
  }
  if (templates == NULL || templates[0] == NULL) {
    g_ptr_array_add (prompts, g_strdup (spec->label));
    return TRUE;
  }
  for (const char *const *t = templates; *t; t++) {
    char *prompt = fill_template (*t, spec->label, error);
    if (prompt == NULL)
      return FALSE;
    g_ptr_array_add (prompts, prompt);
  }
  return TRUE;
}

/* The label given both as a label and as a negative one, or NULL. */
static const char *
label_also_negative (GPtrArray *labels, GPtrArray *negative_labels)
{
  for (guint n = 0; negative_labels && n < negative_labels->len; n++) {
    const ClipLabelSpec *negative = negative_labels->pdata[n];
    for (guint i = 0; i < labels->len; i++)
      if (strcmp (((const ClipLabelSpec *) labels->pdata[i])->label,
              negative->label)
          == 0)
        return negative->label;
  }
  return NULL;
}

/* The first label with example images, or NULL. */
static const ClipLabelSpec *
label_with_examples (GPtrArray *labels)
{
  for (guint i = 0; labels && i < labels->len; i++) {
    const ClipLabelSpec *spec = labels->pdata[i];
    if (spec->examples != NULL)
      return spec;
  }
  return NULL;
}

/* The label whose example images were named but not embedded, or NULL. */
static const ClipLabelSpec *
label_missing_examples (GPtrArray *labels)
{
  for (guint i = 0; i < labels->len; i++) {
    const ClipLabelSpec *spec = labels->pdata[i];
    if (spec->examples != NULL
        && (spec->example_embeddings == NULL
            || spec->n_example_embeddings <= 0))
      return spec;
  }
  return NULL;
}

/* Copies the labels' example embeddings into the set; a label without text
 * gets their renormalised mean for its row. */
static void
add_examples (ClipLabelSet *set, GPtrArray *labels)
{
  int dim = set->embed_dim, total = 0;
  gboolean any_text = FALSE, any_examples = FALSE;
  set->first_example = g_new0 (int, set->n_labels + 1);
  for (int i = 0; i < set->n_labels; i++) {
    const ClipLabelSpec *spec = i < (int) labels->len ? labels->pdata[i] : NULL;
    set->first_example[i] = total;
    if (spec != NULL)
      total += spec->n_example_embeddings;
  }
  set->first_example[set->n_labels] = total;
  set->examples = g_new (float, (gsize) MAX (total, 1) * dim);
  for (int i = 0; i < set->n_labels; i++) {
    const ClipLabelSpec *spec = i < (int) labels->len ? labels->pdata[i] : NULL;
    int n = spec ? spec->n_example_embeddings : 0;
    any_text = any_text || set->has_text[i];
    any_examples = any_examples || n > 0;
    if (n == 0)
      continue;
    memcpy (set->examples + (gsize) set->first_example[i] * dim,
        spec->example_embeddings, (gsize) n * dim * sizeof (float));
    if (set->has_text[i])
      continue;
    float *row = set->embeddings + (gsize) i * dim;
    for (int e = 0; e < n; e++)
      for (int j = 0; j < dim; j++)
        row[j] += spec->example_embeddings[(gsize) e * dim + j];
    clip_l2_normalize (row, dim);
  }
  set->mixed = any_text && any_examples;
}

ClipLabelSet *
clip_label_set_new_with (const ClipModel *model, GPtrArray *labels,
    GPtrArray *negative_labels, const char *const *templates,
    ClipPromptEncodeFunc encode, gpointer user_data, GError **error)
{
  return clip_label_set_new_full (model, labels, negative_labels, templates,
      NULL, encode, user_data, error);
}

ClipLabelSet *
clip_label_set_new_full (const ClipModel *model, GPtrArray *labels,
    GPtrArray *negative_labels, const char *const *templates,
    const ClipExemplarRule *rule, ClipPromptEncodeFunc encode,
    gpointer user_data, GError **error)
{
  if (labels == NULL || labels->len == 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID, "empty label list");
    return NULL;
  }
  const char *both = label_also_negative (labels, negative_labels);
  if (both != NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "'%s' is both a label and a negative label: it would share its "
        "probability with itself; keep one of them",
        both);
    return NULL;
  }
  const ClipLabelSpec *negative_example = label_with_examples (negative_labels);
  if (negative_example != NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "negative label '%s': negative labels are text only, without "
        "example images",
        negative_example->label);
    return NULL;
  }
  const ClipLabelSpec *unembedded = label_missing_examples (labels);
  if (unembedded != NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "%s%slabel '%s': its example images were not embedded",
        unembedded->origin ? unembedded->origin : "",
        unembedded->origin ? ": " : "", unembedded->label);
    return NULL;
  }
  const ClipExemplarRule default_rule = CLIP_EXEMPLAR_RULE_INIT;
  if (rule == NULL)
    rule = &default_rule;
  if (!(rule->weight >= 0.0f) || !(rule->sharpness >= 0.0f)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "exemplar weight %g and sharpness %g: both must be >= 0", rule->weight,
        rule->sharpness);
    return NULL;
  }
  int n_positive = labels->len;
  int n_labels = n_positive + (negative_labels ? negative_labels->len : 0);
  const ClipConfig *config = clip_model_get_config (model);
  const ClipTokenizer *tok = clip_model_get_tokenizer (model);
  int dim = config->embed_dim;

  /* All prompts of all labels in one list; first_prompt[i] is where label
   * i's start, first_prompt[n_labels] the total. */
  g_autoptr (GPtrArray) prompts = g_ptr_array_new_with_free_func (g_free);
  g_autofree int *first_prompt = g_new (int, n_labels + 1);
  for (int i = 0; i < n_labels; i++) {
    const ClipLabelSpec *spec = i < n_positive
        ? labels->pdata[i]
        : negative_labels->pdata[i - n_positive];
    first_prompt[i] = prompts->len;
    if (!add_prompts (prompts, spec, templates, error))
      return NULL;
  }
  first_prompt[n_labels] = prompts->len;

  /* Which prompts the context cuts (the encoder would cut them silently). */
  g_autofree gboolean *cut = g_new0 (gboolean, prompts->len);
  g_autofree gint32 *ids = g_new (gint32, config->context_length);
  for (guint p = 0; p < prompts->len; p++)
    if (!clip_tokenizer_encode_full (tok, prompts->pdata[p],
            config->context_length, ids, &cut[p], error))
      return NULL;

  g_autofree float *prompt_emb = g_new (float, (gsize) prompts->len * dim);
  for (guint p = 0; p < prompts->len; p += PROMPT_BATCH) {
    int n = MIN (PROMPT_BATCH, prompts->len - p);
    if (!encode ((const char *const *) prompts->pdata + p, n,
            prompt_emb + (gsize) p * dim, user_data, error))
      return NULL;
  }

  static gsize last_id;
  ClipLabelSet *set = g_new0 (ClipLabelSet, 1);
  set->ref_count = 1;
  set->id = g_atomic_pointer_add (&last_id, 1) + 1;
  set->n_labels = n_labels;
  set->embed_dim = dim;
  set->labels = g_new0 (char *, n_labels + 1);
  set->negative = g_new0 (gboolean, n_labels);
  set->truncated = g_new0 (gboolean, n_labels);
  set->embeddings = g_new0 (float, (gsize) n_labels * dim);
  set->logit_scale = MIN (clip_model_get_logit_scale (model), MAX_LOGIT_SCALE);
  set->has_text = g_new0 (gboolean, n_labels);
  set->rule = *rule;
  for (int i = 0; i < n_labels; i++) {
    const ClipLabelSpec *spec = i < n_positive
        ? labels->pdata[i]
        : negative_labels->pdata[i - n_positive];
    set->labels[i] = g_strdup (spec->label);
    set->negative[i] = i >= n_positive;
    set->has_text[i] = spec_has_text (spec);
    /* Prompt ensembling: the mean of the normalised prompt embeddings,
     * renormalised. */
    float *row = set->embeddings + (gsize) i * dim;
    for (int p = first_prompt[i]; p < first_prompt[i + 1]; p++) {
      set->truncated[i] = set->truncated[i] || cut[p];
      for (int j = 0; j < dim; j++)
        row[j] += prompt_emb[(gsize) p * dim + j];
    }
    clip_l2_normalize (row, dim);
  }
  add_examples (set, labels);
  return set;
}

static gboolean
encode_with_encoder (const char *const *prompts, int n, float *embeddings,
    gpointer encoder, GError **error)
{
  return clip_encoder_encode_strings (encoder, prompts, n, embeddings, error);
}

ClipLabelSet *
clip_label_set_new (ClipEncoder *enc, GPtrArray *labels,
    GPtrArray *negative_labels, const char *const *templates, GError **error)
{
  return clip_label_set_new_with (clip_encoder_get_model (enc), labels,
      negative_labels, templates, encode_with_encoder, enc, error);
}

ClipLabelSet *
clip_label_set_ref (ClipLabelSet *set)
{
  g_atomic_int_inc (&set->ref_count);
  return set;
}

void
clip_label_set_unref (ClipLabelSet *set)
{
  if (set == NULL || !g_atomic_int_dec_and_test (&set->ref_count))
    return;
  g_strfreev (set->labels);
  g_free (set->negative);
  g_free (set->truncated);
  g_free (set->embeddings);
  g_free (set->has_text);
  g_free (set->first_example);
  g_free (set->examples);
  g_free (set);
}

int
clip_label_set_get_n_labels (const ClipLabelSet *set)
{
  return set->n_labels;
}

const char *
clip_label_set_get_label (const ClipLabelSet *set, int i)
{
  g_return_val_if_fail (i >= 0 && i < set->n_labels, NULL);
  return set->labels[i];
}

gboolean
clip_label_set_is_negative (const ClipLabelSet *set, int i)
{
  g_return_val_if_fail (i >= 0 && i < set->n_labels, FALSE);
  return set->negative[i];
}

gboolean
clip_label_set_is_truncated (const ClipLabelSet *set, int i)
{
  g_return_val_if_fail (i >= 0 && i < set->n_labels, FALSE);
  return set->truncated[i];
}

int
clip_label_set_get_n_examples (const ClipLabelSet *set, int i)
{
  g_return_val_if_fail (i >= 0 && i < set->n_labels, 0);
  return set->first_example[i + 1] - set->first_example[i];
}

int
clip_label_set_get_embed_dim (const ClipLabelSet *set)
{
  return set->embed_dim;
}

const float *
clip_label_set_get_embeddings (const ClipLabelSet *set)
{
  return set->embeddings;
}

float
clip_label_set_get_logit_scale (const ClipLabelSet *set)
{
  return set->logit_scale;
}

guint64
clip_label_set_get_id (const ClipLabelSet *set)
{
  return set->id;
}

gboolean
clip_encoder_classify_frames (ClipEncoder *enc, const ClipFrame *frames, int n,
    const ClipLabelSet *set, float *embeddings, float *logits, float *probs,
    GError **error)
{
  const ClipModel *model = clip_encoder_get_model (enc);
  int dim = clip_model_get_config (model)->embed_dim;
  if (set->embed_dim != dim) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "the labels were embedded in %d dimensions, %s embeds in %d",
        set->embed_dim, clip_model_get_name (model), dim);
    return FALSE;
  }
  ClipBackendLabels labels = { set->embeddings, set->n_labels, set->logit_scale,
    clip_label_set_get_id (set) };
  gboolean scored = FALSE;
  /* A backend scores cosines only: the examples' term of a mixed set is
   * added here. */
  if (set->mixed) {
    if (!clip_encoder_encode_frames (enc, frames, n, embeddings, error))
      return FALSE;
  } else if (!clip_encoder_encode_and_score_frames (enc, frames, n, &labels,
                 embeddings, logits, probs, &scored, error))
    return FALSE;
  gsize L = set->n_labels;
  for (int i = 0; !scored && i < n; i++)
    clip_label_set_score (set, embeddings + (gsize) i * dim,
        logits ? logits + i * L : NULL, probs ? probs + i * L : NULL);
  return TRUE;
}

/* Tip-Adapter's cache term on logits (scale * cosine so far): each label's
 * weight * sum of exp(-sharpness * (1 - cosine)) over its examples. Before
 * that, the labels with images alone (scored by the cosine to their
 * examples' mean) are moved as a group so that their mean logit is that of
 * the labels with text: image-to-image cosines run higher than
 * image-to-text ones (the modality gap), which would otherwise make them
 * win by construction. */
static void
add_exemplar_term (const ClipLabelSet *set, const float *image_embedding,
    double inv_norm, float *logits)
{
  int dim = set->embed_dim, n_text = 0, n_images = 0;
  double text_sum = 0.0, images_sum = 0.0;
  for (int i = 0; i < set->n_labels; i++)
    if (set->has_text[i]) {
      text_sum += logits[i];
      n_text++;
    } else {
      images_sum += logits[i];
      n_images++;
    }
  /* mixed: n_text > 0 */
  double shift = n_images > 0 ? text_sum / n_text - images_sum / n_images : 0;
  for (int i = 0; i < set->n_labels; i++) {
    double affinity = 0.0;
    for (int e = set->first_example[i]; e < set->first_example[i + 1]; e++) {
      const float *example = set->examples + (gsize) e * dim;
      double dot = 0.0;
      for (int j = 0; j < dim; j++)
        dot += (double) example[j] * image_embedding[j];
      affinity += exp (-set->rule.sharpness * (1.0 - dot * inv_norm));
    }
    double base = set->has_text[i] ? logits[i] : logits[i] + shift;
    logits[i] = (float) (base + set->rule.weight * affinity);
  }
}

void
clip_label_set_score (const ClipLabelSet *set, const float *image_embedding,
    float *logits, float *probs)
{
  int dim = set->embed_dim;
  double norm = 0.0;
  for (int j = 0; j < dim; j++)
    norm += (double) image_embedding[j] * image_embedding[j];
  /* A zero embedding has no direction: every cosine is 0. */
  double inv_norm = norm > 0.0 ? 1.0 / sqrt (norm) : 0.0;

  float *out = logits ? logits : probs;
  if (out == NULL)
    return;
  for (int i = 0; i < set->n_labels; i++) {
    const float *row = set->embeddings + (gsize) i * dim;
    double dot = 0.0;
    for (int j = 0; j < dim; j++)
      dot += (double) row[j] * image_embedding[j];
    out[i] = (float) (set->logit_scale * dot * inv_norm);
  }
  if (set->mixed)
    add_exemplar_term (set, image_embedding, inv_norm, out);
  if (probs) {
    if (probs != out)
      memcpy (probs, out, set->n_labels * sizeof (float));
    clip_softmax (probs, set->n_labels);
  }
}
