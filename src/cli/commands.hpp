// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <CLI/CLI.hpp>

#include "policy/config.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace dupcache {

// Exit status, the same for every subcommand.
constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

struct report_args {
  std::vector<std::string> paths;
  bool json = false;
  std::string by;  // comma-separated views
  std::size_t top = 0;
  bool bytes = false;
  unsigned jobs = 0;
  bool cross_mounts = false;
  bool all_extents = false;
  std::string residency = "auto";
  std::vector<std::string> containers;  // --container
  std::vector<std::string> cgroups;     // --cgroup
  std::string metadata_root = "/";
  bool from_daemon = false;
  std::string socket = "/run/dupcache/control.sock";
  bool content = false;
};

void register_report(CLI::App& app, report_args& args);
int run_report(const report_args& args);

struct top_args {
  std::vector<std::string> paths;
  double delay_s = 2.0;
  std::uint64_t iterations = 0;
  bool batch = false;
  bool json = false;
  std::string view = "files";
  std::string sort;
  std::size_t top = 0;
  bool bytes = false;
  bool no_bpf = false;
  std::uint64_t ring_buffer = std::uint64_t{16} << 20;
  bool cross_mounts = false;
  std::vector<std::string> containers;
  std::vector<std::string> cgroups;
  bool no_containers = false;
  std::string metadata_root = "/";
  bool from_daemon = false;
  std::string socket = "/run/dupcache/control.sock";
  bool content = false;
  double content_interval_s = 0;  // 0: not given (the default is content_interval_default_s)
};
void register_top(CLI::App& app, top_args& args);
int run_top(const top_args& args);

struct trace_args {
  std::vector<std::string> paths;
  std::uint64_t count = 0;
  double duration_s = 0;
  std::uint64_t ring_buffer = std::uint64_t{16} << 20;
  bool all = false;
  bool no_sharing = false;
  bool per_folio = false;
};
void register_trace(CLI::App& app, trace_args& args);
int run_trace(const trace_args& args);

struct evict_args {
  std::vector<std::string> paths;
  bool dry_run = false;
  bool json = false;
  bool bytes = false;
  std::vector<std::string> containers;      // scope: only copies charged to these
  std::vector<std::string> cgroups;
  std::vector<std::string> keep_containers; // their copies are kept first
  std::uint64_t max_bytes = 0;
  bool cross_mounts = false;
  bool no_pageout = false;
  std::string metadata_root = "/";
};
void register_evict(CLI::App& app, evict_args& args);
int run_evict(const evict_args& args);

// --container / --cgroup, as report, top and evict take them.
void add_container_filters(CLI::App* cmd, std::vector<std::string>& containers, std::vector<std::string>& cgroups,
                           const std::string& what);

struct merge_args {
  std::vector<std::string> paths;
  std::vector<int> pids;
  bool all = false;
  bool no_module = false;
  unsigned timeout_ms = 0;
  bool dry_run = false;
  bool json = false;
  bool bytes = false;
};
void register_merge(CLI::App& app, merge_args& args);
int run_merge(const merge_args& args);

struct dedupe_args {
  std::vector<std::string> paths;
  bool dry_run = false;
  std::string rate;  // bytes per second, as policy::parse_size reads it; empty: no limit
  bool json = false;
  bool bytes = false;
};
void register_dedupe(CLI::App& app, dedupe_args& args);
int run_dedupe(const dedupe_args& args);

struct daemon_args {
  std::string config = policy::default_config_path;
  bool dry_run = false;
  bool check = false;
};
void register_daemon(CLI::App& app, daemon_args& args);
int run_daemon(const daemon_args& args);

struct doctor_args {
  bool json = false;
};
void register_doctor(CLI::App& app, doctor_args& args);
int run_doctor(const doctor_args& args);


}  // namespace dupcache
