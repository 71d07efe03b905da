// SPDX-License-Identifier: GPL-2.0-only
// Guest test program: one raw DUPCACHE_IOC_MERGE request, for the refusals dupcache itself never
// asks for (it does not send writable or shared mappings).
//   probe [--drop-ptrace|--pidfd|--v1|--repeat N|--size N] PID START END CANONICAL EXPECT_FILE [--wrong-ino]
//   probe --stats    prints the module's merged, pending and raced counters
// The expected identity is EXPECT_FILE's st_dev, st_ino and generation. Prints
//   errno=<errno name or 0> reason=<n>
// --pidfd names the target by a pidfd (ABI 1.1); --v1 sends an ABI 1.0 request (64 bytes, the
// old ioctl number); --size N claims a struct of N bytes (the buffer is that large, zeroed past
// the struct); --repeat N sends the request N times, 50 ms apart, and prints
//   ok=<merged> refused=<refused>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dupcache_kmod.h"

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EPERM: return "EPERM";
	case ESRCH: return "ESRCH";
	case ENXIO: return "ENXIO";
	case ESTALE: return "ESTALE";
	case EACCES: return "EACCES";
	case EBUSY: return "EBUSY";
	case EINVAL: return "EINVAL";
	case EXDEV: return "EXDEV";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case EALREADY: return "EALREADY";
	case ETXTBSY: return "ETXTBSY";
	case EILSEQ: return "EILSEQ";
	case E2BIG: return "E2BIG";
	case ECANCELED: return "ECANCELED";
	default: return strerror(e);
	}
}

static int drop_ptrace(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d))
		return -1;
	for (int i = 0; i < 2; i++)
		d[i].effective &= ~(i == CAP_SYS_PTRACE / 32 ? 1u << (CAP_SYS_PTRACE % 32) : 0);
	return syscall(SYS_capset, &h, d);
}

int main(int argc, char **argv)
{
	int a = 1, drop = 0, wrong = 0, pidfd = 0, v1 = 0, repeat = 0, size = 0;
	if (argc == 2 && !strcmp(argv[1], "--stats")) {
		struct dupcache_stats s;
		int dev = open(DUPCACHE_DEVICE, O_RDWR);
		if (dev < 0 || ioctl(dev, DUPCACHE_IOC_STATS, &s))
			return perror("probe: stats"), 1;
		printf("merged=%llu pending=%llu raced=%llu\n", (unsigned long long)s.merged,
		       (unsigned long long)s.pending, (unsigned long long)s.refused[DUPCACHE_R_RACED]);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--drop-ptrace"))
		drop = 1, a = 2;
	else if (argc > 1 && !strcmp(argv[1], "--pidfd"))
		pidfd = 1, a = 2;
	else if (argc > 1 && !strcmp(argv[1], "--v1"))
		v1 = 1, a = 2;
	else if (argc > 2 && !strcmp(argv[1], "--repeat"))
		repeat = atoi(argv[2]), a = 3;
	else if (argc > 2 && !strcmp(argv[1], "--size"))
		size = atoi(argv[2]), a = 3;
	if (argc - a < 5)
		return fprintf(stderr, "usage: probe [--drop-ptrace|--pidfd|--v1|--repeat N|--size N] PID START END CANONICAL EXPECT_FILE [--wrong-ino]\n"), 2;
	if (argc - a > 5 && !strcmp(argv[a + 5], "--wrong-ino"))
		wrong = 1;
	int dev = open(DUPCACHE_DEVICE, O_RDWR);
	int canon = open(argv[a + 3], O_RDONLY);
	int expect = open(argv[a + 4], O_RDONLY);
	struct stat st;
	unsigned gen = 0;
	if (dev < 0 || canon < 0 || expect < 0 || fstat(expect, &st))
		return perror("probe: open"), 1;
	ioctl(expect, FS_IOC_GETVERSION, &gen);
	if (drop && drop_ptrace())
		return perror("probe: capset"), 1;
	struct dupcache_merge m = { 0 };
	m.size = sizeof(m);
	m.pid = atoi(argv[a]);
	if (pidfd) {
		m.pidfd = syscall(SYS_pidfd_open, m.pid, 0);
		if (m.pidfd < 0)
			return perror("probe: pidfd_open"), 1;
		m.flags = DUPCACHE_MERGE_PIDFD;
		m.pid = 0;
	}
	m.start = strtoull(argv[a + 1], NULL, 16);
	m.end = strtoull(argv[a + 2], NULL, 16);
	m.canonical_fd = canon;
	m.timeout_ms = 2000;
	m.expect_dev = st.st_dev;
	m.expect_ino = st.st_ino + (wrong ? 1000 : 0);
	m.expect_generation = gen;
	if (v1)
		m.size = DUPCACHE_MERGE_SIZE_V1;
	if (repeat) {
		int ok = 0, refused = 0;
		for (int n = 0; n < repeat; n++) {
			if (ioctl(dev, DUPCACHE_IOC_MERGE, &m))
				refused++;
			else
				ok++;
			usleep(50000);
		}
		printf("ok=%d refused=%d\n", ok, refused);
		return 0;
	}
	if (size > (int)sizeof(m)) {
		struct dupcache_merge *big = calloc(1, size);
		if (!big)
			return perror("probe: calloc"), 1;
		memcpy(big, &m, sizeof(m));
		big->size = size;
		int rc = ioctl(dev, DUPCACHE_IOC_MERGE, big);
		printf("errno=%s reason=%u\n", errname(rc ? errno : 0), big->reason);
		return 0;
	}
	int rc = ioctl(dev, v1 ? DUPCACHE_IOC_MERGE_V1 : DUPCACHE_IOC_MERGE, &m);
	printf("errno=%s reason=%u\n", errname(rc ? errno : 0), m.reason);
	return 0;
}
