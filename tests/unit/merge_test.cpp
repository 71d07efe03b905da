// SPDX-License-Identifier: GPL-2.0-only
// Which mappings of a /proc/PID/smaps text merge asks about.
#include <gtest/gtest.h>

#include "policy/merge.hpp"

namespace dupcache::policy {
namespace {

// A process with a library mapped as ld.so maps it: text r-xp, RELRO r--p with copy-on-write
// pages, data rw-p; plus a shared read-only mapping, an anonymous one and a read-only private
// file mapping with no anonymous pages.
constexpr const char* smaps = R"(55d0c0000000-55d0c0200000 r-xp 00000000 00:2a 257                        /mnt/c1
Size:               2048 kB
Rss:                2048 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
55d0c0200000-55d0c0201000 r--p 00200000 00:2a 257                        /mnt/c1
Size:                  4 kB
Anonymous:             4 kB
55d0c0201000-55d0c0202000 rw-p 00201000 00:2a 257                        /mnt/c1
Anonymous:             4 kB
7f0000000000-7f0000100000 r--s 00000000 00:2a 258                        /mnt/shared
Anonymous:             0 kB
7f0000100000-7f0000200000 rw-p 00000000 00:00 0 
Anonymous:          1024 kB
7f0000200000-7f0000204000 r--p 00003000 00:2a 259                        /mnt/path with spaces
Anonymous:             0 kB
)";

TEST(MergeSmaps, PrivateReadOnlyFileMappingsWithTheirCowPages) {
  const auto v = mergeable_vmas(smaps);
  const std::vector<vma_line> want{
      {0x55d0c0000000, 0x55d0c0200000, 0, 0},
      {0x55d0c0200000, 0x55d0c0201000, 0x200000, 4},
      {0x7f0000200000, 0x7f0000204000, 0x3000, 0},
  };
  EXPECT_EQ(v, want);
}

TEST(MergeSmaps, EmptyAndGarbageGiveNothing) {
  EXPECT_TRUE(mergeable_vmas("").empty());
  EXPECT_TRUE(mergeable_vmas("Anonymous: 4 kB\nnot a mapping\n").empty());
}

}  // namespace
}  // namespace dupcache::policy
