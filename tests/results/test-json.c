/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one JSON writer of the results core: escaping and numbers. */
#include "json.h"

#include <math.h>

static void
assert_string (const char *in, const char *expected)
{
  g_autoptr (GString) s = g_string_new (NULL);
  clip_json_append_string (s, in);
  g_assert_cmpstr (s->str, ==, expected);
}

/* Every control character is escaped (json-glib left U+001F raw, which is
 * invalid JSON); quotes and backslashes too; UTF-8 passes as it is. */
static void
test_string (void)
{
  assert_string ("a dog", "\"a dog\"");
  assert_string (NULL, "null");
  assert_string ("", "\"\"");
  assert_string ("say \"hi\"\\", "\"say \\\"hi\\\"\\\\\"");
  assert_string ("a\nb\rc\td\be\ff", "\"a\\nb\\rc\\td\\be\\ff\"");
  assert_string ("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
  assert_string ("/ caf\xc3\xa9 \xe2\x86\x92",
      "\"/ caf\xc3\xa9 \xe2\x86\x92\"");
}

/* Invalid UTF-8 (a file name, say) becomes U+FFFD, not an invalid line. */
static void
test_invalid_utf8 (void)
{
  assert_string ("a\xff"
                 "b",
      "\"a\xef\xbf\xbd"
      "b\"");
}

static void
assert_double (double value, int digits, const char *expected)
{
  g_autoptr (GString) s = g_string_new (NULL);
  clip_json_append_double (s, value, digits);
  g_assert_cmpstr (s->str, ==, expected);
}

/* One notation: %g with the digits asked for, a float always looks like
 * one, and what JSON cannot spell is null. */
static void
test_double (void)
{
  assert_double (0.5, CLIP_JSON_SCORE_DIGITS, "0.5");
  assert_double (1.0, CLIP_JSON_SCORE_DIGITS, "1.0");
  assert_double (0.0, CLIP_JSON_SCORE_DIGITS, "0.0");
  assert_double (-0.0, CLIP_JSON_SCORE_DIGITS, "-0.0");
  assert_double (0.123456789, CLIP_JSON_SCORE_DIGITS, "0.123457");
  assert_double (1234567.0, CLIP_JSON_SCORE_DIGITS, "1.23457e+06");
  assert_double ((float) 0.1, CLIP_JSON_EXACT_DIGITS, "0.10000000149011612");
  /* json-glib wrote 1e-10.0 */
  assert_double (1e-10, CLIP_JSON_EXACT_DIGITS, "1e-10");
  assert_double (4.769623362932407e-09, CLIP_JSON_EXACT_DIGITS,
      "4.769623362932407e-09");
  assert_double (NAN, CLIP_JSON_SCORE_DIGITS, "null");
  assert_double (INFINITY, CLIP_JSON_SCORE_DIGITS, "null");
  assert_double (-INFINITY, CLIP_JSON_SCORE_DIGITS, "null");
}

static void
test_object (void)
{
  g_autoptr (GString) s = g_string_new ("{");
  const char *names[] = { "a", "b\"" };
  const double values[] = { 1.0, 0.25 };

  clip_json_append_member (s, "labels");
  clip_json_append_string_array (s, names, 2);
  clip_json_append_member (s, "scores");
  clip_json_append_double_array (s, values, 2, CLIP_JSON_SCORE_DIGITS);
  clip_json_append_member (s, "none");
  clip_json_append_string_array (s, NULL, 0);
  g_string_append_c (s, '}');
  g_assert_cmpstr (s->str, ==,
      "{\"labels\":[\"a\",\"b\\\"\"],"
      "\"scores\":[1.0,0.25],\"none\":[]}");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/json/string", test_string);
  g_test_add_func ("/json/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/json/double", test_double);
  g_test_add_func ("/json/object", test_object);
  return g_test_run ();
}
