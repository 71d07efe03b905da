// SPDX-License-Identifier: GPL-2.0-only
// dupcache dedupe on real btrfs and XFS (reflink=1) images: plain copies come to share their
// extents (FIEMAP addresses, read by the test itself), contents never change, a near-identical
// copy shares all blocks but the one that differs, a file open for writing is skipped, a dry run
// changes nothing, the page cache is left as found, and afterwards `report` counts the copies
// as shared-extent duplicates. On ext4 the command refuses with the path and the reason.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>

#include "fs_fixture.hpp"

namespace dupcache::testing {
namespace {

constexpr std::uint64_t blk = 4096;
constexpr std::uint64_t size = 1 * MiB;
constexpr std::uint64_t blocks = size / blk;
constexpr std::uint64_t differing_block = 5;

nlohmann::json dedupe_json(const std::vector<std::string>& args, int* status) {
  std::vector<std::string> argv{DUPCACHE_BINARY, "dedupe", "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run(argv);
  *status = r.status;
  if (r.out.empty()) throw std::runtime_error("dupcache dedupe printed nothing: " + r.err);
  return nlohmann::json::parse(r.out);
}

class Dedupe : public ::testing::TestWithParam<std::string> {};

// The scenario: a and b plain copies (written twice, not reflinked), c the same but for one
// block, w the same as a but held open for writing by this process, all synced and uncached.
struct scenario {
  explicit scenario(const scratch_fs& fs) : dir(fs.path("d")) {
    must({"mkdir", dir});
    for (const char* n : {"a", "b", "c", "w"}) write_file(dir + "/" + n, size, 7);
    overwrite(dir + "/c", differing_block * blk, blk, 8);
    for (const char* n : {"a", "b", "c", "w"}) {
      sums[n] = contents(dir + "/" + n);
      evict(dir + "/" + n);  // after reading the contents: the scenario starts with nothing cached
      addr[n] = block_addresses(dir + "/" + n);
    }
    writer = open((dir + "/w").c_str(), O_WRONLY | O_CLOEXEC);
    if (writer < 0) throw std::runtime_error("open w for writing");
  }
  ~scenario() { close(writer); }
  std::string p(const char* n) const { return dir + "/" + n; }
  std::string dir;
  std::map<std::string, std::string> sums;
  std::map<std::string, std::vector<std::uint64_t>> addr;
  int writer = -1;
};

TEST_P(Dedupe, DryRunChangesNothingAndSaysWhatItWouldShare) {
  DUPCACHE_REQUIRE_ROOT("mkfs." + GetParam());
  scratch_fs fs(GetParam());
  scenario sc(fs);
  int status = -1;
  const auto j = dedupe_json({"--dry-run", sc.dir}, &status);
  EXPECT_EQ(status, 0);
  EXPECT_TRUE(j["dry_run"].get<bool>());
  EXPECT_EQ(j["files_examined"].get<std::uint64_t>(), 4u);
  EXPECT_EQ(j["candidate_files"].get<std::uint64_t>(), 3u);
  // b whole, c all but one block.
  EXPECT_EQ(j["planned_bytes"].get<std::uint64_t>(), size + size - blk);
  EXPECT_EQ(j["shared_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(j["files_shared"].get<std::uint64_t>(), 2u);
  ASSERT_EQ(j["skipped"].size(), 1u);
  EXPECT_EQ(j["skipped"][0]["path"], sc.p("w"));
  EXPECT_EQ(j["skipped"][0]["reason"], "open for writing");
  for (const char* n : {"a", "b", "c", "w"}) {
    EXPECT_EQ(block_addresses(sc.p(n)), sc.addr[n]) << n;
    EXPECT_EQ(cached_pages(sc.p(n)), 0u) << n;
  }
}

TEST_P(Dedupe, CopiesShareExtentsContentsStayAndTheCacheIsLeftAsFound) {
  DUPCACHE_REQUIRE_ROOT("mkfs." + GetParam());
  scratch_fs fs(GetParam());
  scenario sc(fs);
  for (const char* n : {"a", "b", "c"}) {
    for (const char* m : {"a", "b", "c"}) {
      if (std::string(n) < m) {
        EXPECT_NE(sc.addr[n][0], sc.addr[m][0]) << n << " and " << m << " start shared";
      }
    }
  }
  int status = -1;
  const auto j = dedupe_json({"--rate", "512M", sc.dir}, &status);
  EXPECT_EQ(status, 0) << j.dump(2);
  EXPECT_EQ(j["shared_bytes"].get<std::uint64_t>(), size + size - blk);
  EXPECT_EQ(j["planned_bytes"].get<std::uint64_t>(), size + size - blk);
  EXPECT_EQ(j["already_shared_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(j["files_shared"].get<std::uint64_t>(), 2u);
  EXPECT_EQ(j["ranges"].size(), 3u);  // b whole; c before and after the differing block
  ASSERT_EQ(j["skipped"].size(), 1u);
  EXPECT_EQ(j["skipped"][0]["path"], sc.p("w"));
  EXPECT_EQ(j["skipped"][0]["reason"], "open for writing");
  EXPECT_TRUE(j["errors"].empty());

  const auto a = block_addresses(sc.p("a"));
  EXPECT_EQ(block_addresses(sc.p("b")), a);
  const auto c = block_addresses(sc.p("c"));
  for (std::uint64_t i = 0; i < blocks; ++i) {
    ASSERT_NE(a[i], no_address);
    if (i == differing_block) {
      EXPECT_NE(c[i], a[i]) << "block " << i;
    } else {
      EXPECT_EQ(c[i], a[i]) << "block " << i;
    }
  }
  EXPECT_EQ(block_addresses(sc.p("w")), sc.addr["w"]);
  for (const char* n : {"a", "b", "c", "w"}) {
    // Nothing was cached before; hashing and the kernel's comparison leave nothing behind.
    EXPECT_EQ(cached_pages(sc.p(n)), 0u) << n;
    EXPECT_EQ(contents(sc.p(n)), sc.sums[n]) << n << " changed";
    evict(sc.p(n));  // what the test read to compare
  }

  // A second run finds everything shared already: nothing to do.
  const auto again = dedupe_json({sc.dir}, &status);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(again["shared_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(again["already_shared_bytes"].get<std::uint64_t>(), size + size - blk);

  // Read both copies: report now sees one physical copy cached twice.
  scene sn;
  for (const char* n : {"a", "b"}) {
    read_all(sc.p(n));
    sn.add(sc.p(n));
  }
  const auto r = run_on(sn, {DUPCACHE_BINARY, "report", "--json", sc.dir});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto rep = nlohmann::json::parse(r.out);
  EXPECT_EQ(rep["totals"]["wasted_bytes"].get<std::uint64_t>(), size);
}

TEST_P(Dedupe, KeepsWhatWasCached) {
  DUPCACHE_REQUIRE_ROOT("mkfs." + GetParam());
  scratch_fs fs(GetParam());
  scenario sc(fs);
  // Half of a (the source) is cached before: exactly that half is cached after.
  read_range(sc.p("a"), 0, size / 2);
  scene sn;
  sn.add(sc.p("a"));
  const auto before = residency(sc.p("a"));
  auto r = run_on(sn, {DUPCACHE_BINARY, "dedupe", "--bytes", sc.dir});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("skipped  " + sc.p("w") + ": open for writing"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("shared " + std::to_string(2 * size - blk) + " in 3 range(s) of 2 file(s)"), std::string::npos) << r.out;
  // Printed page by page ('1' cached, '.' not) so a difference shows where it is.
  const auto pages = [](const std::vector<unsigned char>& v) {
    std::string s;
    for (unsigned char c : v) s += (c & 1) ? '1' : '.';
    return s;
  };
  EXPECT_EQ(pages(residency(sc.p("a"))), pages(before));
  EXPECT_EQ(block_addresses(sc.p("b")), block_addresses(sc.p("a")));
}

// A size group of more files than the open-file limit: its members used to be held open from
// hashing to sharing, so every file past the limit failed ("Too many open files").
TEST_P(Dedupe, ASizeGroupLargerThanTheOpenFileLimitIsShared) {
  DUPCACHE_REQUIRE_ROOT("mkfs." + GetParam());
  scratch_fs fs(GetParam());
  constexpr int files = 200, contents_count = 10;
  constexpr std::uint64_t small = 2 * blk;
  const std::string dir = fs.path("g");
  must({"mkdir", dir});
  auto name = [&](int i) { return dir + "/f" + std::to_string(i); };
  for (int i = 0; i < files; ++i) write_file(name(i), small, 30 + i % contents_count);
  for (int i = 0; i < files; ++i) evict(name(i));
  auto r = run({"/bin/sh", "-c", "ulimit -n 64 && exec \"$0\" \"$@\"", DUPCACHE_BINARY, "dedupe", "--json", dir});
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  const auto j = nlohmann::json::parse(r.out);
  constexpr std::uint64_t copies = files - contents_count;  // all but the first of each content
  EXPECT_EQ(j["shared_bytes"].get<std::uint64_t>(), copies * small);
  EXPECT_EQ(j["files_shared"].get<std::uint64_t>(), copies);
  EXPECT_EQ(j["ranges"].size(), copies);
  EXPECT_TRUE(j["errors"].empty()) << j["errors"].dump();
  EXPECT_TRUE(j["skipped"].empty()) << j["skipped"].dump();
  // Names sort as the walk reads them, not by number: each content's first member is the source.
  std::map<std::string, std::vector<std::uint64_t>> first_of;  // content -> addresses
  for (int i = 0; i < files; ++i) {
    const std::string text = contents(name(i));
    const auto addr = block_addresses(name(i));
    auto [it, fresh] = first_of.try_emplace(text, addr);
    if (!fresh) {
      EXPECT_EQ(addr, it->second) << name(i) << " does not share its content's extents";
    }
    evict(name(i));
  }
  EXPECT_EQ(first_of.size(), std::size_t{contents_count});
  for (int i = 0; i < files; ++i) EXPECT_EQ(cached_pages(name(i)), 0u) << name(i);
}

INSTANTIATE_TEST_SUITE_P(Filesystems, Dedupe, ::testing::Values("btrfs", "xfs"));

TEST(DedupeRefuses, Ext4NamesThePathAndTheReason) {
  DUPCACHE_REQUIRE_ROOT("mkfs.ext4");
  scratch_fs fs("ext4");
  write_file(fs.path("a"), size, 1);
  write_file(fs.path("b"), size, 1);
  const auto before = block_addresses(fs.path("b"));
  auto r = run({DUPCACHE_BINARY, "dedupe", fs.dir()});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(fs.dir()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ext4 cannot share extents"), std::string::npos) << r.err;
  EXPECT_EQ(block_addresses(fs.path("b")), before);
}

TEST(DedupeRefuses, UsageErrors) {
  EXPECT_EQ(run({DUPCACHE_BINARY, "dedupe"}).status, 2);
  auto r = run({DUPCACHE_BINARY, "dedupe", "--rate", "fast", "/"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--rate fast"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace dupcache::testing
