// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The content duplicates of `report --content`: the figures built from a scan's hashed pages
// (scan/content.hpp), and their JSON keys and text section. The report's renderers call
// content_json() / content_text() as one hook each, so the sections live here whatever
// writer the report uses.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "index/block_index.hpp"
#include "scan/content.hpp"
#include "scan/scanner.hpp"

namespace dupcache {

struct report_model;
struct report_options;

struct content_model {
  std::uint64_t wasted_bytes = 0;  // totals.content_wasted_bytes
  // What a page cache shared by content would save: shared-extent waste + content waste.
  std::uint64_t shareable_bytes = 0;
  // By copy_id (as report_model::file_row::copy).
  std::vector<std::uint64_t> copy_wasted_bytes;
  std::vector<std::uint64_t> copy_duplicate_bytes;
  struct group_row {
    std::vector<copy_id> copies;
    std::vector<std::string> paths;
    std::uint64_t bytes_per_copy = 0;
    std::uint64_t wasted_bytes = 0;
  };
  std::vector<group_row> groups;  // largest waste first
  std::uint64_t pages_hashed = 0;
  std::uint64_t pages_compared = 0;
  std::uint64_t hash_collisions = 0;
  std::uint64_t pages_gone = 0;
  std::vector<std::string> notes;
};

// The model's content part from a scan made with scan_options::content and the duplicates found
// in it. Call after attach_containers() and filter_containers(): the per-container figures
// are summed from the files each container holds.
void attach_content(report_model& m, const scan_result& scan, const content_result& found);

// Adds the content keys to report_json()'s document (existing keys untouched).
void content_json(nlohmann::ordered_json& j, const report_model& m, const report_options& opts);
// The text section printed after the tables.
std::string content_text(const report_model& m, const report_options& opts);

// The ranks deciding which copy of a content is the one kept: by path.
std::vector<std::uint64_t> content_rank(const scan_result& scan);

}  // namespace dupcache
