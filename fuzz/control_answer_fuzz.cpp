// SPDX-License-Identifier: GPL-2.0-only
// The client end of the daemon's control socket: `report --from-daemon` and `top --from-daemon`
// turn the daemon's JSON answer back into a model (report_from_json(), documented to throw on a
// malformed document) and render it. Whatever the answer, the client reports an error or prints
// a report; it never crashes.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>

#include "report/report.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  dupcache::report_model m;
  try {
    m = dupcache::report_from_json(j);
  } catch (const std::exception&) {
    return 0;
  }
  dupcache::report_options ro;
  ro.views = {dupcache::report_view::file, dupcache::report_view::group, dupcache::report_view::fs,
              dupcache::report_view::container};
  (void)dupcache::report_text(m, ro);
  (void)dupcache::report_json(m, ro).dump();
  ro.exact_bytes = true;
  ro.top = 1;
  (void)dupcache::report_text(m, ro);
  return 0;
}
