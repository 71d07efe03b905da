// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// A sample's rows as a view shows them: the tables of top's views (files, groups, filesystems,
// containers), their sort and filter, and the first rows a view shows. Here, below top/ and
// daemon/, because both order rows this way: top draws them, and the daemon sends `top
// --from-daemon` only the rows its view shows (picked with this very order).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "live/sample.hpp"

namespace dupcache::live {

enum class view_kind { files, groups, filesystems, containers };
const char* view_name(view_kind v);

struct column {
  std::string title;
  int width = 0;  // 0: takes the rest of the line
  bool numeric = true;
  bool path = false;  // elided in the middle (elide_path), not cut from the left
};

struct row {
  std::vector<std::string> cells;   // already sanitized for the terminal
  std::vector<std::uint64_t> nums;  // sort keys of numeric columns (same positions)
  std::string filter_text;          // what "/" matches against
  std::size_t source = 0;           // its entry in the model's list (files: rank position)
};

struct table {
  std::vector<column> columns;
  std::vector<row> rows;
  std::size_t default_sort = 0;  // the "wasted" column
};

struct view_state {
  view_kind view = view_kind::files;
  std::size_t sort_column = 0;
  bool descending = true;
  std::string filter;
  bool exact_bytes = false;
};

table make_table(const sample& s, view_kind v, bool exact_bytes);
// Sorts by the state's column and direction, ties broken by the text of the last column.
void sort_table(table& t, std::size_t column, bool descending);
void filter_table(table& t, const std::string& needle);
// The first `rows` rows the view shows (filtered and sorted as batch_text and the screen do),
// as their entries in the model's list: what the daemon sends `top --from-daemon`, so that
// the client's own sort and filter of them shows those very rows. 0: every row.
std::vector<std::size_t> shown_sources(const sample& s, const view_state& st, std::size_t rows);

}  // namespace dupcache::live
