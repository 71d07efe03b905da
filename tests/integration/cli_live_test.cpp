// SPDX-License-Identifier: GPL-2.0-only
// dupcache top, trace and doctor as a user runs them.
//
// Every expected number comes from the scenario (N reflink copies of S bytes, read by the test);
// nothing is read back from the tool and then checked against itself. Each scenario starts from
// an evicted state and reads without readahead; cached_pages() checks the preconditions. Once
// read, a scene's files are pinned (mlock on a shared mapping) so that reclaim cannot change
// the scene under the tool (some hosts run DAMON pageout, which takes freshly read pages within
// seconds); a run that still finds its scene disturbed is repeated, never judged.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>

#include "fs_fixture.hpp"

namespace dupcache::testing {
namespace {

using nlohmann::json;
using clock_type = std::chrono::steady_clock;

std::uint64_t ps() { return page_size(); }

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::vector<std::string> tokens(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string t; in >> t;) out.push_back(t);
  return out;
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool contains(const std::string& s, const std::string& p) { return s.find(p) != std::string::npos; }

// Terminal columns of a line: UTF-8 code points (all of top's own text is ASCII).
std::size_t columns_of(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

std::string join_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// Keeps a file's cached pages in memory: a locked shared mapping puts them on the unevictable
// list, which reclaim (memory pressure, DAMON pageout as some hosts run it) leaves alone. Taken
// after the file was read, it inserts nothing: the pages are already cached.
class pin {
 public:
  explicit pin(const std::string& path) {
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("open " + path);
    struct stat st {};
    fstat(fd_, &st);
    len_ = static_cast<std::size_t>(st.st_size);
    if (len_ == 0) return;
    addr_ = mmap(nullptr, len_, PROT_READ, MAP_SHARED, fd_, 0);
    if (addr_ == MAP_FAILED) {
      addr_ = nullptr;
      throw std::runtime_error("mmap " + path);
    }
    if (mlock(addr_, len_) < 0) throw std::runtime_error("mlock " + path + ": " + std::strerror(errno));
  }
  ~pin() {
    if (addr_) {
      munlock(addr_, len_);
      munmap(addr_, len_);
    }
    if (fd_ >= 0) close(fd_);
  }
  pin(const pin&) = delete;
  pin& operator=(const pin&) = delete;

 private:
  int fd_ = -1;
  void* addr_ = nullptr;
  std::size_t len_ = 0;
};

// What a scenario set up: files read fully into the cache, as the test itself sees them
// (mincore), pinned there (see pin). Should pages go anyway, the expected numbers no longer
// apply: the run is repeated after re-reading the missing pages (only those).
class scene {
 public:
  // Tracks a file that the scenario has read fully, and pins it.
  void add(const std::string& path) {
    pages_[path] = (file_size(path) + ps() - 1) / ps();
    hold(path);
  }
  // Tracks a file without pinning it (it is read later).
  void track(const std::string& path) { pages_[path] = (file_size(path) + ps() - 1) / ps(); }
  void hold(const std::string& path) { pins_.push_back(std::make_unique<pin>(path)); }
  // Unpins everything (before evicting).
  void release() { pins_.clear(); }
  bool intact() const {
    for (const auto& [p, n] : pages_) {
      if (cached_pages(p) != n) return false;
    }
    return true;
  }
  void restore() const {
    for (const auto& [p, n] : pages_) {
      if (cached_pages(p) != n) read_all(p);
    }
  }
  std::string describe() const {
    std::string s = "scene residency (pages cached/expected):";
    for (const auto& [p, n] : pages_) s += " " + p + "=" + std::to_string(cached_pages(p)) + "/" + std::to_string(n);
    return s;
  }

 private:
  static std::uint64_t file_size(const std::string& p) {
    struct stat st {};
    if (stat(p.c_str(), &st) < 0) throw std::runtime_error("stat " + p);
    return static_cast<std::uint64_t>(st.st_size);
  }
  std::map<std::string, std::uint64_t> pages_;
  std::vector<std::unique_ptr<pin>> pins_;
};

constexpr int max_attempts = 3;

// Runs argv on an intact scene; repeats the run when the scene was disturbed meanwhile.
command_result run_on(const scene& sc, const std::vector<std::string>& argv, int timeout_s = 60) {
  for (int attempt = 1;; ++attempt) {
    sc.restore();
    if (!sc.intact()) throw std::runtime_error("cannot set up the scene: " + sc.describe());
    auto r = run(argv, timeout_s);
    if (sc.intact()) return r;
    if (attempt == max_attempts) {
      ADD_FAILURE() << "pages of the scene were evicted by something else during each of " << max_attempts
                    << " runs of " << join_argv(argv) << "; " << sc.describe();
      return r;
    }
    std::fprintf(stderr, "note: scene disturbed during %s (%s); running again\n", join_argv(argv).c_str(),
                 sc.describe().c_str());
  }
}

// A command in the background whose output is read as it arrives.
class background {
 public:
  explicit background(std::vector<std::string> argv) : argv_(std::move(argv)) {
    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      dup2(out_pipe[1], 1);
      dup2(err_pipe[1], 2);
      int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0) dup2(devnull, 0);
      std::vector<char*> args;
      for (const auto& a : argv_) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    fds_[0] = out_pipe[0];
    fds_[1] = err_pipe[0];
  }
  ~background() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
  }
  background(const background&) = delete;
  background& operator=(const background&) = delete;

  // Reads what is there, waiting at most ms for something. False once both pipes closed.
  bool pump(int ms) {
    pollfd p[2] = {{fds_[0], POLLIN, 0}, {fds_[1], POLLIN, 0}};
    if (fds_[0] < 0 && fds_[1] < 0) return false;
    if (poll(p, 2, ms) <= 0) return true;
    for (int i = 0; i < 2; ++i) {
      if (fds_[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      const ssize_t n = read(fds_[i], buf, sizeof buf);
      if (n <= 0) {
        close(fds_[i]);
        fds_[i] = -1;
      } else {
        (i == 0 ? out_ : err_).append(buf, static_cast<std::size_t>(n));
      }
    }
    return true;
  }
  // Reads everything already written, without waiting.
  void drain() {
    for (;;) {
      const std::size_t had = out_.size() + err_.size();
      pump(0);
      if (out_.size() + err_.size() == had) return;
    }
  }
  // Pumps until pred() holds or the timeout passes; returns pred().
  bool wait_for(const std::function<bool()>& pred, double timeout_s) {
    const auto deadline = clock_type::now() + std::chrono::duration<double>(timeout_s);
    while (!pred() && clock_type::now() < deadline) {
      if (!pump(50)) {
        // Both pipes closed: nothing more will arrive.
        return pred();
      }
    }
    return pred();
  }
  // Complete stdout lines so far.
  std::vector<std::string> out_lines() const {
    std::vector<std::string> v;
    std::size_t start = 0;
    for (std::size_t nl; (nl = out_.find('\n', start)) != std::string::npos; start = nl + 1) {
      v.push_back(out_.substr(start, nl - start));
    }
    return v;
  }
  // Waits for the exit (reading output meanwhile); kills it after timeout_s. Exit status or -1.
  int finish(double timeout_s) {
    const auto deadline = clock_type::now() + std::chrono::duration<double>(timeout_s);
    while (clock_type::now() < deadline && pump(50)) {
    }
    int status = 0;
    bool killed = false;
    for (;;) {
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (clock_type::now() >= deadline) {
        kill(pid_, SIGKILL);
        killed = true;
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    reaped_ = true;
    // The pipes close with the process; read what is left.
    const auto drain_deadline = clock_type::now() + std::chrono::seconds(2);
    while (clock_type::now() < drain_deadline && pump(50)) {
    }
    return (!killed && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }
  std::string command() const { return join_argv(argv_); }

 private:
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  int fds_[2] = {-1, -1};
  bool reaped_ = false;
  std::string out_, err_;
};

std::vector<json> parse_json_lines(const std::string& out) {
  std::vector<json> docs;
  for (const auto& l : split_lines(out)) {
    if (l.empty()) continue;
    try {
      docs.push_back(json::parse(l));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a JSON document: " << e.what() << "\n" << l;
    }
  }
  return docs;
}

const json* file_of(const json& doc, const std::string& path) {
  for (const auto& f : doc.at("files")) {
    if (f.at("path") == path) return &f;
  }
  return nullptr;
}

std::uint64_t u64(const json& j) { return j.get<std::uint64_t>(); }

// n reflink copies of `size` bytes, named names[0..], every one read fully from nothing cached.
void copies_all_read(const scratch_fs& fs, const std::vector<std::string>& names, std::uint64_t size,
                     std::uint32_t seed) {
  write_file(fs.path(names[0]), size, seed);
  for (std::size_t i = 1; i < names.size(); ++i) reflink(fs.path(names[0]), fs.path(names[i]));
  for (const auto& n : names) evict(fs.path(n));
  for (const auto& n : names) read_all(fs.path(n));
}

void check_static_scene_totals(const json& last, const scratch_fs& fs, const std::vector<std::string>& names,
                               std::uint64_t size) {
  const std::uint64_t n = names.size();
  EXPECT_EQ(last.at("schema"), 1);
  EXPECT_EQ(u64(last.at("page_size")), ps());
  EXPECT_EQ(u64(last["totals"]["wasted_bytes"]), (n - 1) * size);
  EXPECT_EQ(u64(last["totals"]["cached_bytes"]), n * size);
  EXPECT_EQ(u64(last["totals"]["files_cached"]), n);
  EXPECT_EQ(u64(last["totals"]["files_scanned"]), n);
  std::uint64_t parts = 0;
  for (const auto& name : names) {
    const json* f = file_of(last, fs.path(name));
    ASSERT_NE(f, nullptr) << "no entry with the absolute path " << fs.path(name);
    EXPECT_EQ(u64((*f)["cached_bytes"]), size) << name;
    EXPECT_EQ(u64((*f)["shared_cached_bytes"]), size) << name;
    parts += u64((*f)["wasted_bytes"]);
  }
  EXPECT_EQ(parts, (n - 1) * size) << "the split of the waste among copies must add up to the total";
  EXPECT_TRUE(last.contains("groups"));
  EXPECT_TRUE(last.contains("filesystems"));
  EXPECT_TRUE(last.contains("containers"));
  ASSERT_TRUE(last.contains("errors"));
  EXPECT_TRUE(last["errors"].empty()) << last["errors"].dump();
  for (const char* k : {"insert_bytes_per_s", "duplicate_insert_bytes_per_s", "evict_bytes_per_s"}) {
    EXPECT_TRUE(last["rates"].contains(k)) << k;
  }
  EXPECT_TRUE(last.contains("page_cache_bytes"));
  EXPECT_TRUE(last.contains("events"));
}

// ---------------------------------------------------------------------------------------------
// top --json

TEST(TopJson, StaticScene) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 4 * MiB;
  const std::vector<std::string> names{"a", "b", "c"};
  copies_all_read(fs, names, size, 11);
  scene sc;
  for (const auto& n : names) {
    ASSERT_EQ(cached_pages(fs.path(n)), size / ps()) << n;
    sc.add(fs.path(n));
  }

  const std::vector<std::string> argv{DUPCACHE_BINARY, "top", "--json", "-n", "2", "-d", "0.5", fs.dir()};
  auto r = run_on(sc, argv);
  ASSERT_EQ(r.status, 0) << join_argv(argv) << "\n" << r.err;
  const auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << "one JSON document per line per interval:\n" << r.out;
  const auto docs = parse_json_lines(r.out);
  ASSERT_EQ(docs.size(), 2u);

  for (std::size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(u64(docs[i].at("iteration")), i + 1);
    const double iv = docs[i].at("interval_s").get<double>();
    EXPECT_GE(iv, 0.3) << "iteration " << i + 1;
    EXPECT_LE(iv, 3.0) << "iteration " << i + 1;
  }
  const json& last = docs.back();
  check_static_scene_totals(last, fs, names, size);
  const std::string mode = last.at("mode").get<std::string>();
  EXPECT_TRUE(starts_with(mode, "live")) << mode;
  EXPECT_EQ(u64(last.at("lost_events")), 0u);
  ASSERT_EQ(last["groups"].size(), 1u) << last["groups"].dump();
  EXPECT_EQ(u64(last["groups"][0]["copies"]), names.size());
  EXPECT_EQ(u64(last["groups"][0]["bytes_per_copy"]), size);

  // Paths in top are absolute, also when the PATH argument is relative.
  const std::string parent = fs.dir().substr(0, fs.dir().rfind('/'));
  const std::string rel = fs.dir().substr(fs.dir().rfind('/') + 1);
  auto rr = run_on(sc, {"env", "-C", parent, DUPCACHE_BINARY, "top", "--json", "-n", "1", "-d", "0.5", rel});
  ASSERT_EQ(rr.status, 0) << rr.err;
  const auto rdocs = parse_json_lines(rr.out);
  ASSERT_EQ(rdocs.size(), 1u) << rr.out;
  for (const auto& name : names) EXPECT_NE(file_of(rdocs[0], fs.path(name)), nullptr) << name << "\n" << rr.out;
  EXPECT_EQ(u64(rdocs[0]["totals"]["wasted_bytes"]), (names.size() - 1) * size);
}

TEST(TopJson, SeesReadsAsTheyHappen) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 4 * MiB;
  const std::string a = fs.path("a"), b = fs.path("b");
  write_file(a, size, 12);
  reflink(a, b);
  scene sc;
  sc.track(a);
  sc.track(b);

  std::string out;
  for (int attempt = 1;; ++attempt) {
    sc.release();
    evict(a);
    evict(b);
    read_all(a);
    sc.hold(a);
    ASSERT_EQ(cached_pages(a), size / ps());
    ASSERT_EQ(cached_pages(b), 0u);

    background top({DUPCACHE_BINARY, "top", "--json", "-d", "1", "-n", "4", fs.dir()});
    // The first document means the tracer is attached and the index seeded.
    ASSERT_TRUE(top.wait_for([&] { return !top.out_lines().empty(); }, 20))
        << top.command() << " printed no document\nstderr: " << top.err();
    const auto read_start = clock_type::now();
    read_all(b);
    const double read_s = std::chrono::duration<double>(clock_type::now() - read_start).count();
    sc.hold(b);
    ASSERT_EQ(cached_pages(b), size / ps());
    top.drain();
    const std::size_t docs_when_read_done = top.out_lines().size();
    const int status = top.finish(30);
    ASSERT_EQ(status, 0) << top.command() << "\n" << top.err();
    // The read must end well before the last interval, or the final document cannot show it.
    ASSERT_LE(docs_when_read_done, 2u) << "reading " << size << " bytes took " << read_s
                                       << " s: too slow for this scenario to mean anything";
    out = top.out();
    if (sc.intact()) break;
    ASSERT_LT(attempt, max_attempts) << "pages of the scene were evicted by something else during each run; "
                                     << sc.describe();
    std::fprintf(stderr, "note: scene disturbed (%s); running again\n", sc.describe().c_str());
  }

  const auto docs = parse_json_lines(out);
  ASSERT_EQ(docs.size(), 4u) << out;
  // Before the read: only a was cached, nothing wasted.
  EXPECT_EQ(u64(docs[0]["totals"]["wasted_bytes"]), 0u);
  EXPECT_EQ(u64(docs[0]["totals"]["cached_bytes"]), size);
  // After: b's copy of every block a held is waste.
  const json& last = docs.back();
  EXPECT_EQ(u64(last["totals"]["wasted_bytes"]), size);
  EXPECT_EQ(u64(last["totals"]["cached_bytes"]), 2 * size);
  EXPECT_EQ(u64(last["totals"]["files_cached"]), 2u);
  EXPECT_TRUE(starts_with(last.at("mode").get<std::string>(), "live")) << last.at("mode");
  EXPECT_EQ(u64(last.at("lost_events")), 0u);

  double dup_bytes = 0, insert_bytes = 0;
  bool some_interval_saw_it = false;
  for (const auto& d : docs) {
    const double iv = d.at("interval_s").get<double>();
    const double dup = d["rates"]["duplicate_insert_bytes_per_s"].get<double>();
    some_interval_saw_it = some_interval_saw_it || dup > 0;
    dup_bytes += dup * iv;
    insert_bytes += d["rates"]["insert_bytes_per_s"].get<double>() * iv;
  }
  EXPECT_TRUE(some_interval_saw_it) << "no interval showed duplicate insertions";
  // Every page of b was inserted while a held the same block: exactly `size` duplicate bytes.
  EXPECT_NEAR(dup_bytes, static_cast<double>(size), 0.05 * static_cast<double>(size));
  EXPECT_NEAR(insert_bytes, static_cast<double>(size), 0.05 * static_cast<double>(size));
}

TEST(TopJson, WithoutBpf) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 4 * MiB;
  const std::vector<std::string> names{"a", "b", "c"};
  copies_all_read(fs, names, size, 13);
  scene sc;
  for (const auto& n : names) {
    ASSERT_EQ(cached_pages(fs.path(n)), size / ps()) << n;
    sc.add(fs.path(n));
  }

  const std::vector<std::string> argv{DUPCACHE_BINARY, "top", "--json", "--no-bpf", "-n", "2", "-d", "0.5", fs.dir()};
  auto r = run_on(sc, argv);
  ASSERT_EQ(r.status, 0) << join_argv(argv) << "\n" << r.err;
  const auto docs = parse_json_lines(r.out);
  ASSERT_EQ(docs.size(), 2u) << r.out;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(u64(docs[i].at("iteration")), i + 1);
    const std::string mode = docs[i].at("mode").get<std::string>();
    EXPECT_TRUE(starts_with(mode, "rescan")) << mode;
  }
  check_static_scene_totals(docs.back(), fs, names, size);
}

// ---------------------------------------------------------------------------------------------
// top -b

struct batch_output {
  std::vector<std::string> header;  // up to the blank line
  std::string titles;
  std::vector<std::string> rows;
  std::vector<std::string> all;
};

batch_output parse_batch(const std::string& out) {
  batch_output b;
  b.all = split_lines(out);
  std::size_t i = 0;
  for (; i < b.all.size() && !b.all[i].empty(); ++i) b.header.push_back(b.all[i]);
  for (; i < b.all.size() && b.all[i].empty(); ++i) {
  }
  if (i < b.all.size()) b.titles = b.all[i++];
  for (; i < b.all.size() && !b.all[i].empty(); ++i) b.rows.push_back(b.all[i]);
  return b;
}

// Runs top in batch mode with COLUMNS unset, as from a pipe.
command_result top_batch(const scene& sc, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"env", "-u", "COLUMNS", DUPCACHE_BINARY, "top", "-b", "-n", "1", "-d", "0.5"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_on(sc, argv);
}

void expect_fits_80(const std::vector<std::string>& lines, const std::string& what) {
  for (const auto& l : lines) EXPECT_LE(columns_of(l), 80u) << what << ": line wider than 80 columns:\n" << l;
}

std::string row_path(const std::string& row, std::size_t numeric_columns) {
  auto t = tokens(row);
  std::string p;
  for (std::size_t i = numeric_columns; i < t.size(); ++i) p += (p.empty() ? "" : " ") + t[i];
  return p;
}

TEST(TopBatch, Text) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 4 * MiB, solo_size = 1 * MiB;
  // Two copies b, c and an unshared file a: the wasted order (b, c, a) is neither path order.
  copies_all_read(fs, {"b", "c"}, size, 14);
  write_file(fs.path("a"), solo_size, 15);
  evict(fs.path("a"));
  read_all(fs.path("a"));
  ASSERT_EQ(cached_pages(fs.path("a")), solo_size / ps());
  ASSERT_EQ(cached_pages(fs.path("b")), size / ps());
  ASSERT_EQ(cached_pages(fs.path("c")), size / ps());
  scene sc;
  for (const auto& n : {"a", "b", "c"}) sc.add(fs.path(n));
  const std::uint64_t wasted = size, cached = 2 * size + solo_size;

  {
    auto r = top_batch(sc, {"--bytes", fs.dir()});
    ASSERT_EQ(r.status, 0) << r.err;
    auto b = parse_batch(r.out);
    expect_fits_80(b.all, "top -b --bytes");
    ASSERT_GE(b.header.size(), 4u) << r.out;
    EXPECT_TRUE(starts_with(b.header[0], "dupcache top - ")) << r.out;
    const auto pc = std::find_if(b.header.begin(), b.header.end(), [](auto& l) { return starts_with(l, "page cache "); });
    ASSERT_NE(pc, b.header.end()) << r.out;
    const auto t = tokens(*pc);
    const auto w = std::find(t.begin(), t.end(), "wasted");
    ASSERT_TRUE(w != t.end() && w + 1 != t.end()) << *pc;
    EXPECT_EQ(*(w + 1), std::to_string(wasted)) << *pc;
    EXPECT_NE(std::find(t.begin(), t.end(), std::to_string(cached)), t.end())
        << "watched cached bytes " << cached << " not in: " << *pc;
    EXPECT_TRUE(std::any_of(b.header.begin(), b.header.end(), [](auto& l) { return starts_with(l, "insert "); }))
        << r.out;
    EXPECT_TRUE(std::any_of(b.header.begin(), b.header.end(), [](auto& l) { return starts_with(l, "files scanned "); }))
        << r.out;
    EXPECT_EQ(tokens(b.titles), (std::vector<std::string>{"WASTED", "SHARED", "CACHED", "PATH"})) << b.titles;

    // Each file's row, with its exact numbers: the group's waste is split evenly between b and c.
    std::map<std::string, std::vector<std::string>> by_path;
    for (const auto& row : b.rows) by_path[row_path(row, 3)] = tokens(row);
    ASSERT_EQ(by_path.size(), 3u) << r.out;
    using sv = std::vector<std::string>;
    auto s = [](std::uint64_t v) { return std::to_string(v); };
    EXPECT_EQ(by_path[fs.path("a")], (sv{"0", "0", s(solo_size), fs.path("a")})) << r.out;
    EXPECT_EQ(by_path[fs.path("b")], (sv{s(size / 2), s(size), s(size), fs.path("b")})) << r.out;
    EXPECT_EQ(by_path[fs.path("c")], (sv{s(size / 2), s(size), s(size), fs.path("c")})) << r.out;
    // Default order: wasted, descending.
    ASSERT_EQ(b.rows.size(), 3u);
    EXPECT_EQ(row_path(b.rows[2], 3), fs.path("a")) << r.out;
  }
  {
    auto r = top_batch(sc, {"--bytes", "--view", "groups", fs.dir()});
    ASSERT_EQ(r.status, 0) << r.err;
    auto b = parse_batch(r.out);
    expect_fits_80(b.all, "top -b --view groups");
    EXPECT_TRUE(contains(b.titles, "COPIES")) << r.out;
    ASSERT_EQ(b.rows.size(), 1u) << r.out;
    const auto t = tokens(b.rows[0]);
    ASSERT_GE(t.size(), 4u) << b.rows[0];
    EXPECT_EQ(t[0], "2");
    EXPECT_EQ(t[1], std::to_string(size));
    EXPECT_EQ(t[2], std::to_string(wasted));
  }
  {
    auto r = top_batch(sc, {"--sort", "path", fs.dir()});
    ASSERT_EQ(r.status, 0) << r.err;
    auto b = parse_batch(r.out);
    expect_fits_80(b.all, "top -b --sort path");
    std::vector<std::string> order;
    for (const auto& row : b.rows) {
      for (const auto& n : {"a", "b", "c"}) {
        if (row.size() >= fs.path(n).size() && row.ends_with(fs.path(n))) order.push_back(n);
      }
    }
    ASSERT_EQ(order.size(), 3u) << r.out;
    const bool ascending = order == std::vector<std::string>{"a", "b", "c"};
    const bool descending = order == std::vector<std::string>{"c", "b", "a"};
    EXPECT_TRUE(ascending || descending) << "rows not ordered by path:\n" << r.out;
  }
  {
    auto r = top_batch(sc, {"--sort", "nope", fs.dir()});
    EXPECT_EQ(r.status, 2) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "nope")) << "the message must name the column: " << r.err;
  }

  // A path longer than the line: cut from the left, the line still fits.
  const std::string long_name = std::string(120, 'L') + "-tail";
  reflink(fs.path("b"), fs.path(long_name));
  evict(fs.path(long_name));
  read_all(fs.path(long_name));
  ASSERT_EQ(cached_pages(fs.path(long_name)), size / ps());
  sc.add(fs.path(long_name));
  for (const auto& args : std::vector<std::vector<std::string>>{{"--bytes", fs.dir()},
                                                                {fs.dir()},
                                                                {"--view", "groups", "--bytes", fs.dir()},
                                                                {"--view", "fs", "--bytes", fs.dir()}}) {
    auto r = top_batch(sc, args);
    ASSERT_EQ(r.status, 0) << r.err;
    expect_fits_80(split_lines(r.out), "top -b " + join_argv(args));
  }
  {
    auto r = top_batch(sc, {"--bytes", fs.dir()});
    auto b = parse_batch(r.out);
    EXPECT_TRUE(std::any_of(b.rows.begin(), b.rows.end(),
                            [](auto& row) { return contains(row, "...") && row.ends_with("LLLL-tail"); }))
        << "the long path's row should show its end, cut from the left:\n" << r.out;
  }
}

// ---------------------------------------------------------------------------------------------
// top in a terminal (tmux)

class tmux_session {
 public:
  tmux_session() {
    static std::atomic<int> counter{0};
    socket_ = "dupcache-cli-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  }
  ~tmux_session() { run({"tmux", "-L", socket_, "kill-server"}, 10); }
  tmux_session(const tmux_session&) = delete;
  tmux_session& operator=(const tmux_session&) = delete;

  command_result tmux(std::vector<std::string> args) const {
    std::vector<std::string> argv{"tmux", "-L", socket_, "-f", "/dev/null"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, 10);
  }
  command_result start(const std::string& shell_command) const {
    return tmux({"new-session", "-d", "-s", name_, "-x", "80", "-y", "24", shell_command});
  }
  std::vector<std::string> capture() const {
    auto r = tmux({"capture-pane", "-p", "-t", name_});
    return r.status == 0 ? split_lines(r.out) : std::vector<std::string>{};
  }
  void keys(const std::string& key) const { tmux({"send-keys", "-t", name_, key}); }
  void literal(const std::string& text) const { tmux({"send-keys", "-t", name_, "-l", text}); }
  bool alive() const { return tmux({"has-session", "-t", name_}).status == 0; }
  // Polls the pane until pred holds; returns the last capture.
  std::vector<std::string> wait_screen(const std::function<bool(const std::vector<std::string>&)>& pred,
                                       double timeout_s, bool* ok) const {
    const auto deadline = clock_type::now() + std::chrono::duration<double>(timeout_s);
    std::vector<std::string> screen;
    for (;;) {
      screen = capture();
      if (pred(screen)) {
        *ok = true;
        return screen;
      }
      if (clock_type::now() >= deadline) {
        *ok = false;
        return screen;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

 private:
  std::string socket_;
  std::string name_ = "top";
};

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string joined(const std::vector<std::string>& screen) {
  std::string s;
  for (const auto& l : screen) s += l + "\n";
  return s;
}

// The column title line (the first line after the header that names the last column).
std::string title_line(const std::vector<std::string>& screen) {
  for (const auto& l : screen) {
    if (contains(l, "PATH") || contains(l, "FILES") || contains(l, "FILESYSTEM") || contains(l, "CONTAINER")) {
      if (!starts_with(l, "files scanned")) return l;
    }
  }
  return "";
}

// Rows: lines below the title line that name a path under dir.
std::vector<std::string> screen_rows(const std::vector<std::string>& screen, const std::string& dir) {
  std::vector<std::string> rows;
  bool after_title = false;
  for (const auto& l : screen) {
    if (!after_title) {
      after_title = !title_line({l}).empty() && !starts_with(l, "files scanned");
      continue;
    }
    if (contains(l, dir)) rows.push_back(l);
  }
  return rows;
}

TEST(TopCurses, KeysInTmux) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "tmux");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 4 * MiB, solo_size = 1 * MiB;
  copies_all_read(fs, {"copy-a", "copy-b"}, size, 16);
  write_file(fs.path("solo"), solo_size, 17);
  evict(fs.path("solo"));
  read_all(fs.path("solo"));
  ASSERT_EQ(cached_pages(fs.path("copy-a")), size / ps());
  ASSERT_EQ(cached_pages(fs.path("copy-b")), size / ps());
  ASSERT_EQ(cached_pages(fs.path("solo")), solo_size / ps());
  scene sc;
  for (const auto& n : {"copy-a", "copy-b", "solo"}) sc.add(fs.path(n));
  auto scene_now = [&] { return "\n" + sc.describe(); };
  tmux_session t;
  // Waits for a screen whose numbers depend on the scene; if the scene was disturbed meanwhile,
  // restores it (the live view must follow) and waits again.
  auto wait_exact = [&](const std::function<bool(const std::vector<std::string>&)>& pred, bool* done) {
    std::vector<std::string> scr;
    for (int attempt = 1; attempt <= max_attempts; ++attempt) {
      scr = t.wait_screen(pred, 5, done);
      if (*done || sc.intact()) break;
      std::fprintf(stderr, "note: scene disturbed (%s); restoring it\n", sc.describe().c_str());
      sc.restore();
    }
    return scr;
  };

  const std::string status_file = "/tmp/dupcache-cli-test-top-status-" + std::to_string(getpid());
  struct unlink_guard {
    std::string p;
    ~unlink_guard() { unlink(p.c_str()); }
  } remove_status{status_file};
  unlink(status_file.c_str());
  const std::string cmd = shell_quote(DUPCACHE_BINARY) + " top -d 0.5 " + shell_quote(fs.dir()) + "; echo $? > " +
                          shell_quote(status_file);
  auto st = t.start("sh -c " + shell_quote(cmd));
  ASSERT_EQ(st.status, 0) << st.err;

  bool ok = false;
  const auto& dir = fs.dir();
  auto screen = t.wait_screen(
      [&](const auto& s) {
        return !s.empty() && starts_with(s[0], "dupcache top - ") && screen_rows(s, dir).size() == 3;
      },
      20, &ok);
  ASSERT_TRUE(ok) << "top did not draw its header and three rows:\n" << joined(screen) << scene_now();
  auto check_width = [](const std::vector<std::string>& s) {
    for (const auto& l : s) EXPECT_LE(columns_of(l), 80u) << l;
  };
  check_width(screen);
  EXPECT_TRUE(contains(title_line(screen), "WASTEDv")) << joined(screen);

  // > : next column (SHARED), still descending: solo (nothing shared) comes last.
  t.keys(">");
  screen = t.wait_screen([](const auto& s) { return contains(title_line(s), "SHAREDv"); }, 5, &ok);
  ASSERT_TRUE(ok) << "'>' did not move the sort to SHARED:\n" << joined(screen);
  EXPECT_FALSE(contains(title_line(screen), "WASTEDv")) << joined(screen);
  {
    auto rows = screen_rows(screen, dir);
    ASSERT_EQ(rows.size(), 3u) << joined(screen);
    EXPECT_TRUE(rows[2].ends_with("/solo")) << joined(screen);
  }

  // r : ascending: solo first.
  t.keys("r");
  screen = t.wait_screen([](const auto& s) { return contains(title_line(s), "SHARED^"); }, 5, &ok);
  ASSERT_TRUE(ok) << "'r' did not reverse the order:\n" << joined(screen);
  {
    auto rows = screen_rows(screen, dir);
    ASSERT_EQ(rows.size(), 3u) << joined(screen);
    EXPECT_TRUE(rows[0].ends_with("/solo")) << joined(screen);
  }
  check_width(screen);

  // / solo Enter : only the matching row, and the filter is shown.
  t.keys("/");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  t.literal("solo");
  t.keys("Enter");
  screen = t.wait_screen(
      [&](const auto& s) { return contains(joined(s), "filter: solo") && screen_rows(s, dir).size() == 1; }, 5, &ok);
  ASSERT_TRUE(ok) << "the filter did not leave exactly the matching row:\n" << joined(screen);
  EXPECT_TRUE(screen_rows(screen, dir)[0].ends_with(fs.path("solo"))) << joined(screen);
  check_width(screen);

  // / Enter : an empty filter shows everything again.
  t.keys("/");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  t.keys("Enter");
  screen = t.wait_screen(
      [&](const auto& s) { return !contains(joined(s), "filter: solo") && screen_rows(s, dir).size() == 3; }, 5, &ok);
  ASSERT_TRUE(ok) << "clearing the filter did not bring the rows back:\n" << joined(screen);

  // g : groups view, one group of two copies; b : exact bytes.
  t.keys("g");
  screen = t.wait_screen([](const auto& s) { return contains(title_line(s), "COPIES"); }, 5, &ok);
  ASSERT_TRUE(ok) << "'g' did not show the groups view:\n" << joined(screen);
  EXPECT_TRUE(contains(title_line(screen), "WASTEDv")) << joined(screen);
  t.keys("b");
  screen = wait_exact(
      [&](const auto& s) {
        auto rows = screen_rows(s, dir);
        return rows.size() == 1 && contains(rows[0], std::to_string(size));
      },
      &ok);
  ASSERT_TRUE(ok) << "groups view with exact bytes: expected one group of " << size << " bytes per copy:\n"
                  << joined(screen) << scene_now();
  {
    const auto tk = tokens(screen_rows(screen, dir)[0]);
    ASSERT_GE(tk.size(), 4u);
    EXPECT_EQ(tk[0], "2") << joined(screen);
    EXPECT_EQ(tk[1], std::to_string(size)) << joined(screen);
    EXPECT_EQ(tk[2], std::to_string(size)) << "wasted of the group" << joined(screen);
  }
  check_width(screen);

  // s : filesystems view.
  t.keys("s");
  screen = t.wait_screen([](const auto& s) { return contains(title_line(s), "FILESYSTEM"); }, 5, &ok);
  ASSERT_TRUE(ok) << "'s' did not show the filesystems view:\n" << joined(screen);
  // One btrfs filesystem: wasted one copy, cached two copies and solo, three files (exact bytes).
  const std::vector<std::string> want_fs{std::to_string(size), std::to_string(2 * size + solo_size), "3", "btrfs"};
  auto fs_row = [&](const std::vector<std::string>& s) {
    for (const auto& l : s) {
      const auto tk = tokens(l);
      if (tk.size() >= 5 && tk[3] == "btrfs") return std::vector<std::string>(tk.begin(), tk.begin() + 4);
    }
    return std::vector<std::string>{};
  };
  screen = wait_exact([&](const auto& s) { return fs_row(s) == want_fs; }, &ok);
  EXPECT_TRUE(ok) << "expected a btrfs row: wasted " << want_fs[0] << ", cached " << want_fs[1] << ", 3 files:\n"
                  << joined(screen) << scene_now();
  check_width(screen);

  // c : containers view. This test's own reads are charged to its cgroup, which is the host's:
  // one row paying the whole waste.
  t.keys("c");
  screen = t.wait_screen([](const auto& s) { return contains(title_line(s), "CONTAINER"); }, 5, &ok);
  ASSERT_TRUE(ok) << "'c' did not show the containers view:\n" << joined(screen);
  const std::vector<std::string> want_c{std::to_string(size), std::to_string(2 * size),
                                        std::to_string(2 * size + solo_size), "host"};
  auto host_row = [&](const std::vector<std::string>& s) {
    for (const auto& l : s) {
      const auto tk = tokens(l);
      if (tk.size() >= 5 && tk[3] == "host") return std::vector<std::string>(tk.begin(), tk.begin() + 4);
    }
    return std::vector<std::string>{};
  };
  screen = wait_exact([&](const auto& s) { return host_row(s) == want_c; }, &ok);
  EXPECT_TRUE(ok) << "expected a host row: wasted " << want_c[0] << ", shared " << want_c[1] << ", cached "
                  << want_c[2] << ":\n"
                  << joined(screen) << scene_now();
  check_width(screen);

  // q : the program exits, with status 0.
  t.keys("q");
  const auto deadline = clock_type::now() + std::chrono::seconds(5);
  while (t.alive() && clock_type::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(t.alive()) << "top still running 5 s after q:\n" << joined(t.capture());
  std::ifstream in(status_file);
  std::string exit_status;
  in >> exit_status;
  EXPECT_EQ(exit_status, "0") << "exit status of top after q";
}

// ---------------------------------------------------------------------------------------------
// trace

// major:minor of the filesystem mounted at dir, as mountinfo shows it (the superblock's s_dev,
// which on btrfs differs from stat()'s per-subvolume st_dev).
std::string mountinfo_dev(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string found;
  for (std::string line; std::getline(in, line);) {
    const auto t = tokens(line);
    if (t.size() > 4 && t[4] == dir) found = t[2];  // the last mount on dir is the visible one
  }
  return found;
}

TEST(Trace, JsonLines) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::string f = fs.path("f");
  write_file(f, 1 * MiB, 18);
  evict(f);
  ASSERT_EQ(cached_pages(f), 0u);
  struct stat sb {};
  ASSERT_EQ(stat(f.c_str(), &sb), 0);

  const std::string dev = mountinfo_dev(fs.dir());
  ASSERT_FALSE(dev.empty()) << fs.dir() << " not in mountinfo";
  constexpr int pages = 8;
  background tr({DUPCACHE_BINARY, "trace", "--per-folio", "-n", std::to_string(pages), fs.dir()});
  ASSERT_TRUE(tr.wait_for([&] { return contains(tr.err(), "page-cache hooks:"); }, 20))
      << tr.command() << " did not report its hooks\nstderr: " << tr.err();
  read_range(f, 0, pages * ps());
  ASSERT_EQ(cached_pages(f), static_cast<std::uint64_t>(pages));
  const int status = tr.finish(20);
  EXPECT_EQ(status, 0) << "(-1: still running 20 s after the read, killed) " << tr.command() << "\nstdout:\n"
                       << tr.out() << "stderr:\n" << tr.err();

  const auto lines = split_lines(tr.out());
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(pages)) << tr.out();
  std::vector<std::uint64_t> indexes;
  for (const auto& l : lines) {
    json e;
    ASSERT_NO_THROW(e = json::parse(l)) << l;
    EXPECT_EQ(e.value("kind", ""), "cache_add") << l;
    EXPECT_EQ(e.value("ino", std::uint64_t{0}), static_cast<std::uint64_t>(sb.st_ino)) << l;
    EXPECT_EQ(e.value("dev", std::string()), dev) << "the superblock device of " << fs.dir() << ": " << l;
    EXPECT_EQ(e.value("subvol", std::uint64_t{0}), 5u) << "the top-level subvolume of a fresh btrfs: " << l;
    EXPECT_EQ(e.value("nr_pages", std::uint64_t{0}), 1u) << l;
    EXPECT_EQ(e.value("pid", 0), static_cast<int>(getpid())) << "the test read the pages: " << l;
    ASSERT_TRUE(e.contains("index")) << l;
    indexes.push_back(e["index"].get<std::uint64_t>());
  }
  std::sort(indexes.begin(), indexes.end());
  std::vector<std::uint64_t> want(pages);
  for (int i = 0; i < pages; ++i) want[static_cast<std::size_t>(i)] = static_cast<std::uint64_t>(i);
  EXPECT_EQ(indexes, want);

  const auto err_lines = split_lines(tr.err());
  ASSERT_FALSE(err_lines.empty());
  const std::regex counters(R"(^dupcache: trace: (\d+) events emitted, (\d+) dropped.*$)");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(err_lines.back(), m, counters)) << "stderr must end with the counters:\n" << tr.err();
  EXPECT_GE(std::stoull(m[1].str()), static_cast<unsigned long long>(pages));
  EXPECT_EQ(m[2].str(), "0");
}

// By default consecutive insertions come as runs: fewer lines, the same pages.
TEST(Trace, CoalescedRunsCoverExactlyTheReadPages) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::string f = fs.path("f");
  write_file(f, 1 * MiB, 19);
  evict(f);
  struct stat sb {};
  ASSERT_EQ(stat(f.c_str(), &sb), 0);
  constexpr std::uint64_t pages = 64;
  background tr({DUPCACHE_BINARY, "trace", "--duration", "3", "--no-sharing", fs.dir()});
  ASSERT_TRUE(tr.wait_for([&] { return contains(tr.err(), "page-cache hooks:"); }, 20)) << tr.err();
  EXPECT_TRUE(contains(tr.err(), "insertions coalesced into runs")) << tr.err();
  read_range(f, 0, pages * ps());
  ASSERT_EQ(cached_pages(f), pages);
  ASSERT_EQ(tr.finish(20), 0) << tr.err();

  std::vector<int> covered(pages, 0);
  std::size_t records = 0;
  for (const auto& l : split_lines(tr.out())) {
    json e = json::parse(l);
    if (e.value("kind", "") != "cache_add" || e.value("ino", std::uint64_t{0}) != sb.st_ino) continue;
    ++records;
    const auto first = e["index"].get<std::uint64_t>();
    const auto n = e["nr_pages"].get<std::uint64_t>();
    ASSERT_LE(first + n, pages) << l;
    for (std::uint64_t i = first; i < first + n; ++i) ++covered[i];
    if (n > 1) EXPECT_GE(e.value("ts_end_ns", std::uint64_t{0}), e["ts_ns"].get<std::uint64_t>()) << l;
  }
  EXPECT_EQ(covered, std::vector<int>(pages, 1)) << "every page read exactly once:\n" << tr.out();
  EXPECT_LT(records, pages) << "nothing was coalesced:\n" << tr.out();
}

// ---------------------------------------------------------------------------------------------
// doctor

struct doctor_line {
  std::string status, detail;
};

// Text lines are "NAME  STATUS  DETAIL"; names may hold spaces ("hook fentry"), so look them up.
std::optional<doctor_line> doctor_find(const std::vector<std::string>& lines, const std::string& name) {
  for (const auto& l : lines) {
    if (!starts_with(l, name + " ")) continue;
    auto rest = tokens(l.substr(name.size()));
    if (rest.empty()) return doctor_line{};
    doctor_line d;
    d.status = rest[0];
    std::size_t pos = l.find(rest[0], name.size()) + rest[0].size();
    if (d.status == "not" && rest.size() > 1 && rest[1] == "tried") {
      d.status = "not tried";
      pos = l.find("tried", pos) + 5;
    }
    const auto first = l.find_first_not_of(' ', pos);
    d.detail = first == std::string::npos ? "" : l.substr(first);
    return d;
  }
  return std::nullopt;
}

// The first cgroup2 mount point, from the test's own reading of mountinfo.
std::string cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    const auto before = tokens(line.substr(0, dash));
    const auto after = tokens(line.substr(dash + 3));
    if (!after.empty() && after[0] == "cgroup2" && before.size() > 4) return before[4];
  }
  return "";
}

bool cachestat_works() {
#ifndef __NR_cachestat
  constexpr long nr_cachestat = 451;
#else
  constexpr long nr_cachestat = __NR_cachestat;
#endif
  const int fd = memfd_create("cli-live-test", MFD_CLOEXEC);
  if (fd < 0) return false;
  struct {
    std::uint64_t off, len;
  } range{0, 0};
  std::uint64_t out[5] = {};
  const long rc = syscall(nr_cachestat, fd, &range, out, 0);
  close(fd);
  return rc == 0;
}

TEST(Doctor, ReportsThisMachine) {
  DUPCACHE_REQUIRE_ROOT();
  auto r = run({DUPCACHE_BINARY, "doctor"}, 60);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto lines = split_lines(r.out);

  const bool btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
  auto l = doctor_find(lines, "btf");
  ASSERT_TRUE(l) << r.out;
  EXPECT_EQ(l->status, btf ? "ok" : "missing") << r.out;

  l = doctor_find(lines, "cachestat");
  ASSERT_TRUE(l) << r.out;
  EXPECT_EQ(l->status, cachestat_works() ? "ok" : "missing") << r.out;

  // On this machine's kernel fentry programs are refused (DESIGN.md): rejected, with the reason.
  l = doctor_find(lines, "hook fentry");
  ASSERT_TRUE(l) << r.out;
  EXPECT_EQ(l->status, "rejected") << r.out;
  EXPECT_FALSE(l->detail.empty()) << r.out;
  EXPECT_NE(l->detail, "rejected") << "a rejected hook needs its reason: " << r.out;

  l = doctor_find(lines, "hook tp_btf");
  ASSERT_TRUE(l) << r.out;
  EXPECT_EQ(l->status, "ok") << r.out;

  const std::string v2 = cgroup2_mount();
  l = doctor_find(lines, "cgroup");
  ASSERT_TRUE(l) << r.out;
  if (!v2.empty()) {
    EXPECT_EQ(l->status, "ok") << r.out;
    EXPECT_TRUE(contains(l->detail, "v2")) << l->detail;
    EXPECT_TRUE(contains(l->detail, v2)) << "the cgroup v2 mount point " << v2 << " is not named: " << l->detail;
  }

  auto rj = run({DUPCACHE_BINARY, "doctor", "--json"}, 60);
  ASSERT_EQ(rj.status, 0) << rj.err;
  json j;
  ASSERT_NO_THROW(j = json::parse(rj.out)) << rj.out;
  ASSERT_TRUE(j.is_array()) << rj.out;
  ASSERT_FALSE(j.empty());
  std::map<std::string, std::string> status_of;
  for (const auto& c : j) {
    ASSERT_TRUE(c.is_object()) << c.dump();
    EXPECT_EQ(c.size(), 3u) << c.dump();
    ASSERT_TRUE(c.contains("check") && c["check"].is_string()) << c.dump();
    ASSERT_TRUE(c.contains("status") && c["status"].is_string()) << c.dump();
    ASSERT_TRUE(c.contains("detail") && c["detail"].is_string()) << c.dump();
    status_of[c["check"].get<std::string>()] = c["status"].get<std::string>();
  }
  EXPECT_EQ(j.size(), lines.size()) << "the JSON and the text should list the same checks";
  EXPECT_EQ(status_of["btf"], btf ? "ok" : "missing");
  EXPECT_EQ(status_of["hook fentry"], "rejected");
  EXPECT_EQ(status_of["hook tp_btf"], "ok");
}

// ---------------------------------------------------------------------------------------------
// usage errors

TEST(Top, UsageErrors) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-d", "0", "-b", "-n", "1"}, {"--view", "nope", "-b", "-n", "1"}, {"-d", "0", "--json", "-n", "1"}}) {
    std::vector<std::string> argv{DUPCACHE_BINARY, "top"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(fs.dir());
    auto r = run(argv, 30);
    EXPECT_EQ(r.status, 2) << join_argv(argv) << "\nstdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_TRUE(contains(r.err, args[0])) << "the message should name the option " << args[0] << ": " << r.err;
  }
}

}  // namespace
}  // namespace dupcache::testing
