// SPDX-License-Identifier: GPL-2.0-only
// `dupcache top --content`: the content duplicates of `report --content`, live. Two plain
// copies (the same bytes written twice: separate extents) and an unrelated file on ext4, read
// fully; every expected figure comes from the scenario, and the residency of every file is
// compared page by page before and after the run.

#include <map>

#include "cli_test.hpp"

namespace dupcache::testing {
namespace {

using nlohmann::json;

std::uint64_t u64(const json& j) { return j.get<std::uint64_t>(); }

const json* file_of(const json& doc, const std::string& path) {
  for (const auto& f : doc.at("files")) {
    if (f.at("path") == path) return &f;
  }
  return nullptr;
}

struct content_scene {
  scratch_fs fs{"ext4"};
  scene sc;
  std::vector<std::string> files;
  std::map<std::string, std::vector<unsigned char>> before;

  content_scene() {
    write_file(fs.path("a"), MiB, 7);
    write_file(fs.path("b"), MiB, 7);  // the same bytes again: its own extents
    write_file(fs.path("other"), MiB, 8);
    files = {fs.path("a"), fs.path("b"), fs.path("other")};
    for (const auto& f : files) evict(f);
    for (const auto& f : files) {
      read_all(f);
      sc.add(f);
    }
    for (const auto& f : files) before[f] = residency(f);
  }
  void expect_residency_unchanged() const {
    for (const auto& [path, pages] : before) {
      const auto now = residency(path);
      ASSERT_EQ(pages.size(), now.size()) << path;
      for (std::size_t i = 0; i < pages.size(); ++i) {
        EXPECT_EQ(pages[i], now[i]) << path << " page " << i << " changed residency during top --content";
      }
    }
  }
};

TEST(TopContent, JsonPlainCopiesOnExt4) {
  DUPCACHE_REQUIRE_ROOT("mkfs.ext4");
  content_scene s;
  for (const auto& f : s.files) ASSERT_EQ(cached_pages(f), MiB / ps()) << f;

  const std::vector<std::string> argv{DUPCACHE_BINARY, "top", "-b", "-n", "2", "-d", "1", "--json",
                                      "--content", "--content-interval", "1", s.fs.dir()};
  auto r = run_on(s.sc, argv);
  ASSERT_EQ(r.status, 0) << join_argv(argv) << "\n" << r.err;
  s.expect_residency_unchanged();
  std::vector<json> docs;
  for (const auto& l : split_lines(r.out)) {
    if (!l.empty()) docs.push_back(json::parse(l));
  }
  ASSERT_EQ(docs.size(), 2u) << r.out;
  // The first pass starts with the live loop and hashes 3 MiB: the last sample carries it.
  const json& last = docs.back();
  ASSERT_TRUE(last["totals"].contains("content_wasted_bytes")) << last.dump();
  for (const auto& d : docs) {
    if (!d["totals"].contains("content_wasted_bytes")) {
      EXPECT_EQ(d.value("content_status", ""), "content: first pass running") << d.dump();
      continue;
    }
    EXPECT_EQ(u64(d["totals"]["wasted_bytes"]), 0u) << "ext4 shares no extents";
    EXPECT_EQ(u64(d["totals"]["content_wasted_bytes"]), MiB) << "b caches a's bytes a second time";
    EXPECT_EQ(u64(d["totals"]["content_shareable_bytes"]), MiB);
    const json* a = file_of(d, s.fs.path("a"));
    const json* b = file_of(d, s.fs.path("b"));
    const json* o = file_of(d, s.fs.path("other"));
    ASSERT_TRUE(a && b && o) << d.dump();
    EXPECT_EQ(u64((*a)["content_wasted_bytes"]), 0u) << "a sorts first: the copy kept";
    EXPECT_EQ(u64((*b)["content_wasted_bytes"]), MiB);
    EXPECT_EQ(u64((*o)["content_wasted_bytes"]), 0u);
    EXPECT_EQ(u64((*a)["content_duplicate_bytes"]), MiB);
    ASSERT_EQ(d["content_groups"].size(), 1u) << d.dump();
    EXPECT_EQ(u64(d["content_groups"][0]["copies"]), 2u);
    EXPECT_EQ(u64(d["content_groups"][0]["bytes_per_copy"]), MiB);
    EXPECT_EQ(u64(d["content_groups"][0]["wasted_bytes"]), MiB);
    EXPECT_TRUE(d.contains("what_if"));
    EXPECT_TRUE(starts_with(d.value("content_status", ""), "content pass ")) << d.dump();
  }
}

TEST(TopContent, BatchHeaderLine) {
  DUPCACHE_REQUIRE_ROOT("mkfs.ext4");
  content_scene s;
  const std::vector<std::string> argv{DUPCACHE_BINARY, "top", "-b", "-n", "2", "-d", "1", "--bytes",
                                      "--content", "--content-interval", "1", s.fs.dir()};
  auto r = run_on(s.sc, argv);
  ASSERT_EQ(r.status, 0) << join_argv(argv) << "\n" << r.err;
  s.expect_residency_unchanged();
  EXPECT_TRUE(contains(r.out, "\ncontent wasted " + std::to_string(MiB) + "  shareable " + std::to_string(MiB) +
                                  "  groups 1\ncontent pass "))
      << "the figures, and the pass's age on its own line at 80 columns:\n" << r.out;
  // Without --content there is no content line and no content key.
  auto plain = run_on(s.sc, {DUPCACHE_BINARY, "top", "--json", "-n", "1", "-d", "0.5", s.fs.dir()});
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_FALSE(contains(plain.out, "content_wasted_bytes")) << plain.out;
}

TEST(TopContent, UsageErrors) {
  DUPCACHE_REQUIRE_ROOT("mkfs.ext4");
  scratch_fs fs("ext4");
  auto daemon = run({DUPCACHE_BINARY, "top", "--content", "--from-daemon", "-b", "-n", "1"}, 30);
  EXPECT_EQ(daemon.status, 2) << daemon.err;
  EXPECT_TRUE(contains(daemon.err, "--from-daemon") && contains(daemon.err, "--content")) << daemon.err;
  auto alone = run({DUPCACHE_BINARY, "top", "--content-interval", "5", "-b", "-n", "1", fs.dir()}, 30);
  EXPECT_EQ(alone.status, 2) << alone.err;
  EXPECT_TRUE(contains(alone.err, "--content-interval")) << alone.err;
  auto low = run({DUPCACHE_BINARY, "top", "--content", "--content-interval", "0.5", "-b", "-n", "1", fs.dir()}, 30);
  EXPECT_EQ(low.status, 2) << low.err;
  EXPECT_TRUE(contains(low.err, "--content-interval")) << low.err;
}

}  // namespace
}  // namespace dupcache::testing
