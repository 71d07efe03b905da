// SPDX-License-Identifier: GPL-2.0-only
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/sysmacros.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "cli/commands.hpp"
#include "util/json_text.hpp"
#include "cli/signals.hpp"
#include "live/controller.hpp"
#include "trace/tracer.hpp"
#include "util/text.hpp"

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

nlohmann::ordered_json event_json(const trace::decoded_event& e) {
  nlohmann::ordered_json j;
  j["ts_ns"] = e.timestamp_ns;
  if (e.end_timestamp_ns != e.timestamp_ns) j["ts_end_ns"] = e.end_timestamp_ns;
  j["kind"] = std::string(trace::to_string(e.kind));
  j["cpu"] = e.cpu;
  j["pid"] = e.pid;
  j["tid"] = e.tid;
  j["comm"] = to_json_path(std::string(e.comm_view())).text;
  if (e.has_identity) {
    j["dev"] = fmt::format("{}:{}", e.dev_major, e.dev_minor);
    j["subvol"] = e.subvol_id;
    j["ino"] = e.ino;
    j["generation"] = e.generation;
    if (e.subvol_unknown) j["subvol_unknown"] = true;
  }
  if (e.is_cache() || e.kind == trace::event_kind::folio_dirty) {
    j["index"] = e.index;
    j["nr_pages"] = e.nr_pages;
    j["cgroup_id"] = e.cgroup_id;
  } else {
    if (e.fd >= 0) j["fd"] = e.fd;
    if (e.fd2 >= 0) j["fd2"] = e.fd2;
    j["off"] = e.off;
    j["off2"] = e.off2;
    j["len"] = e.len;
    j["aux"] = e.aux;
    if (e.args_unread) j["args_unread"] = true;
    if (e.off_is_file_pos) j["off_is_file_pos"] = true;
    if (e.off2_is_file_pos) j["off2_is_file_pos"] = true;
  }
  return j;
}

int run_trace(const trace_args& a) {
  trace::tracer_options to;
  to.ring_buffer_bytes = a.ring_buffer;
  to.sharing_events = !a.no_sharing;
  to.wakeup_fraction = 8;  // batched wakeups; the loop polls every 100 ms
  to.coalesce = !a.per_folio;
  if (!a.all) {
    scan_options so;
    so.paths = a.paths;
    auto devs = live::superblock_devs(so);
    if (!devs) {
      fmt::print(stderr, "dupcache: trace: {}\n", terminal_safe(devs.err().message()));
      return exit_failure;
    }
    if (devs->empty()) {
      fmt::print(stderr, "dupcache: trace: no filesystem to watch ({}); name a PATH or use --all\n",
                 a.paths.empty() ? "no mounted filesystem can share extents" : "the PATHs could not be resolved");
      return exit_failure;
    }
    to.watch_devs = *devs;
  }
  install_stop_handlers(nullptr);
  auto t = trace::tracer::open(to);
  if (!t) {
    fmt::print(stderr, "dupcache: {}\n", terminal_safe(t.err().message()));
    return exit_failure;
  }
  fmt::print(stderr, "dupcache: trace: page-cache hooks: {}, {}\n", trace::to_string((*t)->chosen_path()),
             (*t)->coalescing() ? "insertions coalesced into runs" : "one event per folio");
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t printed = 0;
  bool done = false;
  while (!done && !stop_requested()) {
    auto r = (*t)->poll(100, [&](const trace::decoded_event& e) {
      if (done) return;
      std::cout << dump_json(event_json(e)) << '\n';
      if (a.count && ++printed >= a.count) done = true;
    });
    if (!r) {
      fmt::print(stderr, "dupcache: {}\n", terminal_safe(r.err().message()));
      return exit_failure;
    }
    std::cout.flush();
    if (!std::cout) done = true;  // the reader went away (| head): stop as if by count
    if (a.duration_s > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= a.duration_s) {
      done = true;
    }
  }
  if (auto c = (*t)->counters()) {
    fmt::print(stderr, "dupcache: trace: {} events emitted, {} dropped (ring buffer full)\n", c->total_emitted(),
               c->total_drops());
  }
  return exit_ok;
}

}  // namespace dupcache
