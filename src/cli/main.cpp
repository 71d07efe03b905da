// SPDX-License-Identifier: GPL-2.0-only
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <iostream>

#include "cli/commands.hpp"
#include "version.hpp"

int main(int argc, char** argv) {
  using namespace dupcache;
  CLI::App app{"dupcache: find and reduce page-cache duplication between files that share extents",
               "dupcache"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(version_string()));
  app.failure_message(CLI::FailureMessage::help);

  report_args report;
  register_report(app, report);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? exit_ok : exit_usage;
  }
  if (app.got_subcommand("report")) return run_report(report);
  return exit_usage;
}
