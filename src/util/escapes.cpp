// SPDX-License-Identifier: GPL-2.0-only
#include "util/escapes.hpp"

#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <new>
#include <string_view>

#include "util/log.hpp"

namespace dupcache {
namespace {

// The exception being handled, described; never throws.
std::string_view describe(std::exception_ptr e, bool& out_of_memory) noexcept {
  out_of_memory = false;
  try {
    std::rethrow_exception(e);
  } catch (const std::bad_alloc&) {
    out_of_memory = true;
    return "out of memory";
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "an exception of unknown type";
  }
}

// The line through the logger; when even that fails (no memory left to format it), a fixed
// line written directly.
void say(std::string_view what, bool out_of_memory, std::string_view where) noexcept {
  try {
    if (out_of_memory) log::error("out of memory{}", where);
    else log::error("internal error{}: {} (this is a bug in dupcache; please report it)", where, what);
  } catch (...) {
    constexpr std::string_view fixed = "dupcache: internal error (its description could not be written)\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, fixed.data(), fixed.size());
  }
}

[[noreturn]] void on_terminate() noexcept {
  if (auto e = std::current_exception()) {
    bool oom = false;
    const auto what = describe(e, oom);
    // The main thread's escapes are caught by run_catching_escapes; one that reaches here from
    // it left a noexcept function.
    say(what, oom, ::gettid() == ::getpid() ? " (in a function that may not throw)" : " in a background thread");
  } else {
    say("std::terminate was called without an exception", false, "");
  }
  std::abort();
}

}  // namespace

int run_catching_escapes(const std::function<int()>& command) {
  try {
    return command();
  } catch (...) {
    const auto e = std::current_exception();
    bool oom = false;
    const auto what = describe(e, oom);
    say(what, oom, "");
    return 1;
  }
}

void install_escape_handler() { std::set_terminate(on_terminate); }

}  // namespace dupcache
