#include "vulkan-test.h"
#include "vulkan/vk-device.h"

void
clip_vk_test_enable_validation (void)
{
  /* Before any Vulkan instance exists: layers are chosen at its creation. */
  if (!g_getenv ("CLIP_VULKAN_VALIDATION"))
    g_setenv ("CLIP_VULKAN_VALIDATION", "1", TRUE);
}

gboolean
clip_vk_test_have_device (void)
{
  if (clip_vulkan_count_devices () > 0)
    return TRUE;
  if (g_strcmp0 (g_getenv ("CI"), "true") == 0) {
    g_test_message ("no Vulkan device (CI=true needs lavapipe: mesa-vulkan-drivers)");
    g_test_fail ();
  } else {
    g_printerr ("\n*** SKIPPING: no Vulkan device ***\n");
    g_test_skip ("no Vulkan device");
  }
  return FALSE;
}
