/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gst-clip train: contrastive pre-training (or fine-tuning) of a CLIP on the
 * synthetic world or on a folder of captioned images. */
#include "commands.h"
#include "synthetic.h"
#include "train/train.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CHECKPOINT_NAME "checkpoint.safetensors"

typedef struct {
  ClipConfig config;
  ClipTrainOptions train;
  int checkpoint_every;
  int log_every;
} TrainSettings;

/* Reports local (then freed) as the error of path's [group] key. */
static gboolean
key_error (const char *path, const char *group, const char *key, GError *local,
    GError **error)
{
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG, "%s: [%s] %s: %s", path,
      group, key, local->message);
  g_error_free (local);
  return FALSE;
}

/* Pairs per training step: CLIP's own batch was 32,768. */
#define TRAIN_MAX_BATCH 32768

/* Reads an optional integer key; missing keys keep their default. */
static gboolean
read_int (GKeyFile *file, const char *path, const char *group, const char *key,
    int min, int *value, GError **error)
{
  if (!g_key_file_has_key (file, group, key, NULL))
    return TRUE;
  GError *local = NULL;
  gint64 v = g_key_file_get_int64 (file, group, key, &local);
  if (local == NULL && (v < min || v > G_MAXINT32))
    g_set_error (&local, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%" G_GINT64_FORMAT " is below %d or too large", v, min);
  if (local != NULL)
    return key_error (path, group, key, local, error);
  *value = (int) v;
  return TRUE;
}

static gboolean
read_float (GKeyFile *file, const char *path, const char *group,
    const char *key, float *value, GError **error)
{
  if (!g_key_file_has_key (file, group, key, NULL))
    return TRUE;
  GError *local = NULL;
  double v = g_key_file_get_double (file, group, key, &local);
  if (local == NULL && !(v >= 0.0 && v < 1e6))
    g_set_error (&local, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%g is negative or too large", v);
  if (local != NULL)
    return key_error (path, group, key, local, error);
  *value = (float) v;
  return TRUE;
}

/* The [model] group: a new model's sizes (ignored with --model, whose
 * sizes are kept). The towers' MLP width is 4 x their width. */
static gboolean
read_model_group (GKeyFile *file, const char *path, ClipConfig *c,
    GError **error)
{
  const char *g = "model";
  g_autofree char *activation = NULL;
  if (!(read_int (file, path, g, "image_size", 1, &c->image_size, error)
          && read_int (file, path, g, "patch_size", 1, &c->patch_size, error)
          && read_int (file, path, g, "embed_dim", 1, &c->embed_dim, error)
          && read_int (file, path, g, "context_length", 2, &c->context_length,
              error)
          && read_int (file, path, g, "vision_width", 1, &c->vision.width,
              error)
          && read_int (file, path, g, "vision_layers", 1, &c->vision.layers,
              error)
          && read_int (file, path, g, "vision_heads", 1, &c->vision.heads,
              error)
          && read_int (file, path, g, "text_width", 1, &c->text.width, error)
          && read_int (file, path, g, "text_layers", 1, &c->text.layers, error)
          && read_int (file, path, g, "text_heads", 1, &c->text.heads, error)))
    return FALSE;
  c->vision.mlp_width = 4 * c->vision.width;
  c->text.mlp_width = 4 * c->text.width;
  activation = g_key_file_get_string (file, g, "activation", NULL);
  if (activation != NULL) {
    ClipActivation a;
    if (strcmp (activation, "quick_gelu") == 0)
      a = CLIP_ACTIVATION_QUICK_GELU;
    else if (strcmp (activation, "gelu") == 0)
      a = CLIP_ACTIVATION_GELU;
    else {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
          "%s: [model] activation: '%s' is neither quick_gelu nor gelu", path,
          activation);
      return FALSE;
    }
    c->vision.activation = c->text.activation = a;
  }
  return TRUE;
}

static gboolean
read_settings (const char *path, TrainSettings *s, GError **error)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  if (!g_key_file_load_from_file (file, path, G_KEY_FILE_NONE, error)) {
    g_prefix_error (error, "%s: ", path);
    return FALSE;
  }
  const char *g = "train";
  int seed = (int) s->train.seed;
  if (!(read_model_group (file, path, &s->config, error)
          && read_int (file, path, g, "batch", 2, &s->train.batch, error)
          && read_int (file, path, g, "steps", 1, &s->train.steps, error)
          && read_int (file, path, g, "warmup_steps", 0, &s->train.warmup_steps,
              error)
          && read_float (file, path, g, "lr", &s->train.lr, error)
          && read_float (file, path, g, "weight_decay", &s->train.weight_decay,
              error)
          && read_float (file, path, g, "clip_grad_norm",
              &s->train.clip_grad_norm, error)
          && read_float (file, path, g, "logit_scale_init",
              &s->train.logit_scale_init, error)
          && read_int (file, path, g, "seed", 0, &seed, error)
          && read_int (file, path, g, "checkpoint_every", 1,
              &s->checkpoint_every, error)
          && read_int (file, path, g, "log_every", 1, &s->log_every, error)))
    return FALSE;
  /* CLIP clamps the scale at 100; 0 would be a log of zero. */
  if (!(s->train.logit_scale_init > 0.0f
          && s->train.logit_scale_init <= 100.0f)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%s: [train] logit_scale_init: %g is not in (0, 100]", path,
        s->train.logit_scale_init);
    return FALSE;
  }
  s->train.seed = (guint32) seed;
  return TRUE;
}

/* ------------------------------------------------------ captioned folder */

/* A folder of images with captions.txt: "FILE<TAB>caption" per line. All
 * images are preprocessed once; batches are drawn from them by seed and
 * step. */
typedef struct {
  int n;
  float *pixels;
  char **captions;
} CaptionedFolder;

static void
captioned_folder_free (CaptionedFolder *data)
{
  g_free (data->pixels);
  g_strfreev (data->captions);
  g_free (data);
}

static CaptionedFolder *
captioned_folder_load (const char *dir, const ClipConfig *config,
    GError **error)
{
  g_autofree char *path = g_build_filename (dir, "captions.txt", NULL);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, error))
    return NULL;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  gsize image = 3 * (gsize) config->image_size * config->image_size;
  g_autoptr (GPtrArray) captions = g_ptr_array_new ();
  g_autoptr (GArray) pixels = g_array_new (FALSE, FALSE, sizeof (float));
  for (int i = 0; lines[i] != NULL; i++) {
    char *line = g_strstrip (lines[i]);
    if (*line == '\0' || *line == '#')
      continue;
    char *tab = strchr (line, '\t');
    if (tab == NULL || tab[1] == '\0') {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
          "%s:%d: expected 'FILE<TAB>caption'", path, i + 1);
      g_ptr_array_set_free_func (captions, g_free);
      return NULL;
    }
    *tab = '\0';
    g_autofree char *file = g_build_filename (dir, line, NULL);
    g_array_set_size (pixels, pixels->len + image);
    if (!tool_load_image_tensor (file, config,
            &g_array_index (pixels, float, pixels->len - image), error)) {
      g_ptr_array_set_free_func (captions, g_free);
      return NULL;
    }
    g_ptr_array_add (captions, g_strdup (tab + 1));
  }
  if (captions->len < 2) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "%s: fewer than 2 captioned images", path);
    g_ptr_array_set_free_func (captions, g_free);
    return NULL;
  }
  CaptionedFolder *data = g_new0 (CaptionedFolder, 1);
  data->n = captions->len;
  g_ptr_array_add (captions, NULL);
  data->captions = (char **) g_ptr_array_steal (captions, NULL);
  data->pixels = (float *) g_array_free (g_steal_pointer (&pixels), FALSE);
  return data;
}

/* Batch of a step: pairs drawn without replacement within the batch
 * (with replacement across batches) from a generator seeded by step. */
static void
captioned_folder_batch (const CaptionedFolder *data, const ClipConfig *config,
    guint32 seed, guint64 step, int n, float *pixels, char ***captions)
{
  gsize image = 3 * (gsize) config->image_size * config->image_size;
  guint32 key[] = { seed, (guint32) step, (guint32) (step >> 32) };
  GRand *rand = g_rand_new_with_seed_array (key, G_N_ELEMENTS (key));
  g_autofree int *order = g_new (int, data->n);
  for (int i = 0; i < data->n; i++)
    order[i] = i;
  char **out = g_new0 (char *, n + 1);
  for (int i = 0; i < n; i++) {
    int k = i % data->n;
    int j = g_rand_int_range (rand, k, data->n);
    int swap = order[k];
    order[k] = order[j];
    order[j] = swap;
    memcpy (pixels + i * image, data->pixels + order[k] * image,
        image * sizeof (float));
    out[i] = g_strdup (data->captions[order[k]]);
  }
  g_rand_free (rand);
  *captions = out;
}

/* ---------------------------------------------------------------- main */

static void
format_duration (char *out, gsize size, double seconds)
{
  int s = (int) (seconds + 0.5);
  if (s >= 3600)
    g_snprintf (out, size, "%dh%02dm", s / 3600, s / 60 % 60);
  else
    g_snprintf (out, size, "%dm%02ds", s / 60, s % 60);
}

int
tool_cmd_train (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  g_autofree char *data_dir = NULL;
  g_autofree char *out_dir = NULL;
  g_autofree char *dtype_name = NULL;
  g_autofree char *model_dir = NULL;
  g_autofree char *vocab_arg = NULL;
  gboolean synthetic = FALSE;
  int threads = 0, stop_after = 0;
  int status = TOOL_EXIT_OK;

  const GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
        "Training configuration file", "FILE" },
    { "synthetic", 0, 0, G_OPTION_ARG_NONE, &synthetic,
        "Train on the synthetic world (videotestsrc patterns, cairo scenes)",
        NULL },
    { "data", 'd', 0, G_OPTION_ARG_FILENAME, &data_dir,
        "Train on a folder of captioned images", "DIR" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out_dir,
        "Output model folder (also holds the checkpoint)", "DIR" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_name,
        "Weight type of the written model (default f32)", "f32|f16" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads,
        "OpenBLAS threads (default: one per core); results are reproducible "
        "for a given count",
        "N" },
    { "stop-after", 0, 0, G_OPTION_ARG_INT, &stop_after,
        "Stop (with a checkpoint) after this many steps of this run", "N" },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir,
        "Start from this model (fine-tuning; its sizes replace [model]); "
        "default: a new model initialised from the seed",
        "DIR" },
    { "vocab", 0, 0, G_OPTION_ARG_FILENAME, &vocab_arg,
        "Folder with vocab.json + merges.txt (default: the --model folder's); "
        "copied into the output",
        "DIR" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = tool_option_context_new ("",
      "Trains a CLIP by contrastive pre-training (the CLIP paper's method:\n"
      "symmetric cross-entropy over in-batch image/caption pairs, learned\n"
      "temperature, AdamW with warm-up and cosine decay, gradient clipping)\n"
      "and writes an HF model folder. With --model, continues from that\n"
      "model (fine-tuning). Deterministic for a seed and a thread count; a\n"
      "run killed and started again with the same arguments resumes from\n"
      "OUT/" CHECKPOINT_NAME ".",
      "The --config file (INI) has a [model] group (image_size, patch_size,\n"
      "embed_dim, context_length, vision_width/layers/heads,\n"
      "text_width/layers/heads, activation = quick_gelu|gelu) and a [train]\n"
      "group (batch, steps, warmup_steps, lr, weight_decay, clip_grad_norm,\n"
      "logit_scale_init (default 1/0.07, as CLIP),\n"
      "seed, checkpoint_every, log_every). --data DIR holds images and a\n"
      "captions.txt of 'FILE<TAB>caption' lines.\n",
      entries, NULL, FALSE);
  if (!tool_parse_options_only ("train", ctx, &argc, &argv, &status))
    return status;
  if (config_path == NULL || out_dir == NULL)
    return tool_usage_error ("train", "--config and --out are required");
  if (synthetic == (data_dir != NULL))
    return tool_usage_error ("train", "give either --synthetic or --data");
  ClipDType dtype;
  if (!tool_parse_dtype ("train", dtype_name, &dtype, &status))
    return status;
  if (!tool_check_range ("train", "--threads", threads, 0, TOOL_MAX_THREADS,
          &status))
    return status;
  if (stop_after < 0)
    return tool_usage_error ("train", "--stop-after must not be negative");

  GError *error = NULL;
  TrainSettings settings = { .checkpoint_every = 100, .log_every = 10 };
  clip_config_init_default (&settings.config);
  clip_train_options_init (&settings.train);
  g_autoptr (ClipModel) init = NULL;
  if (model_dir != NULL
      && (init = clip_model_load (model_dir, vocab_arg, &error)) == NULL)
    return tool_fail (error);
  if (!read_settings (config_path, &settings, &error))
    return tool_fail (error);
  if (settings.train.batch > TRAIN_MAX_BATCH)
    return tool_fail (g_error_new (CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%s: [train] batch: %d is above %d", config_path, settings.train.batch,
        TRAIN_MAX_BATCH));
  const ClipConfig *config = init ? clip_model_get_config (init)
                                  : &settings.config;
  settings.train.threads = threads > 0 ? threads
                                       : (int) g_get_num_processors ();

  /* The vocabulary: --vocab, else the model's folder (a hub name's
   * snapshot). */
  g_autofree char *vocab_dir = vocab_arg
      ? clip_model_resolve (vocab_arg, &error)
      : init ? g_strdup (clip_model_get_dir (init))
             : NULL;
  if (vocab_arg && vocab_dir == NULL)
    return tool_fail (error);
  if (vocab_dir == NULL)
    return tool_usage_error ("train",
        "a new model needs --vocab DIR "
        "(vocab.json + merges.txt)");
  ClipTokenizer *tokenizer = clip_tokenizer_new_from_dir (vocab_dir, &error);
  if (tokenizer == NULL)
    return tool_fail (error);

  g_autoptr (ClipTrainer) trainer = clip_trainer_new (config, &settings.train,
      init, &error);
  g_autoptr (SyntheticWorld) world = NULL;
  CaptionedFolder *folder = NULL;
  if (trainer != NULL && synthetic)
    world = synthetic_world_new (config, &error);
  else if (trainer != NULL)
    folder = captioned_folder_load (data_dir, config, &error);
  if (trainer == NULL || (world == NULL && folder == NULL)) {
    clip_tokenizer_free (tokenizer);
    return tool_fail (error);
  }

  g_autofree char *checkpoint = g_build_filename (out_dir, CHECKPOINT_NAME,
      NULL);
  if (g_mkdir_with_parents (out_dir, 0755) != 0) {
    g_set_error (&error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: cannot create the folder: %s", out_dir, g_strerror (errno));
  } else if (g_file_test (checkpoint, G_FILE_TEST_EXISTS)
      && clip_trainer_load_checkpoint (trainer, checkpoint, &error)) {
    printf ("resuming from %s at step %d\n", checkpoint,
        clip_trainer_get_step (trainer));
  }

  const ClipTrainOptions *o = &settings.train;
  int ctx_len = config->context_length, n = o->batch;
  gsize image = 3 * (gsize) config->image_size * config->image_size;
  g_autofree float *pixels = g_new (float, n * image);
  g_autofree gint32 *tokens = g_new (gint32, (gsize) n * ctx_len);
  printf ("training %d steps of %d pairs, seed %u, %d threads\n", o->steps, n,
      o->seed, o->threads);
  fflush (stdout);
  gint64 start = g_get_monotonic_time ();
  int first_step = clip_trainer_get_step (trainer);
  while (error == NULL && clip_trainer_get_step (trainer) < o->steps) {
    int step = clip_trainer_get_step (trainer);
    g_auto (GStrv) captions = NULL;
    if (world != NULL)
      synthetic_train_batch (world, o->seed, step, n, pixels, &captions);
    else
      captioned_folder_batch (folder, config, o->seed, step, n, pixels,
          &captions);
    ClipTrainStats stats;
    for (int i = 0; i < n && error == NULL; i++)
      clip_tokenizer_encode (tokenizer, captions[i], ctx_len,
          tokens + (gsize) i * ctx_len, &error);
    if (error != NULL
        || !clip_trainer_step (trainer, pixels, tokens, &stats, &error))
      break;
    int done = step + 1;
    gboolean last = done == o->steps
        || (stop_after > 0 && done - first_step >= stop_after);
    if (done % settings.log_every == 0 || last) {
      double seconds = (g_get_monotonic_time () - start) / 1e6;
      double rate = (done - first_step) * n / MAX (seconds, 1e-9);
      char eta[32];
      format_duration (eta, sizeof eta, (o->steps - done) * n / rate);
      printf ("step %d/%d  loss %.4f  batch-acc %.2f  lr %.2e  scale %.1f  "
              "|g| %.2f  %.1f images/s  ETA %s\n",
          done, o->steps, stats.loss, stats.accuracy, stats.lr,
          stats.logit_scale, stats.grad_norm, rate, eta);
      fflush (stdout);
    }
    if (done % settings.checkpoint_every == 0 || last)
      clip_trainer_save_checkpoint (trainer, checkpoint, &error);
    if (last)
      break;
  }
  clip_tokenizer_free (tokenizer);
  if (folder != NULL)
    captioned_folder_free (folder);
  if (error != NULL)
    return tool_fail (error);
  if (clip_trainer_get_step (trainer) < o->steps) {
    printf ("stopped at step %d; run again to resume\n",
        clip_trainer_get_step (trainer));
    return TOOL_EXIT_OK;
  }
  if (!clip_trainer_save_model (trainer, out_dir, dtype, vocab_dir, &error))
    return tool_fail (error);
  printf ("wrote %s\n", out_dir);
  return TOOL_EXIT_OK;
}
