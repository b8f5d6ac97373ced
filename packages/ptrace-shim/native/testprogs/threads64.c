/* threads64 PATH EXPECTED_FTYPE_HEX ITERATIONS [THREADS]
 * Starts THREADS (default 64) threads that each call statfs(PATH) and fstatfs(fd of PATH)
 * ITERATIONS times and count results whose f_type differs from EXPECTED. Prints a JSON line;
 * exits 0 only if every call succeeded with the expected type. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

static const char *path;
static long expected, iters;
static long bad_count, calls;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg)
{
	long bad = 0, n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	for (long i = 0; i < iters; i++) {
		struct statfs s;
		if (statfs(path, &s) != 0 || (long)s.f_type != expected) bad++;
		n++;
		if (fd >= 0) {
			if (fstatfs(fd, &s) != 0 || (long)s.f_type != expected) bad++;
			n++;
		}
	}
	if (fd < 0) bad++;
	else close(fd);
	pthread_mutex_lock(&mu);
	bad_count += bad;
	calls += n;
	pthread_mutex_unlock(&mu);
	return arg;
}

int main(int argc, char **argv)
{
	if (argc < 4) { fprintf(stderr, "usage: threads64 PATH EXPECTED_HEX ITERATIONS [THREADS]\n"); return 2; }
	path = argv[1];
	expected = strtol(argv[2], NULL, 16);
	iters = atol(argv[3]);
	int n = argc > 4 ? atoi(argv[4]) : 64;
	pthread_t *th = calloc((size_t)n, sizeof *th);
	for (int i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, worker, NULL)) { perror("pthread_create"); return 3; }
	for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
	printf("{\"threads\":%d,\"calls\":%ld,\"bad\":%ld}\n", n, calls, bad_count);
	return bad_count ? 1 : 0;
}
