/* bench reader: opens, reads to EOF and closes each file in turn, in a loop, for a duration.
 * usage: reader SECONDS FILE... ; prints JSON {"reads":N,"seconds":S,"p50_us":..,"p99_us":..,"errors":E} */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static double now_us(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmp(const void *a, const void *b) { float x = *(const float *)a, y = *(const float *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: reader SECONDS FILE...\n"); return 2; }
  double secs = atof(argv[1]);
  int nfiles = argc - 2;
  size_t cap = 1 << 20, n = 0; long errors = 0;
  float *lat = malloc(cap * sizeof(float));
  static char buf[65536];
  double start = now_us(), end = start + secs * 1e6, t;
  long bytes = 0;
  while ((t = now_us()) < end) {
    const char *f = argv[2 + (n % nfiles)];
    int fd = open(f, O_RDONLY);
    if (fd < 0) { errors++; if (errors > 1000) break; continue; }
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) bytes += r;
    if (r < 0) errors++;
    close(fd);
    double d = now_us() - t;
    if (n == cap) { cap *= 2; lat = realloc(lat, cap * sizeof(float)); }
    lat[n++] = (float)d;
  }
  double el = (now_us() - start) / 1e6;
  qsort(lat, n, sizeof(float), cmp);
  printf("{\"reads\":%zu,\"seconds\":%.3f,\"rate\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"errors\":%ld,\"bytes\":%ld}\n",
         n, el, n / el, n ? lat[n / 2] : 0.0, n ? lat[(size_t)(n * 0.99)] : 0.0, errors, bytes);
  return 0;
}
