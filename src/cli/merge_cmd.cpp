// SPDX-License-Identifier: GPL-2.0-only
// dupcache merge: mapped duplicates onto one cached copy. Merging proper (pointing a process's
// mapping at a canonical copy) is the companion kernel module's; without it, the mapped
// duplicates are paged out of the processes named and evicted, keeping one copy cached.
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <set>

#include "cli/commands.hpp"
#include "policy/evict.hpp"
#include "policy/plan.hpp"
#include "scan/fs_identity.hpp"
#include "util/text.hpp"

namespace dupcache {
namespace {

constexpr const char* module_device = "/dev/dupcache";

// Why the module cannot be used; this build has no merge ioctl client yet, so any answer is a
// reason to fall back.
std::string module_state() {
  const int fd = ::open(module_device, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fmt::format("companion module not loaded ({}: {})", module_device, std::strerror(errno));
  ::close(fd);
  return fmt::format("{} exists, but this dupcache build has no client for its ABI", module_device);
}

// The copies the processes map: every /proc/PID/map_files entry, by identity.
std::set<copy_id> mapped_copies(const scan_result& scan, const std::set<int>& pids, bool all, std::string* err) {
  std::set<copy_id> out;
  fs_registry registry;
  std::vector<int> targets(pids.begin(), pids.end());
  if (all) {
    targets.clear();
    if (DIR* proc = opendir("/proc")) {
      while (struct dirent* de = readdir(proc)) {
        if (de->d_name[0] >= '1' && de->d_name[0] <= '9') targets.push_back(std::atoi(de->d_name));
      }
      closedir(proc);
    }
  }
  for (int pid : targets) {
    const std::string dir = fmt::format("/proc/{}/map_files", pid);
    DIR* mf = opendir(dir.c_str());
    if (!mf) {
      if (!all) *err = errno_error("read " + dir).message() + (errno == ENOENT ? " (no such process)" : "");
      continue;
    }
    while (struct dirent* m = readdir(mf)) {
      if (m->d_name[0] == '.') continue;
      const int fd = openat(dirfd(mf), m->d_name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0) continue;
      struct stat st {};
      if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if (auto fs = registry.lookup(fd, st)) {
          if (auto c = scan.index.find_copy({fs->id, fs->subvol, static_cast<std::uint64_t>(st.st_ino)})) out.insert(*c);
        }
      }
      ::close(fd);
    }
    closedir(mf);
  }
  return out;
}

}  // namespace

void register_merge(CLI::App& app, merge_args& a) {
  auto* cmd = app.add_subcommand("merge", "Merge mapped duplicates onto one cached copy (needs the companion module; "
                                          "falls back to paging out and evicting)");
  cmd->footer(
      "Without the companion kernel module the mapped duplicate copies of the processes named are paged out of them "
      "(process_madvise MADV_PAGEOUT) and evicted, keeping one copy of each block cached.\n"
      "Exit status: 0 ok, 1 a PATH could not be scanned, a process could not be read or an action failed, 2 usage "
      "error.");
  cmd->add_option("PATH", a.paths, "Filesystems to consider (default: every filesystem that can share extents)");
  auto* pid = cmd->add_option("-p,--pid", a.pids, "A process whose mapped duplicates to merge (repeatable)")
                  ->allow_extra_args(false)
                  ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
                  ->check(CLI::PositiveNumber);
  auto* all = cmd->add_flag("--all", a.all, "Every process");
  pid->excludes(all);
  cmd->add_flag("-n,--dry-run", a.dry_run, "Plan and print, act on nothing");
  cmd->add_flag("--json", a.json, "Print the result as one JSON document");
  cmd->add_flag("--bytes", a.bytes, "Sizes in bytes");
}

int run_merge(const merge_args& a) {
  if (a.pids.empty() && !a.all) {
    fmt::print(stderr, "dupcache: merge: name the processes: --pid PID (repeatable) or --all\n");
    return exit_usage;
  }
  const std::string why_fallback = module_state();
  scan_options so;
  so.paths = a.paths;
  so.keep_placements = true;
  auto scanned = scan(so);
  if (!scanned) {
    fmt::print(stderr, "dupcache: merge: {}\n", scanned.err().message());
    return exit_failure;
  }
  std::string err;
  const std::set<int> pids(a.pids.begin(), a.pids.end());
  const auto mapped = mapped_copies(*scanned, pids, a.all, &err);
  if (!err.empty()) {
    fmt::print(stderr, "dupcache: merge: {}\n", err);
    return exit_failure;
  }
  auto plans = policy::plan_evictions(*scanned, policy::keep_rule::priority, [&](copy_id c) {
    policy::copy_facts f;
    // Keep a copy nobody named maps where there is one; then the most cached.
    f.priority = mapped.count(c) ? 0 : 1;
    f.heat = scanned->files[c].cached_bytes;
    f.evictable = mapped.count(c) > 0;
    return f;
  });
  policy::evictor ev(*scanned, a.dry_run, true);
  if (!a.all) ev.pageout_only(pids);
  const auto [done, planned, freed, acts_failed] = policy::run_plans(ev, plans);
  const bool failed = scanned->named_path_failed || acts_failed;
  auto size = [&](std::uint64_t b) { return a.bytes ? fmt::format("{}", b) : human_bytes(b); };
  if (a.json) {
    nlohmann::ordered_json j;
    j["merged"] = false;
    j["fallback"] = why_fallback;
    j["dry_run"] = a.dry_run;
    j["mapped_copies"] = mapped.size();
    j["planned_bytes"] = planned;
    j["freed_bytes"] = freed;
    j["actions"] = nlohmann::ordered_json::array();
    for (const auto& o : done) j["actions"].push_back(policy::outcome_json(o));
    std::cout << j.dump(2) << '\n';
  } else {
    fmt::print(stderr, "dupcache: merge: {}: paging out and evicting instead\n", why_fallback);
    for (const auto& o : done) {
      if (!o.error.empty()) {
        fmt::print(stderr, "dupcache: merge: {}\n", terminal_safe(o.error));
        continue;
      }
      std::cout << fmt::format("{} {:>9}  {}  (kept: {}; paged out of {} process(es))\n",
                               a.dry_run ? "would free" : "freed", size(a.dry_run ? o.planned_bytes : o.freed_bytes),
                               terminal_safe(o.path), terminal_safe(o.kept_path), o.pageout_processes);
    }
    if (done.empty()) std::cout << fmt::format("nothing to merge: {} mapped file(s), none with a duplicate cached\n", mapped.size());
    else std::cout << fmt::format("{} {} from {} mapped duplicate(s)\n", a.dry_run ? "would free" : "freed",
                                  size(a.dry_run ? planned : freed), done.size());
  }
  std::cout.flush();
  return failed || !std::cout ? exit_failure : exit_ok;
}

}  // namespace dupcache
