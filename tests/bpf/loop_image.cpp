// SPDX-License-Identifier: GPL-2.0-only
#include "loop_image.hpp"

#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/loop.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

extern char** environ;

namespace dupcache::test {

namespace {

constexpr std::uint64_t page_size = 4096;

std::string find_mkfs(const std::string& fstype) {
  const char* path_env = std::getenv("PATH");
  std::string search = std::string(path_env ? path_env : "") + ":/usr/sbin:/sbin:/usr/local/sbin";
  std::stringstream ss(search);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/mkfs." + fstype;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

bool filesystem_supported(const std::string& name) {
  std::ifstream in("/proc/filesystems");
  std::string line;
  while (std::getline(in, line)) {
    auto tab = line.rfind('\t');
    if (line.substr(tab == std::string::npos ? 0 : tab + 1) == name) return true;
  }
  return false;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (int k = 1; k <= 3; ++k) {
        char c = s[i + k];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

struct mountinfo_line {
  std::string root;
  std::string mount_point;
  unsigned major = 0;
  unsigned minor = 0;
  std::string fstype;
  std::string super_options;
};

std::vector<mountinfo_line> read_mountinfo() {
  std::vector<mountinfo_line> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, majmin, root, mnt, opts;
    ls >> id >> parent >> majmin >> root >> mnt >> opts;
    std::string tok;
    while (ls >> tok && tok != "-") {
    }
    mountinfo_line m;
    ls >> m.fstype >> tok >> m.super_options;
    if (std::sscanf(majmin.c_str(), "%u:%u", &m.major, &m.minor) != 2) continue;
    m.root = unescape_mountinfo(root);
    m.mount_point = unescape_mountinfo(mnt);
    out.push_back(std::move(m));
  }
  return out;
}

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

environment_gap check_environment(const std::string& fstype) {
  if (::geteuid() != 0) return {"needs root (loop devices, mount, BPF)"};
  if (::access("/dev/loop-control", R_OK | W_OK) != 0) return {"/dev/loop-control unavailable"};
  if (!filesystem_supported(fstype)) return {"kernel has no " + fstype + " (/proc/filesystems)"};
  if (find_mkfs(fstype).empty()) return {"mkfs." + fstype + " not found"};
  return {};
}

result<int> run_program(const std::vector<std::string>& argv, std::string* capture) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  int pipe_fds[2] = {-1, -1};
  if (capture != nullptr && ::pipe2(pipe_fds, O_CLOEXEC) != 0) return errno_error("pipe");
  unique_fd read_end(pipe_fds[0]);
  unique_fd write_end(pipe_fds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (capture != nullptr) {
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return errno_error("spawn " + argv[0], rc);
  write_end.reset();
  if (capture != nullptr) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(read_end.get(), buf, sizeof(buf))) > 0) capture->append(buf, static_cast<std::size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return errno_error("wait for " + argv[0]);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::optional<dev_t> mountinfo_dev(const std::string& dir) {
  std::optional<dev_t> found;
  for (const auto& m : read_mountinfo()) {
    if (m.mount_point == dir) found = makedev(m.major, m.minor);  // last one wins (stacked mounts)
  }
  return found;
}

result<std::unique_ptr<loop_image>> loop_image::create(const std::string& fstype, std::uint64_t bytes) {
  std::unique_ptr<loop_image> img(new loop_image());

  const char* tmp_env = std::getenv("TMPDIR");
  std::string templ = std::string(tmp_env && *tmp_env ? tmp_env : "/tmp") + "/dupcache-bpf-test.XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) return errno_error("mkdtemp " + templ);
  char resolved[PATH_MAX];
  if (::realpath(buf.data(), resolved) == nullptr) return errno_error("realpath");
  img->tmp_dir_ = resolved;
  img->image_ = img->tmp_dir_ + "/btrfs.img";
  img->mount_dir_ = img->tmp_dir_ + "/mnt";

  {
    unique_fd f(::open(img->image_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!f) return errno_error("create " + img->image_);
    if (::ftruncate(f.get(), static_cast<off_t>(bytes)) != 0) return errno_error("size " + img->image_);
  }
  if (::mkdir(img->mount_dir_.c_str(), 0755) != 0) return errno_error("mkdir " + img->mount_dir_);

  std::string out;
  auto mkfs = run_program({find_mkfs(fstype), "-q", "-f", img->image_}, &out);
  if (!mkfs) return mkfs.err();
  if (mkfs.value() != 0)
    return plain_error("mkfs." + fstype + " " + img->image_, "exit " + std::to_string(mkfs.value()) + ": " + out);

  // Loop device: LOOP_CTL_GET_FREE can race with other users; retry on EBUSY.
  unique_fd ctl(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!ctl) return errno_error("open /dev/loop-control");
  unique_fd backing(::open(img->image_.c_str(), O_RDWR | O_CLOEXEC));
  if (!backing) return errno_error("open " + img->image_);
  for (int tries = 0;; ++tries) {
    int n = ::ioctl(ctl.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return errno_error("LOOP_CTL_GET_FREE");
    std::string dev = "/dev/loop" + std::to_string(n);
    unique_fd loop(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
    if (!loop) return errno_error("open " + dev);
    loop_config cfg{};
    cfg.fd = static_cast<__u32>(backing.get());
    // AUTOCLEAR: if this process dies before teardown, the device detaches when the last
    // reference (our fd or the mount) goes away.
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (::ioctl(loop.get(), LOOP_CONFIGURE, &cfg) == 0) {
      img->loop_fd_ = std::move(loop);
      img->loop_path_ = dev;
      break;
    }
    if (errno != EBUSY || tries > 10) return errno_error("LOOP_CONFIGURE " + dev);
  }

  img->fstype_ = fstype;
  if (auto mounted = img->remount(); !mounted) return mounted.err();
  return img;
}

result<void> loop_image::remount() {
  if (mounted_) {
    if (::umount2(mount_dir_.c_str(), 0) != 0) return errno_error("umount " + mount_dir_);
    mounted_ = false;
  }
  if (::mount(loop_path_.c_str(), mount_dir_.c_str(), fstype_.c_str(), 0, nullptr) != 0)
    return errno_error("mount " + loop_path_ + " on " + mount_dir_);
  mounted_ = true;
  auto dev = mountinfo_dev(mount_dir_);
  if (!dev) return plain_error("find " + mount_dir_ + " in /proc/self/mountinfo", "not listed");
  sb_dev_ = *dev;
  return {};
}

loop_image::~loop_image() { teardown(); }

void loop_image::teardown() noexcept {
  if (mounted_) {
    ::sync();
    if (::umount2(mount_dir_.c_str(), 0) != 0) ::umount2(mount_dir_.c_str(), MNT_DETACH);
    mounted_ = false;
  }
  if (loop_fd_) {
    ::ioctl(loop_fd_.get(), LOOP_CLR_FD, 0);  // ENXIO if AUTOCLEAR already did it
    loop_fd_.reset();
  }
  if (!mount_dir_.empty()) ::rmdir(mount_dir_.c_str());
  if (!image_.empty()) ::unlink(image_.c_str());
  if (!tmp_dir_.empty()) ::rmdir(tmp_dir_.c_str());
}

result<void> btrfs_create_subvolume(const std::string& parent, const std::string& name) {
  unique_fd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return errno_error("open " + parent);
  btrfs_ioctl_vol_args args{};
  if (name.size() > BTRFS_PATH_NAME_MAX) return plain_error("create subvolume " + name, "name too long");
  std::memcpy(args.name, name.c_str(), name.size());
  if (::ioctl(dir.get(), BTRFS_IOC_SUBVOL_CREATE, &args) != 0)
    return errno_error("BTRFS_IOC_SUBVOL_CREATE " + parent + "/" + name);
  return {};
}

result<void> btrfs_snapshot(const std::string& src_subvol, const std::string& parent, const std::string& name) {
  unique_fd src(::open(src_subvol.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!src) return errno_error("open " + src_subvol);
  unique_fd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return errno_error("open " + parent);
  btrfs_ioctl_vol_args_v2 args{};
  args.fd = src.get();
  if (name.size() > BTRFS_SUBVOL_NAME_MAX) return plain_error("snapshot " + name, "name too long");
  std::memcpy(args.name, name.c_str(), name.size());
  if (::ioctl(dir.get(), BTRFS_IOC_SNAP_CREATE_V2, &args) != 0)
    return errno_error("BTRFS_IOC_SNAP_CREATE_V2 " + src_subvol + " -> " + parent + "/" + name);
  return {};
}

result<std::uint64_t> btrfs_root_id(int fd) {
  btrfs_ioctl_ino_lookup_args args{};
  args.treeid = 0;  // 0: the tree of fd's subvolume, filled in by the kernel
  args.objectid = BTRFS_FIRST_FREE_OBJECTID;
  if (::ioctl(fd, BTRFS_IOC_INO_LOOKUP, &args) != 0) return errno_error("BTRFS_IOC_INO_LOOKUP");
  return static_cast<std::uint64_t>(args.treeid);
}

result<void> write_file(const std::string& path, std::uint64_t bytes) {
  unique_fd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!f) return errno_error("create " + path);
  std::vector<std::uint64_t> block(8192);  // 64 KiB
  std::uint64_t written = 0;
  std::uint64_t counter = 0x9e3779b97f4a7c15ull;
  while (written < bytes) {
    for (auto& w : block) w = counter++ * 0x9e3779b97f4a7c15ull;  // never two equal blocks
    std::uint64_t chunk = std::min<std::uint64_t>(bytes - written, block.size() * sizeof(std::uint64_t));
    ssize_t n = ::pwrite(f.get(), block.data(), chunk, static_cast<off_t>(written));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("write " + path);
    }
    written += static_cast<std::uint64_t>(n);
  }
  if (::fsync(f.get()) != 0) return errno_error("fsync " + path);
  return {};
}

result<std::uint64_t> resident_pages(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_error("fstat");
  if (st.st_size == 0) return std::uint64_t{0};
  std::size_t len = static_cast<std::size_t>(st.st_size);
  // Mapping does not fault anything in; mincore only reports.
  void* map = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return errno_error("mmap");
  std::vector<unsigned char> vec((len + page_size - 1) / page_size);
  int rc = ::mincore(map, len, vec.data());
  int err = errno;
  ::munmap(map, len);
  if (rc != 0) return errno_error("mincore", err);
  return static_cast<std::uint64_t>(std::count_if(vec.begin(), vec.end(), [](unsigned char v) { return v & 1; }));
}

result<std::uint64_t> drop_cache(int fd) {
  if (::fsync(fd) != 0 && errno != EBADF && errno != EINVAL) return errno_error("fsync");
  for (int i = 0; i < 5; ++i) {
    if (int rc = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED); rc != 0) return errno_error("fadvise DONTNEED", rc);
    auto left = resident_pages(fd);
    if (!left || left.value() == 0) return left;
    ::usleep(20000);
  }
  return resident_pages(fd);
}

std::optional<std::uint64_t> expected_memcg_id() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  std::optional<std::string> v1_path;
  std::optional<std::string> v2_path;
  while (std::getline(in, line)) {
    auto c1 = line.find(':');
    auto c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string path = line.substr(c2 + 1);
    std::stringstream cs(controllers);
    std::string ctl;
    while (std::getline(cs, ctl, ',')) {
      if (ctl == "memory") v1_path = path;
    }
    if (line.rfind("0::", 0) == 0) v2_path = path;
  }

  auto mounts = read_mountinfo();
  auto ino_of = [](const std::string& p) -> std::optional<std::uint64_t> {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return std::nullopt;
    return static_cast<std::uint64_t>(st.st_ino);
  };
  auto relative = [](const std::string& path, const std::string& root) {
    if (root == "/" || path.rfind(root, 0) != 0) return path;
    std::string rest = path.substr(root.size());
    return rest.empty() ? std::string("/") : rest;
  };

  if (v1_path) {
    for (const auto& m : mounts) {
      if (m.fstype != "cgroup") continue;
      std::stringstream os(m.super_options);
      std::string opt;
      bool memory = false;
      while (std::getline(os, opt, ',')) memory |= opt == "memory";
      if (memory) return ino_of(m.mount_point + relative(*v1_path, m.root));
    }
    return std::nullopt;
  }
  if (v2_path) {
    for (const auto& m : mounts) {
      if (m.fstype != "cgroup2") continue;
      std::string base = m.mount_point;
      if (read_first_line(base + "/cgroup.controllers").find("memory") == std::string::npos &&
          m.root == "/")
        return std::nullopt;
      // The memcg of a cgroup is its own if the parent delegates "memory", else the nearest
      // ancestor's that does; the root always has one.
      std::string p = relative(*v2_path, m.root);
      while (p != "/" && !p.empty()) {
        std::string parent = p.substr(0, p.rfind('/'));
        if (parent.empty()) parent = "/";
        std::string ctl = read_first_line(base + (parent == "/" ? "" : parent) + "/cgroup.subtree_control");
        if (ctl.find("memory") != std::string::npos) return ino_of(base + p);
        p = parent;
      }
      return ino_of(base);
    }
  }
  return std::nullopt;
}

}  // namespace dupcache::test
