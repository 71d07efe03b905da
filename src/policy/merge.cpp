// SPDX-License-Identifier: GPL-2.0-only
#include "policy/merge.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "scan/extent_compare.hpp"
#include "scan/fs_identity.hpp"
#include "scan/mounts.hpp"
#include "util/fd.hpp"
#include "util/proc.hpp"

namespace dupcache::policy {
namespace {

// Returns the bytes read.
std::uint64_t read_through(int fd, std::uint64_t offset, std::uint64_t length) {
  std::vector<char> buf(std::min<std::uint64_t>(length, 1 << 20));
  std::uint64_t at = offset;
  while (at < offset + length) {
    const auto n = pread(fd, buf.data(), std::min<std::uint64_t>(buf.size(), offset + length - at), static_cast<off_t>(at));
    if (n <= 0) break;  // end of file, or an error the mapping will meet anyway
    at += static_cast<std::uint64_t>(n);
  }
  return at - offset;
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

// The mappings the module could move: of a file, private, readable and not writable (a shared
// or writable one would see a write through the canonical copy; the module refuses them too).
std::vector<vma_line> mergeable(const std::vector<proc::smaps_mapping>& maps) {
  std::vector<vma_line> out;
  for (const auto& m : maps) {
    const auto& p = m.perms;
    if (m.inode != 0 && p.size() == 4 && p[0] == 'r' && p[1] != 'w' && p[3] == 'p') {
      out.push_back({m.start, m.end, m.offset, m.anonymous_kib});
    }
  }
  return out;
}

}  // namespace

std::vector<vma_line> mergeable_vmas(const std::string& smaps) { return mergeable(proc::parse_smaps(smaps)); }

result<void> warm_range(int fd, std::uint64_t offset, std::uint64_t length, residency_reader& reader, merge_run& run) {
  if (length == 0) return {};
  const auto ps = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  const std::uint64_t first = offset / ps, last = (offset + length + ps - 1) / ps;
  auto cached = reader.clean_runs(fd, first, last - first);
  if (!cached) return cached.err();
  // Read the gaps between the cached runs, clipped to the range asked.
  const std::uint64_t end = offset + length;
  std::uint64_t at = offset;
  auto read_to = [&](std::uint64_t to) {
    if (to > at) run.canonical_read_bytes += read_through(fd, at, to - at);
  };
  for (const auto& r : *cached) {
    const std::uint64_t rs = std::max(offset, r.first * ps), re = std::min(end, (r.first + r.pages) * ps);
    if (re <= rs) continue;
    read_to(rs);
    run.canonical_cached_bytes += re - rs;
    at = std::max(at, re);
  }
  read_to(end);
  return {};
}

merge_run merge_mapped(const scan_result& scan, const merge_module& mod, const merge_options& o) {
  merge_run run;
  const auto shares = scan.index.split_waste();
  auto mounts = read_mountinfo();
  std::map<std::string, canonical_dir> dirs;  // by mount point, each locked
  std::set<copy_id> seen;
  fs_registry registry;
  const std::vector<int> targets = o.all ? proc::process_ids() : std::vector<int>(o.pids.begin(), o.pids.end());
  auto reader = make_residency_reader(residency_mode::automatic, static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)));

  for (int pid : targets) {
    if (pid == getpid()) continue;
    // The target by a pidfd, taken before anything is read from /proc/PID: if the pid is reused
    // meanwhile, the module's answer is "no process", not a merge in the wrong process.
    unique_fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    const auto maps = proc::read_smaps(pid);
    if (!maps) {
      const int e = errno;
      if (!o.all) {
        run.errors.push_back(errno_error(fmt::format("read /proc/{}/smaps", pid), e).message() +
                             (e == ENOENT ? " (no such process)" : ""));
      }
      continue;
    }
    for (const auto& v : mergeable(*maps)) {
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
        out.refusal = refusal_name(refused_cow);
        out.error = fmt::format("{:x}-{:x} of process {} holds {} KiB of copy-on-write pages", v.start, v.end, pid,
                                v.anonymous_kib);
        run.done.push_back(out);
        continue;
      }
      // A stopped or traced process would not run the request before the timeout (and would
      // leave it pending): refuse it up front, as the module would.
      if (const char state = proc::process_state(pid); state == 'T' || state == 't') {
        out.refusal = refusal_name(refused_stopped);
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
      // What is cached already (another mapping of this copy was merged before) is not read
      // again; without a residency reader, all of it is.
      if (!reader || !warm_range(canon->get(), v.offset, v.end - v.start, **reader, run)) {
        run.canonical_read_bytes += read_through(canon->get(), v.offset, v.end - v.start);
      }
      unsigned generation = 0;
      ioctl(b.get(), FS_IOC_GETVERSION, &generation);
      merge_module::request req;
      req.pid = pid;
      req.pidfd = pidfd.get();
      req.start = v.start;
      req.end = v.end;
      req.canonical_fd = canon->get();
      req.timeout_ms = o.timeout_ms;
      req.expect_dev = st.st_dev;
      req.expect_ino = st.st_ino;
      req.expect_generation = generation;
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

}  // namespace dupcache::policy
