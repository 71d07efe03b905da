/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * dupcache companion module: the ioctl ABI of /dev/dupcache, shared by the module and by user
 * space. A change that old clients cannot ignore bumps DUPCACHE_ABI_MAJOR; additions bump
 * DUPCACHE_ABI_MINOR. Every request carries its own size, so fields can be added at the end.
 */
#ifndef DUPCACHE_KMOD_H
#define DUPCACHE_KMOD_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define DUPCACHE_ABI_MAJOR 1
#define DUPCACHE_ABI_MINOR 1
#define DUPCACHE_DEVICE "/dev/dupcache"

struct dupcache_version {
	__u32 major;
	__u32 minor;
	__u32 merge_size;  /* sizeof(struct dupcache_merge) the module knows */
	__u32 stats_size;  /* sizeof(struct dupcache_stats) the module knows */
};

/* Why a request was refused; the ioctl also fails with the errno in brackets. */
enum dupcache_reason {
	DUPCACHE_OK = 0,
	DUPCACHE_R_PERMISSION = 1, /* caller lacks CAP_SYS_ADMIN or CAP_SYS_PTRACE [EPERM] */
	DUPCACHE_R_NO_PROCESS = 2, /* no such pid, a kernel thread, or it exited [ESRCH] */
	DUPCACHE_R_RANGE = 3,      /* [start, end) is not exactly one mapping [ENXIO] */
	DUPCACHE_R_IDENTITY = 4,   /* the mapping is not of the expected dev, ino, generation [ESTALE] */
	DUPCACHE_R_SHARED = 5,     /* a shared mapping [EACCES] */
	DUPCACHE_R_WRITABLE = 6,   /* a writable mapping [EACCES] */
	DUPCACHE_R_COW = 7,        /* may hold anonymous (copy-on-write) pages [EBUSY] */
	DUPCACHE_R_SPECIAL = 8,    /* not a plain file mapping (I/O, huge pages, userfaultfd) [EINVAL] */
	DUPCACHE_R_CANONICAL = 9,  /* canonical fd: not a read-only regular file, open for writing
	                            * somewhere, or another size [EINVAL] */
	DUPCACHE_R_OTHER_FS = 10,  /* canonical file on another filesystem [EXDEV] */
	DUPCACHE_R_TIMEOUT = 11,   /* the target did not return to user space in time [ETIMEDOUT] */
	DUPCACHE_R_MAP_FAILED = 12,/* vm_mmap failed in the target; errno is its error */
	DUPCACHE_R_INVALID = 13,   /* malformed request: size, flags, alignment [EINVAL] */
	/* ABI 1.1: */
	DUPCACHE_R_STOPPED = 14,   /* the target is stopped or traced [EAGAIN] */
	DUPCACHE_R_PENDING = 15,   /* a request is already pending on the target, or too many are
	                            * pending in all [EALREADY] */
	DUPCACHE_R_WRITERS = 16,   /* the file mapped now or the canonical copy is open for writing
	                            * [ETXTBSY] */
	DUPCACHE_R_CONTENT = 17,   /* the canonical copy's bytes differ from the mapped file's, or
	                            * could not be read to compare [EILSEQ, or the read's error] */
	DUPCACHE_R_RACED = 18,     /* the mapping changed after the checks, caught by the last check,
	                            * under the switch's lock: another thread of the target
	                            * remapped, mprotected or wrote to it [ECANCELED] */
	DUPCACHE_R_COUNT = 32
};

/* The first ABI's reason counters: struct dupcache_stats ended with refused[16]. */
#define DUPCACHE_R_COUNT_V1 16

/* The first ABI's sizeof(struct dupcache_merge): the least a module takes. A shorter struct from
 * an older client than the module's is taken as if its missing fields were zero. */
#define DUPCACHE_MERGE_SIZE_V1 64
/* ABI 1.1's: pidfd and reserved added. */
#define DUPCACHE_MERGE_SIZE_V2 72
/* The most a module reads of a request; a larger size is refused as invalid (E2BIG). */
#define DUPCACHE_MERGE_SIZE_MAX 4096

/* dupcache_merge.flags (ABI 1.1): the target is pidfd (a pidfd_open(2) file), not pid. */
#define DUPCACHE_MERGE_PIDFD (1ULL << 0)

struct dupcache_merge {
	__u32 size;              /* in: sizeof(struct dupcache_merge) */
	__s32 pid;               /* in: target, in the caller's pid namespace */
	__u64 start;             /* in: the mapping's first byte, page aligned */
	__u64 end;               /* in: one past its last byte, page aligned */
	__s32 canonical_fd;      /* in: the canonical copy, opened read-only by the caller */
	__u32 timeout_ms;        /* in: 0 for the default (5000), at most 60000 */
	__u64 expect_dev;        /* in: st_dev of the file mapped now, as stat(2) reports it */
	__u64 expect_ino;        /* in: its st_ino */
	__u32 expect_generation; /* in: its inode generation (FS_IOC_GETVERSION) */
	__u32 reason;            /* out: enum dupcache_reason */
	__u64 flags;             /* in: DUPCACHE_MERGE_*, others must be 0 */
	/* ABI 1.1 */
	__s32 pidfd;             /* in, with DUPCACHE_MERGE_PIDFD: the target; pid is then 0 or its
	                          * pid in the caller's namespace */
	__u32 reserved;          /* in: must be 0 */
};

struct dupcache_stats {
	__u64 requests;          /* merge requests taken */
	__u64 merged;            /* mappings remapped onto a canonical copy */
	__u64 merged_bytes;      /* their length in bytes */
	__u64 pending;           /* queued on a target, not yet run or abandoned */
	__u64 refused[DUPCACHE_R_COUNT]; /* by enum dupcache_reason (16 before ABI 1.1) */
};
#define DUPCACHE_STATS_SIZE_V1 (4 * 8 + DUPCACHE_R_COUNT_V1 * 8)

#define DUPCACHE_IOC_MAGIC 0xDC
#define DUPCACHE_IOC_VERSION _IOR(DUPCACHE_IOC_MAGIC, 0, struct dupcache_version)
#define DUPCACHE_IOC_MERGE _IOWR(DUPCACHE_IOC_MAGIC, 1, struct dupcache_merge)
#define DUPCACHE_IOC_STATS _IOR(DUPCACHE_IOC_MAGIC, 2, struct dupcache_stats)
/* The ABI 1.0 numbers, which encode the first sizes; a 1.1 module answers both. */
#define DUPCACHE_IOC_MERGE_V1 _IOC(_IOC_READ | _IOC_WRITE, DUPCACHE_IOC_MAGIC, 1, DUPCACHE_MERGE_SIZE_V1)
#define DUPCACHE_IOC_STATS_V1 _IOC(_IOC_READ, DUPCACHE_IOC_MAGIC, 2, DUPCACHE_STATS_SIZE_V1)

#endif /* DUPCACHE_KMOD_H */
