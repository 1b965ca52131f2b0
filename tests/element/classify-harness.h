/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the clipclassify tests share: the element on the CPU and a harness
 * with a bus to read its messages from. */
#pragma once
#include <gst/check/gstharness.h>
#include <gst/gst.h>

/* A clipclassify on the model in model_dir, the CPU backend, one thread,
 * then the properties given (name, value, ..., NULL). */
GstElement *clip_test_classify_new (const char *model_dir,
    const char *first_property, ...) G_GNUC_NULL_TERMINATED;
GstElement *clip_test_classify_new_valist (const char *model_dir,
    const char *first_property, va_list args);

/* A harness around element (which it takes), with a new bus set on it. */
GstHarness *clip_test_harness_new (GstElement *element, GstBus **bus);

/* Tears the harness down and drops the bus. The bus is flushed first: the
 * messages left on it hold the element, which holds the bus, and the three
 * would leak together. */
void clip_test_harness_free (GstHarness *h, GstBus *bus);
