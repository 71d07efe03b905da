// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// One thread serving a listening stream socket for a one-request, one-reply protocol (the
// metrics endpoint, the control socket), bounded whatever the clients do:
//  - at most max_connections at once; when full, a new connection pushes out the oldest one
//    still sending its request, so idle or slow connections cannot lock a scrape out;
//  - a request is at most max_request_bytes, and must be complete within request_time of the
//    accept (a deadline for the whole request, not per read: trickling a byte at a time does
//    not extend it);
//  - one reply, sent within reply_time, then the connection closes.
// Memory is therefore bounded by max_connections × (max_request_bytes + one reply), and file
// descriptors by max_connections + 2, however many connections are attempted.

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace dupcache::daemon {

struct serve_limits {
  std::size_t max_connections = 16;
  std::size_t max_request_bytes = 8192;
  std::chrono::milliseconds request_time{5000};
  std::chrono::milliseconds reply_time{10000};
};

// Given every byte received so far on a connection: nullopt while the request is incomplete,
// else the reply (after which the connection closes). Called after each read, on the serving
// thread, with at most max_request_bytes.
using request_handler = std::function<std::optional<std::string>(std::string_view received)>;

class bounded_server {
 public:
  bounded_server() = default;
  bounded_server(const bounded_server&) = delete;
  bounded_server& operator=(const bounded_server&) = delete;
  ~bounded_server();
  // LISTENER is bound and listening. TOO_LARGE is the reply to a request that reaches
  // max_request_bytes without the handler accepting it.
  result<void> start(unique_fd listener, serve_limits limits, request_handler handle, std::string too_large);

 private:
  void run();
  unique_fd listen_;
  unique_fd wake_;
  serve_limits limits_;
  request_handler handle_;
  std::string too_large_;
  std::thread thread_;
};

}  // namespace dupcache::daemon
