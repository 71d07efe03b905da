// SPDX-License-Identifier: GPL-2.0-only
#include "output/merge.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "util/json_text.hpp"
#include "util/text.hpp"

namespace dupcache::output {
namespace {

// Why the module was not used, as the user asked for it or as opening it failed.
std::string fallback(const policy::merge_report& r) {
  return r.module_declined ? "--no-module" : "companion module " + r.module_error;
}

}  // namespace

void merge_json(const policy::merge_report& r, std::ostream& out) {
  using json = nlohmann::ordered_json;
  json j;
  j["merged"] = r.merged_mappings > 0;
  j["module"] = r.module ? json(r.module_version) : json(nullptr);
  j["fallback"] = r.module ? json(nullptr) : json(fallback(r));
  j["dry_run"] = r.dry_run;
  j["mapped_copies"] = r.mapped;
  j["merged_mappings"] = r.merged_mappings;
  j["merged_bytes"] = r.merged.merged_bytes;
  j["canonical_read_bytes"] = r.merged.canonical_read_bytes;
  j["canonical_cached_bytes"] = r.merged.canonical_cached_bytes;
  j["mappings"] = json::array();
  for (const auto& m : r.merged.done) {
    j["mappings"].push_back({{"pid", m.pid},
                             {"start", fmt::format("{:#x}", m.start)},
                             {"end", fmt::format("{:#x}", m.end)},
                             {"merged", m.merged},
                             {"refusal", m.refusal.empty() ? json(nullptr) : json(m.refusal)},
                             {"error", m.error.empty() ? json(nullptr) : json(json_text(m.error))}});
    put_path(j["mappings"].back(), "path", m.path);
    put_path(j["mappings"].back(), "canonical", m.canonical);
  }
  j["planned_bytes"] = r.evicted.planned_bytes;
  j["freed_bytes"] = r.evicted.freed_bytes;
  j["actions"] = json::array();
  for (const auto& o : r.evicted.done) j["actions"].push_back(policy::outcome_json(o));
  j["canonical_removed"] = r.canonical_removed;
  j["errors"] = json::array();
  for (const auto& e : r.errors) j["errors"].push_back(json_text(e));
  out << dump_json(j, 2) << '\n';
}

void merge_text(const policy::merge_report& r, bool bytes, std::ostream& out, std::FILE* err) {
  const bool dry = r.dry_run;
  auto size = [&](std::uint64_t b) { return bytes ? fmt::format("{}", b) : human_bytes(b); };
  for (const auto& e : r.errors) fmt::print(err, "dupcache: merge: {}\n", terminal_safe(e));
  if (!r.module) fmt::print(err, "dupcache: merge: {}: paging out and evicting instead\n", fallback(r));
  for (const auto& m : r.merged.done) {
    const std::string range = fmt::format("pid {} {:x}-{:x}", m.pid, m.start, m.end);
    if (m.merged || (dry && m.error.empty())) {
      out << fmt::format("{} {}  {}  ->  {}  ({})\n", dry ? "would merge" : "merged", range, terminal_safe(m.path),
                         terminal_safe(m.canonical), size(m.end - m.start));
    } else {
      out << fmt::format("{} {}  {}: {}\n", m.refusal.empty() ? "failed" : "refused", range, terminal_safe(m.path),
                         terminal_safe(m.error));
    }
  }
  const auto& done = r.evicted.done;
  for (const auto& o : done) {
    if (!o.error.empty()) {
      fmt::print(err, "dupcache: merge: {}\n", terminal_safe(o.error));
      continue;
    }
    out << fmt::format("{} {:>9}  {}  (kept: {}; paged out of {} process(es))\n", dry ? "would free" : "freed",
                       size(dry ? o.planned_bytes : o.freed_bytes), terminal_safe(o.path), terminal_safe(o.kept_path),
                       o.pageout_processes);
  }
  if (r.module) {
    out << fmt::format("{} {} mapping(s) of {} duplicated file(s) ({}); freed {}; removed {} unused canonical cop{}\n",
                       dry ? "would merge" : "merged", dry ? r.merged.done.size() : r.merged_mappings, r.mapped,
                       size(r.merged.merged_bytes), size(r.evicted.freed_bytes), r.canonical_removed,
                       r.canonical_removed == 1 ? "y" : "ies");
  } else if (done.empty()) {
    out << fmt::format("nothing to merge: {} mapped file(s), none with a duplicate cached\n", r.mapped);
  } else {
    out << fmt::format("{} {} from {} mapped duplicate(s)\n", dry ? "would free" : "freed",
                       size(dry ? r.evicted.planned_bytes : r.evicted.freed_bytes), done.size());
  }
}

}  // namespace dupcache::output
