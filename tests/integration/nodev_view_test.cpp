// SPDX-License-Identifier: GPL-2.0-only
// The walk's nodev view (scan/nodev_view.hpp): as root, files are opened by name through a
// detached copy of the mount tree where no device node can be opened; a name a user swaps for a
// device node, a FIFO, a socket or a symlink between the listing and the open is skipped, never
// an error; and the mounts the records name are the mount table's, not the copy's.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>

#include "fs_fixture.hpp"
#include "process.hpp"
#include "scan/mounts.hpp"
#include "scan/nodev_view.hpp"
#include "scan/scanner.hpp"

namespace dupcache {
namespace {

using namespace dupcache::testing;

std::uint64_t mount_id(int fd) {
  struct statx stx {};
  EXPECT_EQ(statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx), 0) << strerror(errno);
  return stx.stx_mnt_id;
}

// The mount table's id of the mount at `point`.
std::uint64_t listed_id(const std::string& point) {
  auto table = read_mountinfo();
  EXPECT_TRUE(table) << table.err().message();
  std::uint64_t id = 0;
  for (const auto& m : *table) {
    if (m.mount_point == point) id = static_cast<std::uint64_t>(m.id);  // the last: the one on top
  }
  return id;
}

TEST(NodevView, ADeviceNodeCannotBeOpenedThroughIt) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  write_file(fs.path("a"), 4 * KiB, 1);
  ASSERT_EQ(mknod(fs.path("null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0) << strerror(errno);
  unique_fd real(open(fs.dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(real);
  {
    auto view = open_nodev_view(real.get());
    ASSERT_TRUE(view) << view.err().message();
    EXPECT_NE(mount_id(view->get()), mount_id(real.get()));
    unique_fd file(openat(view->get(), "a", O_RDONLY | O_NOFOLLOW | O_NONBLOCK));
    EXPECT_TRUE(file) << strerror(errno);
    errno = 0;
    unique_fd dev(openat(view->get(), "null", O_RDONLY | O_NOFOLLOW | O_NONBLOCK));
    EXPECT_FALSE(dev);
    EXPECT_EQ(errno, EACCES);
    // The same name in the real tree is the device, and opens: the view is what refuses.
    unique_fd real_dev(openat(real.get(), "null", O_RDONLY | O_NOFOLLOW | O_NONBLOCK));
    EXPECT_TRUE(real_dev) << strerror(errno);
    struct stat a {}, b {};
    ASSERT_EQ(fstat(file.get(), &a), 0);
    ASSERT_EQ(stat(fs.path("a").c_str(), &b), 0);
    EXPECT_EQ(a.st_dev, b.st_dev);  // the same inode, as the identity rules see it
    EXPECT_EQ(a.st_ino, b.st_ino);
  }
  // Nothing was mounted anywhere: the table does not list the copy.
  auto table = read_mountinfo();
  ASSERT_TRUE(table);
  std::size_t at_dir = 0;
  for (const auto& m : *table) at_dir += m.mount_point == fs.dir();
  EXPECT_EQ(at_dir, 1u);
}

TEST(NodevView, UnbindableMountRulesItOut) {
  std::vector<mount_entry> table(2);
  table[0].mount_point = "/";
  EXPECT_EQ(nodev_view_unfit(table), "");
  table[1].mount_point = "/run/x";
  table[1].unbindable = true;
  EXPECT_NE(nodev_view_unfit(table).find("/run/x is unbindable"), std::string::npos);
}

// A second filesystem bound below the first and crossed: each file's record names the mount
// it was reached through by its id in /proc/self/mountinfo (top and the daemon find files by
// those ids), not by the copy's.
TEST(NodevView, RecordsNameTheMountTableIds) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "mkfs.xfs");
  scratch_fs outer("btrfs");
  scratch_fs inner("xfs");
  ASSERT_EQ(mkdir(outer.path("inner").c_str(), 0755), 0);
  write_file(outer.path("o"), 8 * KiB, 1);
  write_file(inner.path("i"), 8 * KiB, 2);
  read_all(outer.path("o"));
  read_all(inner.path("i"));
  must({"mount", "--bind", inner.dir(), outer.path("inner")});
  struct unmount_guard {
    std::string at;
    ~unmount_guard() { umount2(at.c_str(), 0); }
  } guard{outer.path("inner")};

  scan_options so;
  so.paths = {outer.dir()};
  so.cross_mounts = true;
  so.record_inodes = true;
  auto r = scan(so);
  ASSERT_TRUE(r) << r.err().message();
  EXPECT_EQ(r->file_open, "nodev view") << r->file_open_note;
  EXPECT_TRUE(r->errors.empty());
  std::map<std::string, std::uint64_t> by_path;
  for (const auto& rec : r->inodes) by_path[rec.path] = rec.mount_id;
  ASSERT_EQ(by_path.size(), 2u);
  const std::uint64_t o = listed_id(outer.dir()), i = listed_id(outer.path("inner"));
  ASSERT_NE(o, 0u);
  ASSERT_NE(i, 0u);
  ASSERT_NE(o, i);
  EXPECT_EQ(by_path[outer.path("o")], o);
  EXPECT_EQ(by_path[outer.path("inner/i")], i);
  EXPECT_EQ(r->stats.files_cached, 2u);
}

// A PATH on a mount of another mount namespace (through /proc/PID/root, as a container's files
// are named) cannot be copied (open_tree: EINVAL); that root alone is walked the other way, and
// a root named after it still gets its copy.
TEST(NodevView, ARootInAnotherMountNamespaceIsWalkedTheOtherWayAlone) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  for (const char* d : {"src", "ns", "plain"}) ASSERT_EQ(mkdir(fs.path(d).c_str(), 0755), 0);
  write_file(fs.path("src/a"), 8 * KiB, 1);
  write_file(fs.path("plain/b"), 8 * KiB, 2);
  read_all(fs.path("src/a"));
  read_all(fs.path("plain/b"));
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Its own mount namespace, where src is bound onto ns; the test's namespace never sees it.
    char ok = 0;
    if (unshare(CLONE_NEWNS) == 0 && mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
        mount(fs.path("src").c_str(), fs.path("ns").c_str(), nullptr, MS_BIND, nullptr) == 0) {
      ok = 1;
    }
    if (write(ready[1], &ok, 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  close(ready[0]);
  struct reaper {
    pid_t pid;
    ~reaper() {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  } reap{child};
  ASSERT_EQ(ok, 1) << "the child could not bind src onto ns in a mount namespace of its own";
  const std::string other = "/proc/" + std::to_string(child) + "/root" + fs.path("ns");

  scan_options so;
  so.paths = {other, fs.path("plain")};
  auto r = scan(so);
  ASSERT_TRUE(r) << r.err().message();
  for (const auto& e : r->errors) ADD_FAILURE() << e.path << ": " << e.message;
  EXPECT_EQ(r->stats.files_cached, 2u);
  EXPECT_EQ(r->file_open, "nodev view");
  EXPECT_NE(r->file_open_note.find("Invalid argument"), std::string::npos) << r->file_open_note;
}

// Names swapped between the listing and the open (renameat2 RENAME_EXCHANGE: no name is ever
// missing) for a device node, a FIFO, a socket, a symlink: each scan counts four entries, at most
// one regular file, and never reports an error for what was swapped. On XFS, which exchanges
// two names in place (btrfs gives both new directory positions, and a walk that opened the
// directory before lists neither).
TEST(NodevView, NamesSwappedUnderTheWalkAreSkippedNotErrors) {
  DUPCACHE_REQUIRE_ROOT("mkfs.xfs");
  scratch_fs fs("xfs");
  ASSERT_EQ(mkdir(fs.path("d").c_str(), 0755), 0);
  // Listed first (XFS lists in the order made): the walk opens these before it reaches the
  // swapped names, which keeps the window between listing and opening them open for a while.
  constexpr unsigned padding = 2000;
  for (unsigned i = 0; i < padding; ++i) write_file(fs.path("d/p" + std::to_string(i)), 0, i);
  write_file(fs.path("d/f"), 4 * KiB, 1);
  read_all(fs.path("d/f"));
  ASSERT_EQ(mknod(fs.path("d/dev").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(mkfifo(fs.path("d/fifo").c_str(), 0644), 0);
  ASSERT_EQ(symlink("f", fs.path("d/link").c_str()), 0);
  int sock = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", fs.path("d/sock").c_str());
  ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);

  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    const char* others[] = {"dev", "fifo", "link", "sock"};
    for (unsigned k = 0; !stop.load(std::memory_order_relaxed); ++k) {
      const std::string other = fs.path(std::string("d/") + others[k % 4]);
      renameat2(AT_FDCWD, fs.path("d/f").c_str(), AT_FDCWD, other.c_str(), RENAME_EXCHANGE);
    }
  });
  scan_options so;
  so.paths = {fs.path("d")};
  so.jobs = 1;
  unsigned raced = 0;
  constexpr unsigned scans = 100;
  for (unsigned n = 0; n < scans; ++n) {
    auto r = scan(so);
    ASSERT_TRUE(r) << r.err().message();
    ASSERT_EQ(r->file_open, "nodev view") << r->file_open_note;
    for (const auto& e : r->errors) ADD_FAILURE() << "scan " << n << ": " << e.path << ": " << e.message;
    EXPECT_LE(r->stats.files_scanned, padding + 1);
    EXPECT_EQ(r->stats.files_scanned + r->stats.special_skipped, padding + 5)
        << "scan " << n << ": scanned " << r->stats.files_scanned << ", skipped " << r->stats.special_skipped
        << ", repeated " << r->stats.repeated_inodes << ", directories " << r->stats.directories;
    EXPECT_EQ(r->stats.vanished, 0u);
    raced += r->stats.files_scanned == padding;
    if (HasFailure()) break;
  }
  stop = true;
  swapper.join();
  close(sock);
  // Scans that met a swapped name at the open: about three in four here. None would mean the
  // race this test is for was not run.
  std::printf("scans %u, a swapped name met at the open in %u\n", scans, raced);
  EXPECT_GT(raced, 0u);
}

}  // namespace
}  // namespace dupcache
