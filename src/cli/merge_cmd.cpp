// SPDX-License-Identifier: GPL-2.0-only
// dupcache merge: mapped duplicates onto one cached copy. The options become a merge request;
// policy/merge_pass.hpp runs it (through the companion module where it is loaded, else paging
// out and evicting) and output/merge.hpp prints what it did.
#include <fmt/format.h>

#include <iostream>
#include <set>

#include "cli/commands.hpp"
#include "util/log.hpp"
#include "output/merge.hpp"
#include "policy/merge_pass.hpp"
#include "util/text.hpp"

namespace dupcache {

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

int run_merge(const merge_args& a) {
  log::use_command_style("merge");
  if (a.pids.empty() && !a.all) {
    log::error("name the processes: --pid PID (repeatable) or --all");
    return exit_usage;
  }
  policy::merge_request req;
  req.paths = a.paths;
  req.pids = std::set<int>(a.pids.begin(), a.pids.end());
  req.all = a.all;
  req.use_module = !a.no_module;
  req.timeout_ms = a.timeout_ms;
  req.dry_run = a.dry_run;
  auto r = policy::run_merge_pass(req);
  if (!r) {
    log::error("{}", terminal_safe(r.err().message()));
    return exit_failure;
  }
  if (a.json) {
    output::merge_json(*r, std::cout);
  } else {
    output::merge_text(*r, a.bytes, std::cout, stderr);
  }
  std::cout.flush();
  return r->failed || !std::cout ? exit_failure : exit_ok;
}

}  // namespace dupcache
