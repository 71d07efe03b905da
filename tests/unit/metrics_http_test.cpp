// SPDX-License-Identifier: GPL-2.0-only
// The metrics endpoint's HTTP, apart from sockets: what it answers to each request head, and
// that it stops at the line cap instead of reading on.

#include <gtest/gtest.h>

#include <string>

#include "daemon/metrics.hpp"

namespace dupcache::daemon {
namespace {

std::string status_line(const std::string& reply) { return reply.substr(0, reply.find("\r\n")); }

TEST(MetricsHttp, ServesMetricsToGet) {
  auto r = http_reply("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", "m 1\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(status_line(*r), "HTTP/1.1 200 OK");
  EXPECT_NE(r->find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos) << *r;
  EXPECT_NE(r->find("Content-Length: 4\r\n"), std::string::npos) << *r;
  EXPECT_NE(r->find("Connection: close\r\n"), std::string::npos) << *r;
  EXPECT_EQ(r->substr(r->find("\r\n\r\n") + 4), "m 1\n");
  // HTTP/1.0, bare LF line ends, a query string, leading empty lines: all accepted.
  r = http_reply("\r\n\nGET /metrics?x=1 HTTP/1.0\n\n", "m 1\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(status_line(*r), "HTTP/1.1 200 OK");
  // HEAD: the headers only.
  r = http_reply("HEAD /metrics HTTP/1.1\r\n\r\n", "m 1\n");
  ASSERT_TRUE(r);
  EXPECT_NE(r->find("Content-Length: 4\r\n"), std::string::npos);
  EXPECT_EQ(r->substr(r->find("\r\n\r\n") + 4), "");
}

TEST(MetricsHttp, WaitsForTheEndOfTheHead) {
  EXPECT_FALSE(http_reply("", "m"));
  EXPECT_FALSE(http_reply("GET /metrics HTTP/1.1", "m"));
  EXPECT_FALSE(http_reply("GET /metrics HTTP/1.1\r\nHost: x\r\n", "m"));
  EXPECT_FALSE(http_reply("\r\n\r\n", "m")) << "empty lines before the request line are not a request";
}

TEST(MetricsHttp, RefusesWhatItDoesNotServe) {
  EXPECT_EQ(status_line(*http_reply("GET / HTTP/1.1\r\n\r\n", "m")), "HTTP/1.1 404 Not Found");
  EXPECT_EQ(status_line(*http_reply("GET /metricsx HTTP/1.1\r\n\r\n", "m")), "HTTP/1.1 404 Not Found");
  const auto post = *http_reply("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "m");
  EXPECT_EQ(status_line(post), "HTTP/1.1 405 Method Not Allowed");
  EXPECT_NE(post.find("Allow: GET, HEAD\r\n"), std::string::npos);
  for (const char* bad : {"GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/2\r\n\r\n",
                          "GET /metrics HTTP/1.1 x\r\n\r\n", "\x01\x02\r\n\r\n"}) {
    EXPECT_EQ(status_line(*http_reply(bad, "m")), "HTTP/1.1 400 Bad Request") << bad;
  }
}

// Header lines are counted, never stored: past the cap the answer is 431 at once, even though
// the head has not ended and is far below the byte cap.
TEST(MetricsHttp, StopsAtTheLineCap) {
  std::string head = "GET /metrics HTTP/1.1\r\n";
  for (std::size_t i = 1; i < http_max_head_lines; ++i) head += "X: y\r\n";
  EXPECT_FALSE(http_reply(head, "m")) << "exactly the cap, the head not ended yet";
  const auto at_cap = http_reply(head + "\r\n", "m");  // the empty line is the 101st
  ASSERT_TRUE(at_cap);
  EXPECT_EQ(status_line(*at_cap), "HTTP/1.1 431 Request Header Fields Too Large");
  head += "X: y\r\n";
  ASSERT_TRUE(http_reply(head, "m"));
  EXPECT_EQ(status_line(*http_reply(head, "m")), "HTTP/1.1 431 Request Header Fields Too Large");
  EXPECT_LT(head.size(), http_max_head_bytes);
  EXPECT_EQ(status_line(http_too_large()), "HTTP/1.1 431 Request Header Fields Too Large");
}

}  // namespace
}  // namespace dupcache::daemon
