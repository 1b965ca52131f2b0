/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "backend.h"
#include "util.h"

#include <math.h>

G_DEFINE_QUARK (clip - error - quark, clip_error)

void
clip_l2_normalize (float *v, int n)
{
  double sum = 0.0;
  for (int i = 0; i < n; i++)
    sum += (double) v[i] * v[i];
  if (sum <= 0.0)
    return;
  float inv = (float) (1.0 / sqrt (sum));
  for (int i = 0; i < n; i++)
    v[i] *= inv;
}

void
clip_softmax (float *v, int n)
{
  if (n <= 0)
    return;
  float max = v[0];
  for (int i = 1; i < n; i++)
    max = MAX (max, v[i]);
  double sum = 0.0;
  for (int i = 0; i < n; i++) {
    v[i] = expf (v[i] - max);
    sum += v[i];
  }
  for (int i = 0; i < n; i++)
    v[i] = (float) (v[i] / sum);
}

int
clip_tokens_eot_position (const gint32 *ids, int context_length)
{
  /* The official code pools at ids.argmax(): the first occurrence of the
   * largest id, which is <|endoftext|> in any tokenized row. */
  int best = 0;
  for (int i = 1; i < context_length; i++)
    if (ids[i] > ids[best])
      best = i;
  return best;
}

char *
clip_default_model_dir (GError **error)
{
  const char *env = g_getenv ("GST_CLIP_DEFAULT_MODEL");
  if (env && *env) {
    if (g_file_test (env, G_FILE_TEST_IS_DIR))
      return g_strdup (env);
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "no default model: GST_CLIP_DEFAULT_MODEL names %s, which is not "
        "a folder",
        env);
    return NULL;
  }
  if (g_file_test (CLIP_DEFAULT_MODEL_DIR, G_FILE_TEST_IS_DIR))
    return g_strdup (CLIP_DEFAULT_MODEL_DIR);
  g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
      "no default model: it is installed with gst-clip in %s (not there); "
      "set GST_CLIP_DEFAULT_MODEL to another folder",
      CLIP_DEFAULT_MODEL_DIR);
  return NULL;
}

gboolean
clip_read_file (const char *path, char **contents, gsize *length,
    GError **error)
{
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, contents, length, &local)) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO, "%s", local->message);
    return FALSE;
  }
  return TRUE;
}
