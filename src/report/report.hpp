// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cgroup/accounting.hpp"
#include "report/content.hpp"
#include "scan/scanner.hpp"

namespace dupcache {

enum class report_view { file, group, fs, container };

struct report_options {
  std::vector<report_view> views{report_view::file, report_view::group};
  std::optional<std::size_t> top;  // rows per table; unset: 20 in text, all in JSON
  bool exact_bytes = false;        // --bytes
};

// What a report says, computed once from a scan; the text and JSON forms only format it.
struct report_model {
  struct file_row {
    std::string path;
    interned fs;
    std::uint64_t subvol = 0;
    std::uint64_t ino = 0;
    std::uint64_t cached_bytes = 0;
    std::uint64_t shared_cached_bytes = 0;
    std::uint64_t wasted_bytes = 0;  // this file's part of the waste (the even split)
    std::uint64_t dirty_bytes = 0;
    copy_id copy = 0;
  };
  struct group_row {
    std::vector<std::string> paths;
    std::vector<copy_id> copies;
    std::uint64_t bytes_per_copy = 0;
    std::uint64_t wasted_bytes = 0;
  };
  struct fs_row {
    std::string id;
    std::string type;
    std::string where;
    std::uint64_t files_scanned = 0;
    std::uint64_t files_cached = 0;
    std::uint64_t cached_bytes = 0;
    std::uint64_t wasted_bytes = 0;
  };

  std::uint64_t page_size = 0;
  std::uint64_t cached_bytes = 0;
  std::uint64_t wasted_bytes = 0;
  std::uint64_t files_scanned = 0;
  std::uint64_t files_cached = 0;
  std::vector<file_row> files;    // largest waste first
  std::vector<group_row> groups;  // largest waste first
  std::vector<fs_row> filesystems;
  std::vector<scan_error> errors;
  std::vector<skipped_mount> skipped_mounts;
  scan_stats stats;
  std::string residency_method;
  bool dirty_known = true;
  // Per container (attach_containers()); containers_known: attribution was asked for.
  bool containers_known = false;
  std::vector<cgroup::container_row> containers;
  std::string attribution_error;    // why charges could not be read, if they could not
  std::vector<std::string> copy_paths;  // by copy_id, for the containers' file lists
  std::optional<content_model> content;  // --content (report/content.hpp)
};

report_model build_report(const scan_result& scan);
// The same from a scan that is done with: its paths move into the model.
report_model build_report(scan_result&& scan);
// Adds the per-container rows (cgroup::account()) to a model built from the same scan.
// error: why every page is unattributed, if that is so.
void attach_containers(report_model& m, const scan_result& scan, std::vector<cgroup::container_row> rows,
                       std::string error);
// The same when the scan's paths were moved into the model (build_report(scan_result&&)):
// the containers' file lists take their paths from the file rows.
void attach_containers(report_model& m, std::vector<cgroup::container_row> rows, std::string error);

// --container / --cgroup: keeps the containers any filter matches, and the files and groups
// holding pages charged to them. Totals stay those of the whole scan. Returns how many
// containers are kept.
using container_filter = cgroup::container_filter;
std::size_t filter_containers(report_model& m, const container_filter& f);

nlohmann::ordered_json report_json(const report_model& m, const report_options& opts);
// One line saying which mounts of other filesystems a walk left out and how to include them
// (pseudo filesystems, which hold no file cache worth reporting, are not listed); empty when
// none were.
std::string skipped_mounts_note(const std::vector<skipped_mount>& skipped);
std::string report_text(const report_model& m, const report_options& opts);
// The model back from report_json()'s document (what the daemon's control socket sends), for
// the views; ids that only index the scan (copies) are renumbered. Throws on a malformed one.
report_model report_from_json(const nlohmann::json& j);

// The same documents written as they are produced, without building them whole first: the
// bytes are exactly dump_json(report_json(m, o), 2) + "\n" and report_text(m, o).
void write_report_json(std::ostream& out, const report_model& m, const report_options& opts);
void write_report_text(std::ostream& out, const report_model& m, const report_options& opts);

}  // namespace dupcache
