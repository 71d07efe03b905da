// SPDX-License-Identifier: GPL-2.0-only
// dupcache merge: mapped duplicates onto one cached copy. With the companion kernel module the
// processes' mappings of duplicated copies are pointed at one canonical copy (policy/merge.hpp)
// and the copies, no longer mapped, are evicted; without it, the mapped duplicates are paged out
// of the processes named and evicted, keeping one copy cached.
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <optional>
#include <set>

#include "cli/commands.hpp"
#include "policy/evict.hpp"
#include "policy/in_use.hpp"
#include "policy/merge.hpp"
#include "policy/pageout.hpp"
#include "policy/plan.hpp"
#include "scan/fs_identity.hpp"
#include "util/fd.hpp"
#include "util/json_text.hpp"
#include "util/proc.hpp"
#include "util/text.hpp"

namespace dupcache {
namespace {

// The copies the processes map: every /proc/PID/map_files entry, by identity.
std::set<copy_id> mapped_copies(const scan_result& scan, const std::set<int>& pids, bool all, std::string* err) {
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
      *err = errno_error(fmt::format("read /proc/{}/map_files", pid)).message() + (errno == ENOENT ? " (no such process)" : "");
    }
  }
  return out;
}

}  // namespace

void register_merge(CLI::App& app, merge_args& a) {
  auto* cmd = app.add_subcommand("merge", "Merge mapped duplicates onto one cached copy (with the companion module; "
                                          "else pages out and evicts)");
  cmd->footer(
      "With the companion kernel module (/dev/dupcache), each read-only private mapping of a duplicated file is "
      "pointed at a canonical copy: a read-only reflink clone in <mount point>/.dupcache-canonical. The copies, no "
      "longer mapped, are then evicted, and canonical copies nobody maps are removed. Without the module the mapped "
      "duplicate copies are paged out of the processes named (process_madvise MADV_PAGEOUT) and evicted, keeping one "
      "copy of each block cached.\n"
      "Exit status: 0 ok (refused mappings are reported, not failures), 1 a PATH could not be scanned, a process "
      "could not be read or an action failed, 2 usage error.");
  cmd->add_option("PATH", a.paths, "Filesystems to consider (default: every filesystem that can share extents)");
  auto* pid = cmd->add_option("-p,--pid", a.pids, "A process whose mapped duplicates to merge (repeatable)")
                  ->allow_extra_args(false)
                  ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
                  ->check(CLI::PositiveNumber);
  auto* all = cmd->add_flag("--all", a.all, "Every process");
  pid->excludes(all);
  cmd->add_flag("--no-module", a.no_module, "Page out and evict even where the companion module is loaded");
  cmd->add_option("--timeout", a.timeout_ms, "How long a process may take to run a merge, in ms (default 5000)")
      ->check(CLI::Range(1, 60000));
  cmd->add_flag("-n,--dry-run", a.dry_run, "Plan and print, act on nothing");
  cmd->add_flag("--json", a.json, "Print the result as one JSON document");
  cmd->add_flag("--bytes", a.bytes, "Sizes in bytes");
}

namespace {

// What a merge run did, for both ways of merging.
struct merge_report {
  bool module = false;
  std::string module_version;
  std::string fallback;  // why the module was not used
  std::uint64_t mapped = 0;
  policy::merge_run merged;
  policy::plan_run evicted;
  std::uint64_t canonical_removed = 0;
  std::vector<std::string> errors;
};

// The fallback: page the named processes' mapped duplicates out and evict them.
policy::plan_run page_out_and_evict(const scan_result& scan, const merge_args& a, std::uint64_t* mapped_count,
                                    std::string* err) {
  const std::set<int> pids(a.pids.begin(), a.pids.end());
  const auto mapped = mapped_copies(scan, pids, a.all, err);
  *mapped_count = mapped.size();
  if (!err->empty()) return {};
  const auto in_use = policy::files_in_use::collect();
  auto plans = policy::plan_evictions(scan, policy::keep_rule::priority, [&](copy_id c) {
    policy::copy_facts f;
    // Keep a copy nobody named maps where there is one, one another process uses first; then
    // the most cached.
    f.priority = mapped.count(c) ? 0 : 1;
    f.in_use = in_use.holds_copy(scan, c);
    f.heat = scan.files[c].cached_bytes;
    f.evictable = mapped.count(c) > 0;
    return f;
  });
  policy::evictor ev(scan, a.dry_run, true);
  if (!a.all) ev.pageout_only(pids);
  return policy::run_plans(ev, plans);
}

// With the module: merge, then evict the copies the merged mappings were moved off (from a fresh
// scan: the canonical copies are cached now), then remove canonical copies nobody maps.
void merge_with_module(const scan_result& before, const policy::merge_module& mod, const merge_args& a,
                       merge_report* r) {
  policy::merge_options mo;
  mo.pids = std::set<int>(a.pids.begin(), a.pids.end());
  mo.all = a.all;
  mo.dry_run = a.dry_run;
  mo.timeout_ms = a.timeout_ms;
  r->merged = policy::merge_mapped(before, mod, mo);
  r->mapped = r->merged.mapped_copies;
  for (const auto& e : r->merged.errors) r->errors.push_back(e);
  if (a.dry_run) return;
  scan_options so;
  so.paths = a.paths;
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
    auto plans = policy::plan_evictions(*after, policy::keep_rule::priority, [&](copy_id c) {
      policy::copy_facts f;
      f.priority = policy::is_canonical(after->files[c].path) ? 2 : moved.count(c) ? 0 : 1;
      f.heat = after->files[c].cached_bytes;
      f.evictable = moved.count(c) > 0;
      return f;
    });
    policy::evictor ev(*after, false, false);
    r->evicted = policy::run_plans(ev, plans);
  }
  r->canonical_removed = policy::collect_canonical(policy::canonical_mounts(*after), &r->errors);
}

}  // namespace

int run_merge(const merge_args& a) {
  if (a.pids.empty() && !a.all) {
    fmt::print(stderr, "dupcache: merge: name the processes: --pid PID (repeatable) or --all\n");
    return exit_usage;
  }
  merge_report r;
  std::optional<policy::merge_module> mod;
  if (a.no_module) {
    r.fallback = "--no-module";
  } else if (auto m = policy::merge_module::open(); m) {
    mod.emplace(std::move(*m));
    r.module = true;
    r.module_version = mod->version();
  } else {
    r.fallback = "companion module " + m.err().reason();
  }
  scan_options so;
  so.paths = a.paths;
  so.keep_placements = true;
  auto scanned = scan(so);
  if (!scanned) {
    fmt::print(stderr, "dupcache: merge: {}\n", terminal_safe(scanned.err().message()));
    return exit_failure;
  }
  if (mod) {
    merge_with_module(*scanned, *mod, a, &r);
  } else {
    std::string err;
    r.evicted = page_out_and_evict(*scanned, a, &r.mapped, &err);
    if (!err.empty()) {
      fmt::print(stderr, "dupcache: merge: {}\n", terminal_safe(err));
      return exit_failure;
    }
  }
  const auto& done = r.evicted.done;
  bool failed = scanned->named_path_failed || r.evicted.failed || !r.errors.empty();
  std::uint64_t merged_mappings = 0;
  for (const auto& m : r.merged.done) {
    if (m.merged) ++merged_mappings;
    if (!m.error.empty() && m.refusal.empty()) failed = true;
  }
  auto size = [&](std::uint64_t b) { return a.bytes ? fmt::format("{}", b) : human_bytes(b); };
  if (a.json) {
    nlohmann::ordered_json j;
    j["merged"] = merged_mappings > 0;
    j["module"] = r.module ? nlohmann::ordered_json(r.module_version) : nlohmann::ordered_json(nullptr);
    j["fallback"] = r.module ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.fallback);
    j["dry_run"] = a.dry_run;
    j["mapped_copies"] = r.mapped;
    j["merged_mappings"] = merged_mappings;
    j["merged_bytes"] = r.merged.merged_bytes;
    j["mappings"] = nlohmann::ordered_json::array();
    for (const auto& m : r.merged.done) {
      j["mappings"].push_back({{"pid", m.pid},
                               {"start", fmt::format("{:#x}", m.start)},
                               {"end", fmt::format("{:#x}", m.end)},
                               {"merged", m.merged},
                               {"refusal", m.refusal.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(m.refusal)},
                               {"error", m.error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(json_text(m.error))}});
      put_path(j["mappings"].back(), "path", m.path);
      put_path(j["mappings"].back(), "canonical", m.canonical);
    }
    j["planned_bytes"] = r.evicted.planned_bytes;
    j["freed_bytes"] = r.evicted.freed_bytes;
    j["actions"] = nlohmann::ordered_json::array();
    for (const auto& o : done) j["actions"].push_back(policy::outcome_json(o));
    j["canonical_removed"] = r.canonical_removed;
    j["errors"] = nlohmann::ordered_json::array();
    for (const auto& e : r.errors) j["errors"].push_back(json_text(e));
    std::cout << dump_json(j, 2) << '\n';
  } else {
    for (const auto& e : r.errors) fmt::print(stderr, "dupcache: merge: {}\n", terminal_safe(e));
    if (!r.module) fmt::print(stderr, "dupcache: merge: {}: paging out and evicting instead\n", r.fallback);
    for (const auto& m : r.merged.done) {
      const std::string range = fmt::format("pid {} {:x}-{:x}", m.pid, m.start, m.end);
      if (m.merged || (a.dry_run && m.error.empty())) {
        std::cout << fmt::format("{} {}  {}  ->  {}  ({})\n", a.dry_run ? "would merge" : "merged", range,
                                 terminal_safe(m.path), terminal_safe(m.canonical), size(m.end - m.start));
      } else {
        std::cout << fmt::format("{} {}  {}: {}\n", m.refusal.empty() ? "failed" : "refused", range, terminal_safe(m.path),
                                 terminal_safe(m.error));
      }
    }
    for (const auto& o : done) {
      if (!o.error.empty()) {
        fmt::print(stderr, "dupcache: merge: {}\n", terminal_safe(o.error));
        continue;
      }
      std::cout << fmt::format("{} {:>9}  {}  (kept: {}; paged out of {} process(es))\n",
                               a.dry_run ? "would free" : "freed", size(a.dry_run ? o.planned_bytes : o.freed_bytes),
                               terminal_safe(o.path), terminal_safe(o.kept_path), o.pageout_processes);
    }
    if (r.module) {
      std::cout << fmt::format("{} {} mapping(s) of {} duplicated file(s) ({}); freed {}; removed {} unused canonical "
                               "cop{}\n",
                               a.dry_run ? "would merge" : "merged", a.dry_run ? r.merged.done.size() : merged_mappings,
                               r.mapped, size(r.merged.merged_bytes), size(r.evicted.freed_bytes), r.canonical_removed,
                               r.canonical_removed == 1 ? "y" : "ies");
    } else if (done.empty()) {
      std::cout << fmt::format("nothing to merge: {} mapped file(s), none with a duplicate cached\n", r.mapped);
    } else {
      std::cout << fmt::format("{} {} from {} mapped duplicate(s)\n", a.dry_run ? "would free" : "freed",
                               size(a.dry_run ? r.evicted.planned_bytes : r.evicted.freed_bytes), done.size());
    }
  }
  std::cout.flush();
  return failed || !std::cout ? exit_failure : exit_ok;
}

}  // namespace dupcache
