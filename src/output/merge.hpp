// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// What `dupcache merge` prints of a merge pass (policy/merge_pass.hpp): one JSON document, or
// text lines, with failures and warnings on the error stream. Both forms are a contract (the
// man page, the tests and scripts read them): a key or a line's wording changes only with them.

#include <cstdio>
#include <ostream>

#include "policy/merge_pass.hpp"

namespace dupcache::output {

// The --json document, and its newline.
void merge_json(const policy::merge_report& r, std::ostream& out);

// The text form: what was merged, refused, freed, and a summary line on out; errors, the
// fallback taken and actions that failed on err. bytes: sizes as plain byte counts.
void merge_text(const policy::merge_report& r, bool bytes, std::ostream& out, std::FILE* err);

}  // namespace dupcache::output
