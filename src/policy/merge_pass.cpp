// SPDX-License-Identifier: GPL-2.0-only
#include "policy/merge_pass.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <cstring>
#include <optional>

#include "policy/in_use.hpp"
#include "policy/plan.hpp"
#include "scan/fs_identity.hpp"
#include "util/fd.hpp"
#include "util/proc.hpp"

namespace dupcache::policy {
namespace {

// The copies the processes map: every /proc/PID/map_files entry, by identity. `err` says which
// named process could not be read.
std::set<copy_id> mapped_copies(const scan_result& scan, const std::set<int>& pids, bool all, std::optional<error>* err) {
  std::set<copy_id> out;
  fs_registry registry;
  const std::vector<int> targets = all ? proc::process_ids() : std::vector<int>(pids.begin(), pids.end());
  for (int pid : targets) {
    const bool read = proc::for_each_held_file(pid, proc::held_kind::mapped, [&](const proc::held_file& h) {
      unique_fd fd(openat(h.dir_fd, h.name, O_RDONLY | O_CLOEXEC | O_NONBLOCK));
      struct stat st {};
      if (!fd || fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return;
      if (auto fs = registry.lookup(fd.get(), st)) {
        if (auto c = scan.index.find_copy({fs->id, fs->subvol, static_cast<std::uint64_t>(st.st_ino)})) out.insert(*c);
      }
    });
    if (!read && !all) {
      const int e = errno;
      *err = error{fmt::format("read /proc/{}/map_files", pid), e,
                   std::string(std::strerror(e)) + (e == ENOENT ? " (no such process)" : "")};
    }
  }
  return out;
}

// Without the module: page the named processes' mapped duplicates out and evict them.
result<plan_run> page_out_and_evict(const scan_result& scan, const merge_request& req, std::uint64_t* mapped_count) {
  std::optional<error> err;
  const auto mapped = mapped_copies(scan, req.pids, req.all, &err);
  *mapped_count = mapped.size();
  if (err) return *err;
  const auto in_use = files_in_use::collect();
  auto plans = plan_evictions(scan, keep_rule::priority, [&](copy_id c) {
    copy_facts f;
    // Keep a copy nobody named maps where there is one, one another process uses first; then
    // the most cached.
    f.priority = mapped.count(c) ? 0 : 1;
    f.in_use = in_use.holds_copy(scan, c);
    f.heat = scan.files[c].cached_bytes;
    f.evictable = mapped.count(c) > 0;
    return f;
  });
  evictor ev(scan, req.dry_run, true);
  if (!req.all) ev.pageout_only(req.pids);
  return run_plans(ev, plans);
}

// With the module: merge, then evict the copies the merged mappings were moved off (from a fresh
// scan: the canonical copies are cached now), then remove canonical copies nobody maps.
void merge_with_module(const scan_result& before, const merge_module& mod, const merge_request& req, merge_report* r) {
  merge_options mo;
  mo.pids = req.pids;
  mo.all = req.all;
  mo.dry_run = req.dry_run;
  mo.timeout_ms = req.timeout_ms;
  r->merged = merge_mapped(before, mod, mo);
  r->mapped = r->merged.mapped_copies;
  for (const auto& e : r->merged.errors) r->errors.push_back(e);
  if (req.dry_run) return;
  scan_options so;
  so.paths = req.paths;
  so.keep_placements = true;
  auto after = scan(so);
  if (!after) {
    r->errors.push_back(after.err().message());
    return;
  }
  std::set<copy_id> moved;
  for (copy_id c : r->merged.merged_copies) {
    if (auto n = after->index.find_copy(before.index.key_of(c))) moved.insert(*n);
  }
  if (!moved.empty()) {
    auto plans = plan_evictions(*after, keep_rule::priority, [&](copy_id c) {
      copy_facts f;
      f.priority = is_canonical(after->files[c].path.str()) ? 2 : moved.count(c) ? 0 : 1;
      f.heat = after->files[c].cached_bytes;
      f.evictable = moved.count(c) > 0;
      return f;
    });
    evictor ev(*after, false, false);
    r->evicted = run_plans(ev, plans);
  }
  r->canonical_removed = collect_canonical(canonical_mounts(*after), &r->errors);
}

}  // namespace

result<merge_report> run_merge_pass(const merge_request& req) {
  merge_report r;
  r.dry_run = req.dry_run;
  std::optional<merge_module> mod;
  if (!req.use_module) {
    r.module_declined = true;
  } else if (auto m = merge_module::open(); m) {
    mod.emplace(std::move(*m));
    r.module = true;
    r.module_version = mod->version();
  } else {
    r.module_error = m.err().reason();
  }
  scan_options so;
  so.paths = req.paths;
  so.keep_placements = true;
  auto scanned = scan(so);
  if (!scanned) return scanned.err();
  if (mod) {
    merge_with_module(*scanned, *mod, req, &r);
  } else {
    auto evicted = page_out_and_evict(*scanned, req, &r.mapped);
    if (!evicted) return evicted.err();
    r.evicted = std::move(*evicted);
  }
  r.failed = scanned->named_path_failed || r.evicted.failed || !r.errors.empty();
  for (const auto& m : r.merged.done) {
    if (m.merged) ++r.merged_mappings;
    if (!m.error.empty() && m.refusal.empty()) r.failed = true;
  }
  return r;
}

}  // namespace dupcache::policy
