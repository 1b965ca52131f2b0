/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Label lists, labels files and templates: each rule of the format and each
 * error, with the file and line it names. */
#include "clip.h"
#include "reference.h"

#include <string.h>

static const ClipLabelSpec *
spec_at (GPtrArray *labels, guint i)
{
  g_assert_cmpuint (i, <, labels->len);
  return labels->pdata[i];
}

/* Checks one spec: its label and its prompts (NULL: none of its own). */
static void
assert_spec (GPtrArray *labels, guint i, const char *label,
    const char *const *prompts)
{
  const ClipLabelSpec *spec = spec_at (labels, i);
  g_assert_cmpstr (spec->label, ==, label);
  if (prompts == NULL) {
    g_assert_null (spec->prompts);
    return;
  }
  g_assert_nonnull (spec->prompts);
  g_assert_cmpstrv (spec->prompts, prompts);
}

static void
test_list (void)
{
  g_autoptr (GPtrArray) labels = clip_labels_parse_list (
      " cat, dog ,,empty room , \t");
  g_assert_cmpuint (labels->len, ==, 3);
  assert_spec (labels, 0, "cat", NULL);
  assert_spec (labels, 1, "dog", NULL);
  assert_spec (labels, 2, "empty room", NULL);

  g_autoptr (GPtrArray) blank = clip_labels_parse_list (" , ,");
  g_assert_cmpuint (blank->len, ==, 0);
  g_autoptr (GPtrArray) none = clip_labels_parse_list (NULL);
  g_assert_cmpuint (none->len, ==, 0);
}

/* The arrays own their specs: moving one to another array and freeing
 * both leaves no double free (run under valgrind or ASan to see leaks). */
static void
test_list_ownership (void)
{
  g_autoptr (GPtrArray) labels = clip_labels_parse_list ("a,b");
  g_autoptr (GPtrArray) more = clip_labels_parse_list ("c");
  g_ptr_array_extend_and_steal (labels, g_steal_pointer (&more));
  g_assert_cmpuint (labels->len, ==, 3);
  assert_spec (labels, 2, "c", NULL);
  clip_label_spec_free (NULL);
}

static GPtrArray *
parse_ok (const char *text)
{
  g_autoptr (GError) error = NULL;
  GPtrArray *labels = clip_labels_parse_text (text, -1, "labels.txt", &error);
  g_assert_no_error (error);
  g_assert_nonnull (labels);
  return labels;
}

static void
test_text_format (void)
{
  g_autoptr (GPtrArray) labels = parse_ok (
      "# kitchen activities\n"
      "\n"
      "  chopping vegetables  \n"
      "washing dishes: a person washing dishes | hands in a sink full of plates\n"
      "   # an indented comment\n"
      "c# code\n"
      "time: 10:30 | a clock\n"
      "\t\n"
      "last line without newline");
  g_assert_cmpuint (labels->len, ==, 5);
  assert_spec (labels, 0, "chopping vegetables", NULL);
  assert_spec (labels, 1, "washing dishes",
      (const char *[]) { "a person washing dishes",
          "hands in a sink full of plates", NULL });
  /* '#' starts a comment only at the start of a line. */
  assert_spec (labels, 2, "c# code", NULL);
  /* The first ':' ends the label. */
  assert_spec (labels, 3, "time",
      (const char *[]) { "10:30", "a clock", NULL });
  assert_spec (labels, 4, "last line without newline", NULL);
}

static void
test_text_crlf_and_bom (void)
{
  g_autoptr (GPtrArray) labels = parse_ok ("\xEF\xBB\xBF"
                                           "dog\r\n# note\r\n"
                                           "cat: a cat |  a kitten \r\n\r\n");
  g_assert_cmpuint (labels->len, ==, 2);
  assert_spec (labels, 0, "dog", NULL);
  assert_spec (labels, 1, "cat",
      (const char *[]) { "a cat", "a kitten", NULL });
}

/* length bounds the text: what follows is not read. */
static void
test_text_length (void)
{
  const char text[] = "dog\ncat\nbird";
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) labels = clip_labels_parse_text (text, 6, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (labels->len, ==, 2);
  assert_spec (labels, 1, "ca", NULL);
}

static void
assert_parse_fails (const char *text, gssize length, const char *filename,
    int code, const char *const *fragments)
{
  g_autoptr (GError) error = NULL;
  GPtrArray *labels = clip_labels_parse_text (text, length, filename, &error);
  g_assert_null (labels);
  g_assert_error (error, CLIP_ERROR, code);
  for (; *fragments; fragments++)
    if (!strstr (error->message, *fragments))
      g_error ("\"%s\" does not mention \"%s\"", error->message, *fragments);
}

static void
test_text_errors (void)
{
  assert_parse_fails ("dog\n# fine\ncaf\xe9\n", -1, "f.txt", CLIP_ERROR_INVALID,
      (const char *[]) { "f.txt:3:", "UTF-8", NULL });
  /* A NUL inside the given length is not text either. */
  assert_parse_fails ("dog\ncat\0x", 9, "f.txt", CLIP_ERROR_INVALID,
      (const char *[]) { "f.txt:2:", "UTF-8", NULL });
  assert_parse_fails ("dog\n  : a dog\n", -1, "f.txt", CLIP_ERROR_FORMAT,
      (const char *[]) { "f.txt:2:", "empty label", NULL });
  assert_parse_fails ("dog\ncat\nbird: a bird | | a parrot\n", -1, "f.txt",
      CLIP_ERROR_FORMAT, (const char *[]) { "f.txt:3:", "empty prompt", NULL });
  assert_parse_fails ("dog:\n", -1, "f.txt", CLIP_ERROR_FORMAT,
      (const char *[]) { "f.txt:1:", "empty prompt", NULL });
  assert_parse_fails ("bird: a bird |\n", -1, "f.txt", CLIP_ERROR_FORMAT,
      (const char *[]) { "f.txt:1:", "empty prompt", NULL });
  assert_parse_fails ("# only a comment\n\n  \r\n", -1, "f.txt",
      CLIP_ERROR_INVALID, (const char *[]) { "no labels in f.txt", NULL });
  assert_parse_fails ("", -1, "f.txt", CLIP_ERROR_INVALID,
      (const char *[]) { "no labels in f.txt", NULL });
  /* Without a file name the messages still say what was parsed. */
  assert_parse_fails (":x", -1, NULL, CLIP_ERROR_FORMAT,
      (const char *[]) { "labels:1:", NULL });
}

/* "@PATH" items: example images, resolved against the labels file's
 * folder; the spec keeps the line for later errors. */
static void
test_text_examples (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) labels = clip_labels_parse_text (
      "# examples\n"
      "forklift: @examples/forklift/ | @f1.jpg | a photo of a forklift\n"
      "logo: @ /srv/logos/logo.png\n"
      "dog: a dog\n",
      -1, "site/labels.txt", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (labels->len, ==, 3);
  assert_spec (labels, 0, "forklift",
      (const char *[]) { "a photo of a forklift", NULL });
  const ClipLabelSpec *forklift = spec_at (labels, 0);
  g_autofree char *folder = g_build_filename ("site", "examples/forklift/",
      NULL);
  g_autofree char *file = g_build_filename ("site", "f1.jpg", NULL);
  g_assert_cmpstrv (forklift->examples,
      ((const char *[]) { folder, file, NULL }));
  g_assert_cmpstr (forklift->origin, ==, "site/labels.txt:2");
  g_assert_null (forklift->example_embeddings);
  /* images alone: no prompts, and no templates either */
  assert_spec (labels, 1, "logo", NULL);
  g_assert_cmpstrv (spec_at (labels, 1)->examples,
      ((const char *[]) { "/srv/logos/logo.png", NULL }));
  g_assert_null (spec_at (labels, 2)->examples);
  g_assert_null (spec_at (labels, 2)->origin);

  /* without a file name, relative to the working folder */
  g_autoptr (GPtrArray) here = clip_labels_parse_text ("a: @x.png", -1, NULL,
      &error);
  g_assert_no_error (error);
  g_assert_cmpstrv (spec_at (here, 0)->examples,
      ((const char *[]) { "x.png", NULL }));
  /* a comma-separated list has no examples: "@x" is a label */
  g_autoptr (GPtrArray) list = clip_labels_parse_list ("@x,y");
  assert_spec (list, 0, "@x", NULL);
  g_assert_null (spec_at (list, 0)->examples);

  assert_parse_fails ("dog\nforklift: a forklift | @ | @f.jpg\n", -1, "f.txt",
      CLIP_ERROR_FORMAT,
      (const char *[]) { "f.txt:2:", "forklift", "'@' without a path", NULL });
  assert_parse_fails ("forklift: @f.jpg |\n", -1, "f.txt", CLIP_ERROR_FORMAT,
      (const char *[]) { "f.txt:1:", "empty prompt", NULL });
}

static void
test_file (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "labels.txt", NULL);
  g_assert_true (
      g_file_set_contents (path, "dog: a dog | a puppy\ncat\n", -1, NULL));
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) labels = clip_labels_parse_file (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (labels->len, ==, 2);
  assert_spec (labels, 0, "dog", (const char *[]) { "a dog", "a puppy", NULL });
  assert_spec (labels, 1, "cat", NULL);

  /* Errors in a file name the file's path. */
  g_assert_true (g_file_set_contents (path, "dog\n\n:x\n", -1, NULL));
  g_assert_null (clip_labels_parse_file (path, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT);
  g_autofree char *where = g_strdup_printf ("%s:3:", path);
  g_assert_nonnull (strstr (error->message, where));
  g_clear_error (&error);

  g_autofree char *absent = g_build_filename (dir, "absent.txt", NULL);
  g_assert_null (clip_labels_parse_file (absent, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "absent.txt"));
}

static void
test_templates (void)
{
  g_auto (GStrv) templates = clip_templates_parse (
      " a photo of a {}. |a video of {}||  {} in the wild  | a close-up photo | ");
  g_assert_cmpstrv (templates,
      ((const char *[]) { "a photo of a {}.", "a video of {}", "{} in the wild",
          "a close-up photo", NULL }));

  g_auto (GStrv) one = clip_templates_parse ("a photo of a {}.");
  g_assert_cmpstrv (one, ((const char *[]) { "a photo of a {}.", NULL }));

  /* Nothing usable gives an empty (not NULL) list. */
  const char *empty_inputs[] = { "", " | |", NULL };
  for (const char **input = empty_inputs; *input; input++) {
    g_auto (GStrv) none = clip_templates_parse (*input);
    g_assert_nonnull (none);
    g_assert_null (none[0]);
  }
  g_auto (GStrv) from_null = clip_templates_parse (NULL);
  g_assert_nonnull (from_null);
  g_assert_null (from_null[0]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/labels/list", test_list);
  g_test_add_func ("/labels/list-ownership", test_list_ownership);
  g_test_add_func ("/labels/text/format", test_text_format);
  g_test_add_func ("/labels/text/crlf-bom", test_text_crlf_and_bom);
  g_test_add_func ("/labels/text/length", test_text_length);
  g_test_add_func ("/labels/text/errors", test_text_errors);
  g_test_add_func ("/labels/text/examples", test_text_examples);
  g_test_add_func ("/labels/file", test_file);
  g_test_add_func ("/labels/templates", test_templates);
  return g_test_run ();
}
