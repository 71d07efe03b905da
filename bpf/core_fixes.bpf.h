/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * CO-RE compatibility layer of bpf/dupcache.bpf.c: every place where kernels differ in a way
 * the programs must handle, in one header as libbpf-tools keeps them (core_fixes.bpf.h), each
 * case naming the kernel change that needed it.
 *
 * Contract: included after vmlinux.h and <bpf/bpf_core_read.h>. Every helper is
 * __always_inline and reads nothing but its arguments; where a helper takes an enum dc_read it
 * must be called with a constant, so that only one read mode is compiled into each program.
 * Adding a case: a ___flavor struct or a bpf_core_*_exists() check, the commit (or version and
 * title) that changed the layout, and a test kernel in tests/guest where one is at hand.
 */
#ifndef DUPCACHE_CORE_FIXES_BPF_H
#define DUPCACHE_CORE_FIXES_BPF_H

/*
 * How the page-cache path reads kernel memory. Every helper below that takes an enum dc_read is
 * __always_inline and is called with a constant, so clang keeps only one side of DC_RD() in each
 * program; the verifier would also prune the other side, as the constant is known to it.
 *
 * DC_DIRECT: tp_btf and fentry/fexit programs get BTF-typed arguments (PTR_TO_BTF_ID), and a
 *   pointer loaded through one is typed too. A plain C load (CO-RE relocated, vmlinux.h types
 *   carry preserve_access_index) becomes a single BPF_PROBE_MEM instruction: a fault reads as 0,
 *   like a failed bpf_probe_read_kernel(), but there is no helper call. That call was ~17 per
 *   event and most of the program's cost.
 * DC_PROBE: raw_tp and the syscall tracepoints get plain u64 arguments, which the verifier does
 *   not let a program dereference; every read is a BPF_CORE_READ (bpf_probe_read_kernel).
 *
 * Pointers the verifier cannot type are read with BPF_CORE_READ in both modes: the container_of
 * step into struct btrfs_inode (a negative offset from a typed inode is refused) and folios
 * fetched from an array with a probe read. The memcg decoded from the integer memcg_data is
 * typed with bpf_rdonly_cast() where the kernel has it (see dc_have_rdonly_cast()); btrfs types
 * are not cast, because bpf_rdonly_cast() takes vmlinux BTF ids and btrfs is a module on most
 * distributions.
 */
enum dc_read {
	DC_PROBE,
	DC_DIRECT,
};

#define DC_RD(mode, p, field) ((mode) == DC_DIRECT ? (p)->field : BPF_CORE_READ(p, field))

/*
 * ___flavor types: field layouts of older kernels. libbpf matches them to the running kernel's
 * types by the name before "___"; a bpf_core_*_exists() check picks the branch and the other
 * branch's relocations are never executed.
 */

/* Commit 53fbef56e07d ("mm: introduce memdesc_flags_t", v6.18): page/folio ->flags became a
 * struct wrapping the unsigned long. Before that, ->flags was the unsigned long itself. */
struct folio___ulong_flags {
	unsigned long flags;
} __attribute__((preserve_access_index));

/* Before v6.15 (David Hildenbrand's folio mapcount rework, which added folio->_nr_pages under
 * NR_PAGES_IN_LARGE_FOLIO) the page count of a large folio lived in the first tail page as
 * _folio_nr_pages (64-bit only). Before v6.6, commit "mm: free up a word in the first tail
 * page" (Matthew Wilcox, August 2023; 3a77b282e256 in linux-next) the order also had its own
 * byte, _folio_order, instead of the low byte of _flags_1. */
struct folio___old_tail {
	unsigned int _folio_nr_pages;
	unsigned char _folio_order;
} __attribute__((preserve_access_index));

/* Before v5.5, commit 67c0496e87d1 ("kernfs: convert kernfs_node->id from union
 * kernfs_node_id to u64"), the cgroup id was a union whose .id member held the same 64-bit
 * value. */
union kernfs_node_id___old {
	struct {
		__u32 ino;
		__u32 generation;
	};
	__u64 id;
} __attribute__((preserve_access_index));

struct kernfs_node___old {
	union kernfs_node_id___old id;
} __attribute__((preserve_access_index));

/*
 * v6.2 "bpf: Add a kfunc for generic type cast": bpf_rdonly_cast() turns any value into an
 * untrusted PTR_TO_BTF_ID of the given vmlinux type, readable with direct loads; the verifier
 * rewrites the call into a register move. The same commit added KF_bpf_rdonly_cast to the
 * verifier's enum special_kfunc_type, which stands in for the kfunc because CO-RE can test for
 * enumerators but not for functions.
 *
 * The weak extern resolves to nothing on older kernels; libbpf 1.1 then leaves the call with
 * btf_id 0, which the verifier accepts in dead code since v5.16 ("bpf: Be conservative while
 * processing invalid kfunc calls"). On v5.5-v5.15 a tp_btf or fentry program containing the
 * call is refused even where the guard makes it dead, and the tracer falls back to raw_tp,
 * whose programs never contain it.
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

static __always_inline bool dc_have_rdonly_cast(void)
{
	return bpf_core_enum_value_exists(enum special_kfunc_type, KF_bpf_rdonly_cast);
}

static __always_inline unsigned long folio_flags_word(struct folio *folio, enum dc_read m)
{
	if (bpf_core_type_exists(memdesc_flags_t))
		return DC_RD(m, folio, flags.f);
	return DC_RD(m, (struct folio___ulong_flags *)folio, flags);
}

/* folio_nr_pages() */
static __always_inline __u32 folio_pages(struct folio *folio, enum dc_read m)
{
	struct folio___old_tail *old = (void *)folio;
	unsigned long head = 1UL << bpf_core_enum_value(enum pageflags, PG_head);
	__u32 order;

	if (!(folio_flags_word(folio, m) & head))
		return 1;
	if (bpf_core_field_exists(folio->_nr_pages))
		return DC_RD(m, folio, _nr_pages);
	if (bpf_core_field_exists(old->_folio_nr_pages))
		return DC_RD(m, old, _folio_nr_pages);
	if (bpf_core_field_exists(old->_folio_order))
		order = DC_RD(m, old, _folio_order);
	else
		order = DC_RD(m, folio, _flags_1) & 0xff;
	/* MAX_PAGE_ORDER is far below 31; the bound keeps the shift defined for the verifier. */
	return order < 31 ? 1U << order : 0;
}

static __always_inline __u64 kernfs_id(struct kernfs_node *kn, enum dc_read m)
{
	if (!kn)
		return 0;
	if (bpf_core_type_exists(union kernfs_node_id___old))
		return DC_RD(m, (struct kernfs_node___old *)kn, id.id);
	return DC_RD(m, kn, id);
}

/*
 * Subvolume of a btrfs inode: BTRFS_I(inode)->root->root_key.objectid (what the kernel's
 * btrfs_root_id() returns). struct btrfs_inode embeds the VFS inode as ->vfs_inode, so
 * container_of with the relocated offset of that member. This path has been stable since
 * btrfs was merged; the existence checks cover kernels whose BTF lacks btrfs types (btrfs
 * not built, or a module without BTF), where the subvolume is reported unknown.
 */
static __always_inline int btrfs_subvol(struct inode *inode, __u64 *subvol)
{
	struct btrfs_inode *bi;
	struct btrfs_root *root;

	if (!bpf_core_type_exists(struct btrfs_inode) ||
	    !bpf_core_field_exists(struct btrfs_inode, vfs_inode) ||
	    !bpf_core_field_exists(struct btrfs_inode, root) ||
	    !bpf_core_field_exists(struct btrfs_root, root_key))
		return -1;
	bi = (void *)((char *)inode - bpf_core_field_offset(struct btrfs_inode, vfs_inode));
	root = BPF_CORE_READ(bi, root);
	if (!root)
		return -1;
	*subvol = BPF_CORE_READ(root, root_key.objectid);
	return 0;
}

#endif /* DUPCACHE_CORE_FIXES_BPF_H */
