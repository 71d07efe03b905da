// SPDX-License-Identifier: GPL-2.0-only
#include <fmt/format.h>

#include <cstdio>
#include <iostream>

#include "cli/commands.hpp"
#include "util/json_text.hpp"
#include "daemon/protocol.hpp"
#include "report/local.hpp"
#include "report/report.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

namespace dupcache {

void add_container_filters(CLI::App* cmd, std::vector<std::string>& containers, std::vector<std::string>& cgroups,
                           const std::string& what) {
  // One value per option: a vector option would swallow the PATHs after it.
  cmd->add_option("--container", containers,
                  what + " this container: id (or a prefix of 4+ characters), name or pod uid (repeatable)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--cgroup", cgroups, what + " containers in this cgroup or below it (repeatable)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

void register_report(CLI::App& app, report_args& a) {
  auto* cmd = app.add_subcommand("report", "One-shot report of duplicated page cache");
  cmd->footer(
      "With no PATH, every mounted filesystem that can share extents (btrfs, XFS with reflink, "
      "bcachefs, ...) is scanned.\nExit status: 0 ok, 1 a PATH could not be scanned or the scan failed, "
      "2 usage error.");
  cmd->add_option("PATH", a.paths, "Files or directories to scan");
  cmd->add_flag("--json", a.json, "Print the JSON document described in dupcache-report(8)");
  // One value per --by (comma separated): a vector option would swallow the PATHs after it.
  cmd->add_option("--by", a.by,
                  "Tables to print: file, group, fs, container (comma separated; default file,group)")
      ->check([](const std::string& v) -> std::string {
        for (const auto& item : split_commas(v)) {
          if (item != "file" && item != "group" && item != "fs" && item != "container") {
            return "'" + item + "' is not one of file, group, fs, container";
          }
        }
        return {};
      });
  add_container_filters(cmd, a.containers, a.cgroups, "Only");
  cmd->add_flag("--from-daemon", a.from_daemon,
                "Ask the running daemon for its live report instead of scanning (see --socket)");
  cmd->add_option("--socket", a.socket, "The daemon's control socket (default /run/dupcache/control.sock)");
  cmd->add_option("--metadata-root", a.metadata_root,
                  "Where container runtimes' metadata is read for names (default /; e.g. /host from a container)");
  cmd->add_option("--top", a.top, "Rows per table (default 20; JSON lists every row unless given)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--bytes", a.bytes, "Print sizes in bytes instead of KiB/MiB/GiB");
  cmd->add_option("-j,--jobs", a.jobs, "Walker threads (default: twice the CPUs, 2..16)")
      ->check(CLI::Range(1u, 256u));
  cmd->add_flag("--cross-mounts", a.cross_mounts,
                "Also enter mounts of other filesystems below a PATH (mounts of the same filesystem are always entered; pseudo filesystems never)");
  cmd->add_flag("--all-extents", a.all_extents,
                "Index every placed extent, not only those the filesystem flags shared (slower)");
  cmd->add_flag("--content", a.content,
                "Also find pages cached twice with equal bytes at different places (copies, overlayfs layers); "
                "with no PATH, walks every local filesystem");
  cmd->add_option("--residency", a.residency, "How residency is read: auto, cachestat, mincore")
      ->check(CLI::IsMember({"auto", "cachestat", "mincore"}));
}

namespace {

int report_from_daemon(const report_args& a) {
  log::use_command_style("report");
  daemon::report_request req;
  if (!a.by.empty()) {
    req.views.clear();
    for (const auto& b : split_commas(a.by)) req.views.push_back(daemon::view_named(b).value());  // --by checked them
  }
  req.json = a.json;
  req.top = a.top;
  req.bytes = a.bytes;
  req.filter = {a.containers, a.cgroups};
  auto r = daemon::ask_report(a.socket, req);
  if (!r) {
    log::error("{}", terminal_safe(r.err().message()));
    return exit_failure;
  }
  std::cout << *r;
  std::cout.flush();
  return std::cout ? exit_ok : exit_failure;
}

}  // namespace

int run_report(const report_args& a) {
  log::use_command_style("report");
  if (a.from_daemon) {
    if (!a.paths.empty()) {
      log::error("--from-daemon reports what the daemon watches: no PATH");
      return exit_usage;
    }
    if (a.content) {
      log::error("--content reads the cached pages on this host: not with --from-daemon");
      return exit_usage;
    }
    return report_from_daemon(a);
  }
  local_report_request req;
  req.scan.paths = a.paths;
  req.scan.jobs = a.jobs;
  req.scan.cross_mounts = a.cross_mounts;
  req.scan.shared_hint = !a.all_extents;
  req.scan.residency = a.residency == "cachestat" ? residency_mode::cachestat
                       : a.residency == "mincore" ? residency_mode::mincore
                                                  : residency_mode::automatic;
  if (!a.by.empty()) {
    req.views.clear();
    for (const auto& b : split_commas(a.by)) {
      req.views.push_back(b == "file"    ? report_view::file
                          : b == "group" ? report_view::group
                          : b == "fs"    ? report_view::fs
                                         : report_view::container);
    }
  }
  req.filter = {a.containers, a.cgroups};
  req.metadata_root = a.metadata_root;
  req.content = a.content;
  // The rows the file table prints (JSON lists every row unless --top is given).
  req.file_rows = a.top > 0 ? a.top : a.json ? all_rows : text_rows;

  auto r = make_local_report(req);
  if (!r) {
    log::error("{}", terminal_safe(r.err().message()));
    return exit_failure;
  }
  if (!r->charges_error.empty()) {
    log::error("page charges unavailable, every page is unattributed: {}",
               r->charges_error);
  }
  for (const auto& e : r->usage_errors) log::error("{}", e);
  if (!r->usage_errors.empty()) return exit_usage;
  if (!r->no_match.empty()) {
    log::error("{}: no container with cached pages under the scanned paths matches",
               terminal_safe(r->no_match));
    return exit_failure;
  }
  report_options ro;
  ro.views = req.views;
  if (a.top > 0) ro.top = a.top;
  ro.exact_bytes = a.bytes;

  if (a.json) {
    write_report_json(std::cout, r->model, ro);  // streamed: the document is never held whole
  } else {
    for (const auto& e : r->model.errors) {
      fmt::print(stderr, "dupcache: {}: {}\n", terminal_safe(e.path), terminal_safe(e.message));
    }
    write_report_text(std::cout, r->model, ro);
  }
  std::cout.flush();
  if (!std::cout) return exit_failure;
  return r->named_path_failed ? exit_failure : exit_ok;
}

}  // namespace dupcache
