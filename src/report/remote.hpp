// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The client side of the daemon's control socket (src/daemon/control.hpp): one request, one
// answer.

#include <string>

#include "util/result.hpp"

namespace dupcache {

// Sends the request line and returns the answer; an answer starting "error: " is an error.
result<std::string> ask_daemon(const std::string& socket_path, const std::string& request);

}  // namespace dupcache
