// SPDX-License-Identifier: GPL-2.0-only
#include <iostream>

#include "cli/commands.hpp"
#include "cli/signals.hpp"
#include "live/trace_session.hpp"
#include "output/trace.hpp"

namespace dupcache {

void register_trace(CLI::App& app, trace_args& a) {
  auto* cmd = app.add_subcommand("trace", "Print decoded page-cache and sharing events as JSON lines");
  cmd->footer(
      "Stops at -n events, after --duration, or on SIGINT/SIGTERM; then prints the event and drop counters "
      "on standard error.\nExit status: 0 ok, 1 the tracer could not start, 2 usage error.");
  cmd->add_option("PATH", a.paths, "Only filesystems holding these paths (default: every filesystem that can share extents)");
  cmd->add_flag("--all", a.all, "Every filesystem");
  cmd->add_option("-n,--count", a.count, "Stop after N events");
  cmd->add_option("--duration", a.duration_s, "Stop after SECONDS")->check(CLI::Range(0.0, 1e9));
  cmd->add_option("--ring-buffer", a.ring_buffer, "Ring buffer size in bytes (default 16 MiB)")
      ->check(CLI::Range(std::uint64_t{4096}, std::uint64_t{1} << 30));
  cmd->add_flag("--no-sharing", a.no_sharing, "Only page-cache and dirty events");
  cmd->add_flag("--per-folio", a.per_folio,
                "One cache_add event per folio instead of one per run of consecutive folios (costs more per page)");
}

int run_trace(const trace_args& a) {
  live::trace_request request;
  request.paths = a.paths;
  request.all = a.all;
  request.count = a.count;
  request.duration_s = a.duration_s;
  request.ring_buffer_bytes = a.ring_buffer;
  request.sharing_events = !a.no_sharing;
  request.coalesce = !a.per_folio;

  install_stop_handlers(nullptr);
  live::trace_callbacks cb;
  cb.started = [](const trace::tracer& t) { output::write_trace_started(std::cerr, t.chosen_path(), t.coalescing()); };
  cb.on_event = [](const trace::decoded_event& e) { std::cout << output::trace_event_json(e) << '\n'; };
  cb.after_poll = [] { return static_cast<bool>(std::cout.flush()); };
  cb.stop_requested = [] { return stop_requested(); };
  const auto outcome = live::run_trace(request, cb);
  if (!outcome.failure.empty()) {
    output::write_trace_failure(std::cerr, outcome.failure);
    return exit_failure;
  }
  if (outcome.counters) output::write_trace_counters(std::cerr, *outcome.counters);
  return exit_ok;
}

}  // namespace dupcache
