/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the plugin's elements share: their pads, their enum types,
 * properties that are plain fields of the instance, and reading a
 * GstClipMeta as the results core's record.
 *
 * An element installs such a property with the offset of its field,
 * G_STRUCT_OFFSET (Element, field); set_property and get_property then
 * copy between the GValue and the field. The property's type says how the
 * field is stored: string as an owned gchar *, enum as its C enum,
 * boolean as gboolean, int, uint, uint64, float and double as the C type
 * of that name. */
#pragma once

#include <gst/gst.h>

#include "gstclipmeta.h"
#include "record.h"

G_BEGIN_DECLS

void gst_clip_install_field_property (GObjectClass *klass, guint prop_id,
    gsize offset, GParamSpec *pspec);

/* Copy value into the field, or the field into value; the caller holds
 * the lock that guards the element's properties. */
void gst_clip_field_set (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec);
void gst_clip_field_get (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec);

/* set_property and get_property for an element whose properties are all
 * fields under the object lock. */
void gst_clip_fields_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
void gst_clip_fields_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);

/* Adds always "sink" and "src" pad templates of the same caps (a
 * caps string) to an element that passes its buffers through. */
void gst_clip_add_pass_through_pad_templates (GstElementClass *klass,
    const gchar *caps);

/* Registers values as the enum type name, once; *type is the caller's
 * static GType. */
GType gst_clip_enum_register_once (GType *type, const gchar *name,
    const GEnumValue *values);

/* The meta as a frame record for the writers (clipexport) and documents
 * (clippublish). The label strings stay the meta's; the two arrays are
 * allocated: free them with gst_clip_frame_record_clear. */
void gst_clip_frame_record_from_meta (ClipFrameRecord *frame,
    const GstClipMeta *meta);
void gst_clip_frame_record_clear (ClipFrameRecord *frame);

G_END_DECLS
