// SPDX-License-Identifier: GPL-2.0-only
#include "live/sample_json.hpp"

namespace dupcache::live {

namespace {

report_options rows_of(std::size_t max_rows) {
  report_options ro;
  if (max_rows > 0) ro.top = max_rows;
  return ro;
}

// What a sample adds after the report's own members, in this order.
nlohmann::ordered_json sample_members(const sample& s) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["iteration"] = s.iteration;
  j["interval_s"] = s.elapsed_s;
  j["mode"] = s.mode;
  j["page_cache_bytes"] = s.page_cache_bytes;
  j["rates"] = {{"insert_bytes_per_s", s.insert_bps},
                {"duplicate_insert_bytes_per_s", s.duplicate_insert_bps},
                {"evict_bytes_per_s", s.evict_bps}};
  j["events"] = s.events;
  j["lost_events"] = s.lost_events;
  j["applied_before_ns"] = s.applied_before_ns;
  j["index"] = {{"entries", s.index_entries},
                {"rescans", s.rescans},
                {"compactions", s.compactions},
                {"late_records", s.late_records},
                {"audit_repairs", s.audit_repairs}};
  if (!s.content_status.empty()) j["content_status"] = s.content_status;  // top --content
  if (s.groups_total) j["groups_total"] = *s.groups_total;
  return j;
}

}  // namespace

nlohmann::ordered_json sample_json(const sample& s, std::size_t max_rows) {
  auto j = report_json(s.model, rows_of(max_rows));
  auto members = sample_members(s);
  for (auto& [key, value] : members.items()) j[key] = std::move(value);
  return j;
}

void write_sample_json(std::ostream& out, const sample& s, std::size_t max_rows) {
  write_report_json_compact(out, s.model, rows_of(max_rows), sample_members(s));
}

void write_sample_json(std::ostream& out, const sample& s, const row_selection& rows) {
  report_options ro;
  ro.selection = &rows;
  auto members = sample_members(s);
  members["groups_total"] = s.groups_total.value_or(s.model.groups.size());
  write_report_json_compact(out, s.model, ro, members);
}

sample sample_from_json(const nlohmann::json& j) {
  sample s;
  s.model = report_from_json(j);
  s.page_cache_bytes = j.value("page_cache_bytes", std::uint64_t{0});
  s.insert_bps = j["rates"].value("insert_bytes_per_s", 0.0);
  s.duplicate_insert_bps = j["rates"].value("duplicate_insert_bytes_per_s", 0.0);
  s.evict_bps = j["rates"].value("evict_bytes_per_s", 0.0);
  s.events = j.value("events", std::uint64_t{0});
  s.lost_events = j.value("lost_events", std::uint64_t{0});
  s.applied_before_ns = j.value("applied_before_ns", std::uint64_t{0});
  if (auto it = j.find("index"); it != j.end() && it->is_object()) {
    s.index_entries = it->value("entries", std::uint64_t{0});
    s.rescans = it->value("rescans", std::uint64_t{0});
    s.compactions = it->value("compactions", std::uint64_t{0});
    s.late_records = it->value("late_records", std::uint64_t{0});
    s.audit_repairs = it->value("audit_repairs", std::uint64_t{0});
  }
  s.mode = j.value("mode", std::string("?"));
  if (auto it = j.find("groups_total"); it != j.end() && it->is_number_unsigned()) s.groups_total = it->get<std::uint64_t>();
  return s;
}

}  // namespace dupcache::live
