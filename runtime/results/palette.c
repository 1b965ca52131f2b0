/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "palette.h"

/* Material Design's 500 shades: strong on both dark video and a white page,
 * and far enough apart to tell neighbours in a timeline strip. */
static const guint32 palette[CLIP_PALETTE_SIZE] = {
  0x4caf50, /* green */
  0x2196f3, /* blue */
  0xff9800, /* orange */
  0xe91e63, /* pink */
  0x9c27b0, /* purple */
  0x00bcd4, /* cyan */
  0xffeb3b, /* yellow */
  0x795548, /* brown */
};

guint32
clip_palette_colour (guint index)
{
  return palette[index % CLIP_PALETTE_SIZE];
}
