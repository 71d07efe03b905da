// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// What `dupcache dedupe` prints of a dedupe pass (policy/dedupe_pass.hpp): one JSON document,
// or text lines and a summary, with errors on the error stream. Both forms are a contract (the
// man page, the tests and scripts read them): a key or a line's wording changes only with them.

#include <cstdio>
#include <ostream>

#include "policy/dedupe_pass.hpp"

namespace dupcache::output {

// The --json document, and its newline.
void dedupe_json(const policy::dedupe_report& r, std::ostream& out);

// Each range shared (or that would be), each file skipped and why, and the summary line on
// out; files that could not be read and calls that failed on err. bytes: plain byte counts.
void dedupe_text(const policy::dedupe_report& r, bool bytes, std::ostream& out, std::FILE* err);

}  // namespace dupcache::output
