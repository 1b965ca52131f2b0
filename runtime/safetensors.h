/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* safetensors: u64 LE header length, a JSON header, raw little-endian data.
 * Read on an mmap of the file; every offset and size is checked before any
 * byte of data is touched. Internal to the runtime. */
#pragma once

#include <glib.h>

typedef enum {
  CLIP_DTYPE_F32,
  CLIP_DTYPE_F16,
  CLIP_DTYPE_BF16,
  CLIP_DTYPE_I64,
  CLIP_DTYPE_I32,
  CLIP_DTYPE_U8,
} ClipDType;

#define CLIP_TENSOR_MAX_DIMS 8

typedef struct {
  const char *name;
  ClipDType dtype;
  int n_dims;
  gint64 shape[CLIP_TENSOR_MAX_DIMS];
  gint64 n_elements;
  const void *data; /* inside the mapping */
  gsize n_bytes;
} ClipTensor;

typedef struct _ClipSafetensors ClipSafetensors;

ClipSafetensors *clip_safetensors_open (const char *path, GError **error);
/* Parses a file already in memory (the fuzz target uses this); data must
 * outlive the result. */
ClipSafetensors *clip_safetensors_parse (const guint8 *data, gsize size,
    const char *name_for_errors, GError **error);
void clip_safetensors_close (ClipSafetensors *st);
/* The tensors of an opened file are views into its mapping: if the file is
 * truncated afterwards, touching them raises SIGBUS. Fails with
 * CLIP_ERROR_IO when the file is now shorter than its mapping, so that a
 * caller can stop before using the weights. A truncation between this check
 * and the use of the weights is not caught (a small window; replacing a
 * model by writing a new file and renaming it over the old one is safe, as
 * is deleting it). TRUE for a file parsed from memory. */
gboolean clip_safetensors_check_file (const ClipSafetensors *st,
    GError **error);

guint clip_safetensors_n_tensors (const ClipSafetensors *st);
const ClipTensor *clip_safetensors_get (const ClipSafetensors *st, guint i);
const ClipTensor *clip_safetensors_find (const ClipSafetensors *st,
    const char *name);
const char *clip_safetensors_path (const ClipSafetensors *st);
/* Feeds checksum the file's header (names, dtypes, shapes, offsets, metadata)
 * and its data: all of it for a file of up to 256 KiB, else 64 blocks of
 * 4 KiB spread evenly from its first byte to its last. */
void clip_safetensors_checksum (const ClipSafetensors *st, GChecksum *checksum);

gsize clip_dtype_size (ClipDType dtype);
const char *clip_dtype_name (ClipDType dtype);

/* Writes a safetensors file (header padded to 8 bytes, tensors ordered as
 * torch's safetensors does, each aligned to its element size). tensors[i].data
 * holds n_bytes of little-endian data of its dtype. */
gboolean clip_safetensors_write (const char *path, const ClipTensor *tensors,
    guint n_tensors, GError **error);

/* Conversions used for F16/BF16 weights. */
float clip_f16_to_f32 (guint16 h);
guint16 clip_f32_to_f16 (float f); /* round to nearest even */
float clip_bf16_to_f32 (guint16 h);
guint16 clip_f32_to_bf16 (float f); /* round to nearest even */
