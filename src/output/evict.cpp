// SPDX-License-Identifier: GPL-2.0-only
#include "output/evict.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>

#include "report/report.hpp"
#include "util/json_text.hpp"
#include "util/text.hpp"

namespace dupcache::output {

void write_evict_diagnostics(std::FILE* err, const policy::evict_pass_result& r) {
  for (const auto& e : r.scan_errors) {
    fmt::print(err, "dupcache: {}: {}\n", terminal_safe(e.path), terminal_safe(e.message));
  }
  for (const auto& e : r.usage_errors) fmt::print(err, "dupcache: evict: {}\n", e);
  if (!r.usage_errors.empty() || r.charges_error.empty()) return;
  if (r.refused) {
    fmt::print(err, "dupcache: evict: page charges unavailable ({}): container options cannot apply\n",
               r.charges_error);
  } else {
    fmt::print(err, "dupcache: evict: page charges unavailable ({}): copies running containers use are not "
                    "preferred as keepers\n", r.charges_error);
  }
}

void write_evict(std::ostream& out, std::FILE* err, const policy::evict_pass_result& r, const evict_format& f) {
  auto size = [&](std::uint64_t b) { return f.exact_bytes ? fmt::format("{}", b) : human_bytes(b); };
  if (f.json) {
    nlohmann::ordered_json j;
    j["dry_run"] = r.dry_run;
    j["wasted_bytes_before"] = r.wasted_before;
    j["wasted_bytes_after"] = r.wasted_after;
    j["planned_bytes"] = r.planned_bytes;
    j["freed_bytes"] = r.freed_bytes;
    j["actions"] = nlohmann::ordered_json::array();
    for (const auto& o : r.done) j["actions"].push_back(policy::outcome_json(o));
    out << dump_json(j, 2) << '\n';
    return;
  }
  for (const auto& o : r.done) {
    if (!o.error.empty()) {
      fmt::print(err, "dupcache: evict: {}\n", terminal_safe(o.error));
      continue;
    }
    std::string extra;
    if (o.skipped_dirty_bytes) extra += fmt::format(", {} dirty skipped", size(o.skipped_dirty_bytes));
    if (o.skipped_keeper_bytes) extra += fmt::format(", {} skipped (keeper gone)", size(o.skipped_keeper_bytes));
    if (o.paged_out_bytes) extra += fmt::format(", {} paged out of {} process(es)", size(o.paged_out_bytes), o.pageout_processes);
    if (o.still_cached_bytes) extra += fmt::format(", {} still cached (mapped or busy)", size(o.still_cached_bytes));
    out << fmt::format("{} {:>9}  {}  (kept: {}{})\n", r.dry_run ? "would evict" : "evicted",
                       size(r.dry_run ? o.planned_bytes : o.freed_bytes), terminal_safe(o.path),
                       terminal_safe(o.kept_path), extra);
  }
  out << skipped_mounts_note(r.skipped_mounts);
  if (r.dry_run) {
    out << fmt::format("dry run: wasted {}; would evict {} from {} file(s); nothing was changed\n",
                       size(r.wasted_before), size(r.planned_bytes), r.done.size());
  } else {
    out << fmt::format("wasted {} -> {}; freed {} from {} file(s)\n", size(r.wasted_before), size(r.wasted_after),
                       size(r.freed_bytes), r.done.size());
  }
}

}  // namespace dupcache::output
