// SPDX-License-Identifier: GPL-2.0-only
// /proc/self/mountinfo parsing and the choice of mounts a default report walks.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "scan/mounts.hpp"

namespace dupcache {
namespace {

TEST(UnescapeMountField, OctalEscapes) {
  EXPECT_EQ(unescape_mount_field("/mnt/my\\040disk"), "/mnt/my disk");
  EXPECT_EQ(unescape_mount_field("a\\011b"), "a\tb");
  EXPECT_EQ(unescape_mount_field("a\\012b"), "a\nb");
  EXPECT_EQ(unescape_mount_field("a\\134b"), "a\\b");
  EXPECT_EQ(unescape_mount_field("\\040"), " ");           // the whole field
  EXPECT_EQ(unescape_mount_field("\\040\\040"), "  ");     // back to back
  EXPECT_EQ(unescape_mount_field("end\\134"), "end\\");    // at the very end
  EXPECT_EQ(unescape_mount_field("\\377"), std::string(1, '\xff'));
  EXPECT_EQ(unescape_mount_field(""), "");
  EXPECT_EQ(unescape_mount_field("/plain/path"), "/plain/path");
}

TEST(UnescapeMountField, MalformedEscapesStayLiteral) {
  EXPECT_EQ(unescape_mount_field("abc\\"), "abc\\");      // trailing backslash
  EXPECT_EQ(unescape_mount_field("\\"), "\\");
  EXPECT_EQ(unescape_mount_field("a\\0"), "a\\0");        // one digit
  EXPECT_EQ(unescape_mount_field("a\\04"), "a\\04");      // two digits
  EXPECT_EQ(unescape_mount_field("\\08x"), "\\08x");      // 8 is not octal
  EXPECT_EQ(unescape_mount_field("\\400"), "\\400");      // past \377
  EXPECT_EQ(unescape_mount_field("\\x41"), "\\x41");      // not an octal escape at all
  EXPECT_EQ(unescape_mount_field("a\\04\\040"), "a\\04 ");  // broken one, then a good one
}

TEST(ParseMountinfo, LineWithTwoOptionalFields) {
  auto r = parse_mountinfo(
      "29 1 0:26 / / rw,relatime shared:1 master:2 - btrfs /dev/nvme0n1p2 "
      "rw,relatime,ssd,space_cache=v2,subvolid=256,subvol=/@\n");
  ASSERT_TRUE(r.ok()) << r.err().message();
  ASSERT_EQ(r->size(), 1u);
  const auto& m = r->at(0);
  EXPECT_EQ(m.id, 29);
  EXPECT_EQ(m.parent, 1);
  EXPECT_EQ(m.major, 0u);
  EXPECT_EQ(m.minor, 26u);
  EXPECT_EQ(m.root, "/");
  EXPECT_EQ(m.mount_point, "/");
  EXPECT_EQ(m.options, "rw,relatime");
  EXPECT_EQ(m.fstype, "btrfs");
  EXPECT_EQ(m.source, "/dev/nvme0n1p2");
  EXPECT_EQ(m.super_options, "rw,relatime,ssd,space_cache=v2,subvolid=256,subvol=/@");
  EXPECT_FALSE(m.unbindable);
}

TEST(ParseMountinfo, UnbindableIsAnOptionalField) {
  auto r = parse_mountinfo(
      "41 29 0:40 / /run/ns rw,nosuid unbindable - tmpfs tmpfs rw\n"
      "42 29 0:41 / /unbindable rw shared:3 - tmpfs unbindable rw\n");
  ASSERT_TRUE(r.ok()) << r.err().message();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_TRUE(r->at(0).unbindable);
  EXPECT_FALSE(r->at(1).unbindable);  // the word as a mount point or source is not the field
}

TEST(ParseMountinfo, ProcManPageExampleAndNoOptionalFields) {
  auto r = parse_mountinfo(
      "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
      "30 29 0:26 /@home /home rw,relatime - btrfs /dev/nvme0n1p2 rw,relatime,subvolid=257,subvol=/@home\n"
      "1201 30 259:1 / /var/lib/big rw - xfs /dev/sdb1 rw,attr2,inode64,noquota");  // no final newline
  ASSERT_TRUE(r.ok()) << r.err().message();
  ASSERT_EQ(r->size(), 3u);
  const auto& a = r->at(0);
  EXPECT_EQ(a.id, 36);
  EXPECT_EQ(a.parent, 35);
  EXPECT_EQ(a.major, 98u);
  EXPECT_EQ(a.minor, 0u);
  EXPECT_EQ(a.root, "/mnt1");
  EXPECT_EQ(a.mount_point, "/mnt/parent");
  EXPECT_EQ(a.options, "rw,noatime");
  EXPECT_EQ(a.fstype, "ext3");
  EXPECT_EQ(a.source, "/dev/root");
  EXPECT_EQ(a.super_options, "rw,errors=continue");
  const auto& b = r->at(1);
  EXPECT_EQ(b.root, "/@home");
  EXPECT_EQ(b.mount_point, "/home");
  EXPECT_EQ(b.fstype, "btrfs");
  EXPECT_EQ(b.super_options, "rw,relatime,subvolid=257,subvol=/@home");
  const auto& c = r->at(2);
  EXPECT_EQ(c.id, 1201);
  EXPECT_EQ(c.major, 259u);
  EXPECT_EQ(c.minor, 1u);
  EXPECT_EQ(c.mount_point, "/var/lib/big");
  EXPECT_EQ(c.fstype, "xfs");
  EXPECT_EQ(c.super_options, "rw,attr2,inode64,noquota");
}

TEST(ParseMountinfo, EscapedRootAndMountPoint) {
  auto r = parse_mountinfo(
      "40 29 259:3 /dir\\040one /mnt/my\\040disk\\011tab\\012nl\\134bs rw,relatime shared:7 - xfs "
      "/dev/disk\\040x rw\n");
  ASSERT_TRUE(r.ok()) << r.err().message();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(r->at(0).root, "/dir one");
  EXPECT_EQ(r->at(0).mount_point, "/mnt/my disk\ttab\nnl\\bs");
  EXPECT_EQ(r->at(0).source, "/dev/disk x");
  EXPECT_EQ(r->at(0).fstype, "xfs");
}

TEST(ParseMountinfo, EmptyInputAndBlankLines) {
  auto e = parse_mountinfo("");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->empty());
  auto r = parse_mountinfo("\n1 0 0:1 / / rw - rootfs rootfs rw\n\n2 1 0:2 / /proc rw - proc proc rw\n");
  ASSERT_TRUE(r.ok()) << r.err().message();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ(r->at(1).mount_point, "/proc");
  EXPECT_EQ(r->at(1).fstype, "proc");
}

void expect_error_on_line(const std::string& text, int line) {
  auto r = parse_mountinfo(text);
  ASSERT_FALSE(r.ok()) << "accepted: " << text;
  const std::string msg = r.err().message();
  EXPECT_NE(msg.find("line " + std::to_string(line)), std::string::npos) << msg;
  EXPECT_NE(msg.find("mountinfo"), std::string::npos) << msg;
}

TEST(ParseMountinfo, MalformedLinesNameTheLine) {
  const std::string good = "29 1 0:26 / / rw shared:1 - btrfs /dev/sda2 rw\n";
  expect_error_on_line(good + "garbage\n", 2);
  expect_error_on_line(good + good + "x 1 0:26 / /a rw - btrfs /dev/sda2 rw\n", 3);   // bad mount id
  expect_error_on_line(good + "30 y 0:26 / /a rw - btrfs /dev/sda2 rw\n", 2);         // bad parent id
  expect_error_on_line("30 29 026 / /a rw - btrfs /dev/sda2 rw\n", 1);                // bad major:minor
  expect_error_on_line(good + "30 29 0:26 / /a rw shared:1 btrfs /dev/sda2 rw\n", 2); // no separator
  expect_error_on_line(good + "30 29 0:26 / /a rw -\n", 2);                           // nothing after it
  expect_error_on_line(good + "30 29 0:26 / /a rw - btrfs\n", 2);                     // no source
  expect_error_on_line(good + "30 29 0:26 / /a\n", 2);                                // cut short
  // Blank lines still count.
  expect_error_on_line(good + "\n\nbroken\n", 4);
}

TEST(FsTypes, MayShareExtents) {
  EXPECT_TRUE(may_share_extents("btrfs"));
  EXPECT_TRUE(may_share_extents("xfs"));
  EXPECT_FALSE(may_share_extents("ext4"));
  EXPECT_FALSE(may_share_extents("tmpfs"));
  EXPECT_FALSE(may_share_extents("overlay"));
  EXPECT_FALSE(may_share_extents("proc"));
  EXPECT_FALSE(may_share_extents(""));
  EXPECT_FALSE(may_share_extents("BTRFS"));
  EXPECT_FALSE(may_share_extents("btrfs2"));
  EXPECT_FALSE(may_share_extents("xf"));
}

TEST(FsTypes, IsPseudoFs) {
  for (const char* t : {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "tracefs", "debugfs",
                        "securityfs", "bpf", "configfs", "mqueue", "nsfs", "efivarfs"}) {
    EXPECT_TRUE(is_pseudo_fs(t)) << t;
  }
  for (const char* t : {"btrfs", "xfs", "ext4", "", "procfs", "sys"}) {
    EXPECT_FALSE(is_pseudo_fs(t)) << t;
  }
}

mount_entry mnt(int id, unsigned major, unsigned minor, std::string root, std::string mp, std::string type) {
  mount_entry m;
  m.id = id;
  m.parent = 1;
  m.major = major;
  m.minor = minor;
  m.root = std::move(root);
  m.mount_point = std::move(mp);
  m.fstype = std::move(type);
  m.source = "/dev/x";
  return m;
}

std::vector<std::string> mount_points(const std::vector<mount_entry>& v) {
  std::vector<std::string> out;
  for (const auto& m : v) out.push_back(m.mount_point);
  std::sort(out.begin(), out.end());
  return out;
}

auto all_reflink = [](const mount_entry&) { return true; };

TEST(DefaultScanMounts, PicksSharingFilesystemsOnly) {
  const std::vector<mount_entry> ms = {
      mnt(1, 0, 26, "/", "/", "btrfs"),   mnt(2, 8, 1, "/", "/boot", "ext4"),
      mnt(3, 0, 30, "/", "/tmp", "tmpfs"), mnt(4, 259, 1, "/", "/data", "xfs"),
      mnt(5, 0, 4, "/", "/proc", "proc"),
  };
  EXPECT_EQ(mount_points(default_scan_mounts(ms, all_reflink)), (std::vector<std::string>{"/", "/data"}));
}

TEST(DefaultScanMounts, BindMountOfSubdirectoryIsCoveredByTheWholeMount) {
  // The bind mount comes first in the table; the whole-filesystem mount still wins.
  const std::vector<mount_entry> ms = {
      mnt(7, 0, 26, "/sub", "/srv/sub", "btrfs"),
      mnt(1, 0, 26, "/", "/", "btrfs"),
      mnt(8, 0, 26, "/sub/deeper", "/srv/deeper", "btrfs"),
  };
  const auto got = default_scan_mounts(ms, all_reflink);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].mount_point, "/");
  EXPECT_EQ(got[0].root, "/");
}

TEST(DefaultScanMounts, SameFilesystemMountedTwiceIsWalkedOnce) {
  const std::vector<mount_entry> ms = {mnt(1, 259, 1, "/", "/data", "xfs"), mnt(2, 259, 1, "/", "/mnt/again", "xfs")};
  EXPECT_EQ(default_scan_mounts(ms, all_reflink).size(), 1u);
}

TEST(DefaultScanMounts, DisjointRootsOfOneDeviceAreBothKept) {
  const std::vector<mount_entry> ms = {
      mnt(1, 259, 1, "/a", "/mnt/a", "xfs"),
      mnt(2, 259, 1, "/b", "/mnt/b", "xfs"),
      mnt(3, 259, 1, "/a/inner", "/mnt/inner", "xfs"),  // inside /a: dropped
      mnt(4, 259, 1, "/ab", "/mnt/ab", "xfs"),          // shares a prefix with /a, not inside it
  };
  EXPECT_EQ(mount_points(default_scan_mounts(ms, all_reflink)),
            (std::vector<std::string>{"/mnt/a", "/mnt/ab", "/mnt/b"}));
}

TEST(DefaultScanMounts, SameRootOnAnotherDeviceIsKept) {
  const std::vector<mount_entry> ms = {mnt(1, 0, 26, "/", "/", "btrfs"), mnt(2, 0, 27, "/", "/backup", "btrfs")};
  EXPECT_EQ(mount_points(default_scan_mounts(ms, all_reflink)), (std::vector<std::string>{"/", "/backup"}));
}

TEST(DefaultScanMounts, XfsWithoutReflinkIsExcluded) {
  const std::vector<mount_entry> ms = {
      mnt(1, 0, 26, "/", "/", "btrfs"),
      mnt(2, 259, 1, "/", "/reflinked", "xfs"),
      mnt(3, 259, 2, "/", "/plain", "xfs"),
  };
  std::vector<std::string> asked;
  auto pred = [&](const mount_entry& m) {
    asked.push_back(m.mount_point);
    return !(m.major == 259 && m.minor == 2);
  };
  EXPECT_EQ(mount_points(default_scan_mounts(ms, pred)), (std::vector<std::string>{"/", "/reflinked"}));
  EXPECT_EQ(std::count(asked.begin(), asked.end(), "/plain"), 1);
  // A predicate saying yes does not make ext4 a candidate.
  const std::vector<mount_entry> ext = {mnt(4, 8, 1, "/", "/boot", "ext4")};
  EXPECT_TRUE(default_scan_mounts(ext, all_reflink).empty());
}

}  // namespace
}  // namespace dupcache
