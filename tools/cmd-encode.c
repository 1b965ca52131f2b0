/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gst-clip tokenize, embed and classify: the runtime's encoders on the
 * command line, with output meant for scripts. */
#include "commands.h"
#include "classifier.h"
#include "exemplars.h"
#include "json.h"
#include "record.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- tokenize */

int
tool_cmd_tokenize (int argc, char **argv)
{
  g_auto (ToolModelOptions) opts = { 0 };
  int status = TOOL_EXIT_OK;
  g_autoptr (GOptionContext) ctx = tool_option_context_new ("TEXT...",
      "Prints, for each TEXT, one line of the model's context length of token\n"
      "ids separated by spaces, as OpenAI's clip.tokenize(text, truncate=True):\n"
      "start token, BPE ids, end token, zero padding.\n"
      "Put -- before the texts when one starts with '-'.",
      NULL, NULL, &opts, FALSE);

  g_autoptr (ClipModel) model = NULL;
  if (!tool_parse (ctx, &argc, &argv, &status))
    return status;
  if (argc < 2)
    return tool_usage_error ("tokenize", "no TEXT given");
  if (!(model = tool_load_model ("tokenize", &opts, &status)))
    return status;

  const ClipTokenizer *tok = clip_model_get_tokenizer (model);
  int context_length = clip_model_get_config (model)->context_length;
  g_autofree gint32 *ids = g_new (gint32, context_length);
  for (int i = 1; i < argc; i++) {
    GError *error = NULL;
    if (!clip_tokenizer_encode (tok, argv[i], context_length, ids, &error)) {
      g_prefix_error (&error, "TEXT %d: ", i);
      return tool_fail (error);
    }
    for (int j = 0; j < context_length; j++)
      printf (j ? " %d" : "%d", ids[j]);
    putchar ('\n');
    if (ferror (stdout))
      break; /* gst-clip's main says why */
  }

  return status;
}

/* ------------------------------------------------------------------- embed */

typedef enum {
  INPUT_IMAGE,
  INPUT_PRE,
  INPUT_TEXT,
} InputKind;

typedef struct {
  InputKind kind;
  char *value;
  guint text_number; /* 1 for the first --text, ... */
} EmbedInput;

static void
embed_input_clear (gpointer data)
{
  g_free (((EmbedInput *) data)->value);
}

/* One callback for --image, --pre and --text keeps them in command-line
 * order, which is the output order. */
static gboolean
add_embed_input (const char *option_name, const char *value, gpointer data,
    GError **error)
{
  EmbedInput input = { .value = g_strdup (value) };
  if (strcmp (option_name, "--image") == 0)
    input.kind = INPUT_IMAGE;
  else if (strcmp (option_name, "--pre") == 0)
    input.kind = INPUT_PRE;
  else
    input.kind = INPUT_TEXT;
  GArray *inputs = data;
  if (input.kind == INPUT_TEXT) {
    input.text_number = 1;
    for (guint i = 0; i < inputs->len; i++)
      input.text_number += g_array_index (inputs, EmbedInput, i).kind
          == INPUT_TEXT;
  }
  g_array_append_val (inputs, input);
  return TRUE;
}

/* A raw little-endian float32 CHW tensor of exactly n values. */
static gboolean
read_pre_tensor (const char *path, float *tensor, gsize n, GError **error)
{
  g_autofree char *contents = NULL;
  gsize length;
  GError *local = NULL;
  if (!g_file_get_contents (path, &contents, &length, &local)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s", local->message);
    g_error_free (local);
    return FALSE;
  }
  if (length != n * sizeof (float)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "%s: %" G_GSIZE_FORMAT " bytes, expected %" G_GSIZE_FORMAT
        " (float32 CHW tensor of the model's input size)",
        path, length, n * sizeof (float));
    return FALSE;
  }
  for (gsize i = 0; i < n; i++) {
    guint32 bits;
    memcpy (&bits, contents + i * sizeof bits, sizeof bits);
    bits = GUINT32_FROM_LE (bits);
    memcpy (&tensor[i], &bits, sizeof bits);
  }
  return TRUE;
}

static gboolean
embed_one (ClipEncoder *enc, const EmbedInput *input, float *tensor,
    gint32 *ids, float *embedding, GError **error)
{
  ClipModel *model = clip_encoder_get_model (enc);
  const ClipConfig *config = clip_model_get_config (model);
  gsize tensor_size = 3 * (gsize) config->image_size * config->image_size;

  gboolean ok = FALSE;
  switch (input->kind) {
    case INPUT_IMAGE:
      if (!tool_load_image_tensor (input->value, config, tensor, error))
        return FALSE;
      ok = clip_encoder_encode_images (enc, tensor, 1, embedding, error);
      break;
    case INPUT_PRE:
      if (!read_pre_tensor (input->value, tensor, tensor_size, error))
        return FALSE;
      ok = clip_encoder_encode_images (enc, tensor, 1, embedding, error);
      break;
    case INPUT_TEXT:
      ok = clip_tokenizer_encode (clip_model_get_tokenizer (model),
               input->value, config->context_length, ids, error)
          && clip_encoder_encode_texts (enc, ids, 1, embedding, error);
      break;
  }
  if (ok)
    return TRUE;
  /* Say which input it was; a text has no file name. */
  if (input->kind == INPUT_TEXT)
    g_prefix_error (error, "--text number %u: ", input->text_number);
  else
    g_prefix_error (error, "%s: ", input->value);
  return FALSE;
}

int
tool_cmd_embed (int argc, char **argv)
{
  g_auto (ToolModelOptions) opts = { 0 };
  gboolean raw = FALSE;
  int status = TOOL_EXIT_OK;
  g_autoptr (GArray) inputs = g_array_new (FALSE, FALSE, sizeof (EmbedInput));
  g_array_set_clear_func (inputs, embed_input_clear);

  g_autoptr (GOptionContext) ctx = tool_option_context_new (
      "(--image FILE | --pre FILE.f32 | --text TEXT)...",
      "Prints one line per input, in command-line order: the embedding's\n"
      "floats separated by spaces (%.9g), L2-normalised unless --raw.",
      NULL, NULL, NULL, FALSE);
  GOptionGroup *main_group = g_option_group_new (NULL, NULL, NULL, inputs,
      NULL);
  g_option_context_set_main_group (ctx, main_group);
  const GOptionEntry entries[] = {
    { "image", 'i', G_OPTION_FLAG_FILENAME, G_OPTION_ARG_CALLBACK,
        add_embed_input,
        "An image file (PNG, JPEG, ...), decoded and "
        "preprocessed as CLIP does",
        "FILE" },
    { "pre", 'p', G_OPTION_FLAG_FILENAME, G_OPTION_ARG_CALLBACK,
        add_embed_input,
        "An already preprocessed image: raw little-endian "
        "float32, CHW, 3 x S x S for the model's input size S",
        "FILE.f32" },
    { "text", 't', G_OPTION_FLAG_FILENAME, G_OPTION_ARG_CALLBACK,
        add_embed_input, "A text (UTF-8)", "TEXT" },
    { "raw", 0, 0, G_OPTION_ARG_NONE, &raw,
        "Print the embeddings as the encoder gives them, not normalised",
        NULL },
    { NULL },
  };
  g_option_context_add_main_entries (ctx, entries, NULL);
  tool_add_model_options (ctx, &opts, TRUE);

  g_autoptr (ClipModel) model = NULL;
  g_autoptr (ClipEncoder) enc = NULL;
  if (!tool_parse (ctx, &argc, &argv, &status))
    return status;
  if (argc > 1)
    return tool_usage_error ("embed",
        "unexpected argument '%s' (inputs "
        "are given with --image, --pre or --text)",
        argv[1]);
  if (inputs->len == 0)
    return tool_usage_error ("embed",
        "no input: give --image, --pre or "
        "--text");
  if (!(model = tool_load_model ("embed", &opts, &status)))
    return status;
  if (!(enc = tool_open_encoder ("embed", model, &opts, FALSE, &status)))
    return status;

  const ClipConfig *config = clip_model_get_config (model);
  g_autofree float *tensor = g_new (float,
      3 * (gsize) config->image_size * config->image_size);
  g_autofree gint32 *ids = g_new (gint32, config->context_length);
  g_autofree float *embedding = g_new (float, config->embed_dim);
  for (guint i = 0; i < inputs->len; i++) {
    GError *error = NULL;
    if (!embed_one (enc,
            &g_array_index (inputs, EmbedInput, i), tensor, ids, embedding,
                &error))
      return tool_fail (error);
    if (!raw)
      clip_l2_normalize (embedding, config->embed_dim);
    for (int j = 0; j < config->embed_dim; j++)
      printf (j ? " %.9g" : "%.9g", embedding[j]);
    putchar ('\n');
    if (ferror (stdout))
      break; /* gst-clip's main says why */
  }

  return status;
}

/* ---------------------------------------------------------------- classify */

static GPtrArray *
parse_label_list (const char *option, const char *text, GError **error)
{
  if (!g_utf8_validate (text, -1, NULL)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "%s: invalid UTF-8 text", option);
    return NULL;
  }
  return clip_labels_parse_list (text);
}

/* The labels from --labels and --labels-file, in that order. */
static GPtrArray *
collect_labels (const char *list, const char *file, GError **error)
{
  g_autoptr (GPtrArray) labels = NULL;
  if (list && !(labels = parse_label_list ("--labels", list, error)))
    return NULL;
  if (file) {
    GPtrArray *from_file = clip_labels_parse_file (file, error);
    if (from_file == NULL)
      return NULL;
    if (labels == NULL)
      return from_file;
    g_ptr_array_extend_and_steal (labels, from_file);
  }
  return g_steal_pointer (&labels);
}

static gboolean
encode_prompts (const char *const *prompts, int n, float *embeddings,
    gpointer encoder, GError **error)
{
  return clip_encoder_encode_strings (encoder, prompts, n, embeddings, error);
}

static gboolean
encode_frame (const ClipFrame *frame, float *embedding, gpointer encoder,
    GError **error)
{
  return clip_encoder_encode_frames (encoder, frame, 1, embedding, error);
}

/* The label set, the labels file's example images embedded through its
 * cache (FILE.exemplars); what the cache gave is said on stderr. */
static ClipLabelSet *
build_label_set (ClipEncoder *enc, GPtrArray *labels, GPtrArray *negatives,
    char **templates, const char *labels_file, const ClipExemplarRule *rule,
    GError **error)
{
  ClipModel *model = clip_encoder_get_model (enc);
  if (clip_labels_have_examples (labels)) {
    g_autofree char *cache_path = clip_exemplar_cache_path (labels_file);
    ClipExemplarStats stats = { 0 };
    if (!clip_exemplars_embed (model, labels, cache_path, encode_frame, enc,
            &stats, error))
      return NULL;
    g_printerr ("gst-clip classify: %u example images: %u from the cache, "
                "%u embedded%s%s\n",
        stats.n_images, stats.from_cache, stats.embedded,
        stats.cache_note ? "; " : "", stats.cache_note ? stats.cache_note : "");
    clip_exemplar_stats_clear (&stats);
  }
  return clip_label_set_new_full (model, labels, negatives,
      (const char *const *) templates, rule, encode_prompts, enc, error);
}

static char **
collect_templates (char **options, GError **error)
{
  if (options == NULL || options[0] == NULL)
    return g_strdupv ((char *[]) { (char *) "a photo of a {}.", NULL });
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  for (char **t = options; *t; t++) {
    if (!g_utf8_validate (*t, -1, NULL)) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
          "--template: invalid UTF-8 text");
      return NULL;
    }
    g_auto (GStrv) parts = clip_templates_parse (*t);
    g_strv_builder_addv (builder, (const char **) parts);
  }
  return g_strv_builder_end (builder);
}

/* The result's record as a JSON object, with the image's name. Its "top" is
 * the best reported label even when a negative label scores higher:
 * classify lists every label that is not negative, best first. */
static char *
result_json_line (const char *image, const ClipResult *result)
{
  ClipFrameRecord record;
  clip_result_get_record (result, &record);

  /* Every digit of the float probabilities, as json-glib wrote them. */
  GString *s = g_string_new ("{");
  clip_json_append_member (s, clip_field_json_name (CLIP_FIELD_IMAGE));
  clip_json_append_string (s, image);
  clip_json_append_member (s, clip_field_json_name (CLIP_FIELD_LABELS));
  clip_json_append_string_array (s, record.labels, record.n_labels);
  clip_json_append_member (s, clip_field_json_name (CLIP_FIELD_SCORES));
  clip_json_append_double_array (s, record.scores, record.n_labels,
      CLIP_JSON_EXACT_DIGITS);
  clip_json_append_member (s, clip_field_json_name (CLIP_FIELD_TOP_LABEL));
  /* null when a negative label won (clip_result_get_top), as in every
   * other output. */
  clip_json_append_string (s, record.top_label);
  g_string_append_c (s, '}');
  return g_string_free (s, FALSE);
}

int
tool_cmd_classify (int argc, char **argv)
{
  g_auto (ToolModelOptions) opts = { 0 };
  g_autofree char *labels_list = NULL;
  g_autofree char *labels_file = NULL;
  g_autofree char *negative_list = NULL;
  g_auto (GStrv) template_options = NULL;
  ClipExemplarRule rule = CLIP_EXEMPLAR_RULE_INIT;
  double exemplar_weight = rule.weight, exemplar_sharpness = rule.sharpness;
  int status = TOOL_EXIT_OK;

  const GOptionEntry entries[] = {
    { "labels", 'l', 0, G_OPTION_ARG_FILENAME, &labels_list,
        "Comma-separated labels", "\"a,b,c\"" },
    { "labels-file", 0, 0, G_OPTION_ARG_FILENAME, &labels_file,
        "Read labels from a file (added after --labels)", "FILE" },
    { "negative-labels", 0, 0, G_OPTION_ARG_FILENAME, &negative_list,
        "Comma-separated labels that take part in the softmax but are never "
        "reported",
        "\"x,y\"" },
    { "template", 'T', 0, G_OPTION_ARG_FILENAME_ARRAY, &template_options,
        "Prompt template, {} is the label; repeat it or separate with '|' "
        "(default: \"a photo of a {}.\")",
        "TEMPLATE" },
    { "exemplar-weight", 0, 0, G_OPTION_ARG_DOUBLE, &exemplar_weight,
        "Labels with text and labels with example images together: weight of "
        "the examples' affinities (Tip-Adapter's alpha, default 1)",
        "ALPHA" },
    { "exemplar-sharpness", 0, 0, G_OPTION_ARG_DOUBLE, &exemplar_sharpness,
        "Sharpness of an example's affinity exp(-beta (1 - cosine)) "
        "(Tip-Adapter's beta, default 5.5)",
        "BETA" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = tool_option_context_new ("IMAGE...",
      "Scores each IMAGE against the labels and prints one JSON object per\n"
      "line: {\"image\": FILE, \"labels\": [...], \"scores\": [...], \"top\": LABEL}\n"
      "with the labels sorted by probability (softmax of exp(logit_scale) x\n"
      "cosine over all labels, negative ones included; those are not listed,\n"
      "and when one wins, top is null: none of the labels).",
      "A labels file has one label per line; 'label: prompt one | prompt two'\n"
      "gives a label its own prompts instead of the templates. '#' starts a\n"
      "comment. Each label's text embedding is the renormalised mean of its\n"
      "prompts' normalised embeddings (the CLIP paper's prompt ensembling).\n"
      "'label: @folder/ | @image.jpg' defines a label by example images\n"
      "(relative to the labels file; their embeddings are cached in\n"
      "FILE.exemplars): scored by the cosine to their mean, or, beside text\n"
      "labels, by Tip-Adapter's rule (docs/labels.md).\n",
      entries, &opts, TRUE);

  g_autoptr (ClipModel) model = NULL;
  g_autoptr (ClipEncoder) enc = NULL;
  g_autoptr (GPtrArray) labels = NULL;
  g_autoptr (GPtrArray) negatives = NULL;
  g_auto (GStrv) templates = NULL;
  g_autoptr (ClipLabelSet) set = NULL;
  GError *error = NULL;

  if (!tool_parse (ctx, &argc, &argv, &status))
    return status;
  if (labels_list == NULL && labels_file == NULL)
    return tool_usage_error ("classify",
        "no labels: give --labels or "
        "--labels-file");
  if (argc < 2)
    return tool_usage_error ("classify", "no IMAGE given");
  if (!tool_check_double_range ("classify", "--exemplar-weight",
          exemplar_weight, 0, 1000, &status)
      || !tool_check_double_range ("classify", "--exemplar-sharpness",
          exemplar_sharpness, 0, 1000, &status))
    return status;
  rule.weight = exemplar_weight;
  rule.sharpness = exemplar_sharpness;
  if (!(labels = collect_labels (labels_list, labels_file, &error))
      || (negative_list
          && !(negatives = parse_label_list ("--negative-labels", negative_list,
                   &error)))
      || !(templates = collect_templates (template_options, &error)))
    return tool_fail (error);
  if (labels->len == 0)
    return tool_usage_error ("classify",
        "no labels: the label list is "
        "empty");
  guint n_all = labels->len + (negatives ? negatives->len : 0);
  if (n_all > TOOL_MAX_LABELS)
    return tool_fail (g_error_new (CLIP_ERROR, CLIP_ERROR_INVALID,
        "%u labels: at most %d, negative ones included", n_all,
        TOOL_MAX_LABELS));

  if (!(model = tool_load_model ("classify", &opts, &status))
      || !(enc = tool_open_encoder ("classify", model, &opts, FALSE, &status)))
    return status;
  if (!(set = build_label_set (enc, labels, negatives, templates, labels_file,
            &rule, &error)))
    return tool_fail (error);
  tool_warn_truncated_labels (set, model);

  const ClipConfig *config = clip_model_get_config (model);
  g_autofree float *tensor = g_new (float,
      3 * (gsize) config->image_size * config->image_size);
  g_autofree float *embedding = g_new (float, config->embed_dim);
  const int n_labels = clip_label_set_get_n_labels (set);
  g_autofree float *logits = g_new (float, n_labels);
  g_autofree float *probs = g_new (float, n_labels);
  const ClipReportOptions report = CLIP_REPORT_OPTIONS_ALL;
  /* A bad image is reported and skipped, so one file does not stop a batch;
   * the exit status still says that something failed. */
  for (int i = 1; i < argc; i++) {
    if (!tool_load_image_tensor (argv[i], config, tensor, &error)) {
      status = tool_fail (g_steal_pointer (&error));
      continue;
    }
    if (!clip_encoder_encode_images (enc, tensor, 1, embedding, &error)) {
      g_prefix_error (&error, "%s: ", argv[i]);
      status = tool_fail (g_steal_pointer (&error));
      continue;
    }
    clip_label_set_score (set, embedding, logits, probs);
    g_autoptr (ClipResult) result = clip_result_new (set, logits, probs,
        &report, CLIP_TIME_NONE, CLIP_TIME_NONE);
    /* JSON strings must be UTF-8, file names need not be. */
    g_autofree char *name = g_filename_display_name (argv[i]);
    g_autofree char *line = result_json_line (name, result);
    puts (line);
    if (ferror (stdout))
      break; /* gst-clip's main says why */
  }

  return status;
}
