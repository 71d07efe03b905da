// SPDX-License-Identifier: GPL-2.0-only
// dupcache daemon: the policy daemon (systemd Type=notify). See dupcache-daemon(8). The engine is
// daemon/engine.hpp; this file loads the configuration and wires the signals to it.
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/signals.hpp"
#include "daemon/engine.hpp"
#include "policy/config.hpp"
#include "util/log.hpp"

namespace dupcache {
namespace {

daemon::engine* active = nullptr;
void wake() {
  if (active) active->wake();
}

}  // namespace

void register_daemon(CLI::App& app, daemon_args& a) {
  auto* cmd = app.add_subcommand("daemon", "Policy daemon: evict duplicate cached copies within configured limits");
  cmd->footer(
      "Runs under systemd as Type=notify (READY, STATUS, WATCHDOG). SIGHUP reloads the configuration; an invalid "
      "one is rejected and the old one stays. Logs go to standard error with syslog priority prefixes.\n"
      "Exit status: 0 stopped by SIGTERM/SIGINT, 1 invalid configuration or runtime failure, 2 usage error.");
  cmd->add_option("-c,--config", a.config, "Configuration file (default /etc/dupcache/dupcache.toml)");
  cmd->add_flag("-n,--dry-run", a.dry_run, "Decide and log, act on nothing");
  cmd->add_flag("--check-config", a.check, "Check the configuration and exit");
}

int run_daemon(const daemon_args& a) {
  log::use_journald_style();
  bool defaulted = false;
  auto cfg = policy::load_daemon_config(a.config, &defaulted);
  if (!cfg) {
    log::print(log::level::err, "{}", cfg.err().message());
    return exit_failure;
  }
  if (defaulted) log::print(log::level::notice, "no {}: running with the built-in defaults", a.config);
  if (a.check) {
    fmt::print("{}: configuration ok\n", a.config);
    return exit_ok;
  }
  daemon::engine engine(std::move(*cfg), {a.dry_run, a.config});
  active = &engine;
  install_stop_handlers(wake);
  install_reload_handler(wake);
  return engine.run(stop_requested, reload_requested) ? exit_ok : exit_failure;
}

}  // namespace dupcache
