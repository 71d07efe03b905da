// SPDX-License-Identifier: GPL-2.0-only
#include "cli_test.hpp"

#include <sstream>

namespace dupcache::testing {

std::uint64_t ps() { return page_size(); }

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::vector<std::string> tokens(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string t; in >> t;) out.push_back(t);
  return out;
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool contains(const std::string& s, const std::string& p) { return s.find(p) != std::string::npos; }

// Terminal columns of a line: UTF-8 code points (all of top's own text is ASCII).
std::size_t columns_of(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

void copies_all_read(const scratch_fs& fs, const std::vector<std::string>& names, std::uint64_t size,
                     std::uint32_t seed) {
  write_file(fs.path(names[0]), size, seed);
  for (std::size_t i = 1; i < names.size(); ++i) reflink(fs.path(names[0]), fs.path(names[i]));
  for (const auto& n : names) evict(fs.path(n));
  for (const auto& n : names) read_all(fs.path(n));
}

}  // namespace dupcache::testing
