// SPDX-License-Identifier: GPL-2.0-only
#include "report/local.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include "report/content.hpp"
#include "scan/content.hpp"

namespace dupcache {

result<local_report> make_local_report(const local_report_request& req) {
  scan_options so = req.scan;
  // Charges need CAP_SYS_ADMIN (/proc/kpagecgroup): read only when containers are asked about,
  // so a plain report runs unprivileged.
  so.attribute = !req.filter.empty() ||
                 std::find(req.views.begin(), req.views.end(), report_view::container) != req.views.end();
  so.content = req.content;
  // Without --content the records move into the model with their pool (below).
  so.pool_paths = !req.content;
  auto scanned = scan(so);
  if (!scanned) return scanned.err();
  local_report out;
  out.named_path_failed = scanned->named_path_failed;
  std::optional<cgroup::host_accounting> acc;
  std::vector<cgroup::container_row> rows;
  if (so.attribute) {
    acc.emplace(req.metadata_root);
    rows = acc->rows(*scanned);
    out.charges_error = acc->error(*scanned);
  }
  if (req.content) {
    // --content still reads the scan's paths once the model is built (which copy keeps a
    // content, the groups of identical files), so the scan is copied into the model.
    out.model = build_report(*scanned);
    std::vector<reopen_target> targets;
    for (copy_id id = 0; id < scanned->files.size(); ++id) {
      const auto& f = scanned->files[id];
      const std::uint64_t size = id < scanned->content.sizes.size() ? scanned->content.sizes[id] : 0;
      targets.push_back({f.root, f.path, scanned->index.key_of(id).ino, size});
    }
    auto source = make_file_page_source(std::move(targets), out.model.page_size);
    auto found = find_content_duplicates(scanned->content, *source, out.model.page_size, content_rank(*scanned));
    attach_content(out.model, *scanned, found);
  } else {
    // The scan is done with: its paths move into the model instead of being copied.
    // Filtered, the rows printed are the first of those kept: every rank is put in order.
    out.model = build_report(std::move(*scanned), req.filter.empty() ? req.file_rows : all_rows);
  }
  if (!so.attribute) return out;
  attach_containers(out.model, std::move(rows), out.charges_error);
  out.usage_errors = cgroup::unknown_container_errors("--container", req.filter.containers, out.model.containers, *acc);
  if (!out.usage_errors.empty()) return out;
  if (!req.filter.empty() && filter_containers(out.model, req.filter) == 0) {
    auto named = [&](const std::string& option, const std::string& value) {
      out.no_match += (out.no_match.empty() ? "" : ", ") + option + " " + value;
    };
    for (const auto& c : req.filter.containers) named("--container", c);
    for (const auto& c : req.filter.cgroups) named("--cgroup", c);
  }
  return out;
}

}  // namespace dupcache
