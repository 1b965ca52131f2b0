/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What only training needs besides the ops of cpu/ops.h: the loss. Its
 * gradients follow ops.h's rule: they are ADDED to what dimg, dtxt and
 * *dlog_scale hold. */
#pragma once

#include <glib.h>

/* CLIP's loss for n image/text pairs of dimension e: both sides
 * L2-normalised, logits = min(exp(log_scale), 100) * img txt^T, the mean of
 * the cross-entropies over rows (image -> text) and over columns
 * (text -> image), the i-th text being the i-th image's match. Returns the
 * loss and adds its gradients to dimg, dtxt and *dlog_scale (which stays
 * untouched while the scale is clamped). accuracy, when not NULL, gets the
 * fraction of rows whose best text is the matching one. */
double clip_op_contrastive_loss (const float *img, const float *txt, int n,
    int e, float log_scale, float *dimg, float *dtxt, float *dlog_scale,
    float *accuracy);
