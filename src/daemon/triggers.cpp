// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/triggers.hpp"

#include <fmt/format.h>

#include "util/proc.hpp"
#include "util/text.hpp"

namespace dupcache::daemon {

std::optional<double> proc_readings::psi_avg10(std::string_view kind) {
  return proc::psi_avg10_file(pressure_file_, kind);
}

std::optional<std::uint64_t> proc_readings::mem_available() { return proc::meminfo_bytes("MemAvailable"); }

std::string triggered(const policy::config& c, const report_model& m, bool acting, memory_readings& r) {
  const double relax = acting ? 1.0 - c.hysteresis_percent / 100.0 : 1.0;
  if (!c.any_trigger()) return m.wasted_bytes > 0 ? "waste present (no trigger configured)" : "";
  if (c.wasted_bytes && static_cast<double>(m.wasted_bytes) >= static_cast<double>(c.wasted_bytes) * relax) {
    return fmt::format("wasted {} >= {}", human_bytes(m.wasted_bytes), human_bytes(c.wasted_bytes));
  }
  if (c.wasted_percent > 0 && m.cached_bytes > 0) {
    const double pct = 100.0 * static_cast<double>(m.wasted_bytes) / static_cast<double>(m.cached_bytes);
    if (pct >= c.wasted_percent * relax) return fmt::format("wasted {:.1f}% >= {}%", pct, c.wasted_percent);
  }
  // An unreadable pressure file never triggers (-1 is below every threshold).
  if (c.psi_some_avg10 > 0) {
    const double v = r.psi_avg10("some").value_or(-1);
    if (v >= c.psi_some_avg10 * relax) return fmt::format("memory pressure some avg10 {:.2f} >= {}", v, c.psi_some_avg10);
  }
  if (c.psi_full_avg10 > 0) {
    const double v = r.psi_avg10("full").value_or(-1);
    if (v >= c.psi_full_avg10 * relax) return fmt::format("memory pressure full avg10 {:.2f} >= {}", v, c.psi_full_avg10);
  }
  if (c.mem_available_below) {
    // An unreadable meminfo reads as nothing available: it triggers, as it always has.
    const std::uint64_t avail = r.mem_available().value_or(0);
    const double limit = static_cast<double>(c.mem_available_below) * (acting ? 1.0 + c.hysteresis_percent / 100.0 : 1.0);
    if (static_cast<double>(avail) <= limit) {
      return fmt::format("MemAvailable {} <= {}", human_bytes(avail), human_bytes(c.mem_available_below));
    }
  }
  return "";
}

}  // namespace dupcache::daemon
