/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gst-clip: the command-line tool. This file only dispatches to the
 * subcommands (cmd-*.c); each parses its own options. */
#include "commands.h"

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const ToolCommand commands[] = {
  { "tokenize", "print the token ids of texts", tool_cmd_tokenize },
  { "embed", "print image and text embeddings", tool_cmd_embed },
  { "classify", "score images against labels (JSON Lines)", tool_cmd_classify },
  { "random-model", "write a random-weight model of a real architecture",
      tool_cmd_random_model },
  { "bench", "measure the encoders' speed", tool_cmd_bench },
  { "train", "train a CLIP by contrastive pre-training", tool_cmd_train },
  { "eval", "zero-shot accuracy on the synthetic world", tool_cmd_eval },
  { "annotate", "label a video file, segments as WebVTT, SRT or JSON Lines",
      tool_cmd_annotate },
  { "index", "store video frames' embeddings in a SQLite database",
      tool_cmd_index },
  { "search", "find moments in indexed videos by text or example image",
      tool_cmd_search },
  { "pull", "download a CLIP model from the HuggingFace hub", tool_cmd_pull },
  { "models", "list the hub cache's models gst-clip can use", tool_cmd_models },
};

static void
print_overview (FILE *out)
{
  fprintf (out,
      "Usage: gst-clip COMMAND [OPTION...]\n"
      "\n"
      "Runs OpenAI CLIP models (HuggingFace or OpenCLIP folders) on images and text.\n"
      "\n"
      "Commands:\n");
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-14s %s\n", commands[i].name, commands[i].summary);
  fprintf (out,
      "\n"
      "Run 'gst-clip COMMAND --help' for a command's options.\n"
      "Errors go to stderr as 'gst-clip: <message>'; the exit status is 0 on\n"
      "success, 1 on an error and 2 on a bad command line; annotate and index\n"
      "exit 3 when a video ended before its stated duration and 130 when\n"
      "interrupted.\n");
}

/* Output on stdout is buffered: a full disk or a closed pipe may show only
 * when the last of it is flushed. A command that succeeded but whose
 * output was lost has failed. Called when the command returns, before
 * other libraries' exit handlers can flush (and lose the reason), and at
 * exit for GOption's --help, which exits by itself (as gnulib's
 * close_stdout). */
static void
close_stdout (void)
{
  static gboolean closed;
  if (closed)
    return;
  closed = TRUE;
  gboolean failed = ferror (stdout) != 0;
  errno = 0;
  if (fflush (stdout) != 0)
    failed = TRUE;
  int saved = errno;
  if (fclose (stdout) != 0 && !failed) {
    failed = TRUE;
    saved = errno;
  }
  if (!failed)
    return;
  fprintf (stderr, "gst-clip: cannot write to standard output: %s\n",
      saved != 0 ? g_strerror (saved) : "write error");
  _exit (TOOL_EXIT_FAILURE);
}

static const ToolCommand *
find_command (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static int
run (int argc, char **argv)
{
  /* Character set only: numbers must print with a '.' whatever the locale. */
  setlocale (LC_CTYPE, "");

  if (argc < 2) {
    fprintf (stderr, "gst-clip: no COMMAND given\n\n");
    print_overview (stderr);
    return TOOL_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp (name, "--help") == 0 || strcmp (name, "-h") == 0) {
    print_overview (stdout);
    return TOOL_EXIT_OK;
  }
  if (strcmp (name, "--version") == 0) {
    printf ("gst-clip %s\n", GST_CLIP_VERSION);
    return TOOL_EXIT_OK;
  }

  /* "gst-clip help NAME" is "gst-clip NAME --help". */
  gboolean help = strcmp (name, "help") == 0;
  if (help) {
    if (argc < 3) {
      print_overview (stdout);
      return TOOL_EXIT_OK;
    }
    name = argv[2];
  }

  const ToolCommand *command = find_command (name);
  if (command == NULL) {
    fprintf (stderr, "gst-clip: unknown command '%s'\n\n", name);
    print_overview (stderr);
    return TOOL_EXIT_USAGE;
  }

  g_autofree char *program = g_strdup_printf ("gst-clip %s", command->name);
  char *help_argv[] = { program, (char *) "--help", NULL };
  if (help)
    return command->run (2, help_argv);

  /* The command sees its own name as argv[0] and the rest unchanged. */
  argv[1] = program;
  return command->run (argc - 1, argv + 1);
}

int
main (int argc, char **argv)
{
  atexit (close_stdout);
  int status = run (argc, argv);
  close_stdout ();
  return status;
}
