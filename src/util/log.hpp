// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The one logger: every diagnostic line goes to standard error through here, in the style set
// once at start.
//  - command (the default, "dupcache: CMD: message"): a one-shot command's errors. The message
//    is printed as given; callers escape what came from outside (terminal_safe), as before.
//  - journald ("<N>dupcache: message", sd-daemon(3) priority prefixes): the daemon. journald
//    reads one entry per line and a "<N>" at a line's start as its priority, so a file name
//    holding "\n<0>" would forge an emergency entry: the whole message is made one line
//    (terminal_safe) whatever its arguments hold. Callers pass raw paths and messages.
// The level only shows in the journald style; commands say everything at one level.

#include <fmt/format.h>

#include <string_view>
#include <utility>

namespace dupcache::log {

enum class level { err = 3, warning = 4, notice = 5, info = 6, debug = 7 };

// "dupcache: <command>: " before each line; `command` must outlive the logging (a literal).
void use_command_style(std::string_view command);
void use_journald_style();

void write(level l, std::string_view message);

template <typename... Args>
void print(level l, fmt::format_string<Args...> f, Args&&... args) {
  write(l, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write(level::err, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace dupcache::log
