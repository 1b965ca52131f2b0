/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: clip_tokenizer_encode on arbitrary bytes with the real
 * CLIP vocabulary (CLIP_FUZZ_VOCAB_DIR, set by scripts/fuzz.sh). The first
 * byte picks the context length, so truncation is exercised too. */
#include "clip.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static ClipTokenizer *tokenizer;

static const ClipTokenizer *
get_tokenizer (void)
{
  if (tokenizer == NULL) {
    const char *dir = g_getenv ("CLIP_FUZZ_VOCAB_DIR");
    GError *error = NULL;
    if (dir == NULL)
      g_error (
          "set CLIP_FUZZ_VOCAB_DIR to a folder with vocab.json + merges.txt");
    tokenizer = clip_tokenizer_new_from_dir (dir, &error);
    if (tokenizer == NULL)
      g_error ("%s", error->message);
  }
  return tokenizer;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const ClipTokenizer *tok = get_tokenizer ();
  if (size == 0)
    return 0;
  int context_length = 1 + data[0] % 128;
  char *text = g_strndup ((const char *) data + 1, size - 1);
  gint32 ids[128];
  GError *error = NULL;
  if (clip_tokenizer_encode (tok, text, context_length, ids, &error)) {
    for (int i = 0; i < context_length; i++)
      g_assert (ids[i] >= 0 && ids[i] <= CLIP_TOKEN_END);
  } else {
    g_assert (error != NULL);
    g_error_free (error);
  }
  g_free (text);
  return 0;
}
