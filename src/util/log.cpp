// SPDX-License-Identifier: GPL-2.0-only
#include "util/log.hpp"

#include <cstdio>
#include <string>

#include "util/text.hpp"

namespace dupcache::log {
namespace {

// Set before any thread starts (at the top of a command's run function), read afterwards.
bool journald = false;
std::string_view command_name;  // empty: "dupcache: message"

}  // namespace

void use_command_style(std::string_view command) {
  journald = false;
  command_name = command;
}

void use_journald_style() { journald = true; }

void write(level l, std::string_view message) {
  // One fmt::print per line: lines of concurrent threads do not interleave mid-line.
  if (journald) {
    fmt::print(stderr, "<{}>dupcache: {}\n", static_cast<int>(l), terminal_safe(message));
  } else if (command_name.empty()) {
    fmt::print(stderr, "dupcache: {}\n", message);
  } else {
    fmt::print(stderr, "dupcache: {}: {}\n", command_name, message);
  }
}

}  // namespace dupcache::log
