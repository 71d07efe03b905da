// SPDX-License-Identifier: GPL-2.0-only
#include "output/trace.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "util/json_text.hpp"
#include "util/text.hpp"

namespace dupcache::output {

std::string trace_event_json(const trace::decoded_event& e) {
  nlohmann::ordered_json j;
  j["ts_ns"] = e.timestamp_ns;
  if (e.end_timestamp_ns != e.timestamp_ns) j["ts_end_ns"] = e.end_timestamp_ns;
  j["kind"] = std::string(trace::to_string(e.kind));
  j["cpu"] = e.cpu;
  j["pid"] = e.pid;
  j["tid"] = e.tid;
  j["comm"] = to_json_path(std::string(e.comm_view())).text;
  if (e.has_identity) {
    j["dev"] = fmt::format("{}:{}", e.dev_major, e.dev_minor);
    j["subvol"] = e.subvol_id;
    j["ino"] = e.ino;
    j["generation"] = e.generation;
    if (e.subvol_unknown) j["subvol_unknown"] = true;
  }
  if (e.is_cache() || e.kind == trace::event_kind::folio_dirty) {
    j["index"] = e.index;
    j["nr_pages"] = e.nr_pages;
    j["cgroup_id"] = e.cgroup_id;
  } else {
    if (e.fd >= 0) j["fd"] = e.fd;
    if (e.fd2 >= 0) j["fd2"] = e.fd2;
    j["off"] = e.off;
    j["off2"] = e.off2;
    j["len"] = e.len;
    j["aux"] = e.aux;
    if (e.args_unread) j["args_unread"] = true;
    if (e.off_is_file_pos) j["off_is_file_pos"] = true;
    if (e.off2_is_file_pos) j["off2_is_file_pos"] = true;
  }
  return dump_json(j);
}

void write_trace_started(std::ostream& err, trace::hook_path path, bool coalescing) {
  err << fmt::format("dupcache: trace: page-cache hooks: {}, {}\n", trace::to_string(path),
                     coalescing ? "insertions coalesced into runs" : "one event per folio");
  err.flush();
}

void write_trace_counters(std::ostream& err, const trace::event_counters& c) {
  err << fmt::format("dupcache: trace: {} events emitted, {} dropped (ring buffer full)\n", c.total_emitted(),
                     c.total_drops());
  err.flush();
}

void write_trace_failure(std::ostream& err, const std::string& message) {
  err << fmt::format("dupcache: {}\n", terminal_safe(message));
  err.flush();
}

}  // namespace dupcache::output
