// SPDX-License-Identifier: GPL-2.0-only
#include "report/local.hpp"

#include <algorithm>
#include <utility>

namespace dupcache {

result<local_report> make_local_report(const local_report_request& req) {
  scan_options so = req.scan;
  // Charges need CAP_SYS_ADMIN (/proc/kpagecgroup): read only when containers are asked about,
  // so a plain report runs unprivileged.
  so.attribute = !req.filter.empty() ||
                 std::find(req.views.begin(), req.views.end(), report_view::container) != req.views.end();
  auto scanned = scan(so);
  if (!scanned) return scanned.err();
  local_report out;
  out.named_path_failed = scanned->named_path_failed;
  if (!so.attribute) {
    // The scan is done with: its paths move into the model instead of being copied.
    out.model = build_report(std::move(*scanned));
    return out;
  }
  cgroup::host_accounting acc(req.metadata_root);
  auto rows = acc.rows(*scanned);
  out.charges_error = acc.error(*scanned);
  out.model = build_report(std::move(*scanned));
  attach_containers(out.model, std::move(rows), out.charges_error);
  out.usage_errors = cgroup::unknown_container_errors("--container", req.filter.containers, out.model.containers, acc);
  if (!out.usage_errors.empty()) return out;
  if (!req.filter.empty() && filter_containers(out.model, req.filter) == 0) {
    auto named = [&](const std::string& option, const std::string& value) {
      out.no_match += (out.no_match.empty() ? "" : ", ") + option + " " + value;
    };
    for (const auto& c : req.filter.containers) named("--container", c);
    for (const auto& c : req.filter.cgroups) named("--cgroup", c);
  }
  return out;
}

}  // namespace dupcache
