// SPDX-License-Identifier: GPL-2.0-only
// The daemon's control socket (daemon/control.hpp), its server end (the client end, reading the
// daemon's answer, is control_answer_fuzz.cpp).
//
// The request parser is control_server::answer(), a private member that is only
// reachable through the socket, so each input is sent as one connection's request to a real
// control_server (started once, on a scratch path, with a published sample holding files,
// groups and containers): connect, send, shut the write side, read the answer to the end. This
// also runs the bounded request reader (daemon/server.hpp) on every input.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "daemon/control.hpp"
#include "report/report.hpp"
#include "live/sample.hpp"

namespace {

using namespace dupcache;

live::sample make_sample() {
  live::sample s;
  auto& m = s.model;
  m.page_size = 4096;
  m.cached_bytes = 3 << 20;
  m.wasted_bytes = 1 << 20;
  m.files_scanned = 4;
  m.files_cached = 3;
  m.residency_method = "cachestat";
  m.copy_paths = {"/srv/a/lib.so", "/srv/b/lib.so", "/srv/c/\xff\n\x1b[31mname"};
  m.files.push_back({"/srv/a/lib.so", "btrfs:1234", 5, 257, 1 << 20, 1 << 20, 512 << 10, 0, 0});
  m.files.push_back({"/srv/b/lib.so", "btrfs:1234", 256, 257, 1 << 20, 1 << 20, 512 << 10, 4096, 1});
  m.files.push_back({"/srv/c/\xff\n\x1b[31mname", "xfs:abcd", 0, 99, 1 << 20, 0, 0, 0, 2});
  m.groups.push_back({{"/srv/a/lib.so", "/srv/b/lib.so"}, {0, 1}, 1 << 20, 1 << 20});
  m.filesystems.push_back({"btrfs:1234", "btrfs", "/srv", 3, 2, 2 << 20, 1 << 20});
  m.errors.push_back({"/srv/locked", "open failed: Permission denied"});
  m.skipped_mounts.push_back({"/srv/proc", "proc", true, ""});
  m.containers_known = true;
  cgroup::container_row web;
  web.runtime = "docker";
  web.id = std::string(64, 'a');
  web.name = "web";
  web.cgroup = "/system.slice/docker-" + web.id + ".scope";
  web.cached_bytes = 1 << 20;
  web.shared_cached_bytes = 1 << 20;
  web.wasted_bytes = 512 << 10;
  web.files.push_back({0, 1 << 20, 512 << 10});
  cgroup::container_row db = web;
  db.runtime = "podman";
  db.id = std::string(64, 'b');
  db.name = "db";
  db.cgroup = "/machine.slice/libpod-" + db.id + ".scope";
  db.files = {{1, 1 << 20, 512 << 10}};
  cgroup::container_row host;
  host.runtime = "host";
  host.cgroup = "/";
  host.cached_bytes = 1 << 20;
  m.containers = {web, db, host};
  s.iteration = 7;
  s.elapsed_s = 2.0;
  s.page_cache_bytes = 1ull << 30;
  s.live = true;
  s.mode = "live (tp_btf)";
  return s;
}

struct fixture {
  std::string dir, path;
  daemon::control_server server;
  fixture() {
    char tmpl[] = "/tmp/dupcache-fuzz-control-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    dir = tmpl;
    path = dir + "/control.sock";
    if (auto r = server.start(path); !r) {
      std::fprintf(stderr, "control fuzz: %s\n", r.err().message().c_str());
      std::abort();
    }
    server.publish(make_sample());
  }
  ~fixture() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

// One connection: the request, then the whole answer. No answer at all within 30 s is a hang (the
// server closes a connection 2 s after the connect at the latest; the margin is for loaded hosts).
std::string ask(const std::string& path, const std::uint8_t* data, std::size_t size) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) std::abort();
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();
  std::size_t sent = 0;
  while (sent < size) {
    const ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer (too large) and close before reading it all
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string answer;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 30000) != 1) {
      std::fprintf(stderr, "control fuzz: no answer within 30 s\n");
      std::abort();
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return answer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fixture f;
  const std::string answer = ask(f.path, data, size);
  // Every request that ends its line gets an answer (the connection may also be closed when the
  // line never ends).
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto nl = in.find('\n');
  if (nl != std::string_view::npos && nl < daemon::control_max_request && answer.empty()) {
    std::fprintf(stderr, "control fuzz: a complete request got no answer\n");
    std::abort();
  }
  return 0;
}
