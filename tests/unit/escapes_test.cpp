// SPDX-License-Identifier: GPL-2.0-only
#include <gtest/gtest.h>

#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#include "util/escapes.hpp"
#include "util/log.hpp"

namespace dupcache {
namespace {

struct command_style_reset {
  ~command_style_reset() { log::use_command_style(""); }
};

std::string stderr_of(int& status, const std::function<int()>& command) {
  testing::internal::CaptureStderr();
  status = run_catching_escapes(command);
  return testing::internal::GetCapturedStderr();
}

TEST(Escapes, StatusOfACommandThatReturnsIsItsOwn) {
  int status = -1;
  EXPECT_EQ(stderr_of(status, [] { return 0; }), "");
  EXPECT_EQ(status, 0);
  EXPECT_EQ(stderr_of(status, [] { return 2; }), "");
  EXPECT_EQ(status, 2);
}

TEST(Escapes, AnEscapedExceptionIsOneLineAndStatusOne) {
  command_style_reset reset;
  int status = -1;
  EXPECT_EQ(stderr_of(status, []() -> int { throw std::logic_error("rows 21 of 20"); }),
            "dupcache: internal error: rows 21 of 20 (this is a bug in dupcache; please report it)\n");
  EXPECT_EQ(status, 1);

  log::use_command_style("report");
  EXPECT_EQ(stderr_of(status, []() -> int { throw std::bad_alloc(); }), "dupcache: report: out of memory\n");
  EXPECT_EQ(status, 1);
  EXPECT_EQ(stderr_of(status, []() -> int { throw 7; }),
            "dupcache: report: internal error: an exception of unknown type (this is a bug in dupcache; please "
            "report it)\n");
  EXPECT_EQ(status, 1);
}

TEST(Escapes, TheDaemonsLineIsOneJournalEntry) {
  command_style_reset reset;
  log::use_journald_style();
  int status = -1;
  // A description holding a newline and a forged priority stays on the one line it starts.
  const std::string out = stderr_of(status, []() -> int { throw std::runtime_error("a\n<0>b"); });
  EXPECT_EQ(status, 1);
  ASSERT_EQ(out.rfind("<3>dupcache: internal error: a", 0), 0u) << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
}

TEST(EscapesDeathTest, AnExceptionEscapingAThreadIsNamedBeforeTheAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        install_escape_handler();
        std::thread t([] { throw std::runtime_error("walker gave up"); });
        t.join();
      },
      "dupcache: internal error in a background thread: walker gave up \\(this is a bug");
}

}  // namespace
}  // namespace dupcache
