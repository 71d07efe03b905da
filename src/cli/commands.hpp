// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <CLI/CLI.hpp>

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
  std::vector<std::string> by;
  std::size_t top = 0;
  bool bytes = false;
  unsigned jobs = 0;
  bool cross_mounts = false;
  bool all_extents = false;
  std::string residency = "auto";
};

void register_report(CLI::App& app, report_args& args);
int run_report(const report_args& args);

}  // namespace dupcache
