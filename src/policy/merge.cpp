// SPDX-License-Identifier: GPL-2.0-only
#include "policy/merge.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "scan/fiemap.hpp"
#include "scan/fs_identity.hpp"
#include "scan/mounts.hpp"
#include "policy/pageout.hpp"
#include "util/proc.hpp"

namespace dupcache::policy {
namespace {

constexpr std::uint32_t unplaced_flags = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_ENCODED |
                                         FIEMAP_EXTENT_DATA_ENCRYPTED | FIEMAP_EXTENT_NOT_ALIGNED |
                                         FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_DATA_TAIL |
                                         FIEMAP_EXTENT_UNWRITTEN;

// A stretch of file bytes and where it lives; hole for bytes no extent holds.
struct piece {
  std::uint64_t lo = 0, hi = 0;
  std::uint64_t physical = 0;
  bool hole = false;
  bool operator==(const piece&) const = default;
};

// The file's bytes [lo, hi) as pieces, adjacent contiguous ones joined.
result<std::vector<piece>> pieces_of(int fd, std::uint64_t lo, std::uint64_t hi) {
  auto ext = read_extent_map(fd);
  if (!ext) return ext.err();
  std::vector<piece> out;
  auto push = [&](piece p) {
    if (!out.empty()) {
      auto& b = out.back();
      if (b.hi == p.lo && b.hole == p.hole && (p.hole || b.physical + (b.hi - b.lo) == p.physical)) {
        b.hi = p.hi;
        return;
      }
    }
    out.push_back(p);
  };
  std::uint64_t at = lo;
  for (const auto& e : *ext) {
    const std::uint64_t s = std::max(e.logical, lo), t = std::min(e.logical + e.length, hi);
    if (s >= t) continue;
    if (e.flags & unplaced_flags) {
      return plain_error("compare extents", fmt::format("bytes {}..{} are not at a fixed place (FIEMAP flags {:#x})", s, t, e.flags));
    }
    if (s > at) push({at, s, 0, true});
    push({s, t, e.physical + (s - e.logical), false});
    at = t;
  }
  if (at < hi) push({at, hi, 0, true});
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// (st_dev, st_ino) of every file any process maps.
std::set<std::pair<dev_t, ino_t>> mapped_inodes() {
  std::set<std::pair<dev_t, ino_t>> out;
  for (int pid : proc::process_ids()) {
    proc::for_each_held_file(pid, proc::held_kind::mapped,
                             [&](const proc::held_file& h) { out.insert({h.st.st_dev, h.st.st_ino}); });
  }
  return out;
}

// The mount point of the mount `path` is reached through, or "".
std::string mount_point_of(const std::vector<mount_entry>& mounts, const std::string& path) {
  struct statx sx {};
  if (statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &sx) != 0 || !(sx.stx_mask & STATX_MNT_ID)) return "";
  for (const auto& m : mounts) {
    if (static_cast<std::uint64_t>(m.id) == sx.stx_mnt_id) return m.mount_point;
  }
  return "";
}

std::string join_path(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

void read_through(int fd, std::uint64_t offset, std::uint64_t length) {
  std::vector<char> buf(1 << 20);
  for (std::uint64_t at = offset; at < offset + length;) {
    const auto n = pread(fd, buf.data(), std::min<std::uint64_t>(buf.size(), offset + length - at), static_cast<off_t>(at));
    if (n <= 0) break;  // end of file, or an error the mapping will meet anyway
    at += static_cast<std::uint64_t>(n);
  }
}

// Whether the LSMs (Yama, SELinux, AppArmor, ...) and the ptrace rules let this process attach
// to pid: opening /proc/PID/mem runs ptrace_may_access(PTRACE_MODE_ATTACH_FSCREDS), which the
// module cannot call (not exported). Empty when they do, else why not.
std::string ptrace_denied(int pid) {
  const std::string mem = fmt::format("/proc/{}/mem", pid);
  unique_fd fd(::open(mem.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd) return "";
  return fmt::format("the ptrace access check refused process {} (open {}: {})", pid, mem, std::strerror(errno));
}

void set_immutable(int fd, bool on) {
  int flags = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) return;
  const int want = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
  if (want != flags) ioctl(fd, FS_IOC_SETFLAGS, &want);
}

// One filesystem's canonical directory, locked for as long as this lives.
struct canonical_dir {
  std::string path;
  unique_fd fd;
};

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

// The canonical copy named `name` in dir, made as a read-only clone of src when absent.
result<unique_fd> canonical_copy(const canonical_dir& dir, const std::string& name, int src, bool dry_run) {
  unique_fd fd(openat(dir.fd.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd || errno != ENOENT || dry_run) {
    if (!fd && !dry_run) return errno_error("open " + join_path(dir.path, name));
    return fd;
  }
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

}  // namespace

std::vector<vma_line> mergeable_vmas(const std::string& smaps) {
  std::vector<vma_line> out;
  std::istringstream in(smaps);
  std::string line;
  bool keep = false;
  while (std::getline(in, line)) {
    unsigned long long s = 0, e = 0, off = 0, ino = 0, kib = 0;
    char perms[8] = {};
    unsigned maj = 0, min = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu", &s, &e, perms, &off, &maj, &min, &ino) == 7) {
      keep = ino != 0 && std::strlen(perms) == 4 && perms[0] == 'r' && perms[1] != 'w' && perms[3] == 'p';
      if (keep) out.push_back({s, e, off, 0});
    } else if (keep && std::sscanf(line.c_str(), "Anonymous: %llu kB", &kib) == 1) {
      out.back().anonymous_kib = kib;
    }
  }
  return out;
}

result<merge_module> merge_module::open(const char* device) {
  merge_module m;
  m.fd_.reset(::open(device, O_RDWR | O_CLOEXEC));
  if (!m.fd_) {
    const int e = errno;
    return plain_error("use the companion module", e == ENOENT ? fmt::format("not loaded ({} does not exist)", device)
                                                                 : fmt::format("{}: {}", device, std::strerror(e)));
  }
  if (ioctl(m.fd_.get(), DUPCACHE_IOC_VERSION, &m.v_) != 0) {
    return plain_error("use the companion module", fmt::format("{} does not answer DUPCACHE_IOC_VERSION: {}", device, std::strerror(errno)));
  }
  if (m.v_.major != DUPCACHE_ABI_MAJOR) {
    return plain_error("use the companion module", fmt::format("{} speaks ABI {}.{}; this dupcache speaks {}.x", device,
                                                               m.v_.major, m.v_.minor, DUPCACHE_ABI_MAJOR));
  }
  return m;
}

std::string merge_module::version() const { return fmt::format("{}.{}", v_.major, v_.minor); }

merge_module::answer merge_module::merge(dupcache_merge req) const {
  req.reason = 0;
  unsigned long cmd = DUPCACHE_IOC_MERGE;
  req.size = sizeof(req);
  if (v_.merge_size < sizeof(req)) {
    // An ABI 1.0 module: the first struct and ioctl number, the target by pid only.
    req.size = DUPCACHE_MERGE_SIZE_V1;
    req.flags &= ~DUPCACHE_MERGE_PIDFD;
    cmd = DUPCACHE_IOC_MERGE_V1;
  }
  if (!(req.flags & DUPCACHE_MERGE_PIDFD)) req.pidfd = 0;
  if (ioctl(fd_.get(), cmd, &req) == 0) return {};
  return {errno, req.reason};
}

bool merge_module::takes_pidfd() const { return v_.merge_size >= DUPCACHE_MERGE_SIZE_V2; }

result<dupcache_stats> merge_module::stats() const {
  dupcache_stats s{};
  const unsigned long cmd = v_.stats_size >= sizeof(s) ? DUPCACHE_IOC_STATS : DUPCACHE_IOC_STATS_V1;
  if (ioctl(fd_.get(), cmd, &s) != 0) return errno_error("read the companion module's counters");
  return s;
}

std::string refusal_name(std::uint32_t reason) {
  switch (reason) {
    case DUPCACHE_OK: return "ok";
    case DUPCACHE_R_PERMISSION: return "permission";
    case DUPCACHE_R_NO_PROCESS: return "no_process";
    case DUPCACHE_R_RANGE: return "range";
    case DUPCACHE_R_IDENTITY: return "identity";
    case DUPCACHE_R_SHARED: return "shared";
    case DUPCACHE_R_WRITABLE: return "writable";
    case DUPCACHE_R_COW: return "cow";
    case DUPCACHE_R_SPECIAL: return "special";
    case DUPCACHE_R_CANONICAL: return "canonical";
    case DUPCACHE_R_OTHER_FS: return "other_fs";
    case DUPCACHE_R_TIMEOUT: return "timeout";
    case DUPCACHE_R_MAP_FAILED: return "map_failed";
    case DUPCACHE_R_INVALID: return "invalid";
    case DUPCACHE_R_STOPPED: return "stopped";
    case DUPCACHE_R_PENDING: return "pending";
    case DUPCACHE_R_WRITERS: return "writers";
    case DUPCACHE_R_CONTENT: return "content";
    case DUPCACHE_R_RACED: return "raced";
    case refused_ptrace: return "ptrace";
    default: return fmt::format("reason_{}", reason);
  }
}

bool same_extents(int a, int b, std::uint64_t offset, std::uint64_t length, std::string* why) {
  struct stat sa {}, sb {};
  if (fstat(a, &sa) != 0 || fstat(b, &sb) != 0) {
    *why = errno_error("stat").message();
    return false;
  }
  const std::uint64_t hi = std::min<std::uint64_t>({offset + length, static_cast<std::uint64_t>(sa.st_size),
                                                    static_cast<std::uint64_t>(sb.st_size)});
  if (offset >= hi) return true;
  auto pa = pieces_of(a, offset, hi), pb = pieces_of(b, offset, hi);
  if (!pa || !pb) {
    *why = (!pa ? pa : pb).err().message();
    return false;
  }
  if (*pa != *pb) {
    *why = fmt::format("bytes {}..{} are not held by the same physical extents", offset, hi);
    return false;
  }
  return true;
}

result<std::string> content_name(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return errno_error("stat");
  auto ext = read_extent_map(fd);
  if (!ext) return ext.err();
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a, 64 bits
  auto mix = [&](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(static_cast<std::uint64_t>(st.st_size));
  for (const auto& e : *ext) {
    mix(e.logical);
    mix(e.physical);
    mix(e.length);
    mix(e.flags & ~(FIEMAP_EXTENT_SHARED | FIEMAP_EXTENT_LAST));
  }
  return fmt::format("{:016x}", h);
}

merge_run merge_mapped(const scan_result& scan, const merge_module& mod, const merge_options& o) {
  merge_run run;
  const auto shares = scan.index.split_waste();
  auto mounts = read_mountinfo();
  std::map<std::string, canonical_dir> dirs;  // by mount point, each locked
  std::set<copy_id> seen;
  fs_registry registry;
  const std::vector<int> targets = o.all ? proc::process_ids() : std::vector<int>(o.pids.begin(), o.pids.end());

  for (int pid : targets) {
    if (pid == getpid()) continue;
    // The target by a pidfd, taken before anything is read from /proc/PID: if the pid is reused
    // meanwhile, the module's answer is "no process", not a merge in the wrong process.
    unique_fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    const std::string maps_path = fmt::format("/proc/{}/smaps", pid);
    unique_fd probe(::open(maps_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!probe) {
      if (!o.all) run.errors.push_back(errno_error("read " + maps_path).message() + (errno == ENOENT ? " (no such process)" : ""));
      continue;
    }
    probe.reset();
    for (const auto& v : mergeable_vmas(read_text(maps_path))) {
      const std::string mf = fmt::format("/proc/{}/map_files/{:x}-{:x}", pid, v.start, v.end);
      unique_fd b(::open(mf.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
      struct stat st {};
      if (!b || fstat(b.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      auto fs = registry.lookup(b.get(), st);
      if (!fs) continue;
      auto c = scan.index.find_copy({fs->id, fs->subvol, static_cast<std::uint64_t>(st.st_ino)});
      if (!c) continue;
      auto sh = shares.find(*c);
      if (sh == shares.end() || sh->second.shared_bytes == 0) continue;
      const std::string& path = scan.files[*c].path;
      if (is_canonical(path)) continue;
      if (o.in_scope && !o.in_scope(*c)) continue;
      if (seen.insert(*c).second) ++run.mapped_copies;

      merge_outcome out;
      out.pid = pid;
      out.start = v.start;
      out.end = v.end;
      out.path = path;
      auto fail = [&](std::string e) {
        out.error = std::move(e);
        run.done.push_back(out);
      };
      if (o.skip && o.skip(pid, v.start, v.end)) continue;
      if (v.anonymous_kib > 0) {
        // The module would refuse it; say so without asking.
        out.refusal = refusal_name(DUPCACHE_R_COW);
        out.error = fmt::format("{:x}-{:x} of process {} holds {} KiB of copy-on-write pages", v.start, v.end, pid,
                                v.anonymous_kib);
        run.done.push_back(out);
        continue;
      }
      // A stopped or traced process would not run the request before the timeout (and would
      // leave it pending): refuse it up front, as the module would.
      if (const char state = proc::process_state(pid); state == 'T' || state == 't') {
        out.refusal = refusal_name(DUPCACHE_R_STOPPED);
        out.error = fmt::format("process {} is stopped or traced", pid);
        run.done.push_back(out);
        continue;
      }
      // The LSMs' say on acting on another process, asked before each request.
      if (auto denied = ptrace_denied(pid); !denied.empty()) {
        out.refusal = refusal_name(refused_ptrace);
        out.error = std::move(denied);
        run.done.push_back(out);
        continue;
      }
      const std::string mp = mounts ? mount_point_of(*mounts, path) : "";
      if (mp.empty()) {
        fail(fmt::format("find the mount {} is on failed: it is not in /proc/self/mountinfo", path));
        continue;
      }
      // FIEMAP does not see unflushed writes: flush the mapped range first, so that the content
      // name and the extents compared below are those of the bytes the process reads now, also
      // when a canonical copy of the old content exists already. (The module proves the bytes
      // equal anyway, at the switch, with writers shut out: this only makes refusals rarer.)
      if (!o.dry_run) {
        sync_file_range(b.get(), static_cast<off_t>(v.offset), static_cast<off_t>(v.end - v.start),
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      }
      auto name = content_name(b.get());
      if (!name) {
        fail(fmt::format("name the content of {}: {}", out.path, name.err().message()));
        continue;
      }
      auto d = dirs.find(mp);
      if (d == dirs.end()) {
        auto opened = open_canonical_dir(mp, !o.dry_run);
        if (!opened) {
          if (!o.dry_run || opened.err().err != ENOENT) {
            fail(opened.err().message());
            continue;
          }
          opened = canonical_dir{join_path(mp, canonical_dir_name), {}};
        }
        d = dirs.emplace(mp, std::move(*opened)).first;
      }
      out.canonical = join_path(d->second.path, *name);
      if (o.dry_run) {
        run.done.push_back(out);
        continue;
      }
      auto canon = canonical_copy(d->second, *name, b.get(), false);
      if (!canon) {
        fail(canon.err().message());
        continue;
      }
      std::string why;
      if (!same_extents(b.get(), canon->get(), v.offset, v.end - v.start, &why)) {
        fail(fmt::format("{} and {}: {}", out.path, out.canonical, why));
        continue;
      }
      // Read the canonical copy's pages in now (readahead(2) is asynchronous: read them), so the
      // process's next faults are minor ones and the eviction that follows finds them cached.
      read_through(canon->get(), v.offset, v.end - v.start);
      unsigned generation = 0;
      ioctl(b.get(), FS_IOC_GETVERSION, &generation);
      dupcache_merge req{};
      req.pid = pid;
      req.start = v.start;
      req.end = v.end;
      req.canonical_fd = canon->get();
      req.timeout_ms = o.timeout_ms;
      req.expect_dev = st.st_dev;
      req.expect_ino = st.st_ino;
      req.expect_generation = generation;
      if (pidfd && mod.takes_pidfd()) {
        req.pidfd = pidfd.get();
        req.flags = DUPCACHE_MERGE_PIDFD;
      }
      const auto a = mod.merge(req);
      if (a.error == 0) {
        out.merged = true;
        run.merged_copies.insert(*c);
        run.merged_bytes += v.end - v.start;
      } else {
        out.refusal = refusal_name(a.reason);
        out.error = fmt::format("the module refused {:x}-{:x} of process {} ({}): {}", v.start, v.end, pid,
                                out.refusal, std::strerror(a.error));
      }
      run.done.push_back(out);
    }
  }
  return run;
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
