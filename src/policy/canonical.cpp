// SPDX-License-Identifier: GPL-2.0-only
#include "policy/canonical.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <optional>
#include <utility>

#include "util/proc.hpp"

namespace dupcache::policy {
namespace {

// (st_dev, st_ino) of every file any process maps.
std::set<std::pair<dev_t, ino_t>> mapped_inodes() {
  std::set<std::pair<dev_t, ino_t>> out;
  for (int pid : proc::process_ids()) {
    proc::for_each_held_file(pid, proc::held_kind::mapped,
                             [&](const proc::held_file& h) { out.insert({h.st.st_dev, h.st.st_ino}); });
  }
  return out;
}

void set_immutable(int fd, bool on) {
  int flags = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) return;
  const int want = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
  if (want != flags) ioctl(fd, FS_IOC_SETFLAGS, &want);
}

}  // namespace

std::string join_path(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

std::string mount_point_of(const std::vector<mount_entry>& mounts, const std::string& path) {
  struct statx sx {};
  if (statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &sx) != 0 || !(sx.stx_mask & STATX_MNT_ID)) return "";
  for (const auto& m : mounts) {
    if (static_cast<std::uint64_t>(m.id) == sx.stx_mnt_id) return m.mount_point;
  }
  return "";
}

result<canonical_dir> open_canonical_dir(const std::string& mount_point, bool create) {
  canonical_dir d{join_path(mount_point, canonical_dir_name), {}};
  if (create && ::mkdir(d.path.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("create " + d.path);
  d.fd.reset(::open(d.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!d.fd) return errno_error("open " + d.path);
  struct stat st {};
  if (fstat(d.fd.get(), &st) != 0 || st.st_uid != 0 || (st.st_mode & 022)) {
    return plain_error("use " + d.path, "it must be a directory owned by root and writable by nobody else");
  }
  if (flock(d.fd.get(), LOCK_EX) != 0) return errno_error("lock " + d.path);
  return d;
}

result<unique_fd> canonical_copy(const canonical_dir& dir, const std::string& name, int src, bool dry_run) {
  unique_fd fd(openat(dir.fd.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd || errno != ENOENT || dry_run) {
    if (!fd && !dry_run) return errno_error("open " + join_path(dir.path, name));
    return fd;
  }
  // Cloned under a temporary name and renamed: a copy under its content name is always whole.
  const std::string tmp = fmt::format("{}.tmp.{}", name, getpid());
  unlinkat(dir.fd.get(), tmp.c_str(), 0);
  unique_fd w(openat(dir.fd.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444));
  if (!w) return errno_error("create " + join_path(dir.path, tmp));
  if (ioctl(w.get(), FICLONE, src) != 0) {
    const int e = errno;
    unlinkat(dir.fd.get(), tmp.c_str(), 0);
    return errno_error("clone into " + join_path(dir.path, tmp) + " (FICLONE)", e);
  }
  w.reset();
  if (renameat(dir.fd.get(), tmp.c_str(), dir.fd.get(), name.c_str()) != 0) {
    const int e = errno;
    unlinkat(dir.fd.get(), tmp.c_str(), 0);
    return errno_error("rename " + join_path(dir.path, tmp), e);
  }
  fd.reset(openat(dir.fd.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return errno_error("open " + join_path(dir.path, name));
  set_immutable(fd.get(), true);  // where the filesystem has it: not even root writes by mistake
  return fd;
}

std::set<std::string> canonical_mounts(const scan_result& scan) {
  std::set<std::string> out;
  auto mounts = read_mountinfo();
  if (!mounts) return out;
  for (const auto& [id, fs] : scan.filesystems) {
    const std::string mp = mount_point_of(*mounts, fs.where);
    struct stat st {};
    if (!mp.empty() && ::lstat(join_path(mp, canonical_dir_name).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) out.insert(mp);
  }
  return out;
}

std::uint64_t collect_canonical(const std::set<std::string>& mount_points, std::vector<std::string>* errors) {
  std::uint64_t removed = 0;
  std::optional<std::set<std::pair<dev_t, ino_t>>> mapped;
  for (const auto& mp : mount_points) {
    auto d = open_canonical_dir(mp, false);
    if (!d) {
      if (d.err().err != ENOENT) errors->push_back(d.err().message());
      continue;
    }
    if (!mapped) mapped = mapped_inodes();  // under the lock: no merge is between clone and map
    DIR* dir = fdopendir(dup(d->fd.get()));
    if (!dir) continue;
    std::vector<std::string> gone;
    while (struct dirent* de = readdir(dir)) {
      struct stat st {};
      if (de->d_name[0] == '.' || fstatat(d->fd.get(), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (!S_ISREG(st.st_mode) || mapped->count({st.st_dev, st.st_ino})) continue;
      gone.push_back(de->d_name);
    }
    closedir(dir);
    for (const auto& name : gone) {
      if (unique_fd f{openat(d->fd.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)}) set_immutable(f.get(), false);
      if (unlinkat(d->fd.get(), name.c_str(), 0) == 0) ++removed;
      else errors->push_back(errno_error("remove " + join_path(d->path, name)).message());
    }
  }
  return removed;
}

}  // namespace dupcache::policy
