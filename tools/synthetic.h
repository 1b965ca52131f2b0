/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The synthetic world `gst-clip train --synthetic` learns from and
 * `gst-clip eval --synthetic` measures on: captioned frames of GStreamer's
 * videotestsrc patterns (rendered by the real element) and of cairo-drawn
 * scenes (shapes of several kinds, colours, sizes, positions and counts on
 * plain or striped backgrounds, no text), captions composed from their
 * attributes. Every frame is a pure function of (seed, index).
 *
 * Zero-shot by construction: some colour x shape pairs never appear in
 * training; they only appear in the "unseen" evaluation set, and the
 * pattern evaluation uses frame sizes and times training never sees. */
#pragma once

#include "clip.h"

typedef struct _SyntheticWorld SyntheticWorld;

/* Renders the videotestsrc frames once and preprocesses everything for
 * config (its image size, mean and std). */
SyntheticWorld *synthetic_world_new (const ClipConfig *config, GError **error);
void synthetic_world_free (SyntheticWorld *world);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SyntheticWorld, synthetic_world_free)

/* Training pairs of one step: pixels [n, 3, S, S] and n captions (free
 * with g_strfreev). A quarter are patterns, each at most once per batch
 * (identical captions in a batch contradict the contrastive targets), the
 * rest scenes of seen colour x shape pairs, of training-only colours
 * (named) and of random colours (unnamed), never of a held-out pair. */
void synthetic_train_batch (SyntheticWorld *world, guint32 seed, guint64 step,
    int n, float *pixels, char ***captions);

/* An evaluation set: n frames, each with the index of its true label among
 * labels (the prompts to classify against). */
typedef struct {
  int n;
  float *pixels; /* [n, 3, S, S] */
  int *truth;    /* [n] */
  char **labels; /* NULL-terminated */
} SyntheticEvalSet;

/* per_pattern frames of each pattern, at sizes and times training never
 * uses; the labels are the pattern descriptions. */
SyntheticEvalSet *synthetic_eval_patterns (SyntheticWorld *world, guint32 seed,
    int per_pattern);
/* n scenes of one shape whose colour x shape pair training never saw; the
 * labels are "<colour> <shape>" for every pair, seen or not. */
SyntheticEvalSet *synthetic_eval_unseen (SyntheticWorld *world, guint32 seed,
    int n);
void synthetic_eval_set_free (SyntheticEvalSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SyntheticEvalSet, synthetic_eval_set_free)
