/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bad model folders: each is the reference tiny-openai copied and broken
 * one way, and each load must fail with the right error code and a
 * message that names the file and the problem. */
#include "model.h"
#include "reference.h"

#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

static char *
reference_file (const char *name)
{
  g_autofree char *relative = g_build_filename ("models/tiny-openai", name,
      NULL);
  return clip_test_ref_path (relative);
}

static void
link_reference (const char *dir, const char *name)
{
  g_autofree char *target = reference_file (name);
  g_autofree char *link = g_build_filename (dir, name, NULL);
  g_assert_cmpint (symlink (target, link), ==, 0);
}

static void
write_file (const char *dir, const char *name, const void *data, gsize length)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_set_contents (path, data, length, NULL));
}

/* Loads dir and checks the error: its code, that it names `file` (a path
 * inside dir, or dir itself when NULL) and contains `problem`. */
static void
assert_load_fails (const char *dir, const char *file, int code,
    const char *problem)
{
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  g_autofree char *path = file ? g_build_filename (dir, file, NULL)
                               : g_strdup (dir);
  g_autoptr (GError) error = NULL;
  ClipModel *model = clip_model_load (dir, vocab, &error);
  g_assert_null (model);
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_error (error, CLIP_ERROR, code);
  if (!g_str_has_prefix (error->message, path)
      || strstr (error->message, problem) == NULL)
    g_error ("expected '%s: ...%s...', got '%s'", path, problem,
        error->message);
}

/* ------------------------------------------------------------ folders */

static void
test_missing_folder (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *tmp = clip_test_tmpdir ();
  g_autofree char *dir = g_build_filename (tmp, "absent", NULL);
  assert_load_fails (dir, NULL, CLIP_ERROR_IO, "no such model folder");
}

static void
test_missing_config (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_tmpdir ();
  link_reference (dir, "model.safetensors");
  assert_load_fails (dir, NULL, CLIP_ERROR_IO,
      "no config.json or open_clip_config.json");
}

static void
test_missing_weights (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_tmpdir ();
  link_reference (dir, "config.json");
  assert_load_fails (dir, NULL, CLIP_ERROR_IO,
      "no model.safetensors or open_clip_model.safetensors");
}

/* -------------------------------------------------------- safetensors */

/* The reference weights split into header JSON and data area. */
static JsonNode *
reference_header (GBytes **data_area)
{
  g_autofree char *path = reference_file ("model.safetensors");
  g_autofree char *contents = NULL;
  gsize length;
  g_assert_true (g_file_get_contents (path, &contents, &length, NULL));
  guint64 header_length;
  memcpy (&header_length, contents, 8);
  header_length = GUINT64_FROM_LE (header_length);
  *data_area = g_bytes_new (contents + 8 + header_length,
      length - 8 - header_length);
  g_autofree char *json = g_strndup (contents + 8, header_length);
  return json_from_string (json, NULL);
}

typedef void (*HeaderEdit) (JsonObject *header);

/* A folder with the reference config and weights whose header was edited. */
static char *
folder_with_edited_header (HeaderEdit edit)
{
  g_autoptr (GBytes) data = NULL;
  g_autoptr (JsonNode) root = reference_header (&data);
  edit (json_node_get_object (root));
  g_autofree char *json = json_to_string (root, FALSE);
  g_autoptr (GByteArray) file = g_byte_array_new ();
  gsize padded = (strlen (json) + 7) / 8 * 8;
  guint64 length = GUINT64_TO_LE (padded);
  g_byte_array_append (file, (const guint8 *) &length, 8);
  g_byte_array_append (file, (const guint8 *) json, strlen (json));
  for (gsize i = strlen (json); i < padded; i++)
    g_byte_array_append (file, (const guint8 *) " ", 1);
  g_byte_array_append (file, g_bytes_get_data (data, NULL),
      g_bytes_get_size (data));

  char *dir = clip_test_tmpdir ();
  link_reference (dir, "config.json");
  write_file (dir, "model.safetensors", file->data, file->len);
  return dir;
}

/* A folder with the reference config and the reference weights' bytes,
 * the first 8 replaced by `length` when it is not 0, cut to `keep` bytes
 * when that is not 0. */
static char *
folder_with_raw_weights (guint64 length, gsize keep)
{
  g_autofree char *path = reference_file ("model.safetensors");
  g_autofree char *contents = NULL;
  gsize size;
  g_assert_true (g_file_get_contents (path, &contents, &size, NULL));
  if (length != 0) {
    guint64 le = GUINT64_TO_LE (length);
    memcpy (contents, &le, 8);
  }
  char *dir = clip_test_tmpdir ();
  link_reference (dir, "config.json");
  write_file (dir, "model.safetensors", contents, keep ? keep : size);
  return dir;
}

static void
test_truncated (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *tiny = folder_with_raw_weights (0, 5);
  assert_load_fails (tiny, "model.safetensors", CLIP_ERROR_FORMAT,
      "5 bytes, too short for a safetensors file");
  /* Cut inside the data: the last tensors end past the end. */
  g_autofree char *half = folder_with_raw_weights (0, 7000000);
  assert_load_fails (half, "model.safetensors", CLIP_ERROR_FORMAT,
      "lie outside the data area");
  /* Cut inside the header. */
  g_autofree char *header = folder_with_raw_weights (0, 3000);
  assert_load_fails (header, "model.safetensors", CLIP_ERROR_FORMAT,
      "goes beyond the end of the file (3000 bytes)");
}

static void
test_header_length (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *beyond = folder_with_raw_weights (14291828, 0);
  assert_load_fails (beyond, "model.safetensors", CLIP_ERROR_FORMAT,
      "header length 14291828 goes beyond the end of the file");
  g_autofree char *absurd = folder_with_raw_weights (
      G_GUINT64_CONSTANT (1) << 40, 0);
  assert_load_fails (absurd, "model.safetensors", CLIP_ERROR_FORMAT,
      "header length 1099511627776 is absurdly large");
  /* A header length that cuts the JSON short. */
  g_autofree char *short_header = folder_with_raw_weights (100, 0);
  assert_load_fails (short_header, "model.safetensors", CLIP_ERROR_FORMAT,
      "the header is not valid JSON");
}

static void
set_offsets (JsonObject *header, const char *name, gint64 begin, gint64 end)
{
  JsonArray *offsets = json_object_get_array_member (
      json_object_get_object_member (header, name), "data_offsets");
  json_array_remove_element (offsets, 1);
  json_array_remove_element (offsets, 0);
  json_array_add_int_element (offsets, begin);
  json_array_add_int_element (offsets, end);
}

static void
edit_outside (JsonObject *header)
{
  set_offsets (header, "visual.ln_post.bias", 14285316, 14285316 + 256);
}

static void
edit_overlap (JsonObject *header)
{
  /* ln_final.weight is at [256, 512] */
  set_offsets (header, "visual.ln_post.bias", 300, 556);
}

static void
edit_shape (JsonObject *header)
{
  JsonArray *shape = json_object_get_array_member (
      json_object_get_object_member (header, "visual.ln_post.bias"), "shape");
  json_array_remove_element (shape, 0);
  json_array_add_int_element (shape, 65);
}

static void
edit_dtype (JsonObject *header)
{
  json_object_set_string_member (
      json_object_get_object_member (header, "visual.ln_post.bias"), "dtype",
      "F8_E4M3");
}

static void
edit_negative_dim (JsonObject *header)
{
  JsonArray *shape = json_object_get_array_member (
      json_object_get_object_member (header, "visual.ln_post.bias"), "shape");
  json_array_add_int_element (shape, -1);
}

static void
edit_remove (JsonObject *header)
{
  json_object_remove_member (header, "visual.ln_post.bias");
}

static void
edit_integer_logit_scale (JsonObject *header)
{
  json_object_set_string_member (
      json_object_get_object_member (header, "logit_scale"), "dtype", "I32");
}

static void
edit_transposed_proj (JsonObject *header)
{
  JsonArray *shape = json_object_get_array_member (
      json_object_get_object_member (header, "visual.proj"), "shape");
  json_array_remove_element (shape, 0);
  json_array_add_int_element (shape, 64); /* [32, 64] */
}

static void
test_bad_tensors (void)
{
  if (!clip_test_reference ())
    return;
  const int F = CLIP_ERROR_FORMAT;
  const struct {
    HeaderEdit edit;
    int code;
    const char *problem;
  } cases[] = {
    { edit_outside, F,
        "tensor 'visual.ln_post.bias': data_offsets "
        "[14285316, 14285572] lie outside the data area (14285316 bytes)" },
    { edit_overlap, F, "overlaps tensor" },
    { edit_shape, F,
        "tensor 'visual.ln_post.bias': data_offsets span 256 "
        "bytes, but F32 with 65 elements needs 260" },
    { edit_dtype, CLIP_ERROR_UNSUPPORTED,
        "tensor 'visual.ln_post.bias' has dtype 'F8_E4M3'" },
    { edit_negative_dim, F,
        "tensor 'visual.ln_post.bias': dimension 1 of "
        "the shape is not a non-negative integer" },
    { edit_remove, F,
        "tensor 'visual.ln_post.bias' is missing (expected "
        "shape [64])" },
    { edit_integer_logit_scale, F,
        "tensor 'logit_scale' has dtype I32 and "
        "1 element(s), expected one float" },
    { edit_transposed_proj, CLIP_ERROR_CONFIG,
        "tensor 'visual.proj' has "
        "shape [32, 64], expected [64, 32]" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *dir = folder_with_edited_header (cases[i].edit);
    assert_load_fails (dir, "model.safetensors", cases[i].code,
        cases[i].problem);
  }
  /* Overlaps name both tensors. */
  g_autofree char *dir = folder_with_edited_header (edit_overlap);
  g_autofree char *vocab = clip_test_ref_path ("vocab");
  g_autoptr (GError) error = NULL;
  g_assert_null (clip_model_load (dir, vocab, &error));
  g_assert_nonnull (strstr (error->message, "'visual.ln_post.bias'"));
  g_assert_nonnull (strstr (error->message, "'ln_final.weight'"));
}

/* ------------------------------------------------------------- configs */

/* A folder with the reference weights and the reference config edited:
 * `from` replaced by `to`. */
static char *
folder_with_config (const char *from, const char *to)
{
  g_autofree char *path = reference_file ("config.json");
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, from));
  g_auto (GStrv) parts = g_strsplit (text, from, 2);
  g_autofree char *edited = g_strconcat (parts[0], to, parts[1], NULL);
  char *dir = clip_test_tmpdir ();
  link_reference (dir, "model.safetensors");
  write_file (dir, "config.json", edited, strlen (edited));
  return dir;
}

static void
test_bad_configs (void)
{
  if (!clip_test_reference ())
    return;
  const int C = CLIP_ERROR_CONFIG;
  const struct {
    const char *from, *to;
    int code;
    const char *problem;
  } cases[] = {
    /* sizes that disagree with the weights */
    { "\"embed_dim\": 32", "\"embed_dim\": 16", C,
        "tensor 'visual.proj' has shape [64, 32], expected [64, 16] from the config" },
    { "\"vocab_size\": 49408", "\"vocab_size\": 49409", C,
        "tensor 'token_embedding.weight' has shape [49408, 64], expected [49409, 64]" },
    { "\"context_length\": 77", "\"context_length\": 76", C,
        "tensor 'positional_embedding' has shape [77, 64], expected [76, 64]" },
    { "\"layers\": 2,\n    \"width\"", "\"layers\": 3,\n    \"width\"",
        CLIP_ERROR_FORMAT,
        "tensor 'visual.transformer.resblocks.2.ln_1.weight' is missing" },
    /* zero, negative, inconsistent */
    { "\"embed_dim\": 32", "\"embed_dim\": 0", C, "embed_dim is 0" },
    { "\"layers\": 2\n", "\"layers\": -1\n", C, "text layers is -1" },
    { "\"heads\": 2", "\"heads\": 3", C,
        "text width 64 is not divisible by its 3 heads" },
    { "\"head_width\": 64", "\"head_width\": 48", C,
        "vision_cfg.width 64 is not a multiple of head_width 48" },
    { "\"patch_size\": 32", "\"patch_size\": 30", C,
        "image_size 224 is not divisible by patch_size 30" },
    { "\"width\": 64,\n    \"patch_size\"", "\"width\": 0,\n    \"patch_size\"",
        C, "vision width is 0" },
    /* ResNet and malformed */
    { "\"layers\": 2,\n    \"width\"",
        "\"layers\": [3, 4, 6, 3],\n    \"width\"", CLIP_ERROR_UNSUPPORTED,
        "ResNet CLIP models are not supported" },
    { "\"quick_gelu\": true", "\"quick_gelu\": yes", CLIP_ERROR_FORMAT,
        "invalid JSON" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *dir = folder_with_config (cases[i].from, cases[i].to);
    gboolean names_weights = strstr (cases[i].problem, "tensor '") != NULL;
    assert_load_fails (dir, names_weights ? "model.safetensors" : "config.json",
        cases[i].code, cases[i].problem);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bad-input/missing-folder", test_missing_folder);
  g_test_add_func ("/bad-input/missing-config", test_missing_config);
  g_test_add_func ("/bad-input/missing-weights", test_missing_weights);
  g_test_add_func ("/bad-input/truncated", test_truncated);
  g_test_add_func ("/bad-input/header-length", test_header_length);
  g_test_add_func ("/bad-input/tensors", test_bad_tensors);
  g_test_add_func ("/bad-input/configs", test_bad_configs);
  return g_test_run ();
}
