// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// `dupcache doctor`: what this kernel and host support, and why. Each check is one line: the
// kernel, privileges, BTF, cachestat, tracefs, the tracer's hook probe (it loads and attaches
// the real programs), cgroups, the filesystems a report walks, the runtimes' storage, the
// merge module.
// Contract: run_checks() never fails; a missing feature is a check with status "missing" and a
// detail that says why and what dupcache does instead. Statuses: "ok", "missing", "info", or the
// tracer's probe status ("rejected", "not tried", "disabled"). Rendering: output/doctor.hpp.

#include <string>
#include <vector>

namespace dupcache::doctor {

struct check {
  std::string name;
  std::string status;
  std::string detail;
};

std::vector<check> run_checks();

}  // namespace dupcache::doctor
