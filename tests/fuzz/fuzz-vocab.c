/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the HF vocabulary loader (vocab.json + merges.txt) on
 * arbitrary bytes. The input is split at its first NUL byte into the two
 * files. A vocabulary that loads is used once to encode its own text. */
#include "model.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *text = (const char *) data;
  const char *nul = memchr (text, '\0', size);
  gsize vocab_length = nul ? (gsize) (nul - text) : size;
  const char *merges = nul ? nul + 1 : "";
  gsize merges_length = nul ? size - vocab_length - 1 : 0;

  GError *error = NULL;
  ClipTokenizer *tok = clip_tokenizer_new_from_data (text, vocab_length, merges,
      merges_length, &error);
  if (tok == NULL) {
    g_assert (error != NULL);
    g_error_free (error);
    return 0;
  }
  char *sample = g_strndup (merges, merges_length);
  gint32 ids[77];
  if (!clip_tokenizer_encode (tok, sample, 77, ids, &error))
    g_clear_error (&error);
  g_free (sample);
  clip_tokenizer_free (tok);
  return 0;
}
