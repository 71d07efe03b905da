// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// What `dupcache doctor` prints: an aligned "NAME STATUS DETAIL" line per check, or with --json
// an array of {"check", "status", "detail"} objects.
// Contract: the writers only format; both shapes are the command's contract (dupcache-doctor(8)).

#include <ostream>
#include <vector>

#include "doctor/checks.hpp"

namespace dupcache::output {

void write_doctor_text(std::ostream& out, const std::vector<doctor::check>& checks);
void write_doctor_json(std::ostream& out, const std::vector<doctor::check>& checks);

}  // namespace dupcache::output
