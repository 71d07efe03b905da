// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The last line of defence: an exception nothing else caught still ends with a "dupcache:" line
// on standard error (in the logger's style: the daemon's journald priority, a command's name)
// and a failure status, never a bare "terminate called" from the C++ runtime.
//  - On the main thread, run_catching_escapes runs a command and turns what escapes it into
//    that line and exit status 1, after unwinding: destructors run, so a terminal `top` put in
//    curses mode is restored and files it opened are closed.
//  - On any other thread, an escaped exception ends the process (the C++ rules: std::terminate);
//    the handler install_escape_handler sets first says what escaped, then aborts (a core dump
//    where the host keeps them, a restart under systemd).

#include <functional>

namespace dupcache {

// Runs `command` and returns its status; an exception escaping it is reported and gives 1.
int run_catching_escapes(const std::function<int()>& command);

// std::set_terminate with a handler that reports the exception being handled, if any, then
// calls std::abort.
void install_escape_handler();

}  // namespace dupcache
