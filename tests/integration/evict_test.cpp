// SPDX-License-Identifier: GPL-2.0-only
// dupcache evict on real btrfs and XFS images: exactly the duplicate copies go, one copy of
// every block stays, dirty pages stay, contents never change, --dry-run changes nothing.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>

#include "fs_fixture.hpp"
#include "policy/evict.hpp"
#include "policy/in_use.hpp"
#include "policy/plan.hpp"
#include "scan/scanner.hpp"
#include "util/text.hpp"

namespace dupcache::testing {
namespace {

nlohmann::json evict_json(const std::vector<std::string>& args, int* status) {
  std::vector<std::string> argv{DUPCACHE_BINARY, "evict", "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run(argv);
  *status = r.status;
  return nlohmann::json::parse(r.out.empty() ? "{}" : r.out);
}

// A child process that maps `path` read-only, faults every page in, then waits; when told to
// finish, it checks the mapping still reads `expected` and exits 0 if so.
class mapping_child {
 public:
  mapping_child(const std::string& path, const std::string& expected) {
    if (pipe(go_) != 0 || pipe(done_) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      const int fd = open(path.c_str(), O_RDONLY);
      auto* p = static_cast<const unsigned char*>(mmap(nullptr, expected.size(), PROT_READ, MAP_PRIVATE, fd, 0));
      if (p == MAP_FAILED) _exit(2);
      unsigned sum = 0;
      for (std::uint64_t off = 0; off < expected.size(); off += page_size()) sum += p[off];
      (void)!write(done_[1], "m", 1);  // mapped and faulted in
      char c;
      (void)!read(go_[0], &c, 1);
      _exit(std::memcmp(p, expected.data(), expected.size()) == 0 && sum != ~0u ? 0 : 3);
    }
    char c;
    if (read(done_[0], &c, 1) != 1) throw std::runtime_error("the mapping child died");
  }
  ~mapping_child() {
    if (pid_ > 0) finish();
    for (int fd : {go_[0], go_[1], done_[0], done_[1]}) close(fd);
  }
  pid_t pid() const { return pid_; }
  // True when the child read the expected bytes through its mapping after all.
  bool finish() {
    (void)!write(go_[1], "g", 1);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }

 private:
  int go_[2] = {-1, -1}, done_[2] = {-1, -1};
  pid_t pid_ = -1;
};

// a and its reflink b, with only a cached: b is about to be mapped. Returns their contents.
std::string cached_a_mapped_b(const scratch_fs& fs, std::uint64_t size, std::uint32_t seed) {
  write_file(fs.path("a"), size, seed);
  reflink(fs.path("a"), fs.path("b"));
  const std::string original = contents(fs.path("a"));
  evict(fs.path("a"));
  evict(fs.path("b"));
  read_all(fs.path("a"));
  return original;
}

class evict_fs : public ::testing::TestWithParam<std::string> {};

TEST_P(evict_fs, KeepsOneCopyOfEveryBlockAndNothingElseChanges) {
  DUPCACHE_REQUIRE_ROOT(GetParam() == "btrfs" ? "mkfs.btrfs" : "mkfs.xfs");
  scratch_fs fs(GetParam());
  const std::uint64_t ps = page_size(), size = 2 * MiB;
  write_file(fs.path("a"), size, 5);
  reflink(fs.path("a"), fs.path("b"));
  reflink(fs.path("a"), fs.path("c"));
  write_file(fs.path("solo"), size, 6);
  const std::string original = contents(fs.path("a"));
  for (const char* n : {"a", "b", "c", "solo"}) evict(fs.path(n));
  // a and c wholly cached, b only its second half; solo shares nothing.
  read_all(fs.path("a"));
  read_all(fs.path("c"));
  read_range(fs.path("b"), size / 2, size / 2);
  read_all(fs.path("solo"));

  int status = -1;
  auto dry = evict_json({"--dry-run", fs.dir()}, &status);
  ASSERT_EQ(status, 0);
  EXPECT_EQ(dry["wasted_bytes_before"], size + size / 2);
  EXPECT_EQ(dry["planned_bytes"], size + size / 2);
  EXPECT_EQ(dry["freed_bytes"], 0);
  EXPECT_EQ(cached_pages(fs.path("b")), size / 2 / ps) << "--dry-run changed the cache";
  EXPECT_EQ(cached_pages(fs.path("c")), size / ps);

  auto done = evict_json({fs.dir()}, &status);
  ASSERT_EQ(status, 0);
  EXPECT_EQ(done["freed_bytes"], size + size / 2);
  EXPECT_EQ(done["wasted_bytes_after"], 0);
  // The most cached copy is kept (a and c tie: the first in inode order, a).
  EXPECT_EQ(cached_pages(fs.path("a")), size / ps);
  EXPECT_EQ(cached_pages(fs.path("b")), 0u);
  EXPECT_EQ(cached_pages(fs.path("c")), 0u);
  EXPECT_EQ(cached_pages(fs.path("solo")), size / ps) << "a file with no duplicate was touched";
  for (const auto& a : done["actions"]) EXPECT_EQ(a["kept"], fs.path("a")) << a.dump();
  for (const char* n : {"a", "b", "c"}) EXPECT_EQ(contents(fs.path(n)), original) << n;
}

INSTANTIATE_TEST_SUITE_P(, evict_fs, ::testing::Values("btrfs", "xfs"));

TEST(Evict, DirtyPagesAreNeverDropped) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t ps = page_size(), size = 1 * MiB;
  write_file(fs.path("a"), size, 7);
  reflink(fs.path("a"), fs.path("b"));
  evict(fs.path("a"));
  evict(fs.path("b"));
  read_all(fs.path("a"));
  read_all(fs.path("b"));
  // Dirty three pages of b in the middle; they no longer hold the shared blocks' contents.
  const std::string z(3 * ps, 'z');
  const int fd = open(fs.path("b").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, z.data(), z.size(), static_cast<off_t>(8 * ps)), static_cast<ssize_t>(z.size()));
  close(fd);
  int status = -1;
  auto r = evict_json({fs.path("b"), fs.path("a")}, &status);
  ASSERT_EQ(status, 0) << r.dump();
  // b is the copy that goes (a and b tie on cached pages; a is first in inode order), all of it
  // but the dirty pages.
  ASSERT_EQ(r["actions"].size(), 1u) << r.dump();
  EXPECT_EQ(r["actions"][0]["path"], fs.path("b"));
  EXPECT_EQ(r["freed_bytes"], size - 3 * ps);
  const auto res = residency(fs.path("b"));
  for (std::uint64_t p = 8; p < 11; ++p) EXPECT_EQ(res[p], 1u) << "dirty page " << p << " was dropped";
  sync();
  evict(fs.path("b"));
  const std::string back = contents(fs.path("b"));
  EXPECT_EQ(back.substr(8 * ps, 3 * ps), z);
}

// A process maps its copy and keeps it mapped: DONTNEED cannot drop mapped pages; paging them
// out of the process first can, and the process still reads the right bytes afterwards.
TEST(Evict, MappedDuplicatesArePagedOutOfTheirProcess) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t ps = page_size(), size = 1 * MiB;
  const std::string original = cached_a_mapped_b(fs, size, 9);
  mapping_child child(fs.path("b"), original);
  // a is held open here: both copies are in use, so the keeper is a by inode order and b is
  // the copy to page out.
  const int hold_a = open(fs.path("a").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(hold_a, 0);
  ASSERT_EQ(cached_pages(fs.path("b")), size / ps);
  int status = -1;
  auto kept = evict_json({"--no-pageout", fs.dir()}, &status);
  ASSERT_EQ(status, 0) << kept.dump();
  EXPECT_EQ(kept["freed_bytes"], 0) << kept.dump();
  ASSERT_EQ(kept["actions"].size(), 1u);
  EXPECT_EQ(kept["actions"][0]["still_cached_bytes"], size);
  EXPECT_EQ(cached_pages(fs.path("b")), size / ps);

  auto out = evict_json({fs.dir()}, &status);
  ASSERT_EQ(status, 0) << out.dump();
  ASSERT_EQ(out["actions"].size(), 1u) << out.dump();
  EXPECT_EQ(out["actions"][0]["path"], fs.path("b"));
  EXPECT_EQ(out["actions"][0]["pageout_processes"], 1);
  EXPECT_EQ(out["actions"][0]["paged_out_bytes"], size);
  EXPECT_EQ(out["freed_bytes"], size);
  EXPECT_EQ(cached_pages(fs.path("b")), 0u);
  EXPECT_EQ(cached_pages(fs.path("a")), size / ps);
  EXPECT_TRUE(child.finish()) << "the mapping process read wrong bytes";
  close(hold_a);
}

// The copy a running process uses is the one kept, even when another copy comes first by every
// other rule (a ties with b on cached pages and is first in inode order): evicting b would only
// make that process read its blocks from disk again and rebuild the duplicate.
TEST(Evict, KeepsTheCopyAProcessHasOpen) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t ps = page_size(), size = 1 * MiB;
  cached_a_mapped_b(fs, size, 13);
  read_all(fs.path("b"));
  const int hold_b = open(fs.path("b").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(hold_b, 0);
  int status = -1;
  auto out = evict_json({fs.dir()}, &status);
  ASSERT_EQ(status, 0) << out.dump();
  ASSERT_EQ(out["actions"].size(), 1u) << out.dump();
  EXPECT_EQ(out["actions"][0]["path"], fs.path("a"));
  EXPECT_EQ(out["actions"][0]["kept"], fs.path("b"));
  EXPECT_EQ(out["freed_bytes"], size);
  EXPECT_EQ(cached_pages(fs.path("a")), 0u);
  EXPECT_EQ(cached_pages(fs.path("b")), size / ps);
  close(hold_b);
  // Nobody holds either copy now: the tie goes back to inode order.
  read_all(fs.path("a"));
  out = evict_json({fs.dir()}, &status);
  ASSERT_EQ(status, 0) << out.dump();
  ASSERT_EQ(out["actions"].size(), 1u) << out.dump();
  EXPECT_EQ(out["actions"][0]["path"], fs.path("b"));
}

// merge without the companion module: the named process's mapped duplicate is paged out of it
// and evicted; the unmapped copy stays cached as the one copy; the process reads the same bytes.
TEST(Merge, FallsBackToPageoutAndEvictionForTheNamedProcess) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t ps = page_size(), size = 1 * MiB;
  const std::string original = cached_a_mapped_b(fs, size, 11);
  mapping_child child(fs.path("b"), original);
  // A process that maps nothing of it: nothing to do.
  auto none = run({DUPCACHE_BINARY, "merge", "--pid", std::to_string(getppid()), fs.dir()});
  EXPECT_EQ(none.status, 0) << none.err;
  EXPECT_NE(none.out.find("nothing to merge"), std::string::npos) << none.out;
  EXPECT_EQ(cached_pages(fs.path("b")), size / ps);

  auto r = run({DUPCACHE_BINARY, "merge", "--json", "--pid", std::to_string(child.pid()), fs.dir()});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["merged"], false);
  EXPECT_NE(j["fallback"].get<std::string>().find("/dev/dupcache"), std::string::npos) << j.dump();
  EXPECT_EQ(j["mapped_copies"], 1);
  EXPECT_EQ(j["freed_bytes"], size) << j.dump();
  ASSERT_EQ(j["actions"].size(), 1u);
  EXPECT_EQ(j["actions"][0]["path"], fs.path("b"));
  EXPECT_EQ(j["actions"][0]["kept"], fs.path("a"));
  EXPECT_EQ(j["actions"][0]["pageout_processes"], 1);
  EXPECT_EQ(cached_pages(fs.path("b")), 0u);
  EXPECT_EQ(cached_pages(fs.path("a")), size / ps);
  EXPECT_TRUE(child.finish()) << "the mapping process read wrong bytes";

  auto usage = run({DUPCACHE_BINARY, "merge", fs.dir()});
  EXPECT_EQ(usage.status, 2);
  EXPECT_NE(usage.err.find("--pid PID"), std::string::npos) << usage.err;
  auto gone = run({DUPCACHE_BINARY, "merge", "--pid", "999999999", fs.dir()});
  EXPECT_EQ(gone.status, 1);
  EXPECT_NE(gone.err.find("no such process"), std::string::npos) << gone.err;
}

// The planner's "is a process holding this copy" (policy/in_use.hpp): by the copy's inode
// number first (no stat for a copy no process holds an inode of that number), then by its path,
// which must still lead to that inode on the held device.
TEST(InUse, HeldCopiesAreFoundByInodeThenPath) {
  char tmpl[] = "/var/tmp/dupcache-inuse-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string a = dir + "/a", b = dir + "/b";
  const std::string contents(3 * page_size(), 'x');
  for (const auto& p : {a, b}) std::ofstream(p, std::ios::binary) << contents;
  struct stat sa {}, sb {};
  ASSERT_EQ(stat(a.c_str(), &sa), 0);
  ASSERT_EQ(stat(b.c_str(), &sb), 0);
  scan_result scan(page_size());
  auto add = [&](const std::string& path, ino_t ino, const char* fs) {
    const copy_id c = scan.index.intern_copy({fs, 0, static_cast<std::uint64_t>(ino)});
    scan.files.resize(c + 1);
    scan.files[c] = {path, contents.size(), 0, dir};
    return c;
  };
  const copy_id held = add(a, sa.st_ino, "test");
  const copy_id not_held = add(b, sb.st_ino, "test");
  // a's inode number on another filesystem, whose path leads to b.
  const copy_id moved = add(b, sa.st_ino, "other");
  {
    mapping_child child(a, contents);  // another process: our own files are left out
    const auto in_use = policy::files_in_use::collect();
    EXPECT_TRUE(in_use.holds_copy(scan, held));
    EXPECT_FALSE(in_use.holds_copy(scan, not_held));
    EXPECT_FALSE(in_use.holds_copy(scan, moved));
    EXPECT_TRUE(child.finish());
  }
  EXPECT_FALSE(policy::files_in_use::collect().holds_copy(scan, held));
  for (const auto& p : {a, b}) unlink(p.c_str());
  rmdir(dir.c_str());
}

// A plan of more copies than the open-file limit: each copy acted on used to stay open until the
// end, so past the limit (1024 by default) every open failed and its keeper counted as gone.
TEST(Evict, MoreCopiesThanTheOpenFileLimitAllGo) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t ps = page_size();
  constexpr int sources = 90, copies_each = 3;  // 270 copies and 90 keepers, under a limit of 64
  for (int i = 0; i < sources; ++i) {
    const std::string a = fs.path("s" + std::to_string(i));
    write_file(a, 2 * ps, 100 + i);
    for (int k = 0; k < copies_each; ++k) reflink(a, fs.path("s" + std::to_string(i) + "c" + std::to_string(k)));
  }
  for (int i = 0; i < sources; ++i) {
    const std::string a = fs.path("s" + std::to_string(i));
    evict(a);
    read_all(a);
    for (int k = 0; k < copies_each; ++k) {
      const std::string c = a + "c" + std::to_string(k);
      evict(c);
      read_all(c);
    }
  }
  const std::uint64_t wasted = std::uint64_t{sources} * copies_each * 2 * ps;
  auto r = run({"/bin/sh", "-c", "ulimit -n 64 && exec \"$0\" \"$@\"", DUPCACHE_BINARY, "evict", "--json", fs.dir()});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["wasted_bytes_before"], wasted);
  EXPECT_EQ(j["freed_bytes"], wasted);
  EXPECT_EQ(j["wasted_bytes_after"], 0);
  EXPECT_EQ(j["actions"].size(), std::size_t{sources} * copies_each);
  for (const auto& a : j["actions"]) {
    EXPECT_FALSE(a.contains("error")) << a.dump();
    EXPECT_EQ(a["skipped_keeper_bytes"], 0) << a.dump();
  }
  // Exactly one copy of each source's two pages is left.
  std::uint64_t cached = 0;
  for (int i = 0; i < sources; ++i) {
    const std::string a = fs.path("s" + std::to_string(i));
    cached += cached_pages(a);
    for (int k = 0; k < copies_each; ++k) cached += cached_pages(a + "c" + std::to_string(k));
  }
  EXPECT_EQ(cached, std::uint64_t{sources} * 2);
}

// evict reads page charges only of the files whose pages a plan can name: those with cached
// pages of a shared extent. Theirs are the same as a full attribution reads; a file that
// shares nothing has none.
TEST(Evict, ChargesAreReadForSharedCopiesOnly) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t ps = page_size(), size = 64 * ps;
  write_file(fs.path("a"), size, 11);
  reflink(fs.path("a"), fs.path("b"));
  write_file(fs.path("solo"), size, 12);
  for (const char* n : {"a", "b", "solo"}) {
    evict(fs.path(n));
    read_all(fs.path(n));
  }
  scan_options so;
  so.paths = {fs.dir()};
  so.attribute = true;
  auto full = scan(so);
  so.attribute_shared_only = true;
  auto shared = scan(so);
  ASSERT_TRUE(full && shared);
  ASSERT_TRUE(full->attributed && shared->attributed) << full->attribution_error;
  auto pages_of = [](const std::vector<charge_run>& runs) {
    std::uint64_t n = 0;
    for (const auto& r : runs) n += r.pages;
    return n;
  };
  for (const char* n : {"a", "b", "solo"}) {
    struct stat st {};
    ASSERT_EQ(stat(fs.path(n).c_str(), &st), 0);
    auto copy_in = [&](const scan_result& r) -> std::optional<copy_id> {
      for (copy_id c = 0; c < r.files.size(); ++c) {
        if (r.index.key_of(c).ino == st.st_ino) return c;
      }
      return std::nullopt;
    };
    const auto cf = copy_in(*full), cs = copy_in(*shared);
    ASSERT_TRUE(cf && cs) << n;
    EXPECT_EQ(pages_of(full->charges[*cf]), size / ps) << n;
    if (std::string(n) == "solo") EXPECT_TRUE(shared->charges[*cs].empty());
    else EXPECT_EQ(shared->charges[*cs], full->charges[*cf]) << n;
  }
  EXPECT_EQ(shared->index.wasted_bytes(), size);
}

TEST(Evict, UsageAndInputErrors) {
  auto r = run({DUPCACHE_BINARY, "evict", "/nonexistent/dupcache-path"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("/nonexistent/dupcache-path"), std::string::npos) << r.err;
  r = run({DUPCACHE_BINARY, "evict", "--max-bytes", "lots"});
  EXPECT_EQ(r.status, 2);
}

}  // namespace
}  // namespace dupcache::testing

namespace dupcache::testing {
namespace {

std::string decode64(const nlohmann::json& j, const char* key) {
  auto raw = dupcache::base64_decode(j.value(std::string(key) + "_base64", std::string()));
  return raw ? *raw : std::string();
}

// Issue 15, 2: a directory whose name is not UTF-8 and whose planned copy is renamed between
// the plan and the action. The error text names the raw path; it used to reach dump() and
// abort (type_error 316).
TEST(Evict, NonUtf8NamesRenamedBetweenPlanAndActionStayValidJson) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 256 * KiB;
  const std::string dir = fs.path("f\xff");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  write_file(dir + "/a", size, 5);
  reflink(dir + "/a", dir + "/b\xfe");
  for (const char* n : {"/a", "/b\xfe"}) {
    evict(dir + n);  // synced: dirty pages are never counted as shared
    read_all(dir + n);
  }

  scan_options so;
  so.paths = {fs.dir()};
  so.keep_placements = true;  // what the planner needs
  auto scanned = scan(so);
  ASSERT_TRUE(scanned) << scanned.err().message();
  auto plans = policy::plan_evictions(*scanned, policy::keep_rule::hottest, [&](copy_id c) {
    policy::copy_facts f;
    f.heat = scanned->files[c].cached_bytes;
    return f;
  });
  ASSERT_EQ(plans.size(), 1u);
  ASSERT_EQ(rename(dir.c_str(), fs.path("g").c_str()), 0);
  policy::evictor ev(*scanned, false);
  const auto run = policy::run_plans(ev, plans);
  ASSERT_EQ(run.done.size(), 1u);
  EXPECT_FALSE(run.done[0].error.empty());
  const auto j = policy::outcome_json(run.done[0]);
  std::string text;
  ASSERT_NO_THROW(text = j.dump()) << "raw bytes reached the JSON document";
  const auto back = nlohmann::json::parse(text);
  EXPECT_EQ(decode64(back, "path"), scanned->files[plans[0].copy].path);
  EXPECT_NE(back["error"].get<std::string>().find("\\xff"), std::string::npos) << text;

  // The command: valid JSON, and the raw names recoverable from *_base64.
  ASSERT_EQ(rename(fs.path("g").c_str(), dir.c_str()), 0);
  read_all(dir + "/a");
  read_all(dir + "/b\xfe");
  auto r = dupcache::testing::run({DUPCACHE_BINARY, "evict", "--json", fs.dir()});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  ASSERT_EQ(doc["actions"].size(), 1u) << r.out;
  const std::set<std::string> names{decode64(doc["actions"][0], "path"), decode64(doc["actions"][0], "kept")};
  EXPECT_EQ(names, (std::set<std::string>{dir + "/a", dir + "/b\xfe"})) << r.out;
}

TEST(Merge, NonUtf8NamesStayValidJson) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 256 * KiB;
  const std::string dir = fs.path("f\xff");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  write_file(dir + "/a", size, 6);
  reflink(dir + "/a", dir + "/b\xfe");
  const std::string original = contents(dir + "/a");
  evict(dir + "/a");
  evict(dir + "/b\xfe");
  read_all(dir + "/a");
  mapping_child child(dir + "/b\xfe", original);
  auto r = dupcache::testing::run({DUPCACHE_BINARY, "merge", "--json", "--no-module", "--pid", std::to_string(child.pid()), fs.dir()});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["actions"].size(), 1u) << r.out;
  EXPECT_EQ(decode64(j["actions"][0], "path"), dir + "/b\xfe") << r.out;
  EXPECT_EQ(decode64(j["actions"][0], "kept"), dir + "/a") << r.out;
  EXPECT_TRUE(child.finish());
}

// Issue 15, 9: between plan and action an intermediate directory becomes a symlink to a tree
// holding a FIFO of the copy's name. The evictor must not open it: a writer blocked opening
// the FIFO would be released by any reader's open.
TEST(Evict, DoesNotFollowASymlinkSwappedInOnThePath) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 256 * KiB;
  ASSERT_EQ(mkdir(fs.path("d").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(fs.path("other").c_str(), 0755), 0);
  write_file(fs.path("d/x"), size, 7);
  reflink(fs.path("d/x"), fs.path("y"));
  for (const char* n : {"d/x", "y"}) {
    evict(fs.path(n));
    read_all(fs.path(n));
  }
  ASSERT_EQ(mkfifo(fs.path("other/x").c_str(), 0600), 0);

  scan_options so;
  so.paths = {fs.dir()};
  so.keep_placements = true;  // what the planner needs
  auto scanned = scan(so);
  ASSERT_TRUE(scanned) << scanned.err().message();
  auto plans = policy::plan_evictions(*scanned, policy::keep_rule::hottest, [&](copy_id c) {
    policy::copy_facts f;
    f.heat = scanned->files[c].path == fs.path("y") ? 100 : 1;  // y is kept, d/x is evicted
    return f;
  });
  ASSERT_EQ(plans.size(), 1u);
  ASSERT_EQ(scanned->files[plans[0].copy].path, fs.path("d/x"));
  ASSERT_EQ(rename(fs.path("d").c_str(), fs.path("d.old").c_str()), 0);
  ASSERT_EQ(symlink(fs.path("other").c_str(), fs.path("d").c_str()), 0);

  const pid_t writer = fork();
  ASSERT_GE(writer, 0);
  if (writer == 0) {
    const int fd = open((fs.path("other/x")).c_str(), O_WRONLY);  // blocks until a reader opens
    _exit(fd >= 0 ? 0 : 1);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  policy::evictor ev(*scanned, false);
  const auto run = policy::run_plans(ev, plans);
  ASSERT_EQ(run.done.size(), 1u);
  EXPECT_NE(run.done[0].error.find("symbolic link"), std::string::npos) << run.done[0].error;
  EXPECT_EQ(run.done[0].freed_bytes, 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int st = 0;
  const bool released = waitpid(writer, &st, WNOHANG) == writer;
  if (!released) {
    kill(writer, SIGKILL);
    waitpid(writer, &st, 0);
  }
  EXPECT_FALSE(released) << "the evictor opened the FIFO through the swapped-in symlink";
  EXPECT_EQ(cached_pages(fs.path("d.old/x")), size / page_size()) << "nothing may be evicted through the swap";
}

}  // namespace
}  // namespace dupcache::testing
