/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the labels-file parser and the comma-separated list
 * parser on arbitrary bytes. */
#include "clip.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  GPtrArray *labels = clip_labels_parse_text ((const char *) data, size,
      "labels.txt", &error);
  if (labels == NULL) {
    g_assert (error != NULL);
    g_error_free (error);
  } else {
    g_assert (labels->len > 0);
    for (guint i = 0; i < labels->len; i++) {
      const ClipLabelSpec *spec = labels->pdata[i];
      g_assert (spec->label != NULL && spec->label[0] != '\0');
    }
    g_ptr_array_unref (labels);
  }

  /* The list and template parsers take NUL-terminated text. */
  char *text = g_strndup ((const char *) data, size);
  GPtrArray *list = clip_labels_parse_list (text);
  if (list != NULL)
    g_ptr_array_unref (list);
  g_strfreev (clip_templates_parse (text));
  g_free (text);
  return 0;
}
