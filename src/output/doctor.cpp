// SPDX-License-Identifier: GPL-2.0-only
#include "output/doctor.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "util/json_text.hpp"

namespace dupcache::output {

void write_doctor_text(std::ostream& out, const std::vector<doctor::check>& checks) {
  for (const auto& c : checks) out << fmt::format("{:<22} {:<9} {}\n", c.name, c.status, c.detail);
}

void write_doctor_json(std::ostream& out, const std::vector<doctor::check>& checks) {
  nlohmann::ordered_json j = nlohmann::ordered_json::array();
  for (const auto& c : checks) j.push_back({{"check", c.name}, {"status", c.status}, {"detail", c.detail}});
  out << dump_json(j, 2) << '\n';
}

}  // namespace dupcache::output
