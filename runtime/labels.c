/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Label lists, labels files and prompt templates, as the tool's options and
 * the element's properties give them. */
#include "clip.h"
#include "util.h"

#include <string.h>

#define UTF8_BOM "\xEF\xBB\xBF"

void
clip_label_spec_free (ClipLabelSpec *spec)
{
  if (spec == NULL)
    return;
  g_free (spec->label);
  g_strfreev (spec->prompts);
  g_strfreev (spec->examples);
  g_free (spec->origin);
  g_free (spec->example_embeddings);
  g_free (spec);
}

static GPtrArray *
label_spec_array_new (void)
{
  return g_ptr_array_new_with_free_func ((GDestroyNotify) clip_label_spec_free);
}

static ClipLabelSpec *
add_label (GPtrArray *labels, const char *label, char **prompts)
{
  ClipLabelSpec *spec = g_new0 (ClipLabelSpec, 1);
  spec->label = g_strdup (label);
  spec->prompts = prompts;
  g_ptr_array_add (labels, spec);
  return spec;
}

GPtrArray *
clip_labels_parse_list (const char *comma_separated)
{
  GPtrArray *labels = label_spec_array_new ();
  if (comma_separated == NULL)
    return labels;
  g_auto (GStrv) parts = g_strsplit (comma_separated, ",", -1);
  for (char **p = parts; *p; p++)
    if (*g_strstrip (*p))
      add_label (labels, *p, NULL);
  return labels;
}

/* The items after a label's ':', each trimmed, into spec: prompts, and
 * "@PATH" examples resolved against folder (NULL: as they are). FALSE after
 * setting error on an empty item or an '@' without a path. */
static gboolean
parse_items (ClipLabelSpec *spec, char *text, const char *folder,
    const char *filename, int line_no, GError **error)
{
  g_auto (GStrv) items = g_strsplit (text, "|", -1);
  g_autoptr (GStrvBuilder) prompts = g_strv_builder_new ();
  g_autoptr (GStrvBuilder) examples = g_strv_builder_new ();
  guint n_prompts = 0, n_examples = 0;
  /* g_strsplit gives no parts at all for an empty string. */
  gboolean empty = items[0] == NULL;
  for (char **p = items; *p && !empty; p++) {
    empty = !*g_strstrip (*p);
    if (empty)
      break;
    if (**p != '@') {
      g_strv_builder_add (prompts, *p);
      n_prompts++;
      continue;
    }
    char *path = g_strchug (*p + 1);
    if (*path == '\0') {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
          "%s:%d: label '%s': '@' without a path (an example image is "
          "\"@file.jpg\", a folder of them \"@folder/\")",
          filename, line_no, spec->label);
      return FALSE;
    }
    g_autofree char *resolved = folder && !g_path_is_absolute (path)
        ? g_build_filename (folder, path, NULL)
        : g_strdup (path);
    g_strv_builder_add (examples, resolved);
    n_examples++;
  }
  if (empty) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s:%d: empty prompt (a label's prompts are \"label: prompt one | "
        "prompt two\")",
        filename, line_no);
    return FALSE;
  }
  if (n_prompts > 0)
    spec->prompts = g_strv_builder_end (prompts);
  if (n_examples > 0) {
    spec->examples = g_strv_builder_end (examples);
    spec->origin = g_strdup_printf ("%s:%d", filename, line_no);
  }
  return TRUE;
}

GPtrArray *
clip_labels_parse_text (const char *text, gssize length, const char *filename,
    GError **error)
{
  g_return_val_if_fail (text != NULL, NULL);
  const char *name = filename ? filename : "labels";
  gsize size = length < 0 ? strlen (text) : (gsize) length;
  const char *end = text + size;

  const char *invalid;
  if (!g_utf8_validate_len (text, size, &invalid)) {
    int line_no = 1;
    for (const char *p = text; p < invalid; p++)
      line_no += *p == '\n';
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "%s:%d: invalid UTF-8 text", name, line_no);
    return NULL;
  }
  if (size >= strlen (UTF8_BOM)
      && memcmp (text, UTF8_BOM, strlen (UTF8_BOM)) == 0)
    text += strlen (UTF8_BOM);

  g_autoptr (GPtrArray) labels = label_spec_array_new ();
  /* Example paths are relative to the labels file's folder. */
  g_autofree char *folder = filename ? g_path_get_dirname (filename) : NULL;
  int line_no = 1;
  for (const char *start = text; start < end; line_no++) {
    const char *newline = memchr (start, '\n', end - start);
    const char *line_end = newline ? newline : end;
    /* g_strstrip also drops the '\r' of a CRLF line end. */
    g_autofree char *line = g_strndup (start, line_end - start);
    start = newline ? newline + 1 : end;

    g_strstrip (line);
    if (line[0] == '\0' || line[0] == '#')
      continue;
    char *colon = strchr (line, ':');
    if (colon) {
      *colon = '\0';
      g_strstrip (line);
    }
    if (line[0] == '\0') {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
          "%s:%d: empty label before ':'", name, line_no);
      return NULL;
    }
    ClipLabelSpec *spec = add_label (labels, line, NULL);
    if (colon && !parse_items (spec, colon + 1, folder, name, line_no, error))
      return NULL;
  }

  if (labels->len == 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "no labels in %s (it is empty or only comments)", name);
    return NULL;
  }
  return g_steal_pointer (&labels);
}

GPtrArray *
clip_labels_parse_file (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autofree char *text = NULL;
  gsize length;
  if (!clip_read_file (path, &text, &length, error))
    return NULL;
  return clip_labels_parse_text (text, length, path, error);
}

char **
clip_templates_parse (const char *bar_separated)
{
  g_autoptr (GStrvBuilder) templates = g_strv_builder_new ();
  g_auto (GStrv) parts = g_strsplit (bar_separated ? bar_separated : "", "|",
      -1);
  for (char **p = parts; *p; p++)
    if (*g_strstrip (*p))
      g_strv_builder_add (templates, *p);
  return g_strv_builder_end (templates);
}
