// SPDX-License-Identifier: GPL-2.0-only
#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "fs_fixture.hpp"

namespace dupcache::testing {
namespace {

using clock_type = std::chrono::steady_clock;

// Starts argv with stdin on /dev/null and stdout, stderr on pipes; fds[0], fds[1] get their
// read ends.
pid_t spawn_piped(const std::vector<std::string>& argv, int fds[2]) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) throw std::runtime_error("pipe");
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  fds[0] = out_pipe[0];
  fds[1] = err_pipe[0];
  return pid;
}

std::uint64_t file_size(const std::string& p) {
  struct stat st {};
  if (stat(p.c_str(), &st) < 0) throw std::runtime_error("stat " + p);
  return static_cast<std::uint64_t>(st.st_size);
}

std::uint64_t pages_of(const std::string& p) { return (file_size(p) + page_size() - 1) / page_size(); }

}  // namespace

command_result run(const std::vector<std::string>& argv, int timeout_s) {
  int pipes[2];
  const pid_t pid = spawn_piped(argv, pipes);
  command_result r;
  const auto deadline = clock_type::now() + std::chrono::seconds(timeout_s);
  pollfd fds[2] = {{pipes[0], POLLIN, 0}, {pipes[1], POLLIN, 0}};
  int open_fds = 2;
  bool killed = false;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      killed = true;
      break;
    }
    if (poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[65536];
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  r.status = (!killed && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  return r;
}

void must(const std::vector<std::string>& argv) {
  auto r = run(argv);
  if (r.status != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error(cmd + "failed (" + std::to_string(r.status) + "): " + r.err);
  }
}

std::string join_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

bool eventually(const std::function<bool()>& pred, double timeout_s) {
  const auto deadline = clock_type::now() + std::chrono::duration<double>(timeout_s);
  while (!pred()) {
    if (clock_type::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

background::background(std::vector<std::string> argv) : argv_(std::move(argv)) { pid_ = spawn_piped(argv_, fds_); }

background::~background() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  for (int fd : fds_) {
    if (fd >= 0) close(fd);
  }
}

bool background::pump(int ms) {
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

void background::drain() {
  for (;;) {
    const std::size_t had = out_.size() + err_.size();
    pump(0);
    if (out_.size() + err_.size() == had) return;
  }
}

bool background::wait_for(const std::function<bool()>& pred, double timeout_s) {
  const auto deadline = clock_type::now() + std::chrono::duration<double>(timeout_s);
  while (!pred() && clock_type::now() < deadline) {
    if (!pump(50)) {
      // Both pipes closed: nothing more will arrive.
      return pred();
    }
  }
  return pred();
}

std::vector<std::string> background::out_lines() const {
  std::vector<std::string> v;
  std::size_t start = 0;
  for (std::size_t nl; (nl = out_.find('\n', start)) != std::string::npos; start = nl + 1) {
    v.push_back(out_.substr(start, nl - start));
  }
  return v;
}

int background::finish(double timeout_s) {
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

pin::pin(const std::string& path) {
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
  const std::size_t ps = page_size();
  std::vector<unsigned char> vec((len_ + ps - 1) / ps);
  if (mincore(addr_, len_, vec.data()) < 0) throw std::runtime_error("mincore " + path + ": " + std::strerror(errno));
  auto* base = static_cast<char*>(addr_);
  for (std::size_t i = 0; i < vec.size();) {
    if (!(vec[i] & 1)) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < vec.size() && (vec[j] & 1)) ++j;
    if (syscall(SYS_mlock, base + i * ps, std::min(len_, j * ps) - i * ps) < 0) {
      throw std::runtime_error("mlock " + path + ": " + std::strerror(errno));
    }
    i = j;
  }
}

pin::~pin() {
  if (addr_) {
    syscall(SYS_munlock, addr_, len_);
    munmap(addr_, len_);
  }
  if (fd_ >= 0) close(fd_);
}

void scene::add(const std::string& path) {
  pages_[path] = residency(path);
  hold(path);
}

void scene::track(const std::string& path) { pages_[path].assign(pages_of(path), 1); }

void scene::hold(const std::string& path) { pins_.push_back(std::make_unique<pin>(path)); }

std::uint64_t scene::cached_of(const std::string& path) const {
  const auto& want = pages_.at(path);
  const auto now = residency(path);
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < want.size() && i < now.size(); ++i) n += want[i] && now[i];
  return n;
}

bool scene::intact() const {
  for (const auto& [p, want] : pages_) {
    if (cached_of(p) != static_cast<std::uint64_t>(std::count(want.begin(), want.end(), 1))) return false;
  }
  return true;
}

void scene::restore() const {
  const std::uint64_t ps = page_size();
  for (const auto& [p, want] : pages_) {
    const auto now = residency(p);
    for (std::size_t i = 0; i < want.size(); ++i) {
      if (want[i] && (i >= now.size() || !now[i])) read_range(p, i * ps, ps);
    }
  }
}

std::string scene::describe() const {
  std::string s = "scene residency (expected pages cached/expected):";
  for (const auto& [p, want] : pages_) {
    s += " " + p + "=" + std::to_string(cached_of(p)) + "/" +
         std::to_string(std::count(want.begin(), want.end(), 1));
  }
  return s;
}

command_result run_on(const scene& sc, const std::vector<std::string>& argv, int timeout_s) {
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

}  // namespace dupcache::testing
