// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The content duplicates of `report --content`: the figures built from a scan's hashed pages
// (scan/content.hpp), and their JSON keys and text section. The report's renderers call the
// hooks below (per row, and once for the top-level sections), so the sections live here
// whatever writer the report uses.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "index/block_index.hpp"
#include "scan/content.hpp"
#include "scan/scanner.hpp"

namespace dupcache {

namespace cgroup {
struct container_row;
}
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
// Called by report_sections() for both JSON writers (in memory and streamed): each adds its
// keys to the row it is given, nothing when the model has no content figures.
void content_totals_json(nlohmann::ordered_json& totals, const report_model& m);
void content_file_json(nlohmann::ordered_json& row, const report_model& m, copy_id copy);
void content_fs_json(nlohmann::ordered_json& row, const report_model& m, const std::string& fs_id);
void content_container_json(nlohmann::ordered_json& row, const report_model& m, const cgroup::container_row& c);
// The top-level members after "skipped": content_groups, what_if, content.
void content_sections(const report_model& m, const report_options& opts,
                      const std::function<void(const char*, nlohmann::ordered_json)>& member);
// The text section printed after the tables.
std::string content_text(const report_model& m, const report_options& opts);

// The ranks deciding which copy of a content is the one kept: by path.
std::vector<std::uint64_t> content_rank(const scan_result& scan);

}  // namespace dupcache
