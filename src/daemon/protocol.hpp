// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The control socket's protocol, both ends: the daemon serves it (control.hpp), `report
// --from-daemon` and `top --from-daemon` (remote_source.hpp) ask. One request per connection,
// a JSON object on one line, then the answer, then the connection closes:
//   {"bytes": bool, "cgroups": [...], "containers": [...], "json": bool, "top": N,
//    "views": ["file", ...]}                 -> the report, as the report command prints it
//   {"cgroups": [...], "containers": [...], "sample": true[, "top": N]}
//                                            -> the sample, as `top --json` prints it
//   the same with "view": {"name": "files"|"groups"|"filesystems"|"containers",
//   "sort": column, "descending": bool, "filter": text}
//                                            -> the sample with only the first N rows that
//                                               view shows (live::shown_sources), in its list,
//                                               and "groups_total"; the other lists but
//                                               filesystems empty
// An answer starting "error: " says why there is none. Each message has one encoder and one
// decoder here; the bytes on the wire are what the fuzz corpora and older clients hold.

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "live/sample.hpp"
#include "report/report.hpp"
#include "live/view_table.hpp"
#include "util/result.hpp"

namespace dupcache::daemon {

struct report_request {
  std::vector<report_view> views{report_view::file, report_view::group};
  bool json = false;
  std::size_t top = 0;  // rows per table; 0: the report's default
  bool bytes = false;   // exact bytes
  container_filter filter;
};

struct sample_request {
  std::size_t top = 0;  // rows; 0: every row
  container_filter filter;
  // The view the rows are for (its exact_bytes is not sent: it changes no order).
  std::optional<live::view_state> view;
};

using request = std::variant<report_request, sample_request>;

// A view's name on the wire and in --by ("file", "group", "fs", "container"); nullopt for
// anything else.
std::optional<report_view> view_named(std::string_view name);

// The request line, without its newline.
std::string encode(const report_request& r);
std::string encode(const sample_request& r);
// The error's reason is what the server answers after "error: ".
result<request> decode_request(std::string_view line);

// Answers, each ending in a newline (a text report ends in its own).
std::string encode_error(std::string_view why);
std::string encode_report_reply(const report_model& m, const report_request& r);
std::string encode_sample_reply(const live::sample& s, std::size_t top);
std::string encode_sample_reply(const live::sample& s, const sample_request& r);
// The daemon's sample; its mode says "daemon, " before the daemon's own.
result<live::sample> decode_sample_reply(const std::string& answer);

// The client end: one connection, the request sent, the whole answer read (30 s at most).
// An "error: " answer is returned as an error.
result<std::string> ask_report(const std::string& socket_path, const report_request& r);
result<live::sample> ask_sample(const std::string& socket_path, const sample_request& r);

}  // namespace dupcache::daemon
