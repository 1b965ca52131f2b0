/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "classify-harness.h"

GstElement *
clip_test_classify_new_valist (const char *model_dir,
    const char *first_property, va_list args)
{
  GstElement *element = gst_element_factory_make ("clipclassify", NULL);
  g_assert_nonnull (element);
  g_object_set (element, "model", model_dir, "threads", 1, NULL);
  gst_util_set_object_arg (G_OBJECT (element), "backend", "cpu");
  if (first_property != NULL)
    g_object_set_valist (G_OBJECT (element), first_property, args);
  return element;
}

GstElement *
clip_test_classify_new (const char *model_dir, const char *first_property, ...)
{
  va_list args;
  va_start (args, first_property);
  GstElement *element = clip_test_classify_new_valist (model_dir,
      first_property, args);
  va_end (args);
  return element;
}

GstHarness *
clip_test_harness_new (GstElement *element, GstBus **bus)
{
  *bus = gst_bus_new ();
  gst_element_set_bus (element, *bus);
  GstHarness *h = gst_harness_new_with_element (element, "sink", "src");
  gst_object_unref (element);
  return h;
}

void
clip_test_harness_free (GstHarness *h, GstBus *bus)
{
  gst_harness_teardown (h);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}
