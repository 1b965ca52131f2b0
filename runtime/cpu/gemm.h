/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Linear layers over weights packed once: y[m, n] = x[m, k] W[n, k]^T + b,
 * on an AVX-512 or AVX2/FMA register-tile kernel chosen at run time, split
 * over a small thread pool. OpenBLAS re-packs W on every call (a third of a
 * batch-1 encoder's GEMM time) and, forced onto its Haswell kernels, never
 * uses AVX-512. Internal to runtime/cpu. */
#pragma once

#include "clip.h"
#include "safetensors.h"

#include <glib.h>

typedef struct _ClipGemmWeight ClipGemmWeight;
typedef struct _ClipGemmPool ClipGemmPool;

typedef enum {
  CLIP_GEMM_AUTO,   /* the widest kernel this CPU runs */
  CLIP_GEMM_AVX2,   /* AVX2 + FMA */
  CLIP_GEMM_AVX512, /* AVX-512F */
  /* AVX-512F, and vdpbf16ps for the weights packed at BF16 precision */
  CLIP_GEMM_AVX512_BF16,
  /* AVX-512F, and vpdpbusd for the weights packed at INT8 precision */
  CLIP_GEMM_AVX512_VNNI,
  /* AVX2 + FMA, and the VEX vpdpbusd for the weights packed at INT8
   * precision */
  CLIP_GEMM_AVX_VNNI,
  /* AVX-512F, and AMX tiles (tdpbf16ps, tdpbusd) for the weights packed at
   * BF16 and INT8 precision */
  CLIP_GEMM_AMX,
  /* No SIMD kernel: plain C at INT8 precision, OpenBLAS at the others */
  CLIP_GEMM_PLAIN,
} ClipGemmKernel;

/* TRUE when this CPU runs that kernel (AUTO: any); otherwise the callers
 * keep plain cblas_sgemm. */
gboolean clip_gemm_kernel_supported (ClipGemmKernel kind);
/* "AVX2" or "AVX-512": the kernel that kind packs for on this CPU; NULL
 * when it runs none. */
const char *clip_gemm_kernel_name (ClipGemmKernel kind);

/* Packs w [out_dim, in_dim] (row-major, nn.Linear's layout) for a kernel.
 * NULL when the CPU does not run it, the dimensions are not positive or the
 * copy cannot be allocated. */
ClipGemmWeight *clip_gemm_pack (const float *w, int out_dim, int in_dim,
    ClipGemmKernel kind);
/* clip_gemm_pack of w in dtype F32, F16 or BF16 (as a safetensors file
 * stores it, little-endian): the panels keep that type, and the kernel
 * widens F16 and BF16 to F32 as it loads them. */
ClipGemmWeight *clip_gemm_pack_typed (const void *w, ClipDType dtype,
    int out_dim, int in_dim, ClipGemmKernel kind);
/* w packed for BF16 precision: rounded to BF16 (to nearest even), as
 * vdpbf16ps's input pairs where kind is AVX512_BF16 (or AUTO on a CPU that
 * has it) and then each call rounds its inputs to BF16 too, products
 * summed in F32; otherwise as 16 bits that kind's F32 kernel widens (the
 * inputs stay F32). */
ClipGemmWeight *clip_gemm_pack_bf16 (const void *w, ClipDType dtype,
    int out_dim, int in_dim, ClipGemmKernel kind);
/* w packed for INT8 precision: each output column quantised to s8 in
 * -127..127 with its own scale (its largest magnitude / 127), for
 * kind's INT8 kernel: AVX512_VNNI's (vpdpbusd) where kind and the CPU
 * allow, else AVX2's (vpmaddubsw + vpmaddwd; weights in -63..63, so that
 * no s16 sum saturates), else plain C (kind PLAIN or AUTO). Each
 * call quantises its inputs per row to u8 with a zero point; the integer
 * sums are exact, the epilogue F32. */
ClipGemmWeight *clip_gemm_pack_int8 (const void *w, ClipDType dtype,
    int out_dim, int in_dim, ClipGemmKernel kind);
/* The packing of precision: clip_gemm_pack_typed at F32,
 * clip_gemm_pack_bf16 at BF16, clip_gemm_pack_int8 at INT8. */
ClipGemmWeight *clip_gemm_pack_at (const void *w, ClipDType dtype, int out_dim,
    int in_dim, ClipGemmKernel kind, ClipPrecision precision);
/* TRUE when clip_gemm_pack_bf16 packs for kind on this CPU for a BF16
 * dot-product kernel (AMX, AVX512_BF16), whose inputs are rounded to BF16
 * too; FALSE when kind's F32 kernel would only widen BF16 weights. */
gboolean clip_gemm_has_bf16_kernel (ClipGemmKernel kind);
/* clip_gemm_weight_kernel of what clip_gemm_pack_at packs for kind at
 * precision on this CPU; NULL when it runs none. */
const char *clip_gemm_kernel_name_at (ClipGemmKernel kind,
    ClipPrecision precision);
/* "AVX2", "AVX-512", "AVX512_BF16", "AVX512_VNNI" or "C": the kernel
 * that runs packed. */
const char *clip_gemm_weight_kernel (const ClipGemmWeight *packed);
void clip_gemm_weight_free (ClipGemmWeight *packed);
/* Bytes of the packed copy. */
gsize clip_gemm_weight_size (const ClipGemmWeight *packed);
/* TRUE when packed was made from a weight of that shape. */
gboolean clip_gemm_weight_has_shape (const ClipGemmWeight *packed, int out_dim,
    int in_dim);

/* TRUE when w [floats] lies inside one F32 tensor of st (which may be NULL),
 * that is in the model's read-only private mapping of its file. */
gboolean clip_gemm_weight_is_mapped (const ClipSafetensors *st, const float *w,
    gsize floats);
/* Takes the pages wholly inside w [bytes], a weight of the model's file
 * mapping that now lives packed, out of the resident set: they fault back
 * in from the file if it is read again. */
void clip_gemm_release_mapped (const void *w, gsize bytes);

/* threads workers, the calling thread being one of them. */
ClipGemmPool *clip_gemm_pool_new (int threads);
void clip_gemm_pool_free (ClipGemmPool *pool);

/* Runs func (data, index, threads) once on each of the pool's threads,
 * index 0 on the caller, and returns when all have. pool may be NULL: one
 * call, index 0 of 1. */
typedef void (*ClipPoolFunc) (gpointer data, int index, int threads);
void clip_gemm_pool_run (ClipGemmPool *pool, ClipPoolFunc func, gpointer data);

/* out[n, out_dim] (row stride ldo) = in[n, in_dim] W^T + b, or += when
 * accumulate; b may be NULL. pool may be NULL: one thread. */
void clip_gemm_linear (ClipGemmPool *pool, const ClipGemmWeight *packed,
    float *out, int ldo, const float *in, const float *b, int n,
    gboolean accumulate);

/* clip_gemm_linear of an INT8 weight on the plain C kernel and quantiser
 * of its layout, whatever kernel it was packed for: the tests' reference,
 * the same integers summed in C. */
void clip_gemm_linear_plain (ClipGemmPool *pool, const ClipGemmWeight *packed,
    float *out, int ldo, const float *in, const float *b, int n,
    gboolean accumulate);

/* Called on each finished block of out (rows x cols at c, row stride ldc)
 * by the thread that computed it, while the block is still in its cache. */
typedef void (
    *ClipGemmEpilogue) (float *c, gsize ldc, int rows, int cols, gpointer data);

/* clip_gemm_linear, then epilogue over every block of the result. */
void clip_gemm_linear_then (ClipGemmPool *pool, const ClipGemmWeight *packed,
    float *out, int ldo, const float *in, const float *b, int n,
    gboolean accumulate, ClipGemmEpilogue epilogue, gpointer epilogue_data);
