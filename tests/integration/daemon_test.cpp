// SPDX-License-Identifier: GPL-2.0-only
// The policy daemon end to end: the real binary on a real btrfs image with reflinked copies,
// readiness and status through a NOTIFY_SOCKET the test owns, the action journal, metrics.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "fs_fixture.hpp"
#include "util/text.hpp"

namespace dupcache::testing {
namespace {

using clock_type = std::chrono::steady_clock;

// The systemd side of sd_notify: a datagram socket whose path the daemon gets as NOTIFY_SOCKET,
// read all the time (as systemd does: a full queue would block the daemon's sd_notify).
class notify_socket {
 public:
  explicit notify_socket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    unlink(path.c_str());
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) throw std::runtime_error("notify socket");
    reader_ = std::thread([this] {
      while (!done_) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        char buf[4096];
        const ssize_t n = recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) continue;
        std::lock_guard lock(mu_);
        messages_.emplace_back(buf, static_cast<std::size_t>(n));
      }
    });
  }
  ~notify_socket() {
    done_ = true;
    reader_.join();
    close(fd_);
    unlink(path_.c_str());
  }
  // Whether a message containing `what` arrives (or did) within the timeout.
  bool wait_for(const std::string& what, double timeout_s) {
    const auto deadline = clock_type::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
      {
        std::lock_guard lock(mu_);
        for (const auto& m : messages_) {
          if (m.find(what) != std::string::npos) return true;
        }
      }
      if (clock_type::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  void clear() {
    std::lock_guard lock(mu_);
    messages_.clear();
  }
  const std::string& path() const { return path_; }
  std::string all() {
    std::lock_guard lock(mu_);
    std::string s;
    for (const auto& m : messages_) s += m + "\n--\n";
    return s;
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> done_{false};
  std::mutex mu_;
  std::vector<std::string> messages_;
  std::thread reader_;
};

class daemon_proc {
 public:
  daemon_proc(const std::string& config, const std::string& notify, const std::string& log,
              std::vector<std::string> extra = {}, std::uint64_t watchdog_usec = 0)
      : log_(log), watchdog_usec_(watchdog_usec) {
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      setenv("NOTIFY_SOCKET", notify.c_str(), 1);
      if (watchdog_usec_) setenv("WATCHDOG_USEC", std::to_string(watchdog_usec_).c_str(), 1);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (fd >= 0) dup2(fd, 2);
      std::vector<std::string> argv{DUPCACHE_BINARY, "daemon", "-c", config};
      argv.insert(argv.end(), extra.begin(), extra.end());
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~daemon_proc() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  void signal(int sig) const { kill(pid_, sig); }
  pid_t pid() const { return pid_; }
  // The exit status once it has exited on its own (-1: running, or killed by a signal).
  int exit_status() {
    if (alive() || !WIFEXITED(status_)) return -1;
    return WEXITSTATUS(status_);
  }
  bool alive() {
    if (reaped_) return false;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      reaped_ = true;
      status_ = st;
      return false;
    }
    return true;
  }
  // SIGTERM (or `sig`), then the exit status (-1: killed or did not stop in 10 s).
  int stop(int sig = SIGTERM) {
    if (!reaped_) {
      kill(pid_, sig);
      for (int i = 0; i < 100 && alive(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!reaped_) return -1;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }
  std::string log() const { return contents(log_); }

 private:
  std::string log_;
  std::uint64_t watchdog_usec_ = 0;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

std::uint64_t checksum(const std::string& path, std::uint64_t from = 0) {
  std::ifstream f(path, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(from));
  std::uint64_t h = 1469598103934665603ull;
  char buf[65536];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) {
    for (std::streamsize i = 0; i < f.gcount(); ++i) h = (h ^ static_cast<unsigned char>(buf[i])) * 1099511628211ull;
  }
  return h;
}

std::vector<nlohmann::json> journal_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream f(path);
  for (std::string l; std::getline(f, l);) {
    if (!l.empty()) out.push_back(nlohmann::json::parse(l));
  }
  return out;
}

class daemon_scene : public ::testing::Test {
 protected:
  void SetUp() override {
    DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
    ps_ = page_size();
    char tmpl[] = "/tmp/dupcache-daemon-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    side_ = tmpl;
    fs_ = std::make_unique<scratch_fs>("btrfs");
    write_file(fs_->path("a"), size_, 31);
    for (const char* n : {"b", "c", "d"}) reflink(fs_->path("a"), fs_->path(n));
    sum_ = checksum(fs_->path("a"));
    for (const char* n : {"a", "b", "c", "d"}) evict(fs_->path(n));
    notify_ = std::make_unique<notify_socket>(side_ + "/notify");
  }
  void TearDown() override {
    notify_.reset();
    fs_.reset();
    if (!side_.empty()) std::filesystem::remove_all(side_);
  }

  std::string config(const std::string& body) {
    const std::string p = side_ + "/dupcache.toml";
    std::ofstream(p) << "[watch]\npaths = [\"" << fs_->dir() << "\"]\n[journal]\npath = \"" << journal()
                     << "\"\n[control]\nsocket = \"" << control() << "\"\n" << body;
    return p;
  }
  std::string journal() const { return side_ + "/actions.jsonl"; }
  std::string control() const { return side_ + "/control.sock"; }
  std::string log() const { return side_ + "/daemon.log"; }
  std::uint64_t wasted() {
    int st = -1;
    auto doc = report_json({fs_->dir()}, &st);
    return doc["totals"]["wasted_bytes"].get<std::uint64_t>();
  }
  std::unique_ptr<daemon_proc> start(const std::string& cfg, std::vector<std::string> extra = {},
                                     std::uint64_t watchdog_usec = 0) {
    notify_->clear();
    auto d = std::make_unique<daemon_proc>(cfg, notify_->path(), log(), std::move(extra), watchdog_usec);
    EXPECT_TRUE(notify_->wait_for("READY=1", 30)) << "no READY=1; messages:\n" << notify_->all() << d->log();
    return d;
  }

  const std::uint64_t size_ = 4 * MiB;
  std::uint64_t ps_ = 0;
  std::uint64_t sum_ = 0;
  std::string side_;
  std::unique_ptr<scratch_fs> fs_;
  std::unique_ptr<notify_socket> notify_;
};

TEST_F(daemon_scene, EvictsColdCopiesKeepsTheHotOneNeverDropsDirtyPages) {
  for (const char* n : {"a", "b", "c"}) read_all(fs_->path(n));
  // WATCHDOG_USEC as systemd sets it for WatchdogSec=2s: pings at least every second.
  auto d = start(config("[policy]\ninterval = \"300ms\"\ncooldown = \"30s\"\n[metrics]\nlisten = \"\"\n"), {}, 2'000'000);
  // d is read while the daemon traces: the hottest copy. b gets a dirty page it must keep.
  read_all(fs_->path("d"));
  const std::string dirty(ps_, 'Z');
  {
    const int fd = open(fs_->path("b").c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, dirty.data(), dirty.size(), 0), static_cast<ssize_t>(dirty.size()));
    close(fd);
  }
  const std::uint64_t before = 3 * size_ - ps_;  // four copies, b's first page no longer shared
  EXPECT_EQ(wasted(), before);
  const auto t0 = clock_type::now();
  ASSERT_TRUE(eventually([&] { return wasted() <= before / 10; }, 15)) << "wasted still " << wasted() << "\n" << d->log();
  const double took = std::chrono::duration<double>(clock_type::now() - t0).count();
  EXPECT_LT(took, 10.0);
  EXPECT_EQ(cached_pages(fs_->path("d")), size_ / ps_) << "the hot copy must stay cached\n" << d->log();
  EXPECT_EQ(cached_pages(fs_->path("a")), 0u);
  EXPECT_EQ(cached_pages(fs_->path("c")), 0u);
  EXPECT_EQ(residency(fs_->path("b"))[0], 1u) << "the dirty page was dropped";
  EXPECT_EQ(cached_pages(fs_->path("b")), 1u);
  EXPECT_TRUE(notify_->wait_for("STATUS=wasted", 5)) << notify_->all();
  EXPECT_TRUE(notify_->wait_for("WATCHDOG=1", 5)) << notify_->all();
  EXPECT_EQ(d->stop(), 0) << d->log();
  EXPECT_TRUE(notify_->wait_for("STOPPING=1", 5)) << notify_->all();

  // The journal: one line per copy acted on, keeper d, bytes measured.
  std::uint64_t freed = 0;
  for (const auto& j : journal_lines(journal())) {
    if (j.value("action", "") != "evict") continue;
    EXPECT_EQ(j["kept"], fs_->path("d")) << j.dump();
    EXPECT_EQ(j["result"], "ok") << j.dump();
    freed += j["freed_bytes"].get<std::uint64_t>();
  }
  EXPECT_EQ(freed, 3 * size_ - ps_);
  // Contents: unchanged, and b holds its write.
  sync();
  for (const char* n : {"a", "c", "d"}) EXPECT_EQ(checksum(fs_->path(n)), sum_) << n;
  evict(fs_->path("b"));
  std::string first(ps_, 0);
  {
    std::ifstream f(fs_->path("b"), std::ios::binary);
    f.read(first.data(), static_cast<std::streamsize>(ps_));
  }
  EXPECT_EQ(first, dirty);
  EXPECT_EQ(checksum(fs_->path("b"), ps_), checksum(fs_->path("a"), ps_));
}

TEST_F(daemon_scene, DedupeActionOnlyWhenSwitchedOn) {
  // Two plain copies (written twice, not reflinked): no extent shared until something dedupes.
  must({"mkdir", fs_->path("plain")});
  const std::string x = fs_->path("plain/x"), y = fs_->path("plain/y");
  for (const auto& p : {x, y}) {
    write_file(p, MiB, 41);
    evict(p);
  }
  const auto x0 = block_addresses(x), y0 = block_addresses(y);
  ASSERT_NE(x0, y0);
  const std::uint64_t sum = checksum(x);
  const std::string base = "[policy]\ninterval = \"200ms\"\n[metrics]\nlisten = \"\"\n";
  auto dedupe_lines = [&] {
    std::vector<nlohmann::json> out;
    for (const auto& j : journal_lines(journal())) {
      if (j.value("action", "") == "dedupe" || j.value("event", "") == "dedupe") out.push_back(j);
    }
    return out;
  };
  {
    // Off (the default): a few intervals pass, nothing is deduplicated.
    auto d = start(config(base));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_EQ(d->stop(), 0) << d->log();
    EXPECT_TRUE(dedupe_lines().empty());
    EXPECT_EQ(block_addresses(x), x0);
    EXPECT_EQ(block_addresses(y), y0);
  }
  // On: one pass over plain/ shares y's extents with x.
  auto d = start(config(base + "[dedupe]\nenabled = true\npaths = [\"" + fs_->path("plain") +
                        "\"]\ninterval = \"1h\"\nrate_limit = \"256MiB\"\n"));
  ASSERT_TRUE(eventually([&] { return !dedupe_lines().empty() && dedupe_lines().back().contains("event"); }, 20))
      << d->log();
  EXPECT_EQ(d->stop(), 0) << d->log();
  const auto lines = dedupe_lines();
  ASSERT_EQ(lines.size(), 2u) << d->log();
  EXPECT_EQ(lines[0]["action"], "dedupe");
  EXPECT_EQ(lines[0]["result"], "ok");
  EXPECT_EQ(lines[0]["path"], y);
  EXPECT_EQ(lines[0]["source"], x);
  EXPECT_EQ(lines[0]["shared_bytes"].get<std::uint64_t>(), MiB);
  EXPECT_EQ(lines[1]["result"], "ok");
  EXPECT_EQ(lines[1]["shared_bytes"].get<std::uint64_t>(), MiB);
  EXPECT_EQ(lines[1]["files_shared"].get<std::uint64_t>(), 1u);
  EXPECT_EQ(block_addresses(y), block_addresses(x));
  EXPECT_EQ(block_addresses(x), x0);
  EXPECT_EQ(checksum(x), sum);
  EXPECT_EQ(checksum(y), sum);
}

TEST_F(daemon_scene, DryRunChangesNothing) {
  for (const char* n : {"a", "b", "c", "d"}) read_all(fs_->path(n));
  auto d = start(config("[policy]\ninterval = \"200ms\"\n[metrics]\nlisten = \"\"\n"), {"--dry-run"});
  ASSERT_TRUE(eventually([&] { return journal_lines(journal()).size() >= 3; }, 10)) << d->log();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  for (const char* n : {"a", "b", "c", "d"}) EXPECT_EQ(cached_pages(fs_->path(n)), size_ / ps_) << n;
  for (const auto& j : journal_lines(journal())) {
    EXPECT_EQ(j["dry_run"], true);
    EXPECT_EQ(j["result"], "dry_run");
    EXPECT_EQ(j["freed_bytes"], 0);
  }
  EXPECT_EQ(wasted(), 3 * size_);
  EXPECT_EQ(d->stop(), 0);
}

TEST_F(daemon_scene, InvalidConfigOnSighupKeepsTheOldOne) {
  const std::string cfg = config("[policy]\ninterval = \"200ms\"\ncooldown = \"100ms\"\n[metrics]\nlisten = \"\"\n");
  auto d = start(cfg);
  std::ofstream(cfg, std::ios::trunc) << "[policy]\ninterval = \"200ms\"\ncooldown = 5\n";
  d->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return d->log().find("keeping the configuration in force") != std::string::npos; }, 10))
      << d->log();
  EXPECT_NE(d->log().find("dupcache.toml:3:12: 'cooldown' must be a duration"), std::string::npos) << d->log();
  ASSERT_TRUE(d->alive());
  // Still acting, with the old configuration.
  for (const char* n : {"a", "b"}) read_all(fs_->path(n));
  ASSERT_TRUE(eventually([&] { return wasted() == 0; }, 10)) << d->log();
  bool rejected = false;
  for (const auto& j : journal_lines(journal())) rejected = rejected || (j.value("event", "") == "reload" && j["result"] == "rejected");
  EXPECT_TRUE(rejected);
  EXPECT_EQ(d->stop(), 0);
}

TEST_F(daemon_scene, InvalidConfigAtStartIsRefused) {
  const std::string p = side_ + "/bad.toml";
  std::ofstream(p) << "[policy]\nrate_limit = \"fast\"\n";
  auto r = run({DUPCACHE_BINARY, "daemon", "-c", p});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("bad.toml:2:14: 'rate_limit'"), std::string::npos) << r.err;
}

TEST_F(daemon_scene, RecoversAfterSigkillAndRestart) {
  const std::string cfg = config("[policy]\ninterval = \"200ms\"\ncooldown = \"100ms\"\n[metrics]\nlisten = \"\"\n");
  {
    auto d = start(cfg);
    EXPECT_EQ(d->stop(SIGKILL), -1);
  }
  for (const char* n : {"a", "b", "c"}) read_all(fs_->path(n));
  auto d = start(cfg);
  ASSERT_TRUE(eventually([&] { return wasted() == 0; }, 10)) << d->log();
  EXPECT_EQ(d->stop(), 0);
}

// Two readers that keep re-reading their copies: each eviction of one comes straight back, so
// the daemon must back off (doubling) instead of evicting every cooldown.
TEST_F(daemon_scene, BacksOffCopiesThatComeStraightBack) {
  std::atomic<bool> stop{false};
  auto reader = [&](const std::string& p) {
    while (!stop) {
      read_all(p);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  };
  std::thread rb(reader, fs_->path("b")), rc(reader, fs_->path("c"));
  auto d = start(config("[policy]\ninterval = \"200ms\"\ncooldown = \"400ms\"\nrefault_window = \"10s\"\n"
                        "max_backoff = \"1h\"\n[metrics]\nlisten = \"\"\n"));
  std::this_thread::sleep_for(std::chrono::seconds(8));
  stop = true;
  rb.join();
  rc.join();
  EXPECT_EQ(d->stop(), 0) << d->log();
  std::map<std::string, int> evictions, backoffs;
  for (const auto& j : journal_lines(journal())) {
    if (j.value("action", "") == "evict" && j["result"] == "ok") ++evictions[j["path"]];
    if (j.value("event", "") == "backoff") ++backoffs[j["path"]];
  }
  // The cooldown alone would allow 8 s / 0.4 s = 20 evictions of each; backing off doubles
  // 0.8, 1.6, 3.2, 6.4 s: at most 5 in 8 s.
  for (const char* n : {"b", "c"}) {
    EXPECT_LE(evictions[fs_->path(n)], 5) << n << "\n" << d->log();
  }
  EXPECT_GE(backoffs[fs_->path("b")] + backoffs[fs_->path("c")], 1) << d->log();
}

// Issue 15, 2 and 8: a directory whose name is not UTF-8 holds duplicates named with a forged
// journald priority ("\n<0>"); it is renamed after the daemon's seed, to another name that is
// not UTF-8 either, so the daemon acts on a path that is gone or, once it has followed the
// rename (issue 18), on the new one: either way a raw name. The journal used to abort on it
// (type_error 316, crash-looping the daemon) and the log to carry it raw after "<4>".
TEST_F(daemon_scene, HostileNamesStayValidJsonAndOneEscapedLogLine) {
  const std::string dir = fs_->path("f\xff");
  // Both copies carry a forged priority: whichever the daemon keeps, the one it acts on does.
  const std::string forged = "x\n<0>forged", other = "y\n<0>forged";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  write_file(dir + "/" + forged, size_, 41);
  reflink(dir + "/" + forged, dir + "/" + other);
  for (const auto& n : {forged, other}) evict(dir + "/" + n);
  auto d = start(config("[policy]\ninterval = \"200ms\"\ncooldown = \"1s\"\n[metrics]\nlisten = \"\"\n"));
  const std::string moved = fs_->path("moved\xfe");
  ASSERT_EQ(rename(dir.c_str(), moved.c_str()), 0);
  for (const auto& n : {forged, other}) read_all(moved + "/" + n);
  auto acted_on_raw_name = [&] {
    for (const auto& j : journal_lines(journal())) {
      if (j.value("action", "") != "evict" || !j.contains("path_base64")) continue;
      auto raw = base64_decode(j["path_base64"].get<std::string>());
      if (raw && (raw->rfind(dir + "/", 0) == 0 || raw->rfind(moved + "/", 0) == 0)) return true;
    }
    return false;
  };
  // journal_lines() throws on a line that is not JSON.
  ASSERT_TRUE(eventually(acted_on_raw_name, 15)) << d->log();
  EXPECT_TRUE(d->alive()) << d->log();
  EXPECT_EQ(d->stop(), 0) << d->log();
  const std::string log = d->log();
  std::istringstream lines(log);
  bool escaped = false;
  for (std::string l; std::getline(lines, l);) {
    EXPECT_TRUE(l.rfind("<0>", 0) != 0) << "forged emergency entry: " << l;
    escaped = escaped || l.find("\\n<0>forged") != std::string::npos;
  }
  EXPECT_TRUE(escaped) << log;
}

// A TCP connection to 127.0.0.1:PORT (-1 if refused), whose reads give up after timeout_s.
int connect_loopback(int port, double timeout_s = 30) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    close(fd);
    return -1;
  }
  timeval tv{static_cast<time_t>(timeout_s), static_cast<suseconds_t>((timeout_s - static_cast<time_t>(timeout_s)) * 1e6)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

std::string http_get(int port, const std::string& path) {
  const int fd = connect_loopback(port);
  if (fd < 0) return "";
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  close(fd);
  return out;
}

std::uint64_t metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (l.rfind(name + " ", 0) == 0) return std::stoull(l.substr(name.size() + 1));
  }
  return ~0ull;
}

TEST_F(daemon_scene, MetricsOnLoopbackAndTextfile) {
  for (const char* n : {"a", "b", "c"}) read_all(fs_->path(n));
  const int port = 20000 + getpid() % 20000;
  const std::string textfile = side_ + "/dupcache.prom";
  // A trigger that never holds: the waste stays and the numbers can be compared.
  auto d = start(config("[trigger]\nwasted_bytes = \"1TiB\"\n[policy]\ninterval = \"200ms\"\n[metrics]\nlisten = \"127.0.0.1:" +
                        std::to_string(port) + "\"\ntextfile = \"" + textfile + "\"\n"));
  std::string body;
  ASSERT_TRUE(eventually([&] {
    body = http_get(port, "/metrics");
    return body.find("dupcache_wasted_bytes ") != std::string::npos;
  }, 10)) << body << d->log();
  EXPECT_NE(body.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << body;
  EXPECT_EQ(metric(body, "dupcache_wasted_bytes"), 2 * size_);
  EXPECT_EQ(metric(body, "dupcache_cached_bytes"), 3 * size_);
  EXPECT_EQ(metric(body, "dupcache_block_copies_count"), size_ / ps_);
  EXPECT_EQ(metric(body, "dupcache_block_copies_sum"), 3 * size_ / ps_);
  EXPECT_EQ(metric(body, "dupcache_triggered"), 0u);
  EXPECT_NE(body.find("# TYPE dupcache_freed_bytes_total counter"), std::string::npos);
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(textfile); }, 5));
  std::ifstream tf(textfile);
  const std::string text((std::istreambuf_iterator<char>(tf)), std::istreambuf_iterator<char>());
  EXPECT_EQ(metric(text, "dupcache_wasted_bytes"), 2 * size_);
  EXPECT_EQ(cached_pages(fs_->path("b")), size_ / ps_) << "no trigger held: nothing may be evicted";
  EXPECT_EQ(d->stop(), 0);
}

std::uint64_t vm_rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string l; std::getline(f, l);) {
    if (l.rfind("VmRSS:", 0) == 0) return std::stoull(l.substr(6));
  }
  return 0;
}

// Whether the server closed FD (EOF or reset) within timeout_s, discarding what it sent first.
bool closed_by_server(int fd, double timeout_s) {
  const auto deadline = clock_type::now() + std::chrono::duration<double>(timeout_s);
  char buf[4096];
  while (clock_type::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
  }
  return false;
}

// One connection streaming header lines without end: the daemon must cut it off at the head cap
// and stay small, and the endpoint must answer a normal scrape afterwards. (cpp-httplib, before,
// stored every line: 191 MB of headers grew the daemon to 389 MB.)
TEST_F(daemon_scene, MetricsHeaderFloodIsCutOffAndMemoryStaysBounded) {
  const int port = 23000 + getpid() % 20000;
  auto d = start(config("[trigger]\nwasted_bytes = \"1TiB\"\n[policy]\ninterval = \"200ms\"\n[metrics]\nlisten = \"127.0.0.1:" +
                        std::to_string(port) + "\"\n"));
  std::string body;
  ASSERT_TRUE(eventually([&] {
    body = http_get(port, "/metrics");
    return body.find("dupcache_wasted_bytes ") != std::string::npos;
  }, 10)) << body << d->log();
  for (int i = 0; i < 3; ++i) http_get(port, "/metrics");
  const std::uint64_t baseline = vm_rss_kib(d->pid());
  ASSERT_GT(baseline, 0u);

  // 64 MiB at most: four thousand times the bound below, so an endpoint that keeps what it reads
  // fails by far, without taking this machine's memory.
  constexpr std::uint64_t flood_max = 64 * MiB;
  std::atomic<std::uint64_t> sent{0};
  std::atomic<bool> flooding{true};
  std::thread flood([&] {
    const int fd = connect_loopback(port, 10);
    if (fd < 0) {
      flooding = false;
      return;
    }
    std::string chunk = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    (void)!send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    chunk.clear();
    while (chunk.size() < 64 * KiB) chunk += "X-Flood: aaaaaaa\r\n";
    while (sent < flood_max) {
      const ssize_t n = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n <= 0) break;  // closed by the server (or stalled for 10 s)
      sent += static_cast<std::uint64_t>(n);
    }
    close(fd);
    flooding = false;
  });
  std::uint64_t peak = baseline;
  while (flooding) {
    peak = std::max(peak, vm_rss_kib(d->pid()));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  flood.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  peak = std::max(peak, vm_rss_kib(d->pid()));
  EXPECT_LT(sent.load(), flood_max) << "the server read the whole flood instead of closing the connection";
  EXPECT_LT(peak, baseline + 16 * 1024) << "VmRSS grew from " << baseline << " KiB to " << peak << " KiB after "
                                        << sent.load() << " bytes of headers";
  ASSERT_TRUE(d->alive()) << d->log();
  body = http_get(port, "/metrics");
  EXPECT_EQ(body.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << body.substr(0, 200);
  EXPECT_EQ(metric(body, "dupcache_wasted_bytes"), wasted());
  // Many lines within the byte cap are refused too, and other requests get their answers.
  {
    std::string head = "GET /metrics HTTP/1.1\r\n";
    for (int i = 0; i < 200; ++i) head += "X: y\r\n";
    const int fd = connect_loopback(port, 5);
    ASSERT_GE(fd, 0);
    (void)!send(fd, head.data(), head.size(), MSG_NOSIGNAL);
    char buf[256] = {};
    const ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    close(fd);
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0).rfind("HTTP/1.1 431 ", 0), 0u) << buf;
  }
  EXPECT_EQ(http_get(port, "/").rfind("HTTP/1.1 404 ", 0), 0u);
  EXPECT_EQ(d->stop(), 0) << d->log();
}

// Connections that send nothing, or trickle a request a byte at a time, must not keep a scrape
// waiting, and are closed at the request deadline (5 s), not held open.
TEST_F(daemon_scene, MetricsIdleConnectionsDoNotBlockAScrape) {
  const int port = 24000 + getpid() % 20000;
  auto d = start(config("[trigger]\nwasted_bytes = \"1TiB\"\n[policy]\ninterval = \"200ms\"\n[metrics]\nlisten = \"127.0.0.1:" +
                        std::to_string(port) + "\"\n"));
  ASSERT_TRUE(eventually([&] { return http_get(port, "/metrics").find("dupcache_wasted_bytes ") != std::string::npos; }, 10))
      << d->log();
  std::vector<int> idle;
  for (int i = 0; i < 64; ++i) {
    const int fd = connect_loopback(port, 10);
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  const int trickle = connect_loopback(port, 10);
  ASSERT_GE(trickle, 0);
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    const std::string req = "GET /metrics HTTP/1.1\r\n" + std::string(4000, 'X');
    for (char c : req) {
      if (stop || send(trickle, &c, 1, MSG_NOSIGNAL) != 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto t0 = clock_type::now();
  const std::string body = http_get(port, "/metrics");
  const double took = std::chrono::duration<double>(clock_type::now() - t0).count();
  EXPECT_NE(body.find("dupcache_wasted_bytes "), std::string::npos) << body.substr(0, 200);
  EXPECT_LT(took, 2.0) << "a scrape waited behind idle connections";
  // The trickling connection is cut at its deadline, however steadily it sends.
  EXPECT_TRUE(closed_by_server(trickle, 8.0)) << "a request trickled a byte at a time was not cut off";
  stop = true;
  trickler.join();
  close(trickle);
  int open_still = 0;
  for (int fd : idle) {
    if (!closed_by_server(fd, 0.2)) ++open_still;
    close(fd);
  }
  EXPECT_EQ(open_still, 0) << "idle connections still open after the request deadline";
  EXPECT_EQ(d->stop(), 0) << d->log();
}

// The textfile's temporary file: a symbolic link planted at the name it used to have
// (PATH.tmp) or anywhere else in the directory is never followed or written through.
TEST_F(daemon_scene, TextfileTemporaryNeverFollowsASymlink) {
  const std::string dir = side_ + "/textfile";
  std::filesystem::create_directory(dir);
  const std::string textfile = dir + "/dupcache.prom", victim = side_ + "/victim";
  std::ofstream(victim) << "victim\n";
  std::filesystem::create_symlink(victim, textfile + ".tmp");
  auto d = start(config("[trigger]\nwasted_bytes = \"1TiB\"\n[policy]\ninterval = \"200ms\"\n[metrics]\nlisten = \"\"\n"
                        "textfile = \"" + textfile + "\"\n"));
  std::string text;
  ASSERT_TRUE(eventually([&] {
    std::ifstream f(textfile);
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    return text.find("dupcache_wasted_bytes ") != std::string::npos;
  }, 10)) << d->log();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // a few more rewrites
  EXPECT_EQ(d->stop(), 0) << d->log();
  std::ifstream vf(victim);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(vf)), std::istreambuf_iterator<char>()), "victim\n")
      << "the textfile was written through a symbolic link";
  EXPECT_FALSE(std::filesystem::is_symlink(textfile)) << "the planted link was renamed over the textfile";
  EXPECT_TRUE(std::filesystem::is_symlink(textfile + ".tmp"));
  // Nothing left behind: the directory holds the textfile and the planted link only.
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"dupcache.prom", "dupcache.prom.tmp"}));
}

// A symbolic link at the journal's path: the daemon refuses to start, says why, and writes
// nothing through it.
TEST_F(daemon_scene, JournalSymlinkIsRefused) {
  const std::string victim = side_ + "/victim";
  std::ofstream(victim) << "victim\n";
  std::filesystem::create_symlink(victim, journal());
  daemon_proc d(config("[policy]\ninterval = \"200ms\"\n[metrics]\nlisten = \"\"\n"), notify_->path(), log());
  ASSERT_TRUE(eventually([&] { return !d.alive(); }, 15)) << "the daemon started with a symlinked journal\n" << d.log();
  EXPECT_EQ(d.exit_status(), 1) << d.log();
  EXPECT_NE(d.log().find("open journal " + journal() + " failed: it is a symbolic link"), std::string::npos) << d.log();
  std::ifstream vf(victim);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(vf)), std::istreambuf_iterator<char>()), "victim\n");
}

// A raw connection to the control socket.
int connect_control(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Clients that connect and send nothing, or trickle, or send too much, hold up nobody: another
// client's request is answered at once, the trickler is cut at the 2 s deadline, the oversized
// request is refused by name.
TEST_F(daemon_scene, ControlSocketSilentClientsDoNotBlockOthers) {
  for (const char* n : {"a", "b"}) read_all(fs_->path(n));
  auto d = start(config("[trigger]\nwasted_bytes = \"1TiB\"\n[policy]\ninterval = \"200ms\"\n[metrics]\nlisten = \"\"\n"));
  const std::vector<std::string> ask{DUPCACHE_BINARY, "report", "--from-daemon", "--socket", control(), "--json"};
  ASSERT_TRUE(eventually([&] { return run(ask).status == 0; }, 10)) << d->log();
  std::vector<int> silent;
  for (int i = 0; i < 3; ++i) {
    const int fd = connect_control(control());
    ASSERT_GE(fd, 0);
    silent.push_back(fd);
  }
  const int partial = connect_control(control());
  ASSERT_GE(partial, 0);
  (void)!send(partial, "{\"json\":", 8, MSG_NOSIGNAL);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto t0 = clock_type::now();
  auto r = run(ask);
  const double took = std::chrono::duration<double>(clock_type::now() - t0).count();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["totals"]["wasted_bytes"], size_);
  EXPECT_LT(took, 1.0) << "a request waited behind silent clients";
  // Everything silent or incomplete is closed at the deadline, even a steady trickle.
  const int trickle = connect_control(control());
  ASSERT_GE(trickle, 0);
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    while (!stop && send(trickle, " ", 1, MSG_NOSIGNAL) == 1) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  });
  EXPECT_TRUE(closed_by_server(trickle, 4.0)) << "a trickled request was not cut off";
  stop = true;
  trickler.join();
  close(trickle);
  for (int fd : silent) {
    EXPECT_TRUE(closed_by_server(fd, 1.0));
    close(fd);
  }
  EXPECT_TRUE(closed_by_server(partial, 1.0));
  close(partial);
  // Past the size cap: refused by name, not parsed.
  const int big = connect_control(control());
  ASSERT_GE(big, 0);
  const std::string flood(96 * KiB, ' ');
  std::thread sender([&] { (void)!send(big, flood.data(), flood.size(), MSG_NOSIGNAL); });
  std::string answer;
  char buf[4096];
  pollfd p{big, POLLIN, 0};
  while (poll(&p, 1, 5000) > 0) {
    const ssize_t n = recv(big, buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  sender.join();
  close(big);
  EXPECT_EQ(answer, "error: the request is larger than 64 KiB\n");
  EXPECT_EQ(run(ask).status, 0);
  EXPECT_EQ(d->stop(), 0) << d->log();
}

// report --from-daemon: the daemon's live index answers, without a scan.
TEST_F(daemon_scene, ReportFromTheDaemon) {
  for (const char* n : {"a", "b"}) read_all(fs_->path(n));
  auto d = start(config("[trigger]\nwasted_bytes = \"1TiB\"\n[policy]\ninterval = \"200ms\"\n[metrics]\nlisten = \"\"\n"));
  nlohmann::json doc;
  ASSERT_TRUE(eventually([&] {
    auto r = run({DUPCACHE_BINARY, "report", "--from-daemon", "--socket", control(), "--json"});
    if (r.status != 0) return false;
    doc = nlohmann::json::parse(r.out);
    return true;
  }, 10)) << d->log();
  EXPECT_EQ(doc["totals"]["wasted_bytes"], size_);
  EXPECT_EQ(doc["totals"]["cached_bytes"], 2 * size_);
  ASSERT_EQ(doc["groups"].size(), 1u);
  auto text = run({DUPCACHE_BINARY, "report", "--from-daemon", "--socket", control(), "--by", "fs", "--bytes"});
  EXPECT_EQ(text.status, 0);
  EXPECT_NE(text.out.find("FILESYSTEMS (1)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(std::to_string(size_)), std::string::npos) << text.out;
  // top shows the daemon's samples.
  auto top = run({DUPCACHE_BINARY, "top", "--from-daemon", "--socket", control(), "--json", "-n", "2", "-d", "0.3"});
  ASSERT_EQ(top.status, 0) << top.err;
  std::istringstream lines(top.out);
  int docs = 0;
  for (std::string l; std::getline(lines, l); ++docs) {
    const auto j = nlohmann::json::parse(l);
    EXPECT_EQ(j["totals"]["wasted_bytes"], size_);
    EXPECT_EQ(j["mode"].get<std::string>().rfind("daemon, live", 0), 0u) << j["mode"];
  }
  EXPECT_EQ(docs, 2);
  // --top 1: the daemon is asked for one row of each table; the totals are still the whole.
  auto first = run({DUPCACHE_BINARY, "top", "--from-daemon", "--socket", control(), "--json", "--top", "1", "-n", "1",
                    "-d", "0.3"});
  ASSERT_EQ(first.status, 0) << first.err;
  const auto one = nlohmann::json::parse(first.out);
  EXPECT_EQ(one["files"].size(), 1u);
  EXPECT_EQ(one["totals"]["files_cached"], 2u);
  EXPECT_EQ(one["totals"]["cached_bytes"], 2 * size_);
  EXPECT_EQ(one["totals"]["wasted_bytes"], size_);
  auto batch = run({DUPCACHE_BINARY, "top", "--from-daemon", "--socket", control(), "-b", "-n", "1", "--view", "groups", "--bytes"});
  ASSERT_EQ(batch.status, 0) << batch.err;
  EXPECT_NE(batch.out.find(fs_->path("a")), std::string::npos) << batch.out;
  // Text asks for the rows its view shows, sorted by the daemon as the view sorts: by path,
  // descending, one row is b's alone; the header still counts every group.
  auto by_path = run({DUPCACHE_BINARY, "top", "--from-daemon", "--socket", control(), "-b", "-n", "1", "-d", "0.3",
                      "--top", "1", "--sort", "path", "--bytes"});
  ASSERT_EQ(by_path.status, 0) << by_path.err;
  EXPECT_NE(by_path.out.find(" " + fs_->path("b") + "\n"), std::string::npos) << by_path.out;
  EXPECT_EQ(by_path.out.find(" " + fs_->path("a") + "\n"), std::string::npos) << by_path.out;
  EXPECT_NE(by_path.out.find("cached 2  groups 1  errors 0"), std::string::npos) << by_path.out;
  EXPECT_EQ(d->stop(), 0);
  auto gone = run({DUPCACHE_BINARY, "report", "--from-daemon", "--socket", control()});
  EXPECT_EQ(gone.status, 1);
  EXPECT_NE(gone.err.find("is dupcache daemon running?"), std::string::npos) << gone.err;
}

// The metrics as Prometheus itself sees them: promtool's lint, and a real server on loopback
// scraping the daemon and answering a query with the exact waste.
TEST_F(daemon_scene, PrometheusScrapesTheMetrics) {
  DUPCACHE_REQUIRE_ROOT("prometheus", "promtool");
  for (const char* n : {"a", "b", "c"}) read_all(fs_->path(n));
  const int port = 21000 + getpid() % 20000, prom_port = port + 1;
  auto d = start(config("[trigger]\nwasted_bytes = \"1TiB\"\n[policy]\ninterval = \"200ms\"\n[metrics]\nlisten = \"127.0.0.1:" +
                        std::to_string(port) + "\"\n"));
  std::string body;
  ASSERT_TRUE(eventually([&] {
    body = http_get(port, "/metrics");
    return body.find("dupcache_wasted_bytes ") != std::string::npos;
  }, 10)) << d->log();
  const std::string metrics = side_ + "/metrics.txt";
  std::ofstream(metrics) << body.substr(body.find("\r\n\r\n") + 4);
  auto lint = run({"sh", "-c", "promtool check metrics < " + metrics});
  EXPECT_EQ(lint.status, 0) << lint.out << lint.err;
  EXPECT_EQ(lint.out + lint.err, "") << "promtool found problems";

  const std::string cfg = side_ + "/prometheus.yml";
  std::ofstream(cfg) << "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: dupcache\n"
                     << "    static_configs:\n      - targets: ['127.0.0.1:" << port << "']\n";
  const pid_t prom = fork();
  ASSERT_GE(prom, 0);
  if (prom == 0) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    const std::string a1 = "--config.file=" + cfg, a2 = "--storage.tsdb.path=" + side_ + "/tsdb",
                      a3 = "--web.listen-address=127.0.0.1:" + std::to_string(prom_port);
    execlp("prometheus", "prometheus", a1.c_str(), a2.c_str(), a3.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string answer;
  const bool got = eventually([&] {
    answer = http_get(prom_port, "/api/v1/query?query=dupcache_wasted_bytes");
    return answer.find("\"value\"") != std::string::npos;
  }, 30);
  kill(prom, SIGTERM);
  waitpid(prom, nullptr, 0);
  ASSERT_TRUE(got) << "prometheus never had a sample:\n" << answer;
  const auto j = nlohmann::json::parse(answer.substr(answer.find("\r\n\r\n") + 4));
  ASSERT_EQ(j["status"], "success") << answer;
  const auto& r = j["data"]["result"];
  ASSERT_EQ(r.size(), 1u) << answer;
  EXPECT_EQ(r[0]["metric"]["job"], "dupcache");
  EXPECT_EQ(r[0]["value"][1], std::to_string(2 * size_));
  EXPECT_EQ(d->stop(), 0);
}

// Memory pressure starts it: nothing happens while PSI "some" avg10 is below the threshold,
// evictions start once it is above. The rate limit holds each interval's evictions.
TEST_F(daemon_scene, PressureTriggerAndRateLimit) {
  for (const char* n : {"a", "b", "c"}) read_all(fs_->path(n));
  const std::string psi = side_ + "/pressure";
  auto pressure = [&](double some) {
    std::ofstream(psi, std::ios::trunc) << "some avg10=" << some << " avg60=0.00 avg300=0.00 total=1\n"
                                        << "full avg10=0.00 avg60=0.00 avg300=0.00 total=1\n";
  };
  pressure(2.5);
  auto d = start(config("[trigger]\npsi_some_avg10 = 10\npressure_file = \"" + psi +
                        "\"\n[policy]\ninterval = \"500ms\"\ncooldown = \"100ms\"\nrate_limit = \"1MiB\"\n"
                        "[metrics]\nlisten = \"\"\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(wasted(), 2 * size_) << "acted below the pressure threshold\n" << d->log();
  pressure(42.0);
  ASSERT_TRUE(eventually([&] { return wasted() < 2 * size_; }, 10)) << d->log();
  EXPECT_NE(d->log().find("acting: memory pressure some avg10 42.00 >= 10"), std::string::npos) << d->log();
  ASSERT_TRUE(eventually([&] { return wasted() == 0; }, 30)) << d->log();
  EXPECT_EQ(d->stop(), 0);
  // 1 MiB/s at 0.5 s intervals: at most 512 KiB per interval, in every journal line.
  int evictions = 0;
  for (const auto& j : journal_lines(journal())) {
    if (j.value("action", "") != "evict") continue;
    ++evictions;
    EXPECT_LE(j["planned_bytes"].get<std::uint64_t>(), 512 * KiB) << j.dump();
  }
  EXPECT_GE(evictions, static_cast<int>(2 * size_ / (512 * KiB))) << d->log();
}

// The daemon's model through its control socket, as `report --from-daemon` prints it: total and
// per-file cached and wasted bytes, to compare with a fresh one-shot report.
std::map<std::string, std::uint64_t> numbers(const nlohmann::json& doc) {
  std::map<std::string, std::uint64_t> out{{"cached", doc["totals"]["cached_bytes"].get<std::uint64_t>()},
                                           {"wasted", doc["totals"]["wasted_bytes"].get<std::uint64_t>()}};
  for (const auto& f : doc["files"]) {
    if (f["cached_bytes"] == 0) continue;  // the model also lists files it saw and lost
    out["cached " + f["path"].get<std::string>()] = f["cached_bytes"].get<std::uint64_t>();
    out["shared " + f["path"].get<std::string>()] = f["shared_cached_bytes"].get<std::uint64_t>();
  }
  return out;
}

// Issue 18: a process still reading a copy in (sequentially, with readahead) while the daemon
// evicts it. Pages land during each eviction; once the reader is done the daemon's model must
// equal a fresh scan exactly, and its next passes must evict what landed: no waste left. The
// keeper is a canonical copy (as after a merge), so the copy being read is the one evicted.
TEST_F(daemon_scene, PagesReadInDuringAnEvictionAreEvictedNextPass) {
  ASSERT_EQ(mkdir(fs_->path(".dupcache-canonical").c_str(), 0755), 0);
  const std::string keeper = fs_->path(".dupcache-canonical/k");
  reflink(fs_->path("a"), keeper);
  read_all(keeper);
  auto d = start(config("[policy]\ninterval = \"100ms\"\ncooldown = \"100ms\"\nrefault_window = \"1ms\"\n"
                        "[metrics]\nlisten = \"\"\n"));
  for (int round = 0; round < 3; ++round) {
    const int fd = open(fs_->path("b").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    std::vector<char> buf(16 * KiB);
    while (read(fd, buf.data(), buf.size()) > 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    close(fd);
  }
  // Quiescent: nothing reads any more. The daemon sees what is left and evicts it.
  ASSERT_TRUE(eventually([&] { return wasted() == 0; }, 10))
      << "waste left after the reader stopped: " << wasted() << "\n" << d->log();
  std::map<std::string, std::uint64_t> model, truth;
  ASSERT_TRUE(eventually([&] {
    auto r = run({DUPCACHE_BINARY, "report", "--from-daemon", "--socket", control(), "--json"});
    auto one = run({DUPCACHE_BINARY, "report", "--json", fs_->dir()});
    if (r.status != 0 || one.status != 0) return false;
    model = numbers(nlohmann::json::parse(r.out));
    truth = numbers(nlohmann::json::parse(one.out));
    return model == truth;
  }, 10)) << "the daemon's model differs from a fresh scan\n" << d->log();
  EXPECT_EQ(cached_pages(keeper), size_ / ps_) << "the keeper lost its pages";
  EXPECT_EQ(cached_pages(fs_->path("b")), 0u);
  EXPECT_EQ(d->stop(), 0) << d->log();
  int evicted_b = 0;
  for (const auto& j : journal_lines(journal())) {
    if (j.value("action", "") == "evict" && j["path"] == fs_->path("b") && j["result"] == "ok") ++evicted_b;
  }
  EXPECT_GE(evicted_b, 2) << "b was not evicted while it was read in\n" << d->log();
  for (const char* n : {"a", "b"}) EXPECT_EQ(checksum(fs_->path(n)), sum_) << n;
  EXPECT_EQ(checksum(keeper), sum_);
}

// Issue 18: the daemon plans each pass from the state its previous pass left. Rate-limited to
// 256 KiB a pass at the shortest interval, it needs many passes over the same copies; none may
// plan pages it has already dropped (journaled nothing_freed), and the bytes freed add up to
// the waste there was.
TEST_F(daemon_scene, EachPassPlansFromWhatThePreviousPassLeft) {
  for (const char* n : {"a", "b", "c"}) read_all(fs_->path(n));
  auto d = start(config("[policy]\ninterval = \"100ms\"\ncooldown = \"1ms\"\nrate_limit = \"2560KiB\"\n"
                        "[metrics]\nlisten = \"\"\n"));
  ASSERT_TRUE(eventually([&] { return wasted() == 0; }, 30)) << d->log();
  EXPECT_EQ(d->stop(), 0) << d->log();
  std::uint64_t freed = 0;
  int evictions = 0;
  for (const auto& j : journal_lines(journal())) {
    if (j.value("action", "") != "evict") continue;
    ++evictions;
    EXPECT_EQ(j["result"], "ok") << j.dump();
    EXPECT_EQ(j["freed_bytes"], j["planned_bytes"]) << j.dump();
    freed += j["freed_bytes"].get<std::uint64_t>();
  }
  EXPECT_EQ(freed, 2 * size_);
  EXPECT_GE(evictions, static_cast<int>(2 * size_ / (256 * KiB))) << "the rate limit did not hold";
}

// The DaemonSet: its metrics port admitted from Prometheus only, and the daemon under the seccomp
// profile shipped beside it, which allows every call the systemd unit's filter adds to the service
// set and none of those CAP_SYS_ADMIN would otherwise open.
TEST(DaemonService, KubernetesManifestsConfineTheDaemon) {
  const std::string dir = std::string(DUPCACHE_SOURCE_DIR) + "/packaging/";
  const std::string yaml = contents(dir + "kubernetes/dupcache-daemonset.yaml");
  const auto np = yaml.find("kind: NetworkPolicy");
  ASSERT_NE(np, std::string::npos);
  const std::string policy = yaml.substr(np);
  for (const char* s : {"policyTypes: [Ingress, Egress]", "namespaceSelector:", "podSelector:", "{protocol: TCP, port: 9477}",
                        "egress: []"}) {
    EXPECT_NE(policy.find(s), std::string::npos) << s;
  }
  EXPECT_NE(yaml.find("seccompProfile:\n              type: Localhost\n              localhostProfile: profiles/dupcache.json"),
            std::string::npos);
  EXPECT_EQ(yaml.find("type: Unconfined"), std::string::npos);

  const auto profile = nlohmann::json::parse(contents(dir + "kubernetes/dupcache-seccomp.json"));
  EXPECT_EQ(profile["defaultAction"], "SCMP_ACT_ERRNO");
  std::set<std::string> allowed;
  for (const auto& rule : profile["syscalls"]) {
    if (rule["action"] == "SCMP_ACT_ALLOW" && !rule.contains("args")) {
      for (const auto& n : rule["names"]) allowed.insert(n.get<std::string>());
    }
  }
  // The unit's additions to @system-service, read from the unit itself.
  const std::string unit = contents(dir + "systemd/dupcache.service");
  const auto at = unit.find("\nSystemCallFilter=");
  ASSERT_NE(at, std::string::npos);
  std::istringstream filter(unit.substr(at + 18, unit.find('\n', at + 1) - at - 18));
  int extras = 0;
  for (std::string name; filter >> name;) {
    if (name[0] == '@') continue;
    ++extras;
    EXPECT_TRUE(allowed.count(name)) << name << " is in the unit's filter but not in the profile";
  }
  EXPECT_GE(extras, 7);
  for (const char* s : {"read", "openat", "openat2", "mmap", "ioctl", "fadvise64", "statx", "memfd_create", "getrandom"}) {
    EXPECT_TRUE(allowed.count(s)) << s;
  }
  // open_tree and mount_setattr: the scans' nodev copy of the mount tree is not worth the power
  // to change the attributes of the daemon's own mounts (the unit says why).
  for (const char* s : {"mount", "umount2", "open_tree", "mount_setattr", "unshare", "setns", "clone3", "keyctl", "add_key", "io_uring_setup", "userfaultfd",
                        "ptrace", "process_vm_writev", "init_module", "kexec_load", "pivot_root"}) {
    EXPECT_FALSE(allowed.count(s)) << s;
  }
}

TEST(DaemonService, UnitVerifiesAndExampleConfigParses) {
  DUPCACHE_REQUIRE_ROOT("systemd-analyze");
  const std::string src = std::string(DUPCACHE_SOURCE_DIR) + "/packaging/systemd/dupcache.service";
  std::ifstream in(src);
  ASSERT_TRUE(in) << src;
  std::string unit((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_NE(unit.find("Type=notify"), std::string::npos);
  const auto at = unit.find("/usr/sbin/dupcache");
  ASSERT_NE(at, std::string::npos);
  unit.replace(at, std::strlen("/usr/sbin/dupcache"), DUPCACHE_BINARY);  // verify checks the binary exists
  char tmpl[] = "/tmp/dupcache-unit-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string p = std::string(tmpl) + "/dupcache.service";
  std::ofstream(p) << unit;
  // --man=no: the man pages are not installed here (the install test covers them).
  auto r = run({"systemd-analyze", "verify", "--man=no", p});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "") << r.err;
  // The hardening the daemon needs no less of (issue 15): each present, and the overall exposure
  // systemd computes at most 3.5 ("OK"; 4.6 before them).
  for (const char* d : {"ProtectKernelTunables=yes", "SystemCallFilter=@system-service bpf perf_event_open", "SystemCallErrorNumber=EPERM",
                        "IPAddressDeny=any", "IPAddressAllow=localhost", "MemoryMax=", "LimitNOFILE="}) {
    EXPECT_NE(unit.find(std::string("\n") + d), std::string::npos) << d;
  }
  auto sec = run({"systemd-analyze", "security", "--offline=yes", "--threshold=35", p});
  EXPECT_EQ(sec.status, 0) << sec.out << sec.err;
  // With the merge drop-in, as dupcache-daemon(8) says to install it.
  std::filesystem::create_directory(std::string(tmpl) + "/dupcache.service.d");
  std::filesystem::copy_file(std::string(DUPCACHE_SOURCE_DIR) + "/packaging/systemd/dupcache-merge.conf",
                             std::string(tmpl) + "/dupcache.service.d/merge.conf");
  r = run({"systemd-analyze", "verify", "--man=no", p});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "") << r.err;
  sec = run({"systemd-analyze", "security", "--offline=yes", "--threshold=40", p});
  EXPECT_EQ(sec.status, 0) << sec.out << sec.err;
  std::filesystem::remove_all(tmpl);
  auto c = run({DUPCACHE_BINARY, "daemon", "--check-config", "-c",
                std::string(DUPCACHE_SOURCE_DIR) + "/packaging/dupcache.toml"});
  EXPECT_EQ(c.status, 0) << c.err;
}

}  // namespace
}  // namespace dupcache::testing
