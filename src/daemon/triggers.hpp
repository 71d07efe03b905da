// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// When the daemon acts: the [trigger] section of the configuration applied to the latest model
// and the host's memory readings. A trigger holds once its threshold is reached; while the
// daemon is acting it keeps holding until the value falls past the threshold by
// hysteresis_percent (wasted and pressure below threshold * (1 - h), MemAvailable above
// limit * (1 + h)), so the daemon does not flap at the edge. With no trigger configured it
// acts whenever there is waste. Readings come through an interface so tests can feed them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/config.hpp"
#include "report/report.hpp"

namespace dupcache::daemon {

class memory_readings {
 public:
  virtual ~memory_readings() = default;
  // avg10 of the "some" or "full" line of the configured pressure file.
  virtual std::optional<double> psi_avg10(std::string_view kind) = 0;
  // /proc/meminfo MemAvailable, in bytes.
  virtual std::optional<std::uint64_t> mem_available() = 0;
};

// The host's: cfg.pressure_file and /proc/meminfo, read when asked (a trigger that is not
// configured reads nothing).
class proc_readings final : public memory_readings {
 public:
  explicit proc_readings(std::string pressure_file) : pressure_file_(std::move(pressure_file)) {}
  std::optional<double> psi_avg10(std::string_view kind) override;
  std::optional<std::uint64_t> mem_available() override;

 private:
  std::string pressure_file_;
};

// Why the daemon acts now, or "" when no trigger holds. `acting`: it acted last interval.
// The triggers are tried in the order of the configuration file; the first that holds says why.
std::string triggered(const policy::config& c, const report_model& m, bool acting, memory_readings& r);

}  // namespace dupcache::daemon
