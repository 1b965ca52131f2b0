/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* safetensors reader and writer.
 *
 * The reader checks the whole header (offsets, sizes, overlaps) before it
 * hands out a single data pointer, so that a malformed or hostile file is
 * an error and never an out-of-bounds read. */
#include "safetensors.h"

#include "clip.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Real headers are a few hundred kB at most; anything larger is corrupt. */
#define MAX_HEADER_BYTES (100 * 1000 * 1000)
/* json-glib parses recursively; a header nested deeper than any tensor
 * entry needs is refused before it can exhaust the stack. */
#define MAX_JSON_DEPTH 16

struct _ClipSafetensors {
  char *path;
  GMappedFile *mapped; /* NULL when parsed from the caller's memory */
  int fd;              /* the mapped file, kept open to notice it shrinking */
  ClipTensor *tensors;
  guint n_tensors;
  GHashTable *by_name; /* name -> ClipTensor* */
  const guint8 *bytes; /* the whole file: header and data */
  gsize header_end;    /* where the data area starts */
  gsize size;
};

static const struct {
  const char *name;
  ClipDType dtype;
  gsize size;
} dtypes[] = {
  { "F32", CLIP_DTYPE_F32, 4 },
  { "F16", CLIP_DTYPE_F16, 2 },
  { "BF16", CLIP_DTYPE_BF16, 2 },
  { "I64", CLIP_DTYPE_I64, 8 },
  { "I32", CLIP_DTYPE_I32, 4 },
  { "U8", CLIP_DTYPE_U8, 1 },
};

gsize
clip_dtype_size (ClipDType dtype)
{
  for (gsize i = 0; i < G_N_ELEMENTS (dtypes); i++)
    if (dtypes[i].dtype == dtype)
      return dtypes[i].size;
  return 0;
}

const char *
clip_dtype_name (ClipDType dtype)
{
  for (gsize i = 0; i < G_N_ELEMENTS (dtypes); i++)
    if (dtypes[i].dtype == dtype)
      return dtypes[i].name;
  return "unknown";
}

static gboolean
dtype_from_name (const char *name, ClipDType *dtype)
{
  for (gsize i = 0; i < G_N_ELEMENTS (dtypes); i++)
    if (strcmp (dtypes[i].name, name) == 0) {
      *dtype = dtypes[i].dtype;
      return TRUE;
    }
  return FALSE;
}

/* ------------------------------------------------------------ conversions */

float
clip_f16_to_f32 (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16;
  guint32 exponent = (h >> 10) & 0x1f;
  guint32 mantissa = h & 0x3ff;
  union {
    guint32 u;
    float f;
  } v;
  if (exponent == 0x1f) {
    v.u = sign | 0x7f800000
        | (mantissa << 13); /* inf, or NaN with its payload */
  } else if (exponent == 0) {
    /* Zero or subnormal: mantissa * 2^-24, exact in float. */
    float magnitude = (float) mantissa * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  } else {
    v.u = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  return v.f;
}

guint16
clip_f32_to_f16 (float f)
{
  union {
    float f;
    guint32 u;
  } v = { f };
  guint16 sign = (v.u >> 16) & 0x8000;
  guint32 magnitude = v.u & 0x7fffffff;

  if (magnitude
      > 0x7f800000) /* NaN: stays a quiet NaN, keeps the top payload bits */
    return sign | 0x7e00 | ((magnitude >> 13) & 0x3ff);
  /* 65520 is halfway between 65504 (the largest half) and 65536, and ties
   * go to the even neighbour, which is infinity. */
  if (magnitude >= 0x477ff000)
    return sign | 0x7c00;
  if (magnitude < 0x38800000) {  /* below 2^-14: a half subnormal or zero */
    if (magnitude <= 0x33000000) /* at most 2^-25: rounds to (even) zero */
      return sign;
    guint32 mantissa = (magnitude & 0x7fffff) | 0x800000;
    int shift = 126 - (int) (magnitude >> 23); /* 14..24 */
    guint32 result = mantissa >> shift;
    guint32 rest = mantissa & ((1u << shift) - 1);
    guint32 half = 1u << (shift - 1);
    if (rest > half || (rest == half && (result & 1)))
      result++; /* may carry into the smallest normal, which is right */
    return sign | result;
  }
  guint32 result = (magnitude - ((127u - 15u) << 23)) >> 13;
  guint32 rest = magnitude & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (result & 1)))
    result++; /* a carry into the exponent is the right rounding too */
  return sign | result;
}

float
clip_bf16_to_f32 (guint16 h)
{
  union {
    guint32 u;
    float f;
  } v = { (guint32) h << 16 };
  return v.f;
}

guint16
clip_f32_to_bf16 (float f)
{
  guint32 u;
  memcpy (&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (guint16) ((u >> 16) | 0x40); /* NaN stays a quiet NaN */
  u += 0x7fffu + ((u >> 16) & 1);
  return (guint16) (u >> 16);
}

/* ----------------------------------------------------------------- reader */

static void
safetensors_free (ClipSafetensors *st)
{
  if (st->tensors != NULL)
    for (guint i = 0; i < st->n_tensors; i++)
      g_free ((char *) st->tensors[i].name);
  g_free (st->tensors);
  if (st->by_name != NULL)
    g_hash_table_unref (st->by_name);
  if (st->mapped != NULL) {
    g_mapped_file_unref (st->mapped);
    close (st->fd);
  }
  g_free (st->path);
  g_free (st);
}

/* Depth of [ and { nesting outside strings; stops counting past the limit. */
static gboolean
json_depth_ok (const char *text, gsize length)
{
  int depth = 0;
  gboolean in_string = FALSE;
  for (gsize i = 0; i < length; i++) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = FALSE;
    } else if (c == '"') {
      in_string = TRUE;
    } else if (c == '[' || c == '{') {
      if (++depth > MAX_JSON_DEPTH)
        return FALSE;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return TRUE;
}

static gboolean
node_get_int (JsonNode *node, gint64 *value)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *value = json_node_get_int (node);
  return TRUE;
}

/* Fills everything of one tensor but its data pointer from its header
 * entry; begin/end are its byte offsets in the data area. */
static gboolean
parse_tensor_entry (const char *file, const char *name, JsonNode *node,
    gsize data_size, ClipTensor *tensor, guint64 *begin, guint64 *end,
    GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: tensor '%s': header entry is not an object", file, name);
    return FALSE;
  }
  JsonObject *entry = json_node_get_object (node);

  JsonNode *dtype_node = json_object_get_member (entry, "dtype");
  if (dtype_node == NULL || !JSON_NODE_HOLDS_VALUE (dtype_node)
      || json_node_get_value_type (dtype_node) != G_TYPE_STRING) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: tensor '%s': no \"dtype\" string", file, name);
    return FALSE;
  }
  const char *dtype_name = json_node_get_string (dtype_node);
  if (!dtype_from_name (dtype_name, &tensor->dtype)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_UNSUPPORTED,
        "%s: tensor '%s' has dtype '%s', which is not supported "
        "(F32, F16, BF16, I64, I32, U8)",
        file, name, dtype_name);
    return FALSE;
  }

  JsonNode *shape_node = json_object_get_member (entry, "shape");
  if (shape_node == NULL || !JSON_NODE_HOLDS_ARRAY (shape_node)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: tensor '%s': no \"shape\" array", file, name);
    return FALSE;
  }
  JsonArray *shape = json_node_get_array (shape_node);
  guint n_dims = json_array_get_length (shape);
  if (n_dims > CLIP_TENSOR_MAX_DIMS) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: tensor '%s' has %u dimensions, at most %d are supported", file,
        name, n_dims, CLIP_TENSOR_MAX_DIMS);
    return FALSE;
  }
  tensor->n_dims = n_dims;
  gint64 n_elements = 1;
  for (guint d = 0; d < n_dims; d++) {
    gint64 dim;
    if (!node_get_int (json_array_get_element (shape, d), &dim) || dim < 0) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
          "%s: tensor '%s': dimension %u of the shape is not a "
          "non-negative integer",
          file, name, d);
      return FALSE;
    }
    if (dim != 0 && n_elements > G_MAXINT64 / dim) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
          "%s: tensor '%s': the shape's element count overflows", file, name);
      return FALSE;
    }
    tensor->shape[d] = dim;
    n_elements *= dim;
  }
  tensor->n_elements = n_elements;

  JsonNode *offsets_node = json_object_get_member (entry, "data_offsets");
  JsonArray *offsets = offsets_node && JSON_NODE_HOLDS_ARRAY (offsets_node)
      ? json_node_get_array (offsets_node)
      : NULL;
  gint64 first, last;
  if (offsets == NULL || json_array_get_length (offsets) != 2
      || !node_get_int (json_array_get_element (offsets, 0), &first)
      || !node_get_int (json_array_get_element (offsets, 1), &last) || first < 0
      || last < first) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: tensor '%s': \"data_offsets\" is not two ascending "
        "non-negative integers",
        file, name);
    return FALSE;
  }
  if ((guint64) last > data_size) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: tensor '%s': data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
        "] lie outside the data area (%" G_GSIZE_FORMAT
        " bytes); the file is truncated or corrupt",
        file, name, first, last, data_size);
    return FALSE;
  }
  gsize element_size = clip_dtype_size (tensor->dtype);
  if ((guint64) n_elements > G_MAXINT64 / element_size
      || (guint64) (last - first) != (guint64) n_elements * element_size) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: tensor '%s': data_offsets span %" G_GINT64_FORMAT " bytes, but "
        "%s with %" G_GINT64_FORMAT " elements needs %" G_GINT64_FORMAT,
        file, name, last - first, dtype_name, n_elements,
        (guint64) n_elements > G_MAXINT64 / element_size
            ? G_MAXINT64
            : n_elements * (gint64) element_size);
    return FALSE;
  }
  tensor->n_bytes = last - first;
  *begin = first;
  *end = last;
  return TRUE;
}

typedef struct {
  guint64 begin, end;
  guint index;
} Span;

static int
compare_spans (gconstpointer a, gconstpointer b)
{
  const Span *x = a, *y = b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

ClipSafetensors *
clip_safetensors_parse (const guint8 *data, gsize size,
    const char *name_for_errors, GError **error)
{
  const char *file = name_for_errors ? name_for_errors : "safetensors";
  if (size < 8) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: %" G_GSIZE_FORMAT " bytes, too short for a safetensors file", file,
        size);
    return NULL;
  }
  guint64 header_length = 0;
  for (int i = 7; i >= 0; i--)
    header_length = (header_length << 8) | data[i];
  if (header_length > MAX_HEADER_BYTES) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: header length %" G_GUINT64_FORMAT " is absurdly large "
        "(more than %d bytes): not a safetensors file",
        file, header_length, MAX_HEADER_BYTES);
    return NULL;
  }
  if (header_length > size - 8) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: header length %" G_GUINT64_FORMAT " goes beyond the end of the "
        "file (%" G_GSIZE_FORMAT " bytes): truncated or not a safetensors "
        "file",
        file, header_length, size);
    return NULL;
  }
  const char *header = (const char *) data + 8;
  const guint8 *data_area = data + 8 + header_length;
  gsize data_size = size - 8 - header_length;

  if (!json_depth_ok (header, header_length)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: the header's JSON is nested too deeply", file);
    return NULL;
  }
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) json_error = NULL;
  if (!json_parser_load_from_data (parser, header, header_length,
          &json_error)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: the header is not valid JSON: %s", file, json_error->message);
    return NULL;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: the header is not a JSON object", file);
    return NULL;
  }
  JsonObject *object = json_node_get_object (root);

  ClipSafetensors *st = g_new0 (ClipSafetensors, 1);
  st->path = g_strdup (file);
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GList) members = json_object_get_members (object);
  st->tensors = g_new0 (ClipTensor, g_list_length (members));
  g_autofree Span *spans = g_new0 (Span, g_list_length (members));

  for (GList *l = members; l != NULL; l = l->next) {
    const char *name = l->data;
    if (strcmp (name, "__metadata__") == 0)
      continue;
    ClipTensor *tensor = &st->tensors[st->n_tensors];
    Span *span = &spans[st->n_tensors];
    if (!parse_tensor_entry (file, name, json_object_get_member (object, name),
            data_size, tensor, &span->begin, &span->end, error)) {
      safetensors_free (st);
      return NULL;
    }
    tensor->name = g_strdup (name);
    span->index = st->n_tensors;
    g_hash_table_insert (st->by_name, (char *) tensor->name, tensor);
    st->n_tensors++;
  }

  /* Sorted by start, two tensors overlap when one starts before the
   * previous non-empty one ends. */
  qsort (spans, st->n_tensors, sizeof (Span), compare_spans);
  const Span *previous = NULL;
  for (guint i = 0; i < st->n_tensors; i++) {
    if (spans[i].begin == spans[i].end)
      continue;
    if (previous != NULL && spans[i].begin < previous->end) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
          "%s: tensor '%s' (bytes %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT
          ") overlaps tensor '%s' (bytes %" G_GUINT64_FORMAT
          "..%" G_GUINT64_FORMAT ")",
          file, st->tensors[spans[i].index].name, spans[i].begin, spans[i].end,
          st->tensors[previous->index].name, previous->begin, previous->end);
      safetensors_free (st);
      return NULL;
    }
    previous = &spans[i];
  }
  for (guint i = 0; i < st->n_tensors; i++)
    st->tensors[spans[i].index].data = data_area + spans[i].begin;
  st->bytes = data;
  st->header_end = 8 + header_length;
  st->size = size;
  return st;
}

ClipSafetensors *
clip_safetensors_open (const char *path, GError **error)
{
  g_autoptr (GError) map_error = NULL;
  int fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    int saved_errno = errno;
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", path,
        g_strerror (saved_errno));
    return NULL;
  }
  GMappedFile *mapped = g_mapped_file_new_from_fd (fd, FALSE, &map_error);
  if (mapped == NULL) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", path,
        map_error->message);
    close (fd);
    return NULL;
  }
  ClipSafetensors *st = clip_safetensors_parse (
      (const guint8 *) g_mapped_file_get_contents (mapped),
      g_mapped_file_get_length (mapped), path, error);
  if (st == NULL) {
    g_mapped_file_unref (mapped);
    close (fd);
    return NULL;
  }
  st->mapped = mapped;
  st->fd = fd;
  return st;
}

gboolean
clip_safetensors_check_file (const ClipSafetensors *st, GError **error)
{
  if (st == NULL || st->mapped == NULL)
    return TRUE;
  struct stat info;
  gsize mapped_length = g_mapped_file_get_length (st->mapped);
  if (fstat (st->fd, &info) != 0) {
    int saved_errno = errno;
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", st->path,
        g_strerror (saved_errno));
    return FALSE;
  }
  if ((guint64) info.st_size < mapped_length) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: the file shrank from "
        "%" G_GSIZE_FORMAT " to %" G_GUINT64_FORMAT " bytes after the model "
        "was loaded; its weights are gone, load the model again",
        st->path, mapped_length, (guint64) info.st_size);
    return FALSE;
  }
  return TRUE;
}

void
clip_safetensors_close (ClipSafetensors *st)
{
  if (st != NULL)
    safetensors_free (st);
}

guint
clip_safetensors_n_tensors (const ClipSafetensors *st)
{
  return st->n_tensors;
}

const ClipTensor *
clip_safetensors_get (const ClipSafetensors *st, guint i)
{
  g_return_val_if_fail (i < st->n_tensors, NULL);
  return &st->tensors[i];
}

const ClipTensor *
clip_safetensors_find (const ClipSafetensors *st, const char *name)
{
  return g_hash_table_lookup (st->by_name, name);
}

const char *
clip_safetensors_path (const ClipSafetensors *st)
{
  return st->path;
}

/* Enough of the data to tell two trainings of one architecture apart, read
 * in a few hundred microseconds whatever the file's size. */
#define CHECKSUM_SAMPLES 64
#define CHECKSUM_SAMPLE_BYTES 4096

void
clip_safetensors_checksum (const ClipSafetensors *st, GChecksum *checksum)
{
  g_checksum_update (checksum, st->bytes, st->header_end);
  const guint8 *data = st->bytes + st->header_end;
  gsize data_size = st->size - st->header_end;
  if (data_size <= CHECKSUM_SAMPLES * CHECKSUM_SAMPLE_BYTES) {
    g_checksum_update (checksum, data, data_size);
    return;
  }
  gsize last = data_size - CHECKSUM_SAMPLE_BYTES;
  for (int i = 0; i < CHECKSUM_SAMPLES; i++)
    g_checksum_update (checksum,
        data + (guint64) last * i / (CHECKSUM_SAMPLES - 1),
        CHECKSUM_SAMPLE_BYTES);
}

/* ----------------------------------------------------------------- writer */

/* The safetensors library orders tensors by dtype, in reverse order of its
 * Dtype enum (U64, I64, F64, F32, U32, I32, BF16, F16, ..., U8), then by
 * name. The element size never grows along that order, so starting at 0
 * every tensor is aligned to its element size with no padding. */
static int
dtype_write_rank (ClipDType dtype)
{
  switch (dtype) {
    case CLIP_DTYPE_I64:
      return 0;
    case CLIP_DTYPE_F32:
      return 1;
    case CLIP_DTYPE_I32:
      return 2;
    case CLIP_DTYPE_BF16:
      return 3;
    case CLIP_DTYPE_F16:
      return 4;
    case CLIP_DTYPE_U8:
      return 5;
  }
  return 6;
}

static int
compare_for_writing (gconstpointer a, gconstpointer b)
{
  const ClipTensor *x = *(const ClipTensor *const *) a;
  const ClipTensor *y = *(const ClipTensor *const *) b;
  int rank_x = dtype_write_rank (x->dtype),
      rank_y = dtype_write_rank (y->dtype);
  if (rank_x != rank_y)
    return rank_x - rank_y;
  return strcmp (x->name, y->name);
}

static void
append_json_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const char *p = s; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_printf (out, "\\%c", *p);
    else if ((guchar) *p < 0x20)
      g_string_append_printf (out, "\\u%04x", (guchar) *p);
    else
      g_string_append_c (out, *p);
  }
  g_string_append_c (out, '"');
}

static gboolean
check_tensor_for_writing (const char *path, const ClipTensor *t, GError **error)
{
  gint64 n_elements = 1;
  gboolean shape_ok = t->n_dims >= 0 && t->n_dims <= CLIP_TENSOR_MAX_DIMS
      && clip_dtype_size (t->dtype) != 0;
  for (int d = 0; shape_ok && d < t->n_dims; d++) {
    shape_ok = t->shape[d] >= 0
        && (t->shape[d] == 0 || n_elements <= G_MAXINT64 / t->shape[d]);
    n_elements *= shape_ok ? t->shape[d] : 1;
  }
  if (!shape_ok || n_elements != t->n_elements
      || (guint64) n_elements > G_MAXSIZE / clip_dtype_size (t->dtype)
      || t->n_bytes != (gsize) n_elements * clip_dtype_size (t->dtype)
      || (t->data == NULL && t->n_bytes > 0)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "%s: tensor '%s': shape, element count, dtype and byte count "
        "disagree",
        path, t->name);
    return FALSE;
  }
  return TRUE;
}

static GString *
build_header (const ClipTensor *const *sorted, guint n)
{
  GString *header = g_string_new ("{");
  guint64 offset = 0;
  for (guint i = 0; i < n; i++) {
    const ClipTensor *t = sorted[i];
    append_json_string (header, t->name);
    g_string_append_printf (header, ":{\"dtype\":\"%s\",\"shape\":[",
        clip_dtype_name (t->dtype));
    for (int d = 0; d < t->n_dims; d++)
      g_string_append_printf (header, "%s%" G_GINT64_FORMAT, d ? "," : "",
          t->shape[d]);
    g_string_append_printf (header,
        "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]},",
        offset, offset + t->n_bytes);
    offset += t->n_bytes;
  }
  g_string_append (header, "\"__metadata__\":{\"format\":\"pt\"}}");
  /* The data area must start 8-byte aligned for the tensors to be. */
  while (header->len % 8 != 0)
    g_string_append_c (header, ' ');
  return header;
}

gboolean
clip_safetensors_write (const char *path, const ClipTensor *tensors,
    guint n_tensors, GError **error)
{
  for (guint i = 0; i < n_tensors; i++)
    if (!check_tensor_for_writing (path, &tensors[i], error))
      return FALSE;
  g_autofree const ClipTensor **sorted = g_new (const ClipTensor *, n_tensors);
  for (guint i = 0; i < n_tensors; i++)
    sorted[i] = &tensors[i];
  qsort (sorted, n_tensors, sizeof *sorted, compare_for_writing);
  g_autoptr (GString) header = build_header (sorted, n_tensors);

  /* Written next to the target and renamed over it: a reader never sees a
   * half-written file, and a failed write leaves the old one in place. */
  g_autofree char *tmp_path = g_strconcat (path, ".XXXXXX", NULL);
  int fd = g_mkstemp (tmp_path);
  if (fd < 0) {
    int saved = errno;
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: cannot create a temporary file: %s", path, g_strerror (saved));
    return FALSE;
  }
  /* mkstemp makes it private; a model file is meant to be shared. */
  fchmod (fd, 0644);
  FILE *out = fdopen (fd, "wb");
  if (out == NULL) {
    int saved = errno;
    close (fd);
    g_unlink (tmp_path);
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: %s", path,
        g_strerror (saved));
    return FALSE;
  }
  guint8 length_le[8];
  guint64 length = header->len;
  for (int i = 0; i < 8; i++)
    length_le[i] = (length >> (8 * i)) & 0xff;
  gboolean ok = fwrite (length_le, 1, 8, out) == 8
      && fwrite (header->str, 1, header->len, out) == header->len;
  for (guint i = 0; ok && i < n_tensors; i++)
    ok = sorted[i]->n_bytes == 0
        || fwrite (sorted[i]->data, 1, sorted[i]->n_bytes, out)
            == sorted[i]->n_bytes;
  int saved = errno;
  if (fclose (out) != 0 && ok) {
    saved = errno;
    ok = FALSE;
  }
  if (ok && g_rename (tmp_path, path) != 0) {
    saved = errno;
    ok = FALSE;
  }
  if (!ok) {
    g_unlink (tmp_path);
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: cannot write: %s", path,
        g_strerror (saved));
    return FALSE;
  }
  return TRUE;
}
