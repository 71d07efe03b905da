// SPDX-License-Identifier: GPL-2.0-only
#include "policy/evict.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <algorithm>

#include "policy/pageout.hpp"

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

// The copy's path as the walk reached it, opened O_PATH (util/open_beneath.hpp).
unique_fd open_path_only(const file_entry& f) { return open_walked_path(f.root, f.path); }

}  // namespace

unique_fd evictor::open_copy(copy_id c, std::string* err) {
  const auto& path = scan_.files[c].path;
  unique_fd pfd = open_path_only(scan_.files[c]);
  if (!pfd) {
    if (errno == ELOOP || errno == EXDEV || errno == ENOTDIR) {
      *err = plain_error("open " + path, "a directory on its path is a symbolic link now (replaced since it was "
                                         "scanned; not followed)").message();
    } else {
      *err = errno_error("open " + path).message();
    }
    return {};
  }
  // The type is checked before anything is opened for reading: through a swapped path, an
  // open could have been of a device node or a FIFO.
  struct stat st {};
  if (fstat(pfd.get(), &st) < 0 || !S_ISREG(st.st_mode)) {
    *err = "open " + path + " failed: not a regular file any more";
    return {};
  }
  unique_fd fd(::open(fmt::format("/proc/self/fd/{}", pfd.get()).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) {
    *err = errno_error("open " + path).message();
    return {};
  }
  auto fs = registry_.lookup(fd.get(), st);
  const auto& key = scan_.index.key_of(c);
  if (!fs || fs->id != key.fs || fs->subvol != key.subvol || static_cast<std::uint64_t>(st.st_ino) != key.ino) {
    *err = path + ": a different file is there now (renamed or replaced since it was scanned)";
    return {};
  }
  return fd;
}

std::size_t evictor::keepers_cache_size() {
  struct rlimit rl {};
  const rlim_t soft = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
  return static_cast<std::size_t>(std::clamp<rlim_t>(soft / 16, 1, 64));
}

int evictor::keeper_fd(copy_id c, std::string* err) {
  if (const unique_fd* kept = keepers_.find(c)) return kept->get();
  unique_fd fd = open_copy(c, err);
  if (!fd) return -1;
  return keepers_.put(c, std::move(fd)).get();
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
  const unique_fd copy_fd = open_copy(plan.copy, &err);
  if (!copy_fd) {
    out.error = err;
    return out;
  }
  const int fd = copy_fd.get();
  for (const auto& whole : plan.items) {
    if (budget != 0 && out.planned_bytes + ps_ > budget) break;
    auto it = whole;
    if (budget != 0) it.pages = std::min(it.pages, (budget - out.planned_bytes) / ps_);  // the rest next time
    const std::uint64_t off = it.first_page * ps_, len = it.pages * ps_;
    out.planned_bytes += len;
    std::string kerr;
    const int kfd = keeper_fd(it.keeper, &kerr);
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
