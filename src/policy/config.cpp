// SPDX-License-Identifier: GPL-2.0-only
#include "policy/config.hpp"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>
#include <unistd.h>

namespace dupcache::policy {

namespace {

struct parse_failure {
  std::string message;
};

class reader {
 public:
  explicit reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const toml::node* n, const std::string& what) const {
    fail_at(n ? n->source() : toml::source_region{}, what);
  }
  [[noreturn]] void fail_at(const toml::source_region& src, const std::string& what) const {
    throw parse_failure{fmt::format("{}:{}:{}: {}", source_, src.begin.line, src.begin.column, what)};
  }

  // Every key of a table must be known: a typo must not silently disable a setting.
  void known(const toml::table& t, const std::string& section, std::initializer_list<const char*> keys) const {
    std::set<std::string> ok(keys.begin(), keys.end());
    for (const auto& [k, v] : t) {
      if (!ok.count(std::string(k.str()))) {
        // At the key itself (a section's key is its [header]).
        fail_at(k.source().begin.line ? k.source() : v.source(),
                fmt::format("unknown key '{}' in {}", k.str(), section.empty() ? "the top level" : "[" + section + "]"));
      }
    }
  }

  const toml::table* section(const toml::table& root, const char* name) const {
    const auto* n = root.get(name);
    if (!n) return nullptr;
    if (!n->is_table()) fail(n, fmt::format("'{}' must be a table ([{}])", name, name));
    return n->as_table();
  }

  void size(const toml::table& t, const char* key, std::uint64_t& out) const {
    const auto* n = t.get(key);
    if (!n) return;
    if (auto i = n->value<std::int64_t>(); i && n->is_integer()) {
      if (*i < 0) fail(n, fmt::format("'{}' must not be negative", key));
      out = static_cast<std::uint64_t>(*i);
      return;
    }
    if (!n->is_string()) fail(n, fmt::format("'{}' must be a size: a number of bytes or a string like \"64MiB\"", key));
    auto r = parse_size(*n->value<std::string>());
    if (!r) fail(n, fmt::format("'{}': {}", key, r.err().reason()));
    out = *r;
  }

  void duration(const toml::table& t, const char* key, std::chrono::milliseconds& out, std::int64_t min_ms = 0) const {
    const auto* n = t.get(key);
    if (!n) return;
    if (!n->is_string()) fail(n, fmt::format("'{}' must be a duration string like \"5s\" or \"500ms\"", key));
    auto r = parse_duration(*n->value<std::string>());
    if (!r) fail(n, fmt::format("'{}': {}", key, r.err().reason()));
    if (r->count() < min_ms) fail(n, fmt::format("'{}' must be at least {} ms", key, min_ms));
    out = *r;
  }

  void number(const toml::table& t, const char* key, double& out, double lo, double hi) const {
    const auto* n = t.get(key);
    if (!n) return;
    if (!n->is_number()) fail(n, fmt::format("'{}' must be a number", key));
    const double v = n->is_integer() ? static_cast<double>(*n->value<std::int64_t>()) : *n->value<double>();
    if (!(v >= lo && v <= hi)) fail(n, fmt::format("'{}' must be between {} and {}", key, lo, hi));
    out = v;
  }

  void boolean(const toml::table& t, const char* key, bool& out) const {
    const auto* n = t.get(key);
    if (!n) return;
    if (!n->is_boolean()) fail(n, fmt::format("'{}' must be true or false", key));
    out = *n->value<bool>();
  }

  void string(const toml::table& t, const char* key, std::string& out) const {
    const auto* n = t.get(key);
    if (!n) return;
    if (!n->is_string()) fail(n, fmt::format("'{}' must be a string", key));
    out = *n->value<std::string>();
  }

  void strings(const toml::table& t, const char* key, std::vector<std::string>& out) const {
    const auto* n = t.get(key);
    if (!n) return;
    if (!n->is_array()) fail(n, fmt::format("'{}' must be an array of strings", key));
    out.clear();
    for (const auto& e : *n->as_array()) {
      if (!e.is_string()) fail(&e, fmt::format("'{}' must hold strings only", key));
      out.push_back(*e.value<std::string>());
    }
  }

  config read(const toml::table& root) const {
    config c;
    known(root, "", {"watch", "trigger", "policy", "scope", "priority", "journal", "metrics", "control", "dedupe"});
    if (const auto* t = section(root, "control")) {
      known(*t, "control", {"socket"});
      string(*t, "socket", c.control_socket);
    }
    if (const auto* t = section(root, "watch")) {
      known(*t, "watch", {"paths", "metadata_root"});
      strings(*t, "paths", c.watch_paths);
      string(*t, "metadata_root", c.metadata_root);
    }
    if (const auto* t = section(root, "trigger")) {
      known(*t, "trigger", {"wasted_bytes", "wasted_percent", "psi_some_avg10", "psi_full_avg10", "pressure_file",
                            "mem_available_below", "hysteresis_percent"});
      size(*t, "wasted_bytes", c.wasted_bytes);
      number(*t, "wasted_percent", c.wasted_percent, 0, 100);
      number(*t, "psi_some_avg10", c.psi_some_avg10, 0, 100);
      number(*t, "psi_full_avg10", c.psi_full_avg10, 0, 100);
      string(*t, "pressure_file", c.pressure_file);
      size(*t, "mem_available_below", c.mem_available_below);
      number(*t, "hysteresis_percent", c.hysteresis_percent, 0, 100);
    }
    if (const auto* t = section(root, "policy")) {
      known(*t, "policy",
            {"keep", "interval", "cooldown", "max_backoff", "refault_window", "rate_limit", "dry_run", "actions"});
      if (const auto* n = t->get("actions")) {
        std::vector<std::string> acts;
        strings(*t, "actions", acts);
        c.pageout = c.merge = false;
        bool evict = false;
        for (const auto& a : acts) {
          if (a == "evict") evict = true;
          else if (a == "pageout") c.pageout = true;
          else if (a == "merge") c.merge = true;
          else fail(n, "'actions' may hold \"evict\", \"pageout\" and \"merge\", not \"" + a + "\"");
        }
        if (!evict) fail(n, "'actions' must include \"evict\" (pageout and merge end in an eviction)");
      }
      if (const auto* n = t->get("keep")) {
        const auto v = n->value<std::string>();
        if (!v || (*v != "hottest" && *v != "priority")) fail(n, "'keep' must be \"hottest\" or \"priority\"");
        c.keep = *v == "priority" ? keep_rule::priority : keep_rule::hottest;
      }
      duration(*t, "interval", c.interval, 100);
      duration(*t, "cooldown", c.cooldown);
      duration(*t, "max_backoff", c.max_backoff);
      duration(*t, "refault_window", c.refault_window);
      size(*t, "rate_limit", c.rate_limit_bytes_per_s);
      if (c.rate_limit_bytes_per_s == 0 && t->get("rate_limit")) fail(t->get("rate_limit"), "'rate_limit' must be above 0");
      boolean(*t, "dry_run", c.dry_run);
    }
    if (const auto* t = section(root, "scope")) {
      known(*t, "scope", {"paths", "exclude_paths", "filesystems", "containers", "cgroups", "exclude_containers",
                          "exclude_cgroups"});
      strings(*t, "paths", c.paths);
      strings(*t, "exclude_paths", c.exclude_paths);
      strings(*t, "filesystems", c.filesystems);
      strings(*t, "containers", c.containers);
      strings(*t, "cgroups", c.cgroups);
      strings(*t, "exclude_containers", c.exclude_containers);
      strings(*t, "exclude_cgroups", c.exclude_cgroups);
    }
    if (const auto* t = section(root, "priority")) {
      for (const auto& [k, v] : *t) {
        if (!v.is_integer()) fail(&v, fmt::format("priority of '{}' must be an integer", k.str()));
        const auto p = *v.value<std::int64_t>();
        if (p < -1000 || p > 1000) fail(&v, fmt::format("priority of '{}' must be between -1000 and 1000", k.str()));
        c.priority[std::string(k.str())] = static_cast<int>(p);
      }
    }
    if (const auto* t = section(root, "journal")) {
      known(*t, "journal", {"path", "max_bytes", "keep"});
      string(*t, "path", c.journal_path);
      size(*t, "max_bytes", c.journal_max_bytes);
      double keep = c.journal_keep;
      number(*t, "keep", keep, 1, 100);
      c.journal_keep = static_cast<unsigned>(keep);
    }
    if (const auto* t = section(root, "dedupe")) {
      known(*t, "dedupe", {"enabled", "paths", "interval", "rate_limit"});
      boolean(*t, "enabled", c.dedupe);
      strings(*t, "paths", c.dedupe_paths);
      duration(*t, "interval", c.dedupe_interval, 1000);
      size(*t, "rate_limit", c.dedupe_rate_bytes_per_s);
      if (c.dedupe_rate_bytes_per_s == 0 && t->get("rate_limit")) fail(t->get("rate_limit"), "'rate_limit' must be above 0");
      if (c.dedupe && c.dedupe_paths.empty() && c.watch_paths.empty()) {
        fail(t, "'enabled' needs 'paths' here or in [watch]: dedupe reads every file below them");
      }
    }
    if (const auto* t = section(root, "metrics")) {
      known(*t, "metrics", {"listen", "textfile"});
      string(*t, "listen", c.metrics_listen);
      string(*t, "textfile", c.metrics_textfile);
      if (!c.metrics_listen.empty()) {
        const auto colon = c.metrics_listen.rfind(':');
        if (colon == std::string::npos || colon + 1 == c.metrics_listen.size()) {
          fail(t->get("listen"), "'listen' must be ADDRESS:PORT, e.g. \"127.0.0.1:9477\"");
        }
      }
    }
    return c;
  }

 private:
  std::string source_;
};

}  // namespace

result<std::uint64_t> parse_size(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return plain_error("parse size", "'" + s + "' is not a size (a number, then B, KiB, MiB, GiB or TiB)");
  double v = 0;
  try {
    v = std::stod(s.substr(0, i));
  } catch (...) {
    return plain_error("parse size", "'" + s + "' is not a number");
  }
  std::string unit = s.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  static const std::map<std::string, double> units{{"", 1},          {"B", 1},
                                                   {"KiB", 1024.0},  {"MiB", 1024.0 * 1024},
                                                   {"GiB", 1024.0 * 1024 * 1024}, {"TiB", 1024.0 * 1024 * 1024 * 1024},
                                                   {"kB", 1e3},      {"MB", 1e6},
                                                   {"K", 1024.0},    {"M", 1024.0 * 1024},
                                                   {"G", 1024.0 * 1024 * 1024}, {"T", 1024.0 * 1024 * 1024 * 1024},
                                                   {"GB", 1e9},      {"TB", 1e12}};
  auto u = units.find(unit);
  if (u == units.end()) return plain_error("parse size", "unknown unit '" + unit + "' (B, K, M, G, T, KiB, MiB, GiB, TiB, kB, MB, GB, TB)");
  const double bytes = v * u->second;
  if (!std::isfinite(bytes) || bytes >= 1.8e19) return plain_error("parse size", "'" + s + "' is too large");
  // Not llround(): it returns a long long, and sizes from 2^63 on wrapped (found by fuzz/config).
  return static_cast<std::uint64_t>(std::round(bytes));
}

result<std::chrono::milliseconds> parse_duration(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0 || i == s.size()) {
    return plain_error("parse duration", "'" + s + "' is not a duration (a number, then ms, s, m or h)");
  }
  double v = 0;
  try {
    v = std::stod(s.substr(0, i));
  } catch (...) {
    return plain_error("parse duration", "'" + s + "' is not a number");
  }
  const std::string unit = s.substr(i);
  double ms;
  if (unit == "ms") ms = v;
  else if (unit == "s") ms = v * 1e3;
  else if (unit == "m" || unit == "min") ms = v * 60e3;
  else if (unit == "h") ms = v * 3600e3;
  else return plain_error("parse duration", "unknown unit '" + unit + "' (ms, s, m, h)");
  if (ms > 1e12) return plain_error("parse duration", "'" + s + "' is too long");
  return std::chrono::milliseconds(std::llround(ms));
}

result<config> parse_config(const std::string& text, const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return plain_error("read configuration",
                       fmt::format("{}:{}:{}: {}", source_name, b.line, b.column, e.description()));
  }
  try {
    return reader(source_name).read(root);
  } catch (const parse_failure& f) {
    return plain_error("read configuration", f.message);
  }
}

result<config> load_config(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return errno_error("open configuration " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return errno_error("read configuration " + path);
  return parse_config(ss.str(), path);
}

result<config> load_daemon_config(const std::string& path, bool* defaulted) {
  *defaulted = false;
  if (path == default_config_path && ::access(path.c_str(), F_OK) != 0) {
    *defaulted = true;
    return config{};
  }
  return load_config(path);
}

}  // namespace dupcache::policy
