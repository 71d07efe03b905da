// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// What top shows, independent of curses: the header, rows fitted to the width, and the batch
// form, over the tables of a sample (live/view_table.hpp). The curses UI draws these; tests
// check them directly.

#include <cstdint>
#include <string>
#include <vector>

#include "live/sample.hpp"
#include "live/view_table.hpp"

namespace dupcache::top {

using live::sample;

// The tables themselves are live's (live/view_table.hpp): the daemon orders rows the same way.
using live::column;
using live::filter_table;
using live::make_table;
using live::row;
using live::shown_sources;
using live::sort_table;
using live::table;
using live::view_kind;
using live::view_name;
using live::view_state;

// Cells joined and fitted into `width` columns; the last column is cut from the left.
std::string format_row(const table& t, const std::vector<std::string>& cells, int width);

std::vector<std::string> header_lines(const sample& s, bool exact_bytes, int width);
std::string batch_text(const sample& s, const view_state& st, std::size_t max_rows, int width);

}  // namespace dupcache::top
