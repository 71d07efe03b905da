// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// How `dupcache evict` prints a pass (policy/evict_pass.hpp): the diagnostics that come before
// any action on standard error, then either one JSON document or one line per copy and a
// summary. Sizes are human-readable unless exact_bytes. File names pass through terminal_safe
// in text and are escaped as JSON paths in JSON.

#include <cstdio>
#include <ostream>

#include "policy/evict_pass.hpp"

namespace dupcache::output {

struct evict_format {
  bool json = false;
  bool exact_bytes = false;  // --bytes
};

// Scan errors, then the lines that stopped the pass (options naming no container, charges
// unavailable with container options) or the warning that charges are unavailable.
void write_evict_diagnostics(std::FILE* err, const policy::evict_pass_result& r);
// The pass's actions and totals. In text, a copy that could not be acted on goes to err, in
// its place among the lines.
void write_evict(std::ostream& out, std::FILE* err, const policy::evict_pass_result& r, const evict_format& f);

}  // namespace dupcache::output
