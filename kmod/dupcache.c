// SPDX-License-Identifier: GPL-2.0-only
/*
 * dupcache companion module: merges a process's read-only private file mapping onto a canonical
 * copy of the same content, so that every process mapping any reflinked copy shares one set of
 * cached pages and the copies' own pages become unmapped, hence evictable.
 *
 * /dev/dupcache takes DUPCACHE_IOC_MERGE requests (dupcache_kmod.h). A request is checked where it
 * can be in the caller's context (capabilities, the canonical file, the target), then queued as
 * task work on the target, which runs it on its next return to user space: there, in the target's
 * own context, the mapping is checked again (exact range, expected inode, private, not writable,
 * no anonymous pages), both files are denied writers and compared byte for byte, and the mapping
 * is replaced with vm_mmap(MAP_FIXED) of the canonical file at the same offset and protection.
 * The last check of the mapping runs inside vm_mmap, under the mmap_lock held for writing that
 * also covers the replacement (see switch_mapping), so no other thread of the target can make the
 * range writable and write to it in between. The caller waits for the outcome, up to a timeout; a
 * request that timed out is abandoned and does nothing when it finally runs. At most one request
 * is pending per target process and MAX_PENDING in all; stopped and traced targets are refused.
 * Each queued request holds a reference on the caller's /dev/dupcache file, hence on the module
 * (see merge_work for why a file and not module_get).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/completion.h>
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/kdev_t.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/magic.h>
#include <linux/mmap_lock.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/stat.h>
#include <linux/task_work.h>
#include <linux/uaccess.h>

#include "dupcache_kmod.h"

#define DEFAULT_TIMEOUT_MS 5000
#define MAX_TIMEOUT_MS 60000
#define MAX_PENDING 64           /* queued or abandoned requests, all targets together */
#define COMPARE_CHUNK (64 << 10) /* bytes read from each file at a time to compare them */

enum req_state { REQ_QUEUED, REQ_RUNNING, REQ_ABANDONED };

struct merge_req {
	struct callback_head work;
	struct kref ref;
	atomic_t state;
	struct completion done;
	struct file *canonical;
	struct file *wrapper;    /* the canonical copy opened again, passed to vm_mmap: see switch_mapping */
	struct file *pin;        /* the caller's /dev/dupcache file, held while queued */
	struct pid *tgid;        /* the target process, while on the pending list */
	struct list_head pending;
	struct dupcache_merge m;
	int error;
};

static atomic64_t stat_requests, stat_merged, stat_merged_bytes, stat_pending;
static atomic64_t stat_refused[DUPCACHE_R_COUNT];

/* Queued and abandoned requests, to bound them per target and in all. */
static LIST_HEAD(pending_list);
static DEFINE_SPINLOCK(pending_lock);
static unsigned int pending_count;

static int refuse(struct merge_req *r, u32 reason, int error)
{
	r->m.reason = reason;
	return error;
}

static void req_release(struct kref *ref)
{
	struct merge_req *r = container_of(ref, struct merge_req, ref);

	if (r->wrapper)
		fput(r->wrapper);
	fput(r->canonical);
	kfree(r);
}

/* The checks that need the mapping; called with mmap_lock held for reading. */
static int check_vma(struct merge_req *r, struct vm_area_struct *vma)
{
	const unsigned long special = VM_IO | VM_PFNMAP | VM_MIXEDMAP | VM_HUGETLB |
				      VM_UFFD_MISSING | VM_UFFD_WP | VM_UFFD_MINOR;

	if (!vma || vma->vm_start != r->m.start || vma->vm_end != r->m.end)
		return refuse(r, DUPCACHE_R_RANGE, -ENXIO);
	if (!vma->vm_file)
		return refuse(r, DUPCACHE_R_IDENTITY, -ESTALE);
	if (vma->vm_flags & special || !S_ISREG(file_inode(vma->vm_file)->i_mode))
		return refuse(r, DUPCACHE_R_SPECIAL, -EINVAL);
	if (vma->vm_flags & VM_MAYSHARE)
		return refuse(r, DUPCACHE_R_SHARED, -EACCES);
	if (vma->vm_flags & VM_WRITE)
		return refuse(r, DUPCACHE_R_WRITABLE, -EACCES);
	/* A private mapping gets an anon_vma on its first copy-on-write; none means no COW page. */
	if (vma->anon_vma)
		return refuse(r, DUPCACHE_R_COW, -EBUSY);
	return 0;
}

/*
 * Whether bytes [pos, pos + len) of a and b are equal, read through the page cache (which holds
 * what a process mapping either file reads, unflushed writes included). The callers hold both
 * files' write access denied, so neither can change while or after they are compared.
 */
static int same_bytes(struct merge_req *r, struct file *a, struct file *b, loff_t pos, loff_t len)
{
	char *buf = kvmalloc(2 * COMPARE_CHUNK, GFP_KERNEL);
	loff_t end = pos + len, pa, pb;
	int err = 0;

	if (!buf)
		return refuse(r, DUPCACHE_R_CONTENT, -ENOMEM);
	while (pos < end && !err) {
		size_t n = min_t(loff_t, COMPARE_CHUNK, end - pos);
		ssize_t ga, gb;

		if (fatal_signal_pending(current)) {
			err = refuse(r, DUPCACHE_R_NO_PROCESS, -ESRCH);
			break;
		}
		pa = pb = pos;
		ga = kernel_read(a, buf, n, &pa);
		gb = kernel_read(b, buf + COMPARE_CHUNK, n, &pb);
		if (ga < 0 || gb < 0)
			err = refuse(r, DUPCACHE_R_CONTENT, ga < 0 ? (int)ga : (int)gb);
		else if ((size_t)ga != n || (size_t)gb != n || memcmp(buf, buf + COMPARE_CHUNK, n))
			err = refuse(r, DUPCACHE_R_CONTENT, -EILSEQ);
		pos += n;
		cond_resched();
	}
	kvfree(buf);
	return err;
}

/*
 * The switch. vm_mmap() takes the target's mmap_lock for writing and, before it unmaps anything,
 * asks the mapped file's f_op->get_unmapped_area for the address (also for MAP_FIXED). do_mmap
 * and mmap_region are not exported, so that hook is the one place a module can run code under
 * the same write-locked critical section as the replacement: vm_mmap is given r->wrapper (the
 * canonical copy opened again, for this request only) with switch_fops, whose get_unmapped_area
 * checks the mapping a last time and fails the vm_mmap, changing nothing, if it no longer
 * qualifies; switch_mmap then makes the new mapping's file the canonical copy itself
 * (vma_set_file, as overlayfs does) and lets its filesystem set the mapping up. While the lock
 * is held no thread can mprotect the range, fault a copy-on-write page into it, or write to it
 * through /proc/PID/mem or ptrace: the check and the replacement are one atomic step for them.
 */
struct switch_ctx {
	struct list_head node;
	struct merge_req *r;
	struct file *wrapper, *old;
	unsigned long pgoff, vm_flags;
	bool checked;
};

static LIST_HEAD(switching);
static DEFINE_SPINLOCK(switching_lock);

static struct switch_ctx *switch_of(struct file *wrapper)
{
	struct switch_ctx *s, *found = NULL;

	spin_lock(&switching_lock);
	list_for_each_entry(s, &switching, node) {
		if (s->wrapper == wrapper) {
			found = s;
			break;
		}
	}
	spin_unlock(&switching_lock);
	return found;
}

static unsigned long switch_get_area(struct file *wrapper, unsigned long addr, unsigned long len,
				     unsigned long pgoff, unsigned long flags)
{
	struct switch_ctx *s = switch_of(wrapper);
	struct vm_area_struct *vma;

	if (!s || !(flags & MAP_FIXED) || addr != s->r->m.start || len != s->r->m.end - s->r->m.start)
		return -EINVAL;
	mmap_assert_write_locked(current->mm);
	vma = find_vma(current->mm, addr);
	/* Anything that changed since the first checks is another thread of the target at work. */
	if (!vma || vma->vm_start != addr || vma->vm_end != addr + len || vma->vm_file != s->old ||
	    vma->vm_pgoff != s->pgoff || vma->vm_flags != s->vm_flags || vma->anon_vma)
		return refuse(s->r, DUPCACHE_R_RACED, -ECANCELED);
	s->checked = true;
	return addr;
}

static int switch_mmap(struct file *wrapper, struct vm_area_struct *vma)
{
	struct switch_ctx *s = switch_of(wrapper);
	struct file *canonical;

	if (!s || !s->checked) /* never mapped without the last check */
		return -EINVAL;
	canonical = s->r->canonical;
	vma_set_file(vma, canonical);
	return call_mmap(canonical, vma);
}

static const struct file_operations switch_fops = {
	.get_unmapped_area = switch_get_area,
	.mmap = switch_mmap,
};

static int switch_mapping(struct merge_req *r, struct file *old, unsigned long pgoff,
			  unsigned long vm_flags)
{
	struct switch_ctx s = { .r = r, .wrapper = r->wrapper, .old = old, .pgoff = pgoff,
				.vm_flags = vm_flags };
	const struct file_operations *fops = r->wrapper->f_op;
	unsigned long prot, flags, addr;
	int err = 0;

	prot = (vm_flags & VM_READ ? PROT_READ : 0) | (vm_flags & VM_EXEC ? PROT_EXEC : 0);
	flags = MAP_PRIVATE | MAP_FIXED | (vm_flags & VM_LOCKED ? MAP_LOCKED : 0) |
		(vm_flags & VM_NORESERVE ? MAP_NORESERVE : 0);
	spin_lock(&switching_lock);
	list_add(&s.node, &switching);
	spin_unlock(&switching_lock);
	/* Nobody else holds the wrapper: it is in no file table and no mapping. */
	r->wrapper->f_op = &switch_fops;
	addr = vm_mmap(r->wrapper, r->m.start, r->m.end - r->m.start, prot, flags, pgoff << PAGE_SHIFT);
	r->wrapper->f_op = fops;
	spin_lock(&switching_lock);
	list_del(&s.node);
	spin_unlock(&switching_lock);

	if (IS_ERR_VALUE(addr)) {
		/* A refusal of the last check set the reason; anything else is vm_mmap's own. */
		if (r->m.reason == DUPCACHE_OK)
			refuse(r, DUPCACHE_R_MAP_FAILED, 0);
		err = (int)addr;
	} else if (addr != r->m.start) {
		err = refuse(r, DUPCACHE_R_MAP_FAILED, -EFAULT); /* MAP_FIXED does not move */
	}
	return err;
}

/* Runs in the target's context, as current. */
static int do_merge(struct merge_req *r)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	struct file *file;
	struct kstat st;
	unsigned long pgoff, vm_flags;
	struct inode *inode, *cinode = file_inode(r->canonical);
	loff_t pos, len;
	int err;

	if (!mm || (current->flags & PF_EXITING))
		return refuse(r, DUPCACHE_R_NO_PROCESS, -ESRCH);

	mmap_read_lock(mm);
	vma = find_vma(mm, r->m.start);
	err = check_vma(r, vma);
	if (err) {
		mmap_read_unlock(mm);
		return err;
	}
	file = get_file(vma->vm_file);
	pgoff = vma->vm_pgoff;
	vm_flags = vma->vm_flags;
	mmap_read_unlock(mm);

	inode = file_inode(file);
	err = vfs_getattr(&file->f_path, &st, STATX_INO, AT_STATX_SYNC_AS_STAT);
	if (err) {
		err = refuse(r, DUPCACHE_R_IDENTITY, err);
	} else if (new_encode_dev(st.dev) != r->m.expect_dev || st.ino != r->m.expect_ino ||
		   inode->i_generation != r->m.expect_generation) {
		err = refuse(r, DUPCACHE_R_IDENTITY, -ESTALE);
	} else if (cinode->i_sb != inode->i_sb) {
		err = refuse(r, DUPCACHE_R_OTHER_FS, -EXDEV);
	} else if (i_size_read(cinode) != i_size_read(inode)) {
		err = refuse(r, DUPCACHE_R_CANONICAL, -EINVAL);
	}
	if (err)
		goto out;

	/*
	 * Same extents are not the same bytes (FIEMAP does not see unflushed writes), so prove the
	 * bytes: with nobody able to open either file for writing until the switch is done (write(2),
	 * shared writable mappings, truncate, fallocate and reflinks into a file all need that), the
	 * bytes compared are the bytes mapped at the switch. Beyond the end of file both map zeros.
	 */
	if (deny_write_access(file)) {
		err = refuse(r, DUPCACHE_R_WRITERS, -ETXTBSY);
		goto out;
	}
	if (deny_write_access(r->canonical)) {
		err = refuse(r, DUPCACHE_R_WRITERS, -ETXTBSY);
		goto allow_file;
	}
	pos = (loff_t)pgoff << PAGE_SHIFT;
	len = min_t(loff_t, r->m.end - r->m.start, max_t(loff_t, i_size_read(inode) - pos, 0));
	err = same_bytes(r, file, r->canonical, pos, len);
	if (!err)
		err = switch_mapping(r, file, pgoff, vm_flags);
	allow_write_access(r->canonical);
allow_file:
	allow_write_access(file);
out:
	fput(file);
	return err;
}

static void pending_del(struct merge_req *r)
{
	spin_lock(&pending_lock);
	list_del(&r->pending);
	pending_count--;
	spin_unlock(&pending_lock);
	put_pid(r->tgid);
	r->tgid = NULL;
	atomic64_dec(&stat_pending);
}

/*
 * The task work. It holds r->pin, a reference on the caller's /dev/dupcache file, and so on the
 * module (the file's fops own it) instead of a module reference: module_put() as its last call
 * would let rmmod free the module's text while this function still returns through it. fput()
 * from a user task only queues the release as task work on that same task (task_work_run runs it
 * after this callback returned), and the release drops the module reference from the VFS's own
 * code (fops_put in __fput), after the last instruction of this module has run.
 */
static void merge_work(struct callback_head *cb)
{
	struct merge_req *r = container_of(cb, struct merge_req, work);
	struct file *pin = r->pin;

	if (atomic_cmpxchg(&r->state, REQ_QUEUED, REQ_RUNNING) == REQ_QUEUED) {
		r->error = do_merge(r);
		/* Off the list before the caller wakes: its next request on this target is no
		 * "pending" refusal. */
		pending_del(r);
		complete(&r->done);
	} else {
		pending_del(r);
	}
	kref_put(&r->ref, req_release);
	fput(pin);
}

/* Queues r on task and waits for it; returns the outcome. */
static int run_on(struct task_struct *task, struct file *filp, struct merge_req *r)
{
	unsigned int ms = r->m.timeout_ms ? r->m.timeout_ms : DEFAULT_TIMEOUT_MS;
	struct pid *tgid = get_task_pid(task, PIDTYPE_TGID);
	struct merge_req *q;
	long left;
	int err = 0;

	if (task == current) {
		put_pid(tgid);
		return do_merge(r);
	}
	/* A stopped target would not run the request before the timeout: say so now. */
	if (task_is_stopped_or_traced(task)) {
		put_pid(tgid);
		return refuse(r, DUPCACHE_R_STOPPED, -EAGAIN);
	}
	spin_lock(&pending_lock);
	list_for_each_entry(q, &pending_list, pending) {
		if (q->tgid == tgid) {
			err = -EALREADY;
			break;
		}
	}
	if (!err && pending_count >= MAX_PENDING)
		err = -EALREADY;
	if (!err) {
		r->tgid = tgid;
		list_add(&r->pending, &pending_list);
		pending_count++;
	}
	spin_unlock(&pending_lock);
	if (err) {
		put_pid(tgid);
		return refuse(r, DUPCACHE_R_PENDING, err);
	}

	kref_get(&r->ref);
	r->pin = get_file(filp);
	atomic64_inc(&stat_pending);
	init_task_work(&r->work, merge_work);
	err = task_work_add(task, &r->work, TWA_SIGNAL);
	if (err) {
		pending_del(r);
		fput(r->pin); /* the ioctl's caller holds filp too: not the last reference */
		kref_put(&r->ref, req_release);
		return refuse(r, DUPCACHE_R_NO_PROCESS, -ESRCH);
	}
	left = wait_for_completion_killable_timeout(&r->done, msecs_to_jiffies(ms));
	if (left > 0)
		return r->error;
	if (atomic_cmpxchg(&r->state, REQ_QUEUED, REQ_ABANDONED) == REQ_QUEUED)
		return refuse(r, DUPCACHE_R_TIMEOUT, left == 0 ? -ETIMEDOUT : -EINTR);
	/* Already running in the target: it finishes promptly, and its outcome is the answer. */
	wait_for_completion(&r->done);
	return r->error;
}

/* The target named by a pidfd (pidfd_open(2)): its thread group leader, or NULL. pidfd_pid() is
 * not exported. Up to 6.8 a pidfd is the anonymous-inode file named "[pidfd]" whose private data
 * is its struct pid; since 6.9 a file of pidfs, whose inode's private data is (untested here: the
 * guest runs 6.1). */
static struct pid *pid_of_pidfd(struct file *f)
{
#ifdef PID_FS_MAGIC
	if (file_inode(f)->i_sb->s_magic == PID_FS_MAGIC)
		return file_inode(f)->i_private;
#endif
	if (file_inode(f)->i_sb->s_magic == ANON_INODE_FS_MAGIC &&
	    !strcmp(f->f_path.dentry->d_name.name, "[pidfd]"))
		return f->private_data;
	return NULL;
}

static struct task_struct *pidfd_task(int fd)
{
	struct file *f = fget(fd);
	struct task_struct *task = NULL;
	struct pid *pid;

	if (!f)
		return NULL;
	pid = pid_of_pidfd(f);
	if (pid)
		task = get_pid_task(pid, PIDTYPE_TGID);
	fput(f);
	return task;
}

static int check_canonical(struct merge_req *r)
{
	struct file *f = r->canonical;

	/* Nobody may have it open for writing: what merged processes see must never change. */
	if (!S_ISREG(file_inode(f)->i_mode) || !(f->f_mode & FMODE_READ) || (f->f_mode & FMODE_WRITE) ||
	    inode_is_open_for_write(file_inode(f)))
		return refuse(r, DUPCACHE_R_CANONICAL, -EINVAL);
	return 0;
}

static long ioctl_merge(struct file *filp, struct dupcache_merge __user *arg)
{
	struct merge_req *r;
	struct task_struct *task = NULL;
	struct pid *pid;
	u32 usize;
	int err;

	if (get_user(usize, &arg->size))
		return -EFAULT;
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	kref_init(&r->ref);
	init_completion(&r->done);
	atomic_set(&r->state, REQ_QUEUED);
	atomic64_inc(&stat_requests);

	BUILD_BUG_ON(sizeof(r->m) < DUPCACHE_MERGE_SIZE_V1);
	if (usize < DUPCACHE_MERGE_SIZE_V1 || usize > DUPCACHE_MERGE_SIZE_MAX) {
		/* Capped: copy_struct_from_user would check every byte past ours for zero. */
		err = refuse(r, DUPCACHE_R_INVALID, usize < DUPCACHE_MERGE_SIZE_V1 ? -EINVAL : -E2BIG);
		goto reply;
	}
	err = copy_struct_from_user(&r->m, sizeof(r->m), arg, usize);
	if (err) {
		if (err == -E2BIG)
			err = -EINVAL;
		r->m.reason = DUPCACHE_R_INVALID;
		goto reply;
	}
	r->m.reason = DUPCACHE_OK;
	if (!capable(CAP_SYS_ADMIN) || !capable(CAP_SYS_PTRACE)) {
		err = refuse(r, DUPCACHE_R_PERMISSION, -EPERM);
		goto reply;
	}
	if ((r->m.flags & ~DUPCACHE_MERGE_PIDFD) || r->m.reserved ||
	    (r->m.flags & DUPCACHE_MERGE_PIDFD ? r->m.pid < 0 : r->m.pid <= 0) ||
	    r->m.start >= r->m.end || !PAGE_ALIGNED(r->m.start) ||
	    !PAGE_ALIGNED(r->m.end) || r->m.timeout_ms > MAX_TIMEOUT_MS) {
		err = refuse(r, DUPCACHE_R_INVALID, -EINVAL);
		goto reply;
	}
	r->canonical = fget(r->m.canonical_fd);
	if (!r->canonical) {
		err = refuse(r, DUPCACHE_R_CANONICAL, -EBADF);
		goto reply;
	}
	err = check_canonical(r);
	if (err)
		goto reply;
	r->wrapper = dentry_open(&r->canonical->f_path, O_RDONLY, current_cred());
	if (IS_ERR(r->wrapper)) {
		err = refuse(r, DUPCACHE_R_CANONICAL, PTR_ERR(r->wrapper));
		r->wrapper = NULL;
		goto reply;
	}

	if (r->m.flags & DUPCACHE_MERGE_PIDFD) {
		task = pidfd_task(r->m.pidfd);
		if (task && r->m.pid && task_tgid_vnr(task) != r->m.pid) {
			put_task_struct(task);
			task = NULL;
		}
	} else {
		pid = find_get_pid(r->m.pid);
		task = get_pid_task(pid, PIDTYPE_PID);
		put_pid(pid);
	}
	if (!task || (task->flags & PF_KTHREAD)) {
		err = refuse(r, DUPCACHE_R_NO_PROCESS, -ESRCH);
		goto reply;
	}
	err = run_on(task, filp, r);

reply:
	if (task)
		put_task_struct(task);
	if (err)
		atomic64_inc(&stat_refused[r->m.reason < DUPCACHE_R_COUNT ? r->m.reason : 0]);
	else {
		atomic64_inc(&stat_merged);
		atomic64_add(r->m.end - r->m.start, &stat_merged_bytes);
	}
	/* The reason reaches the caller with the errno; a short struct gets what fits. */
	if (usize >= offsetofend(struct dupcache_merge, reason) &&
	    put_user(r->m.reason, &arg->reason) && !err)
		err = -EFAULT;
	if (r->canonical)
		kref_put(&r->ref, req_release);
	else
		kfree(r);
	return err;
}

static long dupcache_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case DUPCACHE_IOC_VERSION: {
		struct dupcache_version v = {
			.major = DUPCACHE_ABI_MAJOR,
			.minor = DUPCACHE_ABI_MINOR,
			.merge_size = sizeof(struct dupcache_merge),
			.stats_size = sizeof(struct dupcache_stats),
		};
		return copy_to_user(uarg, &v, sizeof(v)) ? -EFAULT : 0;
	}
	case DUPCACHE_IOC_STATS:
	case DUPCACHE_IOC_STATS_V1: {
		struct dupcache_stats s = {
			.requests = atomic64_read(&stat_requests),
			.merged = atomic64_read(&stat_merged),
			.merged_bytes = atomic64_read(&stat_merged_bytes),
			.pending = atomic64_read(&stat_pending),
		};
		int i;

		for (i = 0; i < DUPCACHE_R_COUNT; i++)
			s.refused[i] = atomic64_read(&stat_refused[i]);
		/* An ABI 1.0 client's struct ends after refused[DUPCACHE_R_COUNT_V1]. */
		return copy_to_user(uarg, &s, _IOC_SIZE(cmd)) ? -EFAULT : 0;
	}
	case DUPCACHE_IOC_MERGE:
	case DUPCACHE_IOC_MERGE_V1: /* the size is the one in the struct */
		return ioctl_merge(filp, uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations dupcache_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = dupcache_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice dupcache_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "dupcache",
	.fops = &dupcache_fops,
	.mode = 0600,
};

static int __init dupcache_init(void)
{
	int err = misc_register(&dupcache_dev);

	if (err)
		return err;
	pr_info("ready: /dev/%s, ABI %u.%u\n", dupcache_dev.name, DUPCACHE_ABI_MAJOR, DUPCACHE_ABI_MINOR);
	return 0;
}

static void __exit dupcache_exit(void)
{
	misc_deregister(&dupcache_dev);
}

module_init(dupcache_init);
module_exit(dupcache_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("dupcache: merge mapped duplicate files onto one cached canonical copy");
MODULE_AUTHOR("dupcache developers");
