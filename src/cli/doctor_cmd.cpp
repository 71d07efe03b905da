// SPDX-License-Identifier: GPL-2.0-only
#include <iostream>

#include "cli/commands.hpp"
#include "doctor/checks.hpp"
#include "output/doctor.hpp"

namespace dupcache {

void register_doctor(CLI::App& app, doctor_args& a) {
  auto* cmd = app.add_subcommand("doctor", "What this kernel and host support, and why");
  cmd->footer("Exit status: 0 the checks ran (missing features are reported, not failures), 2 usage error.");
  cmd->add_flag("--json", a.json, "Print the checks as JSON");
}

int run_doctor(const doctor_args& a) {
  const auto checks = doctor::run_checks();
  if (a.json) output::write_doctor_json(std::cout, checks);
  else output::write_doctor_text(std::cout, checks);
  return exit_ok;
}

}  // namespace dupcache
