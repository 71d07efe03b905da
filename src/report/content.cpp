// SPDX-License-Identifier: GPL-2.0-only
#include "report/content.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <numeric>

#include "report/report.hpp"
#include "util/json_text.hpp"
#include "util/text.hpp"

namespace dupcache {
namespace {

std::uint64_t at(const std::vector<std::uint64_t>& v, copy_id c) { return c < v.size() ? v[c] : 0; }

// Files of equal size whose every page is cached and falls, page by page, in the same content
// class (bytes confirmed equal). A partly cached file is in no group: telling it equal would
// need its uncached pages, which are never read.
std::vector<content_model::group_row> identical_files(const scan_result& scan, const content_result& found,
                                                      const std::vector<std::uint64_t>& wasted, std::uint64_t ps) {
  std::map<std::pair<std::uint64_t, std::vector<std::uint64_t>>, std::vector<copy_id>> by_content;
  for (copy_id c = 0; c < scan.files.size() && c < found.classes.size(); ++c) {
    const auto& pages = scan.content.by_copy[c];
    const std::uint64_t size = c < scan.content.sizes.size() ? scan.content.sizes[c] : 0;
    // A copy sharing every page's place with another (a reflink) has no duplicate bytes of its
    // own but is still one of the identical files.
    if (size == 0 || pages.size() != (size + ps - 1) / ps) continue;
    by_content[{size, found.classes[c]}].push_back(c);
  }
  std::vector<content_model::group_row> out;
  for (auto& [key, copies] : by_content) {
    if (copies.size() < 2) continue;
    content_model::group_row g;
    g.bytes_per_copy = (key.first + ps - 1) / ps * ps;
    std::sort(copies.begin(), copies.end(),
              [&](copy_id a, copy_id b) { return scan.files[a].path < scan.files[b].path; });
    for (copy_id c : copies) {
      g.paths.push_back(scan.files[c].path);
      g.wasted_bytes += at(wasted, c);
    }
    g.copies = copies;
    if (g.wasted_bytes > 0) out.push_back(std::move(g));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    if (auto c = b.wasted_bytes <=> a.wasted_bytes; c != 0) return c < 0;
    return a.paths < b.paths;
  });
  return out;
}

std::uint64_t container_content(const report_model& m, const cgroup::container_row& c) {
  std::uint64_t sum = 0;
  for (copy_id id : c.copies) sum += at(m.content->copy_wasted_bytes, id);
  return sum;
}

}  // namespace

std::vector<std::uint64_t> content_rank(const scan_result& scan) {
  std::vector<copy_id> order(scan.files.size());
  std::iota(order.begin(), order.end(), copy_id{0});
  std::sort(order.begin(), order.end(), [&](copy_id a, copy_id b) {
    if (auto c = scan.files[a].path <=> scan.files[b].path; c != 0) return c < 0;
    return a < b;
  });
  std::vector<std::uint64_t> rank(scan.files.size());
  for (std::size_t i = 0; i < order.size(); ++i) rank[order[i]] = i;
  return rank;
}

void attach_content(report_model& m, const scan_result& scan, const content_result& found) {
  content_model c;
  c.wasted_bytes = found.wasted_bytes;
  c.shareable_bytes = m.wasted_bytes + found.wasted_bytes;
  c.copy_wasted_bytes = found.copy_wasted_bytes;
  c.copy_duplicate_bytes = found.duplicate_bytes;
  c.groups = identical_files(scan, found, found.copy_wasted_bytes, m.page_size);
  c.pages_hashed = scan.content.pages_hashed;
  c.pages_compared = found.pages_compared;
  c.hash_collisions = found.hash_collisions;
  c.pages_gone = found.pages_gone;
  c.notes = scan.content_notes;
  m.content = std::move(c);
}

void content_totals_json(nlohmann::ordered_json& totals, const report_model& m) {
  if (!m.content) return;
  totals["content_wasted_bytes"] = m.content->wasted_bytes;
  totals["content_shareable_bytes"] = m.content->shareable_bytes;
}

void content_file_json(nlohmann::ordered_json& row, const report_model& m, copy_id copy) {
  if (!m.content) return;
  row["content_wasted_bytes"] = at(m.content->copy_wasted_bytes, copy);
  row["content_duplicate_bytes"] = at(m.content->copy_duplicate_bytes, copy);
}

void content_fs_json(nlohmann::ordered_json& row, const report_model& m, const std::string& fs_id) {
  if (!m.content) return;
  // Summed per row: a report has a handful of filesystems.
  std::uint64_t sum = 0;
  for (const auto& f : m.files) {
    if (f.fs == fs_id) sum += at(m.content->copy_wasted_bytes, f.copy);
  }
  row["content_wasted_bytes"] = sum;
}

void content_container_json(nlohmann::ordered_json& row, const report_model& m, const cgroup::container_row& c) {
  if (!m.content) return;
  row["content_wasted_bytes"] = container_content(m, c);
}

void content_sections(const report_model& m, const report_options& opts,
                      const std::function<void(const char*, nlohmann::ordered_json)>& member) {
  if (!m.content) return;
  using json = nlohmann::ordered_json;
  const auto& c = *m.content;
  json groups = json::array();
  const std::size_t n = opts.top.value_or(c.groups.size());
  for (std::size_t i = 0; i < c.groups.size() && i < n; ++i) {
    const auto& g = c.groups[i];
    json row = {{"copies", g.paths.size()}, {"bytes_per_copy", g.bytes_per_copy}, {"wasted_bytes", g.wasted_bytes}};
    row["files"] = json::array();
    for (const auto& p : g.paths) {
      json f = json::object();
      put_path(f, "path", p);
      row["files"].push_back(std::move(f));
    }
    groups.push_back(std::move(row));
  }
  member("content_groups", std::move(groups));
  member("what_if", json{{"content_sharing_saves_bytes", c.shareable_bytes},
                         {"shared_extent_wasted_bytes", m.wasted_bytes},
                         {"content_wasted_bytes", c.wasted_bytes}});
  json info = {{"hash", "xxh3-64, equal bytes confirmed"},
               {"pages_hashed", c.pages_hashed},
               {"pages_compared", c.pages_compared},
               {"hash_collisions", c.hash_collisions},
               {"pages_gone", c.pages_gone}};
  info["notes"] = json::array();
  for (const auto& note : c.notes) info["notes"].push_back(json_text(note));
  member("content", std::move(info));
}

std::string content_text(const report_model& m, const report_options& opts) {
  if (!m.content) return {};
  const auto& c = *m.content;
  auto size = [&](std::uint64_t b) { return opts.exact_bytes ? fmt::format("{}", b) : human_bytes(b); };
  const int w = opts.exact_bytes ? 13 : 9;
  std::string out;
  out += fmt::format("\nCONTENT DUPLICATES: {} wasted by equal pages cached at different places "
                     "(beyond the {} shared extents waste)\n",
                     size(c.wasted_bytes), size(m.wasted_bytes));
  out += fmt::format("what if: a page cache shared by content (KSM for file pages, EROFS-style sharing) would save {} "
                     "of the scanned files' cache now ({} content + {} shared extents)\n",
                     size(c.shareable_bytes), size(c.wasted_bytes), size(m.wasted_bytes));
  std::vector<const report_model::file_list::rank*> rows;
  for (const auto& r : m.files.order) {
    if (at(c.copy_duplicate_bytes, r.copy) > 0) rows.push_back(&r);
  }
  std::stable_sort(rows.begin(), rows.end(), [&](const auto* a, const auto* b) {
    return at(c.copy_wasted_bytes, a->copy) > at(c.copy_wasted_bytes, b->copy);
  });
  const std::size_t n = std::min(opts.top.value_or(20), rows.size());
  if (n > 0) {
    out += fmt::format("\nCONTENT FILES ({} of {}, by content wasted)\n", n, rows.size());
    out += fmt::format("{:>{}} {:>{}}  {}\n", "WASTED", w, "EQUAL", w, "PATH");
    for (std::size_t i = 0; i < n; ++i) {
      out += fmt::format("{:>{}} {:>{}}  {}\n", size(at(c.copy_wasted_bytes, rows[i]->copy)), w,
                         size(at(c.copy_duplicate_bytes, rows[i]->copy)), w,
                         terminal_safe(m.files.row(*rows[i]).path.str()));
    }
  }
  const std::size_t ng = std::min(opts.top.value_or(20), c.groups.size());
  if (ng > 0) {
    out += fmt::format("\nCONTENT GROUPS ({} of {}, identical files)\n", ng, c.groups.size());
    out += fmt::format("{:>{}} {:>6} {:>{}}  {}\n", "WASTED", w, "COPIES", "SIZE", w, "FILES");
    for (std::size_t i = 0; i < ng; ++i) {
      const auto& g = c.groups[i];
      std::string files;
      for (const auto& p : g.paths) files += (files.empty() ? "" : ", ") + terminal_safe(p);
      out += fmt::format("{:>{}} {:>6} {:>{}}  {}\n", size(g.wasted_bytes), w, g.paths.size(), size(g.bytes_per_copy),
                         w, files);
    }
  }
  if (m.containers_known) {
    for (const auto& row : m.containers) {
      if (auto b = container_content(m, row); b > 0) {
        out += fmt::format("content wasted in container {}: {}\n", terminal_safe(row.label()), size(b));
      }
    }
  }
  for (const auto& note : c.notes) out += "note: " + terminal_safe(note) + "\n";
  out += fmt::format("note: content from {} clean cached page(s) hashed (xxh3) and confirmed byte for byte ({} compared, "
                     "{} hash collision(s)); dirty pages are left out",
                     c.pages_hashed, c.pages_compared, c.hash_collisions);
  if (c.pages_gone > 0) out += fmt::format("; {} page(s) evicted while measuring were not counted", c.pages_gone);
  out += "\n";
  return out;
}

}  // namespace dupcache
