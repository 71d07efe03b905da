// SPDX-License-Identifier: GPL-2.0-only
// The report model built from a hand-made scan, and its JSON and text forms.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "report/report.hpp"
#include "util/text.hpp"

namespace dupcache {
namespace {

constexpr std::uint64_t P = 4096;

const std::string kRed = "/data/\x1b[31mred\nline";
const std::string kBad = "/data/bad\xff.bin";
const std::string kBadError = "/data/\xfe";

// Six cached files on one btrfs ("fsA"), interned out of copy_key order (ino a=10 b=11 c=12
// bad=13 red=14 solo=15). Physical pages in domain "fsA":
//   a [0,6)  b [0,6)  c [0,4)  bad [100,101)  red [100,101)  solo: nothing shared
// Segments: [0,4){a,b,c} [4,6){a,b} [100,101){bad,red}.
//   indexed 6+6+4+1+1 = 18 pages, unique 7, wasted 11 pages = 45056 bytes.
// Waste split (key order a<b<c<bad<red):
//   {a,b,c} 4 pages: waste 8, 8/3 = 2 r 2 -> a 3, b 3, c 2
//   {a,b}   2 pages: waste 2, 2/2 = 1     -> a 1, b 1
//   {bad,red} 1 page: waste 1, 1/2 = 0 r 1 -> bad 1, red 0
//   a 4, b 4, c 2, bad 1, red 0, solo 0 pages (sum 11).
// Shared: a 6, b 6, c 4, bad 1, red 1, solo 0 pages.
// Cached (file_entry): a 8, b 6, c 4, bad 1, red 3, solo 2 pages = 24 pages = 98304 bytes.
scan_result make_scan() {
  scan_result s(P);
  struct f {
    std::uint64_t ino;
    std::string path;
    std::uint64_t cached_pages;
    std::uint64_t dirty;
  };
  const std::vector<f> files = {{15, "/data/solo", 2, 0}, {14, kRed, 3, P},          {12, "/data/c.bin", 4, 0},
                                {10, "/data/a.bin", 8, 0}, {13, kBad, 1, 0},          {11, "/data/b.bin", 6, 0}};
  std::vector<copy_id> id(16);
  for (const auto& x : files) {
    id[x.ino] = s.index.intern_copy({"fsA", 0, x.ino});
    EXPECT_EQ(id[x.ino], s.files.size());
    s.files.push_back({x.path, x.cached_pages * P, x.dirty});
  }
  const domain_id d = s.index.intern_domain("fsA");
  s.index.add(id[10], d, 0, 6 * P);
  s.index.add(id[11], d, 0, 6 * P);
  s.index.add(id[12], d, 0, 4 * P);
  s.index.add(id[13], d, 100 * P, P);
  s.index.add(id[14], d, 100 * P, P);

  s.filesystems["fsA"] = {"fsA", "btrfs", "/data", 9, 6, 24 * P};
  s.filesystems["fsB"] = {"fsB", "xfs", "/mnt/\x1b]0;title\x07x", 3, 0, 0};
  s.errors = {{"/data/locked", "open failed: Permission denied"},
              {kBadError, "stat failed: No such file or directory"}};
  s.stats.files_scanned = 12;
  s.stats.files_cached = 6;
  s.residency_method = "cachestat";
  return s;
}

std::vector<std::string> group_paths(const report_model& m, const report_model::group_row& g) {
  std::vector<std::string> out;
  for (copy_id c : g.copies) out.push_back(m.path_of(c));
  return out;
}

// Issue 17: a cached file's record is its path (8 B), its cached and dirty bytes and its walk
// root: 32 bytes. Its filesystem is its index key's, so a row names the key's filesystem, and
// a scan's cached bytes per filesystem are counted by the keys; its size is kept only with
// --content (content_pages::sizes).
TEST(Report, AFileRecordIsItsPathBytesAndRoot) {
  static_assert(sizeof(packed_string) == 8);
  static_assert(sizeof(interned) == 8);
  static_assert(sizeof(file_entry) == 32);
  scan_result s(P);
  ASSERT_EQ(s.index.intern_copy({"fsB", 0, 7}), 0u);
  s.files.push_back({"/b/x", 3 * P, P, "/b"});
  ASSERT_EQ(s.index.intern_copy({"fsC", 0, 8}), 1u);
  s.files.push_back({"/c/y", 2 * P, 0, "/c"});
  s.filesystems["fsB"].files_scanned = 1;
  s.filesystems["fsC"].files_scanned = 1;
  EXPECT_TRUE(s.content.sizes.empty());
  const auto m = build_report(std::move(s));
  ASSERT_EQ(m.files.size(), 2u);
  EXPECT_EQ(m.files[0].path, "/b/x");  // more cached first (no waste)
  EXPECT_EQ(m.files[0].fs, "fsB");
  EXPECT_EQ(m.files[0].dirty_bytes, P);
  EXPECT_EQ(m.files[1].fs, "fsC");
  ASSERT_EQ(m.filesystems.size(), 2u);
  EXPECT_EQ(m.filesystems[0].id, "fsB");
  EXPECT_EQ(m.filesystems[0].files_cached, 1u);
  EXPECT_EQ(m.filesystems[0].cached_bytes, 3 * P);
  EXPECT_EQ(m.filesystems[1].id, "fsC");
  EXPECT_EQ(m.filesystems[1].cached_bytes, 2 * P);
}

// Above 65536 rows the ranks are sorted in two halves on two threads and merged: the order
// must be the one the rules give (cached bytes descending, ties by path), checked against the
// texts sorted here.
TEST(Report, ManyRowsSortInTheRulesOrder) {
  constexpr std::uint64_t n = 100003;
  scan_result s(P);
  std::vector<std::pair<std::uint64_t, std::string>> expected;
  for (std::uint64_t i = 0; i < n; ++i) {
    // Directories and leaves out of walk order, sizes repeating: most ties are broken by path.
    const std::string path = "/t/d" + std::to_string((i * 7919) % 97) + "/f" + std::to_string((i * 104729) % n);
    const std::uint64_t cached = (1 + (i * 31) % 5) * P;
    ASSERT_EQ(s.index.intern_copy({"fs", 0, i + 1}), i);
    s.files.push_back({packed_string::pooled(path, s.paths), cached, 0, "/t"});
    expected.emplace_back(cached, path);
  }
  s.filesystems["fs"].files_scanned = n;
  std::sort(expected.begin(), expected.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  const auto m = build_report(std::move(s));
  ASSERT_EQ(m.files.size(), n);
  for (std::uint64_t i = 0; i < n; ++i) {
    ASSERT_EQ(m.files[i].path, expected[i].second) << "row " << i;
    ASSERT_EQ(m.files[i].cached_bytes, expected[i].first) << "row " << i;
  }
}

// top and the daemon sort each interval's files from the previous interval's order
// (rank_memory): the rows must be exactly those of a sort from scratch, whatever changed
// between (sizes up and down, files evicted, new files, new sharing), and whatever the memory
// holds (ids of copies gone, repeated, out of range, an order reversed).
TEST(Report, SortFromRememberedOrderEqualsSortFromScratch) {
  constexpr std::uint64_t n = 20011;
  scan_result s(P);
  const domain_id d = s.index.intern_domain("fs");
  auto add_file = [&](std::uint64_t i) {
    const std::string path = "/t/d" + std::to_string((i * 7919) % 31) + "/f" + std::to_string((i * 104729) % 100003);
    ASSERT_EQ(s.index.intern_copy({"fs", 0, i + 1}), i);
    s.files.push_back({packed_string::pooled(path, s.paths), (1 + (i * 31) % 5) * P, 0, "/t"});
  };
  for (std::uint64_t i = 0; i < n; ++i) add_file(i);
  // One in ten shares a page with its neighbour: wasted and shared bytes rank those first.
  for (std::uint64_t i = 0; i + 1 < n; i += 10) {
    s.index.add(static_cast<copy_id>(i), d, i * P, P);
    s.index.add(static_cast<copy_id>(i + 1), d, i * P, P);
  }
  auto rows = [](const report_model& m) {
    std::vector<std::string> out;
    for (const auto& r : m.files) {
      out.push_back(fmt::format("{} {} {} {}", r.path, r.wasted_bytes, r.shared_cached_bytes, r.cached_bytes));
    }
    return out;
  };
  rank_memory memory;
  ASSERT_EQ(rows(build_report(s, memory)), rows(build_report(s)));
  ASSERT_EQ(memory.order.size(), n);

  std::uint64_t x = 12345;
  auto next = [&] { return x = x * 6364136223846793005ULL + 1442695040888963407ULL, x >> 33; };
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE(round);
    const int changes = round < 3 ? 20 : 3000;  // a few changes, then many
    for (int k = 0; k < changes; ++k) {
      const copy_id c = static_cast<copy_id>(next() % s.files.size());
      switch (next() % 4) {
        case 0: s.files[c].cached_bytes += P; break;
        case 1: s.files[c].cached_bytes = s.files[c].cached_bytes > P ? s.files[c].cached_bytes - P : 0; break;
        case 2: s.index.add(c, d, (n + next() % 64) * P, P); break;  // shares with whoever else got that page
        default: s.index.remove(c, d, (c - c % 10) * P, P); break;
      }
    }
    for (int k = 0; k < changes / 10; ++k) add_file(s.files.size());
    ASSERT_EQ(rows(build_report(s, memory)), rows(build_report(s)));
    ASSERT_EQ(memory.order.size(), build_report(s).files.size());
  }
  // Memories that are no order of this state.
  rank_memory odd;
  odd.order = {7, 7, 3, static_cast<copy_id>(n * 5), 0, 7};
  EXPECT_EQ(rows(build_report(s, odd)), rows(build_report(s)));
  std::reverse(memory.order.begin(), memory.order.end());
  EXPECT_EQ(rows(build_report(s, memory)), rows(build_report(s)));
}

// `report` prints 20 file rows (or --top) of a million: only those are put in order, by a
// partial sort. Its rows, totals and text must be those of the model sorted whole, for every
// number of rows (none, one, some, all, more than all); a view asking for more rows than were
// put in order is refused, not printed from ranks in no order.
TEST(Report, FirstRowsOrderedAloneAreTheRowsOfTheWholeOrder) {
  constexpr std::uint64_t n = 5003;
  auto make = [] {
    scan_result s(P);
    const domain_id d = s.index.intern_domain("fs");
    for (std::uint64_t i = 0; i < n; ++i) {
      // Few sizes and one in seven sharing with its neighbour: ties are broken by wasted,
      // shared and cached bytes and by path, as in a real tree.
      const std::string path = "/t/d" + std::to_string((i * 7919) % 31) + "/f" + std::to_string((i * 104729) % 100003);
      EXPECT_EQ(s.index.intern_copy({"fs", 0, i + 1}), i);
      s.files.push_back({packed_string::pooled(path, s.paths), (1 + (i * 31) % 3) * P, 0, "/t"});
    }
    for (std::uint64_t i = 0; i + 1 < n; i += 7) {
      s.index.add(static_cast<copy_id>(i), d, i * P, P);
      s.index.add(static_cast<copy_id>(i + 1), d, i * P, P);
    }
    s.filesystems["fs"].files_scanned = n;
    return s;
  };
  auto row = [](const report_model::file_row& r) {
    return fmt::format("{} {} {} {}", r.path, r.wasted_bytes, r.shared_cached_bytes, r.cached_bytes);
  };
  const report_model whole = build_report(make());
  ASSERT_EQ(whole.files.size(), n);
  EXPECT_EQ(whole.files.ordered, n);
  for (std::size_t k : {std::size_t{0}, std::size_t{1}, std::size_t{20}, std::size_t{n - 1}, std::size_t{n},
                        std::size_t{n + 5}}) {
    SCOPED_TRACE(k);
    const report_model part = build_report(make(), k);
    ASSERT_EQ(part.files.size(), n);
    ASSERT_EQ(part.files.ordered, std::min<std::size_t>(k, n));
    for (std::size_t i = 0; i < part.files.ordered; ++i) ASSERT_EQ(row(part.files[i]), row(whole.files[i])) << i;
    EXPECT_EQ(part.cached_bytes, whole.cached_bytes);
    EXPECT_EQ(part.wasted_bytes, whole.wasted_bytes);
    EXPECT_EQ(part.files_cached, whole.files_cached);
    const std::vector<report_view> all = {report_view::file, report_view::group, report_view::fs};
    report_options o{all, std::min<std::size_t>(k, n), false};
    EXPECT_EQ(report_text(part, o), report_text(whole, o));
    EXPECT_EQ(report_json(part, o), report_json(whole, o));
  }
  const report_model twenty = build_report(make(), 20);
  report_options more;
  more.top = 21;
  EXPECT_THROW(report_text(twenty, more), std::logic_error);
  EXPECT_THROW(report_json(twenty, report_options{}), std::logic_error);  // JSON: every row
  report_model filtered = build_report(make(), 20);
  EXPECT_THROW(filter_containers(filtered, container_filter{{"abcd"}, {}}), std::logic_error);
}

// A live model's samples share the state's pooled paths instead of copying them: a sample
// (held by the daemon's control socket, or by top) outlives the state it was built from when a
// rescan replaces the state. Its paths must still read (under ASan: no use after free).
TEST(Report, ModelOutlivesTheScanWhosePathsItShares) {
  auto s = std::make_unique<scan_result>(P);
  std::vector<std::string> paths;
  for (std::uint64_t i = 0; i < 3000; ++i) {
    paths.push_back("/srv/d" + std::to_string(i % 7) + "/file-" + std::to_string(i));
    ASSERT_EQ(s->index.intern_copy({"fs", 0, i + 1}), i);
    s->files.push_back({packed_string::pooled(paths.back(), s->paths), (i + 1) * P, 0, "/srv"});
  }
  s->files.push_back({std::string("/srv/heap-") + std::string(300, 'x'), P, 0, "/srv"});  // a heap path
  ASSERT_EQ(s->index.intern_copy({"fs", 0, 9999}), 3000u);
  paths.push_back(s->files.back().path.str());
  ASSERT_TRUE(s->files.front().path.is_pooled());
  const report_model m = build_report(*s);
  s.reset();  // the state and its pool are gone: a rescan replaced them
  ASSERT_EQ(m.files.size(), paths.size());
  std::vector<std::string> got;
  for (const auto& r : m.files) got.push_back(r.path.str());
  std::sort(got.begin(), got.end());
  std::sort(paths.begin(), paths.end());
  EXPECT_EQ(got, paths);
  const report_model copied = m;  // a copy (filtered samples) holds its own
  EXPECT_EQ(copied.files[0].path, m.files[0].path);
}

TEST(Report, ModelNumbers) {
  const auto scan = make_scan();
  ASSERT_EQ(scan.index.wasted_bytes(), 11 * P);
  const auto m = build_report(scan);
  EXPECT_EQ(m.page_size, P);
  EXPECT_EQ(m.cached_bytes, 24 * P);
  EXPECT_EQ(m.wasted_bytes, 11 * P);
  EXPECT_EQ(m.files_scanned, 12u);
  EXPECT_EQ(m.files_cached, 6u);

  // Largest waste first; ties broken by shared, then cached bytes.
  ASSERT_EQ(m.files.size(), 6u);
  const std::vector<std::string> order = {"/data/a.bin", "/data/b.bin", "/data/c.bin", kBad, kRed, "/data/solo"};
  const std::uint64_t wasted[] = {4, 4, 2, 1, 0, 0};
  const std::uint64_t shared[] = {6, 6, 4, 1, 1, 0};
  const std::uint64_t cached[] = {8, 6, 4, 1, 3, 2};
  const std::uint64_t ino[] = {10, 11, 12, 13, 14, 15};
  for (std::size_t i = 0; i < 6; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(m.files[i].path, order[i]);
    EXPECT_EQ(m.files[i].wasted_bytes, wasted[i] * P);
    EXPECT_EQ(m.files[i].shared_cached_bytes, shared[i] * P);
    EXPECT_EQ(m.files[i].cached_bytes, cached[i] * P);
    EXPECT_EQ(m.files[i].ino, ino[i]);
    EXPECT_EQ(m.files[i].fs, "fsA");
  }
  EXPECT_EQ(m.files[4].dirty_bytes, P);

  ASSERT_EQ(m.groups.size(), 3u);
  EXPECT_EQ(group_paths(m, m.groups[0]), (std::vector<std::string>{"/data/a.bin", "/data/b.bin", "/data/c.bin"}));
  EXPECT_EQ(m.groups[0].bytes_per_copy, 4 * P);
  EXPECT_EQ(m.groups[0].wasted_bytes, 8 * P);
  EXPECT_EQ(group_paths(m, m.groups[1]), (std::vector<std::string>{"/data/a.bin", "/data/b.bin"}));
  EXPECT_EQ(m.groups[1].wasted_bytes, 2 * P);
  EXPECT_EQ(group_paths(m, m.groups[2]), (std::vector<std::string>{kBad, kRed}));
  EXPECT_EQ(m.groups[2].wasted_bytes, P);

  ASSERT_EQ(m.filesystems.size(), 2u);
  EXPECT_EQ(m.filesystems[0].id, "fsA");
  EXPECT_EQ(m.filesystems[0].wasted_bytes, 11 * P);
  EXPECT_EQ(m.filesystems[0].cached_bytes, 24 * P);
  EXPECT_EQ(m.filesystems[1].id, "fsB");
  EXPECT_EQ(m.filesystems[1].wasted_bytes, 0u);
  ASSERT_EQ(m.errors.size(), 2u);
}

TEST(Report, JsonShape) {
  const auto m = build_report(make_scan());
  const auto j = report_json(m, report_options{});
  EXPECT_EQ(j.at("schema"), 1);
  EXPECT_EQ(j.at("page_size"), P);
  const auto& t = j.at("totals");
  EXPECT_EQ(t.at("cached_bytes"), 24 * P);
  EXPECT_EQ(t.at("wasted_bytes"), 11 * P);
  EXPECT_EQ(t.at("files_scanned"), 12u);
  EXPECT_EQ(t.at("files_cached"), 6u);

  const auto& files = j.at("files");
  ASSERT_TRUE(files.is_array());
  ASSERT_EQ(files.size(), 6u);  // JSON lists every file unless --top says otherwise
  EXPECT_EQ(files[0].at("path"), "/data/a.bin");
  EXPECT_EQ(files[0].at("cached_bytes"), 8 * P);
  EXPECT_EQ(files[0].at("shared_cached_bytes"), 6 * P);
  EXPECT_EQ(files[0].at("wasted_bytes"), 4 * P);
  EXPECT_EQ(files[0].at("ino"), 10u);
  EXPECT_FALSE(files[0].contains("path_base64"));
  EXPECT_EQ(files[2].at("path"), "/data/c.bin");
  EXPECT_EQ(files[2].at("shared_cached_bytes"), 4 * P);
  EXPECT_EQ(files[4].at("dirty_bytes"), P);
  EXPECT_EQ(files[5].at("path"), "/data/solo");
  EXPECT_EQ(files[5].at("shared_cached_bytes"), 0u);

  ASSERT_TRUE(j.at("containers").is_array());
  EXPECT_TRUE(j.at("containers").empty());

  const auto& errors = j.at("errors");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].at("path"), "/data/locked");
  EXPECT_EQ(errors[0].at("error"), "open failed: Permission denied");
  EXPECT_FALSE(errors[0].contains("path_base64"));
  EXPECT_EQ(errors[1].at("path"), "/data/\\xfe");
  EXPECT_EQ(errors[1].at("path_base64"), "L2RhdGEv/g==");  // base64 of 2f 64 61 74 61 2f fe
  EXPECT_EQ(errors[1].at("error"), "stat failed: No such file or directory");

  const auto& groups = j.at("groups");
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].at("copies"), 3u);
  EXPECT_EQ(groups[0].at("bytes_per_copy"), 4 * P);
  EXPECT_EQ(groups[0].at("wasted_bytes"), 8 * P);
  EXPECT_EQ(groups[0].at("files")[2].at("path"), "/data/c.bin");
}

TEST(Report, InvalidUtf8PathStaysValidJson) {
  const auto m = build_report(make_scan());
  const auto j = report_json(m, report_options{});
  std::string text;
  ASSERT_NO_THROW(text = j.dump());
  ASSERT_NO_THROW(text = j.dump(2));
  EXPECT_TRUE(is_valid_utf8(text));
  const auto back = nlohmann::ordered_json::parse(text);
  EXPECT_EQ(back, j);

  const auto& bad = back.at("files")[3];
  EXPECT_EQ(bad.at("path"), "/data/bad\\xff.bin");
  // 2f 64 61 | 74 61 2f | 62 61 64 | ff 2e 62 | 69 6e -> L2Rh dGEv YmFk /y5i aW4=
  EXPECT_EQ(bad.at("path_base64"), "L2RhdGEvYmFk/y5iaW4=");
  // The escape sequence in the red path is a JSON escape, not a raw byte, in the dump.
  EXPECT_EQ(back.at("files")[4].at("path"), kRed);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  // Group members and filesystems use the same path rule.
  EXPECT_EQ(back.at("groups")[2].at("files")[0].at("path_base64"), "L2RhdGEvYmFk/y5iaW4=");
}

TEST(Report, TopLimitsRows) {
  const auto m = build_report(make_scan());
  report_options o;
  o.top = 2;
  const auto j = report_json(m, o);
  ASSERT_EQ(j.at("files").size(), 2u);
  EXPECT_EQ(j.at("files")[0].at("path"), "/data/a.bin");
  EXPECT_EQ(j.at("files")[1].at("path"), "/data/b.bin");
  EXPECT_EQ(j.at("groups").size(), 2u);
  // Totals are for everything, not the rows shown.
  EXPECT_EQ(j.at("totals").at("wasted_bytes"), 11 * P);

  const auto text = report_text(m, o);
  EXPECT_NE(text.find("FILES (2 of 6, by wasted)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("GROUPS OF COPIES (2 of 3, by wasted)\n"), std::string::npos) << text;
  const auto files_part = text.substr(text.find("FILES ("), text.find("GROUPS OF COPIES") - text.find("FILES ("));
  EXPECT_NE(files_part.find("/data/b.bin"), std::string::npos);
  EXPECT_EQ(files_part.find("/data/c.bin"), std::string::npos);

  o.top = 0;
  EXPECT_TRUE(report_json(m, o).at("files").empty());
}

TEST(Report, TextHeaderAndRows) {
  const auto m = build_report(make_scan());
  const auto text = report_text(m, report_options{});
  // 98304 B = 96.0 KiB; 45056 B = 44.0 KiB; 45056 / 98304 = 45.83%.
  EXPECT_EQ(text.substr(0, text.find('\n') + 1),
            "cached 96.0 KiB  wasted 44.0 KiB (45.8%)  files scanned 12, cached 6, filesystems 2\n");
  EXPECT_NE(text.find("FILES (6 of 6, by wasted)\n"), std::string::npos);
  EXPECT_NE(text.find("\n 16.0 KiB  24.0 KiB  32.0 KiB  /data/a.bin\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n     3  16.0 KiB  32.0 KiB  /data/a.bin\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n2 error(s), listed on standard error\n"), std::string::npos);

  // Rows in the file table follow the wasted order.
  const auto files_part = text.substr(text.find("FILES ("), text.find("GROUPS OF COPIES") - text.find("FILES ("));
  const std::vector<std::string> order = {"/data/a.bin", "/data/b.bin", "/data/c.bin", "/data/bad\\xff.bin",
                                          "/data/\\e[31mred\\nline", "/data/solo"};
  std::size_t last = 0;
  for (const auto& p : order) {
    const auto at = files_part.find("  " + p + "\n");
    ASSERT_NE(at, std::string::npos) << p << " in\n" << files_part;
    EXPECT_GT(at, last) << p;
    last = at;
  }
}

TEST(Report, TextExactBytes) {
  const auto m = build_report(make_scan());
  report_options o;
  o.exact_bytes = true;
  const auto text = report_text(m, o);
  EXPECT_NE(text.find("\n        16384         24576         32768  /data/a.bin\n"), std::string::npos) << text;
  EXPECT_EQ(text.substr(0, text.find('\n') + 1),
            "cached 98304  wasted 45056 (45.8%)  files scanned 12, cached 6, filesystems 2\n");
}

TEST(Report, TextNeverCarriesControlBytes) {
  const auto m = build_report(make_scan());
  report_options o;
  o.views = {report_view::file, report_view::group, report_view::fs};
  const auto text = report_text(m, o);
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    ASSERT_TRUE(c == '\n' || (c >= 0x20 && c != 0x7f)) << "byte " << int(c) << " at " << i << " in\n" << text;
  }
  EXPECT_TRUE(is_valid_utf8(text));
  EXPECT_NE(text.find("/data/\\e[31mred\\nline"), std::string::npos);
  EXPECT_NE(text.find("/data/bad\\xff.bin"), std::string::npos);
  EXPECT_NE(text.find("(/mnt/\\e]0;title\\x07x)"), std::string::npos) << text;
  EXPECT_NE(text.find("FILESYSTEMS (2)\n"), std::string::npos);
  EXPECT_NE(text.find("\n 44.0 KiB  96.0 KiB        6  btrfs    fsA (/data)\n"), std::string::npos) << text;
}

TEST(Report, MincoreNote) {
  auto scan = make_scan();
  scan.dirty_known = false;
  scan.residency_method = "mincore";
  const auto m = build_report(scan);
  EXPECT_NE(report_text(m, report_options{}).find("dirty pages could not be told apart"), std::string::npos);
  EXPECT_EQ(report_json(m, report_options{}).at("residency"), "mincore");
  EXPECT_EQ(report_text(build_report(make_scan()), report_options{}).find("could not be told apart"),
            std::string::npos);
}

TEST(Report, DefaultRowLimitsTwentyInTextAllInJson) {
  scan_result s(P);
  for (int i = 0; i < 25; ++i) {
    s.index.intern_copy({"fsA", 0, static_cast<std::uint64_t>(100 + i)});
    s.files.push_back({fmt::format("/f/{:02}", 24 - i), P, 0});  // interned in reverse name order
  }
  const auto m = build_report(s);
  const auto text = report_text(m, report_options{});
  EXPECT_NE(text.find("FILES (20 of 25, by wasted)\n"), std::string::npos) << text;
  // Equal numbers everywhere: rows fall back to path order, so /f/00../f/19 are shown.
  EXPECT_NE(text.find("  /f/19\n"), std::string::npos);
  EXPECT_EQ(text.find("  /f/20\n"), std::string::npos);
  const auto j = report_json(m, report_options{});
  ASSERT_EQ(j.at("files").size(), 25u);
  EXPECT_EQ(j.at("files")[0].at("path"), "/f/00");
  EXPECT_EQ(j.at("files")[24].at("path"), "/f/24");
  EXPECT_EQ(j.at("totals").at("cached_bytes"), 25 * P);
}

TEST(Report, EmptyScan) {
  scan_result s(P);
  const auto m = build_report(s);
  const auto j = report_json(m, report_options{});
  EXPECT_EQ(j.at("totals").at("cached_bytes"), 0u);
  EXPECT_EQ(j.at("totals").at("wasted_bytes"), 0u);
  EXPECT_TRUE(j.at("files").empty());
  EXPECT_TRUE(j.at("errors").empty());
  EXPECT_EQ(report_text(m, report_options{}).substr(0, 40), "cached 0 B  wasted 0 B (0.0%)  files sca");
}

}  // namespace
}  // namespace dupcache

namespace dupcache {
namespace {

// What the daemon sends back becomes the same report: the document of the model read back
// from a document equals the document (invalid UTF-8 paths included, through _base64).
TEST(Report, JsonReadsBackToTheSameReport) {
  auto m = build_report(make_scan());
  cgroup::container_row c;
  c.runtime = "docker";
  c.id = std::string(64, 'a');
  c.name = "web";
  c.cgroup = "/system.slice/docker-x.scope";
  c.cached_bytes = 8 * P;
  c.wasted_bytes = 3 * P;
  c.shared_cached_bytes = 6 * P;
  c.files.push_back({0, 6 * P, 3 * P});
  c.shared_with.push_back({"lxc", "db", "db", "/lxc.payload.db", "db", 6 * P});
  scan_result s = make_scan();
  attach_containers(m, s, {c}, "");
  for (const auto& opts : {report_options{}, report_options{{report_view::file}, 2, false}}) {
    const auto j = report_json(m, opts);
    const auto back = report_from_json(nlohmann::json::parse(j.dump()));
    EXPECT_EQ(report_json(back, opts), j);
    EXPECT_EQ(report_text(back, opts), report_text(report_from_json(nlohmann::json::parse(j.dump())), opts));
  }
  const auto back = report_from_json(nlohmann::json::parse(report_json(m, {}).dump()));
  EXPECT_EQ(back.files[3].path, kBad);
  EXPECT_EQ(back.containers[0].files.size(), 1u);
  EXPECT_EQ(back.copy_paths[back.containers[0].files[0].copy], s.files[0].path);
  EXPECT_THROW(report_from_json(nlohmann::json::parse(R"({"page_size": 4096})")), std::exception);
}

// A scan that is done with hands its per-file records to the model (issue 17): the model is
// the same as the one built from a scan still in use, row for row and byte for byte, and the
// scan's files and index are left empty. A record the live state still holds for a file
// evicted since (cached 0) or never named (no path) is not ranked, either way.
TEST(Report, ModelFromADoneScanIsTheSame) {
  scan_result kept = make_scan();
  kept.files.push_back({"/data/evicted", 0, 0});
  ASSERT_EQ(kept.index.intern_copy({"fsA", 0, 16}), 6u);
  kept.files.push_back({"", P, 0});
  ASSERT_EQ(kept.index.intern_copy({"fsA", 0, 17}), 7u);
  scan_result done = kept;
  const auto a = build_report(kept);
  const auto b = build_report(std::move(done));
  EXPECT_TRUE(done.files.empty());  // NOLINT(bugprone-use-after-move): what the move leaves
  EXPECT_EQ(done.index.copy_count(), 0u);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(kept.files.size(), 8u);
  for (const auto* m : {&a, &b}) {
    ASSERT_EQ(m->files.size(), 6u);
    EXPECT_EQ(m->files_cached, 6u);
    EXPECT_EQ(m->cached_bytes, 24 * P);
    EXPECT_EQ(m->files[0].path, "/data/a.bin");
    EXPECT_EQ(m->files[0].copy, 3u);
    EXPECT_EQ(m->files[0].ino, 10u);
    EXPECT_EQ(m->files[0].subvol, 0u);
    EXPECT_EQ(m->files[0].cached_bytes, 8 * P);
    EXPECT_EQ(m->files[0].wasted_bytes, 4 * P);
    EXPECT_EQ(m->files[0].shared_cached_bytes, 6 * P);
    EXPECT_EQ(m->files[5].path, "/data/solo");
    EXPECT_EQ(m->files[5].copy, 0u);
    EXPECT_EQ(m->files[5].ino, 15u);
    ASSERT_EQ(m->groups.size(), 3u);
    EXPECT_EQ(group_paths(*m, m->groups[2]), (std::vector<std::string>{kBad, kRed}));
  }
  const std::vector<report_view> all = {report_view::file, report_view::group, report_view::fs};
  for (const auto& opts : {report_options{}, report_options{all, 2, true}, report_options{all, std::nullopt, false}}) {
    EXPECT_EQ(report_text(a, opts), report_text(b, opts));
    EXPECT_EQ(report_json(a, opts), report_json(b, opts));
  }
  std::size_t n = 0;
  for (const auto& f : b.files) {
    EXPECT_EQ(f.path, b.files[n].path);
    EXPECT_EQ(f.copy, b.files[n].copy);
    ++n;
  }
  EXPECT_EQ(n, 6u);
}

TEST(Text, Base64RoundTrips) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\xff\x00\x10", 3)}) {
    auto back = base64_decode(base64_encode(s));
    ASSERT_TRUE(back) << s;
    EXPECT_EQ(*back, s);
  }
  EXPECT_FALSE(base64_decode("abc"));
  EXPECT_FALSE(base64_decode("ab=c"));
  EXPECT_FALSE(base64_decode("a*cd"));
}

// A document from the daemon with a byte count that is not an unsigned integer is refused,
// never converted (a float out of range was undefined behaviour; found by fuzz/control_answer).
TEST(ReportFromJson, RefusesNumbersThatAreNotUnsignedIntegers) {
  const std::string rest =
      R"(,"totals":{"cached_bytes":0,"wasted_bytes":0,"files_scanned":0,"files_cached":0},)"
      R"("files":[],"groups":[],"filesystems":[],"containers":[],"errors":[]})";
  EXPECT_EQ(report_from_json(nlohmann::json::parse(R"({"page_size":4096)" + rest)).page_size, 4096u);
  for (const char* bad : {"1e300", "-1", "4096.5", "\"4096\""}) {
    EXPECT_ANY_THROW(report_from_json(nlohmann::json::parse(std::string(R"({"page_size":)") + bad + rest))) << bad;
  }
}

}  // namespace
}  // namespace dupcache
