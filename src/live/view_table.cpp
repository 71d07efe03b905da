// SPDX-License-Identifier: GPL-2.0-only
#include "live/view_table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <compare>
#include <string_view>

#include "util/text.hpp"

namespace dupcache::live {
namespace {

std::string size_cell(std::uint64_t b, bool exact) { return exact ? fmt::format("{}", b) : human_bytes(b); }

}  // namespace

const char* view_name(view_kind v) {
  switch (v) {
    case view_kind::files: return "files";
    case view_kind::groups: return "groups";
    case view_kind::filesystems: return "filesystems";
    case view_kind::containers: return "containers";
  }
  return "?";
}

table make_table(const sample& s, view_kind v, bool exact) {
  table t;
  const int w = exact ? 13 : 9;
  const auto& m = s.model;
  if (v == view_kind::files) {
    t.columns = {{"WASTED", w, true}, {"SHARED", w, true}, {"CACHED", w, true}, {"PATH", 0, false, true}};
    for (std::size_t i = 0; i < m.files.size(); ++i) {
      const auto f = m.files[i];
      if (f.cached_bytes == 0) continue;
      const std::string path = terminal_safe(f.path.str());
      t.rows.push_back({{size_cell(f.wasted_bytes, exact), size_cell(f.shared_cached_bytes, exact),
                         size_cell(f.cached_bytes, exact), path},
                        {f.wasted_bytes, f.shared_cached_bytes, f.cached_bytes, 0},
                        path,
                        i});
    }
    t.default_sort = 0;
  } else if (v == view_kind::groups) {
    t.columns = {{"COPIES", 6, true}, {"PER COPY", w, true}, {"WASTED", w, true}, {"FILES", 0, false, true}};
    for (std::size_t gi = 0; gi < m.groups.size(); ++gi) {
      const auto& g = m.groups[gi];
      std::string all;
      for (copy_id c : g.copies) all += terminal_safe(m.path_of(c).str()) + "\n";
      std::string first = terminal_safe(m.path_of(g.copies.front()).str());
      if (g.copies.size() > 1) first += fmt::format(" (+{})", g.copies.size() - 1);
      t.rows.push_back({{fmt::format("{}", g.copies.size()), size_cell(g.bytes_per_copy, exact),
                         size_cell(g.wasted_bytes, exact), first},
                        {g.copies.size(), g.bytes_per_copy, g.wasted_bytes, 0},
                        all,
                        gi});
    }
    t.default_sort = 2;
  } else if (v == view_kind::containers) {
    t.columns = {{"WASTED", w, true},       {"SHARED", w, true},       {"CACHED", w, true},
                 {"RUNTIME", 10, false}, {"CONTAINER", 16, false}, {"CGROUP", 0, false}};
    for (std::size_t ci = 0; ci < m.containers.size(); ++ci) {
      const auto& c = m.containers[ci];
      const std::string label = terminal_safe(c.label()) + (c.stopped ? " (stopped)" : "");
      const std::string cg = terminal_safe(c.cgroup);
      t.rows.push_back({{size_cell(c.wasted_bytes, exact), size_cell(c.shared_cached_bytes, exact),
                         size_cell(c.cached_bytes, exact), c.runtime, label, cg},
                        {c.wasted_bytes, c.shared_cached_bytes, c.cached_bytes, 0, 0, 0},
                        c.runtime + " " + label + " " + terminal_safe(c.id) + " " + cg + " " + c.pod_uid,
                        ci});
    }
    t.default_sort = 0;
  } else {
    t.columns = {{"WASTED", w, true}, {"CACHED", w, true}, {"FILES", 7, true}, {"TYPE", 8, false},
                 {"FILESYSTEM", 0, false}};
    for (std::size_t fi = 0; fi < m.filesystems.size(); ++fi) {
      const auto& fs = m.filesystems[fi];
      // The mount point or PATH is what fits in 80 columns; the UUID stays searchable with /.
      const std::string where = terminal_safe(fs.where);
      t.rows.push_back({{size_cell(fs.wasted_bytes, exact), size_cell(fs.cached_bytes, exact),
                         fmt::format("{}", fs.files_cached), fs.type, where},
                        {fs.wasted_bytes, fs.cached_bytes, fs.files_cached, 0, 0},
                        where + " " + terminal_safe(fs.id),
                        fi});
    }
    t.default_sort = 0;
  }
  return t;
}

namespace {

// The views' order: by the column, in the direction, ties by the text of the last column (then,
// in a stable sort, as the model lists them).
struct row_order {
  row_order(const table& t, std::size_t col, bool descending)
      : col_(std::min(col, t.columns.size() - 1)),
        last_(t.columns.size() - 1),
        numeric_(t.columns[col_].numeric),
        descending_(descending) {}
  bool operator()(const row& a, const row& b) const {
    std::strong_ordering c = numeric_ ? a.nums[col_] <=> b.nums[col_] : a.cells[col_].compare(b.cells[col_]) <=> 0;
    if (c != 0) return descending_ ? c > 0 : c < 0;
    return a.cells[last_] < b.cells[last_];
  }
  std::size_t col_, last_;
  bool numeric_, descending_;
};

}  // namespace

void sort_table(table& t, std::size_t col, bool descending) {
  if (t.columns.empty()) return;
  std::stable_sort(t.rows.begin(), t.rows.end(), row_order(t, col, descending));
}

namespace {

// A path as the files view shows it (terminal_safe), without a copy when nothing in it needs
// escaping (printable ASCII but the backslash): the daemon orders a million of them per
// request, read in place (a pooled path is two pieces: packed_string compares them as one).
struct shown_path {
  const packed_string* raw = nullptr;  // the path itself, when it prints as it is
  std::string escaped;                 // else its escaped text
  std::strong_ordering operator<=>(const shown_path& o) const {
    if (raw && o.raw) return *raw <=> *o.raw;
    if (raw) return compare_text(*raw, {}, o.escaped);
    if (o.raw) return 0 <=> compare_text(*o.raw, {}, escaped);
    return escaped.compare(o.escaped) <=> 0;
  }
  bool contains(const std::string& needle) const {
    return (raw ? raw->str() : escaped).find(needle) != std::string::npos;
  }
};

bool prints_as_is(const packed_string& p) {
  const auto [head, tail] = p.pieces();
  auto plain = [](std::string_view v) {
    return std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c < 0x7f && c != '\\'; });
  };
  return plain(head) && plain(tail);
}

// The files view's rows in the order make_table, filter_table and sort_table give them, without
// building the table (formatted sizes, copied paths: a second per request at a million files).
std::vector<std::size_t> shown_files(const report_model& m, const view_state& st, std::size_t rows) {
  struct entry {
    std::size_t source;
    std::uint64_t nums[3];
    shown_path path;
  };
  std::vector<entry> v;
  for (std::size_t i = 0; i < m.files.size(); ++i) {
    const auto f = m.files[i];
    if (f.cached_bytes == 0) continue;
    entry e{i, {f.wasted_bytes, f.shared_cached_bytes, f.cached_bytes}, {}};
    if (prints_as_is(f.path)) e.path.raw = &f.path;
    else e.path.escaped = terminal_safe(f.path.str());
    if (!st.filter.empty() && !e.path.contains(st.filter)) continue;
    v.push_back(std::move(e));
  }
  const std::size_t col = std::min<std::size_t>(st.sort_column, 3);  // the last column: PATH
  const std::size_t n = rows == 0 ? v.size() : std::min(rows, v.size());
  auto before = [&](const entry& a, const entry& b) {
    const std::strong_ordering by_path = a.path <=> b.path;
    const std::strong_ordering c = col < 3 ? a.nums[col] <=> b.nums[col] : by_path;
    if (c != 0) return st.descending ? c > 0 : c < 0;
    if (by_path != 0) return by_path < 0;
    return a.source < b.source;  // the stable sort's order: the table's
  };
  std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n), v.end(), before);
  std::vector<std::size_t> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(v[i].source);
  return out;
}

}  // namespace

std::vector<std::size_t> shown_sources(const sample& s, const view_state& st, std::size_t rows) {
  if (st.view == view_kind::files) return shown_files(s.model, st, rows);
  table t = make_table(s, st.view, false);  // the order does not depend on how sizes print
  filter_table(t, st.filter);
  std::vector<std::size_t> out;
  if (t.columns.empty() || t.rows.empty()) return out;
  // The first rows of the stable sort: equal rows keep their table order (their position).
  const row_order before(t, st.sort_column, st.descending);
  std::vector<std::size_t> pos(t.rows.size());
  for (std::size_t i = 0; i < pos.size(); ++i) pos[i] = i;
  const std::size_t n = rows == 0 ? pos.size() : std::min(rows, pos.size());
  std::partial_sort(pos.begin(), pos.begin() + static_cast<std::ptrdiff_t>(n), pos.end(), [&](std::size_t a, std::size_t b) {
    if (before(t.rows[a], t.rows[b])) return true;
    if (before(t.rows[b], t.rows[a])) return false;
    return a < b;
  });
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(t.rows[pos[i]].source);
  return out;
}

void filter_table(table& t, const std::string& needle) {
  if (needle.empty()) return;
  std::erase_if(t.rows, [&](const row& r) { return r.filter_text.find(needle) == std::string::npos; });
}

}  // namespace dupcache::live
