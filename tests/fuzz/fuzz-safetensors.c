/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the safetensors parser on arbitrary bytes. Every tensor
 * it accepts is read whole, so that a view reaching past the input is an
 * ASan error rather than a silent pass. */
#include "safetensors.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Where the tensor bytes are summed, so that the reads are not optimised away. */
static volatile guint8 checksum;

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  ClipSafetensors *st = clip_safetensors_parse (data, size, "fuzz.safetensors",
      &error);
  if (st == NULL) {
    g_assert (error != NULL);
    g_error_free (error);
    return 0;
  }
  for (guint i = 0; i < clip_safetensors_n_tensors (st); i++) {
    const ClipTensor *t = clip_safetensors_get (st, i);
    g_assert (clip_safetensors_find (st, t->name) != NULL);
    for (gsize b = 0; b < t->n_bytes; b++)
      checksum += ((const guint8 *) t->data)[b];
  }
  clip_safetensors_close (st);
  return 0;
}
