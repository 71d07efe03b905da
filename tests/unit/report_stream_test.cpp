// SPDX-License-Identifier: GPL-2.0-only
// The streamed report (write_report_json / write_report_text) against bytes kept from the
// renderers that built the whole document in memory first (tests/unit/data/report_stream/*,
// written by the code before streaming and never edited by hand), for a mixed scan: btrfs
// reflinks across a subvolume and its snapshot, plain files, an XFS filesystem, hostile names
// (escape sequences, newlines, bytes that are not UTF-8), errors, skipped mounts and
// containers. The streamed JSON must also be exactly what the in-memory document dumps to,
// for every option mix, and must parse back to the same report.
//
// Set DUPCACHE_WRITE_GOLDEN=1 to rewrite the kept bytes (only when the schema changes on
// purpose; review the diff).
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/protocol.hpp"
#include "live/sample_json.hpp"
#include "report/report.hpp"
#include "top/view.hpp"
#include "util/json_text.hpp"

#ifndef DUPCACHE_TEST_DATA
#error "DUPCACHE_TEST_DATA must name tests/unit/data"
#endif

namespace dupcache {
namespace {

constexpr std::uint64_t P = 4096;
const std::string kBtrfs = "btrfs:6a1e0c55-0d4b-4d43-9a3c-1f2e3d4c5b6a";
const std::string kXfs = "xfs:00000000-1111-2222-3333-444444444444";

struct mixed {
  scan_result scan{P};
  report_model model;
};

// Copies (interned out of key order on purpose):
//   0 /srv/app/lib.so        btrfs subvol 256 ino 300  8 pages, [0,8) in btrfs
//   1 /srv/.snap/app/lib.so  btrfs subvol 257 ino 300  8 pages, [0,8) (the snapshot's copy)
//   2 /srv/app/lib-copy.so   btrfs subvol 256 ino 301  6 pages, [0,6) (a reflink)
//   3 /srv/plain.txt         btrfs subvol 256 ino 302  3 pages, [50,53) nobody else
//   4 /srv/\x1b[31mred\nname btrfs subvol 256 ino 303  2 pages, [80,82)
//   5 /srv/bad\xff\xfe.bin   btrfs subvol 256 ino 304  2 pages, [80,82) (with 4)
//   6 /x/a                   xfs ino 10                4 pages, [10,14) in xfs
//   7 /x/b                   xfs ino 11                4 pages, [10,14) in xfs
//   8 /x/tie-b               xfs ino 12                1 page, nothing shared (ties with 9)
//   9 /x/tie-a               xfs ino 13                1 page, nothing shared
mixed make_mixed() {
  mixed x;
  auto& s = x.scan;
  struct f {
    std::string fs;
    std::uint64_t subvol, ino;
    std::string path;
    std::uint64_t pages, dirty;
  };
  const std::vector<f> files = {
      {kBtrfs, 256, 300, "/srv/app/lib.so", 8, 0},          {kBtrfs, 257, 300, "/srv/.snap/app/lib.so", 8, 0},
      {kBtrfs, 256, 301, "/srv/app/lib-copy.so", 6, 0},     {kBtrfs, 256, 302, "/srv/plain.txt", 3, P},
      {kBtrfs, 256, 303, "/srv/\x1b[31mred\nname", 2, 0},   {kBtrfs, 256, 304, "/srv/bad\xff\xfe.bin", 2, 0},
      {kXfs, 0, 10, "/x/a", 4, 0},                          {kXfs, 0, 11, "/x/b", 4, 0},
      {kXfs, 0, 12, "/x/tie-b", 1, 0},                      {kXfs, 0, 13, "/x/tie-a", 1, 0},
  };
  for (const auto& e : files) {
    const copy_id id = s.index.intern_copy({e.fs, e.subvol, e.ino});
    EXPECT_EQ(id, s.files.size());
    s.files.push_back({e.path, e.pages * P, e.dirty, "/"});
  }
  const domain_id b = s.index.intern_domain(kBtrfs);
  const domain_id xf = s.index.intern_domain(kXfs);
  s.index.add(0, b, 0, 8 * P);
  s.index.add(1, b, 0, 8 * P);
  s.index.add(2, b, 0, 6 * P);
  s.index.add(4, b, 80 * P, 2 * P);
  s.index.add(5, b, 80 * P, 2 * P);
  s.index.add(6, xf, 10 * P, 4 * P);
  s.index.add(7, xf, 10 * P, 4 * P);
  s.filesystems[kBtrfs] = {kBtrfs, "btrfs", "/srv", 40, 6, 29 * P};
  s.filesystems[kXfs] = {kXfs, "xfs", "/x\x1b]0;t\x07", 7, 4, 10 * P};
  s.filesystems["ext4:empty"] = {"ext4:empty", "ext4", "/e", 2, 0, 0};
  s.errors = {{"/srv/locked", "open failed: Permission denied"},
              {"/srv/\xfe\x1b[2J", "stat failed: No such \xff file"}};
  s.skipped_mounts = {{"/srv/proc", "proc", true, ""}, {"/srv/shm", "tmpfs", false, ""}, {"/x/t\nmp", "tmpfs", false, ""}};
  s.stats = {49, 10, 7, 2, 1, 3, 3, 1, 12};
  s.residency_method = "cachestat";

  x.model = build_report(s);
  std::vector<cgroup::container_row> rows(3);
  rows[0] = {"docker", "0123456789abcdef0123456789abcdef", "web\x1b[1m", "/system.slice/docker-0123.scope", "", "",
             16 * P, 12 * P, 6 * P, false};
  rows[0].files = {{0, 8 * P, 4 * P}, {2, 6 * P, 2 * P}};
  rows[0].shared_with = {{"containerd", "feed", "pod\xff", "/kubepods/x", "pod\xff", 8 * P},
                         {"host", "", "", "/", "host", 6 * P}, {"a", "1", "p1", "/1", "p1", 2 * P},
                         {"a", "2", "p2", "/2", "p2", 2 * P}, {"a", "3", "p3", "/3", "p3", P}};
  rows[0].copies = {0, 2};
  rows[1] = {"containerd", "feed", "pod\xff", "/kubepods/x", "9f3c-uid", "burstable", 10 * P, 8 * P, 4 * P, true};
  rows[1].files = {{1, 8 * P, 4 * P}};
  rows[1].copies = {1};
  rows[2] = {"unattributed", "", "", "", "", "", 3 * P, 0, 0, false};
  x.model.skipped_mounts = s.skipped_mounts;
  attach_containers(x.model, s, std::move(rows), "read /proc/kpagecgroup failed: \xff denied");
  return x;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Kept bytes: read, or (DUPCACHE_WRITE_GOLDEN=1) written from `now` and returned.
std::string golden(const std::string& name, const std::string& now) {
  const std::string path = std::string(DUPCACHE_TEST_DATA) + "/report_stream/" + name;
  if (const char* w = std::getenv("DUPCACHE_WRITE_GOLDEN"); w && std::string(w) == "1") {
    std::ofstream(path, std::ios::binary) << now;
  }
  return read_file(path);
}

struct option_mix {
  const char* name;
  report_options opts;
};

std::vector<option_mix> mixes() {
  using v = report_view;
  std::vector<option_mix> out;
  out.push_back({"default", {}});
  out.push_back({"all_views", {{v::file, v::group, v::fs, v::container}, std::nullopt, false}});
  out.push_back({"top2_bytes", {{v::container, v::fs, v::group, v::file}, 2, true}});
  return out;
}

std::string streamed_json(const report_model& m, const report_options& o) {
  std::ostringstream s;
  write_report_json(s, m, o);
  return s.str();
}
std::string streamed_text(const report_model& m, const report_options& o) {
  std::ostringstream s;
  write_report_text(s, m, o);
  return s.str();
}

TEST(ReportStream, MixedTreeByteForByte) {
  const auto x = make_mixed();
  for (const auto& mix : mixes()) {
    SCOPED_TRACE(mix.name);
    const std::string json = streamed_json(x.model, mix.opts);
    const std::string text = streamed_text(x.model, mix.opts);
    EXPECT_EQ(json, golden(std::string(mix.name) + ".json", json));
    EXPECT_EQ(text, golden(std::string(mix.name) + ".txt", text));
    // The in-memory document is the same bytes.
    EXPECT_EQ(json, dump_json(report_json(x.model, mix.opts), 2) + "\n");
    EXPECT_EQ(text, report_text(x.model, mix.opts));
    // And so is what the daemon answers report --from-daemon with.
    daemon::report_request r;
    r.views = mix.opts.views;
    r.top = mix.opts.top.value_or(0);
    r.bytes = mix.opts.exact_bytes;
    r.json = true;
    EXPECT_EQ(daemon::encode_report_reply(x.model, r), json);
    r.json = false;
    EXPECT_EQ(daemon::encode_report_reply(x.model, r), text);
  }
}

// A top sample (top --json, the daemon's answer to top --from-daemon) is written compact as it
// is produced: the same bytes as the document built whole, for every row limit.
TEST(ReportStream, SampleJsonByteForByte) {
  auto x = make_mixed();
  live::sample s;
  s.model = std::move(x.model);
  s.iteration = 7;
  s.elapsed_s = 1.25;
  s.mode = "live (tp_btf)\x1b[1m";
  s.page_cache_bytes = 123456789;
  s.insert_bps = 1.5;
  s.events = 42;
  s.applied_before_ns = 99;
  s.index_entries = 10;
  for (std::size_t rows : {0, 1, 2, 100}) {
    SCOPED_TRACE(rows);
    std::ostringstream out;
    live::write_sample_json(out, s, rows);
    EXPECT_EQ(out.str(), dump_json(live::sample_json(s, rows)));
    EXPECT_EQ(daemon::encode_sample_reply(s, rows), out.str() + "\n");
  }
  s.content_status = "hashing: 3 of 10 files";
  std::ostringstream out;
  live::write_sample_json(out, s, 0);
  EXPECT_EQ(out.str(), dump_json(live::sample_json(s, 0)));
  const auto back = daemon::decode_sample_reply(out.str());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->events, 42u);
  EXPECT_EQ(back->model.files.size(), 10u);
}

// top --from-daemon --json --top N asks the daemon for N rows of each table instead of all of
// them (a million at 1 M cached files, each interval): what it prints from that answer must be
// what it printed from the whole one, byte for byte, for every N.
// The mixed tree as the daemon's sample.
live::sample mixed_sample() {
  live::sample s;
  s.model = make_mixed().model;
  s.mode = "live (tp_btf)";
  s.page_cache_bytes = 123456789;
  s.events = 42;
  s.index_entries = 10;
  return s;
}

TEST(ReportStream, DaemonSampleOfTheFirstRowsPrintsAsTheWholeOne) {
  const auto s = mixed_sample();
  auto whole = daemon::decode_sample_reply(daemon::encode_sample_reply(s, 0));
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->model.files.size(), 10u);
  for (std::size_t rows : {1, 2, 3, 9, 10, 11}) {
    SCOPED_TRACE(rows);
    auto first = daemon::decode_sample_reply(daemon::encode_sample_reply(s, rows));
    ASSERT_TRUE(first);
    EXPECT_EQ(first->model.files.size(), std::min<std::size_t>(rows, 10));
    std::ostringstream from_whole;
    std::ostringstream from_first;
    live::write_sample_json(from_whole, *whole, rows);
    live::write_sample_json(from_first, *first, rows);
    EXPECT_EQ(from_first.str(), from_whole.str());
  }
}

// Every line batch_text prints but the first (its clock).
std::string after_clock(const std::string& text) { return text.substr(text.find('\n') + 1); }

std::vector<top::view_state> every_view_state() {
  std::vector<top::view_state> out;
  for (auto v : {top::view_kind::files, top::view_kind::groups, top::view_kind::filesystems, top::view_kind::containers}) {
    for (std::size_t col = 0; col <= 6; ++col) {  // 6: past every view's last column
      for (bool desc : {true, false}) {
        for (const char* filter : {"", "a", "/", "\\", "zz-nothing"}) {
          top::view_state st;
          st.view = v;
          st.sort_column = col;
          st.descending = desc;
          st.filter = filter;
          out.push_back(st);
        }
      }
    }
  }
  return out;
}

// top --from-daemon in text and on the screen asks for the rows of its view (sorted and
// filtered by the daemon): what it prints from that answer must be what it printed from the
// whole sample, line for line, for every view, column, direction, filter and row count.
TEST(ReportStream, DaemonViewOfTheShownRowsPrintsAsTheWholeSample) {
  const auto s = mixed_sample();
  auto whole = daemon::decode_sample_reply(daemon::encode_sample_reply(s, 0));
  ASSERT_TRUE(whole);
  ASSERT_FALSE(whole->groups_total);
  ASSERT_GT(whole->model.groups.size(), 1u);
  ASSERT_GT(whole->model.containers.size(), 1u);
  for (const auto& st : every_view_state()) {
    for (std::size_t rows : {1, 2, 3, 7, 0}) {
      SCOPED_TRACE(fmt::format("view {} column {} {} filter '{}' rows {}", top::view_name(st.view), st.sort_column,
                               st.descending ? "descending" : "ascending", st.filter, rows));
      // The request as the client sends it and the daemon reads it.
      auto req = daemon::decode_request(daemon::encode(daemon::sample_request{rows, {}, st}));
      ASSERT_TRUE(req);
      const auto* sr = std::get_if<daemon::sample_request>(&*req);
      ASSERT_TRUE(sr && sr->view);
      auto shown = daemon::decode_sample_reply(daemon::encode_sample_reply(s, *sr));
      ASSERT_TRUE(shown);
      EXPECT_EQ(shown->groups_total, s.model.groups.size());
      const std::size_t printed = rows == 0 ? 1000 : rows;
      EXPECT_EQ(after_clock(top::batch_text(*shown, st, printed, 100)),
                after_clock(top::batch_text(*whole, st, printed, 100)));
      if (st.view == top::view_kind::files) {
        EXPECT_LE(shown->model.files.size(), rows == 0 ? 10u : rows);
      }
      if (st.view != top::view_kind::groups) {
        EXPECT_TRUE(shown->model.groups.empty());
      }
    }
  }
}

// The rows a view shows, picked without sorting the whole table, are the first rows of its
// stable sort, ties included: a table where most rows tie on every column and on the path.
TEST(ReportStream, ShownRowsAreTheFirstOfTheStableSort) {
  nlohmann::json doc{{"page_size", 4096},
                     {"totals", {{"cached_bytes", 0}, {"wasted_bytes", 0}, {"files_scanned", 0}, {"files_cached", 0}}},
                     {"files", nlohmann::json::array()},
                     {"groups", nlohmann::json::array()},
                     {"filesystems", nlohmann::json::array()},
                     {"containers", nlohmann::json::array()},
                     {"errors", nlohmann::json::array()}};
  std::uint64_t seed = 7;
  auto next = [&] { return (seed = seed * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  for (int i = 0; i < 60; ++i) {
    const std::uint64_t cached = 4096 * (1 + next() % 3);
    // Plain paths, and paths the view escapes (a backslash, an escape, a short one, UTF-8,
    // a byte that is not), tying with each other.
    static const std::vector<std::string> names{"/pa", "/pb", "/pc", "/d/pa", "/d\\/a", "/p\\a", "/p\x1b[1m", "\t", "/p\u00e9", "/p\xff"};
    const std::string name = names[next() % names.size()];
    nlohmann::json f{{"cached_bytes", cached},
                     {"shared_cached_bytes", 4096 * (next() % 2)},
                     {"wasted_bytes", 4096 * (next() % 2)},
                     {"fs", "f"},
                     {"ino", i}};
    put_path(f, "path", name);
    doc["files"].push_back(std::move(f));
  }
  live::sample s;
  s.model = report_from_json(doc);
  live::sample pooled;
  pooled.model = report_from_json(doc);
  for (std::size_t c = 0; c < pooled.model.files.by_copy.size(); ++c) {
    auto& path = pooled.model.files.by_copy[c].path;
    path = packed_string::pooled(path.str(), pooled.model.files.paths);
  }
  for (std::size_t col = 0; col <= 4; ++col) {
    for (bool desc : {true, false}) {
      for (const char* filter : {"", "a", "pb", "\\", "\\x"}) {
        top::view_state st;
        st.sort_column = col;
        st.descending = desc;
        st.filter = filter;
        auto t = top::make_table(s, st.view, false);
        top::sort_table(t, col, desc);
        top::filter_table(t, filter);
        for (std::size_t rows : {1, 5, 17, 59, 60, 61, 0}) {
          SCOPED_TRACE(fmt::format("column {} {} filter '{}' rows {}", col, desc, filter, rows));
          std::vector<std::size_t> want;
          for (std::size_t i = 0; i < t.rows.size() && (rows == 0 || i < rows); ++i) want.push_back(t.rows[i].source);
          EXPECT_EQ(top::shown_sources(s, st, rows), want);
          // The daemon's paths are pooled (a directory and a leaf, read in place): the same.
          EXPECT_EQ(top::shown_sources(pooled, st, rows), want);
        }
      }
    }
  }
}

TEST(ReportStream, EmptyReportByteForByte) {
  scan_result s(P);
  s.residency_method = "mincore";
  s.dirty_known = false;
  const auto m = build_report(s);
  for (const auto& mix : mixes()) {
    SCOPED_TRACE(mix.name);
    EXPECT_EQ(streamed_json(m, mix.opts), dump_json(report_json(m, mix.opts), 2) + "\n");
    EXPECT_EQ(streamed_text(m, mix.opts), report_text(m, mix.opts));
  }
}

// The ordering rules, spelled out (report.hpp): files by wasted, then shared, then cached
// bytes, all descending, then path bytes ascending; groups by wasted descending, then by their
// copies' keys; filesystems by wasted, then cached descending, then id; containers as
// cgroup::account() ranks them; errors and skipped mounts by path bytes.
TEST(ReportStream, OrderingRules) {
  const auto x = make_mixed();
  const auto j = nlohmann::json::parse(streamed_json(x.model, {}));
  std::vector<std::string> files;
  for (const auto& f : j["files"]) files.push_back(f["path"].get<std::string>());
  ASSERT_EQ(files.size(), 10u);
  // The two single-page files tie on everything but the path: tie-a before tie-b.
  EXPECT_EQ(files[8], "/x/tie-a");
  EXPECT_EQ(files[9], "/x/tie-b");
  EXPECT_EQ(files[7], "/srv/plain.txt");  // cached 3, nothing shared: before the 1-page ties
  for (std::size_t i = 1; i < j["files"].size(); ++i) {
    const auto& a = j["files"][i - 1];
    const auto& b = j["files"][i];
    EXPECT_GE(a["wasted_bytes"], b["wasted_bytes"]) << i;
  }
  std::vector<std::uint64_t> group_waste;
  for (const auto& g : j["groups"]) group_waste.push_back(g["wasted_bytes"]);
  ASSERT_EQ(group_waste.size(), 4u);  // [0,6) x3, [6,8) x2, xfs x2, red/bad x2
  EXPECT_TRUE(std::is_sorted(group_waste.rbegin(), group_waste.rend()));
  ASSERT_EQ(j["filesystems"].size(), 3u);
  EXPECT_EQ(j["filesystems"][0]["id"], kBtrfs);
  EXPECT_EQ(j["filesystems"][2]["id"], "ext4:empty");
  ASSERT_EQ(j["errors"].size(), 2u);
  EXPECT_EQ(j["errors"][0]["path"], "/srv/locked");  // bytes compare unsigned: 'l' < 0xfe
  EXPECT_TRUE(j["errors"][1].contains("path_base64"));
}

TEST(ReportStream, StreamedJsonReadsBack) {
  const auto x = make_mixed();
  report_options all{{report_view::file, report_view::group, report_view::fs, report_view::container}, std::nullopt, false};
  const auto back = report_from_json(nlohmann::json::parse(streamed_json(x.model, all)));
  EXPECT_EQ(streamed_json(back, all), streamed_json(x.model, all));
}

}  // namespace
}  // namespace dupcache
