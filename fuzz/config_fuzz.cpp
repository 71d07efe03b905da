// SPDX-License-Identifier: GPL-2.0-only
// The daemon's TOML configuration (policy/config.hpp): any text, strict or not, gives a config or
// an error naming a place; never an exception, a crash or undefined behaviour. The size and
// duration parsers are fed the same bytes: they read values out of the same file.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "policy/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto c = dupcache::policy::parse_config(text, "fuzz.toml");
  if (!c) {
    // Strict parsing: an error always says where ("fuzz.toml:<line>:<column>: what").
    if (c.err().reason().rfind("fuzz.toml:", 0) != 0) std::abort();
  } else {
    (void)c->any_trigger();
    (void)c->needs_containers();
  }
  // A plain number of bytes comes back as that number (to double precision), never wrapped.
  auto n = dupcache::policy::parse_size(text);
  if (n && !text.empty() && text.size() <= 20 && text.find_first_not_of("0123456789") == std::string::npos) {
    const double want = std::stod(text);
    if (std::fabs(static_cast<double>(*n) - want) > want * 1e-12 + 0.5) std::abort();
  }
  (void)dupcache::policy::parse_duration(text);
  return 0;
}
