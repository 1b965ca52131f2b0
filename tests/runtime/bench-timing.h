/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the benchmarks in tests/runtime share: the calling thread's CPU
 * time (which other processes on a busy machine disturb less than wall
 * time) and sorting the samples for their median. */
#pragma once
#include <time.h>

static inline double
thread_ms (void)
{
  struct timespec t;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

/* For qsort over doubles, ascending. */
static inline int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}
