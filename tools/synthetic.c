/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The synthetic world: videotestsrc frames and cairo scenes with captions.
 * See synthetic.h. */
#include "synthetic.h"

#include <cairo.h>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <math.h>
#include <string.h>

/* ------------------------------------------------------------ patterns */

/* The videotestsrc patterns that stay distinct at a small model's input
 * size (checkers-1/2/4 and blink turn into flat greys or plain frames
 * there), with the description that is their label. */
typedef struct {
  const char *pattern;
  const char *description;
  gboolean animated;
} Pattern;

static const Pattern patterns[] = {
  { "smpte", "smpte color bars", FALSE },
  { "snow", "random noise snow", TRUE },
  { "black", "black frame", FALSE },
  { "white", "white frame", FALSE },
  { "red", "red frame", FALSE },
  { "green", "green frame", FALSE },
  { "blue", "blue frame", FALSE },
  { "checkers-8", "checkerboard", FALSE },
  { "circular", "concentric rings", FALSE },
  { "zone-plate", "zone plate", FALSE },
  { "ball", "bouncing ball", TRUE },
  { "pinwheel", "pinwheel", FALSE },
  { "spokes", "radial spokes", FALSE },
  { "colors", "color spectrum", FALSE },
  { "gamut", "gamut stripes", FALSE },
};
#define N_PATTERNS G_N_ELEMENTS (patterns)

typedef struct {
  int width, height;
} FrameSize;

/* Training and evaluation see different frame sizes (so different
 * resampling and cropping) and, for animated patterns, different times.
 * The evaluation sizes stay within the training sizes' scale: videotestsrc
 * draws in pixels, so at 640 x 480 checkers-8 or the zone plate shrink to
 * grey at a 64-pixel input, another picture rather than a harder one. */
static const FrameSize train_sizes[] = { { 320, 240 }, { 256, 256 },
  { 480, 270 } };
static const FrameSize eval_sizes[] = { { 352, 288 }, { 400, 300 } };
#define ANIMATED_FRAMES 12 /* per size and split */
#define FRAME_STRIDE 5     /* buffers between two kept frames */

/* Preprocessed frames of one pattern in one split: [count, 3, S, S]. */
typedef struct {
  float *tensors;
  int count;
} FrameBank;

/* ------------------------------------------------------------- scenes */

typedef struct {
  const char *name;
  double r, g, b;
} Colour;

/* The first N_COLOURS are the evaluated ones; the rest colour training
 * scenes only, so that every shape is seen in many colours and every colour
 * word with every shape. With the six alone the image encoder learnt colour
 * and shape bound together (a held-out pair's shape was read as one its
 * colour was trained with). UNNAMED is a random colour, away from every
 * evaluated one, that captions do not name. */
static const Colour colours[] = {
  { "red", 0.9, 0.1, 0.1 },
  { "green", 0.1, 0.8, 0.1 },
  { "blue", 0.1, 0.2, 0.95 },
  { "yellow", 0.95, 0.9, 0.1 },
  { "purple", 0.6, 0.1, 0.8 },
  { "cyan", 0.1, 0.85, 0.9 },
  { "orange", 1.0, 0.55, 0.05 },
  { "pink", 1.0, 0.55, 0.75 },
  { "brown", 0.5, 0.28, 0.1 },
  { "white", 0.97, 0.97, 0.97 },
  { "black", 0.05, 0.05, 0.05 },
  { "teal", 0.0, 0.5, 0.5 },
};
#define N_COLOURS 6
#define N_TRAIN_COLOURS G_N_ELEMENTS (colours)
#define UNNAMED 99
/* Percent of training groups in an UNNAMED colour. */
#define UNNAMED_PERCENT 40

typedef enum { CIRCLE, SQUARE, TRIANGLE, STAR, CROSS, N_SHAPES } ShapeKind;
static const char *shape_names[] = { "circle", "square", "triangle", "star",
  "cross" };
static const char *shape_plurals[] = { "circles", "squares", "triangles",
  "stars", "crosses" };

/* The colour x shape pairs held out of training: one per colour, every
 * shape at least once, so each colour and each shape is still learnt from
 * other pairs. */
static const int held_out[N_COLOURS] = { STAR, TRIANGLE, CROSS, CIRCLE, SQUARE,
  STAR };

static gboolean
is_held_out (int colour, int shape)
{
  return colour < (int) N_COLOURS && held_out[colour] == shape;
}

typedef enum { LEFT, RIGHT, TOP, BOTTOM, CENTER, N_POSITIONS } Position;
static const char *position_phrases[] = { "on the left", "on the right",
  "at the top", "at the bottom", "in the center" };
static const double position_xy[][2] = { { 0.27, 0.5 }, { 0.73, 0.5 },
  { 0.5, 0.27 }, { 0.5, 0.73 }, { 0.5, 0.5 } };

struct _SyntheticWorld {
  ClipConfig config;
  FrameBank train[N_PATTERNS], eval[N_PATTERNS];
};

/* Pulls `count` frames, one every FRAME_STRIDE buffers after `skip`
 * buffers, of a videotestsrc pattern at a size, preprocessed into out. */
static gboolean
render_pattern (const ClipConfig *config, const Pattern *p, FrameSize size,
    int skip, int count, float *out, GError **error)
{
  int buffers = skip + (count - 1) * FRAME_STRIDE + 1;
  g_autofree char *description = g_strdup_printf (
      "videotestsrc pattern=%s "
      "num-buffers=%d ! video/x-raw,format=RGB,width=%d,height=%d,"
      "framerate=30/1 ! appsink name=sink sync=false",
      p->pattern, buffers, size.width, size.height);
  GstElement *pipeline = gst_parse_launch (description, error);
  if (pipeline == NULL)
    return FALSE;
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  gsize image = 3 * (gsize) config->image_size * config->image_size;
  int kept = 0;
  gboolean ok = TRUE;
  for (int i = 0; i < buffers && ok; i++) {
    GstSample *sample = gst_app_sink_pull_sample (GST_APP_SINK (sink));
    if (sample == NULL)
      break;
    if (i >= skip && (i - skip) % FRAME_STRIDE == 0) {
      GstVideoInfo info;
      GstVideoFrame frame;
      ok = gst_video_info_from_caps (&info, gst_sample_get_caps (sample))
          && gst_video_frame_map (&frame, &info, gst_sample_get_buffer (sample),
              GST_MAP_READ);
      if (ok) {
        ClipFrame clip_frame = {
          .format = CLIP_PIXEL_RGB,
          .width = size.width,
          .height = size.height,
          .planes = { GST_VIDEO_FRAME_PLANE_DATA (&frame, 0) },
          .strides = { GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0) },
        };
        ok = clip_preprocess (&clip_frame, config, out + kept * image, error);
        gst_video_frame_unmap (&frame);
        kept++;
      }
    }
    gst_sample_unref (sample);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  if (ok && kept != count) {
    g_set_error (error, CLIP_ERROR, CLIP_ERROR_IO,
        "videotestsrc pattern=%s gave %d frames, expected %d", p->pattern, kept,
        count);
    ok = FALSE;
  }
  return ok;
}

static gboolean
render_bank (const ClipConfig *config, const Pattern *p, const FrameSize *sizes,
    int n_sizes, int skip, FrameBank *bank, GError **error)
{
  int per_size = p->animated ? ANIMATED_FRAMES : 1;
  gsize image = 3 * (gsize) config->image_size * config->image_size;
  bank->count = per_size * n_sizes;
  bank->tensors = g_new (float, bank->count * image);
  for (int s = 0; s < n_sizes; s++)
    if (!render_pattern (config, p, sizes[s], skip, per_size,
            bank->tensors + s * per_size * image, error))
      return FALSE;
  return TRUE;
}

SyntheticWorld *
synthetic_world_new (const ClipConfig *config, GError **error)
{
  gst_init (NULL, NULL);
  g_autoptr (SyntheticWorld) world = g_new0 (SyntheticWorld, 1);
  world->config = *config;
  /* Animated patterns: evaluation frames come after all training ones. */
  int eval_skip = ANIMATED_FRAMES * FRAME_STRIDE;
  for (guint i = 0; i < N_PATTERNS; i++)
    if (!render_bank (config, &patterns[i], train_sizes,
            G_N_ELEMENTS (train_sizes), 0, &world->train[i], error)
        || !render_bank (config, &patterns[i], eval_sizes,
            G_N_ELEMENTS (eval_sizes), eval_skip, &world->eval[i], error))
      return NULL;
  return g_steal_pointer (&world);
}

void
synthetic_world_free (SyntheticWorld *world)
{
  if (world == NULL)
    return;
  for (guint i = 0; i < N_PATTERNS; i++) {
    g_free (world->train[i].tensors);
    g_free (world->eval[i].tensors);
  }
  g_free (world);
}

/* ------------------------------------------------------------ drawing */

static void
path_shape (cairo_t *cr, ShapeKind kind, double x, double y, double r)
{
  switch (kind) {
    case CIRCLE:
      cairo_arc (cr, x, y, r, 0, 2 * G_PI);
      break;
    case SQUARE:
      cairo_rectangle (cr, x - 0.85 * r, y - 0.85 * r, 1.7 * r, 1.7 * r);
      break;
    case TRIANGLE:
      cairo_move_to (cr, x, y - r);
      cairo_line_to (cr, x + 0.95 * r, y + 0.7 * r);
      cairo_line_to (cr, x - 0.95 * r, y + 0.7 * r);
      cairo_close_path (cr);
      break;
    case STAR:
      for (int i = 0; i < 10; i++) {
        double a = -G_PI / 2 + i * G_PI / 5, len = i % 2 ? 0.45 * r : 1.1 * r;
        if (i == 0)
          cairo_move_to (cr, x + len * cos (a), y + len * sin (a));
        else
          cairo_line_to (cr, x + len * cos (a), y + len * sin (a));
      }
      cairo_close_path (cr);
      break;
    case CROSS:
      cairo_rectangle (cr, x - r, y - 0.3 * r, 2 * r, 0.6 * r);
      cairo_rectangle (cr, x - 0.3 * r, y - r, 0.6 * r, 2 * r);
      break;
    default:
      g_assert_not_reached ();
  }
}

static double
jitter (GRand *rand, double amount)
{
  return g_rand_double_range (rand, -amount, amount);
}

/* Grey levels only, so that a shape's colour is never the background's. */
static void
draw_background (cairo_t *cr, GRand *rand, int size, gboolean striped)
{
  double level = g_rand_double_range (rand, 0.3, 0.7);
  cairo_set_source_rgb (cr, level, level, level);
  cairo_paint (cr);
  if (!striped)
    return;
  double other = level > 0.5 ? level - 0.3 : level + 0.3;
  double width = size * g_rand_double_range (rand, 0.05, 0.1);
  int direction = g_rand_int_range (rand, 0, 3); /* |, -, / */
  cairo_save (cr);
  cairo_translate (cr, size / 2.0, size / 2.0);
  cairo_rotate (cr, direction == 0 ? 0 : direction == 1 ? G_PI / 2 : G_PI / 4);
  cairo_set_source_rgb (cr, other, other, other);
  for (double x = -size; x < size; x += 2 * width)
    cairo_rectangle (cr, x, -size, width, 2 * size);
  cairo_fill (cr);
  cairo_restore (cr);
}

typedef struct {
  int colour, shape, count, position;
  gboolean large, striped;
} Scene;

/* An UNNAMED scene's colour: a random hue, saturation and value, at least
 * 0.35 (RGB distance) from every evaluated colour, so that no held-out
 * colour x shape pair is drawn even unnamed. */
static void
random_colour (GRand *rand, double rgb[3])
{
  gboolean near;
  do {
    double h = g_rand_double_range (rand, 0, 6);
    double sat = g_rand_double_range (rand, 0.4, 1);
    double val = g_rand_double_range (rand, 0.5, 1);
    int i = (int) h;
    double f = h - i, p = val * (1 - sat), q = val * (1 - sat * f),
           t = val * (1 - sat * (1 - f));
    const double sextants[6][3] = { { val, t, p }, { q, val, p }, { p, val, t },
      { p, q, val }, { t, p, val }, { val, p, q } };
    memcpy (rgb, sextants[MIN (i, 5)], 3 * sizeof (double));
    near = FALSE;
    for (guint k = 0; k < N_COLOURS; k++) {
      double dr = rgb[0] - colours[k].r, dg = rgb[1] - colours[k].g,
             db = rgb[2] - colours[k].b;
      near |= dr * dr + dg * dg + db * db < 0.35 * 0.35;
    }
  } while (near);
}

static void
draw_scene (const Scene *s, GRand *rand, int size, guint8 *bgra, int stride)
{
  cairo_surface_t *surface = cairo_image_surface_create_for_data (bgra,
      CAIRO_FORMAT_RGB24, size, size, stride);
  cairo_t *cr = cairo_create (surface);
  draw_background (cr, rand, size, s->striped);
  if (s->colour == UNNAMED) {
    double rgb[3];
    random_colour (rand, rgb);
    cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
  } else {
    const Colour *c = &colours[s->colour];
    cairo_set_source_rgb (cr, CLAMP (c->r + jitter (rand, 0.08), 0, 1),
        CLAMP (c->g + jitter (rand, 0.08), 0, 1),
        CLAMP (c->b + jitter (rand, 0.08), 0, 1));
  }
  double r = size * (s->large ? 0.26 : 0.16) * (1 + jitter (rand, 0.1));
  if (s->count == 1) {
    const double *xy = position_xy[s->position];
    path_shape (cr, s->shape, size * (xy[0] + jitter (rand, 0.04)),
        size * (xy[1] + jitter (rand, 0.04)), r);
  } else {
    /* Several shapes: spread along a random row, column or diagonal. */
    double angle = g_rand_double_range (rand, 0, G_PI);
    double spread = size * 0.3;
    for (int i = 0; i < s->count; i++) {
      double t = s->count == 2 ? (i ? 0.7 : -0.7) : i - 1.0;
      path_shape (cr, s->shape, size / 2.0 + t * spread * cos (angle),
          size / 2.0 + t * spread * sin (angle), r);
    }
  }
  cairo_fill (cr);
  cairo_destroy (cr);
  cairo_surface_destroy (surface);
}

/* Caption phrasings, so that short prompts ("a red star", clipclassify's
 * default "a photo of a red star.") and long ones all mean something to the
 * text encoder. Two name one attribute alone: colour and shape must be told
 * apart separately, which is what lets unseen pairs be recognised. */
typedef enum {
  FORM_FULL,          /* a small red circle on the left of a plain background */
  FORM_NO_BACKGROUND, /* a small red circle on the left */
  FORM_NO_PLACE,      /* a red circle on a plain background */
  FORM_SHORT,         /* a red circle */
  FORM_PHOTO,         /* a photo of a red circle. */
  FORM_COLOUR_ONLY,   /* a red shape on the left */
  FORM_SHAPE_ONLY,    /* a small circle on the left of a plain background */
} CaptionForm;

static char *
scene_caption (const Scene *s, CaptionForm form)
{
  /* The colour word and its space; none for an UNNAMED colour. */
  g_autofree char *colour = s->colour == UNNAMED
      ? g_strdup ("")
      : g_strdup_printf ("%s ", colours[s->colour].name);
  const char *size = s->large ? "large" : "small";
  const char *background = s->striped ? "striped" : "plain";
  if (s->count > 1) {
    const char *count = s->count == 2 ? "two" : "three";
    const char *shapes = shape_plurals[s->shape];
    return form <= FORM_NO_PLACE
        ? g_strdup_printf ("%s %s %s%s on a %s background", count, size, colour,
            shapes, background)
        : g_strdup_printf ("%s %s%s", count, colour, shapes);
  }
  const char *shape = shape_names[s->shape];
  const char *where = position_phrases[s->position];
  switch (form) {
    case FORM_FULL:
      return g_strdup_printf ("a %s %s%s %s of a %s background", size, colour,
          shape, where, background);
    case FORM_NO_BACKGROUND:
      return g_strdup_printf ("a %s %s%s %s", size, colour, shape, where);
    case FORM_NO_PLACE:
      return g_strdup_printf ("a %s%s on a %s background", colour, shape,
          background);
    case FORM_SHORT:
      return g_strdup_printf ("a %s%s", colour, shape);
    case FORM_PHOTO:
      return g_strdup_printf ("a photo of a %s%s.", colour, shape);
    case FORM_COLOUR_ONLY:
      return g_strdup_printf ("a %sshape %s", colour, where);
    case FORM_SHAPE_ONLY:
    default:
      return g_strdup_printf ("a %s %s %s of a %s background", size, shape,
          where, background);
  }
}

/* Draws a scene and preprocesses it into tensor. */
static void
render_scene (SyntheticWorld *world, const Scene *s, GRand *rand, float *tensor)
{
  int size = world->config.image_size;
  int stride = cairo_format_stride_for_width (CAIRO_FORMAT_RGB24, size);
  g_autofree guint8 *bgra = g_new0 (guint8, (gsize) stride * size);
  draw_scene (s, rand, size, bgra, stride);
  ClipFrame frame = {
    .format = CLIP_PIXEL_BGRA, /* cairo's RGB24 is B, G, R, x in memory */
    .width = size,
    .height = size,
    .planes = { bgra },
    .strides = { stride },
  };
  /* A valid frame of the model's own size: preprocessing cannot fail. */
  g_assert_true (clip_preprocess (&frame, &world->config, tensor, NULL));
}

static void
random_scene (Scene *s, GRand *rand, gboolean unseen)
{
  do {
    s->colour = g_rand_int_range (rand, 0, N_COLOURS);
    s->shape = g_rand_int_range (rand, 0, N_SHAPES);
  } while (is_held_out (s->colour, s->shape) != unseen);
  s->count = unseen || g_rand_int_range (rand, 0, 100) < 70
      ? 1
      : g_rand_int_range (rand, 2, 4);
  s->position = g_rand_int_range (rand, 0, N_POSITIONS);
  s->large = g_rand_boolean (rand);
  s->striped = g_rand_boolean (rand);
}

/* A training scene: any training colour, any pair but the held-out ones. */
static void
train_random_scene (Scene *s, GRand *rand)
{
  do {
    s->colour = g_rand_int_range (rand, 0, N_TRAIN_COLOURS);
    s->shape = g_rand_int_range (rand, 0, N_SHAPES);
  } while (is_held_out (s->colour, s->shape));
  s->count = g_rand_int_range (rand, 0, 100) < 70
      ? 1
      : g_rand_int_range (rand, 2, 4);
  s->position = g_rand_int_range (rand, 0, N_POSITIONS);
  s->large = g_rand_boolean (rand);
  s->striped = g_rand_boolean (rand);
}

/* Scenes come in groups that differ in one attribute only (shape, colour
 * or position): in-batch negatives that differ in just that attribute are
 * what forces the model to see it. Random scenes rarely share all their
 * other attributes, so without groups the easy colour and position would
 * be learnt and the shape barely at all. */
#define GROUP_SIZE 4
typedef enum { VARY_SHAPE, VARY_COLOUR, VARY_POSITION } Varied;

/* Forms that name the varied attribute, so that a group's captions differ. */
static const CaptionForm forms_naming[][6] = {
  [VARY_SHAPE] = { FORM_FULL, FORM_NO_BACKGROUND, FORM_NO_PLACE, FORM_SHORT,
      FORM_PHOTO, FORM_SHAPE_ONLY },
  [VARY_COLOUR] = { FORM_FULL, FORM_NO_BACKGROUND, FORM_NO_PLACE, FORM_SHORT,
      FORM_PHOTO, FORM_COLOUR_ONLY },
  [VARY_POSITION] = { FORM_FULL, FORM_NO_BACKGROUND, FORM_COLOUR_ONLY,
      FORM_SHAPE_ONLY, FORM_FULL, FORM_NO_BACKGROUND },
};

static void
shuffle (int *values, int n, GRand *rand)
{
  for (int i = n - 1; i > 0; i--) {
    int j = g_rand_int_range (rand, 0, i + 1);
    int swap = values[i];
    values[i] = values[j];
    values[j] = swap;
  }
}

/* The scenes of one group (up to GROUP_SIZE), all of seen pairs, and the
 * caption form they share. */
static int
scene_group (Scene *group, CaptionForm *form, GRand *rand)
{
  Scene base;
  train_random_scene (&base, rand);
  /* Mostly shape: the attribute that is hardest to learn. */
  int choice = g_rand_int_range (rand, 0, 5);
  Varied varied = choice < 3 ? VARY_SHAPE
      : choice == 3          ? VARY_COLOUR
                             : VARY_POSITION;
  /* Each scene of an UNNAMED group draws its own colour: shape is all that
   * the captions can tell apart. */
  if (g_rand_int_range (rand, 0, 100) < UNNAMED_PERCENT) {
    base.colour = UNNAMED;
    if (varied == VARY_COLOUR)
      varied = VARY_SHAPE;
  }
  if (base.count > 1 && varied == VARY_POSITION)
    varied = VARY_SHAPE; /* several shapes have no position in the caption */
  *form = forms_naming[varied][g_rand_int_range (rand, 0, 6)];

  /* Colours are the most numerous of the varied attributes. */
  G_STATIC_ASSERT (N_TRAIN_COLOURS >= (gsize) N_SHAPES
      && N_TRAIN_COLOURS >= (gsize) N_POSITIONS);
  int values[N_TRAIN_COLOURS], n = 0;
  if (varied == VARY_SHAPE) {
    for (int v = 0; v < N_SHAPES; v++)
      if (!is_held_out (base.colour, v))
        values[n++] = v;
  } else if (varied == VARY_COLOUR) {
    for (guint v = 0; v < N_TRAIN_COLOURS; v++)
      if (!is_held_out (v, base.shape))
        values[n++] = v;
  } else {
    for (int v = 0; v < N_POSITIONS; v++)
      values[n++] = v;
  }
  shuffle (values, n, rand);
  n = MIN (n, GROUP_SIZE);
  for (int k = 0; k < n; k++) {
    group[k] = base;
    if (varied == VARY_SHAPE)
      group[k].shape = values[k];
    else if (varied == VARY_COLOUR)
      group[k].colour = values[k];
    else
      group[k].position = values[k];
  }
  return n;
}

/* One generator per (seed, purpose, index): any frame can be made alone. */
static GRand *
rand_for (guint32 seed, guint32 purpose, guint64 index, guint32 slot)
{
  guint32 key[] = { seed, purpose, (guint32) index, (guint32) (index >> 32),
    slot };
  return g_rand_new_with_seed_array (key, G_N_ELEMENTS (key));
}

enum { PURPOSE_TRAIN = 1, PURPOSE_EVAL_PATTERNS, PURPOSE_EVAL_UNSEEN };

void
synthetic_train_batch (SyntheticWorld *world, guint32 seed, guint64 step, int n,
    float *pixels, char ***captions)
{
  gsize image = 3 * (gsize) world->config.image_size * world->config.image_size;
  GRand *batch_rand = rand_for (seed, PURPOSE_TRAIN, step, G_MAXUINT32);
  /* Patterns without replacement: a partial Fisher-Yates shuffle. */
  int order[N_PATTERNS];
  for (guint i = 0; i < N_PATTERNS; i++)
    order[i] = i;
  int n_patterns = MIN (n / 4, (int) N_PATTERNS);
  for (int i = 0; i < n_patterns; i++) {
    int j = g_rand_int_range (batch_rand, i, N_PATTERNS);
    int swap = order[i];
    order[i] = order[j];
    order[j] = swap;
  }
  g_rand_free (batch_rand);

  char **out = g_new0 (char *, n + 1);
  Scene group[GROUP_SIZE];
  int group_size = 0, member = 0;
  CaptionForm form = FORM_FULL;
  for (int i = 0; i < n; i++) {
    GRand *rand = rand_for (seed, PURPOSE_TRAIN, step, i);
    float *tensor = pixels + i * image;
    if (i < n_patterns) {
      const Pattern *p = &patterns[order[i]];
      const FrameBank *bank = &world->train[order[i]];
      int frame = g_rand_int_range (rand, 0, bank->count);
      memcpy (tensor, bank->tensors + frame * image, image * sizeof (float));
      const char *d = p->description;
      switch (g_rand_int_range (rand, 0, 4)) {
        case 0:
          out[i] = g_strdup (d);
          break;
        case 1:
          out[i] = g_strdup_printf ("a photo of a %s.", d);
          break;
        case 2:
          out[i] = g_strdup_printf ("a video of a %s", d);
          break;
        default:
          out[i] = g_strdup_printf ("a test pattern showing %s", d);
          break;
      }
    } else {
      if (member == group_size) {
        /* The group's generator is the one of its first scene. */
        group_size = scene_group (group, &form, rand);
        member = 0;
      }
      render_scene (world, &group[member], rand, tensor);
      out[i] = scene_caption (&group[member], form);
      member++;
    }
    g_rand_free (rand);
  }
  *captions = out;
}

static SyntheticEvalSet *
eval_set_new (const ClipConfig *config, int n)
{
  SyntheticEvalSet *set = g_new0 (SyntheticEvalSet, 1);
  set->n = n;
  set->pixels = g_new (float, (gsize) n * 3 * config->image_size
      * config->image_size);
  set->truth = g_new (int, n);
  return set;
}

SyntheticEvalSet *
synthetic_eval_patterns (SyntheticWorld *world, guint32 seed, int per_pattern)
{
  gsize image = 3 * (gsize) world->config.image_size * world->config.image_size;
  SyntheticEvalSet *set = eval_set_new (&world->config,
      per_pattern * N_PATTERNS);
  set->labels = g_new0 (char *, N_PATTERNS + 1);
  for (guint p = 0; p < N_PATTERNS; p++) {
    set->labels[p] = g_strdup (patterns[p].description);
    const FrameBank *bank = &world->eval[p];
    for (int k = 0; k < per_pattern; k++) {
      int i = p * per_pattern + k;
      /* Every frame of the bank in turn, from a seeded start. */
      GRand *rand = rand_for (seed, PURPOSE_EVAL_PATTERNS, p, 0);
      int frame = (g_rand_int_range (rand, 0, bank->count) + k) % bank->count;
      g_rand_free (rand);
      memcpy (set->pixels + i * image, bank->tensors + frame * image,
          image * sizeof (float));
      set->truth[i] = p;
    }
  }
  return set;
}

SyntheticEvalSet *
synthetic_eval_unseen (SyntheticWorld *world, guint32 seed, int n)
{
  gsize image = 3 * (gsize) world->config.image_size * world->config.image_size;
  SyntheticEvalSet *set = eval_set_new (&world->config, n);
  set->labels = g_new0 (char *, N_COLOURS * N_SHAPES + 1);
  for (guint c = 0; c < N_COLOURS; c++)
    for (int s = 0; s < N_SHAPES; s++)
      set->labels[c * N_SHAPES + s] = g_strdup_printf ("%s %s", colours[c].name,
          shape_names[s]);
  for (int i = 0; i < n; i++) {
    GRand *rand = rand_for (seed, PURPOSE_EVAL_UNSEEN, i, 0);
    Scene scene;
    random_scene (&scene, rand, TRUE);
    render_scene (world, &scene, rand, set->pixels + i * image);
    set->truth[i] = scene.colour * N_SHAPES + scene.shape;
    g_rand_free (rand);
  }
  return set;
}

void
synthetic_eval_set_free (SyntheticEvalSet *set)
{
  if (set == NULL)
    return;
  g_free (set->pixels);
  g_free (set->truth);
  g_strfreev (set->labels);
  g_free (set);
}
