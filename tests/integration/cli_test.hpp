// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// What the tests of `dupcache top`, `trace` and `doctor` share: reading a command's text output
// as lines and tokens, and the scenario most of them start from (N reflink copies of one file,
// each read fully from nothing cached). Every expected number comes from the scenario; nothing
// is read back from the tool and then checked against itself.

#include <cstdint>
#include <string>
#include <vector>

#include "fs_fixture.hpp"

namespace dupcache::testing {

std::uint64_t ps();

std::vector<std::string> split_lines(const std::string& s);
std::vector<std::string> tokens(const std::string& s);
bool starts_with(const std::string& s, const std::string& p);
bool contains(const std::string& s, const std::string& p);
// Terminal columns of a line: UTF-8 code points (all of top's own text is ASCII).
std::size_t columns_of(const std::string& s);

// n reflink copies of `size` bytes, named names[0..], every one read fully from nothing cached.
void copies_all_read(const scratch_fs& fs, const std::vector<std::string>& names, std::uint64_t size,
                     std::uint32_t seed);

}  // namespace dupcache::testing
