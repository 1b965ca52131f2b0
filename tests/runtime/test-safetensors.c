/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* safetensors: F16/BF16 conversions, the writer's exact format (byte for
 * byte against the reference files), and every malformed header the parser
 * must refuse without touching data. */
#include "safetensors.h"

#include "clip.h"
#include "reference.h"

#include <math.h>
#include <string.h>

static guint32
float_bits (float f)
{
  guint32 u;
  memcpy (&u, &f, 4);
  return u;
}

static float
bits_float (guint32 u)
{
  float f;
  memcpy (&f, &u, 4);
  return f;
}

/* ----------------------------------------------------------- conversions */

static void
test_f16_every_half_round_trips (void)
{
  for (guint32 h = 0; h <= 0xffff; h++) {
    float f = clip_f16_to_f32 (h);
    gboolean is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
    if (is_nan) {
      g_assert_true (isnan (f));
      g_assert_true (isnan (clip_f16_to_f32 (clip_f32_to_f16 (f))));
    } else {
      g_assert_cmphex (clip_f32_to_f16 (f), ==, h);
    }
  }
}

static void
test_f16_values (void)
{
  g_assert_cmpfloat (clip_f16_to_f32 (0x3c00), ==, 1.0f);
  g_assert_cmpfloat (clip_f16_to_f32 (0xc000), ==, -2.0f);
  g_assert_cmpfloat (clip_f16_to_f32 (0x7bff), ==, 65504.0f);
  g_assert_cmpfloat (clip_f16_to_f32 (0x0001), ==,
      0x1p-24f); /* smallest subnormal */
  g_assert_cmpfloat (clip_f16_to_f32 (0x03ff), ==, 1023 * 0x1p-24f);
  g_assert_cmpfloat (clip_f16_to_f32 (0x0400), ==,
      0x1p-14f); /* smallest normal */
  g_assert_true (
      isinf (clip_f16_to_f32 (0x7c00)) && clip_f16_to_f32 (0x7c00) > 0);
  g_assert_true (
      isinf (clip_f16_to_f32 (0xfc00)) && clip_f16_to_f32 (0xfc00) < 0);
  g_assert_cmphex (float_bits (clip_f16_to_f32 (0x8000)), ==, 0x80000000);

  /* Round to nearest, ties to even. */
  g_assert_cmphex (clip_f32_to_f16 (1.0f + 0x1p-11f), ==,
      0x3c00); /* tie, even down */
  g_assert_cmphex (clip_f32_to_f16 (1.0f + 3 * 0x1p-11f), ==,
      0x3c02); /* tie, even up */
  g_assert_cmphex (clip_f32_to_f16 (1.0f + 0x1p-11f + 0x1p-20f), ==, 0x3c01);
  g_assert_cmphex (clip_f32_to_f16 (65519.0f), ==, 0x7bff);
  g_assert_cmphex (clip_f32_to_f16 (65520.0f), ==, 0x7c00); /* tie to inf */
  g_assert_cmphex (clip_f32_to_f16 (-1e9f), ==, 0xfc00);
  g_assert_cmphex (clip_f32_to_f16 (INFINITY), ==, 0x7c00);
  /* Subnormals: 2^-25 is the tie between 0 and the smallest subnormal. */
  g_assert_cmphex (clip_f32_to_f16 (0x1p-25f), ==, 0x0000);
  g_assert_cmphex (clip_f32_to_f16 (0x1.000002p-25f), ==, 0x0001);
  g_assert_cmphex (clip_f32_to_f16 (1.5f * 0x1p-24f), ==, 0x0002);
  g_assert_cmphex (clip_f32_to_f16 (2.5f * 0x1p-24f), ==, 0x0002);
  g_assert_cmphex (clip_f32_to_f16 (1023.5f * 0x1p-24f), ==,
      0x0400); /* carries into a normal */
  g_assert_cmphex (clip_f32_to_f16 (-0x1p-30f), ==, 0x8000);
  g_assert_cmphex (clip_f32_to_f16 (1e-40f), ==, 0x0000); /* an f32 subnormal */
  guint16 nan = clip_f32_to_f16 (NAN);
  g_assert_cmphex (nan & 0x7c00, ==, 0x7c00);
  g_assert_cmphex (nan & 0x3ff, !=, 0);
  /* A NaN whose payload sits only in the low bits must stay a NaN. */
  g_assert_cmphex (clip_f32_to_f16 (bits_float (0x7f800001)) & 0x3ff, !=, 0);
}

/* Against the compiler's own float -> _Float16 conversion, which rounds
 * to nearest even, over a spread of bit patterns. */
static void
test_f16_matches_compiler (void)
{
#ifdef __FLT16_MAX__
  for (guint64 u = 0; u <= 0xffffffffu; u += 997) {
    float f = bits_float ((guint32) u);
    if (isnan (f))
      continue;
    _Float16 h = (_Float16) f;
    guint16 expected;
    memcpy (&expected, &h, 2);
    if (clip_f32_to_f16 (f) != expected)
      g_error ("0x%08x: got 0x%04x, expected 0x%04x", (guint32) u,
          clip_f32_to_f16 (f), expected);
  }
#else
  g_test_skip ("the compiler has no _Float16");
#endif
}

static void
test_bf16 (void)
{
  g_assert_cmpfloat (clip_bf16_to_f32 (0x3f80), ==, 1.0f);
  g_assert_cmpfloat (clip_bf16_to_f32 (0xc040), ==, -3.0f);
  g_assert_true (isinf (clip_bf16_to_f32 (0x7f80)));
  g_assert_true (isnan (clip_bf16_to_f32 (0x7fc0)));
  g_assert_cmphex (float_bits (clip_bf16_to_f32 (0x0001)), ==, 0x00010000);
}

/* ---------------------------------------------------------------- writer */

static void
test_write_read (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "t.safetensors", NULL);
  const float f32[6] = { 1, 2, 3, 4, 5, 6 };
  const guint16 f16[3] = { 0x3c00, 0x4000, 0x4200 };
  const gint64 i64[2] = { -1, G_MAXINT64 };
  const guint8 u8[3] = { 7, 8, 9 };
  const gint32 i32[1] = { -5 };
  const guint16 bf16[1] = { 0x3f80 };
  const float scalar = 2.5f;
  ClipTensor tensors[] = {
    { "u8", CLIP_DTYPE_U8, 1, { 3 }, 3, u8, 3 },
    { "b.f32", CLIP_DTYPE_F32, 2, { 2, 3 }, 6, f32, 24 },
    { "half", CLIP_DTYPE_F16, 1, { 3 }, 3, f16, 6 },
    { "a.scalar", CLIP_DTYPE_F32, 0, { 0 }, 1, &scalar, 4 },
    { "ids", CLIP_DTYPE_I64, 2, { 1, 2 }, 2, i64, 16 },
    { "i32", CLIP_DTYPE_I32, 1, { 1 }, 1, i32, 4 },
    { "bf", CLIP_DTYPE_BF16, 1, { 1 }, 1, bf16, 2 },
    { "empty", CLIP_DTYPE_F32, 2, { 0, 4 }, 0, NULL, 0 },
    { "quote\"name", CLIP_DTYPE_U8, 1, { 1 }, 1, u8, 1 },
  };
  g_autoptr (GError) error = NULL;
  g_assert_true (
      clip_safetensors_write (path, tensors, G_N_ELEMENTS (tensors), &error));
  g_assert_no_error (error);

  g_autofree char *contents = NULL;
  gsize length;
  g_assert_true (g_file_get_contents (path, &contents, &length, NULL));
  guint64 header_length = GUINT64_FROM_LE (*(guint64 *) contents);
  g_assert_cmpuint (header_length % 8, ==, 0);
  g_autofree char *header = g_strndup (contents + 8, header_length);
  g_assert_nonnull (strstr (header, "\"__metadata__\":{\"format\":\"pt\"}"));
  g_assert_true (g_str_has_prefix (header, "{\"ids\":"));

  ClipSafetensors *st = clip_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (clip_safetensors_n_tensors (st), ==,
      G_N_ELEMENTS (tensors));
  g_assert_cmpstr (clip_safetensors_path (st), ==, path);
  /* Largest element first, then by name: I64, F32 (a.scalar, b.f32, empty),
   * I32, BF16, F16, U8. */
  const char *order[] = { "ids", "a.scalar", "b.f32", "empty", "i32", "bf",
    "half", "quote\"name", "u8" };
  const guint8 *previous_end = NULL;
  for (guint i = 0; i < G_N_ELEMENTS (order); i++) {
    const ClipTensor *t = clip_safetensors_find (st, order[i]);
    g_assert_nonnull (t);
    g_assert_cmpuint ((guintptr) t->data % clip_dtype_size (t->dtype), ==, 0);
    if (previous_end != NULL)
      g_assert_true ((const guint8 *) t->data == previous_end);
    previous_end = (const guint8 *) t->data + t->n_bytes;
  }
  for (guint i = 0; i < G_N_ELEMENTS (tensors); i++) {
    const ClipTensor *t = clip_safetensors_find (st, tensors[i].name);
    g_assert_cmpint (t->dtype, ==, tensors[i].dtype);
    g_assert_cmpint (t->n_dims, ==, tensors[i].n_dims);
    for (int d = 0; d < t->n_dims; d++)
      g_assert_cmpint (t->shape[d], ==, tensors[i].shape[d]);
    g_assert_cmpint (t->n_elements, ==, tensors[i].n_elements);
    g_assert_cmpuint (t->n_bytes, ==, tensors[i].n_bytes);
    if (t->n_bytes > 0)
      g_assert_cmpmem (t->data, t->n_bytes, tensors[i].data, t->n_bytes);
  }
  g_assert_null (clip_safetensors_find (st, "__metadata__"));
  clip_safetensors_close (st);

  /* Written through a temporary file that was renamed: nothing else is left. */
  g_autoptr (GDir) listing = g_dir_open (dir, 0, NULL);
  g_assert_cmpstr (g_dir_read_name (listing), ==, "t.safetensors");
  g_assert_null (g_dir_read_name (listing));
}

static void
test_write_refuses_inconsistent_tensor (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "bad.safetensors", NULL);
  const float data[4] = { 0 };
  ClipTensor bad = { "bad", CLIP_DTYPE_F32, 1, { 4 }, 4, data, 12 };
  g_autoptr (GError) error = NULL;
  g_assert_false (clip_safetensors_write (path, &bad, 1, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "'bad'"));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
}

/* Rewriting a reference file's tensors gives the very same bytes: the
 * writer orders, aligns and pads as torch's safetensors does. */
static void
rewrite_reference (const char *model)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *relative = g_build_filename ("models", model,
      "model.safetensors", NULL);
  g_autofree char *source = clip_test_ref_path (relative);
  g_autoptr (GError) error = NULL;
  ClipSafetensors *st = clip_safetensors_open (source, &error);
  g_assert_no_error (error);
  guint n = clip_safetensors_n_tensors (st);
  g_autofree ClipTensor *tensors = g_new (ClipTensor, n);
  for (guint i = 0; i < n; i++)
    tensors[i] = *clip_safetensors_get (st, i);
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *copy = g_build_filename (dir, "copy.safetensors", NULL);
  g_assert_true (clip_safetensors_write (copy, tensors, n, &error));
  g_assert_no_error (error);
  clip_safetensors_close (st);

  g_autofree char *expected = NULL, *actual = NULL;
  gsize expected_length, actual_length;
  g_assert_true (
      g_file_get_contents (source, &expected, &expected_length, NULL));
  g_assert_true (g_file_get_contents (copy, &actual, &actual_length, NULL));
  g_assert_cmpmem (actual, actual_length, expected, expected_length);
}

static void
test_rewrite_reference_f32 (void)
{
  rewrite_reference ("tiny-openai");
}

static void
test_rewrite_reference_hf (void)
{
  rewrite_reference ("tiny-hf"); /* I64 position_ids first */
}

static void
test_rewrite_reference_f16 (void)
{
  rewrite_reference ("tiny-openai-f16");
}

/* ---------------------------------------------------------------- parser */

/* A file in memory: the header as given, unpadded, then data_size bytes. */
static GByteArray *
make_file (const char *header, gsize data_size)
{
  GByteArray *file = g_byte_array_new ();
  guint64 length = GUINT64_TO_LE (strlen (header));
  g_byte_array_append (file, (const guint8 *) &length, 8);
  g_byte_array_append (file, (const guint8 *) header, strlen (header));
  for (gsize i = 0; i < data_size; i++) {
    guint8 zero = 0;
    g_byte_array_append (file, &zero, 1);
  }
  return file;
}

static void
assert_refused (const char *header, gsize data_size, int code,
    const char *fragment)
{
  g_autoptr (GByteArray) file = make_file (header, data_size);
  g_autoptr (GError) error = NULL;
  ClipSafetensors *st = clip_safetensors_parse (file->data, file->len,
      "mem.safetensors", &error);
  g_assert_null (st);
  g_assert_error (error, CLIP_ERROR, code);
  g_assert_true (g_str_has_prefix (error->message, "mem.safetensors: "));
  if (strstr (error->message, fragment) == NULL)
    g_error ("'%s' is not in '%s'", fragment, error->message);
}

static void
test_parse_good (void)
{
  g_autoptr (GByteArray) file = make_file (
      "{\"__metadata__\":{\"x\":\"y\"},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,8]}}",
      8);
  g_autoptr (GError) error = NULL;
  ClipSafetensors *st = clip_safetensors_parse (file->data, file->len, "mem",
      &error);
  g_assert_no_error (error);
  g_assert_cmpuint (clip_safetensors_n_tensors (st), ==, 2);
  const ClipTensor *a = clip_safetensors_find (st, "a");
  g_assert_true ((const guint8 *) a->data == file->data + file->len - 8);
  g_assert_cmpuint (a->n_bytes, ==, 8);
  clip_safetensors_close (st);
}

static void
test_parse_truncated (void)
{
  guint8 bytes[7] = { 0 };
  g_autoptr (GError) error = NULL;
  g_assert_null (clip_safetensors_parse (bytes, sizeof bytes, "short", &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "too short"));
}

static void
test_parse_header_length (void)
{
  g_autoptr (GByteArray) file = make_file ("{}", 0);
  g_autoptr (GError) error = NULL;
  guint64 beyond = GUINT64_TO_LE (3);
  memcpy (file->data, &beyond, 8);
  g_assert_null (clip_safetensors_parse (file->data, file->len, "f", &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "beyond the end"));
  g_clear_error (&error);

  guint64 absurd = GUINT64_TO_LE (G_GUINT64_CONSTANT (0xffffffffffffff00));
  memcpy (file->data, &absurd, 8);
  g_assert_null (clip_safetensors_parse (file->data, file->len, "f", &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "absurdly large"));
}

static void
test_parse_bad_headers (void)
{
  const int F = CLIP_ERROR_FORMAT;
  assert_refused ("{\"a\":", 0, F, "not valid JSON");
  assert_refused ("[1, 2]", 0, F, "not a JSON object");
  assert_refused ("{\"a\":{\"b\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}}", 0,
      F, "nested too deeply");
  assert_refused ("{\"a\":1}", 0, F, "'a': header entry is not an object");
  assert_refused ("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F,
      "'a': no \"dtype\"");
  assert_refused (
      "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
      CLIP_ERROR_UNSUPPORTED, "tensor 'a' has dtype 'F64'");
  assert_refused ("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, F,
      "'a': no \"shape\"");
  assert_refused (
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, F,
      "'a': dimension 0");
  assert_refused (
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
      F, "'a': dimension 0");
  assert_refused ("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                  "\"data_offsets\":[0,1]}}",
      1, F, "'a' has 9 dimensions");
  assert_refused ("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,"
                  "4294967296],\"data_offsets\":[0,4]}}",
      4, F,
      "'a': the shape's element "
      "count overflows");
  /* Fits in int64 as elements, overflows as bytes. */
  assert_refused ("{\"a\":{\"dtype\":\"I64\",\"shape\":[4611686018427387904],"
                  "\"data_offsets\":[0,8]}}",
      8, F, "'a': data_offsets span 8 bytes");
  assert_refused ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, F,
      "'a': \"data_offsets\" is not two ascending");
  assert_refused (
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, F,
      "'a': \"data_offsets\" is not two ascending");
  assert_refused (
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, F,
      "'a': \"data_offsets\" is not two ascending");
  assert_refused (
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, F,
      "'a': \"data_offsets\" is not two ascending");
  assert_refused (
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", 4,
      F, "'a': \"data_offsets\" is not two ascending");
  assert_refused (
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 8, F,
      "'a': data_offsets [4, 12] lie outside the data area (8 bytes)");
  assert_refused (
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, F,
      "'a': data_offsets span 4 bytes, but F32 with 2 elements needs 8");
  assert_refused (
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
      8, F, "overlaps tensor");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/safetensors/f16/round-trip",
      test_f16_every_half_round_trips);
  g_test_add_func ("/safetensors/f16/values", test_f16_values);
  g_test_add_func ("/safetensors/f16/matches-compiler",
      test_f16_matches_compiler);
  g_test_add_func ("/safetensors/bf16", test_bf16);
  g_test_add_func ("/safetensors/write/read-back", test_write_read);
  g_test_add_func ("/safetensors/write/inconsistent",
      test_write_refuses_inconsistent_tensor);
  g_test_add_func ("/safetensors/write/reference-f32",
      test_rewrite_reference_f32);
  g_test_add_func ("/safetensors/write/reference-hf",
      test_rewrite_reference_hf);
  g_test_add_func ("/safetensors/write/reference-f16",
      test_rewrite_reference_f16);
  g_test_add_func ("/safetensors/parse/good", test_parse_good);
  g_test_add_func ("/safetensors/parse/truncated", test_parse_truncated);
  g_test_add_func ("/safetensors/parse/header-length",
      test_parse_header_length);
  g_test_add_func ("/safetensors/parse/bad-headers", test_parse_bad_headers);
  return g_test_run ();
}
