// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The daemon's configuration (TOML), as dupcache.toml(5) documents it. Parsing is strict:
// an unknown key or section, a wrong type or a bad value is an error naming the key and its
// line and column, so a typo never silently disables a limit.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "policy/plan.hpp"
#include "util/result.hpp"

namespace dupcache::policy {

struct config {
  // [watch]
  std::vector<std::string> watch_paths;  // empty: every filesystem that can share extents
  std::string metadata_root = "/";       // where container runtimes' metadata is read
  // [trigger]: any one set and reached starts acting; none set: act whenever there is waste
  std::uint64_t wasted_bytes = 0;
  double wasted_percent = 0;
  double psi_some_avg10 = 0;
  double psi_full_avg10 = 0;
  std::string pressure_file = "/proc/pressure/memory";  // or a cgroup's memory.pressure
  std::uint64_t mem_available_below = 0;
  double hysteresis_percent = 20;
  // [policy]
  keep_rule keep = keep_rule::hottest;
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds cooldown{60000};
  std::chrono::milliseconds max_backoff{3600000};
  std::chrono::milliseconds refault_window{60000};
  std::uint64_t rate_limit_bytes_per_s = 256ull << 20;
  bool dry_run = false;
  // "evict" always; "pageout": mapped duplicates paged out of their processes first; "merge":
  // the companion module's job, which falls back to the other two where it is not loaded.
  bool pageout = true;
  bool merge = false;
  // [dedupe]: off unless enabled; content-identical ranges of files below dedupe_paths (empty:
  // watch_paths) become shared extents (policy/dedupe_pass.hpp), one pass per dedupe_interval.
  bool dedupe = false;
  std::vector<std::string> dedupe_paths;
  std::chrono::milliseconds dedupe_interval{3600000};
  std::uint64_t dedupe_rate_bytes_per_s = 32ull << 20;
  // [scope]
  std::vector<std::string> paths, exclude_paths, filesystems, containers, cgroups, exclude_containers,
      exclude_cgroups;
  // [priority]: container (id, name or pod uid) -> priority; higher is kept first
  std::map<std::string, int> priority;
  // [journal]
  std::string journal_path;  // "" disables
  std::uint64_t journal_max_bytes = 16ull << 20;
  unsigned journal_keep = 3;
  // [metrics]
  std::string metrics_listen = "127.0.0.1:9477";  // "" disables
  std::string metrics_textfile;                   // "" disables
  // [control]
  std::string control_socket = "/run/dupcache/control.sock";  // "" disables

  bool any_trigger() const {
    return wasted_bytes || wasted_percent > 0 || psi_some_avg10 > 0 || psi_full_avg10 > 0 || mem_available_below;
  }
  bool needs_containers() const {
    return !containers.empty() || !cgroups.empty() || !exclude_containers.empty() || !exclude_cgroups.empty() ||
           !priority.empty();
  }
};

// Errors read "<file>:<line>:<column>: <what>".
result<config> parse_config(const std::string& text, const std::string& source_name);
result<config> load_config(const std::string& path);

// Where the daemon reads its configuration unless told otherwise.
inline constexpr const char* default_config_path = "/etc/dupcache/dupcache.toml";
// The daemon's configuration: `path`, except that a missing default_config_path means the
// built-in defaults (said in *defaulted); any other missing or bad file is an error.
result<config> load_daemon_config(const std::string& path, bool* defaulted);

// "64MiB", "1.5GiB", "4096", 4096 -> bytes; "500ms", "5s", "2m", "1h" -> milliseconds.
result<std::uint64_t> parse_size(const std::string& s);
result<std::chrono::milliseconds> parse_duration(const std::string& s);

}  // namespace dupcache::policy
