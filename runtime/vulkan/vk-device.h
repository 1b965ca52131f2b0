/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Vulkan device the backend runs on: instance and device selection,
 * buffers, compute pipelines, submission. Internal to runtime/vulkan/. */
#pragma once

#include <glib.h>
#include <vulkan/vulkan.h>

/* Every kernel binds up to this many storage buffers (unused ones get a
 * small dummy) and up to this many bytes of push constants. */
#define CLIP_VK_BINDINGS 5
#define CLIP_VK_PUSH_BYTES 32

typedef struct {
  VkBuffer buffer;
  VkDeviceMemory memory;
  VkDeviceSize size;
  void *mapped; /* host-visible buffers only */
} ClipVkBuffer;

/* The part of a buffer one binding sees. */
typedef struct {
  VkBuffer buffer;
  VkDeviceSize offset, range;
} ClipVkView;

typedef struct {
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  VkPhysicalDevice physical;
  VkPhysicalDeviceProperties props;
  VkPhysicalDeviceMemoryProperties memory_props;
  VkDevice device;
  VkQueue queue;
  guint32 queue_family;
  VkCommandPool command_pool;
  VkDescriptorSetLayout set_layout;
  VkPipelineLayout pipeline_layout;
  gboolean f16_storage;   /* storageBuffer16BitAccess is enabled */
  gboolean timestamps;    /* the queue supports timestamp queries */
  VkDeviceSize max_range; /* maxStorageBufferRange */
  VkDeviceSize max_allocation;
  char *description; /* "NAME (TYPE, driver DRIVER)" */
} ClipVkDevice;

/* Opens device number index (when >= 0), else the first whose name contains
 * name_substring (case-insensitive, when not NULL), else the best one (a
 * discrete GPU before an integrated, virtual, then CPU one). wants_f16
 * enables 16-bit storage when the device has it. validation enables the
 * Khronos validation layer (with synchronisation checks); every message it
 * sends is a g_critical. */
ClipVkDevice *clip_vk_device_open (int index, const char *name_substring,
    gboolean wants_f16, gboolean validation, GError **error);
void clip_vk_device_close (ClipVkDevice *dev);

/* A storage buffer that can also be copied to and from: device-local, or
 * host-visible, coherent and persistently mapped. */
gboolean clip_vk_buffer_init (ClipVkDevice *dev, ClipVkBuffer *buf,
    VkDeviceSize size, gboolean host_visible, GError **error);
void clip_vk_buffer_clear (ClipVkDevice *dev, ClipVkBuffer *buf);

static inline ClipVkView
clip_vk_view (const ClipVkBuffer *buf, VkDeviceSize offset, VkDeviceSize range)
{
  ClipVkView view = { buf->buffer, offset, range };
  return view;
}

/* A compute pipeline for one embedded module, with its specialisation
 * constants 0..n_spec-1 (all 32-bit). */
VkPipeline clip_vk_pipeline_new (ClipVkDevice *dev, const char *module,
    const guint32 *spec, guint n_spec, GError **error);

gboolean clip_vk_submit_and_wait (ClipVkDevice *dev, VkCommandBuffer cmd,
    GError **error);

/* Sets error from a failed Vulkan call; returns FALSE. */
gboolean clip_vk_fail (VkResult result, const char *what, GError **error);

/* For the tests: how many Vulkan devices exist, and how many messages the
 * validation layer has sent since the process started. */
int clip_vulkan_count_devices (void);
guint clip_vulkan_validation_messages (void);
