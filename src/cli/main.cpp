// SPDX-License-Identifier: GPL-2.0-only
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <iostream>

#include "cli/commands.hpp"
#include "util/escapes.hpp"
#include "version.hpp"

int main(int argc, char** argv) {
  using namespace dupcache;
  install_escape_handler();
  CLI::App app{"dupcache: find and reduce page-cache duplication between files that share extents",
               "dupcache"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(version_string()));
  app.failure_message(CLI::FailureMessage::help);

  report_args report;
  register_report(app, report);
  top_args top;
  register_top(app, top);
  trace_args trace;
  register_trace(app, trace);
  evict_args evict;
  register_evict(app, evict);
  merge_args merge;
  register_merge(app, merge);
  dedupe_args dedupe;
  register_dedupe(app, dedupe);
  daemon_args daemon;
  register_daemon(app, daemon);
  doctor_args doctor;
  register_doctor(app, doctor);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? exit_ok : exit_usage;
  }
  return run_catching_escapes([&] {
    if (app.got_subcommand("report")) return run_report(report);
    if (app.got_subcommand("top")) return run_top(top);
    if (app.got_subcommand("trace")) return run_trace(trace);
    if (app.got_subcommand("evict")) return run_evict(evict);
    if (app.got_subcommand("merge")) return run_merge(merge);
    if (app.got_subcommand("dedupe")) return run_dedupe(dedupe);
    if (app.got_subcommand("daemon")) return run_daemon(daemon);
    if (app.got_subcommand("doctor")) return run_doctor(doctor);
    return exit_usage;
  });
}
