// SPDX-License-Identifier: GPL-2.0-only
#include "top/view.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <string_view>

#include "util/text.hpp"

namespace dupcache::top {
namespace {

std::string size_cell(std::uint64_t b, bool exact) { return exact ? fmt::format("{}", b) : human_bytes(b); }

std::string rate_cell(double bps) {
  return human_bytes(static_cast<std::uint64_t>(bps < 0 ? 0 : bps)) + "/s";
}

std::string fit_left(const std::string& s, int width) {
  if (width <= 0) return "";
  if (static_cast<int>(s.size()) <= width) return s;
  if (width <= 3) return s.substr(s.size() - static_cast<std::size_t>(width));
  // Cut whole UTF-8 sequences only: skip continuation bytes at the cut.
  std::size_t start = s.size() - static_cast<std::size_t>(width - 3);
  while (start < s.size() && (static_cast<unsigned char>(s[start]) & 0xc0) == 0x80) ++start;
  return "..." + s.substr(start);
}

}  // namespace

std::string format_row(const table& t, const std::vector<std::string>& cells, int width) {
  std::string out;
  int used = 0;
  for (std::size_t i = 0; i < t.columns.size() && i < cells.size(); ++i) {
    const auto& c = t.columns[i];
    if (c.width > 0) {
      const std::string cell = c.numeric ? fmt::format("{:>{}}", cells[i], c.width) : fmt::format("{:<{}}", cells[i], c.width);
      out += cell + " ";
      used += static_cast<int>(cell.size()) + 1;
    } else {
      out += " " + (c.path ? elide_path(cells[i], width - used - 1) : fit_left(cells[i], width - used - 1));
    }
  }
  return out;
}

std::vector<std::string> header_lines(const sample& s, bool exact, int width) {
  const auto& m = s.model;
  std::vector<std::string> out;
  const std::time_t now = std::time(nullptr);
  char clock[16];
  std::strftime(clock, sizeof clock, "%H:%M:%S", std::localtime(&now));
  out.push_back(fit_left(fmt::format("dupcache top - {}  {}  interval {:.1f}s", clock, s.mode, s.elapsed_s), width));
  out.push_back(fmt::format("page cache {}  watched {}  wasted {} ({})", size_cell(s.page_cache_bytes, exact),
                            size_cell(m.cached_bytes, exact), size_cell(m.wasted_bytes, exact),
                            percent(m.wasted_bytes, m.cached_bytes)));
  if (s.live) {
    out.push_back(fmt::format("insert {}  dup insert {}  evict {}  lost events {}", rate_cell(s.insert_bps),
                              rate_cell(s.duplicate_insert_bps), rate_cell(s.evict_bps), s.lost_events));
  } else {
    out.push_back("insert -  dup insert -  evict -  (rates need BPF)");
  }
  out.push_back(fmt::format("files scanned {}  cached {}  groups {}  errors {}", m.files_scanned, m.files_cached,
                            s.groups_total.value_or(m.groups.size()), m.errors.size()));
  if (m.content) {
    std::string line = fmt::format("content wasted {}  shareable {}  groups {}", size_cell(m.content->wasted_bytes, exact),
                                   size_cell(m.content->shareable_bytes, exact), m.content->groups.size());
    // The pass's age beside the figures where the line has room for it, else on a line of its own.
    if (line.size() + s.content_status.size() + 4 <= static_cast<std::size_t>(std::max(width, 0))) {
      out.push_back(line + "  (" + s.content_status + ")");
    } else {
      out.push_back(fit_left(line, width));
      out.push_back(fit_left(s.content_status, width));
    }
  } else if (!s.content_status.empty()) {
    out.push_back(fit_left(s.content_status, width));
  }
  if (std::string note = skipped_mounts_note(m.skipped_mounts); !note.empty()) {
    note.pop_back();  // its newline
    out.push_back(fit_left(note, width));
  }
  return out;
}

std::string batch_text(const sample& s, const view_state& st, std::size_t max_rows, int width) {
  std::string out;
  for (const auto& l : header_lines(s, st.exact_bytes, width)) out += l + "\n";
  table t = make_table(s, st.view, st.exact_bytes);
  sort_table(t, st.sort_column, st.descending);
  filter_table(t, st.filter);
  out += "\n";
  std::vector<std::string> titles;
  for (const auto& c : t.columns) titles.push_back(c.title);
  out += format_row(t, titles, width) + "\n";
  for (std::size_t i = 0; i < t.rows.size() && i < max_rows; ++i) out += format_row(t, t.rows[i].cells, width) + "\n";
  return out;
}

}  // namespace dupcache::top
