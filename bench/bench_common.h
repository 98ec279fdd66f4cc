//  bench_common.h — timing and percentile helpers for the bench programs.
#ifndef BENCH_COMMON_H_INCLUDED
#define BENCH_COMMON_H_INCLUDED

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline int64_t
bench_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
bench_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  When BENCH_SAMPLES names a file, appends every sample to it (ns, one a
//  line), so that a script can pool several runs before taking percentiles.
static void
bench_dump (const int64_t *samples, size_t n)
{
    const char *path = getenv ("BENCH_SAMPLES");
    if (!path || !*path)
        return;
    FILE *out = fopen (path, "a");
    if (!out)
        return;
    for (size_t i = 0; i < n; i++)
        fprintf (out, "%lld\n", (long long) samples [i]);
    fclose (out);
}

//  Sorts `samples` and prints one machine-readable line:
//  name n=… p50_us=… p90_us=… p99_us=… p999_us=… max_us=… mean_us=… req_bytes=… rep_bytes=…
static void
bench_report (const char *name, int64_t *samples, size_t n, size_t req_bytes, size_t rep_bytes)
{
    bench_dump (samples, n);
    qsort (samples, n, sizeof *samples, bench_cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double) samples [i];
#define PCT(p) ((double) samples [(size_t) ((double) (n - 1) * (p))] / 1000.0)
    printf ("%s n=%zu p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f "
            "req_bytes=%zu rep_bytes=%zu\n",
            name, n, PCT (0.50), PCT (0.90), PCT (0.99), PCT (0.999),
            (double) samples [n - 1] / 1000.0, sum / (double) n / 1000.0, req_bytes, rep_bytes);
#undef PCT
    fflush (stdout);
}

#endif
