/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gst-clip eval: zero-shot top-1 accuracy of a model on the synthetic
 * world's held-out frames. */
#include "commands.h"
#include "synthetic.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_TEMPLATE "a photo of a {}."

/* Top-1 accuracy of set: each frame against every label's prompt (the
 * template with {} replaced by the label). predictions (may be NULL) gets
 * a line per frame: set_name, the frame's index, its truth and the top-1
 * label. */
static gboolean
zero_shot_accuracy (ClipEncoder *enc, const SyntheticEvalSet *set,
    const char *template, const char *set_name, FILE *predictions,
    double *accuracy, GError **error)
{
  const ClipConfig *config = clip_model_get_config (
      clip_encoder_get_model (enc));
  int e = config->embed_dim, n_labels = g_strv_length (set->labels);
  gsize image = 3 * (gsize) config->image_size * config->image_size;
  g_auto (GStrv) prompts = g_new0 (char *, n_labels + 1);
  g_auto (GStrv) parts = g_strsplit (template, "{}", -1);
  for (int j = 0; j < n_labels; j++)
    prompts[j] = g_strjoinv (set->labels[j], parts);
  g_autofree float *text = g_new (float, (gsize) n_labels * e);
  if (!clip_encoder_encode_strings (enc, (const char *const *) prompts,
          n_labels, text, error))
    return FALSE;
  const int chunk = 32;
  g_autofree float *img = g_new (float, (gsize) chunk * e);
  int correct = 0;
  for (int start = 0; start < set->n; start += chunk) {
    int count = MIN (chunk, set->n - start);
    if (!clip_encoder_encode_images (enc, set->pixels + start * image, count,
            img, error))
      return FALSE;
    for (int i = 0; i < count; i++) {
      int best = 0;
      double best_score = -G_MAXDOUBLE;
      for (int j = 0; j < n_labels; j++) {
        double score = 0.0;
        for (int k = 0; k < e; k++)
          score += (double) img[i * e + k] * text[j * e + k];
        if (score > best_score) {
          best_score = score;
          best = j;
        }
      }
      correct += best == set->truth[start + i];
      if (predictions != NULL)
        fprintf (predictions, "%s\t%d\t%s\t%s\n", set_name, start + i,
            set->labels[set->truth[start + i]], set->labels[best]);
    }
  }
  *accuracy = (double) correct / set->n;
  return TRUE;
}

int
tool_cmd_eval (int argc, char **argv)
{
  g_auto (ToolModelOptions) model_opts = { 0 };
  gboolean synthetic = FALSE;
  int per_pattern = 20, unseen = 300;
  gint64 seed = 1;
  g_autofree char *template = NULL;
  g_autofree char *predictions_path = NULL;
  int status = TOOL_EXIT_OK;

  const GOptionEntry entries[] = {
    { "synthetic", 0, 0, G_OPTION_ARG_NONE, &synthetic,
        "Evaluate on the synthetic world (required)", NULL },
    { "per-pattern", 0, 0, G_OPTION_ARG_INT, &per_pattern,
        "Frames per videotestsrc pattern (default 20)", "N" },
    { "unseen", 0, 0, G_OPTION_ARG_INT, &unseen,
        "Scenes of unseen colour x shape pairs (default 300)", "N" },
    { "seed", 's', 0, G_OPTION_ARG_INT64, &seed,
        "Seed of the evaluation frames (default 1)", "N" },
    { "template", 't', 0, G_OPTION_ARG_STRING, &template,
        "Prompt template, {} standing for the label (default clipclassify's: "
        "'" DEFAULT_TEMPLATE "')",
        "TEXT" },
    { "predictions", 0, 0, G_OPTION_ARG_FILENAME, &predictions_path,
        "Also write each frame's top-1 label to FILE, a line per frame: "
        "set, frame, truth, top-1 (tab-separated), to compare two runs "
        "frame by frame",
        "FILE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = tool_option_context_new ("",
      "Prints a model's zero-shot top-1 accuracy on held-out frames of the\n"
      "synthetic world, with chance level beside it: videotestsrc patterns\n"
      "(at frame sizes and times training never used; label = the pattern's\n"
      "description), and scenes whose colour x shape pair training never\n"
      "saw (against '<colour> <shape>' for every pair).",
      NULL, entries, &model_opts, TRUE);
  if (!tool_parse_options_only ("eval", ctx, &argc, &argv, &status))
    return status;
  if (!synthetic)
    return tool_usage_error ("eval",
        "--synthetic is required (the only "
        "evaluation set so far)");
  /* Every frame of the sets is held in memory at once. */
  if (!tool_check_range ("eval", "--per-pattern", per_pattern, 1, 1000, &status)
      || !tool_check_range ("eval", "--unseen", unseen, 1, 10000, &status))
    return status;
  if (seed < 0 || seed > G_MAXUINT32)
    return tool_usage_error ("eval",
        "--seed: %" G_GINT64_FORMAT " is "
        "outside 0..%u",
        seed, G_MAXUINT32);

  g_autoptr (ClipModel) model = tool_load_model ("eval", &model_opts, &status);
  if (model == NULL)
    return status;
  g_autoptr (ClipEncoder) enc = tool_open_encoder ("eval", model, &model_opts,
      FALSE, &status);
  if (enc == NULL)
    return status;
  GError *error = NULL;
  g_autoptr (SyntheticWorld) world = synthetic_world_new (
      clip_model_get_config (model), &error);
  if (world == NULL)
    return tool_fail (error);

  g_autoptr (SyntheticEvalSet) patterns = synthetic_eval_patterns (world,
      (guint32) seed, per_pattern);
  g_autoptr (SyntheticEvalSet) scenes = synthetic_eval_unseen (world,
      (guint32) seed, unseen);
  FILE *predictions = NULL;
  if (predictions_path != NULL
      && (predictions = fopen (predictions_path, "w")) == NULL)
    return tool_fail (g_error_new (CLIP_ERROR, CLIP_ERROR_IO, "%s: %s",
        predictions_path, g_strerror (errno)));
  const SyntheticEvalSet *sets[] = { patterns, scenes };
  const char *names[] = { "videotestsrc patterns", "unseen colour x shape" };
  printf ("model: %s\n", clip_model_get_dir (model));
  printf ("%-24s %7s %7s %7s %7s\n", "set", "frames", "labels", "top-1",
      "chance");
  for (int i = 0; i < 2; i++) {
    double accuracy;
    if (!zero_shot_accuracy (enc, sets[i],
            template ? template : DEFAULT_TEMPLATE, names[i], predictions,
            &accuracy, &error)) {
      if (predictions != NULL)
        fclose (predictions);
      return tool_fail (error);
    }
    int labels = g_strv_length (sets[i]->labels);
    printf ("%-24s %7d %7d %6.1f%% %6.1f%%\n", names[i], sets[i]->n, labels,
        100.0 * accuracy, 100.0 / labels);
  }
  if (predictions != NULL && fclose (predictions) != 0)
    return tool_fail (g_error_new (CLIP_ERROR, CLIP_ERROR_IO, "%s: %s",
        predictions_path, g_strerror (errno)));
  return TOOL_EXIT_OK;
}
