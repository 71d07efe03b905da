// SPDX-License-Identifier: GPL-2.0-only
#include "scan/scanner.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "scan/content_roots.hpp"
#include "scan/fiemap.hpp"
#include "scan/fs_identity.hpp"
#include "scan/mounts.hpp"
#include "scan/nodev_view.hpp"
#include "scan/placement.hpp"
#include "scan/superblocks.hpp"
#include "util/fd.hpp"
#include "util/open_beneath.hpp"
#include "util/text.hpp"

namespace dupcache {
namespace {

struct dir_closer {
  void operator()(DIR* d) const { closedir(d); }
};
using unique_dir = std::unique_ptr<DIR, dir_closer>;

std::string file_type_name(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFLNK: return "a symbolic link";
    default: return "not a regular file or directory";
  }
}

std::string join_path(const std::string& dir, const char* name) {
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

result<std::uint64_t> mount_id_of(int fd) {
  struct statx stx {};
  if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) < 0) {
    return errno_error("identify mount (statx)");
  }
  if (!(stx.stx_mask & STATX_MNT_ID)) return plain_error("identify mount (statx)", "the kernel reports no mount id");
  return static_cast<std::uint64_t>(stx.stx_mnt_id);
}

// A directory's fd, shared by the queued tasks of its subdirectories so that each is opened
// by one name relative to it (an intermediate directory swapped for a symlink cannot redirect
// the walk). Held fds are counted: a tree with a million directories queued must not need a
// million fds; past the cap, tasks are opened from the walk's root instead, component by
// component without following symlinks (as safe, one path walk dearer).
struct held_dir {
  held_dir(unique_fd f, std::atomic<unsigned>* c) : fd(std::move(f)), count(c) {}
  held_dir(const held_dir&) = delete;
  held_dir& operator=(const held_dir&) = delete;
  ~held_dir() {
    if (count) count->fetch_sub(1, std::memory_order_relaxed);
  }
  unique_fd fd;
  std::atomic<unsigned>* count;  // null for a walk's root (one per PATH, not counted)
};

struct dir_task {
  std::string path;
  std::uint64_t mount_id = 0;  // of the mount the walk reads it through (the view's, in a view)
  interned root;      // the PATH or mount point this walk started from
  std::string fs_id;  // the filesystem being walked; empty until the root directory is opened
  std::shared_ptr<const held_dir> base;      // opened relative to this: the parent, else the root
  std::string rel;                           // below base ("" for base itself)
  std::shared_ptr<const held_dir> root_dir;  // the walk's root, opened by PATH (which may follow links)
  std::string from_root;                     // the components below root_dir
  // Walked through a view (scan/nodev_view.hpp): the walk's root in the real mount tree, where a
  // mount the view copied is looked up for its id in the mount table. Null: the real tree.
  std::shared_ptr<const held_dir> real_root;
  std::uint64_t listed_mount_id = 0;  // the mount's id in /proc/self/mountinfo
};

// A set whose members are spread over shards by hash, each with its own lock: every walker
// claims every file it meets, so one lock for all would be taken by all threads per file
// (64 shards keep two walkers on a 64-core host apart almost always).
template <typename T, typename Hash, std::size_t shards = 64>
class sharded_set {
 public:
  bool insert(const T& v) {
    const std::size_t h = Hash{}(v);
    auto& s = shards_[(h ^ (h >> 17)) % shards];
    std::lock_guard lock(s.mu);
    return s.seen.insert(v).second;
  }
  bool contains(const T& v) {
    const std::size_t h = Hash{}(v);
    auto& s = shards_[(h ^ (h >> 17)) % shards];
    std::lock_guard lock(s.mu);
    return s.seen.count(v) > 0;
  }

 private:
  struct alignas(64) shard {
    std::mutex mu;
    std::unordered_set<T, Hash> seen;
  };
  std::array<shard, shards> shards_;
};

struct dev_ino_hash {
  std::size_t operator()(const std::pair<dev_t, ino_t>& k) const {
    return std::hash<std::uint64_t>{}(static_cast<std::uint64_t>(k.second) * 0x9e3779b97f4a7c15ULL ^
                                      static_cast<std::uint64_t>(k.first));
  }
};

// Identity of a copy before it is admitted to the index: hardlinks and second paths to one
// inode stop here.
struct claim_set {
  sharded_set<copy_key, copy_key_hash> seen;
  bool claim(const copy_key& k) { return seen.insert(k); }
  bool claimed(const copy_key& k) { return seen.contains(k); }
};

// Whether a file is mounted over another anywhere (a bind mount of a single file): then a
// file with one link can be reached twice by walks. Unknown (mountinfo unreadable): assumed.
bool any_file_mounts(const std::vector<mount_entry>* mounts) {
  if (!mounts) return true;
  for (const auto& m : *mounts) {
    struct statx stx {};
    if (statx(AT_FDCWD, m.mount_point.c_str(), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC,
              STATX_TYPE, &stx) == 0 && S_ISREG(stx.stx_mode)) {
      return true;
    }
  }
  return false;
}

// A file a walker found, held until its batch is handed over.
struct found_file {
  copy_key key;
  std::string path;
  interned root;
  std::uint64_t mount_id = 0;
  bool cached = false;  // false: only an inode record (scan_options::record_inodes)
  std::uint64_t cached_bytes = 0;
  std::uint64_t dirty_bytes = 0;
  std::uint64_t size = 0;
  std::size_t extents = 0;
  std::vector<index_piece> pieces;
  std::vector<placed_extent> placement;
  std::vector<page_hash> hashed;
  std::uint64_t hash_gone = 0;
  std::vector<charge_run> charges;
};

// The directory a walker is reading, as its files see it.
struct dir_context {
  const fs_info* fs;  // its filesystem (and subvolume), when it could be identified
  dev_t dev;          // its st_dev
  interned root;      // the PATH or mount point its walk started from
  std::uint64_t mount_id;  // as /proc/self/mountinfo lists it
  bool view = false;       // read through a nodev view: files are opened by name
};

// A filesystem met by one walker since its last hand-over, and what it counted there.
struct fs_tally {
  fs_info fs;
  interned where;  // the root it was first reached from
  std::uint64_t files_scanned = 0;
  std::uint64_t files_cached = 0;
  std::uint64_t cached_bytes = 0;
};

// What one walker gathers without the shared lock, handed over (one lock) every
// walker_batch_files files and when it stops. A lock per file kept two walkers from using
// two cores: 18% of their time went to futex waits on a 1 M-file tree (issue 17).
constexpr std::size_t walker_batch_files = 256;
struct walker_state {
  scan_stats stats;
  std::vector<fs_tally> fs;  // in the order met; a handful at most
  std::vector<found_file> files;

  fs_tally& tally(const fs_info& fs, const interned& root) {
    for (auto& t : this->fs) {
      if (t.fs.id == fs.id) return t;
    }
    return this->fs.emplace_back(fs_tally{fs, root});
  }
};

void add_stats(scan_stats& to, const scan_stats& from) {
  to.files_scanned += from.files_scanned;
  to.files_cached += from.files_cached;
  to.directories += from.directories;
  to.repeated_inodes += from.repeated_inodes;
  to.special_skipped += from.special_skipped;
  to.vanished += from.vanished;
  to.mounts_not_crossed += from.mounts_not_crossed;
  to.same_fs_mounts += from.same_fs_mounts;
  to.extents += from.extents;
}

class scan_job {
 public:
  scan_job(const scan_options& opts, std::uint64_t page_size, std::unique_ptr<residency_reader> reader)
      : opts_(opts), ps_(page_size), reader_(std::move(reader)), out_(page_size) {
    out_.residency_method = reader_->name();
    out_.dirty_known = reader_->knows_dirty();
    // A quarter of the fd table, at most 1024: the rest is for the files being read and for
    // whatever else the process (the daemon) holds.
    struct rlimit rl {};
    const rlim_t soft = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
    held_dirs_cap_ = static_cast<unsigned>(std::min<rlim_t>(1024, soft / 4));
    proc_fds_ = unique_fd(open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (opts_.attribute) {
      auto c = charge_reader::open(ps_);
      if (c) {
        charges_.emplace(std::move(*c));
        out_.attributed = true;
      } else {
        out_.attribution_error = c.err().message();
      }
    }
  }

  // mounts: the mount table the roots were chosen from (null: it could not be read).
  scan_result run(std::vector<dir_task> roots, std::vector<std::pair<std::string, std::string>> named_files,
                  const std::vector<mount_entry>* mounts) {
    named_files_ = !named_files.empty();
    file_mounts_ = any_file_mounts(mounts);
    {
      walker_state w;
      for (auto& [path, _] : named_files) process_named_file(w, path);
      hand_over(w);
    }
    // The filesystems walked from a root of their own: their mounts met by another walk are
    // not left out.
    std::set<std::string> root_fs;
    for (const auto& r : roots) {
      unique_fd fd(open(r.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK));
      struct stat st {};
      if (!fd || fstat(fd.get(), &st) < 0) continue;
      if (auto fs = registry_.lookup(fd.get(), st)) root_fs.insert(fs->id);
    }
    for (auto& r : roots) push(std::move(r));
    unsigned jobs = opts_.jobs;
    if (jobs == 0) jobs = std::clamp(2 * std::thread::hardware_concurrency(), 2u, 16u);
    {
      std::vector<std::jthread> workers;
      for (unsigned i = 0; i < jobs; ++i) workers.emplace_back([this] { worker(); });
    }
    std::sort(out_.errors.begin(), out_.errors.end(),
              [](const scan_error& a, const scan_error& b) { return a.path < b.path; });
    std::erase_if(out_.skipped_mounts, [&](const skipped_mount& m) {
      if (m.fs_id.empty() || !root_fs.count(m.fs_id)) return false;
      --out_.stats.mounts_not_crossed;
      return true;
    });
    std::sort(out_.skipped_mounts.begin(), out_.skipped_mounts.end(),
              [](const skipped_mount& a, const skipped_mount& b) { return a.path < b.path; });
    return std::move(out_);
  }

  void add_error(const std::string& path, const std::string& message, bool named = false) {
    std::lock_guard lock(out_mu_);
    out_.errors.push_back({path, message});
    if (named) out_.named_path_failed = true;
  }

 private:
  void push(dir_task t) {
    {
      std::lock_guard lock(q_mu_);
      queue_.push_back(std::move(t));
      ++pending_;
    }
    q_cv_.notify_one();
  }

  void worker() {
    walker_state w;
    for (;;) {
      dir_task t;
      {
        std::unique_lock lock(q_mu_);
        q_cv_.wait(lock, [this] { return !queue_.empty() || pending_ == 0; });
        if (queue_.empty()) break;
        t = std::move(queue_.front());
        queue_.pop_front();
      }
      walk_dir(w, t);
      {
        std::lock_guard lock(q_mu_);
        if (--pending_ == 0) q_cv_.notify_all();
      }
    }
    hand_over(w);
  }

  // The walker's files and counts into the result, under the one lock.
  void hand_over(walker_state& w) {
    std::lock_guard lock(out_mu_);
    add_stats(out_.stats, w.stats);
    w.stats = {};
    for (const auto& t : w.fs) {
      auto [it, inserted] = out_.filesystems.try_emplace(t.fs.id);
      if (inserted) {
        it->second.id = t.fs.id;
        it->second.type = t.fs.type;
        it->second.where = t.where;
      }
      it->second.files_scanned += t.files_scanned;
      it->second.files_cached += t.files_cached;
      it->second.cached_bytes += t.cached_bytes;
    }
    w.fs.clear();
    for (auto& f : w.files) admit(f);
    w.files.clear();
  }

  void walk_dir(walker_state& w, const dir_task& t) {
    unique_fd dfd = open_no_symlinks(t.base->fd.get(), t.rel, O_RDONLY | O_DIRECTORY | O_NONBLOCK);
    if (!dfd) {
      if (errno == ENOENT || errno == ENOTDIR) {
        ++w.stats.vanished;
        return;
      }
      if (errno == ELOOP || errno == EXDEV) {
        return add_error(t.path, plain_error("open directory", "a component of its path is a symbolic link now "
                                                                 "(replaced since it was listed; not followed)")
                                     .message());
      }
      return add_error(t.path, errno_error("open directory").message());
    }
    struct stat st {};
    if (fstat(dfd.get(), &st) < 0) return add_error(t.path, errno_error("stat directory").message());
    std::uint64_t mnt = t.mount_id;
    std::uint64_t listed = t.listed_mount_id;
    std::string fs_id = t.fs_id;
    // The directory's filesystem (on btrfs: and subvolume) is its files' too, wherever their
    // st_dev is the directory's: looked up once here rather than once per file.
    auto fs = registry_.lookup(dfd.get(), st);
    if (fs_id.empty() && fs) fs_id = fs->id;
    if (auto id = mount_id_of(dfd.get()); id && *id != t.mount_id) {
      // Another mount. The same filesystem (a bind mount, a directory mounted onto itself, a
      // subvolume) is part of the walk: claims keep each inode counted once. Another
      // filesystem is entered only when asked, and never a pseudo one.
      if (fs && !fs_id.empty() && fs->id == fs_id) {
        ++w.stats.same_fs_mounts;
      } else {
        struct statfs sfs {};
        const bool statfs_ok = fstatfs(dfd.get(), &sfs) == 0;
        const std::string type = statfs_ok ? fs_type_name(static_cast<std::uint64_t>(sfs.f_type)) : "unknown";
        const bool pseudo = statfs_ok && is_pseudo_fs(type);
        if (!opts_.cross_mounts || pseudo) {
          std::lock_guard lock(out_mu_);
          ++out_.stats.mounts_not_crossed;
          out_.skipped_mounts.push_back({t.path, type, pseudo, fs ? fs->id.str() : std::string()});
          return;
        }
        if (fs) fs_id = fs->id;
      }
      mnt = *id;
      listed = t.real_root ? listed_mount_id(t, mnt, st) : mnt;
    }
    // Marked visited only once entered: a mount left out of one walk may be another root
    // (no PATH: each filesystem is a root), which must still walk it.
    if (!visited_.insert({st.st_dev, st.st_ino})) return;  // bind-mount loops, overlapping PATHs
    ++w.stats.directories;
    const dir_context here{fs ? &*fs : nullptr, st.st_dev, t.root, listed, t.real_root != nullptr};

    const int raw = dfd.get();
    unique_dir dir(fdopendir(dfd.release()));
    if (!dir) {
      close(raw);
      return add_error(t.path, errno_error("read directory").message());
    }
    std::shared_ptr<const held_dir> hold;
    bool tried_hold = false;
    for (;;) {
      errno = 0;
      struct dirent* de = readdir(dir.get());
      if (!de) {
        if (errno != 0) add_error(t.path, errno_error("read directory").message());
        break;
      }
      const char* name = de->d_name;
      if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
      unsigned char type = de->d_type;
      if (type == DT_UNKNOWN) {
        struct stat cst {};
        if (fstatat(dirfd(dir.get()), name, &cst, AT_SYMLINK_NOFOLLOW) < 0) {
          if (errno == ENOENT) ++w.stats.vanished;
          else add_error(join_path(t.path, name), errno_error("stat").message());
          continue;
        }
        type = S_ISDIR(cst.st_mode) ? DT_DIR : S_ISREG(cst.st_mode) ? DT_REG : DT_FIFO;
      }
      if (type == DT_DIR) {
        const std::string from_root = t.from_root.empty() ? std::string(name) : t.from_root + "/" + name;
        if (!tried_hold) {
          tried_hold = true;
          if (held_dirs_.fetch_add(1, std::memory_order_relaxed) < held_dirs_cap_) {
            unique_fd dup(fcntl(dirfd(dir.get()), F_DUPFD_CLOEXEC, 0));
            if (dup) hold = std::make_shared<const held_dir>(std::move(dup), &held_dirs_);
            else held_dirs_.fetch_sub(1, std::memory_order_relaxed);
          } else {
            held_dirs_.fetch_sub(1, std::memory_order_relaxed);
          }
        }
        if (hold) push({join_path(t.path, name), mnt, t.root, fs_id, hold, name, t.root_dir, from_root, t.real_root, listed});
        else push({join_path(t.path, name), mnt, t.root, fs_id, t.root_dir, from_root, t.root_dir, from_root, t.real_root,
                   listed});
      }
      else if (type == DT_REG) process_entry(w, here, dirfd(dir.get()), name, join_path(t.path, name));
      else ++w.stats.special_skipped;  // symlinks are not followed inside a walk
    }
  }

  // The id /proc/self/mountinfo gives the mount a view copied, which the walk entered at this
  // directory (st: the directory as the view shows it): the same directory reached in the real
  // tree by the same components, no symlink followed, if it is still the same inode there (0 if
  // not: the mount went away or moved since the view was made; its files are then reported
  // with no mount, and left out by top and the daemon, which find files by mount).
  std::uint64_t listed_mount_id(const dir_task& t, std::uint64_t view_id, const struct stat& st) {
    {
      std::lock_guard lock(listed_mu_);
      if (auto it = listed_ids_.find(view_id); it != listed_ids_.end()) return it->second;
    }
    std::uint64_t id = 0;
    unique_fd real = open_no_symlinks(t.real_root->fd.get(), t.from_root, O_PATH | O_DIRECTORY);
    struct stat rst {};
    if (real && fstat(real.get(), &rst) == 0 && rst.st_dev == st.st_dev && rst.st_ino == st.st_ino) {
      if (auto m = mount_id_of(real.get())) id = *m;
    }
    std::lock_guard lock(listed_mu_);
    return listed_ids_.try_emplace(view_id, id).first->second;
  }

  // Opens a directory entry that claimed to be a regular file without ever opening a device
  // node or blocking. Through a nodev view, by name: a device fails (EACCES, no driver called),
  // a socket too (ENXIO), a symlink is not followed (ELOOP), a FIFO opens at once (O_NONBLOCK)
  // and is closed unread (counted as skipped). A failed open is then taken the other way,
  // which tells what the name is now: a name swapped back and forth under the walk is skipped
  // or read, never an error. The other way (outside a view): O_PATH first (no open side
  // effects, cannot block), check the type, then reopen the very same inode for reading
  // through /proc/self/fd.
  void process_entry(walker_state& w, const dir_context& dir, int dir_fd, const char* name, const std::string& path) {
    if (dir.view) {
      unique_fd fd(openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
      if (fd) {
        struct stat st {};
        if (fstat(fd.get(), &st) < 0) return add_error(path, errno_error("stat").message());
        if (!S_ISREG(st.st_mode)) {
          ++w.stats.special_skipped;
          return;
        }
        return process_file(w, dir, fd.get(), st, path, false);
      }
      if (errno == ENOENT) {
        ++w.stats.vanished;
        return;
      }
    }
    unique_fd pfd(openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!pfd) {
      if (errno == ENOENT) {
        ++w.stats.vanished;
        return;
      }
      return add_error(path, errno_error("open").message());
    }
    open_checked(w, dir, std::move(pfd), path, false);
  }

  void process_named_file(walker_state& w, const std::string& path) {
    unique_fd pfd(open(path.c_str(), O_PATH | O_CLOEXEC));
    if (!pfd) return add_error(path, errno_error("open").message(), true);
    auto mnt = mount_id_of(pfd.get());
    open_checked(w, dir_context{nullptr, 0, path, mnt ? *mnt : 0}, std::move(pfd), path, true);
  }

  void open_checked(walker_state& w, const dir_context& dir, unique_fd pfd, const std::string& path, bool named) {
    struct stat st {};
    if (fstat(pfd.get(), &st) < 0) return add_error(path, errno_error("stat").message(), named);
    if (!S_ISREG(st.st_mode)) {
      if (named) return add_error(path, plain_error("scan", "it is " + file_type_name(st.st_mode)).message(), true);
      ++w.stats.special_skipped;
      return;
    }
    unique_fd fd = reopen(pfd.get());
    if (!fd) {
      if (errno == ENOENT) {
        ++w.stats.vanished;
        return;
      }
      return add_error(path, errno_error("open for reading").message(), named);
    }
    process_file(w, dir, fd.get(), st, path, named);
  }

  // The O_PATH fd reopened for reading through its /proc/self/fd link: one name looked up in
  // the directory held open for the scan (the walk of "/proc/self/fd/" per file cost as much as
  // the lookup itself), or the whole path where /proc/self/fd could not be held.
  unique_fd reopen(int pfd) const {
    constexpr int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    char name[16];
    const auto end = std::to_chars(name, name + sizeof name - 1, pfd).ptr;
    *end = 0;
    if (proc_fds_) return unique_fd(openat(proc_fds_.get(), name, flags));
    const std::string proc = std::string("/proc/self/fd/") + name;
    return unique_fd(open(proc.c_str(), flags));
  }

  void process_file(walker_state& w, const dir_context& dir, int fd, const struct stat& st, const std::string& path,
                    bool named) {
    // A regular file with its directory's st_dev is on its filesystem, in its subvolume (on
    // btrfs every subvolume has its own st_dev, and a file cannot be in another subvolume
    // than the directory holding it); anything else (a file mounted over the entry) is asked.
    std::optional<fs_info> own;
    const fs_info* fs = dir.fs && st.st_dev == dir.dev ? dir.fs : nullptr;
    if (!fs) {
      auto looked_up = registry_.lookup(fd, st);
      if (!looked_up) return add_error(path, looked_up.err().message(), named);
      fs = &own.emplace(std::move(*looked_up));
    }
    fs_tally& tally = w.tally(*fs, dir.root);
    const copy_key key{fs->id, fs->subvol, static_cast<std::uint64_t>(st.st_ino)};
    // An inode is remembered only when a second way to it can exist: more than one link, a
    // PATH naming it, a file mounted over another. A one-link file in a walked directory is
    // reached once (each directory is walked once: visited_), so it costs nothing here; the
    // lookup still finds a file a PATH named before the walk reached it.
    if (named || st.st_nlink != 1 || file_mounts_ ? !claims_.claim(key) : named_files_ && claims_.claimed(key)) {
      ++w.stats.repeated_inodes;
      return;
    }

    auto counts = reader_->totals(fd, static_cast<std::uint64_t>(st.st_size));
    if (!counts) {
      if (counts.err().err == EPERM) {
        // Linux hides the residency of files the caller could not write (cachestat and mincore
        // alike; mincore would silently answer "not cached"), so say so rather than guess.
        return add_error(path, counts.err().message() +
                                   " (the kernel hides the page cache of files you cannot write; run as root)",
                         named);
      }
      return add_error(path, counts.err().message(), named);
    }
    if (counts->unread > 0) {
      // Counted from what could be read; the holes left unread hold no extent, so no shared
      // page is missed, only zero-filled pages someone read from them.
      add_error(path, plain_error(fmt::format("read residency (mincore) of {} of holes", human_bytes(counts->unread * ps_)),
                                  "it cannot be read in bounded time without cachestat(2) (Linux 6.5); the file's "
                                  "cached bytes are counted from its data ranges only")
                          .message());
    }
    ++w.stats.files_scanned;
    ++tally.files_scanned;
    if (counts->cached == 0) {
      if (opts_.record_inodes) {
        w.files.push_back({key, path, dir.root, dir.mount_id});
        if (w.files.size() >= walker_batch_files) hand_over(w);
      }
      return;
    }

    found_file f{key, path, dir.root, dir.mount_id, true, counts->cached * ps_,
                 (counts->dirty + counts->writeback) * ps_, static_cast<std::uint64_t>(st.st_size)};
    if (auto extents = read_extent_map(fd); !extents) {
      fiemap_failed(w, *fs, path, extents.err());
    } else {
      f.extents = extents->size();
      f.placement = file_placement(fd, *fs, *extents, ps_);
      // A file whose every page is cached and clean (the common case: a file read whole) needs
      // no residency lookup per extent. Only a reader that tells dirty pages can say so.
      const std::uint64_t file_pages = (static_cast<std::uint64_t>(st.st_size) + ps_ - 1) / ps_;
      const bool all_clean = reader_->knows_dirty() && counts->cached >= file_pages && counts->dirty == 0 &&
                             counts->writeback == 0 && counts->unread == 0;
      auto clean = clean_pieces(fd, f.placement, *reader_, ps_, opts_.shared_hint, all_clean ? file_pages : 0);
      if (clean) f.pieces = std::move(*clean);
      else add_error(path, clean.err().message());
    }
    if (opts_.content) {
      const std::uint64_t pages = (static_cast<std::uint64_t>(st.st_size) + ps_ - 1) / ps_;
      auto runs = reader_->clean_runs(fd, 0, pages);
      auto gone = runs ? hash_resident_pages(fd, static_cast<std::uint64_t>(st.st_size), ps_, *runs, *hasher_, f.hashed)
                       : result<std::uint64_t>(runs.err());
      if (gone) f.hash_gone = *gone;
      else add_error(path, gone.err().message() + " (its pages are left out of the content duplicates)");
    }
    if (charges_ && !(opts_.attribute_shared_only && f.pieces.empty())) {
      auto runs = reader_->cached_runs(fd, static_cast<std::uint64_t>(st.st_size));
      auto c = runs ? charges_->read(fd, *runs) : result<std::vector<charge_run>>(runs.err());
      if (c) f.charges = std::move(*c);
      else add_error(path, c.err().message() + " (its pages are reported unattributed)");
    }
    ++w.stats.files_cached;
    w.stats.extents += f.extents;
    ++tally.files_cached;
    tally.cached_bytes += f.cached_bytes;
    w.files.push_back(std::move(f));
    if (w.files.size() >= walker_batch_files) hand_over(w);
  }

  // A found file into the result; out_mu_ held.
  void admit(found_file& f) {
    if (!f.cached) {
      out_.inodes.push_back({f.key, std::move(f.path), f.mount_id, -1, {}});
      return;
    }
    const copy_id id = out_.index.intern_copy(f.key);
    if (id >= out_.files.size()) out_.files.resize(id + 1);
    out_.files[id] = file_entry{opts_.pool_paths ? packed_string::pooled(f.path, out_.paths) : packed_string(f.path),
                                f.cached_bytes, f.dirty_bytes, f.root};
    for (const auto& piece : f.pieces) {
      out_.index.add(id, out_.index.intern_domain(piece.domain), piece.physical, piece.length);
    }
    if (opts_.content) {
      auto& cp = out_.content;
      if (id >= cp.by_copy.size()) {
        cp.by_copy.resize(id + 1);
        cp.sizes.resize(id + 1);
      }
      cp.sizes[id] = f.size;
      place_pages(f.hashed, f.placement, ps_, cp);
      cp.pages_hashed += f.hashed.size();
      cp.pages_gone += f.hash_gone;
      cp.by_copy[id] = std::move(f.hashed);
    }
    if (opts_.attribute || opts_.keep_placements) {
      if (id >= out_.charges.size()) {
        out_.charges.resize(id + 1);
        out_.placements.resize(id + 1);
      }
      out_.charges[id] = std::move(f.charges);
      out_.placements[id] = opts_.record_inodes ? f.placement : std::move(f.placement);
    }
    if (opts_.record_inodes) {
      out_.inodes.push_back({f.key, std::move(f.path), f.mount_id, static_cast<std::int64_t>(id), std::move(f.placement)});
    }
  }

  void fiemap_failed(walker_state& w, const fs_info& fs, const std::string& path, const error& e) {
    if (e.err == EOPNOTSUPP || e.err == ENOTTY) {
      // Said once per filesystem: its files still count as cached, none as shared.
      std::lock_guard lock(out_mu_);
      if (!fiemap_unsupported_.insert(fs.id).second) return;
      out_.errors.push_back({path, fmt::format("{} (filesystem {} cannot report extents; its cached pages are "
                                               "counted, none as shared)", e.message(), fs.id)});
      return;
    }
    if (e.err == ENOENT) {
      ++w.stats.vanished;
      return;
    }
    add_error(path, e.message());
  }

  const scan_options& opts_;
  std::uint64_t ps_;
  std::unique_ptr<residency_reader> reader_;
  xxh3_hasher xxh3_;
  const page_hasher* hasher_ = opts_.hasher ? opts_.hasher : &xxh3_;
  std::optional<charge_reader> charges_;
  unique_fd proc_fds_;  // /proc/self/fd, where files are reopened
  std::mutex listed_mu_;
  std::unordered_map<std::uint64_t, std::uint64_t> listed_ids_;  // a view's mount id: the mount table's
  fs_registry registry_;
  claim_set claims_;
  bool named_files_ = false;  // PATHs naming files were claimed before the walks
  bool file_mounts_ = true;

  std::mutex q_mu_;
  std::condition_variable q_cv_;
  std::deque<dir_task> queue_;
  std::size_t pending_ = 0;

  std::atomic<unsigned> held_dirs_{0};
  unsigned held_dirs_cap_ = 0;

  sharded_set<std::pair<dev_t, ino_t>, dev_ino_hash> visited_;

  std::mutex out_mu_;
  scan_result out_;
  std::set<std::string> fiemap_unsupported_;
};

// The walks' roots, each read through a nodev view of its mount tree (scan/nodev_view.hpp)
// when one can be made: after a refusal that holds for all (not root, an older kernel, a
// system call filter or security module) the rest are not tried; a root on a mount of another
// mount namespace (a PATH through /proc/PID/root: EINVAL) is walked the other way alone.
class root_maker {
 public:
  explicit root_maker(const std::vector<mount_entry>* mounts) {
    if (!mounts) {
      why_not_ = "the mount table could not be read, so an unbindable mount cannot be ruled out";
    } else {
      why_not_ = nodev_view_unfit(*mounts);
    }
    try_view_ = why_not_.empty();
  }

  // fd: the root directory opened by its path.
  result<dir_task> make(const std::string& path, unique_fd fd) {
    auto id = mount_id_of(fd.get());
    if (!id) return id.err();
    auto real = std::make_shared<const held_dir>(std::move(fd), nullptr);
    if (try_view_) {
      auto view = open_nodev_view(real->fd.get());
      auto view_id = view ? mount_id_of(view->get()) : result<std::uint64_t>(view.err());
      if (view_id) {
        auto held = std::make_shared<const held_dir>(std::move(*view), nullptr);
        viewed_ = true;
        return dir_task{path, *view_id, path, {}, held, {}, held, {}, std::move(real), *id};
      }
      why_not_ = view_id.err().message();
      const int err = view_id.err().err;
      if (err == EPERM || err == EACCES || err == ENOSYS) try_view_ = false;
    }
    return dir_task{path, *id, path, {}, real, {}, real, {}, nullptr, *id};
  }

  void describe(scan_result& out) const {
    out.file_open = viewed_ ? "nodev view" : "O_PATH reopen";
    out.file_open_note = why_not_;
  }

 private:
  bool try_view_ = false;
  bool viewed_ = false;
  std::string why_not_;
};

}  // namespace

result<scan_result> scan(const scan_options& options_in) {
  scan_options resolved;
  std::vector<std::string> content_notes;
  if (options_in.content) {
    auto mounts = read_mountinfo();
    if (!mounts) return mounts.err();
    auto roots = resolve_content_roots(options_in.paths, *mounts);
    resolved = options_in;
    resolved.paths = std::move(roots.paths);
    content_notes = std::move(roots.notes);
  }
  const scan_options& options = options_in.content ? resolved : options_in;
  const auto ps = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  auto reader = make_residency_reader(options.residency, ps);
  if (!reader) return reader.err();

  std::vector<dir_task> roots;
  std::vector<std::pair<std::string, std::string>> named_files;
  std::vector<scan_error> early_errors;
  bool named_failed = false;

  auto table = read_mountinfo();
  if (options.paths.empty() && !table) return table.err();
  root_maker maker(table ? &*table : nullptr);
  if (options.paths.empty()) {
    for (const auto& m : sharing_mounts(*table)) {
      unique_fd fd(open(m.mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK));
      if (!fd) {
        early_errors.push_back({m.mount_point, errno_error("open mount point").message()});
        continue;
      }
      auto root = maker.make(m.mount_point, std::move(fd));
      if (!root) {
        early_errors.push_back({m.mount_point, root.err().message()});
        continue;
      }
      roots.push_back(std::move(*root));
    }
  } else {
    for (const auto& p : options.paths) {
      struct stat st {};
      if (stat(p.c_str(), &st) < 0) {
        early_errors.push_back({p, errno_error("stat").message()});
        named_failed = true;
        continue;
      }
      if (S_ISDIR(st.st_mode)) {
        unique_fd fd(open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK));
        if (!fd) {
          early_errors.push_back({p, errno_error("open directory").message()});
          named_failed = true;
          continue;
        }
        // The PATH itself may pass through symlinks (the caller named it); below it, nothing is
        // followed.
        auto root = maker.make(p, std::move(fd));
        if (!root) {
          early_errors.push_back({p, root.err().message()});
          named_failed = true;
          continue;
        }
        roots.push_back(std::move(*root));
      } else {
        named_files.push_back({p, p});
      }
    }
  }

  scan_job job(options, ps, std::move(reader.value()));
  for (auto& e : early_errors) job.add_error(e.path, e.message, named_failed);
  auto out = job.run(std::move(roots), std::move(named_files), table ? &*table : nullptr);
  maker.describe(out);
  out.named_path_failed = out.named_path_failed || named_failed;
  out.content_notes = std::move(content_notes);
  // Only when content was asked for: 24 bytes per cached file otherwise held for nothing.
  if (options.content && out.content.by_copy.size() < out.files.size()) {
    out.content.by_copy.resize(out.files.size());
    out.content.sizes.resize(out.files.size());
  }
  return out;
}

}  // namespace dupcache
