// SPDX-License-Identifier: GPL-2.0-only
#include "scan/fs_identity.hpp"

#include <fmt/format.h>
#include <linux/btrfs.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <cstring>
#include <optional>
#include <utility>

namespace dupcache {
namespace {

// FS_IOC_GETFSUUID (Linux 6.5) is missing from Debian 12's headers; its ABI is fixed.
struct fsuuid2 {
  std::uint8_t len;
  std::uint8_t uuid[16];
};
#ifndef FS_IOC_GETFSUUID
#define FS_IOC_GETFSUUID _IOR(0x15, 0, struct fsuuid2)
#endif

// XFS_IOC_FSGEOMETRY_V1 from xfs_fs.h (xfslibs-dev is not a build dependency).
struct xfs_geom_v1 {
  std::uint32_t blocksize, rtextsize, agblocks, agcount, logblocks, sectsize, inodesize, imaxpct;
  std::uint64_t datablocks, rtblocks, rtextents, logstart;
  unsigned char uuid[16];
  std::uint32_t sunit, swidth;
  std::int32_t version;
  std::uint32_t flags, logsectsize, rtsectsize, dirblocksize;
};
static_assert(sizeof(xfs_geom_v1) == 112);
constexpr unsigned long xfs_ioc_fsgeometry_v1 = _IOR('X', 100, xfs_geom_v1);
constexpr std::uint32_t xfs_geom_flags_reflink = 1u << 20;

constexpr std::uint64_t xfs_magic = 0x58465342;
constexpr std::uint64_t bcachefs_magic = 0xca451a4e;

// Which subvolume (tree id) an open btrfs file is in. Tree id 0 with the first free object id
// asks for the subvolume of the file itself; allowed without privileges.
result<std::uint64_t> btrfs_subvol_of(int fd) {
  btrfs_ioctl_ino_lookup_args ino{};
  ino.treeid = 0;
  ino.objectid = 256;  // BTRFS_FIRST_FREE_OBJECTID (btrfs_tree.h): a subvolume's root directory
  if (ioctl(fd, BTRFS_IOC_INO_LOOKUP, &ino) < 0) return errno_error("identify btrfs subvolume (BTRFS_IOC_INO_LOOKUP)");
  return static_cast<std::uint64_t>(ino.treeid);
}

}  // namespace

std::string format_uuid(const unsigned char (&u)[16]) {
  return fmt::format("{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                     u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
                     u[13], u[14], u[15]);
}

std::string fs_type_name(std::uint64_t magic) {
  switch (magic) {
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case xfs_magic: return "xfs";
    case EXT4_SUPER_MAGIC: return "ext4";  // also ext2/ext3: one magic
    case TMPFS_MAGIC: return "tmpfs";
    case bcachefs_magic: return "bcachefs";
    case OVERLAYFS_SUPER_MAGIC: return "overlay";
    default: break;
  }
  // Names for what a walk may meet below a mount point (linux/magic.h), so that what it skips
  // is said by name and pseudo filesystems are known for what they are.
  static constexpr std::pair<std::uint64_t, const char*> more[] = {
      {0x9fa0, "proc"},          {0x62656572, "sysfs"},     {0x1cd1, "devpts"},       {0x27e0eb, "cgroup"},
      {0x63677270, "cgroup2"},   {0x74726163, "tracefs"},   {0x64626720, "debugfs"},  {0x73636673, "securityfs"},
      {0xcafe4a11, "bpf"},       {0x19800202, "mqueue"},    {0x6e736673, "nsfs"},     {0x958458f6, "hugetlbfs"},
      {0x62656570, "configfs"},  {0x65735543, "fusectl"},   {0x6165676c, "pstore"},   {0x42494e4d, "binfmt_misc"},
      {0xde5e81e4, "efivarfs"},  {0x0187, "autofs"},        {0xf97cff8c, "selinuxfs"}, {0x6969, "nfs"},
      {0x65735546, "fuse"},      {0x73717368, "squashfs"},  {0xe0f5e1e2, "erofs"},    {0x2fc12fc1, "zfs"},
      {0x4d44, "vfat"}};
  for (const auto& [m, name] : more) {
    if (m == magic) return name;
  }
  return fmt::format("0x{:x}", magic);
}

result<fs_info> fs_registry::lookup(int fd, const struct stat& st) {
  std::optional<fs_info> known;
  {
    std::lock_guard lock(mu_);
    if (auto it = by_dev_.find(st.st_dev); it != by_dev_.end()) known = it->second;
  }
  if (known && known->type != "btrfs") return *known;
  if (known) {
    // A btrfs subvolume's st_dev is an anonymous device number, handed out again once the
    // subvolume is deleted (and its dentries dropped): a snapshot made after another was
    // deleted may get its number. The subvolume must be asked each time, the rest holds.
    auto subvol = btrfs_subvol_of(fd);
    if (!subvol) return subvol.err();
    if (*subvol == known->subvol) return *known;
    known->subvol = *subvol;
    std::lock_guard lock(mu_);
    by_dev_.insert_or_assign(st.st_dev, *known);
    return *known;
  }
  struct statfs sfs {};
  if (fstatfs(fd, &sfs) < 0) return errno_error("identify filesystem (fstatfs)");
  fs_info info;
  info.type = fs_type_name(static_cast<std::uint64_t>(sfs.f_type));

  if (static_cast<std::uint64_t>(sfs.f_type) == BTRFS_SUPER_MAGIC) {
    // st_dev and f_fsid differ per subvolume on btrfs; the fsid in the superblock does not.
    btrfs_ioctl_fs_info_args fsi{};
    if (ioctl(fd, BTRFS_IOC_FS_INFO, &fsi) < 0) return errno_error("identify btrfs filesystem (BTRFS_IOC_FS_INFO)");
    unsigned char u[16];
    std::memcpy(u, fsi.fsid, 16);
    info.id = "btrfs:" + format_uuid(u);
    auto subvol = btrfs_subvol_of(fd);
    if (!subvol) return subvol.err();
    info.subvol = *subvol;
  } else {
    fsuuid2 fu{};
    fu.len = 16;
    xfs_geom_v1 geo{};
    const bool is_xfs = static_cast<std::uint64_t>(sfs.f_type) == xfs_magic;
    const bool have_geo = is_xfs && ioctl(fd, xfs_ioc_fsgeometry_v1, &geo) == 0;
    static constexpr unsigned char nil[16] = {};
    if (ioctl(fd, FS_IOC_GETFSUUID, &fu) == 0 && fu.len == 16 && std::memcmp(fu.uuid, nil, 16) != 0) {
      unsigned char u[16];
      std::memcpy(u, fu.uuid, 16);
      info.id = info.type + ":" + format_uuid(u);
    } else if (have_geo && std::memcmp(geo.uuid, nil, 16) != 0) {
      info.id = "xfs:" + format_uuid(geo.uuid);
    } else {
      // No UUID to be had: the device is one filesystem on these types (no subvolumes).
      info.id = fmt::format("{}:dev-{}:{}", info.type, major(st.st_dev), minor(st.st_dev));
    }
    info.has_realtime = have_geo && geo.rtblocks > 0;
  }
  std::lock_guard lock(mu_);
  by_dev_.insert_or_assign(st.st_dev, info);
  return info;
}

bool fs_can_share(int dir_fd, const std::string& fstype) {
  if (fstype != "xfs") return true;
  xfs_geom_v1 geo{};
  if (ioctl(dir_fd, xfs_ioc_fsgeometry_v1, &geo) < 0) return false;
  return (geo.flags & xfs_geom_flags_reflink) != 0;
}

bool xfs_is_realtime(int fd) {
  struct fsxattr fa {};
  if (ioctl(fd, FS_IOC_FSGETXATTR, &fa) < 0) return false;
  return (fa.fsx_xflags & FS_XFLAG_REALTIME) != 0;
}

}  // namespace dupcache
