/* Shared by the Vulkan tests. */
#pragma once

#include <glib.h>

/* Turns the Khronos validation layer on (CLIP_VULKAN_VALIDATION=1) unless
 * the environment already says otherwise; call before g_test_init. */
void clip_vk_test_enable_validation (void);

/* TRUE when a Vulkan device exists; otherwise marks the test skipped, or
 * failed under CI=true (where lavapipe is installed). */
gboolean clip_vk_test_have_device (void);
