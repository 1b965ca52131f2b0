/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The project's JSON text, spelt one way wherever gst-clip writes JSON
 * (clipexport, gst-clip annotate and classify): strings escaped in full,
 * numbers in one notation. Appends to a GString; the caller writes the
 * braces and brackets. */
#pragma once

#include <glib.h>

/* Significant digits of a score in the result files: a probability to one
 * part in a million. */
#define CLIP_JSON_SCORE_DIGITS 6
/* Enough digits to read back the very same double. */
#define CLIP_JSON_EXACT_DIGITS 17

/* A string in quotes: '"' and '\\' escaped, and every control character
 * (U+0000 to U+001F and DEL), the common ones as \n, \t and so on; invalid
 * UTF-8 becomes U+FFFD, so the line stays valid JSON. NULL is null. */
void clip_json_append_string (GString *s, const char *str);

/* A number with at most digits significant digits, always with a '.' or an
 * exponent (1.0, not 1) so that every reader takes it for a float; NaN and
 * the infinities, which JSON cannot spell, are null. */
void clip_json_append_double (GString *s, double value, int digits);

/* Nanoseconds as seconds, exact to the nanosecond and never an integer:
 * 1.5, 2.0, 0.04. */
void clip_json_append_seconds (GString *s, guint64 nanoseconds);

/* An object member's name and its colon, after a comma unless it opens the
 * object (s ends with '{'). */
void clip_json_append_member (GString *s, const char *name);

/* A JSON array of strings, or of numbers with digits significant digits. */
void clip_json_append_string_array (GString *s, const char *const *strs,
    guint n);
void clip_json_append_double_array (GString *s, const double *values, guint n,
    int digits);
