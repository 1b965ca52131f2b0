/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Access to ../shared/reference for the tests: its absence fails under
 * CI=true and skips loudly elsewhere. */
#pragma once

#include <clip.h>

/* The reference folder, or NULL after marking the test skipped (or failed
 * under CI=true). Use: if (!(ref = clip_test_reference ())) return; */
const char *clip_test_reference (void);

/* Path inside the reference folder; free with g_free. */
char *clip_test_ref_path (const char *relative);

/* The tiny reference model (models/tiny-hf, which carries its vocabulary)
 * on the CPU backend, or NULL after clip_test_reference. The encoder holds
 * the model (clip_encoder_get_model); free with clip_encoder_free. */
ClipEncoder *clip_test_tiny_encoder (void);

/* The label set of comma-separated labels and negatives (may be NULL) with
 * CLIP's default template, embedded by encoder; fails the test on error. */
ClipLabelSet *clip_test_label_set (ClipEncoder *encoder, const char *labels,
    const char *negatives);

/* Reads a raw float32 file of exactly n values (fails the test otherwise). */
float *clip_test_read_f32 (const char *relative, gsize n);
/* Reads a raw file of exactly n bytes. */
guint8 *clip_test_read_u8 (const char *relative, gsize n);

/* Max |a - b| over n values. */
double clip_test_max_abs_diff (const float *a, const float *b, gsize n);

/* A fresh temporary folder, removed at exit. */
char *clip_test_tmpdir (void);
