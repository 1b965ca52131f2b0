/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Labels defined by example images: the images a labels file's "@PATH"
 * items name (a folder gives every image in it), decoded and embedded once
 * per label set, and kept in a cache file beside the labels file so that
 * the next start embeds only what changed. */
#pragma once

#include "clip.h"

G_BEGIN_DECLS

/* Encodes one decoded image into its raw embedding [embed_dim], as
 * clip_encoder_encode_frames does (a caller that shares its encoder takes
 * it for the call). */
typedef gboolean (*ClipFrameEncodeFunc) (const ClipFrame *frame,
    float *embedding, gpointer user_data, GError **error);

typedef struct {
  guint n_images;   /* example images of the label set */
  guint from_cache; /* of which the cache had */
  guint embedded;   /* of which were decoded and embedded now */
  /* (an image named twice counts twice in n_images, once in the others) */
  /* Why the cache was not used in full, or was not written: "no cache
   * yet", "made by another model", a read or write error...; NULL when
   * every image came from it. */
  char *cache_note;
} ClipExemplarStats;

void clip_exemplar_stats_clear (ClipExemplarStats *stats);

/* The cache file of a labels file: LABELS_FILE.exemplars beside it. */
char *clip_exemplar_cache_path (const char *labels_file);

/* Fills example_embeddings of every spec in labels that has examples:
 * folders are listed (their image files, by name), each image is taken
 * from the cache at cache_path when the cache was made by model (its
 * fingerprint) for the same file (canonical path, size, modification
 * time), else decoded (runtime/image.c) and encoded with encode. The cache
 * is then rewritten, atomically, when it differs (cache_path NULL: no
 * cache). A cache that does not load is ignored and rebuilt; one that
 * cannot be written only gives a note. Fails, naming the labels file's line
 * and the item, on a missing or undecodable image and on a folder without
 * images. stats may be NULL. */
gboolean clip_exemplars_embed (const ClipModel *model, GPtrArray *labels,
    const char *cache_path, ClipFrameEncodeFunc encode, gpointer user_data,
    ClipExemplarStats *stats, GError **error);

/* Whether any spec in labels names example images. */
gboolean clip_labels_have_examples (GPtrArray *labels);

G_END_DECLS
