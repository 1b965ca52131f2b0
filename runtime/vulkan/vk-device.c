/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vk-device.h"
#include "vk-shaders.h"

#include "clip.h"

#include <string.h>

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

static guint validation_messages;

guint
clip_vulkan_validation_messages (void)
{
  return g_atomic_int_get (&validation_messages);
}

static const char *
result_name (VkResult result)
{
  switch (result) {
    case VK_ERROR_OUT_OF_HOST_MEMORY:
      return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
      return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED:
      return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST:
      return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_LAYER_NOT_PRESENT:
      return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT:
      return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT:
      return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER:
      return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS:
      return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FRAGMENTED_POOL:
      return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY:
      return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_INVALID_SHADER_NV:
      return "VK_ERROR_INVALID_SHADER_NV";
    default:
      return NULL;
  }
}

gboolean
clip_vk_fail (VkResult result, const char *what, GError **error)
{
  const char *name = result_name (result);
  if (name)
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND, "Vulkan: %s failed: %s",
        what, name);
  else
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
        "Vulkan: %s failed: VkResult %d", what, (int) result);
  return FALSE;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
on_validation_message (VkDebugUtilsMessageSeverityFlagBitsEXT severity,
    VkDebugUtilsMessageTypeFlagsEXT types,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user_data)
{
  g_atomic_int_inc (&validation_messages);
  g_critical ("Vulkan validation: %s", data->pMessage);
  return VK_FALSE;
}

static gboolean
instance_has_layer (const char *layer)
{
  guint32 n = 0;
  vkEnumerateInstanceLayerProperties (&n, NULL);
  g_autofree VkLayerProperties *layers = g_new0 (VkLayerProperties, MAX (n, 1));
  vkEnumerateInstanceLayerProperties (&n, layers);
  for (guint32 i = 0; i < n; i++)
    if (strcmp (layers[i].layerName, layer) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
layer_has_extension (const char *layer, const char *extension)
{
  guint32 n = 0;
  vkEnumerateInstanceExtensionProperties (layer, &n, NULL);
  g_autofree VkExtensionProperties *extensions = g_new0 (VkExtensionProperties, MAX (n, 1));
  vkEnumerateInstanceExtensionProperties (layer, &n, extensions);
  for (guint32 i = 0; i < n; i++)
    if (strcmp (extensions[i].extensionName, extension) == 0)
      return TRUE;
  return FALSE;
}

static VkInstance
create_instance (gboolean validation, VkDebugUtilsMessengerEXT *messenger,
    GError **error)
{
  VkApplicationInfo app = {
    .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
    .pApplicationName = "gst-clip",
    .pEngineName = "gst-clip",
    .apiVersion = VK_API_VERSION_1_1,
  };
  VkInstanceCreateInfo info = {
    .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
    .pApplicationInfo = &app,
  };
  const char *layers[] = { VALIDATION_LAYER };
  const char *extensions[] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME,
    VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME };
  VkValidationFeatureEnableEXT enables[] = {
    VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT,
  };
  VkValidationFeaturesEXT features = {
    .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
    .enabledValidationFeatureCount = G_N_ELEMENTS (enables),
    .pEnabledValidationFeatures = enables,
  };
  VkDebugUtilsMessengerCreateInfoEXT messenger_info = {
    .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
    .pNext = &features,
    .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT
        | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
    .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT
        | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
    .pfnUserCallback = on_validation_message,
  };
  if (validation) {
    if (!instance_has_layer (VALIDATION_LAYER)) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
          "CLIP_VULKAN_VALIDATION=1 but the layer %s is not installed "
          "(Debian: vulkan-validationlayers)",
          VALIDATION_LAYER);
      return VK_NULL_HANDLE;
    }
    info.enabledLayerCount = G_N_ELEMENTS (layers);
    info.ppEnabledLayerNames = layers;
    info.enabledExtensionCount = 1;
    info.ppEnabledExtensionNames = extensions;
    /* Synchronisation checks where the layer offers them (it checks the
     * barriers between our dispatches). */
    if (layer_has_extension (VALIDATION_LAYER,
            VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME))
      info.enabledExtensionCount = 2;
    else
      messenger_info.pNext = NULL;
    /* Chained here, the messenger also reports on instance creation. */
    info.pNext = &messenger_info;
  }

  VkInstance instance = VK_NULL_HANDLE;
  VkResult r = vkCreateInstance (&info, NULL, &instance);
  if (r == VK_ERROR_INCOMPATIBLE_DRIVER) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
        "no Vulkan device found: "
        "no Vulkan driver is installed (Debian: mesa-vulkan-drivers has lavapipe, a CPU one)");
    return VK_NULL_HANDLE;
  }
  if (r != VK_SUCCESS) {
    clip_vk_fail (r, "vkCreateInstance", error);
    return VK_NULL_HANDLE;
  }
  if (validation) {
    PFN_vkCreateDebugUtilsMessengerEXT create_messenger =
        (PFN_vkCreateDebugUtilsMessengerEXT) vkGetInstanceProcAddr (instance,
            "vkCreateDebugUtilsMessengerEXT");
    messenger_info.pNext = NULL;
    r = create_messenger
        ? create_messenger (instance, &messenger_info, NULL, messenger)
        : VK_ERROR_EXTENSION_NOT_PRESENT;
    if (r != VK_SUCCESS) {
      vkDestroyInstance (instance, NULL);
      clip_vk_fail (r, "vkCreateDebugUtilsMessengerEXT", error);
      return VK_NULL_HANDLE;
    }
  }
  return instance;
}

static VkPhysicalDevice *
list_devices (VkInstance instance, guint32 *n)
{
  *n = 0;
  if (vkEnumeratePhysicalDevices (instance, n, NULL) != VK_SUCCESS)
    return NULL;
  VkPhysicalDevice *devices = g_new0 (VkPhysicalDevice, MAX (*n, 1));
  if (vkEnumeratePhysicalDevices (instance, n, devices) < 0)
    *n = 0;
  return devices;
}

int
clip_vulkan_count_devices (void)
{
  VkInstance instance = create_instance (FALSE, NULL, NULL);
  if (instance == VK_NULL_HANDLE)
    return 0;
  guint32 n;
  g_free (list_devices (instance, &n));
  vkDestroyInstance (instance, NULL);
  return n;
}

gboolean
clip_vulkan_has_gpu (void)
{
  static gsize checked;
  static gboolean has_gpu;
  if (g_once_init_enter (&checked)) {
    VkInstance instance = create_instance (FALSE, NULL, NULL);
    if (instance != VK_NULL_HANDLE) {
      guint32 n;
      g_autofree VkPhysicalDevice *devices = list_devices (instance, &n);
      for (guint32 i = 0; i < n; i++) {
        VkPhysicalDeviceProperties props;
        vkGetPhysicalDeviceProperties (devices[i], &props);
        if (props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU
            && props.apiVersion >= VK_API_VERSION_1_1)
          has_gpu = TRUE;
      }
      vkDestroyInstance (instance, NULL);
    }
    g_once_init_leave (&checked, 1);
  }
  return has_gpu;
}

static const char *
device_type_name (VkPhysicalDeviceType type)
{
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return "CPU";
    default:
      return "other";
  }
}

static int
device_type_rank (VkPhysicalDeviceType type)
{
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return 1;
    default:
      return 0;
  }
}

/* "0 = NAME, 1 = NAME" for error messages. */
static char *
describe_devices (VkPhysicalDevice *devices, guint32 n)
{
  GString *s = g_string_new (NULL);
  for (guint32 i = 0; i < n; i++) {
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties (devices[i], &props);
    g_string_append_printf (s, "%s%u = %s", i ? ", " : "", i, props.deviceName);
  }
  return g_string_free (s, FALSE);
}

static int
choose_device (VkPhysicalDevice *devices, guint32 n, int index,
    const char *name_substring, GError **error)
{
  if (n == 0) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
        "no Vulkan device found (Debian: mesa-vulkan-drivers has lavapipe, a CPU one)");
    return -1;
  }
  g_autofree char *list = describe_devices (devices, n);
  if (index >= 0) {
    if ((guint32) index >= n) {
      g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
          "Vulkan device %d does not exist (devices: %s)", index, list);
      return -1;
    }
    return index;
  }
  if (name_substring != NULL && *name_substring) {
    g_autofree char *wanted = g_utf8_casefold (name_substring, -1);
    for (guint32 i = 0; i < n; i++) {
      VkPhysicalDeviceProperties props;
      vkGetPhysicalDeviceProperties (devices[i], &props);
      g_autofree char *name = g_utf8_casefold (props.deviceName, -1);
      if (strstr (name, wanted))
        return i;
    }
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
        "no Vulkan device name contains '%s' (devices: %s)", name_substring,
        list);
    return -1;
  }
  int best = 0, best_rank = -1;
  for (guint32 i = 0; i < n; i++) {
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties (devices[i], &props);
    if (device_type_rank (props.deviceType) > best_rank) {
      best = i;
      best_rank = device_type_rank (props.deviceType);
    }
  }
  return best;
}

static gboolean
find_compute_queue (VkPhysicalDevice physical, guint32 *family)
{
  guint32 n = 0;
  vkGetPhysicalDeviceQueueFamilyProperties (physical, &n, NULL);
  g_autofree VkQueueFamilyProperties *families = g_new0 (VkQueueFamilyProperties, MAX (n, 1));
  vkGetPhysicalDeviceQueueFamilyProperties (physical, &n, families);
  /* A compute-only family is usually the GPU's asynchronous compute engine. */
  int chosen = -1;
  for (guint32 i = 0; i < n; i++) {
    if (!(families[i].queueFlags & VK_QUEUE_COMPUTE_BIT))
      continue;
    if (chosen < 0 || !(families[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
      chosen = i;
  }
  if (chosen < 0)
    return FALSE;
  *family = chosen;
  return TRUE;
}

static gboolean
create_layouts (ClipVkDevice *dev, GError **error)
{
  VkDescriptorSetLayoutBinding bindings[CLIP_VK_BINDINGS];
  for (guint i = 0; i < CLIP_VK_BINDINGS; i++)
    bindings[i] = (VkDescriptorSetLayoutBinding) {
      .binding = i,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .descriptorCount = 1,
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    };
  VkDescriptorSetLayoutCreateInfo set_info = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
    .bindingCount = CLIP_VK_BINDINGS,
    .pBindings = bindings,
  };
  VkResult r = vkCreateDescriptorSetLayout (dev->device, &set_info, NULL,
      &dev->set_layout);
  if (r != VK_SUCCESS)
    return clip_vk_fail (r, "vkCreateDescriptorSetLayout", error);
  VkPushConstantRange push = {
    .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    .size = CLIP_VK_PUSH_BYTES,
  };
  VkPipelineLayoutCreateInfo layout_info = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
    .setLayoutCount = 1,
    .pSetLayouts = &dev->set_layout,
    .pushConstantRangeCount = 1,
    .pPushConstantRanges = &push,
  };
  r = vkCreatePipelineLayout (dev->device, &layout_info, NULL,
      &dev->pipeline_layout);
  if (r != VK_SUCCESS)
    return clip_vk_fail (r, "vkCreatePipelineLayout", error);
  return TRUE;
}

static gboolean
create_device (ClipVkDevice *dev, gboolean wants_f16, GError **error)
{
  VkPhysicalDevice16BitStorageFeatures storage16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
  };
  VkPhysicalDeviceFeatures2 features = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
    .pNext = &storage16,
  };
  vkGetPhysicalDeviceFeatures2 (dev->physical, &features);
  dev->f16_storage = wants_f16 && storage16.storageBuffer16BitAccess;

  VkPhysicalDeviceMaintenance3Properties maintenance3 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
  };
  VkPhysicalDeviceProperties2 props2 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
    .pNext = &maintenance3,
  };
  vkGetPhysicalDeviceProperties2 (dev->physical, &props2);
  dev->max_allocation = maintenance3.maxMemoryAllocationSize;
  dev->max_range = dev->props.limits.maxStorageBufferRange;

  if (!find_compute_queue (dev->physical, &dev->queue_family)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
        "Vulkan device %s has no compute queue", dev->props.deviceName);
    return FALSE;
  }
  guint32 n_families = 0;
  vkGetPhysicalDeviceQueueFamilyProperties (dev->physical, &n_families, NULL);
  g_autofree VkQueueFamilyProperties *families = g_new0 (VkQueueFamilyProperties, n_families);
  vkGetPhysicalDeviceQueueFamilyProperties (dev->physical, &n_families,
      families);
  dev->timestamps = families[dev->queue_family].timestampValidBits > 0
      && dev->props.limits.timestampPeriod > 0;

  float priority = 1.0f;
  VkDeviceQueueCreateInfo queue_info = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
    .queueFamilyIndex = dev->queue_family,
    .queueCount = 1,
    .pQueuePriorities = &priority,
  };
  VkPhysicalDevice16BitStorageFeatures enable16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
    .storageBuffer16BitAccess = dev->f16_storage,
  };
  VkDeviceCreateInfo info = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
    .pNext = &enable16,
    .queueCreateInfoCount = 1,
    .pQueueCreateInfos = &queue_info,
  };
  VkResult r = vkCreateDevice (dev->physical, &info, NULL, &dev->device);
  if (r != VK_SUCCESS)
    return clip_vk_fail (r, "vkCreateDevice", error);
  vkGetDeviceQueue (dev->device, dev->queue_family, 0, &dev->queue);

  VkCommandPoolCreateInfo pool_info = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
    .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
    .queueFamilyIndex = dev->queue_family,
  };
  r = vkCreateCommandPool (dev->device, &pool_info, NULL, &dev->command_pool);
  if (r != VK_SUCCESS)
    return clip_vk_fail (r, "vkCreateCommandPool", error);
  return create_layouts (dev, error);
}

ClipVkDevice *
clip_vk_device_open (int index, const char *name_substring, gboolean wants_f16,
    gboolean validation, GError **error)
{
  ClipVkDevice *dev = g_new0 (ClipVkDevice, 1);
  dev->instance = create_instance (validation, &dev->messenger, error);
  if (dev->instance == VK_NULL_HANDLE) {
    g_free (dev);
    return NULL;
  }
  guint32 n;
  g_autofree VkPhysicalDevice *devices = list_devices (dev->instance, &n);
  int chosen = choose_device (devices, n, index, name_substring, error);
  if (chosen < 0) {
    clip_vk_device_close (dev);
    return NULL;
  }
  dev->physical = devices[chosen];
  vkGetPhysicalDeviceProperties (dev->physical, &dev->props);
  vkGetPhysicalDeviceMemoryProperties (dev->physical, &dev->memory_props);
  if (dev->props.apiVersion < VK_API_VERSION_1_1) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
        "Vulkan device %s supports only Vulkan %u.%u; 1.1 is needed",
        dev->props.deviceName, VK_API_VERSION_MAJOR (dev->props.apiVersion),
        VK_API_VERSION_MINOR (dev->props.apiVersion));
    clip_vk_device_close (dev);
    return NULL;
  }
  if (!create_device (dev, wants_f16, error)) {
    clip_vk_device_close (dev);
    return NULL;
  }
  dev->description = g_strdup_printf ("%s, %s", dev->props.deviceName,
      device_type_name (dev->props.deviceType));
  return dev;
}

void
clip_vk_device_close (ClipVkDevice *dev)
{
  if (dev == NULL)
    return;
  if (dev->device) {
    vkDeviceWaitIdle (dev->device);
    vkDestroyPipelineLayout (dev->device, dev->pipeline_layout, NULL);
    vkDestroyDescriptorSetLayout (dev->device, dev->set_layout, NULL);
    vkDestroyCommandPool (dev->device, dev->command_pool, NULL);
    vkDestroyDevice (dev->device, NULL);
  }
  if (dev->messenger) {
    PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger =
        (PFN_vkDestroyDebugUtilsMessengerEXT) vkGetInstanceProcAddr (
            dev->instance, "vkDestroyDebugUtilsMessengerEXT");
    if (destroy_messenger)
      destroy_messenger (dev->instance, dev->messenger, NULL);
  }
  vkDestroyInstance (dev->instance, NULL);
  g_free (dev->description);
  g_free (dev);
}

static int
find_memory_type (const ClipVkDevice *dev, guint32 allowed,
    VkMemoryPropertyFlags wanted)
{
  for (guint32 i = 0; i < dev->memory_props.memoryTypeCount; i++)
    if ((allowed & (1u << i))
        && (dev->memory_props.memoryTypes[i].propertyFlags & wanted) == wanted)
      return i;
  return -1;
}

gboolean
clip_vk_buffer_init (ClipVkDevice *dev, ClipVkBuffer *buf, VkDeviceSize size,
    gboolean host_visible, GError **error)
{
  memset (buf, 0, sizeof (*buf));
  if (size > dev->max_allocation) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
        "Vulkan: a buffer of %" G_GUINT64_FORMAT
        " bytes is larger than device %s "
        "can allocate (%" G_GUINT64_FORMAT ")",
        (guint64) size, dev->props.deviceName, (guint64) dev->max_allocation);
    return FALSE;
  }
  VkBufferCreateInfo info = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = size,
    .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT
        | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  VkResult r = vkCreateBuffer (dev->device, &info, NULL, &buf->buffer);
  if (r != VK_SUCCESS)
    return clip_vk_fail (r, "vkCreateBuffer", error);
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements (dev->device, buf->buffer, &req);
  int type = host_visible ? find_memory_type (dev, req.memoryTypeBits,
                 VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT
                     | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)
                          : find_memory_type (dev, req.memoryTypeBits,
                              VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
  if (type < 0 && !host_visible)
    type = find_memory_type (dev, req.memoryTypeBits, 0);
  if (type < 0) {
    clip_vk_buffer_clear (dev, buf);
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_BACKEND,
        "Vulkan device %s has no suitable memory type", dev->props.deviceName);
    return FALSE;
  }
  VkMemoryAllocateInfo alloc = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
    .allocationSize = req.size,
    .memoryTypeIndex = type,
  };
  r = vkAllocateMemory (dev->device, &alloc, NULL, &buf->memory);
  if (r == VK_SUCCESS)
    r = vkBindBufferMemory (dev->device, buf->buffer, buf->memory, 0);
  if (r == VK_SUCCESS && host_visible)
    r = vkMapMemory (dev->device, buf->memory, 0, VK_WHOLE_SIZE, 0,
        &buf->mapped);
  if (r != VK_SUCCESS) {
    clip_vk_buffer_clear (dev, buf);
    return clip_vk_fail (r, "allocating buffer memory", error);
  }
  buf->size = size;
  return TRUE;
}

void
clip_vk_buffer_clear (ClipVkDevice *dev, ClipVkBuffer *buf)
{
  if (buf->buffer)
    vkDestroyBuffer (dev->device, buf->buffer, NULL);
  if (buf->memory)
    vkFreeMemory (dev->device, buf->memory, NULL); /* unmaps too */
  memset (buf, 0, sizeof (*buf));
}

VkPipeline
clip_vk_pipeline_new (ClipVkDevice *dev, const char *module,
    const guint32 *spec, guint n_spec, GError **error)
{
  const ClipVkShader *shader = clip_vk_shaders;
  while (shader->name && strcmp (shader->name, module) != 0)
    shader++;
  g_return_val_if_fail (shader->name != NULL, VK_NULL_HANDLE);

  VkShaderModuleCreateInfo module_info = {
    .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
    .codeSize = shader->size,
    .pCode = shader->code,
  };
  VkShaderModule shader_module;
  VkResult r = vkCreateShaderModule (dev->device, &module_info, NULL,
      &shader_module);
  if (r != VK_SUCCESS) {
    clip_vk_fail (r, "vkCreateShaderModule", error);
    return VK_NULL_HANDLE;
  }
  g_autofree VkSpecializationMapEntry *entries = g_new0 (VkSpecializationMapEntry, MAX (n_spec, 1));
  for (guint i = 0; i < n_spec; i++)
    entries[i] = (VkSpecializationMapEntry) { i, i * sizeof (guint32),
      sizeof (guint32) };
  VkSpecializationInfo spec_info = {
    .mapEntryCount = n_spec,
    .pMapEntries = entries,
    .dataSize = n_spec * sizeof (guint32),
    .pData = spec,
  };
  VkComputePipelineCreateInfo info = {
    .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
    .stage = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
      .module = shader_module,
      .pName = "main",
      .pSpecializationInfo = n_spec ? &spec_info : NULL,
    },
    .layout = dev->pipeline_layout,
  };
  VkPipeline pipeline = VK_NULL_HANDLE;
  r = vkCreateComputePipelines (dev->device, VK_NULL_HANDLE, 1, &info, NULL,
      &pipeline);
  vkDestroyShaderModule (dev->device, shader_module, NULL);
  if (r != VK_SUCCESS) {
    g_autofree char *what = g_strdup_printf ("creating the %s pipeline",
        module);
    clip_vk_fail (r, what, error);
    return VK_NULL_HANDLE;
  }
  return pipeline;
}

gboolean
clip_vk_submit_and_wait (ClipVkDevice *dev, VkCommandBuffer cmd, GError **error)
{
  VkFenceCreateInfo fence_info = {
    .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO
  };
  VkFence fence;
  VkResult r = vkCreateFence (dev->device, &fence_info, NULL, &fence);
  if (r != VK_SUCCESS)
    return clip_vk_fail (r, "vkCreateFence", error);
  VkSubmitInfo submit = {
    .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
    .commandBufferCount = 1,
    .pCommandBuffers = &cmd,
  };
  r = vkQueueSubmit (dev->queue, 1, &submit, fence);
  if (r == VK_SUCCESS)
    r = vkWaitForFences (dev->device, 1, &fence, VK_TRUE, UINT64_MAX);
  vkDestroyFence (dev->device, fence, NULL);
  if (r != VK_SUCCESS)
    return clip_vk_fail (r, "running a command buffer", error);
  return TRUE;
}
