/* rawsys PATH: opens PATH with a raw `syscall` instruction whose path register is declared
 * input/output, then checks that (1) the register still holds the caller's pointer after the
 * syscall, (2) the caller's path buffer is unchanged (a tracer must not write over it), and
 * prints the first line of the file. Exit 0 when both hold and the open succeeded. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) { fprintf(stderr, "usage: rawsys PATH\n"); return 2; }
	size_t n = strlen(argv[1]);
	char *buf = malloc(n + 1), *copy = strdup(argv[1]);
	memcpy(buf, argv[1], n + 1);
	long ret;
#if defined(__x86_64__)
	const char *p = buf;
	long dirfd = AT_FDCWD, flags = O_RDONLY, mode = 0;
	register long r10 __asm__("r10") = mode;
	__asm__ volatile("syscall"
			 : "=a"(ret), "+S"(p), "+D"(dirfd), "+d"(flags), "+r"(r10)
			 : "a"((long)SYS_openat)
			 : "rcx", "r11", "memory");
	int reg_ok = p == buf;
#else
	ret = syscall(SYS_openat, AT_FDCWD, buf, O_RDONLY);
	int reg_ok = 1;
#endif
	int buf_ok = memcmp(buf, copy, n + 1) == 0;
	char line[256] = "";
	if (ret >= 0) {
		ssize_t r = read((int)ret, line, sizeof line - 1);
		line[r > 0 ? r : 0] = 0;
		char *nl = strchr(line, '\n');
		if (nl) *nl = 0;
	}
	printf("{\"fd\":%ld,\"registerKept\":%s,\"bufferKept\":%s,\"firstLine\":\"%s\"}\n", ret, reg_ok ? "true" : "false",
	       buf_ok ? "true" : "false", line);
	return ret >= 0 && reg_ok && buf_ok ? 0 : 1;
}
