// SPDX-License-Identifier: GPL-2.0-only
#include "policy/evict.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include "policy/pageout.hpp"
#include <fmt/format.h>

#include "scan/residency.hpp"
#include "util/json_text.hpp"
#include "util/open_beneath.hpp"

namespace dupcache::policy {

nlohmann::ordered_json outcome_json(const evict_outcome& o) {
  nlohmann::ordered_json r;
  put_path(r, "path", o.path);
  put_path(r, "kept", o.kept_path);
  r["planned_bytes"] = o.planned_bytes;
  r["freed_bytes"] = o.freed_bytes;
  r["skipped_dirty_bytes"] = o.skipped_dirty_bytes;
  r["skipped_keeper_bytes"] = o.skipped_keeper_bytes;
  r["still_cached_bytes"] = o.still_cached_bytes;
  r["paged_out_bytes"] = o.paged_out_bytes;
  r["pageout_processes"] = o.pageout_processes;
  if (!o.error.empty()) r["error"] = json_text(o.error);
  return r;
}

plan_run run_plans(evictor& ev, const std::vector<copy_plan>& plans, std::uint64_t max_bytes) {
  plan_run r;
  for (const auto& p : plans) {
    if (max_bytes != 0 && r.planned_bytes >= max_bytes) break;
    auto o = ev.run(p, max_bytes == 0 ? 0 : max_bytes - r.planned_bytes);
    r.planned_bytes += o.planned_bytes;
    r.freed_bytes += o.freed_bytes;
    r.failed = r.failed || !o.error.empty();
    r.done.push_back(std::move(o));
  }
  return r;
}

namespace {

// The copy's path as the walk reached it: the root (a PATH the caller named, which may pass
// through symlinks) as named, the rest one component at a time with no symlink followed, and
// only O_PATH, which opens nothing (a FIFO does not block, a device is not touched).
unique_fd open_path_only(const file_entry& f) {
  const std::string& path = f.path;
  if (!f.root.empty() && path == f.root) return unique_fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
  std::string root = "/";
  std::string_view rel = path;
  if (!f.root.empty() && path.size() > f.root.size() && path.compare(0, f.root.size(), f.root) == 0 &&
      (path[f.root.size()] == '/' || f.root.str().back() == '/')) {
    root = f.root;
    rel.remove_prefix(f.root.size());
  }
  unique_fd rfd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rfd) return {};
  return open_no_symlinks(rfd.get(), rel, O_PATH);
}

}  // namespace

int evictor::open_copy(copy_id c, std::string* err) {
  if (auto it = fds_.find(c); it != fds_.end()) return it->second.get();
  const auto& path = scan_.files[c].path;
  unique_fd pfd = open_path_only(scan_.files[c]);
  if (!pfd) {
    if (errno == ELOOP || errno == EXDEV || errno == ENOTDIR) {
      *err = plain_error("open " + path, "a directory on its path is a symbolic link now (replaced since it was "
                                         "scanned; not followed)").message();
    } else {
      *err = errno_error("open " + path).message();
    }
    return -1;
  }
  // The type is checked before anything is opened for reading: through a swapped path, an
  // open could have been of a device node or a FIFO.
  struct stat st {};
  if (fstat(pfd.get(), &st) < 0 || !S_ISREG(st.st_mode)) {
    *err = "open " + path + " failed: not a regular file any more";
    return -1;
  }
  unique_fd fd(::open(fmt::format("/proc/self/fd/{}", pfd.get()).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) {
    *err = errno_error("open " + path).message();
    return -1;
  }
  auto fs = registry_.lookup(fd.get(), st);
  const auto& key = scan_.index.key_of(c);
  if (!fs || fs->id != key.fs || fs->subvol != key.subvol || static_cast<std::uint64_t>(st.st_ino) != key.ino) {
    *err = path + ": a different file is there now (renamed or replaced since it was scanned)";
    return -1;
  }
  const int raw = fd.get();
  fds_.emplace(c, std::move(fd));
  return raw;
}

evict_outcome evictor::run(const copy_plan& plan, std::uint64_t budget) {
  evict_outcome out;
  mapped_.reset();
  out.copy = plan.copy;
  out.path = scan_.files[plan.copy].path;
  std::uint64_t largest = 0;
  for (const auto& it : plan.items) {
    if (it.pages * ps_ > largest) {
      largest = it.pages * ps_;
      out.kept_path = scan_.files[it.keeper].path;
    }
  }
  std::string err;
  const int fd = open_copy(plan.copy, &err);
  if (fd < 0) {
    out.error = err;
    return out;
  }
  for (const auto& whole : plan.items) {
    if (budget != 0 && out.planned_bytes + ps_ > budget) break;
    auto it = whole;
    if (budget != 0) it.pages = std::min(it.pages, (budget - out.planned_bytes) / ps_);  // the rest next time
    const std::uint64_t off = it.first_page * ps_, len = it.pages * ps_;
    out.planned_bytes += len;
    std::string kerr;
    const int kfd = open_copy(it.keeper, &kerr);
    auto kept = kfd < 0 ? result<page_counts>(plain_error("open keeper", kerr))
                        : page_counts_range(kfd, it.keeper_first_page * ps_, len);
    if (!kept || kept->cached != it.pages) {
      out.skipped_keeper_bytes += len;
      continue;
    }
    auto before = page_counts_range(fd, off, len);
    if (!before) {
      out.error = before.err().message();
      return out;
    }
    if (before->dirty + before->writeback > 0) {
      out.skipped_dirty_bytes += len;
      continue;
    }
    if (dry_run_) continue;
    if (int rc = posix_fadvise(fd, static_cast<off_t>(off), static_cast<off_t>(len), POSIX_FADV_DONTNEED); rc != 0) {
      out.error = errno_error("posix_fadvise DONTNEED " + out.path, rc).message();
      return out;
    }
    auto after = page_counts_range(fd, off, len);
    if (!after) {
      out.error = after.err().message();
      return out;
    }
    if (pageout_ && after->cached > 0) {
      // Mapped: page it out of the processes that map it, then drop what they released.
      if (!mapped_) {
        mapped_ = find_mappings(fd);
        if (pageout_pids_) std::erase_if(*mapped_, [&](const mapping_range& m) { return !pageout_pids_->count(m.pid); });
      }
      const auto po = page_out(*mapped_, off, len);
      out.pageout_processes = std::max<std::uint64_t>(out.pageout_processes, po.processes);
      if (po.ranges > 0) {
        (void)posix_fadvise(fd, static_cast<off_t>(off), static_cast<off_t>(len), POSIX_FADV_DONTNEED);
        auto again = page_counts_range(fd, off, len);
        if (again && again->cached < after->cached) {
          out.paged_out_bytes += (after->cached - again->cached) * ps_;
          after = again;
        }
      }
    }
    const std::uint64_t freed = before->cached > after->cached ? before->cached - after->cached : 0;
    out.freed_bytes += freed * ps_;
    out.still_cached_bytes += after->cached * ps_;
  }
  return out;
}

}  // namespace dupcache::policy
