// SPDX-License-Identifier: GPL-2.0-only
#include <gtest/gtest.h>
#include "index/block_index.hpp"
TEST(BlockIndex, Empty) { dupcache::block_index i(4096); EXPECT_EQ(i.wasted_bytes(), 0u); }
