// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// What `dupcache trace` prints: one JSON object per event on standard output (the JSON-lines
// contract of dupcache-trace(8)), and its status lines on standard error.
// Contract: the writers only format; the event's keys, their order and the wording of the
// status lines are the command's contract and change only with the man page.

#include <cstdint>
#include <ostream>
#include <string>

#include "trace/event.hpp"
#include "trace/tracer.hpp"

namespace dupcache::output {

// One line, without the newline.
std::string trace_event_json(const trace::decoded_event& e);
void write_trace_started(std::ostream& err, trace::hook_path path, bool coalescing);
void write_trace_counters(std::ostream& err, const trace::event_counters& c);
void write_trace_failure(std::ostream& err, const std::string& message);

}  // namespace dupcache::output
