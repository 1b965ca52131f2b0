/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ClipModel: a model folder's config plus its weights mapped onto
 * ClipWeights, from either layout; and the inverse, clip_model_save.
 *
 * Both layouts are read from the parameter table (params.h), so loading,
 * saving and clip_weights_foreach cannot disagree about a name or a
 * shape. */
#include "hub.h"
#include "model.h"
#include "params.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* F32 tensors are used in place, and safetensors data is little-endian. */
#if G_BYTE_ORDER != G_LITTLE_ENDIAN
#error "gst-clip reads safetensors in place and needs a little-endian host"
#endif

/* A tensor as a layout stores it: one part of a group (HF's q_proj), or a
 * whole row (OpenAI's in_proj, every other tensor). */
typedef struct {
  const ClipParamSpan *span;
  int part; /* the part, or -1 for all of them */
  char *name;
  int n_dims;
  gint64 shape[4]; /* as stored in the file */
} StoredTensor;

static void
stored_tensor_clear (gpointer data)
{
  g_free (((StoredTensor *) data)->name);
}

/* Every tensor of the layout but logit_scale (a scalar, read apart), in
 * the table's order. */
static GArray *
stored_tensors (const ClipParamLayout *params, const ClipConfig *config,
    ClipLayout layout)
{
  GArray *stored = g_array_new (FALSE, TRUE, sizeof (StoredTensor));
  g_array_set_clear_func (stored, stored_tensor_clear);
  for (guint i = 0; i < params->spans->len; i++) {
    const ClipParamSpan *span = &g_array_index (params->spans, ClipParamSpan,
        i);
    if (span->tower == CLIP_TOWER_NONE)
      continue;
    int n_stored = clip_param_span_n_stored (span, layout);
    for (int part = 0; part < n_stored; part++) {
      StoredTensor t = { span, n_stored > 1 ? part : -1,
        clip_param_span_name (span, layout, part) };
      t.n_dims = clip_param_span_shape (span, config, layout, t.shape);
      g_array_append_val (stored, t);
    }
  }
  return stored;
}

/* The logit_scale row, the one model-wide row: the layout's last. */
static const ClipParamSpan *
logit_scale_span (const ClipParamLayout *params)
{
  return &g_array_index (params->spans, ClipParamSpan, params->spans->len - 1);
}

static int
first_part (const StoredTensor *t)
{
  return MAX (t->part, 0);
}

static int
end_part (const StoredTensor *t)
{
  return t->part >= 0 ? t->part + 1 : MAX (t->span->param->n_parts, 1);
}

static gboolean
is_transposed (const StoredTensor *t, ClipLayout layout)
{
  return layout == CLIP_LAYOUT_OPENAI && t->span->param->openai_transposed;
}

static gint64
stored_n_elements (const StoredTensor *t)
{
  gint64 n = 1;
  for (int d = 0; d < t->n_dims; d++)
    n *= t->shape[d];
  return n;
}

static void
append_shape (GString *out, int n_dims, const gint64 *shape)
{
  g_string_append_c (out, '[');
  for (int d = 0; d < n_dims; d++)
    g_string_append_printf (out, "%s%" G_GINT64_FORMAT, d ? ", " : "",
        shape[d]);
  g_string_append_c (out, ']');
}

void
clip_weights_foreach (const ClipConfig *config, const ClipWeights *weights,
    ClipWeightFunc func, gpointer user_data)
{
  /* The HF layout stores exactly ClipWeights' views. */
  ClipParamLayout params;
  clip_param_layout_init (&params, config);
  g_autoptr (GArray) stored = stored_tensors (&params, config, CLIP_LAYOUT_HF);
  for (guint i = 0; i < stored->len; i++) {
    const StoredTensor *t = &g_array_index (stored, StoredTensor, i);
    func (t->name, *clip_param_span_view (t->span, weights, first_part (t)),
        stored_n_elements (t), user_data);
  }
  clip_param_layout_clear (&params);
}

/* ---------------------------------------------------------------- load */

static gboolean
is_float_dtype (ClipDType dtype)
{
  return dtype == CLIP_DTYPE_F32 || dtype == CLIP_DTYPE_F16
      || dtype == CLIP_DTYPE_BF16;
}

static float
tensor_element (const ClipTensor *t, gsize i)
{
  const guint8 *bytes = t->data;
  guint16 half;
  float f;
  switch (t->dtype) {
    case CLIP_DTYPE_F16:
      memcpy (&half, bytes + 2 * i, 2);
      return clip_f16_to_f32 (GUINT16_FROM_LE (half));
    case CLIP_DTYPE_BF16:
      memcpy (&half, bytes + 2 * i, 2);
      return clip_bf16_to_f32 (GUINT16_FROM_LE (half));
    default:
      memcpy (&f, bytes + 4 * i, 4);
      return f;
  }
}

static void
tensor_to_f32 (const ClipTensor *t, float *out)
{
  if (t->dtype == CLIP_DTYPE_F32) {
    memcpy (out, t->data, t->n_bytes);
    return;
  }
  for (gint64 i = 0; i < t->n_elements; i++)
    out[i] = tensor_element (t, i);
}

/* F32 tensors are views into the mapping; the rest is converted once. */
static gboolean
needs_conversion (const ClipTensor *t, gboolean transposed)
{
  return transposed || t->dtype != CLIP_DTYPE_F32
      || (guintptr) t->data % G_ALIGNOF (float) != 0;
}

/* The F16/BF16 tensors that the CPU backend reads from the file itself:
 * the linear layers' weights (packed at open) and the token embedding
 * (rows widened as they are looked up), nine tenths of a model's bytes. */
static gboolean
is_deferred (const StoredTensor *st, const ClipTensor *t, ClipLayout layout)
{
  return (t->dtype == CLIP_DTYPE_F16 || t->dtype == CLIP_DTYPE_BF16)
      && !is_transposed (st, layout)
      && (st->span->param->matrix || st->span->param->by_token);
}

static const ClipTensor *
find_weight (ClipSafetensors *st, const char *name, int n_dims,
    const gint64 *shape, GError **error)
{
  const char *file = clip_safetensors_path (st);
  const ClipTensor *t = clip_safetensors_find (st, name);
  g_autoptr (GString) expected = g_string_new (NULL);
  append_shape (expected, n_dims, shape);
  if (t == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: tensor '%s' is missing (expected shape %s)", file, name,
        expected->str);
    return NULL;
  }
  if (!is_float_dtype (t->dtype)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: tensor '%s' has dtype %s, expected F32, F16 or BF16", file, name,
        clip_dtype_name (t->dtype));
    return NULL;
  }
  gboolean same = t->n_dims == n_dims;
  for (int d = 0; same && d < n_dims; d++)
    same = t->shape[d] == shape[d];
  if (!same) {
    g_autoptr (GString) actual = g_string_new (NULL);
    append_shape (actual, t->n_dims, t->shape);
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_CONFIG,
        "%s: tensor '%s' has shape %s, expected %s from the config", file, name,
        actual->str, expected->str);
    return NULL;
  }
  return t;
}

static gboolean
read_logit_scale (ClipSafetensors *st, const char *name, float *logit_scale,
    GError **error)
{
  const ClipTensor *t = clip_safetensors_find (st, name);
  if (t == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: tensor '%s' is missing", clip_safetensors_path (st), name);
    return FALSE;
  }
  if (!is_float_dtype (t->dtype) || t->n_elements != 1) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: tensor '%s' has dtype %s and %" G_GINT64_FORMAT
        " element(s), expected one float",
        clip_safetensors_path (st), name, clip_dtype_name (t->dtype),
        t->n_elements);
    return FALSE;
  }
  *logit_scale = tensor_element (t, 0);
  if (!isfinite (*logit_scale)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT, "%s: %s is not finite",
        clip_safetensors_path (st), name);
    return FALSE;
  }
  return TRUE;
}

/* Points the views of t's parts at data (F32, as ClipWeights holds it). */
static void
set_views (const StoredTensor *t, ClipWeights *w, const float *data)
{
  for (int p = first_part (t); p < end_part (t); p++)
    *clip_param_span_view (t->span, w, p) = data
        + (p - first_part (t)) * t->span->part_size;
  /* A group stored as one tensor keeps its parts back to back. */
  clip_param_span_set_fused (t->span, w, t->part < 0);
}

static gboolean
map_stored_tensors (ClipModel *model, const ClipParamLayout *params,
    GError **error)
{
  ClipWeights *w = &model->weights;
  ClipLayout layout = model->layout;
  g_autoptr (GArray) stored = stored_tensors (params, &model->config, layout);
  g_autofree const ClipTensor **tensors = g_new (const ClipTensor *,
      stored->len);

  /* Everything is checked before a byte of weight data is read. */
  gsize n_converted = 0;
  for (guint i = 0; i < stored->len; i++) {
    const StoredTensor *t = &g_array_index (stored, StoredTensor, i);
    tensors[i] = find_weight (model->st, t->name, t->n_dims, t->shape, error);
    if (tensors[i] == NULL)
      return FALSE;
    if (needs_conversion (tensors[i], is_transposed (t, layout)))
      n_converted += tensors[i]->n_elements;
  }
  if (!read_logit_scale (model->st, logit_scale_span (params)->name,
          &w->logit_scale, error))
    return FALSE;
  if (n_converted > 0) {
    /* mmap, not malloc: the deferred tensors' pages must stay untouched. */
    model->converted_bytes = n_converted * sizeof (float);
    model->converted = mmap (NULL, model->converted_bytes,
        PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (model->converted == MAP_FAILED) {
      model->converted = NULL;
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
          "%s: not enough memory to convert %" G_GSIZE_FORMAT " MB of weights "
          "to F32",
          clip_safetensors_path (model->st),
          n_converted * sizeof (float) >> 20);
      return FALSE;
    }
  }

  float *next = model->converted;
  for (guint i = 0; i < stored->len; i++) {
    const StoredTensor *st = &g_array_index (stored, StoredTensor, i);
    const ClipTensor *t = tensors[i];
    const float *data = t->data;
    if (needs_conversion (t, is_transposed (st, layout))) {
      if (is_deferred (st, t, layout)) {
        ClipDeferredTensor d = { next, t };
        g_array_append_val (model->deferred, d);
      } else if (is_transposed (st, layout)) {
        gint64 rows = st->shape[0], cols = st->shape[1];
        for (gint64 r = 0; r < rows; r++)
          for (gint64 c = 0; c < cols; c++)
            next[c * rows + r] = tensor_element (t, r * cols + c);
      } else {
        tensor_to_f32 (t, next);
      }
      data = next;
      next += t->n_elements;
    }
    set_views (st, w, data);
  }
  return TRUE;
}

static gboolean
map_weights (ClipModel *model, GError **error)
{
  ClipWeights *w = &model->weights;
  w->vision.layers = g_new0 (ClipLayerWeights, model->config.vision.layers);
  w->text.layers = g_new0 (ClipLayerWeights, model->config.text.layers);
  ClipParamLayout params;
  clip_param_layout_init (&params, &model->config);
  gboolean ok = map_stored_tensors (model, &params, error);
  clip_param_layout_clear (&params);
  return ok;
}

static gboolean
detect_layout (ClipSafetensors *st, ClipLayout *layout, GError **error)
{
  gboolean hf = FALSE, openai = FALSE;
  for (guint i = 0; i < clip_safetensors_n_tensors (st); i++) {
    const char *name = clip_safetensors_get (st, i)->name;
    if (g_str_has_prefix (name, "visual.layer1.")
        || g_str_has_prefix (name, "visual.attnpool.")) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
          "%s: ResNet CLIP models are not supported (tensor '%s'); use a ViT "
          "model",
          clip_safetensors_path (st), name);
      return FALSE;
    }
    hf = hf || g_str_has_prefix (name, "vision_model.")
        || g_str_has_prefix (name, "text_model.");
    openai = openai || g_str_has_prefix (name, "visual.");
  }
  if (!hf && !openai) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: no CLIP tensors: neither HuggingFace names (vision_model.*, "
        "text_model.*) nor OpenAI/OpenCLIP names (visual.*)",
        clip_safetensors_path (st));
    return FALSE;
  }
  *layout = hf ? CLIP_LAYOUT_HF : CLIP_LAYOUT_OPENAI;
  return TRUE;
}

static gboolean
has_vocabulary (const char *dir)
{
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);
  g_autofree char *bpe = g_build_filename (dir, "bpe_simple_vocab_16e6.txt.gz",
      NULL);
  return (g_file_test (vocab, G_FILE_TEST_EXISTS)
             && g_file_test (merges, G_FILE_TEST_EXISTS))
      || g_file_test (bpe, G_FILE_TEST_EXISTS);
}

/* model.safetensors, else open_clip_model.safetensors; either layout. */
static char *
find_weights_file (const char *dir, GError **error)
{
  static const char *const names[] = { "model.safetensors",
    "open_clip_model.safetensors" };
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++) {
    char *path = g_build_filename (dir, names[i], NULL);
    if (g_file_test (path, G_FILE_TEST_EXISTS))
      return path;
    g_free (path);
  }
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
      "%s: no model.safetensors or open_clip_model.safetensors in the model "
      "folder",
      dir);
  return NULL;
}

static void model_free (ClipModel *model);

/* A new model, unshared, of a folder (hub names resolved), named name. */
static ClipModel *
load_model (const char *dir, const char *vocab_dir, const char *name,
    GError **error)
{
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    if (g_file_test (dir, G_FILE_TEST_EXISTS))
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
          "%s is a file, not a model folder: give the folder that holds "
          "config.json and the safetensors",
          dir);
    else
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: no such model folder",
          dir);
    return NULL;
  }
  const char *vocabulary = vocab_dir ? vocab_dir : dir;
  ClipModel *model = g_new0 (ClipModel, 1);
  model->ref_count = 1;
  model->deferred = g_array_new (FALSE, FALSE, sizeof (ClipDeferredTensor));
  g_mutex_init (&model->deferred_lock);
  model->dir = g_strdup (dir);
  model->name = g_strdup (name);

  g_autofree char *weights_path = NULL;
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  if (!clip_config_load_dir (dir, &model->config, checksum, error))
    goto fail;
  if (!has_vocabulary (vocabulary)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: no vocabulary (vocab.json + merges.txt, or "
        "bpe_simple_vocab_16e6.txt.gz)%s",
        vocabulary,
        vocab_dir
            ? ""
            : ": pass a vocabulary folder (the vocab argument, --vocab DIR)");
    goto fail;
  }
  if ((weights_path = find_weights_file (dir, error)) == NULL
      || (model->st = clip_safetensors_open (weights_path, error)) == NULL
      || !detect_layout (model->st, &model->layout, error)
      || !map_weights (model, error)
      || (model->tokenizer = clip_tokenizer_new_from_dir (vocabulary, error))
          == NULL)
    goto fail;
  clip_safetensors_checksum (model->st, checksum);
  model->fingerprint = g_strdup_printf ("sha256:%s-%d",
      g_checksum_get_string (checksum), model->config.embed_dim);
  return model;

fail:
  model_free (model);
  return NULL;
}

/* The models loaded in this process, by model_key, each held once: every
 * element or encoder that names a folder already loaded shares its model,
 * and so its weights (and the CPU backend its packed copy of them). The
 * lock also orders a model's last unref against a load that would find it:
 * a model leaves the table under the lock, before it is freed. Loads are
 * made under it too, so that two threads opening one folder at once load
 * it once; they are short (the file is mapped, not read). */
static GMutex loaded_lock;
static GHashTable *loaded; /* key -> ClipModel, not owned */

/* What makes two loads the same model: the folder and the vocabulary
 * folder with symbolic links resolved, and the weights file's identity and
 * modification time, so that a folder rewritten since (train, a new
 * download) loads afresh. NULL when a path does not resolve: such a load
 * fails, unshared, with the usual message. */
static char *
model_key (const char *dir, const char *vocab_dir)
{
  g_autofree char *real_dir = realpath (dir, NULL);
  g_autofree char *real_vocab = realpath (vocab_dir ? vocab_dir : dir, NULL);
  if (real_dir == NULL || real_vocab == NULL)
    return NULL;
  g_autofree char *weights = find_weights_file (real_dir, NULL);
  struct stat info;
  if (weights == NULL || stat (weights, &info) != 0)
    return NULL;
  return g_strdup_printf ("%s\n%s\n%ju:%ju:%jd:%jd.%09ld", real_dir, real_vocab,
      (uintmax_t) info.st_dev, (uintmax_t) info.st_ino, (intmax_t) info.st_size,
      (intmax_t) info.st_mtim.tv_sec, info.st_mtim.tv_nsec);
}

ClipModel *
clip_model_load (const char *dir, const char *vocab_dir, GError **error)
{
  g_return_val_if_fail (dir != NULL, NULL);
  g_autofree char *name = NULL;
  g_autofree char *resolved_vocab = NULL;
  g_autofree char *resolved_dir = clip_hub_resolve (dir, &name, error);
  if (resolved_dir == NULL
      || (vocab_dir
          && (resolved_vocab = clip_hub_resolve (vocab_dir, NULL, error))
              == NULL))
    return NULL;
  dir = resolved_dir;
  vocab_dir = resolved_vocab;

  char *key = model_key (dir, vocab_dir);
  if (key == NULL)
    return load_model (dir, vocab_dir, name, error);
  g_mutex_lock (&loaded_lock);
  if (loaded == NULL)
    loaded = g_hash_table_new (g_str_hash, g_str_equal);
  ClipModel *model = g_hash_table_lookup (loaded, key);
  if (model != NULL) {
    clip_model_ref (model);
    g_free (key);
  } else if ((model = load_model (dir, vocab_dir, name, error)) != NULL) {
    model->key = key;
    g_hash_table_insert (loaded, key, model);
  } else
    g_free (key);
  g_mutex_unlock (&loaded_lock);
  return model;
}

guint
clip_model_count_loaded (void)
{
  g_mutex_lock (&loaded_lock);
  guint n = loaded != NULL ? g_hash_table_size (loaded) : 0;
  g_mutex_unlock (&loaded_lock);
  return n;
}

ClipModel *
clip_model_ref (ClipModel *model)
{
  g_atomic_int_inc (&model->ref_count);
  return model;
}

void
clip_model_unref (ClipModel *model)
{
  if (model == NULL)
    return;
  if (model->key == NULL) {
    if (g_atomic_int_dec_and_test (&model->ref_count))
      model_free (model);
    return;
  }
  g_mutex_lock (&loaded_lock);
  gboolean last = g_atomic_int_dec_and_test (&model->ref_count);
  if (last)
    g_hash_table_remove (loaded, model->key);
  g_mutex_unlock (&loaded_lock);
  if (last)
    model_free (model);
}

static void
model_free (ClipModel *model)
{
  g_free (model->key);
  if (model->tokenizer != NULL)
    clip_tokenizer_free (model->tokenizer);
  g_free (model->weights.vision.layers);
  g_free (model->weights.text.layers);
  if (model->converted != NULL)
    munmap (model->converted, model->converted_bytes);
  if (model->deferred != NULL) {
    g_array_unref (model->deferred);
    g_mutex_clear (&model->deferred_lock);
  }
  clip_safetensors_close (model->st);
  g_free (model->dir);
  g_free (model->name);
  g_free (model->fingerprint);
  g_free (model);
}

const ClipWeights *
clip_model_get_weights (ClipModel *model)
{
  /* A model assembled in memory, not loaded (the tests'), defers nothing. */
  if (model->deferred == NULL)
    return &model->weights;
  g_mutex_lock (&model->deferred_lock);
  for (guint i = 0; i < model->deferred->len; i++) {
    const ClipDeferredTensor *d = &g_array_index (model->deferred,
        ClipDeferredTensor, i);
    tensor_to_f32 (d->source, d->view);
  }
  g_array_set_size (model->deferred, 0);
  g_mutex_unlock (&model->deferred_lock);
  return &model->weights;
}

const void *
clip_model_deferred_source (ClipModel *model, const float *w, gsize floats,
    ClipDType *dtype)
{
  const void *source = NULL;
  if (model->deferred == NULL)
    return NULL;
  g_mutex_lock (&model->deferred_lock);
  for (guint i = 0; i < model->deferred->len && source == NULL; i++) {
    const ClipDeferredTensor *d = &g_array_index (model->deferred,
        ClipDeferredTensor, i);
    gsize n = d->source->n_elements;
    if (w >= d->view && floats <= n && (gsize) (w - d->view) <= n - floats) {
      source = (const guint8 *) d->source->data + (w - d->view) * 2;
      *dtype = d->source->dtype;
    }
  }
  g_mutex_unlock (&model->deferred_lock);
  return source;
}

gboolean
clip_model_check_weights (const ClipModel *model, GError **error)
{
  return clip_safetensors_check_file (model->st, error);
}

const ClipConfig *
clip_model_get_config (const ClipModel *model)
{
  return &model->config;
}

const char *
clip_model_get_name (const ClipModel *model)
{
  return model->name;
}

const char *
clip_model_get_dir (const ClipModel *model)
{
  return model->dir;
}

const char *
clip_model_get_fingerprint (const ClipModel *model)
{
  return model->fingerprint;
}

const ClipTokenizer *
clip_model_get_tokenizer (const ClipModel *model)
{
  return model->tokenizer;
}

float
clip_model_get_logit_scale (const ClipModel *model)
{
  return expf (model->weights.logit_scale);
}

/* ---------------------------------------------------------------- save */

/* The shortest decimal that reads back as the same float, so that a saved
 * eps is "1e-05" and not "9.9999997e-06". */
static void
append_float (GString *out, float value)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];
  for (int precision = 1; precision <= 9; precision++) {
    g_autofree char *format = g_strdup_printf ("%%.%dg", precision);
    g_ascii_formatd (buffer, sizeof buffer, format, value);
    if ((float) g_ascii_strtod (buffer, NULL) == value)
      break;
  }
  g_string_append (out, buffer);
}

static void
append_float3 (GString *out, const float values[3])
{
  g_string_append_c (out, '[');
  for (int i = 0; i < 3; i++) {
    if (i > 0)
      g_string_append (out, ", ");
    append_float (out, values[i]);
  }
  g_string_append_c (out, ']');
}

/* The normalisation, mean and std as two members at indent spaces: both
 * layouts write it, under their own key names. */
static void
append_mean_std (GString *out, int indent, const char *mean_key,
    const char *std_key, const ClipConfig *c)
{
  g_string_append_printf (out, "%*s\"%s\": ", indent, "", mean_key);
  append_float3 (out, c->image_mean);
  g_string_append_printf (out, ",\n%*s\"%s\": ", indent, "", std_key);
  append_float3 (out, c->image_std);
}

static const char *
activation_name (ClipActivation activation)
{
  return activation == CLIP_ACTIVATION_GELU ? "gelu" : "quick_gelu";
}

static void
append_hf_tower (GString *out, const ClipTowerConfig *t)
{
  g_string_append_printf (out,
      "    \"hidden_size\": %d,\n"
      "    \"intermediate_size\": %d,\n"
      "    \"num_hidden_layers\": %d,\n"
      "    \"num_attention_heads\": %d,\n"
      "    \"hidden_act\": \"%s\",\n"
      "    \"layer_norm_eps\": ",
      t->width, t->mlp_width, t->layers, t->heads,
      activation_name (t->activation));
  append_float (out, t->eps);
  g_string_append (out, ",\n");
}

static char *
hf_config_json (const ClipConfig *c, ClipDType dtype)
{
  GString *out = g_string_new (NULL);
  g_string_append_printf (out,
      "{\n"
      "  \"architectures\": [\"CLIPModel\"],\n"
      "  \"model_type\": \"clip\",\n"
      "  \"projection_dim\": %d,\n"
      "  \"logit_scale_init_value\": 2.6592,\n"
      "  \"torch_dtype\": \"%s\",\n"
      "  \"text_config\": {\n"
      "    \"model_type\": \"clip_text_model\",\n",
      c->embed_dim, dtype == CLIP_DTYPE_F16 ? "float16" : "float32");
  append_hf_tower (out, &c->text);
  g_string_append_printf (out,
      "    \"projection_dim\": %d,\n"
      "    \"vocab_size\": %d,\n"
      "    \"max_position_embeddings\": %d,\n"
      "    \"bos_token_id\": %d,\n"
      "    \"eos_token_id\": %d\n"
      "  },\n"
      "  \"vision_config\": {\n"
      "    \"model_type\": \"clip_vision_model\",\n",
      c->embed_dim, c->vocab_size, c->context_length, CLIP_TOKEN_START,
      CLIP_TOKEN_END);
  append_hf_tower (out, &c->vision);
  g_string_append_printf (out,
      "    \"projection_dim\": %d,\n"
      "    \"num_channels\": 3,\n"
      "    \"image_size\": %d,\n"
      "    \"patch_size\": %d\n"
      "  }\n"
      "}\n",
      c->embed_dim, c->image_size, c->patch_size);
  return g_string_free (out, FALSE);
}

static char *
hf_preprocessor_json (const ClipConfig *c)
{
  GString *out = g_string_new (NULL);
  g_string_append_printf (out,
      "{\n"
      "  \"image_processor_type\": \"CLIPImageProcessor\",\n"
      "  \"do_resize\": true,\n"
      "  \"size\": {\"shortest_edge\": %d},\n"
      "  \"resample\": 3,\n"
      "  \"do_center_crop\": true,\n"
      "  \"crop_size\": {\"height\": %d, \"width\": %d},\n"
      "  \"do_rescale\": true,\n"
      "  \"rescale_factor\": 0.00392156862745098,\n"
      "  \"do_normalize\": true,\n"
      "  \"do_convert_rgb\": true,\n",
      c->image_size, c->image_size, c->image_size);
  append_mean_std (out, 2, "image_mean", "image_std", c);
  g_string_append (out, "\n}\n");
  return g_string_free (out, FALSE);
}

/* OpenCLIP gives both towers one activation and sizes the MLP as
 * int(width * mlp_ratio); a config outside that cannot be written. */
static gboolean
openclip_mlp_ratio (const ClipTowerConfig *t, const char *tower, double *ratio,
    GError **error)
{
  *ratio = (double) t->mlp_width / t->width;
  if ((int) (t->width * *ratio) != t->mlp_width) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "the %s MLP width %d is not int(width * mlp_ratio) for any ratio "
        "OpenCLIP can store; save in the HF layout",
        tower, t->mlp_width);
    return FALSE;
  }
  return TRUE;
}

static void
append_openclip_norm (GString *out, float eps)
{
  if (eps == 1e-5f)
    return;
  g_string_append (out, ",\n      \"norm_kwargs\": {\"eps\": ");
  append_float (out, eps);
  g_string_append_c (out, '}');
}

static char *
openclip_config_json (const ClipConfig *c, GError **error)
{
  double vision_ratio, text_ratio;
  if (c->vision.activation != c->text.activation) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "the towers have different activations, which an OpenCLIP config "
        "cannot express; save in the HF layout");
    return NULL;
  }
  if (!openclip_mlp_ratio (&c->vision, "vision", &vision_ratio, error)
      || !openclip_mlp_ratio (&c->text, "text", &text_ratio, error))
    return NULL;
  char ratio[2][G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_dtostr (ratio[0], sizeof ratio[0], vision_ratio);
  g_ascii_dtostr (ratio[1], sizeof ratio[1], text_ratio);

  GString *out = g_string_new (NULL);
  g_string_append_printf (out,
      "{\n"
      "  \"model_cfg\": {\n"
      "    \"embed_dim\": %d,\n"
      "    \"quick_gelu\": %s,\n"
      "    \"vision_cfg\": {\n"
      "      \"image_size\": %d,\n"
      "      \"layers\": %d,\n"
      "      \"width\": %d,\n"
      "      \"patch_size\": %d,\n"
      "      \"head_width\": %d,\n"
      "      \"mlp_ratio\": %s",
      c->embed_dim,
      c->vision.activation == CLIP_ACTIVATION_QUICK_GELU ? "true" : "false",
      c->image_size, c->vision.layers, c->vision.width, c->patch_size,
      c->vision.width / c->vision.heads, ratio[0]);
  append_openclip_norm (out, c->vision.eps);
  g_string_append_printf (out,
      "\n"
      "    },\n"
      "    \"text_cfg\": {\n"
      "      \"context_length\": %d,\n"
      "      \"vocab_size\": %d,\n"
      "      \"width\": %d,\n"
      "      \"heads\": %d,\n"
      "      \"layers\": %d,\n"
      "      \"mlp_ratio\": %s",
      c->context_length, c->vocab_size, c->text.width, c->text.heads,
      c->text.layers, ratio[1]);
  append_openclip_norm (out, c->text.eps);
  g_string_append (out, "\n    }\n  },\n  \"preprocess_cfg\": {\n");
  append_mean_std (out, 4, "mean", "std", c);
  g_string_append (out, "\n  }\n}\n");
  return g_string_free (out, FALSE);
}

static gboolean
write_text_file (const char *dir, const char *name, const char *text,
    GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) io_error = NULL;
  if (!g_file_set_contents (path, text, -1, &io_error)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s", io_error->message);
    return FALSE;
  }
  return TRUE;
}

static gboolean
copy_file (const char *from_dir, const char *to_dir, const char *name,
    GError **error)
{
  g_autofree char *from = g_build_filename (from_dir, name, NULL);
  g_autofree char *to = g_build_filename (to_dir, name, NULL);
  g_autofree char *contents = NULL;
  gsize length;
  g_autoptr (GError) io_error = NULL;
  if (!g_file_get_contents (from, &contents, &length, &io_error)
      || !g_file_set_contents (to, contents, length, &io_error)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s", io_error->message);
    return FALSE;
  }
  return TRUE;
}

static gboolean
copy_vocabulary (const char *from_name, const char *to, GError **error)
{
  g_autofree char *from = clip_hub_resolve (from_name, NULL, error);
  if (from == NULL)
    return FALSE;
  g_autofree char *vocab = g_build_filename (from, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (from, "merges.txt", NULL);
  if (g_file_test (vocab, G_FILE_TEST_EXISTS)
      && g_file_test (merges, G_FILE_TEST_EXISTS))
    return copy_file (from, to, "vocab.json", error)
        && copy_file (from, to, "merges.txt", error);
  if (has_vocabulary (from))
    return copy_file (from, to, "bpe_simple_vocab_16e6.txt.gz", error);
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
      "%s: no vocabulary to copy (vocab.json + merges.txt, or "
      "bpe_simple_vocab_16e6.txt.gz)",
      from);
  return FALSE;
}

/* The tensor as stored: an F32 view of the caller's weights where the
 * layout keeps it as it is; fused, transposed or F16 data in new buffers
 * that `buffers` owns. */
static void
stored_data (const StoredTensor *t, ClipLayout layout, const ClipWeights *w,
    ClipDType dtype, GPtrArray *buffers, ClipTensor *tensor)
{
  gint64 n = stored_n_elements (t);
  gsize part_size = t->span->part_size;
  const float *floats = *clip_param_span_view (t->span, w, first_part (t));
  if (end_part (t) - first_part (t) > 1) {
    float *fused = g_new (float, n);
    for (int p = first_part (t); p < end_part (t); p++)
      memcpy (fused + p * part_size, *clip_param_span_view (t->span, w, p),
          part_size * sizeof (float));
    g_ptr_array_add (buffers, fused);
    floats = fused;
  } else if (is_transposed (t, layout)) {
    gint64 rows = t->shape[0], cols = t->shape[1];
    float *transposed = g_new (float, n);
    for (gint64 r = 0; r < rows; r++)
      for (gint64 c = 0; c < cols; c++)
        transposed[r * cols + c] = floats[c * rows + r];
    g_ptr_array_add (buffers, transposed);
    floats = transposed;
  }
  const void *data = floats;
  if (dtype == CLIP_DTYPE_F16) {
    guint16 *halves = g_new (guint16, n);
    for (gint64 i = 0; i < n; i++)
      halves[i] = GUINT16_TO_LE (clip_f32_to_f16 (floats[i]));
    g_ptr_array_add (buffers, halves);
    data = halves;
  }
  *tensor = (ClipTensor) {
    .name = t->name,
    .dtype = dtype,
    .n_dims = t->n_dims,
    .n_elements = n,
    .data = data,
    .n_bytes = n * clip_dtype_size (dtype),
  };
  memcpy (tensor->shape, t->shape, sizeof t->shape);
}

static gboolean
save_stored_tensors (const char *path, const ClipParamLayout *params,
    const ClipConfig *config, const ClipWeights *weights, ClipLayout layout,
    ClipDType dtype, GError **error)
{
  g_autoptr (GArray) stored = stored_tensors (params, config, layout);
  for (guint i = 0; i < stored->len; i++) {
    const StoredTensor *t = &g_array_index (stored, StoredTensor, i);
    for (int p = first_part (t); p < end_part (t); p++)
      if (*clip_param_span_view (t->span, weights, p) == NULL) {
        g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
            "%s: cannot save: the weights for '%s' are missing", path, t->name);
        return FALSE;
      }
  }
  g_autoptr (GPtrArray) buffers = g_ptr_array_new_with_free_func (g_free);
  g_autofree ClipTensor *tensors = g_new0 (ClipTensor, stored->len + 1);
  for (guint i = 0; i < stored->len; i++)
    stored_data (&g_array_index (stored, StoredTensor, i), layout, weights,
        dtype, buffers, &tensors[i]);
  guint16 half_scale = GUINT16_TO_LE (clip_f32_to_f16 (weights->logit_scale));
  tensors[stored->len] = (ClipTensor) {
    .name = logit_scale_span (params)->name,
    .dtype = dtype,
    .n_dims = 0,
    .n_elements = 1,
    .data = dtype == CLIP_DTYPE_F16 ? (const void *) &half_scale
                                    : (const void *) &weights->logit_scale,
    .n_bytes = clip_dtype_size (dtype),
  };
  return clip_safetensors_write (path, tensors, stored->len + 1, error);
}

static gboolean
save_weights (const char *path, const ClipConfig *config,
    const ClipWeights *weights, ClipLayout layout, ClipDType dtype,
    GError **error)
{
  ClipParamLayout params;
  clip_param_layout_init (&params, config);
  gboolean ok = save_stored_tensors (path, &params, config, weights, layout,
      dtype, error);
  clip_param_layout_clear (&params);
  return ok;
}

gboolean
clip_model_save (const char *dir, const ClipConfig *config,
    const ClipWeights *weights, ClipLayout layout, ClipDType dtype,
    const char *vocab_dir, GError **error)
{
  if (!clip_config_validate (config, error)) {
    g_prefix_error (error, "%s: cannot save: ", dir);
    return FALSE;
  }
  if (dtype != CLIP_DTYPE_F32 && dtype != CLIP_DTYPE_F16) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "%s: cannot save weights as %s (F32 or F16)", dir,
        clip_dtype_name (dtype));
    return FALSE;
  }
  if (g_mkdir_with_parents (dir, 0755) != 0) {
    int saved = errno;
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: cannot create the folder: %s", dir, g_strerror (saved));
    return FALSE;
  }
  g_autofree char *config_text = NULL;
  gboolean ok;
  if (layout == CLIP_LAYOUT_HF) {
    config_text = hf_config_json (config, dtype);
    g_autofree char *preprocessor = hf_preprocessor_json (config);
    ok = write_text_file (dir, "config.json", config_text, error)
        && write_text_file (dir, "preprocessor_config.json", preprocessor,
            error);
  } else {
    config_text = openclip_config_json (config, error);
    ok = config_text != NULL
        && write_text_file (dir, "open_clip_config.json", config_text, error);
  }
  g_autofree char *weights_path = g_build_filename (dir, "model.safetensors",
      NULL);
  return ok
      && save_weights (weights_path, config, weights, layout, dtype, error)
      && (vocab_dir == NULL || copy_vocabulary (vocab_dir, dir, error));
}
