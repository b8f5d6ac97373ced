/* sysloop N: a syscall-heavy benchmark workload. Each iteration: statfs("/"), uname, open+read+close
 * of /etc/hostname, stat of /usr/share, access of /proc/sys/vm/overcommit_memory, getpid, and
 * fstat of stdin: a mix of syscalls the shim traps and syscalls it does not. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000, sum = 0;
	for (long i = 0; i < n; i++) {
		struct statfs s;
		struct utsname u;
		struct stat st;
		char buf[64];
		sum += statfs("/", &s) == 0;
		sum += uname(&u) == 0;
		int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) { sum += read(fd, buf, sizeof buf) > 0; close(fd); }
		sum += stat("/usr/share", &st) == 0;
		sum += access("/proc/sys/vm/overcommit_memory", R_OK) == 0;
		sum += syscall(SYS_getpid) > 0;
		sum += fstat(0, &st) == 0;
	}
	printf("%ld\n", sum);
	return 0;
}
