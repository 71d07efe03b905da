// SPDX-License-Identifier: GPL-2.0-only
// File-handle formats for open_by_handle_at(2) (scan/file_handle.hpp): each filesystem's
// export layout, byte for byte (little-endian hosts, like the kernel's own encoding there).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "scan/file_handle.hpp"

namespace dupcache {
namespace {

// Each value's bytes at its own width, in order (x86 is little-endian, like the encoding).
template <typename... T>
std::vector<unsigned char> packed(T... values) {
  std::vector<unsigned char> out;
  auto put = [&out](auto v) {
    unsigned char b[sizeof v];
    std::memcpy(b, &v, sizeof v);
    out.insert(out.end(), b, b + sizeof v);
  };
  (put(values), ...);
  return out;
}

TEST(FileHandle, BtrfsCarriesObjectidRootAndGeneration) {
  auto h = build_file_handle("btrfs", 257, 5, 7);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->handle_type, 0x4d);  // FILEID_BTRFS_WITHOUT_PARENT
  EXPECT_EQ(h->bytes, packed(std::uint64_t{257}, std::uint64_t{5}, std::uint32_t{7}));
}

TEST(FileHandle, XfsCarriesA64BitInode) {
  auto h = build_file_handle("xfs", std::uint64_t{1} << 40, 0, 3);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->handle_type, 0x81);
  EXPECT_EQ(h->bytes, packed(std::uint64_t{1} << 40, std::uint32_t{3}));
}

TEST(FileHandle, GenericFormatHolds32BitInodesOnly) {
  auto h = build_file_handle("ext4", 12, 0, 9);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->handle_type, 1);
  EXPECT_EQ(h->bytes, packed(std::uint32_t{12}, std::uint32_t{9}));
  EXPECT_FALSE(build_file_handle("ext4", std::uint64_t{1} << 32, 0, 9));
}

TEST(FileHandle, UnknownDevicesOpenNothing) {
  inode_opener opener;
  EXPECT_FALSE(opener.knows(1));
  EXPECT_FALSE(opener.open(1, 2, 0, 1));
  EXPECT_TRUE(opener.devices().empty());
}

}  // namespace
}  // namespace dupcache
