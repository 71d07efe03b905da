// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cgroup/accounting.hpp"
#include "report/content.hpp"
#include "scan/scanner.hpp"

namespace dupcache {

enum class report_view { file, group, fs, container };

// Rows per table of the text report when --top is not given.
inline constexpr std::size_t text_rows = 20;

// Rows chosen one by one instead of the first ones (the daemon's answer to a `top` view): the
// files by their position in the model's files, the groups and containers by theirs, listed in
// the order given. The JSON lists hold exactly these; filesystems are always all listed.
struct row_selection {
  std::vector<std::size_t> files, groups, containers;
};

struct report_options {
  std::vector<report_view> views{report_view::file, report_view::group};
  std::optional<std::size_t> top;  // rows per table; unset: text_rows in text, all in JSON
  bool exact_bytes = false;        // --bytes
  const row_selection* selection = nullptr;  // JSON only; in place of top
};

// What a report says, computed once from a scan; the text and JSON forms only format it.
struct report_model {
  // A cached file as the views read it: its place in the report joined with what the scan
  // said of it. It refers into the model (valid while the model lives and is not changed).
  struct file_row {
    const packed_string& path;
    const interned& fs;
    std::uint64_t subvol = 0;
    std::uint64_t ino = 0;
    std::uint64_t cached_bytes = 0;
    std::uint64_t shared_cached_bytes = 0;
    std::uint64_t wasted_bytes = 0;  // this file's part of the waste (the even split)
    std::uint64_t dirty_bytes = 0;
    copy_id copy = 0;
  };
  // The cached files, in report order. What a file is (path, filesystem, cached and dirty
  // bytes, key) stays in the scan's own per-file records and index keys, kept by copy_id: a
  // model built from a scan that is done with takes them over instead of copying them, so a
  // cached file costs its record, its key and an 8 B rank (issue 17: the report's peak memory).
  class file_list {
   public:
    static constexpr std::uint32_t no_share = ~std::uint32_t{0};
    struct rank {
      copy_id copy = 0;
      std::uint32_t share = no_share;  // its entry in shares; no_share: it shares nothing
    };
    class iterator {
     public:
      iterator(const file_list* l, std::size_t i) : l_(l), i_(i) {}
      file_row operator*() const { return (*l_)[i_]; }
      iterator& operator++() {
        ++i_;
        return *this;
      }
      bool operator==(const iterator& o) const { return i_ == o.i_; }

     private:
      const file_list* l_;
      std::size_t i_;
    };

    std::size_t size() const { return order.size(); }
    bool empty() const { return order.empty(); }
    file_row operator[](std::size_t i) const { return row(order[i]); }
    file_row row(const rank& r) const {
      const auto& e = by_copy[r.copy];
      const auto& k = keys[r.copy];
      const copy_share sh = share_of(r);
      return {e.path, k.fs, k.subvol, k.ino, e.cached_bytes, sh.shared_bytes, sh.wasted_bytes, e.dirty_bytes,
              r.copy};
    }
    copy_share share_of(const rank& r) const { return r.share == no_share ? copy_share{} : shares[r.share].second; }
    iterator begin() const { return {this, 0}; }
    iterator end() const { return {this, order.size()}; }

    std::vector<rank> order;          // largest waste first (the first `ordered` of them)
    // How many of order's first ranks are in report order, each above every later one; the
    // others follow in no order (build_report(scan_result&&, ranked_rows)). Every rank, when
    // the model was not built for a number of rows.
    std::size_t ordered = ~std::size_t{0};
    std::vector<std::pair<copy_id, copy_share>> shares;  // the copies sharing pages, by id
    // The scan's own containers, moved in (build_report(scan_result&&)); paths before by_copy,
    // whose records' paths may be in it.
    string_pool paths;
    // Built from a scan that goes on (build_report(const scan_result&)): its pool's blocks,
    // which the records' pooled paths point into (packed_string::sharing()).
    std::shared_ptr<const void> shared_paths;
    chunked_vector<file_entry> by_copy;  // by copy_id (only the ranked ones and the groups' are read)
    chunked_vector<copy_key> keys;       // by copy_id (only the ranked ones are read)
  };
  // A group's files are its copies, in copy_key order; their paths are path_of(copy) (held
  // once, by the file records, not copied into every group).
  struct group_row {
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
  file_list files;                // largest waste first
  // The path of a file row's or group's copy.
  const packed_string& path_of(copy_id copy) const { return files.by_copy[copy].path; }
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
// The file order of the previous model built from the same (live) state, copy ids first to
// last. `top` and the daemon build a model every interval from a state that changed a little
// since: from that order, the files sort in about linear time (a million ranks took a third of
// an idle daemon's CPU, sorted from scratch twice a second). The model is the same as without.
struct rank_memory {
  std::vector<copy_id> order;
};
// The same, sorting from memory.order, which is then this model's order.
report_model build_report(const scan_result& scan, rank_memory& memory);
// The same from a scan that is done with: its per-file records (paths and all) move into the
// model, and its index is released as soon as the model has read it. The scan's files and
// index are left empty. For a report that prints the first ranked_rows file rows, only those
// are put in order (files.ordered says how many); the other ranks still count in every total.
inline constexpr std::size_t all_rows = ~std::size_t{0};
report_model build_report(scan_result&& scan, std::size_t ranked_rows = all_rows);
// Adds the per-container rows (cgroup::account()) to a model built from the same scan.
// error: why every page is unattributed, if that is so.
void attach_containers(report_model& m, const scan_result& scan, std::vector<cgroup::container_row> rows,
                       std::string error);
// The same when the scan's records were moved into the model (build_report(scan_result&&)):
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
// The document compact, as dump_json(doc) writes it (one line, no newline at the end), with
// tail's members (an object) after the report's own: a top sample (live/sample_json.hpp).
void write_report_json_compact(std::ostream& out, const report_model& m, const report_options& opts,
                               const nlohmann::ordered_json& tail);

}  // namespace dupcache
