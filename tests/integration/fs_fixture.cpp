// SPDX-License-Identifier: GPL-2.0-only
#include "fs_fixture.hpp"

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <random>
#include <stdexcept>

#ifndef DUPCACHE_BINARY
#error "DUPCACHE_BINARY must name the dupcache executable under test"
#endif

namespace dupcache::testing {
namespace {

struct fd_guard {
  int fd;
  explicit fd_guard(int f) : fd(f) {}
  ~fd_guard() {
    if (fd >= 0) close(fd);
  }
};

int open_or_throw(const std::string& path, int flags, mode_t mode = 0644) {
  int fd = open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("open " + path + ": " + std::strerror(errno));
  return fd;
}

bool have_tool(const std::string& tool) {
  for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"}) {
    if (access((std::string(dir) + tool).c_str(), X_OK) == 0) return true;
  }
  return false;
}

void fill(std::vector<char>& buf, std::uint64_t offset, std::uint32_t seed, bool compressible) {
  if (compressible) {
    // Text-like, compresses well but every 4 KiB block differs, so no two blocks are equal.
    for (std::size_t i = 0; i < buf.size(); ++i) {
      const std::uint64_t pos = offset + i;
      buf[i] = static_cast<char>('a' + ((pos / 4096 + seed) % 26));
      if (pos % 64 == 0) buf[i] = '\n';
    }
    return;
  }
  std::mt19937_64 rng(seed * 1000003ULL + offset);
  for (std::size_t i = 0; i + 8 <= buf.size(); i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(&buf[i], &v, 8);
  }
}

}  // namespace

std::uint64_t page_size() { return static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)); }

bool under_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

std::optional<std::string> missing_tool(const std::vector<std::string>& tools) {
  for (const auto& t : tools) {
    if (!have_tool(t)) return "needs " + t + " (install the package that provides it)";
  }
  return std::nullopt;
}

std::optional<std::string> cannot_run(const std::vector<std::string>& tools) {
  if (geteuid() != 0) return "needs root (loop devices and mount)";
  if (access("/dev/loop-control", F_OK) != 0) return "needs loop devices (/dev/loop-control missing)";
  for (const auto& t : tools) {
    if (!have_tool(t)) return "needs " + t + " (install the package that provides it)";
  }
  return std::nullopt;
}

namespace {

// DAMON (seen running here with a "pageout" scheme on physical memory) reclaims pages it finds
// cold, within seconds: pages a scenario just read can vanish before the report looks, and an
// exact residency test would then fail for reasons of its own. While test filesystems exist,
// running kdamonds are switched off; they are switched back on at exit.
class damon_pause {
 public:
  static void ensure() { static damon_pause instance; }
  ~damon_pause() {
    for (const auto& path : paused_) write_state(path, "on");
  }

 private:
  damon_pause() {
    const std::string base = "/sys/kernel/mm/damon/admin/kdamonds/";
    for (int i = 0; i < 64; ++i) {
      const std::string state = base + std::to_string(i) + "/state";
      if (access(state.c_str(), W_OK) != 0) break;
      if (read_state(state) == "on" && write_state(state, "off")) paused_.push_back(state);
    }
  }
  static std::string read_state(const std::string& path) {
    char buf[16] = {};
    int fd = open(path.c_str(), O_RDONLY);
    if (fd < 0) return {};
    const ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    std::string s(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }
  static bool write_state(const std::string& path, const char* value) {
    int fd = open(path.c_str(), O_WRONLY);
    if (fd < 0) return false;
    const bool ok = write(fd, value, std::strlen(value)) > 0;
    close(fd);
    return ok;
  }
  std::vector<std::string> paused_;
};

}  // namespace

scratch_fs::scratch_fs(const std::string& type, const std::string& mount_opts, std::uint64_t size_mib) {
  damon_pause::ensure();
  char tmpl[] = "/tmp/dupcache-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
  tmp_ = tmpl;
  img_ = tmp_ + "/fs.img";
  mnt_ = tmp_ + "/mnt";
  mkdir(mnt_.c_str(), 0755);
  must({"truncate", "-s", std::to_string(size_mib) + "M", img_});
  if (type == "btrfs") must({"mkfs.btrfs", "-q", "-f", img_});
  else if (type == "xfs") must({"mkfs.xfs", "-q", "-f", "-m", "reflink=1", img_});
  else if (type == "ext4") must({"mkfs.ext4", "-q", "-F", img_});
  else throw std::runtime_error("unknown fs type " + type);
  std::string opts = "loop";
  if (!mount_opts.empty()) opts += "," + mount_opts;
  must({"mount", "-t", type, "-o", opts, img_, mnt_});
  mounted_ = true;
}

scratch_fs::~scratch_fs() {
  if (mounted_) {
    // Lazy unmount as the last resort keeps a failed test from wedging the next one.
    if (run({"umount", mnt_}).status != 0) run({"umount", "-l", mnt_});
  }
  unlink(img_.c_str());
  rmdir(mnt_.c_str());
  rmdir(tmp_.c_str());
}

void write_file(const std::string& path, std::uint64_t size, std::uint32_t seed, bool compressible) {
  fd_guard fd(open_or_throw(path, O_WRONLY | O_CREAT | O_TRUNC));
  std::vector<char> buf(1 * MiB);
  for (std::uint64_t off = 0; off < size; off += buf.size()) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - off));
    fill(buf, off, seed, compressible);
    if (pwrite(fd.fd, buf.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n)) {
      throw std::runtime_error("write " + path);
    }
  }
  if (fsync(fd.fd) < 0) throw std::runtime_error("fsync " + path);
}

void overwrite(const std::string& path, std::uint64_t offset, std::uint64_t len, std::uint32_t seed) {
  fd_guard fd(open_or_throw(path, O_WRONLY));
  std::vector<char> buf(static_cast<std::size_t>(len));
  fill(buf, offset, seed, false);
  if (pwrite(fd.fd, buf.data(), buf.size(), static_cast<off_t>(offset)) != static_cast<ssize_t>(len)) {
    throw std::runtime_error("overwrite " + path);
  }
}

void reflink(const std::string& src, const std::string& dst) {
  fd_guard s(open_or_throw(src, O_RDONLY));
  fd_guard d(open_or_throw(dst, O_WRONLY | O_CREAT | O_TRUNC));
  if (ioctl(d.fd, FICLONE, s.fd) < 0) throw std::runtime_error("FICLONE " + src + " -> " + dst + ": " + std::strerror(errno));
}

void clone_range(const std::string& src, std::uint64_t src_off, std::uint64_t len, const std::string& dst,
                 std::uint64_t dst_off) {
  fd_guard s(open_or_throw(src, O_RDONLY));
  fd_guard d(open_or_throw(dst, O_WRONLY | O_CREAT));
  file_clone_range arg{};
  arg.src_fd = s.fd;
  arg.src_offset = src_off;
  arg.src_length = len;
  arg.dest_offset = dst_off;
  if (ioctl(d.fd, FICLONERANGE, &arg) < 0) throw std::runtime_error("FICLONERANGE " + src + ": " + std::strerror(errno));
}

void evict(const std::string& path) {
  fd_guard fd(open_or_throw(path, O_RDONLY));
  fdatasync(fd.fd);
  posix_fadvise(fd.fd, 0, 0, POSIX_FADV_DONTNEED);
  if (cached_pages(path) != 0) throw std::runtime_error("could not evict " + path);
}

void read_range(const std::string& path, std::uint64_t offset, std::uint64_t len) {
  fd_guard fd(open_or_throw(path, O_RDONLY));
  // Random access turns readahead off for this file descriptor: exactly the pages asked for.
  posix_fadvise(fd.fd, 0, 0, POSIX_FADV_RANDOM);
  std::vector<char> buf(static_cast<std::size_t>(page_size()));
  for (std::uint64_t off = offset; off < offset + len; off += buf.size()) {
    if (pread(fd.fd, buf.data(), buf.size(), static_cast<off_t>(off)) < 0) throw std::runtime_error("read " + path);
  }
}

void read_all(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) < 0) throw std::runtime_error("stat " + path);
  read_range(path, 0, static_cast<std::uint64_t>(st.st_size));
}

std::vector<unsigned char> residency(const std::string& path) {
  fd_guard fd(open_or_throw(path, O_RDONLY));
  struct stat st {};
  fstat(fd.fd, &st);
  const std::uint64_t pages = (static_cast<std::uint64_t>(st.st_size) + page_size() - 1) / page_size();
  std::vector<unsigned char> vec(pages);
  if (pages == 0) return vec;
  void* p = mmap(nullptr, pages * page_size(), PROT_READ, MAP_SHARED, fd.fd, 0);
  if (p == MAP_FAILED) throw std::runtime_error("mmap " + path);
  const int rc = mincore(p, pages * page_size(), vec.data());
  munmap(p, pages * page_size());
  if (rc < 0) throw std::runtime_error("mincore " + path);
  for (auto& v : vec) v &= 1;
  return vec;
}

std::uint64_t cached_pages(const std::string& path) {
  std::uint64_t n = 0;
  for (auto v : residency(path)) n += v;
  return n;
}

std::vector<std::uint32_t> extent_flags(const std::string& path) {
  fd_guard fd(open_or_throw(path, O_RDONLY));
  std::vector<char> buf(sizeof(fiemap) + 512 * sizeof(fiemap_extent));
  auto* fm = reinterpret_cast<fiemap*>(buf.data());
  fm->fm_start = 0;
  fm->fm_length = FIEMAP_MAX_OFFSET;
  fm->fm_extent_count = 512;
  if (ioctl(fd.fd, FS_IOC_FIEMAP, fm) < 0) throw std::runtime_error("FIEMAP " + path);
  std::vector<std::uint32_t> flags;
  for (unsigned i = 0; i < fm->fm_mapped_extents; ++i) flags.push_back(fm->fm_extents[i].fe_flags);
  return flags;
}

std::vector<std::uint64_t> block_addresses(const std::string& path) {
  constexpr std::uint64_t blk = 4096;
  fd_guard fd(open_or_throw(path, O_RDONLY));
  struct stat st {};
  if (fstat(fd.fd, &st) != 0) throw std::runtime_error("stat " + path);
  std::vector<char> buf(sizeof(fiemap) + 1024 * sizeof(fiemap_extent));
  auto* fm = reinterpret_cast<fiemap*>(buf.data());
  fm->fm_length = FIEMAP_MAX_OFFSET;
  fm->fm_extent_count = 1024;
  if (ioctl(fd.fd, FS_IOC_FIEMAP, fm) < 0) throw std::runtime_error("FIEMAP " + path);
  const std::uint64_t blocks = (static_cast<std::uint64_t>(st.st_size) + blk - 1) / blk;
  std::vector<std::uint64_t> out(blocks, no_address);
  constexpr std::uint32_t inexact = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_ENCODED |
                                    FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_NOT_ALIGNED;
  for (unsigned i = 0; i < fm->fm_mapped_extents; ++i) {
    const auto& e = fm->fm_extents[i];
    if (e.fe_flags & inexact) continue;
    for (std::uint64_t off = 0; off < e.fe_length; off += blk) {
      const std::uint64_t b = (e.fe_logical + off) / blk;
      if (b < blocks) out[b] = e.fe_physical + off;
    }
  }
  return out;
}

std::string contents(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

nlohmann::json report_json(const std::vector<std::string>& args, int* exit_status) {
  std::vector<std::string> argv{DUPCACHE_BINARY, "report", "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run(argv);
  if (exit_status) *exit_status = r.status;
  else if (r.status != 0) throw std::runtime_error("dupcache report failed (" + std::to_string(r.status) + "): " + r.err);
  return nlohmann::json::parse(r.out);
}

const nlohmann::json* file_entry(const nlohmann::json& report, const std::string& path) {
  for (const auto& f : report.at("files")) {
    if (f.at("path") == path) return &f;
  }
  return nullptr;
}

std::optional<std::string> memory_hierarchy() {
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  std::optional<std::string> v2;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::vector<std::string> fields;
    for (std::string w; in >> w;) fields.push_back(w);
    const auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || fields.end() - dash < 4) continue;
    const std::string& type = *(dash + 1);
    const std::string& super = *(dash + 3);
    if (type == "cgroup" && ("," + super + ",").find(",memory,") != std::string::npos) return fields[4];
    if (type == "cgroup2" && fields[3] == "/") {
      std::ifstream c(fields[4] + "/cgroup.controllers");
      std::string all((std::istreambuf_iterator<char>(c)), std::istreambuf_iterator<char>());
      if ((" " + all).find(" memory") != std::string::npos) v2 = fields[4];
    }
  }
  return v2;
}

namespace {
void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.flush();
  if (!f) throw std::runtime_error("write " + path + ": " + std::strerror(errno));
}
}  // namespace

test_cgroup::test_cgroup(const std::string& rel) : rel_(rel) {
  auto root = memory_hierarchy();
  if (!root) throw std::runtime_error("no memory cgroup hierarchy");
  const bool v2 = access((*root + "/cgroup.subtree_control").c_str(), F_OK) == 0;
  std::string at = *root;
  std::size_t start = 0;
  while (start < rel.size()) {
    const std::size_t slash = std::min(rel.find('/', start), rel.size());
    // cgroup2: a child has the memory controller only when its parent delegates it.
    if (v2) write_text(at + "/cgroup.subtree_control", "+memory");
    at += "/" + rel.substr(start, slash - start);
    if (mkdir(at.c_str(), 0755) == 0) made_.push_back(at);
    else if (errno != EEXIST) throw std::runtime_error("mkdir " + at + ": " + std::strerror(errno));
    start = slash + 1;
  }
  dir_ = at;
}

test_cgroup::~test_cgroup() {
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) rmdir(it->c_str());
}

void test_cgroup::run_in(const std::string& root, const std::function<void()>& fn) const {
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    try {
      write_text(dir_ + "/cgroup.procs", std::to_string(getpid()));
      if (unshare(CLONE_NEWNS) < 0) _exit(2);
      if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) _exit(3);
      if (chroot(root.c_str()) < 0 || chdir("/") < 0) _exit(4);
      fn();
    } catch (...) {
      _exit(5);
    }
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("child in " + dir_ + " failed with status " + std::to_string(status));
  }
}

}  // namespace dupcache::testing
