/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ClipTokenizer: every line of the reference tokenizer_cases.jsonl from both
 * vocabulary forms, edge cases of each text step, truncation at other
 * context lengths, BPE merge order on a small vocabulary, bad input and
 * malformed vocabulary files. */
#include "clip.h"
#include "reference.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define CONTEXT 77

typedef struct {
  char *text;
  gint32 ids[CONTEXT];
} Case;

static void
case_free (Case *c)
{
  g_free (c->text);
  g_free (c);
}

/* The lines of tokenizer_cases.jsonl, or NULL when the reference is absent. */
static GPtrArray *
load_cases (void)
{
  if (!clip_test_reference ())
    return NULL;
  g_autofree char *path = clip_test_ref_path ("tokenizer_cases.jsonl");
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, &error));
  GPtrArray *cases = g_ptr_array_new_with_free_func (
      (GDestroyNotify) case_free);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (char **line = lines; *line; line++) {
    if (**line == '\0')
      continue;
    g_autoptr (JsonParser) parser = json_parser_new ();
    g_assert_true (json_parser_load_from_data (parser, *line, -1, &error));
    JsonObject *object = json_node_get_object (json_parser_get_root (parser));
    JsonArray *ids = json_object_get_array_member (object, "ids");
    g_assert_cmpuint (json_array_get_length (ids), ==, CONTEXT);
    Case *c = g_new0 (Case, 1);
    c->text = g_strdup (json_object_get_string_member (object, "text"));
    for (int i = 0; i < CONTEXT; i++)
      c->ids[i] = json_array_get_int_element (ids, i);
    g_ptr_array_add (cases, c);
  }
  g_assert_cmpuint (cases->len, ==, 65);
  return cases;
}

static ClipTokenizer *
load_tokenizer (const char *dir)
{
  g_autoptr (GError) error = NULL;
  ClipTokenizer *tok = clip_tokenizer_new_from_dir (dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (tok);
  return tok;
}

static void
assert_ids (const gint32 *got, const gint32 *expected, int n, const char *text)
{
  for (int i = 0; i < n; i++)
    if (got[i] != expected[i])
      g_error ("\"%s\": id %d is %d, expected %d", text, i, got[i],
          expected[i]);
}

static void
check_all_cases (const char *dir)
{
  g_autoptr (GPtrArray) cases = load_cases ();
  if (cases == NULL)
    return;
  ClipTokenizer *tok = load_tokenizer (dir);
  for (guint i = 0; i < cases->len; i++) {
    const Case *c = cases->pdata[i];
    gint32 ids[CONTEXT];
    g_autoptr (GError) error = NULL;
    g_assert_true (clip_tokenizer_encode (tok, c->text, CONTEXT, ids, &error));
    g_assert_no_error (error);
    assert_ids (ids, c->ids, CONTEXT, c->text);
  }
  clip_tokenizer_free (tok);
}

/* reference/vocab holds all three files: vocab.json + merges.txt win. */
static void
test_reference_hf_vocab (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_ref_path ("vocab");
  check_all_cases (dir);
}

static void
test_reference_openai_vocab (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *gz = clip_test_ref_path (
      "vocab/bpe_simple_vocab_16e6.txt.gz");
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *copy = g_build_filename (dir, "bpe_simple_vocab_16e6.txt.gz",
      NULL);
  g_assert_cmpint (symlink (gz, copy), ==, 0);
  check_all_cases (dir);
}

static void
test_reference_model_folder (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_ref_path ("models/tiny-hf");
  check_all_cases (dir);
}

/* Cases beyond the reference, ids from simple_tokenizer.py (with the regex
 * module of Debian 12, as the reference): lowercased symbols, the one
 * non-letter the IGNORECASE regex skips, the long s in literals, final
 * sigma, html.unescape's prefix and numeric rules, Python's strip. */
static const struct {
  const char *text;
  gint32 ids[16]; /* up to the end token */
} edge_cases[] = {
  { "\u24B6 \u216B", { 49406, 27400, 494, 158, 227, 375, 49407 } },
  { "a\u0345b !\u0345!", { 49406, 320, 321, 256, 256, 49407 } },
  { "'\u017F <|\u017Ftartoftext|>",
      { 49406, 6, 129, 379, 27, 91, 129, 123, 2002, 6659, 18169, 91, 285,
          49407 } },
  { "\u0391\u03A3'. \u03A3 \u0391\u03A3\u0391",
      { 49406, 138, 109, 139, 480, 4645, 139, 481, 138, 109, 139, 225, 138, 365,
          49407 } },
  { "&ampfoo; &notit; &#x110000;&#xd800;&#128;&#13;&#1;x",
      { 49406, 261, 23435, 282, 126, 361, 585, 282, 47356, 47356, 6309, 343,
          49407 } },
  { "&amp;lt;b&amp;gt", { 49406, 283, 321, 285, 49407 } },
  { "\x1c"
    "dog\x1c",
      { 49406, 1929, 49407 } },
  { "a\u00A0\u2003b\u200Bc", { 49406, 320, 321, 9844, 322, 49407 } },
  { "&#99999999999999999999999;", { 49406, 39802, 49407 } },
  { "\u0130stanbul", { 49406, 328, 16384, 11231, 49407 } },
};

static void
test_edge_cases (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_ref_path ("vocab");
  ClipTokenizer *tok = load_tokenizer (dir);
  for (gsize k = 0; k < G_N_ELEMENTS (edge_cases); k++) {
    gint32 expected[CONTEXT] = { 0 }, ids[CONTEXT];
    for (int i = 0; i < 16 && edge_cases[k].ids[i]; i++)
      expected[i] = edge_cases[k].ids[i];
    g_assert_true (
        clip_tokenizer_encode (tok, edge_cases[k].text, CONTEXT, ids, NULL));
    assert_ids (ids, expected, CONTEXT, edge_cases[k].text);
  }
  clip_tokenizer_free (tok);
}

/* Other context lengths follow from the 77-id rows: a row's first n ids,
 * with the end token last when the text does not fit. */
static void
test_context_lengths (void)
{
  g_autoptr (GPtrArray) cases = load_cases ();
  if (cases == NULL)
    return;
  g_autofree char *dir = clip_test_ref_path ("vocab");
  ClipTokenizer *tok = load_tokenizer (dir);
  const int lengths[] = { 1, 2, 3, 8, 16, 76, 100 };
  for (guint i = 0; i < cases->len; i++) {
    const Case *c = cases->pdata[i];
    int last = CONTEXT - 1; /* the end token, the last non-zero id */
    while (c->ids[last] == 0)
      last--;
    g_assert_cmpint (c->ids[last], ==, CLIP_TOKEN_END);
    for (gsize k = 0; k < G_N_ELEMENTS (lengths); k++) {
      int n = lengths[k];
      if (n > CONTEXT && last == CONTEXT - 1)
        continue; /* truncated at 77: the longer row is not known */
      gint32 expected[100] = { 0 }, ids[100];
      memcpy (expected, c->ids, MIN (n, CONTEXT) * sizeof (gint32));
      if (last >= n)
        expected[n - 1] = CLIP_TOKEN_END;
      g_assert_true (clip_tokenizer_encode (tok, c->text, n, ids, NULL));
      assert_ids (ids, expected, n, c->text);
    }
  }
  clip_tokenizer_free (tok);
}

static void
test_invalid_input (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_ref_path ("vocab");
  ClipTokenizer *tok = load_tokenizer (dir);
  gint32 ids[CONTEXT];
  const char *invalid[] = { "caf\xe9", "\xff", "ok \xed\xa0\x80 surrogate",
    "\xc0\xaf overlong", "cut \xe2\x82" };
  for (gsize k = 0; k < G_N_ELEMENTS (invalid); k++) {
    g_autoptr (GError) error = NULL;
    g_assert_false (
        clip_tokenizer_encode (tok, invalid[k], CONTEXT, ids, &error));
    g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "UTF-8"));
  }
  g_autoptr (GError) error = NULL;
  g_assert_false (clip_tokenizer_encode (tok, "a dog", 0, ids, &error));
  g_assert_error (error, CLIP_ERROR, CLIP_ERROR_INVALID);
  clip_tokenizer_free (tok);
}

/* A word far longer than any context still ends in start ... end. */
static void
test_huge_input (void)
{
  if (!clip_test_reference ())
    return;
  g_autofree char *dir = clip_test_ref_path ("vocab");
  ClipTokenizer *tok = load_tokenizer (dir);
  GString *text = g_string_new (NULL);
  for (int i = 0; i < 200000; i++)
    g_string_append_c (text, "abcdefghij"[(i * 7 + i / 13) % 10]);
  g_string_append (text, " &amp;&amp;&amp; \xce\xa3\xce\xa3 tail");
  gint32 ids[CONTEXT];
  g_assert_true (clip_tokenizer_encode (tok, text->str, CONTEXT, ids, NULL));
  g_assert_cmpint (ids[0], ==, CLIP_TOKEN_START);
  g_assert_cmpint (ids[CONTEXT - 1], ==, CLIP_TOKEN_END);
  for (int i = 1; i < CONTEXT - 1; i++)
    g_assert_cmpint (ids[i], >, 0);
  g_string_free (text, TRUE);
  clip_tokenizer_free (tok);
}

typedef struct {
  const ClipTokenizer *tok;
  GPtrArray *cases;
} ThreadJob;

static gpointer
encode_cases_thread (gpointer data)
{
  ThreadJob *job = data;
  int mismatches = 0;
  for (int round = 0; round < 5; round++)
    for (guint i = 0; i < job->cases->len; i++) {
      const Case *c = job->cases->pdata[i];
      gint32 ids[CONTEXT];
      if (!clip_tokenizer_encode (job->tok, c->text, CONTEXT, ids, NULL)
          || memcmp (ids, c->ids, sizeof ids) != 0)
        mismatches++;
    }
  return GINT_TO_POINTER (mismatches);
}

/* The word cache is shared: several threads may encode with one tokenizer. */
static void
test_threads (void)
{
  g_autoptr (GPtrArray) cases = load_cases ();
  if (cases == NULL)
    return;
  g_autofree char *dir = clip_test_ref_path ("vocab");
  ClipTokenizer *tok = load_tokenizer (dir);
  ThreadJob job = { tok, cases };
  GThread *threads[4];
  for (int t = 0; t < 4; t++)
    threads[t] = g_thread_new ("encode", encode_cases_thread, &job);
  for (int t = 0; t < 4; t++)
    g_assert_cmpint (GPOINTER_TO_INT (g_thread_join (threads[t])), ==, 0);
  clip_tokenizer_free (tok);
}

/* ------------------------------------------------ small synthetic vocabs */

/* bytes_to_unicode(): the symbol GPT-2/CLIP byte-level BPE uses for b. */
static gunichar
byte_symbol (int b)
{
  gboolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC)
      || b >= 0xAE;
  if (printable)
    return b;
  int shifted = 0;
  for (int x = 0; x < b; x++)
    if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE))
      shifted++;
  return 256 + shifted;
}

static void
write_file (const char *dir, const char *name, const char *text, gssize length)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_set_contents (path, text, length, &error));
}

/* vocab.json with byte b's symbol at id b, its </w> form at 256 + b, then
 * extra tokens, then the special tokens. */
static void
write_vocab_json (const char *dir, const char *const *extra, gboolean specials)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_object (builder);
  for (int b = 0; b < 256; b++) {
    char symbol[16];
    symbol[g_unichar_to_utf8 (byte_symbol (b), symbol)] = '\0';
    g_autofree char *end = g_strconcat (symbol, "</w>", NULL);
    json_builder_set_member_name (builder, symbol);
    json_builder_add_int_value (builder, b);
    json_builder_set_member_name (builder, end);
    json_builder_add_int_value (builder, 256 + b);
  }
  int id = 512;
  for (; extra && *extra; extra++) {
    json_builder_set_member_name (builder, *extra);
    json_builder_add_int_value (builder, id++);
  }
  if (specials) {
    json_builder_set_member_name (builder, "<|startoftext|>");
    json_builder_add_int_value (builder, id++);
    json_builder_set_member_name (builder, "<|endoftext|>");
    json_builder_add_int_value (builder, id++);
  }
  json_builder_end_object (builder);
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  g_autofree char *text = json_generator_to_data (generator, NULL);
  write_file (dir, "vocab.json", text, -1);
}

static char *
synthetic_dir (const char *const *extra, const char *merges)
{
  char *dir = clip_test_tmpdir ();
  write_vocab_json (dir, extra, TRUE);
  write_file (dir, "merges.txt", merges, -1);
  return dir;
}

static void
assert_encodes (const ClipTokenizer *tok, const char *text, const gint32 *bpe,
    int n)
{
  gint32 ids[8], expected[8] = { 0 };
  g_assert_cmpint (n, <=, 6);
  expected[0] = 512 + 3; /* after the 512 symbols and three extra tokens */
  memcpy (expected + 1, bpe, n * sizeof (gint32));
  expected[n + 1] = 512 + 4;
  g_autoptr (GError) error = NULL;
  g_assert_true (clip_tokenizer_encode (tok, text, 8, ids, &error));
  g_assert_no_error (error);
  assert_ids (ids, expected, 8, text);
}

/* The lowest-ranked pair anywhere in the word merges first, and all its
 * occurrences merge left to right without overlapping. */
static void
test_merge_order (void)
{
  const char *extra[] = { "aa", "bc</w>", "ab", NULL };
  g_autofree char *dir = synthetic_dir (extra,
      "#version: 0.2\n"
      "a a\nb c</w>\na b\n");
  ClipTokenizer *tok = load_tokenizer (dir);
  const gint32 a = 'a', a_end = 256 + 'a', aa = 512, bc_end = 513, ab = 514;
  assert_encodes (tok, "a", (gint32[]) { a_end }, 1);
  assert_encodes (tok, "aaa", (gint32[]) { aa, a_end }, 2);
  assert_encodes (tok, "aaaa", (gint32[]) { aa, a, a_end }, 3);
  /* (b, c</w>) outranks (a, b) although (a, b) comes first in the word. */
  assert_encodes (tok, "abc", (gint32[]) { a, bc_end }, 2);
  assert_encodes (tok, "ab", (gint32[]) { a, 256 + 'b' }, 2);
  assert_encodes (tok, "abx", (gint32[]) { ab, 256 + 'x' }, 2);
  /* Upper case is lowered before the regex; the apostrophe splits. */
  assert_encodes (tok, "AB'd X",
      (gint32[]) { a, 256 + 'b', '\'', 256 + 'd', 256 + 'x' }, 5);
  clip_tokenizer_free (tok);
}

/* ----------------------------------------------------------- load errors */

static void
assert_load_fails (const char *dir, int code, const char *const *fragments)
{
  g_autoptr (GError) error = NULL;
  ClipTokenizer *tok = clip_tokenizer_new_from_dir (dir, &error);
  g_assert_null (tok);
  g_assert_error (error, CLIP_ERROR, code);
  for (; *fragments; fragments++)
    if (!strstr (error->message, *fragments))
      g_error ("\"%s\" does not mention \"%s\"", error->message, *fragments);
}

static void
test_missing_files (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *absent = g_build_filename (dir, "absent", NULL);
  assert_load_fails (absent, CLIP_ERROR_IO,
      (const char *[]) { absent, "no such folder", NULL });
  assert_load_fails (dir, CLIP_ERROR_IO,
      (const char *[]) { dir, "no vocabulary", NULL });
  write_file (dir, "vocab.json", "{}", -1);
  assert_load_fails (dir, CLIP_ERROR_IO,
      (const char *[]) { "merges.txt", "missing", NULL });
}

static void
test_malformed_vocab_json (void)
{
  static const struct {
    const char *json;
    const char *fragments[3];
  } bad[] = {
    { "[1, 2]", { "expected a JSON object", NULL } },
    { "{\"a\": 1,\n\"b\" 2}", { "line 2", "':'", NULL } },
    { "{\"a\": 1", { "line 1", "expected ','", NULL } },
    { "{\"a\": \"1\"}", { "\"a\"", "integer", NULL } },
    { "{\"a\": 1.5}", { "\"a\"", "integer", NULL } },
    { "{\"a\": -1}", { "\"a\"", "integer", NULL } },
    { "{\"a\": 0, \"b\": 5}", { "\"b\"", "id 5", NULL } },
    { "{\"a\": 0, \"b\": 0}", { "id 0", "two tokens", NULL } },
    { "{\"a\\q\": 0}", { "escape", NULL } },
    { "{\"a\": 0} x", { "after the object", NULL } },
    { "{\"a\xff\": 0}", { "UTF-8", NULL } },
  };
  for (gsize k = 0; k < G_N_ELEMENTS (bad); k++) {
    g_autofree char *dir = synthetic_dir (NULL, "#version: 0.2\n");
    write_file (dir, "vocab.json", bad[k].json, -1);
    g_autofree char *path = g_build_filename (dir, "vocab.json", NULL);
    const char *fragments[] = { path, bad[k].fragments[0], bad[k].fragments[1],
      NULL };
    assert_load_fails (dir, CLIP_ERROR_FORMAT, fragments);
  }

  /* A vocabulary without the special tokens, or without a byte symbol. */
  g_autofree char *dir = clip_test_tmpdir ();
  write_vocab_json (dir, NULL, FALSE);
  write_file (dir, "merges.txt", "#version: 0.2\n", -1);
  assert_load_fails (dir, CLIP_ERROR_FORMAT,
      (const char *[]) { "vocab.json", "<|startoftext|>", "missing", NULL });
  write_file (dir, "vocab.json",
      "{\"a\": 0, \"<|startoftext|>\": 1, "
      "\"<|endoftext|>\": 2}",
      -1);
  assert_load_fails (dir, CLIP_ERROR_FORMAT,
      (const char *[]) { "vocab.json", "byte 0x00", "missing", NULL });
}

static void
test_malformed_merges (void)
{
  static const struct {
    const char *merges;
    const char *fragments[3];
  } bad[] = {
    { "#version: 0.2\na a\nb\n", { "line 3", "two symbols", NULL } },
    { "#version: 0.2\na a\n\na a\n", { "line 3", "two symbols", NULL } },
    { "a a b\n", { "line 1", "two symbols", NULL } },
    { "#version: 0.2\nq z\n", { "line 2", "\"qz\"", "not in the vocabulary" } },
    { "#version: 0.2\nqq z\n", { "line 2", "\"qq\"", NULL } },
    { "#version: 0.2\na \xff\n", { "line 2", "UTF-8", NULL } },
  };
  const char *extra[] = { "aa", NULL };
  for (gsize k = 0; k < G_N_ELEMENTS (bad); k++) {
    g_autofree char *dir = synthetic_dir (extra, bad[k].merges);
    g_autofree char *path = g_build_filename (dir, "merges.txt", NULL);
    const char *fragments[] = { path, bad[k].fragments[0], bad[k].fragments[1],
      bad[k].fragments[2], NULL };
    assert_load_fails (dir, CLIP_ERROR_FORMAT, fragments);
  }
}

static void
write_gzip (const char *path, const char *text)
{
  gzFile gz = gzopen (path, "wb");
  g_assert_nonnull (gz);
  g_assert_cmpint (gzwrite (gz, text, strlen (text)), ==, (int) strlen (text));
  g_assert_cmpint (gzclose (gz), ==, Z_OK);
}

static void
test_malformed_openai_vocab (void)
{
  g_autofree char *dir = clip_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "bpe_simple_vocab_16e6.txt.gz",
      NULL);

  write_file (dir, "bpe_simple_vocab_16e6.txt.gz", "#version: 0.2\na b\n", -1);
  assert_load_fails (dir, CLIP_ERROR_FORMAT,
      (const char *[]) { path, "gzip", NULL });

  /* Far fewer merges than CLIP's 48894. */
  write_gzip (path, "#version: 0.2\na b\nab c\n");
  assert_load_fails (dir, CLIP_ERROR_FORMAT,
      (const char *[]) { path, "2 merges", "48894", NULL });

  write_gzip (path, "#version: 0.2\na b\nabc\n");
  assert_load_fails (dir, CLIP_ERROR_FORMAT,
      (const char *[]) { path, "line 3", "two symbols", NULL });

  /* A gzip stream cut short. */
  if (!clip_test_reference ())
    return;
  g_autofree char *official = clip_test_ref_path (
      "vocab/bpe_simple_vocab_16e6.txt.gz");
  g_autofree char *data = NULL;
  gsize length;
  g_assert_true (g_file_get_contents (official, &data, &length, NULL));
  write_file (dir, "bpe_simple_vocab_16e6.txt.gz", data, 100000);
  assert_load_fails (dir, CLIP_ERROR_FORMAT,
      (const char *[]) { path, "truncated", NULL });
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tokenizer/reference/vocab-json", test_reference_hf_vocab);
  g_test_add_func ("/tokenizer/reference/openai-gz",
      test_reference_openai_vocab);
  g_test_add_func ("/tokenizer/reference/model-folder",
      test_reference_model_folder);
  g_test_add_func ("/tokenizer/edge-cases", test_edge_cases);
  g_test_add_func ("/tokenizer/context-lengths", test_context_lengths);
  g_test_add_func ("/tokenizer/invalid-input", test_invalid_input);
  g_test_add_func ("/tokenizer/huge-input", test_huge_input);
  g_test_add_func ("/tokenizer/threads", test_threads);
  g_test_add_func ("/tokenizer/merge-order", test_merge_order);
  g_test_add_func ("/tokenizer/errors/missing-files", test_missing_files);
  g_test_add_func ("/tokenizer/errors/vocab-json", test_malformed_vocab_json);
  g_test_add_func ("/tokenizer/errors/merges", test_malformed_merges);
  g_test_add_func ("/tokenizer/errors/openai-vocab",
      test_malformed_openai_vocab);
  return g_test_run ();
}
