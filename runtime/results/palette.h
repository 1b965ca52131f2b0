/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The colours gst-clip gives labels wherever it draws them: clipoverlay's
 * bars (its default bar-color is the first) and the HTML report's timeline,
 * legend and plot. A label's colour is the one at its index in the label
 * list; past the end the palette starts again. */
#pragma once

#include <glib.h>

#define CLIP_PALETTE_SIZE 8

/* "Everything else" (labels summed in a plot, areas without a label): a
 * grey that is none of the palette's colours. */
#define CLIP_PALETTE_OTHER 0x9e9e9e

/* The colour of label index, as 0xRRGGBB. */
guint32 clip_palette_colour (guint index);
