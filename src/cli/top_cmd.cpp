// SPDX-License-Identifier: GPL-2.0-only
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "cli/commands.hpp"
#include "cli/signals.hpp"
#include "daemon/remote_source.hpp"
#include "live/sampler.hpp"
#include "top/ui.hpp"
#include "top/view.hpp"
#include "trace/tracer.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

namespace dupcache {
namespace {

live::sample_source* active_sampler = nullptr;
void wake_sampler() {
  if (active_sampler) active_sampler->wake();
}

// Sort column names per view, in column order.
const std::vector<std::string>& sort_names(top::view_kind v) {
  static const std::vector<std::string> files{"wasted", "shared", "cached", "path"};
  static const std::vector<std::string> groups{"copies", "per-copy", "wasted", "files"};
  static const std::vector<std::string> fs{"wasted", "cached", "files", "type", "fs"};
  static const std::vector<std::string> containers{"wasted", "shared", "cached", "runtime", "container", "cgroup"};
  return v == top::view_kind::files      ? files
         : v == top::view_kind::groups   ? groups
         : v == top::view_kind::containers ? containers
                                         : fs;
}

// Batch lines fit $COLUMNS when it is set (a terminal), else 80.
int batch_width() {
  const char* c = std::getenv("COLUMNS");
  const int w = c ? std::atoi(c) : 0;
  return w >= 40 ? w : 80;
}

// Rows the screen asks the daemon for: more than any terminal shows.
constexpr std::size_t screen_rows = 1000;

// Samples of our own live loop, or the daemon's (--from-daemon).
std::unique_ptr<live::sample_source> make_source(const top_args& a, const top::view_state& st, bool interactive,
                                                 daemon::remote_source** remote) {
  const auto interval = std::chrono::milliseconds(static_cast<long>(std::llround(a.delay_s * 1000)));
  const container_filter filter{a.containers, a.cgroups};
  if (a.from_daemon) {
    // Only the rows printed are asked for: a million rows written, sent and parsed each
    // interval took the client 20 s and 1.6 GB. --json prints the daemon's rows in its order,
    // the first --top of them; the text and the screen ask for the rows their view shows,
    // which the daemon sorts and filters as the view does.
    const std::size_t rows = a.json ? a.top : interactive ? screen_rows : a.top ? a.top : 20;
    auto r = std::make_unique<daemon::remote_source>(a.socket, interval, filter, rows);
    if (!a.json) r->set_view(st);
    *remote = r.get();
    return r;
  }
  live::sampler_options so;
  so.scan.paths = a.paths;
  so.scan.cross_mounts = a.cross_mounts;
  so.interval = interval;
  so.ring_buffer_bytes = a.ring_buffer;
  if (!a.no_bpf) so.open_feed = trace::open_feed;
  so.containers = !a.no_containers;
  so.filter = filter;
  so.metadata_root = a.metadata_root;
  if (a.content) {
    // 10 s by default: a pass hashes every cached page of the watched files (about 1.5x a plain
    // scan's time), so it runs at a fifth of the default sampling rate.
    const double s = a.content_interval_s > 0 ? a.content_interval_s : 10.0;
    so.content_interval = std::chrono::milliseconds(static_cast<long>(std::llround(s * 1000)));
  }
  return std::make_unique<live::sampler>(std::move(so));
}

}  // namespace

void register_top(CLI::App& app, top_args& a) {
  auto* cmd = app.add_subcommand("top", "Live view of wasted page cache");
  cmd->footer(
      "Keys: q quit, < > (or arrows) sort column, r reverse, / filter, f g s c views (files, groups, "
      "filesystems, containers), b exact bytes.\nWithout BPF (not root, no BTF) it rescans every interval and says so.\n"
      "Exit status: 0 ok, 1 runtime failure, 2 usage error.");
  cmd->add_option("PATH", a.paths, "Files or directories to watch (default: every filesystem that can share extents)");
  cmd->add_option("-d,--delay", a.delay_s, "Seconds between updates (default 2)")->check(CLI::Range(0.1, 86400.0));
  cmd->add_option("-n,--iterations", a.iterations, "Stop after N updates (default: run until q or a signal)");
  cmd->add_flag("-b,--batch", a.batch, "Plain text per interval, no curses (for logs and pipes)");
  cmd->add_flag("--json", a.json, "One JSON document per interval (the report schema plus rates)");
  cmd->add_option("--view", a.view, "Initial view: files, groups, fs, containers")
      ->check(CLI::IsMember({"files", "groups", "fs", "containers"}));
  cmd->add_option("--sort", a.sort,
                  "Sort column: files view wasted|shared|cached|path; groups view copies|per-copy|wasted|files; "
                  "fs view wasted|cached|files|type|fs; containers view "
                  "wasted|shared|cached|runtime|container|cgroup (default wasted, descending)");
  add_container_filters(cmd, a.containers, a.cgroups, "Only");
  cmd->add_flag("--no-containers", a.no_containers,
                "Do not attribute pages to containers (saves reading page charges)");
  cmd->add_option("--metadata-root", a.metadata_root, "Where container runtimes' metadata is read (default /)");
  cmd->add_flag("--from-daemon", a.from_daemon, "Show the running daemon's live index instead of tracing (see --socket)");
  cmd->add_option("--socket", a.socket, "The daemon's control socket (default /run/dupcache/control.sock)");
  cmd->add_option("--top", a.top, "Rows per interval in batch and JSON mode (default: all in JSON, 20 in batch)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--bytes", a.bytes, "Sizes in bytes");
  cmd->add_flag("--no-bpf", a.no_bpf, "Do not trace; rescan every interval");
  cmd->add_option("--ring-buffer", a.ring_buffer, "BPF ring buffer size in bytes (default 16 MiB)")
      ->check(CLI::Range(std::uint64_t{4096}, std::uint64_t{1} << 30));
  cmd->add_flag("--content", a.content,
                "Also show duplicates by content (as report --content), recomputed every --content-interval");
  cmd->add_option("--content-interval", a.content_interval_s,
                  "Seconds between content passes with --content (default 10: hashing is not free)")
      ->check(CLI::Range(1.0, 86400.0));
  cmd->add_flag("--cross-mounts", a.cross_mounts,
                "Also enter mounts of other filesystems below a PATH (mounts of the same filesystem are always entered)");
}

int run_top(const top_args& a) {
  log::use_command_style("top");
  top::view_state st;
  st.view = a.view == "groups"       ? top::view_kind::groups
            : a.view == "fs"         ? top::view_kind::filesystems
            : a.view == "containers" ? top::view_kind::containers
                                     : top::view_kind::files;
  if (a.no_containers && (st.view == top::view_kind::containers || !a.containers.empty() || !a.cgroups.empty())) {
    log::error("--no-containers cannot be combined with the containers view or its filters");
    return exit_usage;
  }
  st.sort_column = st.view == top::view_kind::groups ? 2 : 0;
  st.exact_bytes = a.bytes;
  if (!a.sort.empty()) {
    const auto& names = sort_names(st.view);
    auto it = std::find(names.begin(), names.end(), a.sort);
    if (it == names.end()) {
      log::error("--sort {}: not a column of the {} view (one of: {})", a.sort, top::view_name(st.view),
                 fmt::join(names, ", "));
      return exit_usage;
    }
    st.sort_column = static_cast<std::size_t>(it - names.begin());
  }

  if (a.content_interval_s > 0 && !a.content) {
    log::error("--content-interval applies only with --content");
    return exit_usage;
  }
  if (a.from_daemon && a.content) {
    log::error("--content cannot be combined with --from-daemon: the daemon does not compute content duplicates");
    return exit_usage;
  }
  if (a.from_daemon && !a.paths.empty()) {
    log::error("--from-daemon shows what the daemon watches: no PATH");
    return exit_usage;
  }
  if (!a.from_daemon && !a.containers.empty()) {
    cgroup::host_accounting acc(a.metadata_root);
    if (auto bad = unknown_container_errors("--container", a.containers, {}, acc); !bad.empty()) {
      for (const auto& e : bad) log::error("{}", e);
      return exit_usage;
    }
  }
  const bool interactive = !a.batch && !a.json && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
  daemon::remote_source* remote = nullptr;
  const auto source = make_source(a, st, interactive, &remote);
  auto& smp = *source;
  active_sampler = &smp;
  install_stop_handlers(wake_sampler);
  if (auto r = smp.start(); !r) {
    log::error("{}", terminal_safe(r.err().message()));
    return exit_failure;
  }

  if (interactive) {
    std::function<void(const top::view_state&)> on_view;
    if (remote) on_view = [remote](const top::view_state& v) { remote->set_view(v); };
    return top::run_curses(smp, st, a.iterations, stop_requested, on_view);
  }

  top::batch_options bo;
  bo.iterations = a.iterations;
  bo.json = a.json;
  bo.rows = a.json ? a.top : a.top ? a.top : 20;
  bo.width = batch_width();
  return top::run_batch(smp, st, bo, stop_requested);
}

}  // namespace dupcache
