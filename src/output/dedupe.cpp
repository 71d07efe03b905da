// SPDX-License-Identifier: GPL-2.0-only
#include "output/dedupe.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "util/json_text.hpp"
#include "util/text.hpp"

namespace dupcache::output {

void dedupe_json(const policy::dedupe_report& r, std::ostream& out) {
  using json = nlohmann::ordered_json;
  json j;
  j["dry_run"] = r.dry_run;
  j["files_examined"] = r.files_examined;
  j["candidate_files"] = r.candidate_files;
  j["hashed_bytes"] = r.hashed_bytes;
  j["planned_bytes"] = r.planned_bytes;
  j["shared_bytes"] = r.shared_bytes;
  j["already_shared_bytes"] = r.already_shared_bytes;
  j["files_shared"] = r.files_shared;
  j["ranges"] = json::array();
  for (const auto& a : r.actions) {
    json e;
    put_path(e, "source", a.src);
    put_path(e, "path", a.dst);
    e["offset"] = a.offset;
    e["length"] = a.length;
    e["shared_bytes"] = a.shared_bytes;
    e["differs"] = a.differs;
    e["error"] = a.error.empty() ? json(nullptr) : json(json_text(a.error));
    j["ranges"].push_back(std::move(e));
  }
  j["skipped"] = json::array();
  for (const auto& s : r.skipped) {
    json e;
    put_path(e, "path", s.path);
    e["reason"] = json_text(s.reason);
    j["skipped"].push_back(std::move(e));
  }
  j["errors"] = json::array();
  for (const auto& e : r.errors) j["errors"].push_back(json_text(e));
  out << dump_json(j, 2) << '\n';
}

void dedupe_text(const policy::dedupe_report& r, bool bytes, std::ostream& out, std::FILE* err) {
  auto size = [&](std::uint64_t b) { return bytes ? fmt::format("{}", b) : human_bytes(b); };
  for (const auto& e : r.errors) fmt::print(err, "dupcache: dedupe: {}\n", terminal_safe(e));
  for (const auto& a : r.actions) {
    const std::string where = fmt::format("{}  <=  {}  (offset {}, {})", terminal_safe(a.dst), terminal_safe(a.src),
                                          a.offset, size(a.length));
    if (!a.error.empty()) {
      fmt::print(err, "dupcache: dedupe: {}: {}\n", where, terminal_safe(a.error));
    } else if (r.dry_run) {
      out << fmt::format("would share {:>9}  {}\n", size(a.length), where);
    } else if (a.differs) {
      out << fmt::format("differs     {:>9}  {}\n", size(a.length - a.shared_bytes), where);
    } else {
      out << fmt::format("shared      {:>9}  {}\n", size(a.shared_bytes), where);
    }
  }
  for (const auto& s : r.skipped) out << fmt::format("skipped  {}: {}\n", terminal_safe(s.path), s.reason);
  out << fmt::format("{} {} in {} range(s) of {} file(s); {} already shared; {} of {} file(s) hashed; {} skipped\n",
                     r.dry_run ? "would share" : "shared", size(r.dry_run ? r.planned_bytes : r.shared_bytes),
                     r.actions.size(), r.files_shared, size(r.already_shared_bytes), size(r.hashed_bytes),
                     r.candidate_files, r.skipped.size());
}

}  // namespace dupcache::output
