// SPDX-License-Identifier: GPL-2.0-only
// dupcache_soak: the churn soak (bench/README.md, "Churn soak"). On the btrfs and XFS mounts it is given
// (the caller makes and removes them), it runs the churn generator for a time, with
// `dupcache top --json` and `dupcache daemon` (acting: evict and pageout, on these mounts only)
// watching, part of the reads in a memory cgroup with a low limit, and DAMON left as it is. At
// quiescent points it checks that both live models equal a fresh `dupcache report --json --all-extents`, that
// every file holds what the churn wrote, and records lost events, repairs and resources.
// Exit 0: every check passed; 1: a check failed (the lines say which); 2: usage.
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <glob.h>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "util/clock.hpp"
#include "soak/churn.hpp"
#include "soak/live_views.hpp"

namespace soak = dupcache::soak;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  std::string dupcache, btrfs, xfs, work, json_out;
  double seconds = 60, check_every = 30;
  std::uint64_t seed = 1;
  std::uint64_t ring_buffer = 256 << 10;  // top's: small, so that a burst overflows it
  std::uint64_t cgroup_limit = 16 << 20;
  int burst_ms = 3000;
  bool subvolumes = true;
};

double since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  if (!f.flush()) throw std::runtime_error("write " + path);
}

std::string read_trimmed(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

// ---- the memory cgroup and the worker reading inside it ----

// A memory cgroup with a low limit: v1 (/sys/fs/cgroup/memory) where mounted, else cgroup2
// (/sys/fs/cgroup/unified on a hybrid host, or /sys/fs/cgroup). Removed when destroyed.
struct memory_cgroup {
  std::string dir, procs, limit_file, how;
  explicit memory_cgroup(std::uint64_t limit) {
    const std::string name = "dupcache-soak-" + std::to_string(::getpid());
    if (std::filesystem::exists("/sys/fs/cgroup/memory/memory.limit_in_bytes")) {
      dir = "/sys/fs/cgroup/memory/" + name;
      limit_file = "memory.limit_in_bytes";
      how = "cgroup v1 memory";
    } else {
      std::string root = "/sys/fs/cgroup/unified";
      if (read_trimmed(root + "/cgroup.controllers").find("memory") == std::string::npos) root = "/sys/fs/cgroup";
      if (read_trimmed(root + "/cgroup.controllers").find("memory") == std::string::npos)
        throw std::runtime_error("no memory cgroup controller (neither v1 nor cgroup2)");
      std::ofstream(root + "/cgroup.subtree_control") << "+memory";
      dir = root + "/" + name;
      limit_file = "memory.max";
      how = "cgroup2";
    }
    std::filesystem::create_directory(dir);
    write_file(dir + "/" + limit_file, std::to_string(limit));
    procs = dir + "/cgroup.procs";
  }
  ~memory_cgroup() { ::rmdir(dir.c_str()); }
  // How often the limit was hit (reclaim under it).
  std::uint64_t limit_hits() const {
    if (limit_file == "memory.limit_in_bytes") {
      const auto s = read_trimmed(dir + "/memory.failcnt");
      return s.empty() ? 0 : std::stoull(s);
    }
    std::ifstream f(dir + "/memory.events");
    std::string k;
    std::uint64_t v = 0;
    while (f >> k >> v)
      if (k == "max") return v;
    return 0;
  }
};

sigjmp_buf bus_jump;
void on_bus(int) { siglongjmp(bus_jump, 1); }

// Maps the file and faults every page; a page beyond a concurrent truncation raises SIGBUS,
// which ends the walk.
__attribute__((noinline)) void fault_all(int fd, std::size_t len) {
  void* m = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return;
  if (sigsetjmp(bus_jump, 1) == 0) {
    volatile unsigned sum = 0;
    for (std::size_t off = 0; off < len; off += 4096) sum = sum + static_cast<const unsigned char*>(m)[off];
  }
  ::munmap(m, len);
}

// The worker: reads whole files and faults mmaps of the churn's files, inside the cgroup, until
// told to pause ('p': it answers 'k' once it holds nothing open) or quit ('q').
void worker_main(const std::vector<std::string>& mounts, const std::string& procs, int cmd, int ack, std::uint64_t seed) {
  std::ofstream(procs) << ::getpid();
  signal(SIGBUS, on_bus);  // a file truncated under the mapping
  std::mt19937_64 rng(seed);
  std::vector<std::string> files;
  auto refresh = [&] {
    files.clear();
    for (const auto& m : mounts) {
      std::error_code ec;
      for (auto it = std::filesystem::recursive_directory_iterator(m, ec); !ec && it != std::filesystem::recursive_directory_iterator();
           it.increment(ec)) {
        if (it->path().string().find("/burst/") != std::string::npos) continue;
        std::error_code e2;
        if (it->is_regular_file(e2)) files.push_back(it->path().string());
      }
    }
  };
  auto last_refresh = clock_type::now() - std::chrono::hours(1);
  std::vector<char> buf(1 << 16);
  for (;;) {
    char c = 0;
    while (::read(cmd, &c, 1) == 1) {
      if (c == 'q') _exit(0);
      if (c == 'p') {
        (void)!::write(ack, "k", 1);
        const int fl = ::fcntl(cmd, F_GETFL);
        ::fcntl(cmd, F_SETFL, fl & ~O_NONBLOCK);
        while (::read(cmd, &c, 1) == 1 && c == 'p') {
        }
        ::fcntl(cmd, F_SETFL, fl);
        if (c == 'q') _exit(0);
        last_refresh = clock_type::now() - std::chrono::hours(1);
      }
    }
    if (clock_type::now() - last_refresh > std::chrono::seconds(2)) {
      refresh();
      last_refresh = clock_type::now();
    }
    if (files.empty()) {
      ::usleep(10000);
      continue;
    }
    const std::string& p = files[rng() % files.size()];
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    ::fstat(fd, &st);
    if (rng() % 2 == 0 || st.st_size == 0) {
      (void)::posix_fadvise(fd, 0, 0, rng() % 2 ? POSIX_FADV_RANDOM : POSIX_FADV_SEQUENTIAL);
      while (::read(fd, buf.data(), buf.size()) > 0) {
      }
    } else {
      fault_all(fd, static_cast<std::size_t>(st.st_size));
    }
    ::close(fd);
  }
}

struct worker {
  pid_t pid = -1;
  int cmd = -1, ack = -1;
  worker(const std::vector<std::string>& mounts, const memory_cgroup& cg, std::uint64_t seed) {
    int c[2], a[2];
    if (::pipe(c) != 0 || ::pipe(a) != 0) throw std::runtime_error("pipe");
    pid = ::fork();
    if (pid == 0) {
      ::close(c[1]);
      ::close(a[0]);
      ::fcntl(c[0], F_SETFL, O_NONBLOCK);
      worker_main(mounts, cg.procs, c[0], a[1], seed);
      _exit(0);
    }
    ::close(c[0]);
    ::close(a[1]);
    cmd = c[1];
    ack = a[0];
  }
  void pause() {
    char k = 0;
    if (::write(cmd, "p", 1) != 1 || ::read(ack, &k, 1) != 1) throw std::runtime_error("the cgroup worker is gone");
  }
  void resume() { (void)!::write(cmd, "r", 1); }
  ~worker() {
    if (pid > 0) {
      (void)!::write(cmd, "q", 1);
      ::waitpid(pid, nullptr, 0);
    }
    ::close(cmd);
    ::close(ack);
  }
};

std::string damon_state() {
  glob_t g{};
  std::string states;
  if (::glob("/sys/kernel/mm/damon/admin/kdamonds/*/state", 0, nullptr, &g) == 0) {
    for (std::size_t i = 0; i < g.gl_pathc; ++i) states += (states.empty() ? "" : ",") + read_trimmed(g.gl_pathv[i]);
  }
  globfree(&g);
  return states.empty() ? "absent" : states;
}

}  // namespace

namespace {

struct check_result {
  double at_s = 0;
  bool stable = false;
  int attempts = 0;
  soak::drift top, daemon;
  bool top_persists = false, daemon_persists = false;  // still there a round later
  // The plain fresh scan (`report` without --all-extents: only extents FIEMAP flags shared are
  // indexed), taken while the cache held still, against the reference (see compare_live).
  bool plain_taken = false;
  soak::drift plain_vs_all;
  std::uint64_t top_lost = 0, daemon_lost = 0;        // since start
  std::uint64_t top_events = 0, daemon_events = 0;
  soak::view top_view, daemon_view;  // the samples compared (their index figures)
  bool burst = false;
  std::uint64_t verified_files = 0, verified_bytes = 0;
  std::vector<std::string> content_errors;
  std::uint64_t fresh_cached = 0, fresh_wasted = 0;
};

soak::view fresh_scan(const options& o, bool all_extents = true) {
  std::vector<std::string> argv{o.dupcache, "report", "--json", o.btrfs, o.xfs};
  if (all_extents) argv.push_back("--all-extents");
  auto r = dupcache::testing::run(argv, 300);
  soak::view v = soak::view_of(nlohmann::json::parse(r.out, nullptr, false));
  if (r.status != 0) v.error = "dupcache report exited " + std::to_string(r.status) + ": " + r.err.substr(0, 300);
  return v;
}

// Samples of both live models that are current to since_ns (CLOCK_MONOTONIC): every change
// made before it is in their numbers (the samples' applied_before_ns: records applied, the
// files they left in doubt read again, lost records repaired). False if none is within 30 s.
bool later_samples(const soak::top_reader& top, const std::string& sock, std::uint64_t since_ns, soak::view* t,
                   soak::view* d) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    *t = top.latest();
    if (t->error.empty() && t->applied_before_ns >= since_ns) break;
    if (std::chrono::steady_clock::now() > end) return false;
    top.wait_count(top.count() + 1, 1);
  }
  for (;;) {
    *d = soak::ask_daemon(sock);
    if (d->error.empty() && d->applied_before_ns >= since_ns) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    ::usleep(50000);
  }
}

// The drift check at a quiescent point. Nothing of the churn runs (the generator is paused, the
// cgroup worker holds nothing open, everything written was synced), but DAMON keeps reclaiming
// and the daemon keeps evicting: the cache can still shrink. It never grows (nothing reads), so
// when two fresh scans A and B agree, the cache held still from the start of A to the end of B,
// and a live sample whose state was taken between them must equal A exactly. The two samples
// are taken in that window (later_samples); when A and B disagree, B becomes the next A. This
// keeps DAMON on throughout instead of pausing it for the comparison.
//
// The fresh scans index every placed extent (--all-extents), as the live model does: the
// physical addresses say which cached pages are the same blocks. A plain `report` indexes only
// the extents FIEMAP flags shared, and on btrfs that flag can lag: soon after snapshots and
// clones, extents of a snapshot's files that other files still map are not flagged shared for a
// second or two (seen: 0.1-0.6 MB of a soak's checks, gone 2 s later, while the live models
// equalled the --all-extents scan exactly). The plain scan's difference is printed beside the
// drift, not counted as drift.
void compare_live(const options& o, const soak::top_reader& top, const std::string& sock, check_result& c) {
  std::uint64_t a_ns = dupcache::monotonic_ns();
  soak::view a = fresh_scan(o);
  for (c.attempts = 1; c.attempts <= 30; ++c.attempts) {
    soak::view t, d;
    if (!later_samples(top, sock, a_ns, &t, &d)) {
      c.content_errors.push_back("no live samples current to the scan within 30 s");
      return;
    }
    const std::uint64_t b_ns = dupcache::monotonic_ns();
    soak::view b = fresh_scan(o);
    if (!a.error.empty() || !b.error.empty()) {
      c.content_errors.push_back("fresh scan failed: " + a.error + b.error);
      return;
    }
    if (!soak::same_state(a, b)) {
      a = std::move(b);
      a_ns = b_ns;
      continue;
    }
    c.stable = true;
    c.top = soak::compare(t, a);
    c.daemon = soak::compare(d, a);
    c.top_lost = t.lost_events;
    c.daemon_lost = d.lost_events;
    c.top_events = t.events;
    c.daemon_events = d.events;
    c.top_view = t;
    c.daemon_view = d;
    c.fresh_cached = a.cached;
    c.fresh_wasted = a.wasted;
    soak::view plain = fresh_scan(o, false);
    soak::view a1 = fresh_scan(o);
    if (plain.error.empty() && soak::same_state(a, a1)) {
      c.plain_taken = true;
      c.plain_vs_all = soak::compare(plain, a);
    }
    if (c.top.bytes == 0 && c.daemon.bytes == 0) return;
    // Is it a delay (gone a round later) or a state the model keeps?
    ::sleep(2);
    soak::view t2, d2;
    const std::uint64_t a2_ns = dupcache::monotonic_ns();
    soak::view a2 = fresh_scan(o);
    if (later_samples(top, sock, a2_ns, &t2, &d2)) {
      soak::view b2 = fresh_scan(o);
      if (soak::same_state(a2, b2)) {
        c.top_persists = soak::compare(t2, a2).bytes > 0;
        c.daemon_persists = soak::compare(d2, a2).bytes > 0;
      }
    }
    return;
  }
}

void print_drift(const char* who, const soak::drift& d, bool persists) {
  if (d.bytes == 0 && d.stale_paths == 0) return;
  std::printf("  %s drift %llu bytes (%s), %llu stale paths:\n", who, static_cast<unsigned long long>(d.bytes),
              d.bytes == 0 ? "none" : persists ? "still there 2 s later" : "gone 2 s later",
              static_cast<unsigned long long>(d.stale_paths));
  for (const auto& l : d.details) std::printf("    %s\n", l.c_str());
}

nlohmann::ordered_json figures_json(const soak::proc_figures& f) {
  return {{"rss_kib", f.rss_kib}, {"fds", f.fds}, {"cpu_s", f.cpu_s}};
}

int usage(const char* why) {
  std::fprintf(stderr,
               "dupcache_soak: %s\nusage: dupcache_soak --dupcache BIN --btrfs MOUNT --xfs MOUNT --work DIR "
               "[--seconds N] [--check-every S] [--seed N] [--ring-buffer BYTES] [--cgroup-limit BYTES] "
               "[--burst-ms MS] [--snapshots on|off] [--json FILE]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage(("no value after " + a).c_str());
    const std::string v = argv[++i];
    if (a == "--dupcache") o.dupcache = v;
    else if (a == "--btrfs") o.btrfs = v;
    else if (a == "--xfs") o.xfs = v;
    else if (a == "--work") o.work = v;
    else if (a == "--json") o.json_out = v;
    else if (a == "--seconds") o.seconds = std::stod(v);
    else if (a == "--check-every") o.check_every = std::stod(v);
    else if (a == "--seed") o.seed = std::stoull(v);
    else if (a == "--ring-buffer") o.ring_buffer = std::stoull(v);
    else if (a == "--cgroup-limit") o.cgroup_limit = std::stoull(v);
    else if (a == "--burst-ms") o.burst_ms = std::stoi(v);
    else if (a == "--snapshots") o.subvolumes = v != "off";
    else return usage(("unknown option " + a).c_str());
  }
  if (o.dupcache.empty() || o.btrfs.empty() || o.xfs.empty() || o.work.empty()) return usage("missing an option");
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const auto t0 = clock_type::now();
  const std::string damon_before = damon_state();
  std::printf("soak: %.0f s, seed %llu, checks every %.0f s, btrfs %s, xfs %s, DAMON %s\n", o.seconds,
              static_cast<unsigned long long>(o.seed), o.check_every, o.btrfs.c_str(), o.xfs.c_str(), damon_before.c_str());

  soak::churn ch({{o.btrfs, true}, {o.xfs, false}}, o.seed);
  if (!o.subvolumes) ch.without_subvolumes();
  ch.setup();

  // The daemon: acting (no dry run), on the soak's mounts only, deciding every 500 ms.
  const std::string sock = o.work + "/control.sock";
  write_file(o.work + "/dupcache.toml",
             "[watch]\npaths = [\"" + o.btrfs + "\", \"" + o.xfs + "\"]\n"
             "[policy]\ninterval = \"500ms\"\ncooldown = \"5s\"\nrefault_window = \"5s\"\nmax_backoff = \"20s\"\n"
             "rate_limit = \"1GiB\"\n"
             "[scope]\npaths = [\"" + o.btrfs + "\", \"" + o.xfs + "\"]\n"
             "[journal]\npath = \"" + o.work + "/actions.jsonl\"\n"
             "[metrics]\nlisten = \"\"\n"
             "[control]\nsocket = \"" + sock + "\"\n");
  soak::child daemon({o.dupcache, "daemon", "-c", o.work + "/dupcache.toml"}, false, o.work + "/daemon.log");
  soak::child top_proc({o.dupcache, "top", "-b", "--json", "-d", "0.5", "--no-containers", "--ring-buffer",
                        std::to_string(o.ring_buffer), o.btrfs, o.xfs},
                       true, o.work + "/top.log");
  soak::top_reader top(top_proc.out_fd());
  bool ready = top.wait_count(1, 120);
  for (int i = 0; ready && i < 1200 && !soak::ask_daemon(sock).error.empty(); ++i) ::usleep(100000);
  if (!ready || !soak::ask_daemon(sock).error.empty()) {
    std::printf("FAIL: top or the daemon did not start (see %s/top.log, %s/daemon.log)\n", o.work.c_str(), o.work.c_str());
    return 1;
  }
  memory_cgroup cg(o.cgroup_limit);
  worker w({o.btrfs, o.xfs}, cg, o.seed + 1);
  std::printf("soak: top pid %d, daemon pid %d, cgroup worker pid %d in %s (%s, limit %llu MiB)\n", top_proc.pid(),
              daemon.pid(), w.pid, cg.dir.c_str(), cg.how.c_str(), static_cast<unsigned long long>(o.cgroup_limit >> 20));

  const auto top_start = soak::figures_of(top_proc.pid()), daemon_start = soak::figures_of(daemon.pid());
  const std::uint64_t top_events0 = top.latest().events, daemon_events0 = soak::ask_daemon(sock).events;
  soak::proc_figures top_settled, daemon_settled;
  bool settled = false;
  const double settle_at = std::min(60.0, o.seconds / 3);
  const auto churn_start = clock_type::now();
  std::vector<check_result> checks;
  std::uint64_t steps = 0;
  int failures = 0;
  auto next_check = churn_start + std::chrono::duration<double>(o.check_every);
  const auto end = churn_start + std::chrono::duration<double>(o.seconds);
  for (int index = 0;; ++index) {
    const auto until = std::min(next_check, end);
    while (clock_type::now() < until) {
      ch.step();
      ++steps;
      if (!settled && since(churn_start) >= settle_at) {
        top_settled = soak::figures_of(top_proc.pid());
        daemon_settled = soak::figures_of(daemon.pid());
        settled = true;
      }
    }
    check_result c;
    // Every other check follows a burst with both consumers stopped: their ring buffers overflow.
    // The last check (the time is up) always follows a burst.
    const bool last = clock_type::now() >= end;
    c.burst = index % 2 == 1 || last;
    if (c.burst) {
      ::kill(top_proc.pid(), SIGSTOP);
      ::kill(daemon.pid(), SIGSTOP);
      ch.burst(o.burst_ms);
      ::kill(top_proc.pid(), SIGCONT);
      ::kill(daemon.pid(), SIGCONT);
    }
    w.pause();
    ::sync();
    ::sleep(1);  // sharing changes settle (100 ms) and written-back pages are re-resolved
    c.at_s = since(churn_start);
    compare_live(o, top, sock, c);
    auto bad = ch.verify(&c.verified_files, &c.verified_bytes);
    c.content_errors.insert(c.content_errors.end(), bad.begin(), bad.end());
    // An unstable check took no samples (0): no rise to show.
    auto rise = [](std::uint64_t now, std::uint64_t before) { return now > before ? now - before : 0; };
    const std::uint64_t prev_top_lost = checks.empty() ? 0 : checks.back().top_lost;
    const std::uint64_t prev_daemon_lost = checks.empty() ? 0 : checks.back().daemon_lost;
    const std::uint64_t prev_top_audit = checks.empty() ? 0 : checks.back().top_view.audit_repairs;
    const std::uint64_t prev_daemon_audit = checks.empty() ? 0 : checks.back().daemon_view.audit_repairs;
    std::printf("check %d at %.0f s%s: %s in %d round(s); drift top %llu B, daemon %llu B; lost top +%llu, daemon +%llu; "
                "audit repairs top +%llu, daemon +%llu; fresh cached %llu KiB, wasted %llu KiB; contents %llu files %llu KiB %s\n",
                index + 1, c.at_s, c.burst ? " (after a burst)" : "", c.stable ? "stable" : "NOT STABLE", c.attempts,
                static_cast<unsigned long long>(c.top.bytes), static_cast<unsigned long long>(c.daemon.bytes),
                static_cast<unsigned long long>(rise(c.top_lost, prev_top_lost)),
                static_cast<unsigned long long>(rise(c.daemon_lost, prev_daemon_lost)),
                static_cast<unsigned long long>(rise(c.top_view.audit_repairs, prev_top_audit)),
                static_cast<unsigned long long>(rise(c.daemon_view.audit_repairs, prev_daemon_audit)),
                static_cast<unsigned long long>(c.fresh_cached >> 10), static_cast<unsigned long long>(c.fresh_wasted >> 10),
                static_cast<unsigned long long>(c.verified_files), static_cast<unsigned long long>(c.verified_bytes >> 10),
                c.content_errors.empty() ? "ok" : "DIFFER");
    if (c.plain_taken && c.plain_vs_all.bytes > 0)
      std::printf("  the plain fresh scan (FIEMAP's shared flag trusted) differs by %llu B (not drift: see compare_live)\n",
                  static_cast<unsigned long long>(c.plain_vs_all.bytes));
    print_drift("top", c.top, c.top_persists);
    print_drift("daemon", c.daemon, c.daemon_persists);
    for (const auto& e : c.content_errors) std::printf("  %s\n", e.c_str());
    if (!c.stable || c.top.bytes || c.daemon.bytes || !c.content_errors.empty()) ++failures;
    if (c.burst && c.top_lost == prev_top_lost) {
      std::printf("  FAIL: the burst lost no events of top's ring buffer (%llu bytes): the repair was not exercised\n",
                  static_cast<unsigned long long>(o.ring_buffer));
      ++failures;
    }
    checks.push_back(std::move(c));
    if (last) break;
    w.resume();
    next_check = clock_type::now() + std::chrono::duration<double>(o.check_every);
  }

  const auto top_end = soak::figures_of(top_proc.pid()), daemon_end = soak::figures_of(daemon.pid());
  if (!settled) top_settled = top_start, daemon_settled = daemon_start;
  const auto& last = checks.back();
  const double top_mev = static_cast<double>(last.top_events - top_events0) / 1e6;
  const double daemon_mev = static_cast<double>(last.daemon_events - daemon_events0) / 1e6;
  // A repair: a check after a consumer lost events at which its model equals the fresh scan.
  std::uint64_t top_losses = 0, top_repairs = 0, daemon_losses = 0, daemon_repairs = 0;
  std::uint64_t top_drifts = 0, daemon_drifts = 0;
  for (std::size_t i = 0; i < checks.size(); ++i) {
    const auto& c = checks[i];
    top_drifts += c.top.bytes > 0;
    daemon_drifts += c.daemon.bytes > 0;
    if (c.top_lost > (i ? checks[i - 1].top_lost : 0)) {
      ++top_losses;
      top_repairs += c.stable && c.top.bytes == 0;
    }
    if (c.daemon_lost > (i ? checks[i - 1].daemon_lost : 0)) {
      ++daemon_losses;
      daemon_repairs += c.stable && c.daemon.bytes == 0;
    }
  }
  auto line = [](const char* who, const soak::proc_figures& s, const soak::proc_figures& m, const soak::proc_figures& e) {
    std::printf("%s: RSS %llu / %llu / %llu KiB, fds %llu / %llu / %llu (start / after settling / end)\n", who,
                static_cast<unsigned long long>(s.rss_kib), static_cast<unsigned long long>(m.rss_kib),
                static_cast<unsigned long long>(e.rss_kib), static_cast<unsigned long long>(s.fds),
                static_cast<unsigned long long>(m.fds), static_cast<unsigned long long>(e.fds));
  };
  std::printf("summary: %zu checks, %llu churn steps, %llu operation errors; drift at %llu checks (top), %llu (daemon); "
              "lost events before %llu checks (top), %llu (daemon), repaired (model = fresh scan) at %llu and %llu\n",
              checks.size(), static_cast<unsigned long long>(steps), static_cast<unsigned long long>(ch.counts().errors),
              static_cast<unsigned long long>(top_drifts), static_cast<unsigned long long>(daemon_drifts),
              static_cast<unsigned long long>(top_losses), static_cast<unsigned long long>(daemon_losses),
              static_cast<unsigned long long>(top_repairs), static_cast<unsigned long long>(daemon_repairs));
  line("top", top_start, top_settled, top_end);
  line("daemon", daemon_start, daemon_settled, daemon_end);
  std::printf("events: top %llu (lost %llu), daemon %llu (lost %llu); consumer CPU per million events: top %.2f s, "
              "daemon %.2f s\n",
              static_cast<unsigned long long>(last.top_events - top_events0), static_cast<unsigned long long>(last.top_lost),
              static_cast<unsigned long long>(last.daemon_events - daemon_events0),
              static_cast<unsigned long long>(last.daemon_lost), top_mev > 0 ? (top_end.cpu_s - top_start.cpu_s) / top_mev : 0,
              daemon_mev > 0 ? (daemon_end.cpu_s - daemon_start.cpu_s) / daemon_mev : 0);
  auto index_line = [](const soak::view& v) {
    return std::to_string(v.index_entries) + " entries (" + std::to_string(v.rescans) + " rescans, " +
           std::to_string(v.compactions) + " compactions, " + std::to_string(v.late_records) + " late records, " +
           std::to_string(v.audit_repairs) + " audit repairs)";
  };
  std::printf("index at the last check: top %s, daemon %s\n", index_line(last.top_view).c_str(),
              index_line(last.daemon_view).c_str());
  std::printf("cgroup %s: limit hit %llu times; DAMON %s at start, %s at end\n", cg.dir.c_str(),
              static_cast<unsigned long long>(cg.limit_hits()), damon_before.c_str(), damon_state().c_str());
  std::printf("operations:");
  for (const auto& [k, v] : ch.counts().done) std::printf(" %s %llu", k.c_str(), static_cast<unsigned long long>(v));
  std::printf("\n");
  for (const auto& e : ch.counts().first_errors) std::printf("  operation error: %s\n", e.c_str());
  if (ch.counts().errors) ++failures;
  // Flat: after settling, RSS grows by at most a quarter plus 8 MiB, fds by at most 4.
  auto flat = [&](const char* who, const soak::proc_figures& m, const soak::proc_figures& e) {
    if (e.rss_kib > m.rss_kib + m.rss_kib / 4 + 8192 || e.fds > m.fds + 4) {
      std::printf("FAIL: %s grew after settling: RSS %llu -> %llu KiB, fds %llu -> %llu\n", who,
                  static_cast<unsigned long long>(m.rss_kib), static_cast<unsigned long long>(e.rss_kib),
                  static_cast<unsigned long long>(m.fds), static_cast<unsigned long long>(e.fds));
      ++failures;
    }
  };
  flat("top", top_settled, top_end);
  flat("daemon", daemon_settled, daemon_end);
  const int top_status = top_proc.stop(10), daemon_status = daemon.stop(10);
  if (top_status != 0 || daemon_status != 0) {
    std::printf("FAIL: exit status top %d, daemon %d (logs in %s)\n", top_status, daemon_status, o.work.c_str());
    ++failures;
  }
  if (!o.json_out.empty()) {
    nlohmann::ordered_json j;
    j["seconds"] = since(churn_start);
    j["seed"] = o.seed;
    j["steps"] = steps;
    j["checks"] = nlohmann::ordered_json::array();
    for (const auto& c : checks)
      j["checks"].push_back({{"at_s", c.at_s}, {"stable", c.stable}, {"burst", c.burst}, {"top_drift_bytes", c.top.bytes},
                             {"daemon_drift_bytes", c.daemon.bytes}, {"top_lost_events", c.top_lost},
                             {"daemon_lost_events", c.daemon_lost}, {"top_stale_paths", c.top.stale_paths},
                             {"daemon_stale_paths", c.daemon.stale_paths}, {"top_drift", c.top.details},
                             {"daemon_drift", c.daemon.details}, {"content_errors", c.content_errors},
                             {"top_index_entries", c.top_view.index_entries},
                             {"daemon_index_entries", c.daemon_view.index_entries},
                             {"plain_scan_difference_bytes", c.plain_taken ? nlohmann::ordered_json(c.plain_vs_all.bytes)
                                                                           : nlohmann::ordered_json(nullptr)}});
    j["repairs"] = {{"top", top_repairs}, {"daemon", daemon_repairs}};
    j["cgroup_limit_hits"] = cg.limit_hits();
    j["top"] = {{"start", figures_json(top_start)}, {"settled", figures_json(top_settled)}, {"end", figures_json(top_end)},
                {"events", last.top_events - top_events0},
                {"index", {{"entries", last.top_view.index_entries}, {"rescans", last.top_view.rescans},
                           {"compactions", last.top_view.compactions}, {"late_records", last.top_view.late_records},
                           {"audit_repairs", last.top_view.audit_repairs}}}};
    j["daemon"] = {{"start", figures_json(daemon_start)}, {"settled", figures_json(daemon_settled)},
                   {"end", figures_json(daemon_end)}, {"events", last.daemon_events - daemon_events0},
                   {"index", {{"entries", last.daemon_view.index_entries}, {"rescans", last.daemon_view.rescans},
                              {"compactions", last.daemon_view.compactions},
                              {"late_records", last.daemon_view.late_records},
                              {"audit_repairs", last.daemon_view.audit_repairs}}}};
    j["failures"] = failures;
    std::ofstream(o.json_out) << j.dump(2) << "\n";
  }
  std::printf("%s (%.0f s)\n", failures ? "soak: FAILED" : "soak: passed", since(t0));
  return failures ? 1 : 0;
}
