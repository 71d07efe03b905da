// SPDX-License-Identifier: GPL-2.0-only
/*
 * dupcache kernel side: page-cache insert/remove, folio dirtying and extent-sharing syscalls,
 * streamed to user space through one ring buffer. Shared layout: dupcache_abi.h.
 *
 * Three interchangeable sets of page-cache hooks; user space enables exactly one with
 * bpf_program__set_autoload() (src/trace/probe.cpp checks them, tracer.cpp tries them in order):
 *   1. fentry/fexit on the page-cache functions — cheapest, but refused (EPERM) on some kernels
 *   2. tp_btf on filemap:mm_filemap_{add_to,delete_from}_page_cache — BTF-typed tracepoints
 *   3. raw_tp on the same tracepoints — oldest interface, untyped arguments
 * Folio events go through run_folio_event(), which merges consecutive folios of one file and one
 * kind into one record per CPU (struct dupcache_run; flushed by dc_flush from user space), or,
 * when not coalescing, emit_folio_event(), one record per folio. Each body exists once but is compiled in two read
 * modes (enum dc_read, core_fixes.bpf.h): paths 1 and 2 load kernel fields directly, path 3 and the syscall
 * tracepoints go through bpf_probe_read_kernel(). Kernel differences: core_fixes.bpf.h.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "core_fixes.bpf.h"
#include "dupcache_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* Settings, fixed between open and load (see tracer.cpp). */
const volatile __u32 abi_version = DUPCACHE_BPF_ABI_VERSION;
const volatile bool filter_devs = false; /* only report filesystems listed in watched_devs */
/* Wake the consumer only once this many bytes wait in the ring buffer (0: after every event).
 * A wakeup per event costs a context switch per page read; the consumer polls on a timeout
 * anyway, which bounds the latency. */
const volatile __u64 wakeup_bytes = 0;
/* Merge consecutive insertions of one file on one CPU into one CACHE_ADD record (struct
 * dupcache_run). Off when user space cannot run dc_flush on a chosen CPU (see tracer.cpp). */
const volatile bool coalesce = false;
/* FS_IOC_FIEMAP records only when asked (dupcache trace): they change nothing, and a live model's
 * own seed makes one per cached file. */
const volatile bool fiemap_events = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	/* Placeholder: user space sets the real size with bpf_map__set_max_entries(). */
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DUPCACHE_MAX_WATCHED_DEVS);
	__type(key, __u32);  /* s_dev, kernel encoding */
	__type(value, __u8); /* unused */
} watched_devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dupcache_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dupcache_run);
} runs SEC(".maps");

/* Sharing records made at syscall entry, held until the syscall returns (key: pid_tgid). The
 * kernel has not yet cloned, deduped or truncated at entry, and a clone can take long (btrfs
 * writes the source's dirty range back first): a consumer that re-read extents on the entry
 * record could read them before the change and keep the old ones. Emitted at exit, a record
 * says the change is done. Sized for that many threads inside such a syscall at once; beyond,
 * the record is emitted at entry. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct dupcache_event);
} share_pending SEC(".maps");

/* Scratch for building a sharing record: 128 bytes are too many for the BPF stack beside the
 * argument structs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dupcache_event);
} share_scratch SEC(".maps");

/* Keeps clang from moving stores to the run slot across the busy flag. Only this CPU's own
 * interrupts (dc_flush arrives by IPI) or a task that preempted an fentry program can see the
 * slot half-written, and both see this CPU's stores in program order. */
#define dc_barrier() asm volatile("" ::: "memory")

/* Not in BTF: macros and uapi values. */
#define BTRFS_SUPER_MAGIC 0x9123683EUL
#define S_IFMT 00170000
#define S_IFREG 0100000
#define DC_ISREG(m) (((m) & S_IFMT) == S_IFREG)

/* ioctl numbers from include/uapi/linux/fs.h (_IOW/_IOWR encodings, identical on all archs
 * that use the generic ioctl layout, x86 included). tests/bpf checks them against <linux/fs.h>
 * indirectly by issuing each ioctl and expecting its event. */
#define DC_FICLONE 0x40049409u       /* _IOW(0x94, 9, int) */
#define DC_FICLONERANGE 0x4020940du  /* _IOW(0x94, 13, struct file_clone_range) */
#define DC_FIDEDUPERANGE 0xc0189436u /* _IOWR(0x94, 54, struct file_dedupe_range) */
#define DC_FS_IOC_FIEMAP 0xc020660bu /* _IOWR('f', 11, struct fiemap) */

/* memcg_data low bits (enum memcg_data_flags, include/linux/memcontrol.h). Their values have
 * not changed since v5.11; only the name of bit 0 did (MEMCG_DATA_OBJCGS became
 * MEMCG_DATA_OBJEXTS in v6.10). */
#define DC_MEMCG_DATA_OBJEXTS 1UL /* slab object-extension vector, never a page-cache folio */
#define DC_MEMCG_DATA_KMEM 2UL    /* points to a struct obj_cgroup, not a mem_cgroup */
#define DC_MEMCG_DATA_FLAGS_MASK 3UL

/* Uapi argument structs read from user memory; fixed ABI, so no CO-RE needed. */
struct dc_file_clone_range {
	__s64 src_fd;
	__u64 src_offset;
	__u64 src_length;
	__u64 dest_offset;
};

struct dc_file_dedupe_range_head {
	__u64 src_offset;
	__u64 src_length;
	__u16 dest_count;
	__u16 reserved1;
	__u32 reserved2;
};

struct dc_file_dedupe_range_info {
	__s64 dest_fd;
	__u64 dest_offset;
	__u64 bytes_deduped;
	__s32 status;
	__u32 reserved;
};

struct dc_fiemap_head {
	__u64 fm_start;
	__u64 fm_length;
	__u32 fm_flags;
	__u32 fm_mapped_extents;
	__u32 fm_extent_count;
	__u32 fm_reserved;
};

static __always_inline __u64 wakeup_flags(void)
{
	if (!wakeup_bytes)
		return 0;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void submit_event(struct dupcache_event *e)
{
	bpf_ringbuf_submit(e, wakeup_flags());
}

static __always_inline struct dupcache_counters *counters_slot(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&counters, &zero);
}

static __always_inline struct dupcache_run *run_slot(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&runs, &zero);
}

/* Emits this CPU's open run, if any. The caller holds run->busy. */
static __always_inline void flush_run(struct dupcache_run *run, struct dupcache_counters *c)
{
	if (!run->host)
		return;
	run->host = 0;
	run->ev.ts_end_ns = bpf_ktime_get_ns();
	if (bpf_ringbuf_output(&events, &run->ev, sizeof(run->ev), wakeup_flags()))
		c->drops[run->ev.kind & (DUPCACHE_EV_KIND_SLOTS - 1)]++;
	else
		c->emitted[run->ev.kind & (DUPCACHE_EV_KIND_SLOTS - 1)]++;
}

/* Takes the slot and flushes it; false when it is held (by the program this one interrupted
 * or preempted, which flushes or extends its run later). */
static __always_inline bool try_flush_run(struct dupcache_run *run, struct dupcache_counters *c)
{
	if (run->busy)
		return false;
	run->busy = 1;
	dc_barrier();
	flush_run(run, c);
	dc_barrier();
	run->busy = 0;
	return true;
}

/* Before a record of another kind leaves this CPU: keeps one CPU's records in order. Returns
 * DUPCACHE_EVF_UNORDERED when it could not. */
static __always_inline __u8 flush_before_emit(struct dupcache_counters *c)
{
	struct dupcache_run *run;

	if (!coalesce)
		return 0;
	run = run_slot();
	if (!run)
		return 0;
	return try_flush_run(run, c) ? 0 : DUPCACHE_EVF_UNORDERED;
}

static __always_inline bool dev_watched(__u32 dev)
{
	if (!filter_devs)
		return true;
	return bpf_map_lookup_elem(&watched_devs, &dev) != NULL;
}

/* memcg_data (flag bits included, not 0, not OBJEXTS) -> cgroup id, with loads typed by
 * bpf_rdonly_cast(). Only for DC_DIRECT programs, behind dc_have_rdonly_cast(). */
static __always_inline __u64 memcg_data_cgroup_id_cast(unsigned long data)
{
	void *p = (void *)(data & ~DC_MEMCG_DATA_FLAGS_MASK);
	struct mem_cgroup *memcg;

	if (data & DC_MEMCG_DATA_KMEM) {
		struct obj_cgroup *objcg = bpf_rdonly_cast(p, bpf_core_type_id_kernel(struct obj_cgroup));

		memcg = objcg->memcg;
	} else {
		memcg = bpf_rdonly_cast(p, bpf_core_type_id_kernel(struct mem_cgroup));
	}
	if (!memcg)
		return 0;
	return kernfs_id(memcg->css.cgroup->kn, DC_DIRECT);
}

/* memcg the folio is charged to -> its cgroup id (the id cgroup v2 shows as the directory's
 * inode number and name_to_handle_at() returns). Past memcg_data the pointers come from an
 * integer: typed with bpf_rdonly_cast() where the program and the kernel allow it, else
 * probe-read. */
static __always_inline __u64 folio_cgroup_id(struct folio *folio, enum dc_read m)
{
	struct mem_cgroup *memcg;
	unsigned long data;

	if (!bpf_core_field_exists(folio->memcg_data)) /* CONFIG_MEMCG=n */
		return 0;
	data = DC_RD(m, folio, memcg_data);
	if (!data || (data & DC_MEMCG_DATA_OBJEXTS))
		return 0;
	if (m == DC_DIRECT && dc_have_rdonly_cast())
		return memcg_data_cgroup_id_cast(data);
	if (data & DC_MEMCG_DATA_KMEM) {
		struct obj_cgroup *objcg = (void *)(data & ~DC_MEMCG_DATA_FLAGS_MASK);

		memcg = BPF_CORE_READ(objcg, memcg);
	} else {
		memcg = (void *)(data & ~DC_MEMCG_DATA_FLAGS_MASK);
	}
	if (!memcg)
		return 0;
	return kernfs_id(BPF_CORE_READ(memcg, css.cgroup, kn), DC_PROBE);
}

struct inode_ident {
	__u64 ino;
	__u64 subvol_id;
	__u32 dev;
	__u32 generation;
	__u8 flags;
};

enum ident_result {
	IDENT_OK = 0,
	IDENT_NOT_REGULAR,
	IDENT_NOT_WATCHED,
	IDENT_INTERNAL,
};

/* The kernel's is_fstree(): the top-level tree (5) or a subvolume/snapshot id (256 and up,
 * below the qgroup-level bits). Every other tree that owns a page cache is btrfs-internal: the
 * btree inode (ino 1 in the tree root, caches all metadata), v1 free-space-cache inodes (tree
 * root, S_IFREG), inodes of the data relocation tree (-9ULL, S_IFREG). */
#define DC_BTRFS_BTREE_INODE_OBJECTID 1
static __always_inline bool btrfs_is_fs_tree(__u64 root_id)
{
	return root_id == 5 || (root_id >= 256 && (root_id >> 48) == 0);
}

/*
 * Order matters. The device filter comes first (cheapest, and it keeps the other counters about
 * watched filesystems). On btrfs the tree is checked before the mode: the btree inode never gets
 * an i_mode of its own (btrfs_init_btree_inode() does not set one, and inode_init_always() does
 * not clear the recycled slab object's), so it looks S_IFREG or not depending on the previous
 * user of the memory — seen both ways on 6.18. The tree id is the reliable test.
 */
static __always_inline enum ident_result inode_identity(struct inode *inode, struct inode_ident *id,
							enum dc_read m)
{
	struct super_block *sb;
	umode_t mode;

	sb = DC_RD(m, inode, i_sb);
	id->dev = DC_RD(m, sb, s_dev);
	if (!dev_watched(id->dev))
		return IDENT_NOT_WATCHED;
	id->subvol_id = 0;
	id->flags = DUPCACHE_EVF_IDENTITY;
	id->ino = DC_RD(m, inode, i_ino);
	if (DC_RD(m, sb, s_magic) == BTRFS_SUPER_MAGIC) {
		if (btrfs_subvol(inode, &id->subvol_id)) {
			/* No btrfs types in BTF: at least keep the metadata cache out. */
			if (id->ino == DC_BTRFS_BTREE_INODE_OBJECTID)
				return IDENT_INTERNAL;
			id->flags |= DUPCACHE_EVF_SUBVOL_UNKNOWN;
		} else if (!btrfs_is_fs_tree(id->subvol_id)) {
			return IDENT_INTERNAL;
		}
	}
	mode = DC_RD(m, inode, i_mode);
	if (!DC_ISREG(mode))
		return IDENT_NOT_REGULAR;
	id->generation = DC_RD(m, inode, i_generation);
	return IDENT_OK;
}

static __always_inline void fill_task(struct dupcache_event *e)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

static __always_inline void count_skip(struct dupcache_counters *c, enum ident_result r)
{
	if (r == IDENT_NOT_REGULAR)
		c->filtered_nonreg++;
	else if (r == IDENT_NOT_WATCHED)
		c->filtered_dev++;
	else if (r == IDENT_INTERNAL)
		c->filtered_internal++;
}

static __always_inline unsigned long folio_memcg_data(struct folio *folio, enum dc_read m)
{
	if (!bpf_core_field_exists(folio->memcg_data)) /* CONFIG_MEMCG=n */
		return 0;
	return DC_RD(m, folio, memcg_data);
}

/* Everything a page-cache record says about its folio; identity already checked. */
static __always_inline void fill_folio_event(struct dupcache_event *e, __u8 kind, struct folio *folio,
					     const struct inode_ident *id, __u64 index, __u32 nr,
					     enum dc_read m)
{
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->ts_end_ns = e->ts_ns;
	e->kind = kind;
	e->flags = id->flags;
	e->dev = id->dev;
	e->ino = id->ino;
	e->generation = id->generation;
	e->subvol_id = id->subvol_id;
	e->index = index;
	e->nr_pages = nr;
	e->cgroup_id = folio_cgroup_id(folio, m);
	e->fd = DUPCACHE_FD_NONE;
	e->fd2 = DUPCACHE_FD_NONE;
	e->cpu = (__u16)bpf_get_smp_processor_id();
	fill_task(e);
}

static __always_inline struct inode *folio_host(struct folio *folio, struct address_space *mapping,
						enum dc_read m)
{
	if (!mapping)
		mapping = DC_RD(m, folio, mapping);
	return mapping ? DC_RD(m, mapping, host) : NULL;
}

/* mapping: pass it when the hook has it; NULL reads folio->mapping, which the page-cache
 * tracepoints guarantee is set (add: after insertion; delete: before page_cache_delete()
 * clears it). m: DC_DIRECT only when folio and mapping are BTF-typed (see enum dc_read).
 * One record per folio, emitted at once: when not coalescing, or when the run slot is held. */
static __always_inline int emit_folio_event(__u8 kind, struct folio *folio,
					    struct address_space *mapping, enum dc_read m)
{
	struct dupcache_counters *c = counters_slot();
	struct dupcache_event *e;
	struct inode_ident id;
	struct inode *host;
	enum ident_result r;
	__u8 unordered;

	if (!c)
		return 0;
	host = folio_host(folio, mapping, m);
	if (!host) {
		c->no_host++;
		return 0;
	}
	r = inode_identity(host, &id, m);
	if (r != IDENT_OK) {
		count_skip(c, r);
		return 0;
	}
	unordered = flush_before_emit(c);

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		c->drops[kind]++;
		return 0;
	}
	fill_folio_event(e, kind, folio, &id, DC_RD(m, folio, index), folio_pages(folio, m), m);
	e->flags |= unordered;
	submit_event(e);
	c->emitted[kind]++;
	return 0;
}

/*
 * A folio event, coalesced: a folio that continues this CPU's open run (same kind, same inode,
 * next index, same memcg) only grows it, which costs a handful of loads of lines the kernel
 * just touched. Anything else flushes the run and opens a new one. This is what keeps tracing
 * cheap where every 4 KiB page is its own folio (btrfs on 6.18): one record per run of a
 * sequential read, eviction (fadvise, truncate) or write, not per page.
 */
static __always_inline int run_folio_event(__u8 kind, struct folio *folio, struct address_space *mapping,
					   enum dc_read m)
{
	struct dupcache_counters *c;
	struct dupcache_run *run;
	struct inode_ident id;
	struct inode *host;
	struct super_block *sb;
	enum ident_result r;
	unsigned long memcg_data;
	__u64 index;
	__u32 nr;

	if (!coalesce)
		return emit_folio_event(kind, folio, mapping, m);
	run = run_slot();
	if (!run || run->busy)
		return emit_folio_event(kind, folio, mapping, m);
	run->busy = 1;
	dc_barrier();

	host = folio_host(folio, mapping, m);
	index = DC_RD(m, folio, index);
	nr = folio_pages(folio, m);
	memcg_data = folio_memcg_data(folio, m);
	if (host && run->host == (__u64)host && run->next_index == index && run->memcg_data == memcg_data &&
	    run->ev.kind == kind) {
		sb = DC_RD(m, host, i_sb);
		if (run->sb == (__u64)sb && run->ev.ino == DC_RD(m, host, i_ino) &&
		    run->ev.generation == DC_RD(m, host, i_generation) && run->ev.nr_pages + nr > run->ev.nr_pages) {
			run->ev.nr_pages += nr;
			run->next_index = index + nr;
			run->folios++;
			goto out;
		}
	}

	c = counters_slot();
	if (!c)
		goto out;
	if (!host) {
		c->no_host++;
		goto out;
	}
	r = inode_identity(host, &id, m);
	if (r != IDENT_OK) {
		count_skip(c, r); /* the open run stays open: nothing was emitted */
		goto out;
	}
	flush_run(run, c);
	fill_folio_event(&run->ev, kind, folio, &id, index, nr, m);
	run->sb = (__u64)DC_RD(m, host, i_sb);
	run->next_index = index + nr;
	run->memcg_data = memcg_data;
	run->folios++;
	run->host = (__u64)host;
out:
	dc_barrier();
	run->busy = 0;
	return 0;
}

/* ---- path 1: fentry/fexit ---------------------------------------------------------------- */

/*
 * Where trampolines are refused (EPERM at load, before the verifier runs), nothing would ever
 * check these bodies. tests/bpf builds a second skeleton with DUPCACHE_FENTRY_AS_RAW_TP, which
 * turns them into raw_tp programs (same u64-array context) so the verifier sees them on every
 * kernel; that object is only loaded, never attached.
 */
#ifdef DUPCACHE_FENTRY_AS_RAW_TP
#define DC_SEC_FEXIT(fn) SEC("raw_tp/" fn)
#define DC_SEC_FENTRY(fn) SEC("raw_tp/" fn)
/* As raw_tp the arguments are untyped, so that object reads with probes. The DC_DIRECT body it
 * leaves unchecked is the one the tp_btf programs load with (tests/bpf loads those too). */
#define DC_FENTRY_READ DC_PROBE
#else
#define DC_SEC_FEXIT(fn) SEC("fexit/" fn)
#define DC_SEC_FENTRY(fn) SEC("fentry/" fn)
#define DC_FENTRY_READ DC_DIRECT
#endif

/* fexit, not fentry: at entry the folio is not in the mapping yet (->mapping and ->index are
 * set inside __filemap_add_folio) and the insertion can still fail (-EEXIST on a race, memcg
 * charge failure). Only ret == 0 is a page-cache insertion. */
DC_SEC_FEXIT("filemap_add_folio")
int BPF_PROG(dc_add_fexit, struct address_space *mapping, struct folio *folio, unsigned long index,
	     gfp_t gfp, int ret)
{
	if (ret)
		return 0;
	return run_folio_event(DUPCACHE_EV_CACHE_ADD, folio, mapping, DC_FENTRY_READ);
}

/* Single-folio removal: reclaim (__remove_mapping), invalidation, filemap_remove_folio. */
DC_SEC_FENTRY("__filemap_remove_folio")
int BPF_PROG(dc_delete_fentry, struct folio *folio, void *shadow)
{
	return run_folio_event(DUPCACHE_EV_CACHE_DELETE, folio, NULL, DC_FENTRY_READ);
}

/* Truncation removes folios in batches through delete_from_page_cache_batch(), which never
 * calls __filemap_remove_folio (the tracepoint fires in both). Without this hook the fentry path
 * would miss every truncate. */
#define DC_FOLIO_BATCH_MAX 31 /* PAGEVEC_SIZE */

DC_SEC_FENTRY("delete_from_page_cache_batch")
int BPF_PROG(dc_delete_batch_fentry, struct address_space *mapping, struct folio_batch *fbatch)
{
	unsigned int nr = DC_RD(DC_FENTRY_READ, fbatch, nr);

	for (unsigned int i = 0; i < DC_FOLIO_BATCH_MAX; i++) {
		struct folio *folio = NULL;

		if (i >= nr)
			break;
		/* A variable index into a BTF-typed array is refused, so the folio pointer comes
		 * from a probe read and is untyped: DC_PROBE whatever the program type. */
		bpf_probe_read_kernel(&folio, sizeof(folio), &fbatch->folios[i]);
		if (folio)
			run_folio_event(DUPCACHE_EV_CACHE_DELETE, folio, mapping, DC_PROBE);
	}
	return 0;
}

/* ---- path 2: tp_btf ---------------------------------------------------------------------- */

/* TP_PROTO(struct folio *folio) for both (btf_trace_mm_filemap_*_page_cache). */
SEC("tp_btf/mm_filemap_add_to_page_cache")
int BPF_PROG(dc_add_btf, struct folio *folio)
{
	return run_folio_event(DUPCACHE_EV_CACHE_ADD, folio, NULL, DC_DIRECT);
}

SEC("tp_btf/mm_filemap_delete_from_page_cache")
int BPF_PROG(dc_delete_btf, struct folio *folio)
{
	return run_folio_event(DUPCACHE_EV_CACHE_DELETE, folio, NULL, DC_DIRECT);
}

/* TP_PROTO(struct folio *folio, struct address_space *mapping); fires from
 * folio_account_dirtied() only on the clean -> dirty transition. */
SEC("tp_btf/writeback_dirty_folio")
int BPF_PROG(dc_dirty_btf, struct folio *folio, struct address_space *mapping)
{
	return run_folio_event(DUPCACHE_EV_FOLIO_DIRTY, folio, mapping, DC_DIRECT);
}

/* ---- path 3: raw_tp (same arguments, untyped) -------------------------------------------- */

SEC("raw_tp/mm_filemap_add_to_page_cache")
int BPF_PROG(dc_add_raw, struct folio *folio)
{
	return run_folio_event(DUPCACHE_EV_CACHE_ADD, folio, NULL, DC_PROBE);
}

SEC("raw_tp/mm_filemap_delete_from_page_cache")
int BPF_PROG(dc_delete_raw, struct folio *folio)
{
	return run_folio_event(DUPCACHE_EV_CACHE_DELETE, folio, NULL, DC_PROBE);
}

SEC("raw_tp/writeback_dirty_folio")
int BPF_PROG(dc_dirty_raw, struct folio *folio, struct address_space *mapping)
{
	return run_folio_event(DUPCACHE_EV_FOLIO_DIRTY, folio, mapping, DC_PROBE);
}

/* ---- flushing ------------------------------------------------------------------------------ */

/*
 * Never attached: user space runs it with BPF_PROG_TEST_RUN and BPF_F_TEST_RUN_ON_CPU (v5.10),
 * which executes it on the chosen CPU (by IPI, interrupts off), so it sees that CPU's run slot.
 * Returns 1 when the slot is held by the program it interrupted: the caller tries again.
 */
SEC("raw_tp/dupcache_flush")
int dc_flush(void *ctx)
{
	struct dupcache_counters *c = counters_slot();
	struct dupcache_run *run = run_slot();

	if (!c || !run)
		return 0;
	return try_flush_run(run, c) ? 0 : 1;
}

/* ---- sharing changes: syscall entry tracepoints ------------------------------------------ */

/* current->files->fdt->fd[fd], read without the RCU lock like every tracer does: at syscall
 * entry the table belongs to the calling task, and a racing close() only costs identity. */
static __always_inline struct file *fd_file(__u32 fd)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct files_struct *files;
	struct fdtable *fdt;
	struct file **fds;
	struct file *file = NULL;

	files = BPF_CORE_READ(task, files);
	if (!files)
		return NULL;
	fdt = BPF_CORE_READ(files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (!fds)
		return NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

struct share_args {
	__u64 off;
	__u64 off2;
	__u64 len;
	__u32 fd;
	__u32 fd2;
	__u32 aux;
	__u8 flags;
};

/* Emits a held sharing record, stamped now. */
_Static_assert(DUPCACHE_EV_KIND_SLOTS == 16, "emit_held_share masks kind with 15");
static __always_inline int emit_held_share(struct dupcache_counters *c, const struct dupcache_event *held)
{
	struct dupcache_event *e;
	__u8 unordered;
	__u64 kind = held->kind;

	/* Bounded for the verifier in the register it uses: clang drops a plain mask or compare
	 * here (the caller compared kind already), and the verifier lost that bound. */
	asm volatile("%0 &= 15" : "+r"(kind));

	unordered = flush_before_emit(c);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		c->drops[kind]++;
		return 0;
	}
	__builtin_memcpy(e, held, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->ts_end_ns = e->ts_ns;
	e->flags |= unordered;
	e->cpu = (__u16)bpf_get_smp_processor_id();
	submit_event(e);
	c->emitted[kind]++;
	return 0;
}

/* Sharing events keep going when the fd does not resolve (no identity): user space then knows
 * *that* something changed sharing and who did it. Resolved files on unwatched filesystems and
 * non-regular files are dropped like page-cache events. The record is built here, at syscall
 * entry (identity and arguments are read while the fds and user memory are the caller's), and
 * held in share_pending until the syscall returns (dc_sys_exit_*). */
static __always_inline int emit_share_event(__u8 kind, struct file *file, struct share_args *a)
{
	struct dupcache_counters *c = counters_slot();
	struct inode_ident id = {};
	struct dupcache_event *e;
	struct inode *inode;
	enum ident_result r;
	__u64 pid_tgid;
	__u32 zero = 0;

	if (!c)
		return 0;
	inode = file ? BPF_CORE_READ(file, f_inode) : NULL;
	if (inode) {
		r = inode_identity(inode, &id, DC_PROBE);
		if (r != IDENT_OK) {
			count_skip(c, r);
			return 0;
		}
	} else if (a->fd != DUPCACHE_FD_NONE) {
		c->fd_unresolved++;
	}
	e = bpf_map_lookup_elem(&share_scratch, &zero);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->flags = id.flags | a->flags;
	e->dev = id.dev;
	e->ino = id.ino;
	e->generation = id.generation;
	e->subvol_id = id.subvol_id;
	e->fd = a->fd;
	e->fd2 = a->fd2;
	e->off = a->off;
	e->off2 = a->off2;
	e->len = a->len;
	e->aux = a->aux;
	fill_task(e);
	pid_tgid = bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&share_pending, &pid_tgid, e, BPF_ANY) == 0)
		return 0;
	/* No room to hold it: emitted now, before the change (as the record says: ts_ns is then
	 * the entry time, and user space re-reads after its settle delay). */
	return emit_held_share(c, e);
}

/* sys_enter_ioctl format: fd @16, cmd @24, arg @32 (args[0..2]). */
SEC("tp/syscalls/sys_enter_ioctl")
int dc_sys_ioctl(struct trace_event_raw_sys_enter *ctx)
{
	__u32 fd = (__u32)ctx->args[0];
	__u32 cmd = (__u32)ctx->args[1];
	const void *uarg = (const void *)ctx->args[2];
	struct share_args a = { .fd = fd, .fd2 = DUPCACHE_FD_NONE };
	__u8 kind;

	switch (cmd) {
	case DC_FICLONE:
		kind = DUPCACHE_EV_SHARE_CLONE;
		a.fd2 = (__u32)ctx->args[2];
		break;
	case DC_FICLONERANGE: {
		struct dc_file_clone_range r;

		kind = DUPCACHE_EV_SHARE_CLONE_RANGE;
		if (bpf_probe_read_user(&r, sizeof(r), uarg)) {
			a.flags |= DUPCACHE_EVF_ARGS_UNREAD;
			break;
		}
		a.fd2 = (__u32)r.src_fd;
		a.off = r.dest_offset;
		a.off2 = r.src_offset;
		a.len = r.src_length;
		break;
	}
	case DC_FIDEDUPERANGE: {
		struct dc_file_dedupe_range_head h;
		struct dc_file_dedupe_range_info info;

		kind = DUPCACHE_EV_SHARE_DEDUPE;
		if (bpf_probe_read_user(&h, sizeof(h), uarg)) {
			a.flags |= DUPCACHE_EVF_ARGS_UNREAD;
			break;
		}
		a.off = h.src_offset;
		a.len = h.src_length;
		a.aux = h.dest_count;
		if (!h.dest_count)
			break;
		if (bpf_probe_read_user(&info, sizeof(info), (const char *)uarg + sizeof(h))) {
			a.flags |= DUPCACHE_EVF_ARGS_UNREAD;
			break;
		}
		a.fd2 = (__u32)info.dest_fd;
		a.off2 = info.dest_offset;
		break;
	}
	case DC_FS_IOC_FIEMAP: {
		struct dc_fiemap_head fm;

		if (!fiemap_events)
			return 0;
		kind = DUPCACHE_EV_SHARE_FIEMAP;
		if (bpf_probe_read_user(&fm, sizeof(fm), uarg)) {
			a.flags |= DUPCACHE_EVF_ARGS_UNREAD;
			break;
		}
		a.off = fm.fm_start;
		a.len = fm.fm_length;
		a.aux = fm.fm_flags;
		break;
	}
	default:
		return 0;
	}
	/* Identity is that of the file whose extents change: for a dedupe its (first) destination,
	 * which may keep its cached pages, now placed on the source's blocks. */
	if (kind == DUPCACHE_EV_SHARE_DEDUPE)
		return emit_share_event(kind, a.fd2 == DUPCACHE_FD_NONE ? NULL : fd_file(a.fd2), &a);
	return emit_share_event(kind, fd_file(fd), &a);
}

/* sys_enter_copy_file_range format: fd_in @16, off_in @24, fd_out @32, off_out @40, len @48,
 * flags @56 (args[0..5]). */
SEC("tp/syscalls/sys_enter_copy_file_range")
int dc_sys_copy_file_range(struct trace_event_raw_sys_enter *ctx)
{
	const __s64 *off_in = (const __s64 *)ctx->args[1];
	const __s64 *off_out = (const __s64 *)ctx->args[3];
	struct share_args a = {
		.fd = (__u32)ctx->args[2],
		.fd2 = (__u32)ctx->args[0],
		.len = ctx->args[4],
		.aux = (__u32)ctx->args[5],
	};
	struct file *out = fd_file(a.fd);
	__s64 v;

	if (off_out) {
		if (bpf_probe_read_user(&v, sizeof(v), off_out))
			a.flags |= DUPCACHE_EVF_ARGS_UNREAD;
		else
			a.off = v;
	} else {
		a.flags |= DUPCACHE_EVF_OFF_IS_FPOS;
		if (out)
			a.off = BPF_CORE_READ(out, f_pos);
	}
	if (off_in) {
		if (bpf_probe_read_user(&v, sizeof(v), off_in))
			a.flags |= DUPCACHE_EVF_ARGS_UNREAD;
		else
			a.off2 = v;
	} else {
		a.flags |= DUPCACHE_EVF_OFF2_IS_FPOS;
	}
	return emit_share_event(DUPCACHE_EV_SHARE_COPY_RANGE, out, &a);
}

/* sys_enter_ftruncate format: fd @16, length @24. */
SEC("tp/syscalls/sys_enter_ftruncate")
int dc_sys_ftruncate(struct trace_event_raw_sys_enter *ctx)
{
	struct share_args a = {
		.fd = (__u32)ctx->args[0],
		.fd2 = DUPCACHE_FD_NONE,
		.off = ctx->args[1],
	};

	return emit_share_event(DUPCACHE_EV_SHARE_TRUNCATE, fd_file(a.fd), &a);
}

/* sys_enter_truncate format: path @16, length @24. The path is not resolved here. */
SEC("tp/syscalls/sys_enter_truncate")
int dc_sys_truncate(struct trace_event_raw_sys_enter *ctx)
{
	struct share_args a = {
		.fd = DUPCACHE_FD_NONE,
		.fd2 = DUPCACHE_FD_NONE,
		.off = ctx->args[1],
	};

	return emit_share_event(DUPCACHE_EV_SHARE_TRUNCATE, NULL, &a);
}

/* The fallocate(2) modes that move or free the blocks of existing data (linux/falloc.h):
 * PUNCH_HOLE, COLLAPSE_RANGE, ZERO_RANGE, INSERT_RANGE, UNSHARE_RANGE. */
#define DC_FALLOC_MOVES_DATA (0x02 | 0x08 | 0x10 | 0x20 | 0x40)

/* sys_enter_fallocate format: fd @16, mode @24, offset @32, len @40. */
SEC("tp/syscalls/sys_enter_fallocate")
int dc_sys_fallocate(struct trace_event_raw_sys_enter *ctx)
{
	struct share_args a = {
		.fd = (__u32)ctx->args[0],
		.fd2 = DUPCACHE_FD_NONE,
		.aux = (__u32)ctx->args[1],
		.off = ctx->args[2],
		.len = ctx->args[3],
	};

	if (!(a.aux & DC_FALLOC_MOVES_DATA))
		return 0;
	return emit_share_event(DUPCACHE_EV_SHARE_FALLOCATE, fd_file(a.fd), &a);
}

/* ---- sharing changes: syscall exit, where the held records are emitted ------------------ */

/* Emits the record its entry program held for this thread, if the entry was one of kinds
 * [lo, hi] (a thread is in one syscall at a time; a record left behind by a thread whose exit
 * was missed, the programs being attached in between, is replaced by its next entry). */
static __always_inline int emit_at_exit(__u8 lo, __u8 hi)
{
	struct dupcache_counters *c = counters_slot();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct dupcache_event *held;

	held = bpf_map_lookup_elem(&share_pending, &pid_tgid);
	if (!held)
		return 0;
	if (c && held->kind >= lo && held->kind <= hi)
		emit_held_share(c, held);
	bpf_map_delete_elem(&share_pending, &pid_tgid);
	return 0;
}

SEC("tp/syscalls/sys_exit_ioctl")
int dc_sys_exit_ioctl(void *ctx)
{
	return emit_at_exit(DUPCACHE_EV_SHARE_CLONE, DUPCACHE_EV_SHARE_FIEMAP);
}

SEC("tp/syscalls/sys_exit_copy_file_range")
int dc_sys_exit_copy_file_range(void *ctx)
{
	return emit_at_exit(DUPCACHE_EV_SHARE_COPY_RANGE, DUPCACHE_EV_SHARE_COPY_RANGE);
}

SEC("tp/syscalls/sys_exit_ftruncate")
int dc_sys_exit_ftruncate(void *ctx)
{
	return emit_at_exit(DUPCACHE_EV_SHARE_TRUNCATE, DUPCACHE_EV_SHARE_TRUNCATE);
}

SEC("tp/syscalls/sys_exit_truncate")
int dc_sys_exit_truncate(void *ctx)
{
	return emit_at_exit(DUPCACHE_EV_SHARE_TRUNCATE, DUPCACHE_EV_SHARE_TRUNCATE);
}

SEC("tp/syscalls/sys_exit_fallocate")
int dc_sys_exit_fallocate(void *ctx)
{
	return emit_at_exit(DUPCACHE_EV_SHARE_FALLOCATE, DUPCACHE_EV_SHARE_FALLOCATE);
}
