/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gst-clip subcommands and the helpers they share.
 *
 * A command gets the arguments after its name, with argv[0] set to
 * "gst-clip NAME" so that GOption's --help names it, and returns the exit
 * status: TOOL_EXIT_OK, TOOL_EXIT_FAILURE (an error, "gst-clip: <message>"
 * on stderr), TOOL_EXIT_USAGE (bad command line), TOOL_EXIT_TRUNCATED (done,
 * but a video ended before the duration its file states: the output covers
 * the part read, and a warning says where it ended) or
 * TOOL_EXIT_INTERRUPTED (stopped by Ctrl-C before the end, as a shell
 * reports a SIGINT). */
#pragma once

#include "clip.h"
#include "safetensors.h"

#define TOOL_EXIT_OK 0
#define TOOL_EXIT_FAILURE 1
#define TOOL_EXIT_USAGE 2
#define TOOL_EXIT_TRUNCATED 3
#define TOOL_EXIT_INTERRUPTED 130

typedef struct {
  const char *name;
  const char *summary;
  int (*run) (int argc, char **argv);
} ToolCommand;

int tool_cmd_tokenize (int argc, char **argv);
int tool_cmd_embed (int argc, char **argv);
int tool_cmd_classify (int argc, char **argv);
int tool_cmd_random_model (int argc, char **argv);
int tool_cmd_bench (int argc, char **argv);
int tool_cmd_train (int argc, char **argv);
int tool_cmd_eval (int argc, char **argv);
int tool_cmd_annotate (int argc, char **argv);
int tool_cmd_index (int argc, char **argv);
int tool_cmd_search (int argc, char **argv);
int tool_cmd_pull (int argc, char **argv);
int tool_cmd_models (int argc, char **argv);

/* ------------------------------------------------------- shared helpers */

/* Upper bounds of the sizes given on the command line, so that a typo gets
 * a message instead of an attempt to allocate many gigabytes. A batch of
 * 1024 ViT-L/14@336 images is 1.4 GB of pixels alone. */
#define TOOL_MAX_BATCH 1024
#define TOOL_MAX_THREADS 1024
#define TOOL_MAX_ITERATIONS 1000000
#define TOOL_MAX_TOP 100000
/* Labels of one classify run, negative ones included: each is embedded
 * and scored against every image. */
#define TOOL_MAX_LABELS 100000

/* FALSE, with a usage error naming option and the range in *status, unless
 * min <= value <= max. */
gboolean tool_check_range (const char *command, const char *option,
    gint64 value, gint64 min, gint64 max, int *status);
/* tool_check_range for a floating-point option (NaN is outside). */
gboolean tool_check_double_range (const char *command, const char *option,
    double value, double min, double max, int *status);

/* g_try_malloc for n elements of size bytes: NULL with an error that says
 * what could not be allocated (what: e.g. "the images of a batch") instead
 * of an abort. */
gpointer tool_try_alloc (gsize n, gsize size, const char *what, GError **error);

/* The options every model-using command has. Strings are raw command-line
 * bytes (G_OPTION_ARG_FILENAME): the runtime checks UTF-8 where it matters. */
typedef struct {
  char *model_dir;
  char *vocab_dir;
  char *backend;
  int threads;
  char *device;    /* Vulkan device: index or name substring */
  gboolean f32;    /* Vulkan: F32 weights even where F16 storage exists */
  char *precision; /* CPU: f32 or bf16 */
} ToolModelOptions;

/* Adds --model and --vocab, and with with_backend also --backend,
 * --threads, --device, --f32 and --precision, to ctx's main group. */
void tool_add_model_options (GOptionContext *ctx, ToolModelOptions *opts,
    gboolean with_backend);
/* A subcommand's option context: its parameter string and --help texts
 * (description may be NULL), its own entries (or NULL), then the model
 * options (when model_opts is not NULL) as tool_add_model_options adds
 * them. */
GOptionContext *tool_option_context_new (const char *parameters,
    const char *summary, const char *description, const GOptionEntry *entries,
    ToolModelOptions *model_opts, gboolean with_backend);
void tool_model_options_clear (ToolModelOptions *opts);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ToolModelOptions, tool_model_options_clear)

/* Parses argv; on failure prints the problem and returns FALSE with the
 * exit status to use in *status. */
gboolean tool_parse (GOptionContext *ctx, int *argc, char ***argv, int *status);

/* tool_parse for a command that takes options only: an argument left in
 * argv is a usage error too. */
gboolean tool_parse_options_only (const char *command, GOptionContext *ctx,
    int *argc, char ***argv, int *status);

/* Prints "gst-clip: <message>" and a hint to run `gst-clip NAME --help`;
 * returns TOOL_EXIT_USAGE. */
int tool_usage_error (const char *command, const char *format, ...)
    G_GNUC_PRINTF (2, 3);

/* Prints "gst-clip: <error message>", frees the error and returns
 * TOOL_EXIT_FAILURE. */
int tool_fail (GError *error);

/* --dtype's value: f32 (also when name is NULL) or f16. FALSE with
 * *status set for anything else. */
gboolean tool_parse_dtype (const char *command, const char *name,
    ClipDType *dtype, int *status);

/* Loads --model (or the installed default model when --model is absent).
 * NULL with *status set when that fails. */
ClipModel *tool_load_model (const char *command, const ToolModelOptions *opts,
    int *status);

/* Opens an encoder as --backend and --threads say. */
ClipEncoder *tool_open_encoder (const char *command, ClipModel *model,
    const ToolModelOptions *opts, gboolean profile, int *status);

/* Decodes an image file and preprocesses it for the model into tensor_out
 * (3 x image_size x image_size floats). */
gboolean tool_load_image_tensor (const char *path, const ClipConfig *config,
    float *tensor_out, GError **error);

/* Warns on stderr, once per label, about the labels of set whose prompts
 * the model's context cut. */
void tool_warn_truncated_labels (const ClipLabelSet *set,
    const ClipModel *model);
