/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gst-clip runtime: the one public header.
 *
 * Load a CLIP model folder (HuggingFace or OpenCLIP layout), tokenize prompts
 * as OpenAI's tokenizer does, preprocess frames as CLIP does, run the image
 * and text encoders on a backend, score images against a set of labels.
 *
 * Errors are GError in the CLIP_ERROR domain. Objects are not thread-safe
 * unless said otherwise: use one ClipEncoder from one thread at a time.
 * ClipModel and ClipLabelSet are immutable once made and may be shared.
 */
#pragma once

#include <glib.h>

/* Marks what libclip-runtime exports: the library is built with hidden
 * visibility and CLIP_COMPILATION defined; users see a plain declaration. */
#if defined(CLIP_COMPILATION) && defined(__GNUC__)
#define CLIP_API __attribute__ ((visibility ("default")))
#else
#define CLIP_API
#endif

G_BEGIN_DECLS

/* ------------------------------------------------------------------ errors */

#define CLIP_ERROR (clip_error_quark ())
CLIP_API
GQuark clip_error_quark (void);

typedef enum {
  CLIP_ERROR_IO,     /* a file is missing or cannot be read */
  CLIP_ERROR_FORMAT, /* a file is malformed (safetensors, JSON, vocab, image) */
  CLIP_ERROR_CONFIG, /* sizes that are zero, negative or inconsistent */
  CLIP_ERROR_UNSUPPORTED, /* valid but not supported: ResNet towers, unknown dtype */
  CLIP_ERROR_INVALID, /* bad argument: invalid UTF-8, empty label list, bad frame */
  CLIP_ERROR_BACKEND,    /* the backend failed or is not available */
  CLIP_ERROR_NOT_FINITE, /* an embedding or score came out NaN or infinite:
                          * the model's weights are broken */
} ClipErrorCode;

/* ------------------------------------------------------------------ config */

typedef enum {
  CLIP_ACTIVATION_QUICK_GELU, /* x * sigmoid(1.702 x), OpenAI's models */
  CLIP_ACTIVATION_GELU,       /* exact erf GELU, most OpenCLIP/LAION models */
} ClipActivation;

typedef struct {
  int width; /* hidden size */
  int layers;
  int heads;     /* head_dim = width / heads */
  int mlp_width; /* intermediate size, usually 4 * width */
  float eps;     /* LayerNorm epsilon */
  ClipActivation activation;
} ClipTowerConfig;

typedef struct {
  ClipTowerConfig vision;
  ClipTowerConfig text;
  int embed_dim;       /* projection dimension shared by both towers */
  int image_size;      /* square input side, e.g. 224 */
  int patch_size;      /* e.g. 32: (image_size / patch_size)^2 patches */
  int context_length;  /* e.g. 77 */
  int vocab_size;      /* e.g. 49408 */
  float image_mean[3]; /* per RGB channel, for 0..1 pixel values */
  float image_std[3];
} ClipConfig;

/* Number of vision positions: patches plus the class token. */
static inline int
clip_config_vision_tokens (const ClipConfig *c)
{
  int g = c->image_size / c->patch_size;
  return g * g + 1;
}

/* Checks every size for sanity and consistency; names the first problem. */
CLIP_API
gboolean clip_config_validate (const ClipConfig *config, GError **error);

/* --------------------------------------------------------------- tokenizer */

#define CLIP_TOKEN_START 49406 /* <|startoftext|> */
#define CLIP_TOKEN_END 49407   /* <|endoftext|> */

typedef struct _ClipTokenizer ClipTokenizer;

/* Loads vocab.json + merges.txt, or bpe_simple_vocab_16e6.txt.gz, from a folder
 * (the first pair when both forms are there). Fails with CLIP_ERROR_IO when
 * the folder or its files are missing, CLIP_ERROR_FORMAT (naming the file
 * and line) when they are malformed. */
CLIP_API
ClipTokenizer *clip_tokenizer_new_from_dir (const char *dir, GError **error);
CLIP_API
void clip_tokenizer_free (ClipTokenizer *tok);

/* clip.tokenize(text, context_length, truncate=True): start token, BPE ids,
 * end token, zero padding; when too long, the first context_length ids are
 * kept and the last becomes the end token. Fails on invalid UTF-8. Same ids
 * as OpenAI's simple_tokenizer.py except for its ftfy.fix_text step (mojibake
 * repair), which is not reproduced. Thread-safe. */
CLIP_API
gboolean clip_tokenizer_encode (const ClipTokenizer *tok, const char *text,
    int context_length, gint32 *ids, GError **error);

/* ------------------------------------------------------------------- model */

typedef struct _ClipModel ClipModel;

/* Loads a model folder; the layout (HF or OpenCLIP/OpenAI) is detected from
 * its files and tensor names. dir and vocab_dir may also be HuggingFace hub
 * names, resolved as clip_model_resolve does. vocab_dir may be NULL: the
 * vocabulary is then taken from the model folder, and a folder without one
 * is an error. Loads are shared: while a model of the same folder and
 * vocabulary (links resolved, weights file unchanged) is loaded in this
 * process, this returns a new reference to it, and its encoders share the
 * CPU backend's packed weights. Thread-safe. */
CLIP_API
ClipModel *clip_model_load (const char *dir, const char *vocab_dir,
    GError **error);
CLIP_API
ClipModel *clip_model_ref (ClipModel *model);
CLIP_API
void clip_model_unref (ClipModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClipModel, clip_model_unref)

CLIP_API
const ClipConfig *clip_model_get_config (const ClipModel *model);
/* The folder's base name, e.g. "clip-vit-base-patch32"; for a model loaded
 * by hub name, the repository's name part (not the snapshot's commit). */
CLIP_API
const char *clip_model_get_name (const ClipModel *model);
CLIP_API
const char *clip_model_get_dir (const ClipModel *model);
/* What the model computes, for telling models apart whatever their folders
 * are called: "sha256:HEX-DIM", the SHA-256 of its config files and of its
 * weights file's header and data (all of it up to 256 KiB, else 64 blocks
 * of 4 KiB spread over it), and the embedding size. Two loads of one
 * folder give the same string; a retrained or resized model another. */
CLIP_API
const char *clip_model_get_fingerprint (const ClipModel *model);
CLIP_API
const ClipTokenizer *clip_model_get_tokenizer (const ClipModel *model);
/* exp(logit_scale), the temperature the model was trained with. */
CLIP_API
float clip_model_get_logit_scale (const ClipModel *model);

/* The HuggingFace hub cache folder, as huggingface_hub finds it:
 * $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
 * else ~/.cache/huggingface/hub. It need not exist. Free with g_free. */
CLIP_API
char *clip_hub_cache_dir (void);

/* The folder a model argument names: an existing path as given; else a hub
 * name, "org/name", "org/name@revision" or "hf-hub:org/name[@revision]",
 * as its snapshot folder in the hub cache (the revision, "main" by default,
 * through refs/, or a 40-digit commit directly); else the argument as given.
 * Fails with CLIP_ERROR_IO, naming where it looked and the `gst-clip pull`
 * that would fetch it, for a hub name that is not in the cache. Never uses
 * the network. Free with g_free. */
CLIP_API
char *clip_model_resolve (const char *model, GError **error);

/* The shipped default model's folder: $GST_CLIP_DEFAULT_MODEL when set, else
 * the installed one (datadir/gst-clip/models/default). When that folder does
 * not exist, NULL and CLIP_ERROR_IO with a message naming where it looked
 * and the variable. Free with g_free. */
CLIP_API
char *clip_default_model_dir (GError **error);

/* -------------------------------------------------------------- preprocess */

typedef enum {
  CLIP_PIXEL_RGB,  /* packed 24-bit */
  CLIP_PIXEL_RGBA, /* packed 32-bit, 4th byte ignored (also RGBx) */
  CLIP_PIXEL_BGRA, /* packed 32-bit, 4th byte ignored (also BGRx) */
  CLIP_PIXEL_I420, /* planar Y, U, V, chroma halved both ways */
  CLIP_PIXEL_NV12, /* planar Y, interleaved UV, chroma halved both ways */
} ClipPixelFormat;

typedef enum {
  CLIP_YUV_BT601,
  CLIP_YUV_BT709,
  CLIP_YUV_BT2020,
} ClipYuvMatrix;

typedef struct {
  ClipPixelFormat format;
  int width, height;
  const guint8 *planes[3]; /* packed formats use planes[0] only */
  int strides[3];          /* bytes per row of each plane */
  ClipYuvMatrix matrix;    /* YUV formats only */
  gboolean full_range;     /* YUV formats only: 0..255 instead of 16..235 */
} ClipFrame;

/* Resize (shorter side to size, Pillow-exact bicubic, antialiased when
 * shrinking) and center crop (torchvision's rounding) to size x size RGB
 * bytes, HWC. YUV frames are converted to 8-bit RGB first, with the frame's
 * matrix and range, each value rounded and clamped; chroma is upsampled by
 * nearest neighbour (chroma sample (x/2, y/2) serves its 2x2 luma block,
 * whatever the siting). Only the cropped region is computed. Thread-safe.
 * Fails with CLIP_ERROR_INVALID on a bad frame: a side < 1 or > 2^20, a NULL
 * plane, a stride shorter than a row, or size outside 1..8192. */
CLIP_API
gboolean clip_resize_crop (const ClipFrame *frame, int size, guint8 *rgb_out,
    GError **error);

/* The whole CLIP preprocessing: resize, crop, then (u8/255 - mean) / std into
 * a float CHW tensor of 3 x image_size x image_size. */
CLIP_API
gboolean clip_preprocess (const ClipFrame *frame, const ClipConfig *config,
    float *tensor_out, GError **error);

/* ------------------------------------------------------------------ encoder */

typedef enum {
  CLIP_BACKEND_AUTO, /* Vulkan on a real GPU when there is one, else CPU */
  CLIP_BACKEND_CPU,
  CLIP_BACKEND_VULKAN,
} ClipBackendKind;

/* The arithmetic of the CPU backend's linear layers (the Vulkan backend
 * ignores it: F32 arithmetic). Layer norms, softmax, attention and the
 * residual stream stay F32 at every precision. */
typedef enum {
  CLIP_PRECISION_F32,  /* F32 inputs and weights (default) */
  CLIP_PRECISION_BF16, /* BF16 weights; on AVX512_BF16 BF16 inputs too,
                        * products summed in F32 */
  CLIP_PRECISION_INT8, /* the transformer blocks' linear layers on s8
                        * weights (a scale per output column) and u8 inputs
                        * (a scale and zero point per row), exact int32
                        * sums; the patch embedding and the projections
                        * stay F32 */
} ClipPrecision;

/* "f32", "bf16" or "int8" to *precision; FALSE (CLIP_ERROR_INVALID,
 * listing the names) for anything else. */
CLIP_API
gboolean clip_precision_from_name (const char *name, ClipPrecision *precision,
    GError **error);
/* "f32", "bf16" or "int8". */
CLIP_API
const char *clip_precision_get_name (ClipPrecision precision);

typedef struct {
  int threads;             /* CPU threads; 0 = as many as cores */
  int device_index;        /* Vulkan device index; -1 = by name or first */
  const char *device_name; /* Vulkan device name substring, or NULL */
  gboolean f16;            /* Vulkan: F16 weight storage where supported */
  gboolean profile;        /* Vulkan: timestamp queries per stage */
  ClipPrecision precision; /* CPU: the linear layers' arithmetic */
} ClipBackendOptions;

#define CLIP_BACKEND_OPTIONS_INIT                \
  {                                              \
    0, -1, NULL, TRUE, FALSE, CLIP_PRECISION_F32 \
  }

typedef struct _ClipEncoder ClipEncoder;

CLIP_API
ClipEncoder *clip_encoder_new (ClipModel *model, ClipBackendKind kind,
    const ClipBackendOptions *options, GError **error);
CLIP_API
void clip_encoder_free (ClipEncoder *enc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClipEncoder, clip_encoder_free)

CLIP_API
ClipModel *clip_encoder_get_model (const ClipEncoder *enc);
/* "cpu" or "vulkan", plus the device for Vulkan */
CLIP_API
const char *clip_encoder_get_backend_name (const ClipEncoder *enc);

/* n preprocessed images [n, 3, S, S] -> raw embeddings [n, embed_dim]. */
CLIP_API
gboolean clip_encoder_encode_images (ClipEncoder *enc, const float *pixels,
    int n, float *embeddings, GError **error);

/* n frames -> raw embeddings [n, embed_dim], preprocessing included: on the
 * device with the Vulkan backend (each frame's bytes uploaded once, then
 * resized, cropped and normalised by shaders, bit for bit as
 * clip_preprocess), on the CPU otherwise. Fails as clip_preprocess does on
 * a bad frame. */
CLIP_API
gboolean clip_encoder_encode_frames (ClipEncoder *enc, const ClipFrame *frames,
    int n, float *embeddings, GError **error);

typedef struct _ClipLabelSet ClipLabelSet;

/* clip_encoder_encode_frames, and each frame's zero-shot scores against
 * set, as clip_label_set_score gives them: logits and probs
 * [n, n_labels], either may be NULL. With the Vulkan backend the scores
 * are computed on the device in the batch's own pass (the set's embeddings
 * are uploaded the first time it is used). */
CLIP_API
gboolean clip_encoder_classify_frames (ClipEncoder *enc,
    const ClipFrame *frames, int n, const ClipLabelSet *set, float *embeddings,
    float *logits, float *probs, GError **error);

/* n token rows [n, context_length] -> raw embeddings [n, embed_dim]. */
CLIP_API
gboolean clip_encoder_encode_texts (ClipEncoder *enc, const gint32 *tokens,
    int n, float *embeddings, GError **error);

/* Tokenizes and encodes texts; the embeddings are L2-normalised. */
CLIP_API
gboolean clip_encoder_encode_strings (ClipEncoder *enc,
    const char *const *texts, int n, float *embeddings, GError **error);

/* Per-stage timings of the last batch (Vulkan with profile = TRUE); NULL
 * when not available. */
CLIP_API
const char *clip_encoder_get_profile (const ClipEncoder *enc);

/* ---------------------------------------------------------------- labels */

/* One label and what describes it: its own prompts, example images, or
 * neither (then the templates). A label with examples and no prompts is
 * defined by its images alone. */
typedef struct {
  char *label;
  char **prompts; /* NULL-terminated, or NULL */
  /* The '@' items of a labels file: image files or folders, resolved
   * against the labels file's folder; NULL-terminated, or NULL. */
  char **examples;
  char *origin; /* "FILE:LINE" of the labels file, for messages; or NULL */
  /* The examples' image embeddings [n_example_embeddings, embed_dim],
   * L2-normalised, one per image (a folder gives each of its images):
   * filled by whoever decodes the images (gst-clip's results core,
   * clip_exemplars_embed) before the set is built. */
  float *example_embeddings;
  int n_example_embeddings;
} ClipLabelSpec;

CLIP_API
void clip_label_spec_free (ClipLabelSpec *spec);

/* Parses "a, b ,c" into label specs (trimmed, empties dropped). Returns a
 * GPtrArray of ClipLabelSpec* (free with g_ptr_array_unref). */
CLIP_API
GPtrArray *clip_labels_parse_list (const char *comma_separated);

/* Parses a labels file's text: one label per line; "label: prompt one |
 * prompt two" gives a label its own prompts; an item "@PATH" names an
 * example image, or a folder of them, instead of a prompt ("forklift:
 * @examples/forklift/ | @f1.jpg | a photo of a forklift"), PATH relative to
 * filename's folder; '#' comments and blank lines
 * ignored. Fails on invalid UTF-8 or a malformed line (names the line).
 * Details: the first ':' ends the label; a '#' starts a comment only as a
 * line's first non-blank character (so "c# code" is a label); labels and
 * prompts are trimmed; CRLF line ends and a leading UTF-8 BOM are accepted.
 * An empty label, an empty prompt, an '@' without a path or a file without
 * labels is an error. The example files are not opened here.
 * filename names the text in errors; may be NULL. */
CLIP_API
GPtrArray *clip_labels_parse_text (const char *text, gssize length,
    const char *filename, GError **error);
CLIP_API
GPtrArray *clip_labels_parse_file (const char *path, GError **error);

/* Splits "a photo of a {}.|a video of {}" into templates: trimmed, empty
 * ones dropped (the result may be empty). A template without "{}" is used
 * as it is, the same prompt for every label. Free with g_strfreev. */
CLIP_API
char **clip_templates_parse (const char *bar_separated);

/* Builds the text-embedding matrix: for each label, each prompt (its own, or
 * every template with {} replaced by the label) is encoded, normalised,
 * averaged and renormalised (the CLIP paper's prompt ensembling).
 * negative_labels take part in the softmax but are flagged not reportable.
 * Fails on an empty label list and on a label that is also a negative label
 * (it would share its probability with itself). A prompt longer than the
 * model's context is cut, as clip.tokenize(truncate=True) does, and its
 * label flagged (clip_label_set_is_truncated) so that callers can warn. */
CLIP_API
ClipLabelSet *clip_label_set_new (ClipEncoder *enc, GPtrArray *labels,
    GPtrArray *negative_labels, const char *const *templates, GError **error);
/* Encodes n prompts (n <= 32) into L2-normalised embeddings
 * [n, embed_dim], as clip_encoder_encode_strings does. */
typedef gboolean (*ClipPromptEncodeFunc) (const char *const *prompts, int n,
    float *embeddings, gpointer user_data, GError **error);
/* clip_label_set_new for model with the prompts encoded by encode, at most
 * 32 per call: a caller that shares one encoder between threads can let
 * another thread use it between two calls (clipclassify builds a new set
 * while its frames go on being encoded). */
CLIP_API
ClipLabelSet *clip_label_set_new_with (const ClipModel *model,
    GPtrArray *labels, GPtrArray *negative_labels, const char *const *templates,
    ClipPromptEncodeFunc encode, gpointer user_data, GError **error);

/* How labels with example images score (docs/labels.md): a set where some
 * labels have text and some have examples adds, to each label's logit,
 * weight * sum over its examples of exp(-sharpness * (1 - cosine)) (Tip-
 * Adapter, Zhang et al. 2022: alpha and beta); the labels with examples
 * only (scored by the cosine to their examples' mean) are first moved as a
 * group so that their mean logit is that of the labels with text. */
typedef struct {
  float weight;    /* Tip-Adapter's alpha, >= 0 */
  float sharpness; /* Tip-Adapter's beta, >= 0 */
} ClipExemplarRule;

/* Tip-Adapter's values (alpha 1, beta 5.5: the paper's ablations). */
#define CLIP_EXEMPLAR_RULE_INIT \
  {                             \
    1.0f, 5.5f                  \
  }

/* clip_label_set_new_with, for labels that may have example images (their
 * example_embeddings filled), scored by rule (NULL: the defaults). A label
 * with examples and no prompts has for its embedding the renormalised mean
 * of its examples' embeddings. Fails, naming the label, when a label's
 * examples were not embedded. */
CLIP_API
ClipLabelSet *clip_label_set_new_full (const ClipModel *model,
    GPtrArray *labels, GPtrArray *negative_labels, const char *const *templates,
    const ClipExemplarRule *rule, ClipPromptEncodeFunc encode,
    gpointer user_data, GError **error);
/* The number of example images of label i (0 for a text label). */
CLIP_API
int clip_label_set_get_n_examples (const ClipLabelSet *set, int i);
CLIP_API
ClipLabelSet *clip_label_set_ref (ClipLabelSet *set);
CLIP_API
void clip_label_set_unref (ClipLabelSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClipLabelSet, clip_label_set_unref)

CLIP_API
int clip_label_set_get_n_labels (const ClipLabelSet *set);
CLIP_API
const char *clip_label_set_get_label (const ClipLabelSet *set, int i);
CLIP_API
gboolean clip_label_set_is_negative (const ClipLabelSet *set, int i);
/* TRUE when a prompt of label i was longer than the model's context and
 * was cut, so that prompts differing only after the cut score the same. */
CLIP_API
gboolean clip_label_set_is_truncated (const ClipLabelSet *set, int i);
CLIP_API
int clip_label_set_get_embed_dim (const ClipLabelSet *set);
/* [n_labels, embed_dim], rows L2-normalised */
CLIP_API
const float *clip_label_set_get_embeddings (const ClipLabelSet *set);
CLIP_API
float clip_label_set_get_logit_scale (const ClipLabelSet *set);

/* image_embedding need not be normalised. logits[i] = scale * cosine (to
 * the label's text embedding, or to its examples' mean when it has no
 * text), plus the examples' term of ClipExemplarRule when the set mixes
 * text and examples; probs = softmax(logits) over all labels, negatives
 * included. Either output may be NULL. */
CLIP_API
void clip_label_set_score (const ClipLabelSet *set,
    const float *image_embedding, float *logits, float *probs);

/* ------------------------------------------------------------------- math */

/* Scales v to unit L2 norm (left as is when the norm is 0). */
CLIP_API
void clip_l2_normalize (float *v, int n);
/* In place, numerically safe. */
CLIP_API
void clip_softmax (float *v, int n);

G_END_DECLS
