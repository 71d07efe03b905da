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
 * no anonymous pages) and replaced with vm_mmap(MAP_FIXED) of the canonical file at the same
 * offset and protection. The caller waits for the outcome, up to a timeout; a request that timed
 * out is abandoned and does nothing when it finally runs. Each queued request holds a reference on
 * the module, so the module cannot be unloaded under it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/completion.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/kdev_t.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/stat.h>
#include <linux/task_work.h>
#include <linux/uaccess.h>

#include "dupcache_kmod.h"

#define DEFAULT_TIMEOUT_MS 5000
#define MAX_TIMEOUT_MS 60000

enum req_state { REQ_QUEUED, REQ_RUNNING, REQ_ABANDONED };

struct merge_req {
	struct callback_head work;
	struct kref ref;
	atomic_t state;
	struct completion done;
	struct file *canonical;
	struct dupcache_merge m;
	int error;
};

static atomic64_t stat_requests, stat_merged, stat_merged_bytes, stat_pending;
static atomic64_t stat_refused[DUPCACHE_R_COUNT];

static int refuse(struct merge_req *r, u32 reason, int error)
{
	r->m.reason = reason;
	return error;
}

static void req_release(struct kref *ref)
{
	struct merge_req *r = container_of(ref, struct merge_req, ref);

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

/* Runs in the target's context, as current. */
static int do_merge(struct merge_req *r)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	struct file *file;
	struct kstat st;
	unsigned long prot, flags, pgoff, vm_flags, addr;
	struct inode *inode, *cinode = file_inode(r->canonical);
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
	 * vm_mmap takes mmap_lock itself. Check again that the range is still the mapping checked,
	 * which narrows to this instant the window in which another thread of the target could
	 * replace it.
	 */
	mmap_read_lock(mm);
	vma = find_vma(mm, r->m.start);
	err = check_vma(r, vma);
	if (!err && (vma->vm_file != file || vma->vm_pgoff != pgoff || vma->vm_flags != vm_flags))
		err = refuse(r, DUPCACHE_R_RANGE, -ENXIO);
	mmap_read_unlock(mm);
	if (err)
		goto out;

	prot = (vm_flags & VM_READ ? PROT_READ : 0) | (vm_flags & VM_EXEC ? PROT_EXEC : 0);
	flags = MAP_PRIVATE | MAP_FIXED | (vm_flags & VM_LOCKED ? MAP_LOCKED : 0) |
		(vm_flags & VM_NORESERVE ? MAP_NORESERVE : 0);
	addr = vm_mmap(r->canonical, r->m.start, r->m.end - r->m.start, prot, flags,
		       pgoff << PAGE_SHIFT);
	if (IS_ERR_VALUE(addr))
		err = refuse(r, DUPCACHE_R_MAP_FAILED, (int)addr);
	else if (addr != r->m.start)
		err = refuse(r, DUPCACHE_R_MAP_FAILED, -EFAULT); /* MAP_FIXED does not move */
out:
	fput(file);
	return err;
}

static void merge_work(struct callback_head *cb)
{
	struct merge_req *r = container_of(cb, struct merge_req, work);

	if (atomic_cmpxchg(&r->state, REQ_QUEUED, REQ_RUNNING) == REQ_QUEUED) {
		r->error = do_merge(r);
		complete(&r->done);
	}
	atomic64_dec(&stat_pending);
	kref_put(&r->ref, req_release);
	module_put(THIS_MODULE);
}

/* Queues r on task and waits for it; returns the outcome. */
static int run_on(struct task_struct *task, struct merge_req *r)
{
	unsigned int ms = r->m.timeout_ms ? r->m.timeout_ms : DEFAULT_TIMEOUT_MS;
	long left;
	int err;

	if (task == current)
		return do_merge(r);

	kref_get(&r->ref);
	__module_get(THIS_MODULE);
	atomic64_inc(&stat_pending);
	init_task_work(&r->work, merge_work);
	err = task_work_add(task, &r->work, TWA_SIGNAL);
	if (err) {
		atomic64_dec(&stat_pending);
		module_put(THIS_MODULE);
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

static int check_canonical(struct merge_req *r)
{
	struct file *f = r->canonical;

	/* Nobody may have it open for writing: what merged processes see must never change. */
	if (!S_ISREG(file_inode(f)->i_mode) || !(f->f_mode & FMODE_READ) || (f->f_mode & FMODE_WRITE) ||
	    inode_is_open_for_write(file_inode(f)))
		return refuse(r, DUPCACHE_R_CANONICAL, -EINVAL);
	return 0;
}

static long ioctl_merge(struct dupcache_merge __user *arg)
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
	if (usize < DUPCACHE_MERGE_SIZE_V1) {
		err = refuse(r, DUPCACHE_R_INVALID, -EINVAL);
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
	if (r->m.flags || r->m.pid <= 0 || r->m.start >= r->m.end || !PAGE_ALIGNED(r->m.start) ||
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

	pid = find_get_pid(r->m.pid);
	task = get_pid_task(pid, PIDTYPE_PID);
	put_pid(pid);
	if (!task || (task->flags & PF_KTHREAD)) {
		err = refuse(r, DUPCACHE_R_NO_PROCESS, -ESRCH);
		goto reply;
	}
	err = run_on(task, r);

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
	case DUPCACHE_IOC_STATS: {
		struct dupcache_stats s = {
			.requests = atomic64_read(&stat_requests),
			.merged = atomic64_read(&stat_merged),
			.merged_bytes = atomic64_read(&stat_merged_bytes),
			.pending = atomic64_read(&stat_pending),
		};
		int i;

		for (i = 0; i < DUPCACHE_R_COUNT; i++)
			s.refused[i] = atomic64_read(&stat_refused[i]);
		return copy_to_user(uarg, &s, sizeof(s)) ? -EFAULT : 0;
	}
	case DUPCACHE_IOC_MERGE:
		return ioctl_merge(uarg);
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
