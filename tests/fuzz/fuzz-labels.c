/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the labels-file parser (prompts and "@PATH" example
 * items) and the comma-separated list parser on arbitrary bytes. */
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
      /* An item is a prompt or an example, never empty. */
      for (char **p = spec->prompts; p && *p; p++)
        g_assert ((*p)[0] != '\0' && (*p)[0] != '@');
      g_assert (spec->prompts == NULL || spec->prompts[0] != NULL);
      g_assert (spec->examples == NULL || spec->examples[0] != NULL);
      /* Examples are resolved against the file's folder ("."), and say
       * where they were named. */
      for (char **e = spec->examples; e && *e; e++)
        g_assert (g_path_is_absolute (*e) || g_str_has_prefix (*e, "./"));
      g_assert ((spec->examples != NULL) == (spec->origin != NULL));
      g_assert (spec->origin == NULL
          || g_str_has_prefix (spec->origin, "labels.txt:"));
      g_assert (
          spec->example_embeddings == NULL && spec->n_example_embeddings == 0);
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
