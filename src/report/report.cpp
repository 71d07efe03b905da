// SPDX-License-Identifier: GPL-2.0-only
#include "report/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <stdexcept>
#include <set>
#include <sstream>
#include <thread>

#include "util/json_text.hpp"
#include "util/text.hpp"

namespace dupcache {
namespace {

nlohmann::ordered_json& path_json(nlohmann::ordered_json& obj, const char* key, std::string_view path) {
  return put_path(obj, key, path);
}

std::size_t rows_for(const report_options& o, std::size_t fallback) { return o.top.value_or(fallback); }

// The file rows a view prints: want of them, or every one; never past the ranks put in order
// (a model built for fewer rows than a view asks for is a caller's mistake, not a short list).
std::size_t file_rows(const report_model& m, std::size_t want) {
  const std::size_t n = std::min(want, m.files.size());
  if (n > m.files.ordered) {
    throw std::logic_error(fmt::format("report: {} file rows asked of a model ordered for {}", n, m.files.ordered));
  }
  return n;
}

// Sorted as std::sort would (the order is total: equal rows are equal), in two halves on two
// threads and merged, when there are enough rows to pay for a thread and there are two CPUs:
// a million files' ranks took a second on one.
template <typename T, typename Less>
void sort_on_two_threads(std::vector<T>& v, Less less) {
  constexpr std::size_t worth_a_thread = 65536;
  if (v.size() < worth_a_thread || std::thread::hardware_concurrency() < 2) {
    std::sort(v.begin(), v.end(), less);
    return;
  }
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  {
    std::jthread first([&] { std::sort(v.begin(), mid, less); });
    std::sort(mid, v.end(), less);
  }
  std::inplace_merge(v.begin(), mid, v.end(), less);
}

// Sorts v, which holds an order that was sorted before and has since changed in a few places:
// the ranks still in order relative to those kept before them stay where they are, the others
// (both sides of every descent found) are sorted apart and put back each at its place, by
// binary search. About n comparisons of neighbours and d log n more for d ranks out of place,
// against n log n; a sort from scratch when most are out of place. The result is what
// std::sort gives (the order is total).
template <typename T, typename Less>
void resort(std::vector<T>& v, Less less) {
  std::vector<T> displaced;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (kept > 0 && less(v[i], v[kept - 1])) {
      displaced.push_back(v[--kept]);
      displaced.push_back(v[i]);
      continue;
    }
    v[kept++] = v[i];
  }
  if (displaced.size() > v.size() / 4) {
    std::copy(displaced.begin(), displaced.end(), v.begin() + static_cast<std::ptrdiff_t>(kept));
    sort_on_two_threads(v, less);
    return;
  }
  sort_on_two_threads(displaced, less);
  // From the back: each displaced rank (largest first) after the kept ranks not above it.
  auto end = v.begin() + static_cast<std::ptrdiff_t>(kept);
  auto out = v.end();
  for (auto d = displaced.rbegin(); d != displaced.rend(); ++d) {
    const auto at = std::upper_bound(v.begin(), end, *d, less);
    out = std::move_backward(at, end, out);
    *--out = *d;
    end = at;
  }
}

}  // namespace

namespace {

// The model from a scan. A scan that is done with (Take) hands over its per-file records and
// has its index released before the ranks are allocated: the report's peak memory is the scan
// plus 16 B per cached file, not the scan plus a copy of every row (issue 17).
//
// Ordering rules (the JSON and text list rows in this order; report_stream_test checks them):
//   files:       wasted bytes, then shared cached bytes, then cached bytes, all descending;
//                ties by path, bytewise ascending (so equal rows never depend on walk order);
//   groups:      block_index::groups(): wasted bytes descending, ties by their copies' keys;
//                a group's paths follow its copies, in copy_key order;
//   filesystems: wasted, then cached bytes descending, ties by id;
//   containers:  as cgroup::account() ranks them; errors and skipped mounts by path (scanner).
template <bool Take>
report_model make_model(std::conditional_t<Take, scan_result&, const scan_result&> scan, rank_memory* memory,
                        std::size_t ranked_rows) {
  report_model m;
  const auto& index = scan.index;
  m.page_size = index.page_size();
  m.wasted_bytes = index.wasted_bytes();
  m.files_scanned = scan.stats.files_scanned;
  m.files_cached = scan.stats.files_cached;
  m.errors = scan.errors;
  m.skipped_mounts = scan.skipped_mounts;
  m.stats = scan.stats;
  m.residency_method = scan.residency_method;
  m.dirty_known = scan.dirty_known;

  std::map<std::string, std::uint64_t> wasted_by_fs;
  auto& list = m.files;
  {
    auto groups = index.groups();
    // Per shared copy, in id order: a vector (ranks point into it), from these groups.
    list.shares = block_index::split_waste_by_id(groups, index.page_size());
    m.groups.reserve(groups.size());
    for (auto& g : groups) {
      report_model::group_row row;
      row.bytes_per_copy = g.bytes;
      row.wasted_bytes = g.wasted_bytes();  // of g.copies: read before they move
      row.copies = std::move(g.copies);
      wasted_by_fs[index.key_of(row.copies.front()).fs] += row.wasted_bytes;
      m.groups.push_back(std::move(row));
    }
  }

  // A file is ranked when it has a path and cached pages (live: every page evicted since).
  auto ranked = [](const file_entry& f) { return !f.path.empty() && f.cached_bytes > 0; };
  const std::size_t ncopies = scan.files.size();
  if constexpr (Take) {
    // The index is done with once its keys are out: released before the ranks exist.
    list.keys = std::move(scan.index).take_keys();
    list.paths = std::move(scan.paths);
    list.by_copy = std::move(scan.files);
    scan.files.clear();
  } else {
    // Copied: the ranked records and keys, and the groups' paths. (Sized by copying one
    // default record: a default-made one interns its empty strings, under a lock, each.)
    // Pooled paths are shared, not copied, with the pool's blocks held alive by the model:
    // a live model is built every interval, and a million paths copied and freed each time
    // were a third of an idle daemon's CPU.
    list.shared_paths = scan.paths.keep_alive();
    auto copy = [&](copy_id id) {
      const file_entry& f = scan.files[id];
      file_entry& e = list.by_copy[id];
      e.path = packed_string::sharing(f.path);
      e.cached_bytes = f.cached_bytes;
      e.dirty_bytes = f.dirty_bytes;
      e.root = f.root;
    };
    list.keys.resize(ncopies, copy_key{});
    list.by_copy.resize(ncopies, file_entry{});
    for (copy_id id = 0; id < ncopies; ++id) {
      if (!ranked(scan.files[id])) continue;
      copy(id);
      list.keys[id] = index.key_of(id);
    }
    for (const auto& g : m.groups) {
      for (copy_id id : g.copies) {
        // Ranked copies have theirs already (a heap path would be copied twice).
        if (list.by_copy[id].path.empty()) list.by_copy[id].path = packed_string::sharing(scan.files[id].path);
      }
    }
  }
  const auto& files = list.by_copy;
  // Sized once: a vector grown by doubling would hold up to twice the ranks at its peak.
  list.order.reserve(static_cast<std::size_t>(std::count_if(files.begin(), files.end(), ranked)));
  std::size_t share = 0;
  for (copy_id id = 0; id < files.size(); ++id) {
    const auto& f = files[id];
    if (!ranked(f)) continue;
    report_model::file_list::rank r;
    r.copy = id;
    while (share < list.shares.size() && list.shares[share].first < id) ++share;
    if (share < list.shares.size() && list.shares[share].first == id) r.share = static_cast<std::uint32_t>(share);
    m.cached_bytes += f.cached_bytes;
    list.order.push_back(r);
  }
  m.files_cached = list.order.size();
  auto less = [&](const auto& a, const auto& b) {
    const copy_share sa = list.share_of(a);
    const copy_share sb = list.share_of(b);
    if (auto c = sb.wasted_bytes <=> sa.wasted_bytes; c != 0) return c < 0;
    if (auto c = sb.shared_bytes <=> sa.shared_bytes; c != 0) return c < 0;
    if (auto c = files[b.copy].cached_bytes <=> files[a.copy].cached_bytes; c != 0) return c < 0;
    return files[a.copy].path < files[b.copy].path;
  };
  if (memory && !memory->order.empty()) {
    // The ranks in the remembered order (the copies still ranked), then the others in id order.
    // list.order holds them by id: a rank's place there is found through one index per copy.
    constexpr std::uint32_t none = ~std::uint32_t{0};
    std::vector<std::uint32_t> at(files.size(), none);
    for (std::size_t i = 0; i < list.order.size(); ++i) at[list.order[i].copy] = static_cast<std::uint32_t>(i);
    std::vector<report_model::file_list::rank> arranged;
    arranged.reserve(list.order.size());
    for (copy_id id : memory->order) {
      if (id >= at.size() || at[id] == none) continue;
      arranged.push_back(list.order[at[id]]);
      at[id] = none;  // once, however often the memory names it
    }
    for (const auto& r : list.order) {
      if (at[r.copy] != none) arranged.push_back(r);
    }
    list.order = std::move(arranged);
    resort(list.order, less);
  } else if (ranked_rows < list.order.size()) {
    // Only the rows printed are put in order: the top ranked_rows by a heap, n log k against
    // n log n (a million ranks sorted whole were half a second of a report's single-threaded
    // end, for the 20 rows it prints).
    const auto end = list.order.begin() + static_cast<std::ptrdiff_t>(ranked_rows);
    std::partial_sort(list.order.begin(), end, list.order.end(), less);
    list.ordered = ranked_rows;
  } else {
    sort_on_two_threads(list.order, less);
  }
  if (list.ordered > list.order.size()) list.ordered = list.order.size();
  if (memory) {
    memory->order.resize(list.order.size());
    for (std::size_t i = 0; i < list.order.size(); ++i) memory->order[i] = list.order[i].copy;
  }

  // Cached bytes per filesystem from the files themselves, so a live state (whose filesystem
  // entries are from the seed) is current too.
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> cached_by_fs;  // files, bytes
  for (const auto& r : list.order) {
    const auto& f = files[r.copy];
    auto& c = cached_by_fs[list.keys[r.copy].fs];
    ++c.first;
    c.second += f.cached_bytes;
  }
  for (const auto& [id, fs] : scan.filesystems) {
    const auto& c = cached_by_fs[id];
    m.filesystems.push_back({id, fs.type, fs.where, fs.files_scanned, c.first, c.second, wasted_by_fs[id]});
  }
  std::sort(m.filesystems.begin(), m.filesystems.end(), [](const auto& a, const auto& b) {
    if (auto c = b.wasted_bytes <=> a.wasted_bytes; c != 0) return c < 0;
    if (auto c = b.cached_bytes <=> a.cached_bytes; c != 0) return c < 0;
    return a.id < b.id;
  });
  return m;
}

}  // namespace

report_model build_report(const scan_result& scan) { return make_model<false>(scan, nullptr, all_rows); }

report_model build_report(const scan_result& scan, rank_memory& memory) {
  return make_model<false>(scan, &memory, all_rows);
}

report_model build_report(scan_result&& scan, std::size_t ranked_rows) {
  return make_model<true>(scan, nullptr, ranked_rows);
}

void attach_containers(report_model& m, const scan_result& scan, std::vector<cgroup::container_row> rows,
                       std::string error) {
  m.containers_known = true;
  m.containers = std::move(rows);
  m.attribution_error = std::move(error);
  m.copy_paths.resize(scan.files.size());
  for (copy_id id = 0; id < scan.files.size(); ++id) m.copy_paths[id] = scan.files[id].path;
}

void attach_containers(report_model& m, std::vector<cgroup::container_row> rows, std::string error) {
  m.containers_known = true;
  m.containers = std::move(rows);
  m.attribution_error = std::move(error);
  // Only the paths the containers' file lists name, from the file rows.
  std::vector<bool> named;
  for (const auto& c : m.containers) {
    for (const auto& f : c.files) {
      if (f.copy >= named.size()) named.resize(f.copy + 1);
      named[f.copy] = true;
    }
  }
  m.copy_paths.assign(named.size(), std::string());
  for (const auto& f : m.files) {
    if (f.copy < named.size() && named[f.copy]) m.copy_paths[f.copy] = f.path;
  }
}

std::size_t filter_containers(report_model& m, const container_filter& f) {
  if (f.empty()) return m.containers.size();
  if (m.files.ordered < m.files.size()) {
    // The first rows of what is kept need not be among the first rows put in order.
    throw std::logic_error("report: containers filtered from a model ordered for its first rows only");
  }
  std::erase_if(m.containers, [&](const auto& r) { return !f.matches(r); });
  std::vector<bool> copies;
  for (const auto& r : m.containers) {
    for (copy_id c : r.copies) {
      if (c >= copies.size()) copies.resize(c + 1);
      copies[c] = true;
    }
  }
  auto held = [&](copy_id c) { return c < copies.size() && copies[c]; };
  std::erase_if(m.files.order, [&](const auto& r) { return !held(r.copy); });
  std::erase_if(m.groups, [&](const auto& g) { return std::none_of(g.copies.begin(), g.copies.end(), held); });
  return m.containers.size();
}

namespace {

using ojson = nlohmann::ordered_json;

ojson file_json(const report_model::file_row& f) {
  ojson row = ojson::object();
  path_json(row, "path", f.path.str());
  row["cached_bytes"] = f.cached_bytes;
  row["shared_cached_bytes"] = f.shared_cached_bytes;
  row["wasted_bytes"] = f.wasted_bytes;
  row["dirty_bytes"] = f.dirty_bytes;
  row["fs"] = f.fs.str();
  row["subvol"] = f.subvol;
  row["ino"] = f.ino;
  return row;
}

// Text JSON writes as it is: printable ASCII without a quote or a backslash (nlohmann's dump
// escapes only those and control bytes; anything else goes the long way, through put_path).
bool plain_json_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
}

// file_json(f) as stream_sink writes it (dump_json(row, 2), every line after the first
// indented by 4), appended to out without building the object: a million rows built and
// dumped one by one took 4.6 s of a 12 s report --json (issue 17). False, nothing written,
// when the row needs the long way: a path or filesystem id to escape or re-encode.
// report_stream_test holds the two to the same bytes.
bool append_plain_file_row(std::string& out, const report_model::file_row& f) {
  const auto [dir, leaf] = f.path.pieces();
  if (!plain_json_text(dir) || !plain_json_text(leaf) || !plain_json_text(f.fs.str())) return false;
  auto number = [&out](const char* key, std::uint64_t v) {
    out += key;
    char buf[24];
    out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  };
  out += "{\n      \"path\": \"";
  out += dir;
  out += leaf;
  number("\",\n      \"cached_bytes\": ", f.cached_bytes);
  number(",\n      \"shared_cached_bytes\": ", f.shared_cached_bytes);
  number(",\n      \"wasted_bytes\": ", f.wasted_bytes);
  number(",\n      \"dirty_bytes\": ", f.dirty_bytes);
  out += ",\n      \"fs\": \"";
  out += f.fs.str();
  number("\",\n      \"subvol\": ", f.subvol);
  number(",\n      \"ino\": ", f.ino);
  out += "\n    }";
  return true;
}

ojson group_json(const report_model& m, const report_model::group_row& g) {
  ojson row = {{"copies", g.copies.size()}, {"bytes_per_copy", g.bytes_per_copy}, {"wasted_bytes", g.wasted_bytes}};
  row["files"] = ojson::array();
  for (copy_id c : g.copies) {
    ojson f = ojson::object();
    path_json(f, "path", m.path_of(c).str());
    row["files"].push_back(std::move(f));
  }
  return row;
}

ojson fs_json(const report_model::fs_row& fs) {
  ojson row = {{"id", fs.id},           {"type", fs.type},
               {"cached_bytes", fs.cached_bytes}, {"wasted_bytes", fs.wasted_bytes},
               {"files_scanned", fs.files_scanned}, {"files_cached", fs.files_cached}};
  path_json(row, "path", fs.where);
  return row;
}

ojson container_json(const report_model& m, const cgroup::container_row& c, std::size_t nfiles_per) {
  ojson row = {{"cgroup", c.cgroup},   {"runtime", c.runtime}, {"id", c.id}, {"name", c.name},
               {"cached_bytes", c.cached_bytes}, {"wasted_bytes", c.wasted_bytes},
               {"shared_cached_bytes", c.shared_cached_bytes}};
  row["stopped"] = c.stopped;
  if (!c.pod_uid.empty()) row["pod_uid"] = c.pod_uid;
  if (!c.qos.empty()) row["qos"] = c.qos;
  row["files"] = ojson::array();
  for (std::size_t k = 0; k < c.files.size() && k < nfiles_per; ++k) {
    const auto& f = c.files[k];
    ojson fr = ojson::object();
    path_json(fr, "path", f.copy < m.copy_paths.size() ? m.copy_paths[f.copy] : std::string());
    fr["shared_cached_bytes"] = f.shared_cached_bytes;
    fr["wasted_bytes"] = f.wasted_bytes;
    row["files"].push_back(std::move(fr));
  }
  row["shared_with"] = ojson::array();
  for (const auto& p : c.shared_with) {
    row["shared_with"].push_back(
        {{"cgroup", p.cgroup}, {"runtime", p.runtime}, {"id", p.id}, {"name", p.name}, {"bytes", p.bytes}});
  }
  return row;
}

ojson error_json(const scan_error& e) {
  ojson row = ojson::object();
  path_json(row, "path", e.path);
  row["error"] = json_text(e.message);
  return row;
}

ojson skipped_json(const report_model& m) {
  ojson j = {{"repeated_inodes", m.stats.repeated_inodes},
             {"special_files", m.stats.special_skipped},
             {"vanished", m.stats.vanished},
             {"mounts_not_crossed", m.stats.mounts_not_crossed},
             {"same_fs_mounts_walked", m.stats.same_fs_mounts}};
  j["mounts"] = ojson::array();
  for (const auto& s : m.skipped_mounts) {
    ojson row = ojson::object();
    path_json(row, "path", s.path);
    row["type"] = s.fstype;
    row["pseudo"] = s.pseudo;
    j["mounts"].push_back(std::move(row));
  }
  return j;
}

// The document, top-level member by member, into a sink that either builds it in memory
// (dom_sink: report_json) or writes it as it goes (stream_sink: write_report_json). One list,
// so the two cannot drift apart. A sink takes member(key, value) for small values and
// array(key, n, row(i)) for the lists that grow with the tree, which are never held whole.
template <typename Sink>
void report_sections(Sink& out, const report_model& m, const report_options& opts) {
  out.member("schema", 1);
  out.member("page_size", m.page_size);
  ojson totals{{"cached_bytes", m.cached_bytes},
               {"wasted_bytes", m.wasted_bytes},
               {"files_scanned", m.files_scanned},
               {"files_cached", m.files_cached}};
  content_totals_json(totals, m);
  out.member("totals", std::move(totals));
  const row_selection* sel = opts.selection;
  // Row i of each list: the i-th selected, or the i-th in the model's order.
  auto file_at = [&](std::size_t i) { return sel ? sel->files[i] : i; };
  auto group_at = [&](std::size_t i) { return sel ? sel->groups[i] : i; };
  auto container_at = [&](std::size_t i) { return sel ? sel->containers[i] : i; };
  out.array(
      "files", sel ? sel->files.size() : file_rows(m, rows_for(opts, m.files.size())),
      [&](std::size_t i) {
        const auto f = m.files[file_at(i)];
        ojson row = file_json(f);
        content_file_json(row, m, f.copy);
        return row;
      },
      [&](std::size_t i, std::string& text) { return !m.content && append_plain_file_row(text, m.files[file_at(i)]); });
  out.array("groups", sel ? sel->groups.size() : std::min(rows_for(opts, m.groups.size()), m.groups.size()),
            [&](std::size_t i) { return group_json(m, m.groups[group_at(i)]); });
  out.array("filesystems", m.filesystems.size(), [&](std::size_t i) {
    ojson row = fs_json(m.filesystems[i]);
    content_fs_json(row, m, m.filesystems[i].id);
    return row;
  });
  const std::size_t nfiles_per = rows_for(opts, 10);
  out.array("containers", sel ? sel->containers.size() : std::min(rows_for(opts, m.containers.size()), m.containers.size()),
            [&](std::size_t i) {
              const auto& c = m.containers[container_at(i)];
              ojson row = container_json(m, c, nfiles_per);
              content_container_json(row, m, c);
              return row;
            });
  if (m.containers_known) {
    ojson a = {{"method", m.attribution_error.empty() ? "kpagecgroup" : "none"}};
    if (!m.attribution_error.empty()) {
      a["reason"] = m.attribution_error;
      a["error"] = m.attribution_error;  // the first name of "reason", kept
    }
    out.member("attribution", std::move(a));
  }
  out.array("errors", m.errors.size(), [&](std::size_t i) { return error_json(m.errors[i]); });
  out.member("residency", m.residency_method);
  out.member("skipped", skipped_json(m));
  // Further top-level sections go here, as out.member() / out.array() calls, in the order
  // they are to appear (after "skipped": readers look members up by name).
  content_sections(m, opts, [&](const char* key, ojson v) { out.member(key, std::move(v)); });
}

struct dom_sink {
  ojson j;
  template <typename V>
  void member(const char* key, V&& v) { j[key] = std::forward<V>(v); }
  template <typename Row, typename Plain = std::nullptr_t>
  void array(const char* key, std::size_t n, Row&& row, Plain&& = nullptr) {  // every row built
    auto& a = j[key] = ojson::array();
    for (std::size_t i = 0; i < n; ++i) a.push_back(row(i));
  }
};

// Writes what dump_json(doc, 2) writes for the whole document: nlohmann's layout (two spaces
// per level, "key": value, "[]" for an empty array), each row dumped alone and indented to its
// depth. Dumped strings hold no raw newline (JSON escapes it), so indenting after every
// newline touches only the layout. Compact, it writes what dump_json(doc) writes (a top
// sample, one line): no layout at all.
class stream_sink {
 public:
  explicit stream_sink(std::ostream& out, bool compact = false) : out_(out), compact_(compact) { out_ << '{'; }
  template <typename V>
  void member(const char* key, V&& v) {
    open(key);
    put(ojson(std::forward<V>(v)), 2);
  }
  // plain(i, text): appends row i's text as put(row(i), 4) would write it, or returns false
  // (nothing appended) for the row to be built and dumped.
  template <typename Row, typename Plain = std::nullptr_t>
  void array(const char* key, std::size_t n, Row&& row, Plain&& plain = nullptr) {
    open(key);
    if (n == 0) {
      out_ << "[]";
      return;
    }
    out_ << '[';
    if (compact_) {
      for (std::size_t i = 0; i < n; ++i) {
        if (i > 0) out_ << ',';
        put(row(i), 0);
      }
      out_ << ']';
      return;
    }
    std::string text;
    for (std::size_t i = 0; i < n; ++i) {
      text += i == 0 ? "\n    " : ",\n    ";
      if constexpr (!std::is_same_v<std::decay_t<Plain>, std::nullptr_t>) {
        if (plain(i, text)) {
          if (text.size() >= 64 * 1024) {
            out_.write(text.data(), static_cast<std::streamsize>(text.size()));
            text.clear();
          }
          continue;
        }
      }
      out_.write(text.data(), static_cast<std::streamsize>(text.size()));
      text.clear();
      put(row(i), 4);
    }
    out_.write(text.data(), static_cast<std::streamsize>(text.size()));
    out_ << "\n  ]";
  }
  // Compact: no newline after it (dump_json's bytes).
  void finish() {
    if (compact_) out_ << '}';
    else out_ << (first_ ? "}\n" : "\n}\n");
  }

 private:
  void open(const char* key) {
    if (compact_) out_ << (first_ ? "\"" : ",\"") << key << "\":";
    else out_ << (first_ ? "\n  \"" : ",\n  \"") << key << "\": ";
    first_ = false;
  }
  void put(const ojson& v, std::size_t indent) {
    if (compact_) {
      out_ << dump_json(v);
      return;
    }
    const std::string text = dump_json(v, 2);
    std::size_t from = 0;
    for (std::size_t nl; (nl = text.find('\n', from)) != std::string::npos; from = nl + 1) {
      out_.write(text.data() + from, static_cast<std::streamsize>(nl + 1 - from));
      for (std::size_t k = 0; k < indent; ++k) out_.put(' ');
    }
    out_.write(text.data() + from, static_cast<std::streamsize>(text.size() - from));
  }
  std::ostream& out_;
  const bool compact_;
  bool first_ = true;
};

}  // namespace

nlohmann::ordered_json report_json(const report_model& m, const report_options& opts) {
  dom_sink sink;
  report_sections(sink, m, opts);
  return std::move(sink.j);
}

void write_report_json(std::ostream& out, const report_model& m, const report_options& opts) {
  stream_sink sink(out);
  report_sections(sink, m, opts);
  sink.finish();
}

void write_report_json_compact(std::ostream& out, const report_model& m, const report_options& opts,
                               const nlohmann::ordered_json& tail) {
  stream_sink sink(out, true);
  report_sections(sink, m, opts);
  for (const auto& [key, value] : tail.items()) sink.member(key.c_str(), value);
  sink.finish();
}

namespace {

std::string path_from_json(const nlohmann::json& obj, const char* key) {
  if (auto b = obj.find(std::string(key) + "_base64"); b != obj.end() && b->is_string()) {
    if (auto raw = base64_decode(b->get<std::string>())) return *raw;
  }
  return obj.value(key, std::string());
}

}  // namespace

namespace {

// Byte counts and ids from a daemon's document: unsigned integers only. A float or a negative
// number would be converted unchecked (undefined for 1e300; found by fuzz/control_answer).
std::uint64_t u64(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(v.get<std::int64_t>());
  throw std::runtime_error("not an unsigned integer: " + v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}
std::uint64_t u64_or(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? 0 : u64(*it);
}

}  // namespace

report_model report_from_json(const nlohmann::json& j) {
  report_model m;
  m.page_size = u64(j.at("page_size"));
  const auto& t = j.at("totals");
  m.cached_bytes = u64(t.at("cached_bytes"));
  m.wasted_bytes = u64(t.at("wasted_bytes"));
  m.files_scanned = u64(t.at("files_scanned"));
  m.files_cached = u64(t.at("files_cached"));
  // Every path the document names gets a copy id of its own (file rows, then the groups' and
  // the containers' files): by_copy, keys and copy_paths are all by that id.
  auto add_copy = [&](file_entry e, copy_key k) {
    const auto id = static_cast<copy_id>(m.copy_paths.size());
    m.copy_paths.push_back(e.path);
    m.files.by_copy.push_back(std::move(e));
    m.files.keys.push_back(k);
    return id;
  };
  for (const auto& f : j.at("files")) {
    file_entry e;
    e.path = path_from_json(f, "path");
    e.cached_bytes = u64(f.at("cached_bytes"));
    e.dirty_bytes = u64_or(f, "dirty_bytes");
    const copy_key key{interned(f.value("fs", "")), u64_or(f, "subvol"), u64_or(f, "ino")};
    report_model::file_list::rank r;
    r.copy = add_copy(std::move(e), key);
    r.share = static_cast<std::uint32_t>(m.files.shares.size());
    m.files.shares.push_back({r.copy, {u64(f.at("shared_cached_bytes")), u64_or(f, "wasted_bytes")}});
    m.files.order.push_back(r);
  }
  for (const auto& g : j.at("groups")) {
    report_model::group_row r;
    for (const auto& f : g.at("files")) {
      file_entry e;
      e.path = path_from_json(f, "path");
      r.copies.push_back(add_copy(std::move(e), {}));
    }
    r.bytes_per_copy = u64(g.at("bytes_per_copy"));
    r.wasted_bytes = u64(g.at("wasted_bytes"));
    m.groups.push_back(std::move(r));
  }
  for (const auto& f : j.at("filesystems")) {
    m.filesystems.push_back({f.at("id").get<std::string>(), f.value("type", ""), path_from_json(f, "path"),
                             u64_or(f, "files_scanned"), u64_or(f, "files_cached"),
                             u64(f.at("cached_bytes")), u64(f.at("wasted_bytes"))});
  }
  if (auto a = j.find("attribution"); a != j.end()) {
    m.containers_known = true;
    m.attribution_error = a->value("reason", a->value("error", ""));
  }
  for (const auto& c : j.at("containers")) {
    cgroup::container_row r;
    r.cgroup = c.value("cgroup", "");
    r.runtime = c.value("runtime", "");
    r.id = c.value("id", "");
    r.name = c.value("name", "");
    r.pod_uid = c.value("pod_uid", "");
    r.qos = c.value("qos", "");
    r.stopped = c.value("stopped", false);
    r.cached_bytes = u64(c.at("cached_bytes"));
    r.wasted_bytes = u64(c.at("wasted_bytes"));
    r.shared_cached_bytes = u64_or(c, "shared_cached_bytes");
    for (const auto& f : c.value("files", nlohmann::json::array())) {
      file_entry e;
      e.path = path_from_json(f, "path");
      const auto id = add_copy(std::move(e), {});
      r.files.push_back({id, u64_or(f, "shared_cached_bytes"), u64_or(f, "wasted_bytes")});
    }
    for (const auto& p : c.value("shared_with", nlohmann::json::array())) {
      cgroup::container_row peer;
      peer.runtime = p.value("runtime", "");
      peer.id = p.value("id", "");
      peer.name = p.value("name", "");
      peer.cgroup = p.value("cgroup", "");
      r.shared_with.push_back({peer.runtime, peer.id, peer.name, peer.cgroup, peer.label(), u64_or(p, "bytes")});
    }
    m.containers.push_back(std::move(r));
  }
  for (const auto& e : j.at("errors")) m.errors.push_back({path_from_json(e, "path"), e.value("error", "")});
  m.residency_method = j.value("residency", "");
  m.dirty_known = m.residency_method != "mincore";
  if (auto s = j.find("skipped"); s != j.end()) {
    m.stats.repeated_inodes = u64_or(*s, "repeated_inodes");
    m.stats.special_skipped = u64_or(*s, "special_files");
    m.stats.vanished = u64_or(*s, "vanished");
    m.stats.mounts_not_crossed = u64_or(*s, "mounts_not_crossed");
    m.stats.same_fs_mounts = u64_or(*s, "same_fs_mounts_walked");
    if (auto ms = s->find("mounts"); ms != s->end() && ms->is_array()) {
      for (const auto& x : *ms) {
        m.skipped_mounts.push_back({path_from_json(x, "path"), x.value("type", ""), x.value("pseudo", false)});
      }
    }
  }
  return m;
}

void write_report_text(std::ostream& out, const report_model& m, const report_options& opts) {
  auto size = [&](std::uint64_t b) { return opts.exact_bytes ? fmt::format("{}", b) : human_bytes(b); };
  const int w = opts.exact_bytes ? 13 : 9;
  out << fmt::format("cached {}  wasted {} ({})  files scanned {}, cached {}, filesystems {}\n",
                     size(m.cached_bytes), size(m.wasted_bytes), percent(m.wasted_bytes, m.cached_bytes),
                     m.files_scanned, m.files_cached, m.filesystems.size());
  if (m.wasted_bytes == 0) {
    out << (m.files_cached == 0 ? "no cached files under the scanned paths\n"
                                : "no duplicated page cache: no physical block is cached by two files\n");
  }
  for (auto view : opts.views) {
    if (view == report_view::file) {
      const std::size_t n = file_rows(m, rows_for(opts, text_rows));
      out << fmt::format("\nFILES ({} of {}, by wasted)\n", n, m.files.size());
      out << fmt::format("{:>{}} {:>{}} {:>{}}  {}\n", "WASTED", w, "SHARED", w, "CACHED", w, "PATH");
      for (std::size_t i = 0; i < n; ++i) {
        const auto& f = m.files[i];
        out << fmt::format("{:>{}} {:>{}} {:>{}}  {}\n", size(f.wasted_bytes), w, size(f.shared_cached_bytes), w,
                           size(f.cached_bytes), w, terminal_safe(f.path.str()));
      }
    } else if (view == report_view::group) {
      const std::size_t n = std::min(rows_for(opts, text_rows), m.groups.size());
      out << fmt::format("\nGROUPS OF COPIES ({} of {}, by wasted)\n", n, m.groups.size());
      out << fmt::format("{:>6} {:>{}} {:>{}}  {}\n", "COPIES", "PER COPY", w, "WASTED", w, "FILES");
      for (std::size_t i = 0; i < n; ++i) {
        const auto& g = m.groups[i];
        for (std::size_t k = 0; k < g.copies.size(); ++k) {
          const std::string path = m.path_of(g.copies[k]);
          if (k == 0) {
            out << fmt::format("{:>6} {:>{}} {:>{}}  {}\n", g.copies.size(), size(g.bytes_per_copy), w,
                               size(g.wasted_bytes), w, terminal_safe(path));
          } else {
            out << fmt::format("{:>6} {:>{}} {:>{}}  {}\n", "", "", w, "", w, terminal_safe(path));
          }
        }
      }
    } else if (view == report_view::container) {
      const std::size_t n = std::min(rows_for(opts, text_rows), m.containers.size());
      out << fmt::format("\nCONTAINERS ({} of {}, by wasted: each copy of a block pays an equal share)\n", n,
                         m.containers.size());
      out << fmt::format("{:>{}} {:>{}} {:>{}}  {:<14} {:<20} {}\n", "WASTED", w, "SHARED", w, "CACHED", w,
                         "RUNTIME", "CONTAINER", "CGROUP");
      for (std::size_t i = 0; i < n; ++i) {
        const auto& c = m.containers[i];
        out << fmt::format("{:>{}} {:>{}} {:>{}}  {:<14} {:<20} {}\n", size(c.wasted_bytes), w,
                           size(c.shared_cached_bytes), w, size(c.cached_bytes), w, c.runtime,
                           terminal_safe(c.label()) + (c.stopped ? " (stopped)" : ""), terminal_safe(c.cgroup));
        const std::string pad(static_cast<std::size_t>(3 * w + 4), ' ');
        // Its duplicated files, most shared first: as many as --top asks (3 by default).
        const std::size_t nf = std::min(opts.top.value_or(3), c.files.size());
        if (nf > 0) {
          out << fmt::format("{}{:>{}}  DUPLICATED FILE ({} of {}, shared bytes)\n", pad, "SHARED", w, nf, c.files.size());
        }
        for (std::size_t k = 0; k < nf; ++k) {
          const auto& f = c.files[k];
          out << fmt::format("{}{:>{}}  {}\n", pad, size(f.shared_cached_bytes), w,
                             terminal_safe(f.copy < m.copy_paths.size() ? m.copy_paths[f.copy] : std::string()));
        }
        if (!c.shared_with.empty()) {
          std::string peers;
          for (std::size_t k = 0; k < c.shared_with.size() && k < 4; ++k) {
            if (k > 0) peers += ", ";
            peers += fmt::format("{} ({})", terminal_safe(c.shared_with[k].label), size(c.shared_with[k].bytes));
          }
          if (c.shared_with.size() > 4) peers += fmt::format(", {} more", c.shared_with.size() - 4);
          out << fmt::format("{}other copies: {}\n", pad, peers);
        }
      }
      if (!m.attribution_error.empty()) {
        out << fmt::format("note: page charges could not be read ({}): every page is unattributed\n",
                           terminal_safe(m.attribution_error));
      }
    } else if (view == report_view::fs) {
      out << fmt::format("\nFILESYSTEMS ({})\n", m.filesystems.size());
      out << fmt::format("{:>{}} {:>{}} {:>8}  {:<8} {}\n", "WASTED", w, "CACHED", w, "FILES", "TYPE", "FILESYSTEM");
      const std::size_t n = std::min(rows_for(opts, text_rows), m.filesystems.size());
      for (std::size_t i = 0; i < n; ++i) {
        const auto& fs = m.filesystems[i];
        out << fmt::format("{:>{}} {:>{}} {:>8}  {:<8} {} ({})\n", size(fs.wasted_bytes), w, size(fs.cached_bytes), w,
                           fs.files_cached, fs.type, terminal_safe(fs.id), terminal_safe(fs.where));
      }
    }
  }
  // Further text sections go here: after the --by tables, before the notes.
  out << content_text(m, opts);
  if (auto note = skipped_mounts_note(m.skipped_mounts); !note.empty()) out << "\n" << note;
  if (!m.dirty_known) {
    out << "\nnote: residency came from mincore (no cachestat): dirty pages could not be told apart\n";
  }
  if (!m.errors.empty()) out << fmt::format("\n{} error(s), listed on standard error\n", m.errors.size());
}

std::string report_text(const report_model& m, const report_options& opts) {
  std::ostringstream out;
  write_report_text(out, m, opts);
  return std::move(out).str();
}

std::string skipped_mounts_note(const std::vector<skipped_mount>& skipped) {
  std::vector<const skipped_mount*> shown;
  for (const auto& s : skipped) {
    if (!s.pseudo) shown.push_back(&s);
  }
  if (shown.empty()) return {};
  constexpr std::size_t listed = 3;
  std::string which;
  for (std::size_t i = 0; i < shown.size() && i < listed; ++i) {
    if (i > 0) which += ", ";
    which += fmt::format("{} ({})", terminal_safe(shown[i]->path), terminal_safe(shown[i]->fstype));
  }
  if (shown.size() > listed) which += fmt::format(" and {} more", shown.size() - listed);
  return fmt::format("note: {} mount(s) of other filesystems not entered: {}; name them as PATHs or add --cross-mounts\n",
                     shown.size(), which);
}

}  // namespace dupcache
