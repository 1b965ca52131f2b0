/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ClipTokenizer: OpenAI CLIP's byte-level BPE tokenizer, reproducing
 * simple_tokenizer.py and clip.tokenize(truncate=True) id for id.
 *
 * The text goes through the same steps as SimpleTokenizer.encode():
 * html.unescape twice, strip, whitespace collapse, Python's str.lower(), the
 * pre-tokenizing regex, byte-to-unicode symbols and BPE by merge rank. The
 * one step left out is ftfy.fix_text (mojibake and other encoding repairs):
 * it leaves ordinary text unchanged, and reproducing its heuristics is out of
 * scope.
 *
 * Everything works on Unicode code points, as Python's str does, with GLib's
 * character classification. */
#include "clip.h"
#include "model.h"
#include "util.h"
#include "html-entities.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define OPENAI_VOCAB_FILE "bpe_simple_vocab_16e6.txt.gz"
/* simple_tokenizer.py keeps lines [1, 49152 - 256 - 2 + 1) of that file. */
#define OPENAI_N_MERGES (49152 - 256 - 2)
/* The official file unpacks to 3.2 MB; anything far larger is not it. */
#define OPENAI_VOCAB_MAX_BYTES (64 << 20)
#define END_OF_WORD "</w>"
#define START_TOKEN "<|startoftext|>"
#define END_TOKEN "<|endoftext|>"

/* The per-word BPE cache is bounded so that arbitrary input cannot grow it
 * without limit; long words are rare and not worth keeping. */
#define CACHE_MAX_WORDS 16384
#define CACHE_MAX_WORD_BYTES 64

/* One merge: the pair (left, right) of symbol ids, its rank, the id of the
 * joined symbol. An open-addressing table keyed by the pair; rank < 0 marks
 * an empty slot. */
typedef struct {
  guint64 pair;
  gint32 rank;
  gint32 merged;
} MergeSlot;

struct _ClipTokenizer {
  gint32 byte_ids[256];     /* the symbol of each byte */
  gint32 byte_end_ids[256]; /* the same followed by </w>, for a word's end */
  gint32 start_id, end_id;
  MergeSlot *merges;
  guint merge_mask; /* table size - 1, a power of two minus one */
  GMutex cache_lock;
  GHashTable *cache; /* byte-level word -> gint32[1 + n]: n, then ids */
};

/* ------------------------------------------------------------ characters */

/* The regex module's \s: Unicode White_Space. */
static gboolean
is_regex_space (gunichar c)
{
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0
      || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028
      || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Python's str.isspace(), which str.strip() uses: White_Space plus the
 * information separators U+001C..U+001F. */
static gboolean
is_python_space (gunichar c)
{
  return is_regex_space (c) || (c >= 0x1C && c <= 0x1F);
}

/* \p{L}: general categories Lu, Ll, Lt, Lm, Lo. */
static gboolean
is_letter (gunichar c)
{
  switch (g_unichar_type (c)) {
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER:
      return TRUE;
    default:
      return FALSE;
  }
}

/* \p{N}: general categories Nd, Nl, No. */
static gboolean
is_number (gunichar c)
{
  switch (g_unichar_type (c)) {
    case G_UNICODE_DECIMAL_NUMBER:
    case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_OTHER_NUMBER:
      return TRUE;
    default:
      return FALSE;
  }
}

/* Unicode's Case_Ignorable: Mn, Me, Cf, Lm, Sk, plus the Word_Break
 * MidLetter, MidNumLet and Single_Quote characters. */
static gboolean
is_case_ignorable (gunichar c)
{
  static const gunichar word_break_mid[] = {
    0x27,
    0x2E,
    0x3A,
    0xB7,
    0x387,
    0x55F,
    0x5F4,
    0x2018,
    0x2019,
    0x2024,
    0x2027,
    0xFE13,
    0xFE52,
    0xFE55,
    0xFF07,
    0xFF0E,
    0xFF1A,
  };
  switch (g_unichar_type (c)) {
    case G_UNICODE_NON_SPACING_MARK:
    case G_UNICODE_ENCLOSING_MARK:
    case G_UNICODE_FORMAT:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_MODIFIER_SYMBOL:
      return TRUE;
    default:
      break;
  }
  for (gsize i = 0; i < G_N_ELEMENTS (word_break_mid); i++)
    if (c == word_break_mid[i])
      return TRUE;
  return FALSE;
}

/* Unicode's Cased: Lu, Ll, Lt, plus Other_Lowercase/Other_Uppercase (those
 * not already case-ignorable, which Final_Sigma skips anyway). */
static gboolean
is_cased (gunichar c)
{
  switch (g_unichar_type (c)) {
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
      return TRUE;
    default:
      return c == 0xAA || c == 0xBA          /* ordinal indicators */
          || (c >= 0x2160 && c <= 0x217F)    /* Roman numerals */
          || (c >= 0x24B6 && c <= 0x24E9)    /* circled letters */
          || (c >= 0x1F130 && c <= 0x1F149)  /* squared letters */
          || (c >= 0x1F150 && c <= 0x1F169)  /* negative circled */
          || (c >= 0x1F170 && c <= 0x1F189); /* negative squared */
  }
}

/* ------------------------------------------------------------ text steps */

static void
append_utf8 (GArray *out, const char *utf8)
{
  for (const char *p = utf8; *p; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);
    g_array_append_val (out, c);
  }
}

static gboolean
is_ascii_digit (gunichar c)
{
  return c >= '0' && c <= '9';
}

static int
hex_value (gunichar c)
{
  return c < 0x80 && g_ascii_isxdigit (c) ? g_ascii_xdigit_value (c) : -1;
}

/* html._replace_charref for a numeric reference. */
static void
append_numeric_charref (GArray *out, gunichar code, gboolean too_large)
{
  gunichar replacement = 0xFFFD;
  if (!too_large) {
    for (gsize i = 0; i < G_N_ELEMENTS (clip_html_remapped_charrefs); i++)
      if (clip_html_remapped_charrefs[i].code == code) {
        g_array_append_val (out, clip_html_remapped_charrefs[i].replacement);
        return;
      }
  }
  if (too_large || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
    g_array_append_val (out, replacement);
    return;
  }
  for (gsize i = 0; i < G_N_ELEMENTS (clip_html_dropped_charrefs); i++)
    if (code >= clip_html_dropped_charrefs[i].first
        && code <= clip_html_dropped_charrefs[i].last)
      return;
  g_array_append_val (out, code);
}

/* Parses "#123;" or "#x1F;" (';' optional) at s[i..n); returns the length
 * matched, 0 when none. */
static gsize
numeric_charref (const gunichar *s, gsize n, gsize i, GArray *out)
{
  gsize start = i;
  guint base = 10;
  if (i >= n || s[i] != '#')
    return 0;
  i++;
  if (i < n && (s[i] == 'x' || s[i] == 'X')) {
    base = 16;
    i++;
  }
  gsize digits = i;
  guint64 code = 0;
  gboolean too_large = FALSE;
  for (; i < n; i++) {
    int v = base == 16          ? hex_value (s[i])
        : is_ascii_digit (s[i]) ? (int) (s[i] - '0')
                                : -1;
    if (v < 0)
      break;
    /* Python's int() is unbounded: remember overflow instead of wrapping. */
    code = code * base + v;
    if (code > 0x10FFFF) {
      too_large = TRUE;
      code = 0x110000;
    }
  }
  if (i == digits)
    return 0;
  if (i < n && s[i] == ';')
    i++;
  append_numeric_charref (out, (gunichar) code, too_large);
  return i - start;
}

static int
compare_entity_name (const void *key, const void *entity)
{
  return strcmp (key, ((const ClipHtmlEntity *) entity)->name);
}

static const char *
lookup_entity (const char *name)
{
  const ClipHtmlEntity *e = bsearch (name, clip_html_entities,
      G_N_ELEMENTS (clip_html_entities), sizeof clip_html_entities[0],
      compare_entity_name);
  return e ? e->value : NULL;
}

static gboolean
ends_charref_name (gunichar c)
{
  return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&'
      || c == '#' || c == ';';
}

/* The named alternative of html's charref regex, [^\t\n\f <&#;]{1,32};?,
 * at s[i..n), replaced as html._replace_charref does: the whole name, else
 * its longest prefix of at least two characters followed by the rest as is.
 * Returns the length consumed, 0 when the regex does not match. */
static gsize
named_charref (const gunichar *s, gsize n, gsize i, GArray *out)
{
  gsize len = 0;
  while (i + len < n && len < 32 && !ends_charref_name (s[i + len]))
    len++;
  if (len == 0)
    return 0;
  if (i + len < n && s[i + len] == ';')
    len++;

  /* Entity names are ASCII: only the ASCII head of the match can name one. */
  char name[CLIP_HTML_ENTITY_MAX_NAME + 2];
  gsize ascii_len = 0;
  while (ascii_len < len && s[i + ascii_len] < 0x80) {
    name[ascii_len] = (char) s[i + ascii_len];
    ascii_len++;
  }
  const char *value = NULL;
  gsize x = len;
  if (ascii_len == len) {
    name[len] = '\0';
    value = lookup_entity (name);
  }
  if (value == NULL)
    for (x = MIN (ascii_len, len - 1); x >= 2; x--) {
      name[x] = '\0';
      if ((value = lookup_entity (name)))
        break;
    }
  if (value == NULL) {
    gunichar amp = '&';
    g_array_append_val (out, amp);
    g_array_append_vals (out, s + i, len);
    return len;
  }
  append_utf8 (out, value);
  g_array_append_vals (out, s + i + x, len - x);
  return len;
}

/* Python's html.unescape(). */
static GArray *
html_unescape (const gunichar *s, gsize n)
{
  GArray *out = g_array_sized_new (FALSE, FALSE, sizeof (gunichar), n);
  for (gsize i = 0; i < n;) {
    if (s[i] != '&') {
      g_array_append_val (out, s[i]);
      i++;
      continue;
    }
    gsize used = numeric_charref (s, n, i + 1, out);
    if (used == 0)
      used = named_charref (s, n, i + 1, out);
    if (used == 0)
      g_array_append_val (out, s[i]);
    i += 1 + used;
  }
  return out;
}

/* basic_clean() and whitespace_clean(): unescape twice, strip, collapse
 * each run of \s to one space, strip again. */
static GArray *
clean_text (const gunichar *s, gsize n)
{
  GArray *once = html_unescape (s, n);
  GArray *twice = html_unescape ((gunichar *) once->data, once->len);
  g_array_unref (once);

  const gunichar *t = (const gunichar *) twice->data;
  gsize start = 0, end = twice->len;
  while (start < end && is_python_space (t[start]))
    start++;
  while (end > start && is_python_space (t[end - 1]))
    end--;

  GArray *out = g_array_sized_new (FALSE, FALSE, sizeof (gunichar),
      end - start);
  for (gsize i = start; i < end;) {
    if (is_regex_space (t[i])) {
      gunichar space = ' ';
      g_array_append_val (out, space);
      while (i < end && is_regex_space (t[i]))
        i++;
    } else {
      g_array_append_val (out, t[i]);
      i++;
    }
  }
  g_array_unref (twice);

  /* The collapsed runs may have left a space (or U+001C..U+001F) at an end. */
  t = (const gunichar *) out->data;
  start = 0;
  end = out->len;
  while (start < end && is_python_space (t[start]))
    start++;
  while (end > start && is_python_space (t[end - 1]))
    end--;
  g_array_set_size (out, end);
  g_array_remove_range (out, 0, start);
  return out;
}

/* Python's Final_Sigma rule for U+03A3 at s[i]: final (ς) when a cased
 * letter precedes it and none follows, case-ignorable characters skipped. */
static gboolean
is_final_sigma (const gunichar *s, gsize n, gsize i)
{
  gsize j = i;
  while (j > 0 && is_case_ignorable (s[j - 1]))
    j--;
  if (j == 0 || !is_cased (s[j - 1]))
    return FALSE;
  j = i + 1;
  while (j < n && is_case_ignorable (s[j]))
    j++;
  return j == n || !is_cased (s[j]);
}

/* One character's lowercase as Python has it. g_unichar_tolower maps
 * letters only, so the two blocks of cased symbols are added here. */
static gunichar
lower_char (gunichar c)
{
  if ((c >= 0x2160 && c <= 0x216F)     /* Roman numerals */
      || (c >= 0x24B6 && c <= 0x24CF)) /* circled Latin capitals */
    return c + (c < 0x24B6 ? 0x10 : 0x1A);
  return g_unichar_tolower (c);
}

/* Python's str.lower(). g_utf8_strdown differs: it picks the final sigma
 * from the next character alone (a lone "Σ" becomes "ς", Python gives "σ"),
 * keeps Ⓐ and Ⅰ, and lowers U+0130 to plain 'i' in Turkic locales. */
static GArray *
python_lower (const gunichar *s, gsize n)
{
  GArray *out = g_array_sized_new (FALSE, FALSE, sizeof (gunichar), n + 8);
  for (gsize i = 0; i < n; i++) {
    gunichar c;
    if (s[i] == 0x130) {
      /* The one unconditional multi-character lowercase: i + combining dot. */
      static const gunichar dotted_i[] = { 'i', 0x307 };
      g_array_append_vals (out, dotted_i, 2);
      continue;
    }
    if (s[i] == 0x3A3)
      c = is_final_sigma (s, n, i) ? 0x3C2 : 0x3C3;
    else
      c = lower_char (s[i]);
    g_array_append_val (out, c);
  }
  return out;
}

/* ------------------------------------------------------------ pre-tokens */

/* Matches an ASCII literal of the pattern at s[i..n). The pattern is
 * compiled with re.IGNORECASE; in lowercased text the only character that
 * still case-folds onto one of its letters is the long s U+017F. */
static gsize
match_literal (const gunichar *s, gsize n, gsize i, const char *literal)
{
  gsize k = 0;
  for (; literal[k]; k++) {
    if (i + k >= n)
      return 0;
    gunichar c = s[i + k];
    if (c != (guchar) literal[k] && !(literal[k] == 's' && c == 0x17F))
      return 0;
  }
  return k;
}

/* [^\s\p{L}\p{N}] as the regex module matches it under IGNORECASE: a
 * character one of whose case variants is a letter is excluded too, and the
 * only such non-letter is U+0345 (combining ypogegrammeni, a variant of
 * iota). No alternative matches it, so findall skips it like a space. */
static gboolean
is_other (gunichar c)
{
  return !is_regex_space (c) && !is_letter (c) && !is_number (c) && c != 0x345;
}

/* The length of the token SimpleTokenizer's regex finds at s[i], 0 for a
 * character no alternative matches (\s, U+0345), which findall skips:
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d
 *   |[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * The alternatives are tried in order, so a literal wins over a run that
 * would have started at the same place. */
static gsize
pre_token_length (const gunichar *s, gsize n, gsize i)
{
  static const char *const literals[] = {
    START_TOKEN,
    END_TOKEN,
    "'s",
    "'t",
    "'re",
    "'ve",
    "'m",
    "'ll",
    "'d",
  };
  for (gsize k = 0; k < G_N_ELEMENTS (literals); k++) {
    gsize len = match_literal (s, n, i, literals[k]);
    if (len > 0)
      return len;
  }
  gsize j = i;
  if (is_letter (s[i])) {
    while (j < n && is_letter (s[j]))
      j++;
  } else if (is_number (s[i])) {
    j++;
  } else {
    while (j < n && is_other (s[j]))
      j++;
  }
  return j - i;
}

/* ------------------------------------------------------------------- BPE */

static guint
merge_slot (const ClipTokenizer *tok, gint32 left, gint32 right)
{
  guint64 pair = ((guint64) (guint32) left << 32) | (guint32) right;
  guint i = (guint) ((pair * G_GUINT64_CONSTANT (0x9E3779B97F4A7C15)) >> 40)
      & tok->merge_mask;
  while (tok->merges[i].rank >= 0 && tok->merges[i].pair != pair)
    i = (i + 1) & tok->merge_mask;
  return i;
}

/* The rank of merging (left, right), -1 when there is no such merge. */
static gint32
merge_rank (const ClipTokenizer *tok, gint32 left, gint32 right, gint32 *merged)
{
  const MergeSlot *slot = &tok->merges[merge_slot (tok, left, right)];
  *merged = slot->merged;
  return slot->rank;
}

/* A merge candidate: the pair starting at byte pos, by rank then position. */
typedef struct {
  gint32 rank;
  gint32 pos;
} Candidate;

static gboolean
candidate_before (const Candidate *a, const Candidate *b)
{
  return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

typedef struct {
  Candidate *items;
  gsize len;
} CandidateHeap;

static void
heap_push (CandidateHeap *h, gint32 rank, gint32 pos)
{
  gsize i = h->len++;
  Candidate c = { rank, pos };
  while (i > 0 && candidate_before (&c, &h->items[(i - 1) / 2])) {
    h->items[i] = h->items[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h->items[i] = c;
}

static Candidate
heap_pop (CandidateHeap *h)
{
  Candidate top = h->items[0], last = h->items[--h->len];
  gsize i = 0;
  for (;;) {
    gsize child = 2 * i + 1;
    if (child >= h->len)
      break;
    if (child + 1 < h->len
        && candidate_before (&h->items[child + 1], &h->items[child]))
      child++;
    if (!candidate_before (&h->items[child], &last))
      break;
    h->items[i] = h->items[child];
    i = child;
  }
  if (h->len > 0)
    h->items[i] = last;
  return top;
}

/* SimpleTokenizer.bpe() on one word of n >= 1 bytes, appending its ids.
 * The reference repeatedly takes the lowest-ranked pair in the word and
 * merges all its occurrences left to right; a heap of candidates ordered by
 * (rank, position) does the same in O(n log n) instead of O(n^2), so that a
 * huge word cannot stall the caller. Symbols live at the byte position they
 * start at, linked to their neighbours; a merged-away symbol becomes -1. */
static void
bpe_word (const ClipTokenizer *tok, const guint8 *bytes, gsize n, GArray *ids)
{
  gint32 *symbol = g_new (gint32, 3 * n);
  gint32 *next = symbol + n, *prev = symbol + 2 * n;
  /* Each merge adds at most two candidates to the n - 1 initial ones. */
  CandidateHeap heap = { g_new (Candidate, 3 * n), 0 };
  Candidate *batch = g_new (Candidate, 3 * n);
  gint32 merged;

  for (gsize i = 0; i < n; i++) {
    symbol[i] = i + 1 < n ? tok->byte_ids[bytes[i]]
                          : tok->byte_end_ids[bytes[i]];
    next[i] = i + 1 < n ? (gint32) i + 1 : -1;
    prev[i] = (gint32) i - 1;
  }
  for (gsize i = 0; i + 1 < n; i++) {
    gint32 rank = merge_rank (tok, symbol[i], symbol[i + 1], &merged);
    if (rank >= 0)
      heap_push (&heap, rank, i);
  }

  while (heap.len > 0) {
    /* Every occurrence of the best pair, in order; merging cannot create a
     * new one, so they are all known now. */
    gint32 rank = heap.items[0].rank;
    gsize n_batch = 0;
    while (heap.len > 0 && heap.items[0].rank == rank)
      batch[n_batch++] = heap_pop (&heap);
    for (gsize k = 0; k < n_batch; k++) {
      gint32 p = batch[k].pos, q;
      /* Skip candidates that an earlier merge consumed or changed. */
      if (symbol[p] < 0 || (q = next[p]) < 0
          || merge_rank (tok, symbol[p], symbol[q], &merged) != rank)
        continue;
      symbol[p] = merged;
      symbol[q] = -1;
      next[p] = next[q];
      if (next[p] >= 0)
        prev[next[p]] = p;
      /* The merged symbol's new pairs with its neighbours. */
      gint32 r;
      if (prev[p] >= 0
          && (r = merge_rank (tok, symbol[prev[p]], symbol[p], &merged)) >= 0)
        heap_push (&heap, r, prev[p]);
      if (next[p] >= 0
          && (r = merge_rank (tok, symbol[p], symbol[next[p]], &merged)) >= 0)
        heap_push (&heap, r, p);
    }
  }

  for (gint32 p = 0; p >= 0; p = next[p])
    g_array_append_val (ids, symbol[p]);
  g_free (batch);
  g_free (heap.items);
  g_free (symbol);
}

/* bpe_word through the bounded per-tokenizer cache. */
static void
bpe_word_cached (const ClipTokenizer *tok, const guint8 *bytes, gsize n,
    GArray *ids)
{
  ClipTokenizer *mutable_tok = (ClipTokenizer *) tok;
  g_autofree char *key = n <= CACHE_MAX_WORD_BYTES
      ? g_strndup ((const char *) bytes, n)
      : NULL;

  if (key) {
    g_mutex_lock (&mutable_tok->cache_lock);
    const gint32 *hit = g_hash_table_lookup (tok->cache, key);
    if (hit)
      g_array_append_vals (ids, hit + 1, hit[0]);
    g_mutex_unlock (&mutable_tok->cache_lock);
    if (hit)
      return;
  }

  guint first = ids->len;
  bpe_word (tok, bytes, n, ids);
  if (key) {
    guint count = ids->len - first;
    gint32 *entry = g_new (gint32, 1 + count);
    entry[0] = count;
    memcpy (entry + 1,
        &g_array_index (ids, gint32, first), count * sizeof (gint32));
    g_mutex_lock (&mutable_tok->cache_lock);
    if (g_hash_table_size (tok->cache) >= CACHE_MAX_WORDS)
      g_hash_table_remove_all (tok->cache);
    g_hash_table_replace (tok->cache, g_steal_pointer (&key), entry);
    g_mutex_unlock (&mutable_tok->cache_lock);
  }
}

/* --------------------------------------------------------------- loading */

/* bytes_to_unicode(): printable Latin-1 bytes stand for themselves; the
 * others (controls, space, DEL..NBSP, soft hyphen) become U+0100 onwards in
 * byte order. Also gives the byte order of the official vocabulary: the
 * printable bytes, then the others. */
static void
byte_symbols (gunichar symbol_of_byte[256], guint8 vocab_order[256])
{
  int n = 0, shifted = 0;
  for (int b = 0; b < 256; b++)
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) {
      symbol_of_byte[b] = b;
      vocab_order[n++] = b;
    }
  for (int b = 0; b < 256; b++)
    if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
      symbol_of_byte[b] = 256 + shifted++;
      vocab_order[n++] = b;
    }
}

/* The UTF-8 of a byte's symbol followed by suffix, in buf. */
static const char *
byte_symbol_string (gunichar symbol, const char *suffix, char buf[16])
{
  int len = g_unichar_to_utf8 (symbol, buf);
  g_strlcpy (buf + len, suffix, 16 - len);
  return buf;
}

/* One line of merges, "left right"; the strings point into the file's text. */
typedef struct {
  const char *left, *right;
  int line;
} Merge;

/* Python's str.split() on line..end: when there are exactly two parts,
 * terminates them in place and fills merge. */
static gboolean
split_merge_line (char *line, char *end, Merge *merge)
{
  char *parts[3][2];
  int n = 0;
  char *p = line;
  while (p < end) {
    while (p < end && is_python_space (g_utf8_get_char (p)))
      p = g_utf8_next_char (p);
    if (p >= end)
      break;
    char *start = p;
    while (p < end && !is_python_space (g_utf8_get_char (p)))
      p = g_utf8_next_char (p);
    if (n == 3)
      return FALSE;
    parts[n][0] = start;
    parts[n][1] = p;
    n++;
  }
  if (n != 2)
    return FALSE;
  *parts[0][1] = '\0';
  *parts[1][1] = '\0';
  merge->left = parts[0][0];
  merge->right = parts[1][0];
  return TRUE;
}

/* Reads merges from a NUL-terminated text, which it splits in place: the
 * lines [first_line, first_line + max_merges) (1-based), all of them when
 * max_merges < 0; a trailing empty line ends the file. */
static GArray *
parse_merges (char *text, gsize length, const char *path, int first_line,
    int max_merges, GError **error)
{
  char *end = text + length;
  GArray *merges = g_array_new (FALSE, FALSE, sizeof (Merge));
  int line_no = 1;
  for (char *line = text;
       line < end && (max_merges < 0 || (int) merges->len < max_merges);
       line_no++) {
    char *eol = memchr (line, '\n', end - line);
    char *next = eol ? eol + 1 : end;
    if (!eol)
      eol = end;
    if (line_no >= first_line && !(next == end && eol == line)) {
      Merge merge = { NULL, NULL, line_no };
      if (!g_utf8_validate_len (line, eol - line, NULL)) {
        g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
            "%s: line %d: not valid UTF-8 text", path, line_no);
        g_array_unref (merges);
        return NULL;
      }
      if (!split_merge_line (line, eol, &merge)) {
        g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
            "%s: line %d: expected a merge of two symbols, got \"%.*s\"", path,
            line_no, (int) MIN (eol - line, 40), line);
        g_array_unref (merges);
        return NULL;
      }
      g_array_append_val (merges, merge);
    }
    line = next;
  }
  return merges;
}

/* The start of a gzip file, unpacked with zlib up to its first max_lines
 * lines (the official file holds five times the merges CLIP uses). */
static char *
read_gzip_lines (const char *path, int max_lines, gsize *length, GError **error)
{
  g_autofree char *compressed = NULL;
  gsize compressed_length;
  if (!clip_read_file (path, &compressed, &compressed_length, error))
    return NULL;

  z_stream z = { 0 };
  if (inflateInit2 (&z, 16 + MAX_WBITS) != Z_OK) { /* 16: gzip framing */
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: zlib: out of memory",
        path);
    return NULL;
  }
  gsize capacity = 1 << 20;
  g_autofree char *out = g_malloc (capacity + 1);
  z.next_in = (Bytef *) compressed;
  z.avail_in = compressed_length;
  int status, lines = 0;
  do {
    if (z.total_out == capacity) {
      if (capacity >= OPENAI_VOCAB_MAX_BYTES) {
        inflateEnd (&z);
        g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
            "%s: unpacks to more than %d MiB, not a BPE vocabulary", path,
            OPENAI_VOCAB_MAX_BYTES >> 20);
        return NULL;
      }
      capacity = MIN (2 * capacity, (gsize) OPENAI_VOCAB_MAX_BYTES);
      out = g_realloc (out, capacity + 1);
    }
    z.next_out = (Bytef *) out + z.total_out;
    /* Small steps, so that unpacking stops soon after the last line needed. */
    z.avail_out = MIN (capacity - z.total_out, 1 << 16);
    const char *unpacked = out + z.total_out;
    status = inflate (&z, Z_NO_FLUSH);
    const char *unpacked_end = out + z.total_out;
    for (const char *p = unpacked; (p = memchr (p, '\n', unpacked_end - p));
         p++)
      lines++;
  } while (status == Z_OK && lines < max_lines);
  inflateEnd (&z);
  if (status != Z_STREAM_END && lines < max_lines) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: not a readable gzip file (%s)", path,
        status == Z_BUF_ERROR ? "truncated"
            : z.msg           ? z.msg
                              : "corrupt data");
    return NULL;
  }
  *length = z.total_out;
  out[*length] = '\0';
  return g_steal_pointer (&out);
}

/* A vocabulary being loaded: token -> id, the tokens kept in one chunk
 * (49k small allocations would be most of the loading time). */
typedef struct {
  GHashTable *ids;
  GStringChunk *tokens;
} Vocab;

static void
vocab_init (Vocab *vocab)
{
  vocab->ids = g_hash_table_new (g_str_hash, g_str_equal);
  vocab->tokens = g_string_chunk_new (1 << 20);
}

static void
vocab_clear (Vocab *vocab)
{
  g_clear_pointer (&vocab->ids, g_hash_table_unref);
  g_clear_pointer (&vocab->tokens, g_string_chunk_free);
}

/* A token given twice keeps its later id, as Python's dict(zip(...)). */
static void
vocab_set (Vocab *vocab, const char *token, int id)
{
  g_hash_table_insert (vocab->ids, g_string_chunk_insert (vocab->tokens, token),
      GINT_TO_POINTER (id));
}

/* simple_tokenizer.py's vocabulary: the byte symbols, the same with </w>,
 * every merge joined, then the two special tokens. */
static void
openai_vocab (Vocab *vocab, const GArray *merges)
{
  gunichar symbol_of_byte[256];
  guint8 order[256];
  char buf[16];
  byte_symbols (symbol_of_byte, order);
  vocab_init (vocab);
  int id = 0;
  for (int k = 0; k < 256; k++)
    vocab_set (vocab, byte_symbol_string (symbol_of_byte[order[k]], "", buf),
        id++);
  for (int k = 0; k < 256; k++)
    vocab_set (vocab,
        byte_symbol_string (symbol_of_byte[order[k]], END_OF_WORD, buf), id++);
  g_autoptr (GString) joined = g_string_new (NULL);
  for (guint i = 0; i < merges->len; i++) {
    const Merge *m = &g_array_index (merges, Merge, i);
    g_string_append (g_string_assign (joined, m->left), m->right);
    vocab_set (vocab, joined->str, id++);
  }
  vocab_set (vocab, START_TOKEN, id++);
  vocab_set (vocab, END_TOKEN, id++);
}

/* vocab.json is one flat object of string -> integer. It is read in one
 * pass here rather than through json-glib, whose node tree for 49k members
 * costs several times the rest of the loading. */
typedef struct {
  const char *p, *end;
  const char *path;
  int line;
} JsonReader;

static gboolean
json_fail (JsonReader *r, const char *problem, GError **error)
{
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT, "%s: line %d: %s", r->path,
      r->line, problem);
  return FALSE;
}

static void
json_skip_space (JsonReader *r)
{
  while (r->p < r->end
      && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r' || *r->p == '\n'))
    r->line += *r->p++ == '\n';
}

static gboolean
json_expect (JsonReader *r, char c, const char *problem, GError **error)
{
  json_skip_space (r);
  if (r->p >= r->end || *r->p != c)
    return json_fail (r, problem, error);
  r->p++;
  return TRUE;
}

static int
json_hex4 (const char *p, const char *end)
{
  int value = 0;
  for (int i = 0; i < 4; i++) {
    if (p + i >= end || !g_ascii_isxdigit (p[i]))
      return -1;
    value = value * 16 + g_ascii_xdigit_value (p[i]);
  }
  return value;
}

/* A JSON string at r->p (the opening quote), unescaped into out. The text
 * is already known to be valid UTF-8. */
static gboolean
json_string (JsonReader *r, GString *out, GError **error)
{
  g_string_truncate (out, 0);
  if (!json_expect (r, '"', "expected a token in double quotes", error))
    return FALSE;
  while (r->p < r->end && *r->p != '"') {
    const char *run = r->p;
    while (r->p < r->end && *r->p != '"' && *r->p != '\\'
        && (guchar) *r->p >= 0x20)
      r->p++;
    g_string_append_len (out, run, r->p - run);
    if (r->p >= r->end || *r->p == '"')
      break;
    if ((guchar) *r->p < 0x20)
      return json_fail (r, "control character inside a string", error);
    if (++r->p >= r->end)
      break;
    char escape = *r->p++;
    const char *simple = strchr ("\"\\/bfnrt", escape);
    if (simple && escape) {
      g_string_append_c (out, "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"]);
      continue;
    }
    int unit = escape == 'u' ? json_hex4 (r->p, r->end) : -1;
    if (unit < 0)
      return json_fail (r, "invalid escape in a string", error);
    r->p += 4;
    gunichar c = unit;
    if (unit >= 0xD800 && unit <= 0xDBFF && r->end - r->p >= 6
        && r->p[0] == '\\' && r->p[1] == 'u') {
      int low = json_hex4 (r->p + 2, r->end);
      if (low >= 0xDC00 && low <= 0xDFFF) {
        c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
        r->p += 6;
      }
    }
    if (c >= 0xD800 && c <= 0xDFFF)
      return json_fail (r, "unpaired surrogate escape in a string", error);
    g_string_append_unichar (out, c);
  }
  if (r->p >= r->end)
    return json_fail (r, "unterminated string", error);
  r->p++;
  return TRUE;
}

/* HF's vocab.json: an object of token -> id, the ids 0..n-1 each once. */
static gboolean
parse_vocab_json (Vocab *vocab, const char *text, gsize length,
    const char *path, GError **error)
{
  JsonReader r = { text, text + length, path, 1 };
  const char *invalid;
  if (!g_utf8_validate_len (text, length, &invalid)) {
    for (const char *p = text; p < invalid; p++)
      r.line += *p == '\n';
    return json_fail (&r, "not valid UTF-8 text", error);
  }

  g_autoptr (GString) token = g_string_new (NULL);
  vocab_init (vocab);
  if (!json_expect (&r, '{', "expected a JSON object of token -> id", error))
    return FALSE;
  json_skip_space (&r);
  gboolean empty = r.p < r.end && *r.p == '}';
  while (!empty) {
    if (!json_string (&r, token, error)
        || !json_expect (&r, ':', "expected ':' after a token", error))
      return FALSE;
    json_skip_space (&r);
    const char *digits = r.p;
    gint64 id = 0;
    while (r.p < r.end && g_ascii_isdigit (*r.p) && r.p - digits < 10)
      id = id * 10 + (*r.p++ - '0');
    if (r.p == digits
        || (r.p < r.end && strchr ("0123456789.eE", *r.p) && *r.p)) {
      g_autofree char *problem = g_strdup_printf (
          "the id of token \"%s\" is "
          "not a non-negative integer below 10^10",
          token->str);
      return json_fail (&r, problem, error);
    }
    vocab_set (vocab, token->str, (int) MIN (id, G_MAXINT));
    json_skip_space (&r);
    if (r.p < r.end && *r.p == ',') {
      r.p++;
      continue;
    }
    break;
  }
  if (!json_expect (&r, '}', "expected ',' or '}' after an id", error))
    return FALSE;
  json_skip_space (&r);
  if (r.p != r.end)
    return json_fail (&r, "unexpected text after the object", error);

  /* A repeated token keeps its last id, as Python's json does. */
  guint n = g_hash_table_size (vocab->ids);
  g_autofree guint8 *seen = g_new0 (guint8, n);
  GHashTableIter iter;
  gpointer key, value;
  g_hash_table_iter_init (&iter, vocab->ids);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    int id = GPOINTER_TO_INT (value);
    if (id >= (int) n) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
          "%s: token \"%s\" has id %d, outside 0..%u for %u tokens", path,
          (const char *) key, id, n - 1, n);
      return FALSE;
    }
    if (seen[id]++) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
          "%s: id %d is given to two tokens (one is \"%s\")", path, id,
          (const char *) key);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
read_vocab_json (Vocab *vocab, const char *path, GError **error)
{
  g_autofree char *text = NULL;
  gsize length;
  if (!clip_read_file (path, &text, &length, error))
    return FALSE;
  return parse_vocab_json (vocab, text, length, path, error);
}

static gboolean
vocab_id (const Vocab *vocab, const char *token, gint32 *id)
{
  gpointer value;
  if (!g_hash_table_lookup_extended (vocab->ids, token, NULL, &value))
    return FALSE;
  *id = GPOINTER_TO_INT (value);
  return TRUE;
}

/* Resolves the byte symbols, the special tokens and every merge to ids. */
static gboolean
build_tables (ClipTokenizer *tok, const Vocab *vocab, const char *vocab_path,
    const GArray *merges, const char *merges_path, GError **error)
{
  gunichar symbol_of_byte[256];
  guint8 order[256];
  char symbol[16], end_symbol[16];
  byte_symbols (symbol_of_byte, order);
  for (int b = 0; b < 256; b++) {
    const char *missing = NULL;
    if (!vocab_id (vocab, byte_symbol_string (symbol_of_byte[b], "", symbol),
            &tok->byte_ids[b]))
      missing = symbol;
    else if (!vocab_id (vocab,
                 byte_symbol_string (symbol_of_byte[b], END_OF_WORD,
                     end_symbol),
                 &tok->byte_end_ids[b]))
      missing = end_symbol;
    if (missing) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
          "%s: the symbol \"%s\" of byte 0x%02x is missing", vocab_path,
          missing, b);
      return FALSE;
    }
  }
  const char *missing = NULL;
  if (!vocab_id (vocab, START_TOKEN, &tok->start_id))
    missing = START_TOKEN;
  else if (!vocab_id (vocab, END_TOKEN, &tok->end_id))
    missing = END_TOKEN;
  if (missing) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: the special token %s is missing", vocab_path, missing);
    return FALSE;
  }

  guint size = 16;
  while (size < 2 * merges->len)
    size *= 2;
  tok->merges = g_new (MergeSlot, size);
  tok->merge_mask = size - 1;
  for (guint i = 0; i < size; i++)
    tok->merges[i].rank = -1;
  g_autoptr (GString) joined = g_string_new (NULL);
  for (guint rank = 0; rank < merges->len; rank++) {
    const Merge *m = &g_array_index (merges, Merge, rank);
    gint32 left = 0, right = 0, merged = 0;
    g_string_append (g_string_assign (joined, m->left), m->right);
    if (!vocab_id (vocab, m->left, &left))
      missing = m->left;
    else if (!vocab_id (vocab, m->right, &right))
      missing = m->right;
    else if (!vocab_id (vocab, joined->str, &merged))
      missing = joined->str;
    if (missing) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
          "%s: line %d: \"%s\" is not in the vocabulary %s", merges_path,
          m->line, missing, vocab_path);
      return FALSE;
    }
    /* A repeated pair takes its later rank, as in Python's dict. */
    MergeSlot *slot = &tok->merges[merge_slot (tok, left, right)];
    slot->pair = ((guint64) (guint32) left << 32) | (guint32) right;
    slot->rank = rank;
    slot->merged = merged;
  }
  return TRUE;
}

static ClipTokenizer *
tokenizer_new (const Vocab *vocab, const char *vocab_path, const GArray *merges,
    const char *merges_path, GError **error)
{
  ClipTokenizer *tok = g_new0 (ClipTokenizer, 1);
  g_mutex_init (&tok->cache_lock);
  tok->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (!build_tables (tok, vocab, vocab_path, merges, merges_path, error)) {
    clip_tokenizer_free (tok);
    return NULL;
  }
  return tok;
}

static ClipTokenizer *
load_hf (const char *vocab_path, const char *merges_path, GError **error)
{
  g_autofree char *text = NULL;
  gsize length;
  if (!clip_read_file (merges_path, &text, &length, error))
    return NULL;
  /* HF's merges.txt starts with a "#version: 0.2" line. */
  int first_line = g_str_has_prefix (text, "#version") ? 2 : 1;
  g_autoptr (GArray) merges = parse_merges (text, length, merges_path,
      first_line, -1, error);
  if (merges == NULL)
    return NULL;
  Vocab vocab = { NULL, NULL };
  ClipTokenizer *tok = NULL;
  if (read_vocab_json (&vocab, vocab_path, error))
    tok = tokenizer_new (&vocab, vocab_path, merges, merges_path, error);
  vocab_clear (&vocab);
  return tok;
}

ClipTokenizer *
clip_tokenizer_new_from_data (const char *vocab_json, gsize vocab_length,
    const char *merges_text, gsize merges_length, GError **error)
{
  /* parse_merges splits its text in place and wants a final NUL. */
  g_autofree char *merges_copy = g_strndup (merges_text, merges_length);
  merges_length = strlen (merges_copy);
  int first_line = g_str_has_prefix (merges_copy, "#version") ? 2 : 1;
  g_autoptr (GArray) merges = parse_merges (merges_copy, merges_length,
      "merges.txt", first_line, -1, error);
  if (merges == NULL)
    return NULL;
  Vocab vocab = { NULL, NULL };
  ClipTokenizer *tok = NULL;
  if (parse_vocab_json (&vocab, vocab_json, vocab_length, "vocab.json", error))
    tok = tokenizer_new (&vocab, "vocab.json", merges, "merges.txt", error);
  vocab_clear (&vocab);
  return tok;
}

static ClipTokenizer *
load_openai (const char *path, GError **error)
{
  gsize length;
  g_autofree char *text = read_gzip_lines (path, 1 + OPENAI_N_MERGES, &length,
      error);
  if (text == NULL)
    return NULL;
  /* Line 1 is a version comment. */
  g_autoptr (GArray) merges = parse_merges (text, length, path, 2,
      OPENAI_N_MERGES, error);
  if (merges == NULL)
    return NULL;
  if (merges->len < OPENAI_N_MERGES) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_FORMAT,
        "%s: %u merges, expected %d: the file is truncated", path, merges->len,
        OPENAI_N_MERGES);
    return NULL;
  }
  Vocab vocab;
  openai_vocab (&vocab, merges);
  ClipTokenizer *tok = tokenizer_new (&vocab, path, merges, path, error);
  vocab_clear (&vocab);
  return tok;
}

ClipTokenizer *
clip_tokenizer_new_from_dir (const char *dir, GError **error)
{
  g_return_val_if_fail (dir != NULL, NULL);
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: no such folder", dir);
    return NULL;
  }
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);
  g_autofree char *openai = g_build_filename (dir, OPENAI_VOCAB_FILE, NULL);
  gboolean has_vocab = g_file_test (vocab, G_FILE_TEST_EXISTS);
  gboolean has_merges = g_file_test (merges, G_FILE_TEST_EXISTS);

  if (has_vocab && has_merges)
    return load_hf (vocab, merges, error);
  if (g_file_test (openai, G_FILE_TEST_EXISTS))
    return load_openai (openai, error);
  if (has_vocab || has_merges)
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s: missing, %s needs it",
        has_vocab ? merges : vocab, has_vocab ? vocab : merges);
  else
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "%s: no vocabulary "
        "(vocab.json + merges.txt, or " OPENAI_VOCAB_FILE ")",
        dir);
  return NULL;
}

void
clip_tokenizer_free (ClipTokenizer *tok)
{
  if (tok == NULL)
    return;
  g_free (tok->merges);
  g_hash_table_unref (tok->cache);
  g_mutex_clear (&tok->cache_lock);
  g_free (tok);
}

/* -------------------------------------------------------------- encoding */

gboolean
clip_tokenizer_encode (const ClipTokenizer *tok, const char *text,
    int context_length, gint32 *ids, GError **error)
{
  return clip_tokenizer_encode_full (tok, text, context_length, ids, NULL,
      error);
}

gboolean
clip_tokenizer_encode_full (const ClipTokenizer *tok, const char *text,
    int context_length, gint32 *ids, gboolean *truncated, GError **error)
{
  g_return_val_if_fail (tok != NULL && text != NULL && ids != NULL, FALSE);
  if (context_length < 1) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID,
        "context length %d: must be at least 1", context_length);
    return FALSE;
  }
  if (!g_utf8_validate (text, -1, NULL)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_INVALID, "invalid UTF-8 text");
    return FALSE;
  }

  glong n_chars;
  g_autofree gunichar *chars = g_utf8_to_ucs4_fast (text, -1, &n_chars);
  g_autoptr (GArray) cleaned = clean_text (chars, n_chars);
  g_autoptr (GArray) lowered = python_lower ((gunichar *) cleaned->data,
      cleaned->len);
  const gunichar *s = (const gunichar *) lowered->data;
  gsize n = lowered->len;

  /* Only the first context_length - 1 ids can matter: with that many the
   * text is truncated anyway. */
  g_autoptr (GArray) bpe = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GByteArray) word = g_byte_array_new ();
  for (gsize i = 0; i < n && bpe->len < (guint) context_length - 1;) {
    gsize len = pre_token_length (s, n, i);
    if (len == 0) {
      i++;
      continue;
    }
    g_byte_array_set_size (word, 0);
    for (gsize k = i; k < i + len; k++) {
      guint8 utf8[6];
      g_byte_array_append (word, utf8, g_unichar_to_utf8 (s[k], (char *) utf8));
    }
    i += len;
    if (word->len == strlen (START_TOKEN)
        && memcmp (word->data, START_TOKEN, word->len) == 0)
      g_array_append_val (bpe, tok->start_id);
    else if (word->len == strlen (END_TOKEN)
        && memcmp (word->data, END_TOKEN, word->len) == 0)
      g_array_append_val (bpe, tok->end_id);
    else
      bpe_word_cached (tok, word->data, word->len, bpe);
  }

  /* [start] + bpe + [end], cut to context_length with the end token kept
   * last, then zero padding. */
  memset (ids, 0, context_length * sizeof (gint32));
  int k = 0;
  ids[k++] = tok->start_id;
  for (guint i = 0; i < bpe->len && k < context_length; i++)
    ids[k++] = g_array_index (bpe, gint32, i);
  ids[MIN (k, context_length - 1)] = tok->end_id;
  /* The loop stops at context_length - 1 BPE ids: with the start and end
   * tokens that is one more than fits. */
  if (truncated != NULL)
    *truncated = bpe->len + 2 > (guint) context_length;
  return TRUE;
}
