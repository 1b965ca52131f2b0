/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "json.h"

#include <math.h>
#include <string.h>

void
clip_json_append_string (GString *s, const char *str)
{
  if (str == NULL) {
    g_string_append (s, "null");
    return;
  }
  g_autofree char *valid = g_utf8_make_valid (str, -1);
  g_string_append_c (s, '"');
  for (const char *p = valid; *p != '\0'; p++) {
    switch (*p) {
      case '"':
        g_string_append (s, "\\\"");
        break;
      case '\\':
        g_string_append (s, "\\\\");
        break;
      case '\b':
        g_string_append (s, "\\b");
        break;
      case '\f':
        g_string_append (s, "\\f");
        break;
      case '\n':
        g_string_append (s, "\\n");
        break;
      case '\r':
        g_string_append (s, "\\r");
        break;
      case '\t':
        g_string_append (s, "\\t");
        break;
      default:
        if ((guchar) *p < 0x20 || *p == 0x7f)
          g_string_append_printf (s, "\\u%04x", (guchar) *p);
        else
          g_string_append_c (s, *p);
    }
  }
  g_string_append_c (s, '"');
}

void
clip_json_append_double (GString *s, double value, int digits)
{
  if (!isfinite (value)) {
    g_string_append (s, "null");
    return;
  }
  char format[16], buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_snprintf (format, sizeof format, "%%.%dg", digits);
  g_ascii_formatd (buf, sizeof buf, format, value);
  g_string_append (s, buf);
  if (strpbrk (buf, ".e") == NULL)
    g_string_append (s, ".0");
}

void
clip_json_append_member (GString *s, const char *name)
{
  if (s->len > 0 && s->str[s->len - 1] != '{')
    g_string_append_c (s, ',');
  clip_json_append_string (s, name);
  g_string_append_c (s, ':');
}

void
clip_json_append_string_array (GString *s, const char *const *strs, guint n)
{
  g_string_append_c (s, '[');
  for (guint i = 0; i < n; i++) {
    if (i > 0)
      g_string_append_c (s, ',');
    clip_json_append_string (s, strs[i]);
  }
  g_string_append_c (s, ']');
}

void
clip_json_append_double_array (GString *s, const double *values, guint n,
    int digits)
{
  g_string_append_c (s, '[');
  for (guint i = 0; i < n; i++) {
    if (i > 0)
      g_string_append_c (s, ',');
    clip_json_append_double (s, values[i], digits);
  }
  g_string_append_c (s, ']');
}

void
clip_json_append_seconds (GString *s, guint64 t)
{
  const guint64 second = G_GUINT64_CONSTANT (1000000000);
  g_string_append_printf (s, "%" G_GUINT64_FORMAT ".%09u", t / second,
      (guint) (t % second));
  while (s->str[s->len - 1] == '0' && s->str[s->len - 2] != '.')
    g_string_truncate (s, s->len - 1);
}
