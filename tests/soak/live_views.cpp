// SPDX-License-Identifier: GPL-2.0-only
#include "soak/live_views.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace dupcache::soak {
namespace {

std::uint64_t u64(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

std::uint64_t absdiff(std::uint64_t a, std::uint64_t b) { return a > b ? a - b : b - a; }

}  // namespace

view view_of(const nlohmann::json& j) {
  view v;
  if (!j.is_object() || !j.contains("totals")) {
    v.error = "not a report document";
    return v;
  }
  const auto& t = j["totals"];
  v.cached = u64(t, "cached_bytes");
  v.wasted = u64(t, "wasted_bytes");
  v.files_cached = u64(t, "files_cached");
  for (const auto& f : j["files"]) {
    file_row r;
    r.path = f.value("path", std::string("?"));
    r.cached = u64(f, "cached_bytes");
    r.shared = u64(f, "shared_cached_bytes");
    r.wasted = u64(f, "wasted_bytes");
    r.dirty = u64(f, "dirty_bytes");
    if (r.cached == 0 && r.shared == 0 && r.wasted == 0 && r.dirty == 0) continue;
    v.files[f.value("fs", std::string("?")) + "/" + std::to_string(u64(f, "subvol")) + "/" + std::to_string(u64(f, "ino"))] =
        std::move(r);
  }
  v.iteration = u64(j, "iteration");
  v.events = u64(j, "events");
  v.lost_events = u64(j, "lost_events");
  v.applied_before_ns = u64(j, "applied_before_ns");
  if (auto it = j.find("index"); it != j.end() && it->is_object()) {
    v.index_entries = u64(*it, "entries");
    v.rescans = u64(*it, "rescans");
    v.compactions = u64(*it, "compactions");
    v.late_records = u64(*it, "late_records");
    v.audit_repairs = u64(*it, "audit_repairs");
  }
  return v;
}

bool same_state(const view& a, const view& b) {
  return a.error.empty() && b.error.empty() && a.cached == b.cached && a.wasted == b.wasted &&
         a.files_cached == b.files_cached && a.files == b.files;
}

namespace {

// For a file the live model has and the tree does not: which processes still hold it (open or
// mapped, so its pages can stay cached), as "pid (comm)" or "no process".
std::string holders_of(const std::string& path) {
  const std::string deleted = path + " (deleted)";
  std::string out;
  std::error_code ec;
  for (const auto& pd : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid = pd.path().filename().string();
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    bool held = false;
    std::error_code ec2;
    for (const auto& fd : std::filesystem::directory_iterator(pd.path() / "fd", ec2)) {
      std::error_code ec3;
      const auto target = std::filesystem::read_symlink(fd.path(), ec3);
      if (!ec3 && (target == deleted || target == path)) held = true;
    }
    std::ifstream maps(pd.path() / "maps");
    for (std::string line; !held && std::getline(maps, line);) held = line.find(deleted) != std::string::npos;
    if (!held) continue;
    std::ifstream comm(pd.path() / "comm");
    std::string name;
    std::getline(comm, name);
    out += (out.empty() ? "" : ", ") + pid + " (" + name + ")";
  }
  struct stat st {};
  const std::string where = ::lstat(path.c_str(), &st) != 0 ? "the path is gone"
                                                              : "the path is inode " + std::to_string(st.st_ino) +
                                                                    " with " + std::to_string(st.st_nlink) + " link(s)";
  return (out.empty() ? "no process" : out) + "; " + where;
}

}  // namespace

drift compare(const view& live, const view& fresh) {
  drift d;
  auto note = [&](std::string line) {
    if (d.details.size() < 20) d.details.push_back(std::move(line));
  };
  auto total = [&](const char* what, std::uint64_t l, std::uint64_t f, bool bytes) {
    if (l == f) return;
    if (bytes) d.bytes += absdiff(l, f);
    note(std::string("total ") + what + ": live " + std::to_string(l) + ", fresh scan " + std::to_string(f));
  };
  total("cached_bytes", live.cached, fresh.cached, true);
  total("wasted_bytes", live.wasted, fresh.wasted, true);
  total("files_cached", live.files_cached, fresh.files_cached, false);
  const file_row none;
  std::map<std::string, std::pair<const file_row*, const file_row*>> rows;
  for (const auto& [k, r] : live.files) rows[k].first = &r;
  for (const auto& [k, r] : fresh.files) rows[k].second = &r;
  for (const auto& [k, p] : rows) {
    const file_row& l = p.first ? *p.first : none;
    const file_row& f = p.second ? *p.second : none;
    const std::uint64_t diff =
        absdiff(l.cached, f.cached) + absdiff(l.shared, f.shared) + absdiff(l.wasted, f.wasted) + absdiff(l.dirty, f.dirty);
    if (p.first && p.second && l.path != f.path) {
      // Counted, and shown for the first few only: the live model keeps the path it first saw.
      if (++d.stale_paths <= 3) note("inode " + k + ": live path " + l.path + ", fresh scan " + f.path);
    }
    if (diff == 0) continue;
    d.bytes += diff;
    const std::string& path = p.second ? f.path : l.path;
    note(path + " (" + k + "): live cached/shared/wasted/dirty " + std::to_string(l.cached) + "/" +
         std::to_string(l.shared) + "/" + std::to_string(l.wasted) + "/" + std::to_string(l.dirty) + ", fresh scan " +
         std::to_string(f.cached) + "/" + std::to_string(f.shared) + "/" + std::to_string(f.wasted) + "/" +
         std::to_string(f.dirty) + (p.first && !p.second ? "; not in the scan, held by " + holders_of(l.path) : ""));
  }
  return d;
}

child::child(const std::vector<std::string>& argv, bool capture, const std::string& log_path) {
  int p[2] = {-1, -1};
  if (capture && ::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe: " + std::string(std::strerror(errno)));
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) throw std::runtime_error("open " + log_path + ": " + std::strerror(errno));
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(capture ? p[1] : log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }
  ::close(log);
  if (capture) {
    ::close(p[1]);
    out_ = p[0];
  }
  if (pid_ < 0) throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
}

child::~child() {
  if (pid_ > 0) stop(0);
  if (out_ >= 0) ::close(out_);
}

int child::stop(double timeout_s) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, timeout_s > 0 ? SIGTERM : SIGKILL);
  int status = 0;
  for (int waited = 0;; waited += 50) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (waited >= timeout_s * 1000) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    ::usleep(50000);
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

top_reader::top_reader(int fd) : thread_([this, fd] { run(fd); }) {}
top_reader::~top_reader() {
  if (thread_.joinable()) thread_.join();  // ends when the writer's side closes
}

void top_reader::run(int fd) {
  std::string buf, line;
  char chunk[1 << 16];
  for (;;) {
    const auto n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    buf.append(chunk, static_cast<std::size_t>(n));
    for (std::size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
      line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      view v = view_of(nlohmann::json::parse(line, nullptr, false));
      {
        std::lock_guard lock(mu_);
        latest_ = std::move(v);
      }
      ++count_;
    }
  }
}

view top_reader::latest() const {
  std::lock_guard lock(mu_);
  return latest_;
}

bool top_reader::wait_count(std::uint64_t n, double timeout_s) const {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (count_.load() < n) {
    if (std::chrono::steady_clock::now() > end) return false;
    ::usleep(20000);
  }
  return true;
}

view ask_daemon(const std::string& socket_path) {
  view v;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    v.error = "connect to " + socket_path + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return v;
  }
  const std::string req = "{\"sample\": true}\n";
  std::string answer;
  if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
    char chunk[1 << 16];
    for (ssize_t n; (n = ::read(fd, chunk, sizeof chunk)) > 0;) answer.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  v = view_of(nlohmann::json::parse(answer, nullptr, false));
  if (!v.error.empty()) v.error = "the daemon answered: " + answer.substr(0, 200);
  return v;
}

proc_figures figures_of(pid_t pid) {
  proc_figures f;
  const std::string base = "/proc/" + std::to_string(pid);
  std::ifstream status(base + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) f.rss_kib = std::stoull(line.substr(6));
  }
  if (DIR* d = ::opendir((base + "/fd").c_str())) {
    while (const dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++f.fds;
    ::closedir(d);
  }
  std::ifstream stat(base + "/stat");
  std::string s((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const auto close = s.rfind(')');
  if (close != std::string::npos) {
    std::istringstream in(s.substr(close + 2));
    std::string x;
    std::uint64_t ut = 0, st = 0;
    for (int i = 1; i <= 13 && in >> x; ++i) {
      if (i == 12) ut = std::stoull(x);
      if (i == 13) st = std::stoull(x);
    }
    f.cpu_s = static_cast<double>(ut + st) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  return f;
}

}  // namespace dupcache::soak
