// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The report of `dupcache report` without a daemon: one scan, the model built from it and, when
// a container table or filter asks for them, the per-container rows, filtered.
//
// The entry stops with usage_errors when a --container value names no container the host knows
// (the caller exits 2), and with no_match when a filter was given and no container with cached
// pages matches it (the caller exits 1). Unreadable page charges do not stop it: every page is
// then unattributed, and charges_error says why. A scan that fails outright is the error of
// the result.

#include <string>
#include <vector>

#include "cgroup/accounting.hpp"
#include "report/report.hpp"
#include "scan/scanner.hpp"
#include "util/result.hpp"

namespace dupcache {

struct local_report_request {
  scan_options scan;  // attribute is decided here, from views and filter
  std::vector<report_view> views{report_view::file, report_view::group};
  cgroup::container_filter filter;  // --container / --cgroup
  std::string metadata_root = "/";
  bool content = false;  // --content: also duplicates by content (report/content.hpp)
  // The file rows that will be printed (--top, or the text report's 20): only those are put in
  // order when nothing is filtered. all_rows: every one (JSON without --top).
  std::size_t file_rows = all_rows;
};

struct local_report {
  report_model model;
  std::string charges_error;              // why every page is unattributed; empty when not
  std::vector<std::string> usage_errors;  // one line per --container value naming nothing
  // The filter as given ("--container a, --cgroup /b") when it matched no container; else empty.
  std::string no_match;
  bool named_path_failed = false;  // a PATH could not be scanned at all
};

result<local_report> make_local_report(const local_report_request& req);

}  // namespace dupcache
