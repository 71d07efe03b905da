// SPDX-License-Identifier: GPL-2.0-only
// Guest test program: maps a file like a shared library and keeps reading it.
//   mapper [--writable|--cow|--shared|--race|--block] FILE STATUS
// maps FILE whole (read-only private by default; --writable: read-write private; --cow:
// read-write private, one byte written, then read-only again; --shared: read-only shared), reads
// every page, then every 100 ms checksums the mapping and writes to STATUS:
//   <start>-<end> <checksum> <path /proc/self/maps shows for the range> <lost> <writes>
// --race: a second thread races merges of the read-only mapping, again and again: it maps FILE
// afresh at the same address (no copy-on-write page yet), waits a moment, makes the mapping
// writable, writes a byte, makes it read-only again and reads the byte back; <lost> counts the
// writes not read back, <writes> the writes.
// --block: on SIGUSR1, writes STATUS.blocked and vfork()s a child that sleeps 12 s: until then
// the mapper cannot return to user space (a killable wait), so a merge request on it times out
// without it being stopped. The marker lets the test start its request once the wait has begun
// rather than after a guessed delay (a loaded TCG guest can take seconds to deliver the signal).
//   mapper --sum FILE    prints FILE's checksum as the mapper computes it
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* FNV-1a over 8-byte words, then the tail bytes: cheap enough that mappers leave the guest's
 * CPUs mostly idle under TCG. */
static uint64_t checksum(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull, w;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 1099511628211ull;
	}
	for (; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void mapped_path(uintptr_t start, char *out, size_t n)
{
	char line[4096];
	FILE *f = fopen("/proc/self/maps", "r");
	snprintf(out, n, "?");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long s;
		if (sscanf(line, "%lx-", &s) == 1 && s == start) {
			char *slash = strchr(line, '/');
			if (slash) {
				slash[strcspn(slash, "\n")] = 0;
				snprintf(out, n, "%s", slash);
			}
		}
	}
	if (f)
		fclose(f);
}

static unsigned char *race_p;
static size_t race_len;
static int race_fd;
static volatile unsigned long lost, writes;
static volatile sig_atomic_t block_now;

static void *racer(void *arg)
{
	unsigned seed = 1;
	(void)arg;
	for (;;) {
		if (mmap(race_p, race_len, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, race_fd, 0) == MAP_FAILED)
			perror("mapper: remap"), exit(1);
		usleep(rand_r(&seed) % 4000);
		if (mprotect(race_p, race_len, PROT_READ | PROT_WRITE | PROT_EXEC))
			perror("mapper: mprotect"), exit(1);
		unsigned char v = (unsigned char)~race_p[100];
		race_p[100] = v;
		writes++;
		usleep(500);
		mprotect(race_p, race_len, PROT_READ | PROT_EXEC);
		if (race_p[100] != v)
			lost++;
	}
	return NULL;
}

/* The parent waits, killable only, until the vforked child exits. */
static __attribute__((noinline)) void block_a_while(const char *status)
{
	char marker[4200];
	snprintf(marker, sizeof(marker), "%s.blocked", status);
	FILE *f = fopen(marker, "w");
	if (f)
		fclose(f);
	if (vfork() == 0) {
		struct timespec ts = { 12, 0 };
		nanosleep(&ts, NULL);
		_exit(0);
	}
}

static void on_usr1(int sig)
{
	(void)sig;
	block_now = 1;
}

int main(int argc, char **argv)
{
	int prot = PROT_READ, flags = MAP_PRIVATE, cow = 0, race = 0, i = 1;
	if (argc == 3 && !strcmp(argv[1], "--sum")) {
		int fd = open(argv[2], O_RDONLY);
		struct stat st;
		if (fd < 0 || fstat(fd, &st))
			return perror(argv[2]), 1;
		void *p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			return perror("mmap"), 1;
		printf("%016llx\n", (unsigned long long)checksum(p, st.st_size));
		return 0;
	}
	if (argc == 4) {
		if (!strcmp(argv[1], "--writable"))
			prot |= PROT_WRITE;
		else if (!strcmp(argv[1], "--cow"))
			prot |= PROT_WRITE, cow = 1;
		else if (!strcmp(argv[1], "--shared"))
			flags = MAP_SHARED;
		else if (!strcmp(argv[1], "--race"))
			race = 1;
		else if (!strcmp(argv[1], "--block"))
			signal(SIGUSR1, on_usr1);
		else
			return fprintf(stderr, "mapper: unknown mode %s\n", argv[1]), 2;
		i = 2;
	} else if (argc != 3) {
		return fprintf(stderr, "usage: mapper [--writable|--cow|--shared|--race|--block] FILE STATUS\n"), 2;
	}
	int fd = open(argv[i], O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st))
		return perror(argv[i]), 1;
	unsigned char *p = mmap(NULL, st.st_size, prot | PROT_EXEC, flags, fd, 0);
	if (p == MAP_FAILED)
		return perror("mmap"), 1;
	if (race) {
		pthread_t t;
		race_p = p, race_len = st.st_size, race_fd = fd;
		if (pthread_create(&t, NULL, racer, NULL))
			return fprintf(stderr, "mapper: pthread_create failed\n"), 1;
	} else {
		close(fd);
	}
	if (cow) {
		*(volatile unsigned char *)p = p[0]; /* a write: the first page becomes an anonymous copy */
		mprotect(p, st.st_size, PROT_READ | PROT_EXEC);
	}
	const size_t len = (st.st_size + 4095) & ~4095ul;
	char tmp[4200], path[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[i + 1]);
	for (;;) {
		uint64_t h = checksum(p, st.st_size);
		mapped_path((uintptr_t)p, path, sizeof(path));
		FILE *f = fopen(tmp, "w");
		if (!f)
			return perror(tmp), 1;
		fprintf(f, "%lx-%lx %016llx %s %lu %lu\n", (unsigned long)p, (unsigned long)p + len,
			(unsigned long long)h, path, lost, writes);
		fclose(f);
		rename(tmp, argv[i + 1]);
		usleep(100000);
		if (block_now) {
			block_now = 0;
			block_a_while(argv[i + 1]);
		}
	}
}
