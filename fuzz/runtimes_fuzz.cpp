// SPDX-License-Identifier: GPL-2.0-only
// The container runtimes' metadata files (cgroup/runtimes.hpp), which any container owner or
// rootless user can shape. The input is a set of files separated by lines "%%%%": the first goes
// to storage.conf, the next to containers.json, and so on (table below); a missing part is a
// missing file. They are written into a scratch root, read by the real catalog, and every name
// that comes out must be printable. The whole input also goes through clean_name().
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "cgroup/runtimes.hpp"

namespace {

const std::string docker_id(64, 'a');

// Where each part of the input goes, below the scratch root.
const std::vector<std::string> files = {
    "/etc/containers/storage.conf",
    "/var/lib/containers/storage/overlay-containers/containers.json",
    "/var/lib/docker/containers/" + docker_id + "/config.v2.json",
    "/etc/docker/daemon.json",
    "/var/lib/lxc/web/config",
    "/etc/lxc/lxc.conf",
    "/etc/passwd",
    "/var/lib/docker/image/overlay2/layerdb/mounts/" + docker_id + "/mount-id",
    "/run/containers/storage/overlay-containers/volatile-containers.json",
    "/home/alice/.config/containers/storage.conf",
};
// Directories the seeds' metadata points at, so that roots are found and returned.
const std::vector<std::string> dirs = {
    "/var/lib/containers/storage/overlay/l1/diff", "/var/lib/containers/storage/overlay/l1/merged",
    "/var/lib/docker/overlay2/m1/diff",            "/var/lib/docker/overlay2/m1/merged",
    "/var/lib/lxc/web/rootfs",                      "/var/lib/machines/box",
    "/home/alice/.local/share/containers/storage/overlay-containers",
    "/var/lib/incus/containers/c1/rootfs",
};

std::string make_root() {
  char tmpl[] = "/tmp/dupcache-fuzz-runtimes-XXXXXX";
  if (!::mkdtemp(tmpl)) std::abort();
  std::string root = tmpl;
  for (const auto& f : files) std::filesystem::create_directories(std::filesystem::path(root + f).parent_path());
  for (const auto& d : dirs) std::filesystem::create_directories(root + d);
  return root;
}

void write_file(const std::string& path, std::string_view content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) std::abort();
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) std::abort();
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

bool printable(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c >= 0x7f) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string root = [] {
    std::string r = make_root();
    static std::string to_remove = r;
    std::atexit([] { std::error_code ec; std::filesystem::remove_all(to_remove, ec); });
    return r;
  }();
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const std::string cleaned = dupcache::cgroup::clean_name(std::string(input));
  if (cleaned.size() != input.size() || !printable(cleaned)) std::abort();

  constexpr std::string_view sep = "\n%%%%\n";
  std::size_t pos = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string path = root + files[i];
    if (pos > input.size()) {
      ::unlink(path.c_str());
      continue;
    }
    std::size_t end = input.find(sep, pos);
    if (end == std::string_view::npos) end = input.size();
    write_file(path, input.substr(pos, end - pos));
    pos = end + sep.size();
  }

  dupcache::cgroup::runtime_metadata md(root);
  for (const auto& k : md.containers()) {
    if (!printable(k.name)) std::abort();
    for (const auto& r : k.roots)
      if (r.rfind(root, 0) != 0) std::abort();  // never outside the root it was given
  }
  for (const auto& s : md.storage()) {
    if (s.path.rfind(root, 0) != 0) std::abort();
  }
  if (auto k = md.docker_container(docker_id); k && !printable(k->name)) std::abort();
  return 0;
}
