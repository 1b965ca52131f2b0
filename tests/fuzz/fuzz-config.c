/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: clip_config_parse, which reads both HF config.json
 * (CLIPConfig) and OpenCLIP's config, on arbitrary bytes. An accepted config
 * must also pass validation. */
#include "model.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  ClipConfig config;
  if (!clip_config_parse ((const char *) data, size, "config.json", &config,
          &error)) {
    g_assert (error != NULL);
    g_error_free (error);
    return 0;
  }
  g_assert (clip_config_validate (&config, NULL));
  return 0;
}
