/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by the Vulkan tests. */
#pragma once

#include "backend.h"

#include <glib.h>

/* Turns the Khronos validation layer on (CLIP_VULKAN_VALIDATION=1) unless
 * the environment already says otherwise; call before g_test_init. */
void clip_vk_test_enable_validation (void);

/* TRUE when a Vulkan device exists; otherwise marks the test skipped, or
 * failed under CI=true (where lavapipe is installed). */
gboolean clip_vk_test_have_device (void);

/* A model of random weights in another shape than the reference's: 3
 * heads, patch 16 on 64x64 images, erf GELU in the image tower, and a text
 * width (30) that is not a multiple of 4, so the scalar matmul path runs
 * too. The same seed gives the same weights. */
typedef struct {
  ClipModel model;
  GPtrArray *arrays;
} RandomModel;

RandomModel *clip_vk_test_random_model_new (guint32 seed);
void clip_vk_test_random_model_free (RandomModel *rm);

/* The Vulkan backend with options (as the encoder maps them, the
 * environment's knobs included); NULL and error when it does not open. */
ClipBackend *clip_vk_test_open_with (const ClipModel *model,
    const ClipBackendOptions *options, GError **error);

/* The Vulkan backend on the first device, F16 weights or not, with the
 * profile or not; asserts it opens. */
ClipBackend *clip_vk_test_open (const ClipModel *model, gboolean f16,
    gboolean profile);
