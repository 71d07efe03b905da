// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// What dupcache can rely on for a kernel release, from its version alone: the oldest kernel
// supported, what degrades below which version, and for each point which kernels the test
// matrix proved it on (Debian's 6.1 and 6.12 in qemu guests, tests/guest; 6.18 on the
// development host) or that it is untested. The probes elsewhere in doctor say what works; these
// lines say what to expect and how far it was tested.
// Contract: kernel_support() is pure (no system calls): the release string in, the "kernel ..."
// checks out, in a fixed order. A release that does not start with MAJOR.MINOR is reported as
// unknown, never guessed.

#include <string_view>
#include <vector>

#include "doctor/checks.hpp"

namespace dupcache::doctor {

std::vector<check> kernel_support(std::string_view release);

}  // namespace dupcache::doctor
