// SPDX-License-Identifier: GPL-2.0-only
/*
 * dupcache kernel/user ABI: the only structs and constants shared by bpf/dupcache.bpf.c and the
 * C++ loader (src/trace). Plain C, fixed-width types, explicit padding; the C++ side
 * static_asserts every size and offset (src/trace/abi_check.hpp). Any change to a layout or a
 * constant's meaning bumps DUPCACHE_BPF_ABI_VERSION; the loader compares the version compiled
 * into the BPF object (.rodata abi_version) with its own before loading.
 */
#ifndef DUPCACHE_ABI_H
#define DUPCACHE_ABI_H

#if defined(__bpf__)
/* BPF programs include vmlinux.h first; it defines __u8/__u32/__u64. */
#else
#include <linux/types.h>
#endif

#define DUPCACHE_BPF_ABI_VERSION 4

/* Number of slots in the per-kind counter arrays; slot 0 is unused, slots above
 * DUPCACHE_EV_KIND_MAX stay zero. Room to add kinds without resizing the counters. */
#define DUPCACHE_EV_KIND_SLOTS 16

/* Capacity of the watched_devs hash map (user space fills it before attaching). */
#define DUPCACHE_MAX_WATCHED_DEVS 1024

/* dupcache_event.fd / fd2 when the syscall has no such descriptor. */
#define DUPCACHE_FD_NONE 0xffffffffu

/* dupcache_event.kind */
enum dupcache_event_kind {
	/* Page cache: a folio was inserted into a regular file's mapping. */
	DUPCACHE_EV_CACHE_ADD = 1,
	/* Page cache: a folio was removed from a regular file's mapping (reclaim, fadvise,
	 * truncate, invalidation). */
	DUPCACHE_EV_CACHE_DELETE = 2,
	/* A clean page-cache folio became dirty (writeback:writeback_dirty_folio). On a
	 * reflinked/snapshotted extent the next writeback is a COW: sharing ends for it. */
	DUPCACHE_EV_FOLIO_DIRTY = 3,
	/* ioctl(dest_fd, FICLONE, src_fd): whole-file reflink. */
	DUPCACHE_EV_SHARE_CLONE = 4,
	/* ioctl(dest_fd, FICLONERANGE, &file_clone_range). */
	DUPCACHE_EV_SHARE_CLONE_RANGE = 5,
	/* ioctl(src_fd, FIDEDUPERANGE, &file_dedupe_range). */
	DUPCACHE_EV_SHARE_DEDUPE = 6,
	/* copy_file_range(2): may reflink on btrfs/xfs. */
	DUPCACHE_EV_SHARE_COPY_RANGE = 7,
	/* ioctl(fd, FS_IOC_FIEMAP, &fiemap): someone is mapping extents (a scanner at work). Made
	 * only when the loader sets the rodata fiemap_events (dupcache trace does; live consumers
	 * do not: their own seed makes one per cached file). */
	DUPCACHE_EV_SHARE_FIEMAP = 8,
	/* ftruncate(2) / truncate(2): extents past the new size are released. */
	DUPCACHE_EV_SHARE_TRUNCATE = 9,
	/* fallocate(2) with a mode that moves or frees the blocks of existing data: PUNCH_HOLE,
	 * COLLAPSE_RANGE, ZERO_RANGE, INSERT_RANGE, UNSHARE_RANGE (ABI 4). Plain allocation, which
	 * leaves existing data where it is, is not reported. */
	DUPCACHE_EV_SHARE_FALLOCATE = 10,
	DUPCACHE_EV_KIND_MAX = 10,
};

/* dupcache_event.flags */
enum dupcache_event_flags {
	/* dev, subvol_id, ino and generation describe a real inode. Always set for the cache and
	 * dirty kinds; for sharing kinds set when the syscall's fd resolved to a file. */
	DUPCACHE_EVF_IDENTITY = 1 << 0,
	/* A syscall argument in user memory (the FICLONERANGE/FIDEDUPERANGE/FIEMAP struct, a
	 * copy_file_range offset) could not be read, e.g. not faulted in; those fields are 0. */
	DUPCACHE_EVF_ARGS_UNREAD = 1 << 1,
	/* copy_file_range with off_out == NULL: off is fd's file position, read racily. */
	DUPCACHE_EVF_OFF_IS_FPOS = 1 << 2,
	/* copy_file_range with off_in == NULL: off2 is 0 (fd2's position is not resolved). */
	DUPCACHE_EVF_OFF2_IS_FPOS = 1 << 3,
	/* btrfs inode whose subvolume could not be read (types missing from kernel BTF). */
	DUPCACHE_EVF_SUBVOL_UNKNOWN = 1 << 4,
	/* Emitted while this CPU's run slot was held by a program it interrupted or preempted, so
	 * that CPU's open run was not flushed first: order it like a record from another CPU. */
	DUPCACHE_EVF_UNORDERED = 1 << 5,
};

/*
 * One ring-buffer record, 128 bytes.
 *
 * Field validity by kind ("-" = zero):
 *
 *   field        CACHE_ADD/DELETE, FOLIO_DIRTY   SHARE_*
 *   ts_ns        yes                             yes
 *   dev,ino,     yes                             if flags & DUPCACHE_EVF_IDENTITY: the dest
 *   generation,
 *   subvol_id
 *   index        first page index of the record  -
 *   nr_pages     pages covered (see below)       -
 *   cgroup_id    memcg the folio is charged to   -
 *   pid,tid,comm current task                    calling task
 *   fd,fd2,off,  -                               per kind, below
 *   off2,len,aux
 *
 * Sharing kinds ("dest" is the file whose extents change):
 *   CLONE        fd=dest(ioctl fd) fd2=src; off=off2=len=0 (whole file)
 *   CLONE_RANGE  fd=dest(ioctl fd) fd2=src_fd; off=dest_offset off2=src_offset len=src_length
 *                (0 = to EOF)
 *   DEDUPE       fd=src(ioctl fd) fd2=info[0].dest_fd; off=src_offset off2=info[0].dest_offset
 *                len=src_length aux=dest_count; identity from fd2 (the first dest)
 *   COPY_RANGE   fd=fd_out fd2=fd_in; off=*off_out off2=*off_in (see OFF*_IS_FPOS) len; aux=flags
 *   FIEMAP       fd=ioctl fd; off=fm_start len=fm_length aux=fm_flags
 *   TRUNCATE     ftruncate: fd, off=length. truncate(path): fd=DUPCACHE_FD_NONE, off=length,
 *                no identity (the path is not resolved at syscall entry); the page-cache
 *                DELETE events that follow carry the inode.
 *   FALLOCATE    fd=fd; off=offset len=len aux=mode (FALLOC_FL_* bits)
 * Sharing records are made at syscall entry (identity and arguments as the caller passed them)
 * and emitted when the syscall returns (ABI 3; at entry before): the change is done, or the call
 * failed, by ts_ns, which is the return time. Only when the kernel side cannot hold the record
 * (more than 4096 threads inside such calls at once) is it emitted at entry.
 *
 * Coalesced runs (rodata coalesce): CACHE_ADD, CACHE_DELETE and FOLIO_DIRTY records cover a
 * *run*, consecutive folios [index, index + nr_pages) of one inode, of one kind, one after the
 * other on one CPU and charged to one memcg. ts_ns is the time of the run's first folio,
 * ts_end_ns the time the run was flushed: every folio of it was handled in [ts_ns, ts_end_ns].
 * pid/tid/comm are the first folio's task. A run is flushed (emitted) when the next folio event
 * on its CPU does not extend it, before any other record from that CPU (so one CPU's records
 * stay in order), and when user space runs dc_flush on that CPU. Records from different CPUs
 * may therefore arrive out of order: a DELETE or DIRTY of a page can precede the ADD record of
 * the run that inserted it, and an ADD can precede the DELETE run that removed the page before.
 * For sharing kinds, and for uncoalesced records, ts_end_ns == ts_ns.
 */
struct dupcache_event {
	__u64 ts_ns;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC, nanoseconds */
	__u64 ino;        /* inode number (inode->i_ino) */
	__u64 subvol_id;  /* btrfs subvolume root id (5 = top level); 0 on other filesystems */
	__u64 index;      /* page-cache index of the folio's first page (units of PAGE_SIZE) */
	__u64 cgroup_id;  /* cgroup id (kernfs node id) of the memcg the folio is charged to;
			   * 0 if uncharged, memcg disabled or unknown */
	__u64 off;        /* sharing: byte offset in fd's file (see table) */
	__u64 off2;       /* sharing: byte offset in fd2's file */
	__u64 len;        /* sharing: byte length of the range */
	__u32 dev;        /* superblock s_dev, kernel encoding: major << 20 | minor. On btrfs the
			   * same for all subvolumes, unlike stat()'s st_dev */
	__u32 generation; /* inode->i_generation: tells apart inodes that reuse a number */
	__u32 nr_pages;   /* folio_nr_pages(): 1, or 2^order for large folios */
	__u32 pid;        /* tgid of the current task (user-space "pid") */
	__u32 tid;        /* pid of the current task (user-space thread id) */
	__u32 fd;         /* sharing: primary descriptor (see table), else DUPCACHE_FD_NONE */
	__u32 fd2;        /* sharing: second descriptor, else DUPCACHE_FD_NONE */
	__u32 aux;        /* sharing: kind-specific word (see table) */
	__u8 kind;        /* enum dupcache_event_kind */
	__u8 flags;       /* enum dupcache_event_flags */
	__u16 cpu;        /* CPU the record was made on (NR_CPUS is at most 8192) */
	__u8 pad[4];      /* zero; keeps comm and the struct size 8-byte aligned */
	__u8 comm[16];    /* current->comm, NUL-terminated (TASK_COMM_LEN) */
	__u64 ts_end_ns;  /* runs: when the run was flushed; else == ts_ns */
};

/*
 * The open run of one CPU (PERCPU_ARRAY "runs", one slot). Written only by programs
 * running on that CPU. busy is held while a program works on the slot; a program that finds it
 * held (it interrupted or preempted the holder) leaves the slot alone and emits directly, and
 * dc_flush returns 1 ("busy, try again"). User space reads the map only to learn which CPUs
 * have an open run (host != 0) and so need a dc_flush.
 */
struct dupcache_run {
	__u64 host;       /* struct inode * of the open run (kind: ev.kind); 0 = none */
	__u64 sb;         /* its super_block *: with ino and generation, guards against a freed
			   * inode whose memory now holds another one */
	__u64 next_index; /* page index that would extend the run */
	__u64 memcg_data; /* folio->memcg_data of the run's folios (charge must match) */
	__u64 folios;     /* folios that went into runs on this CPU so far (statistics) */
	__u8 busy;
	__u8 pad[7];
	struct dupcache_event ev; /* the record to emit; nr_pages grows with the run */
};

/*
 * Per-CPU counters, one PERCPU_ARRAY slot; user space sums over CPUs. Plain (non-atomic)
 * increments: a CPU's slot is only written by programs running on that CPU.
 */
struct dupcache_counters {
	__u64 emitted[DUPCACHE_EV_KIND_SLOTS]; /* records submitted to the ring buffer, by kind */
	__u64 drops[DUPCACHE_EV_KIND_SLOTS];   /* ring buffer full (reserve failed), by kind */
	__u64 filtered_dev;    /* hook fired for a filesystem not in watched_devs */
	/* The two below count only on watched filesystems (all, without a filter). */
	__u64 filtered_nonreg; /* host is not a regular file (block device cache, ...) */
	__u64 filtered_internal; /* btrfs-internal inode, not in a subvolume: btree inode (all
				  * metadata), free-space cache, data relocation tree */
	__u64 no_host;         /* folio without mapping or host inode: skipped */
	__u64 fd_unresolved;   /* sharing syscall whose fd did not resolve to a file */
};

#endif /* DUPCACHE_ABI_H */
