/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the JSON writer (runtime/results/json.c) and the JSON
 * Lines records of the result writer (writer.c) on arbitrary strings and
 * numbers. Every string written must be strict JSON (RFC 8259: no raw
 * control character, only the standard escapes, valid UTF-8) that decodes
 * back to the input made valid UTF-8; every number must read back as the
 * same double, or be null when it is not finite; every line of a record
 * must be one strict JSON value.
 *
 * Input: 8 bytes of a double (its raw bits, so NaN and the infinities
 * come up), then strings separated by NUL bytes: the labels of a frame. */
#define _GNU_SOURCE /* memfd_create */
#include "json.h"
#include "writer.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define MAX_LABELS 8

/* ----------------------------------------------- a strict JSON reader */

typedef struct {
  const char *p, *end;
} Reader;

static gboolean parse_value (Reader *r, int depth);

static void
skip_space (Reader *r)
{
  while (r->p < r->end
      && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
    r->p++;
}

static int
hex_digit (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* A string token; its decoded text goes to out when out is not NULL. */
static gboolean
parse_string (Reader *r, GString *out)
{
  if (r->p >= r->end || *r->p != '"')
    return FALSE;
  r->p++;
  while (r->p < r->end && *r->p != '"') {
    guchar c = *r->p;
    if (c < 0x20)
      return FALSE;
    if (c != '\\') {
      if (out)
        g_string_append_c (out, c);
      r->p++;
      continue;
    }
    if (++r->p >= r->end)
      return FALSE;
    const char *simple = strchr ("\"\\/bfnrt", *r->p);
    if (simple != NULL && *r->p != '\0') {
      if (out)
        g_string_append_c (out, "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"]);
      r->p++;
      continue;
    }
    if (*r->p != 'u' || r->end - r->p < 5)
      return FALSE;
    gunichar u = 0;
    for (int i = 1; i <= 4; i++) {
      int d = hex_digit (r->p[i]);
      if (d < 0)
        return FALSE;
      u = u * 16 + d;
    }
    /* The writer escapes only control characters and DEL, never a
     * surrogate, which would need its pair. */
    if (u >= 0xd800 && u <= 0xdfff)
      return FALSE;
    if (out)
      g_string_append_unichar (out, u);
    r->p += 5;
  }
  if (r->p >= r->end)
    return FALSE;
  r->p++;
  return TRUE;
}

static gboolean
parse_number (Reader *r)
{
  const char *start = r->p;
  if (r->p < r->end && *r->p == '-')
    r->p++;
  if (r->p >= r->end || !g_ascii_isdigit (*r->p))
    return FALSE;
  if (*r->p == '0')
    r->p++;
  else
    while (r->p < r->end && g_ascii_isdigit (*r->p))
      r->p++;
  if (r->p < r->end && *r->p == '.') {
    r->p++;
    if (r->p >= r->end || !g_ascii_isdigit (*r->p))
      return FALSE;
    while (r->p < r->end && g_ascii_isdigit (*r->p))
      r->p++;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
      r->p++;
    if (r->p >= r->end || !g_ascii_isdigit (*r->p))
      return FALSE;
    while (r->p < r->end && g_ascii_isdigit (*r->p))
      r->p++;
  }
  return r->p > start;
}

static gboolean
parse_literal (Reader *r, const char *word)
{
  gsize n = strlen (word);
  if ((gsize) (r->end - r->p) < n || memcmp (r->p, word, n) != 0)
    return FALSE;
  r->p += n;
  return TRUE;
}

/* An array or object: its members separated by commas. */
static gboolean
parse_container (Reader *r, int depth, char close, gboolean object)
{
  r->p++;
  skip_space (r);
  if (r->p < r->end && *r->p == close) {
    r->p++;
    return TRUE;
  }
  for (;;) {
    skip_space (r);
    if (object) {
      if (!parse_string (r, NULL))
        return FALSE;
      skip_space (r);
      if (r->p >= r->end || *r->p++ != ':')
        return FALSE;
    }
    if (!parse_value (r, depth + 1))
      return FALSE;
    skip_space (r);
    if (r->p >= r->end)
      return FALSE;
    if (*r->p == close) {
      r->p++;
      return TRUE;
    }
    if (*r->p++ != ',')
      return FALSE;
  }
}

static gboolean
parse_value (Reader *r, int depth)
{
  skip_space (r);
  if (r->p >= r->end || depth > 16)
    return FALSE;
  switch (*r->p) {
    case '{':
      return parse_container (r, depth, '}', TRUE);
    case '[':
      return parse_container (r, depth, ']', FALSE);
    case '"':
      return parse_string (r, NULL);
    case 't':
      return parse_literal (r, "true");
    case 'f':
      return parse_literal (r, "false");
    case 'n':
      return parse_literal (r, "null");
    default:
      return parse_number (r);
  }
}

/* The whole of text is one JSON value (and valid UTF-8). */
static void
assert_json (const char *text, gsize length)
{
  g_assert (g_utf8_validate (text, length, NULL));
  Reader r = { text, text + length };
  g_assert (parse_value (&r, 0));
  skip_space (&r);
  g_assert (r.p == r.end);
}

/* ---------------------------------------------------------- the checks */

static void
check_string (const char *str)
{
  g_autoptr (GString) s = g_string_new (NULL);
  clip_json_append_string (s, str);
  assert_json (s->str, s->len);
  for (gsize i = 0; i < s->len; i++)
    g_assert ((guchar) s->str[i] >= 0x20 && s->str[i] != 0x7f);

  g_autoptr (GString) decoded = g_string_new (NULL);
  Reader r = { s->str, s->str + s->len };
  g_assert (parse_string (&r, decoded));
  g_autofree char *valid = g_utf8_make_valid (str, -1);
  g_assert_cmpstr (decoded->str, ==, valid);
}

static void
check_double (double value)
{
  g_autoptr (GString) s = g_string_new (NULL);
  clip_json_append_double (s, value, CLIP_JSON_EXACT_DIGITS);
  assert_json (s->str, s->len);
  if (!isfinite (value)) {
    g_assert_cmpstr (s->str, ==, "null");
    return;
  }
  g_assert (strpbrk (s->str, ".e") != NULL);
  g_assert (g_ascii_strtod (s->str, NULL) == value);

  g_string_truncate (s, 0);
  clip_json_append_double (s, value, CLIP_JSON_SCORE_DIGITS);
  assert_json (s->str, s->len);
}

/* Every line that format writes for frames with these labels (one frame
 * per label as its top, so that per-segment formats end segments) is one
 * JSON value. */
static void
check_records (ClipResultFormat format, const char *const *labels, guint n,
    const double *scores)
{
  int fd = memfd_create ("fuzz-json", MFD_CLOEXEC);
  g_assert (fd >= 0);
  g_autoptr (ClipResultWriter) w = clip_result_writer_new (format, fd);
  g_assert (clip_result_writer_start (w, NULL));
  for (guint i = 0; i <= n; i++) {
    ClipFrameRecord frame = {
      .pts = i * CLIP_SECOND,
      .duration = CLIP_SECOND,
      .n_labels = n,
      .labels = labels,
      .scores = scores,
      .top_label = i < n ? labels[i] : NULL,
      .top_score = i < n ? scores[i] : 0.0,
    };
    g_assert (clip_result_writer_push (w, &frame, 0, NULL));
  }
  g_assert (clip_result_writer_finish (w, (n + 2) * CLIP_SECOND, NULL));

  off_t length = lseek (fd, 0, SEEK_END);
  g_autofree char *text = g_malloc (length + 1);
  g_assert (pread (fd, text, length, 0) == length);
  text[length] = '\0';
  close (fd);
  g_assert (length == 0 || text[length - 1] == '\n');
  for (char *line = text; *line != '\0';) {
    char *eol = strchr (line, '\n');
    assert_json (line, eol - line);
    line = eol + 1;
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < sizeof (double))
    return 0;
  double value;
  memcpy (&value, data, sizeof value);
  check_double (value);

  const char *labels[MAX_LABELS];
  double scores[MAX_LABELS];
  guint n = 0;
  g_autofree char *text = g_malloc (size - sizeof value + 1);
  memcpy (text, data + sizeof value, size - sizeof value);
  text[size - sizeof value] = '\0';
  for (const char *p = text;
       p <= text + (size - sizeof value) && n < MAX_LABELS;
       p += strlen (p) + 1) {
    check_string (p);
    scores[n] = n == 0 ? value : 1.0 / (n + 1);
    labels[n++] = p;
  }
  check_records (CLIP_RESULT_FORMAT_JSONL, labels, n, scores);
  check_records (CLIP_RESULT_FORMAT_JSONL_SEGMENTS, labels, n, scores);
  return 0;
}
