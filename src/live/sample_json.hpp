// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The JSON form of a sample (`top --json`, the daemon's sample answer): the DESIGN.md report
// document plus rates, mode, iteration and event counts. Both directions live here so the
// shape has one home.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <ostream>

#include "live/sample.hpp"

namespace dupcache::live {

// max_rows 0: every row.
nlohmann::ordered_json sample_json(const sample& s, std::size_t max_rows);
// Its bytes, dump_json(sample_json(s, max_rows)), written as they are produced (no newline):
// the document of a million rows would take most of a gigabyte, rebuilt every interval.
void write_sample_json(std::ostream& out, const sample& s, std::size_t max_rows);
// The daemon's answer to a view: only the selected rows, and the number of groups in all
// ("groups_total", read back into sample::groups_total).
void write_sample_json(std::ostream& out, const sample& s, const row_selection& rows);
// The sample back from sample_json()'s document (iteration and interval are the reader's to
// measure, so they are not read). Throws on a malformed document.
sample sample_from_json(const nlohmann::json& j);

}  // namespace dupcache::live
