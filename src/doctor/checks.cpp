// SPDX-License-Identifier: GPL-2.0-only
#include "doctor/checks.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <utility>

#include "cgroup/names.hpp"
#include "doctor/kernel_support.hpp"
#include "policy/merge_module.hpp"
#include "scan/fs_identity.hpp"
#include "scan/mounts.hpp"
#include "scan/nodev_view.hpp"
#include "scan/residency.hpp"
#include "scan/superblocks.hpp"
#include "trace/tracer.hpp"
#include "util/fd.hpp"
#include "util/text.hpp"

namespace dupcache::doctor {

std::vector<check> run_checks() {
  std::vector<check> out;
  utsname u{};
  uname(&u);
  out.push_back({"kernel", "info", fmt::format("{} {}", u.release, u.machine)});
  for (auto& c : kernel_support(u.release)) out.push_back(std::move(c));
  out.push_back({"privileges", geteuid() == 0 ? "ok" : "missing",
                 geteuid() == 0 ? "root" : "not root: BPF tracing and some residency need root"});

  if (access("/sys/kernel/btf/vmlinux", R_OK) == 0) out.push_back({"btf", "ok", "/sys/kernel/btf/vmlinux"});
  else out.push_back({"btf", "missing", "no /sys/kernel/btf/vmlinux: CO-RE programs need kernel BTF (CONFIG_DEBUG_INFO_BTF)"});

  {
    unique_fd probe(memfd_create("dupcache-doctor", MFD_CLOEXEC));
    auto c = probe ? cachestat_range(probe.get(), 0, 0) : result<page_counts>(errno_error("memfd_create"));
    if (c) out.push_back({"cachestat", "ok", "cachestat(2) available: exact residency with dirty state"});
    else out.push_back({"cachestat", "missing", c.err().message() + "; falling back to mincore (no dirty state)"});
  }

  if (auto before = read_mountinfo()) {
    // Looked at before the hook probe, which mounts tracefs when it is missing.
    bool tracefs = false;
    for (const auto& m : *before) tracefs = tracefs || m.fstype == "tracefs";
    out.push_back({"tracefs", tracefs ? "ok" : "info",
                   tracefs ? "mounted" : "not mounted; the tracer mounts it at /sys/kernel/tracing (checked below)"});
  }

  trace::tracer_options to;
  to.ring_buffer_bytes = 4096 * 16;
  auto t = trace::tracer::open(to);
  if (t) {
    for (const auto& p : (*t)->probe_report()) {
      const std::string st = std::string(trace::to_string(p.status));
      out.push_back({"hook " + p.hook, st == "chosen" || st == "enabled" ? "ok" : st, p.reason.empty() ? st : p.reason});
    }
    out.push_back({"tracing", "ok", fmt::format("page-cache events through {}", trace::to_string((*t)->chosen_path()))});
  } else {
    out.push_back({"tracing", "missing", t.err().message() + "; top falls back to periodic rescans"});
  }

  auto mounts = read_mountinfo();
  if (mounts) {
    std::string v2, v1;
    std::vector<std::string> sharing;
    for (const auto& m : *mounts) {
      if (m.fstype == "cgroup2" && v2.empty()) v2 = m.mount_point;
      if (m.fstype == "cgroup") v1 = m.mount_point;
    }
    if (!v2.empty() && v1.empty()) out.push_back({"cgroup", "ok", "v2 (unified) at " + v2});
    else if (!v2.empty()) out.push_back({"cgroup", "ok", "hybrid: v2 at " + v2 + ", v1 controllers beside it"});
    else if (!v1.empty()) out.push_back({"cgroup", "ok", "v1 (legacy) only"});
    else out.push_back({"cgroup", "missing", "no cgroup filesystem mounted"});

    auto chosen = sharing_mounts(*mounts);
    for (const auto& m : chosen) sharing.push_back(terminal_safe(m.mount_point) + " (" + m.fstype + ")");
    if (sharing.empty()) {
      out.push_back({"reflink mounts", "missing",
                     "no mounted btrfs, reflink XFS or bcachefs: name PATHs for report and top"});
    } else {
      out.push_back({"reflink mounts", "ok", fmt::format("{}", fmt::join(sharing, ", "))});
    }
    // What `report` with no PATH walks: each root above, the mounts of its filesystem below it
    // (bind mounts, storage mounted onto itself), and what it leaves out.
    for (const auto& w : outline_walks(*mounts, chosen)) {
      std::vector<std::string> entered, left;
      for (const auto& m : w.same_fs) entered.push_back(terminal_safe(m.mount_point));
      for (const auto& m : w.other_fs) left.push_back(terminal_safe(m.mount_point) + " (" + m.fstype + ")");
      std::string detail = terminal_safe(w.root.mount_point);
      if (!entered.empty()) detail += fmt::format("; also its mounts {}", fmt::join(entered, ", "));
      if (!left.empty()) {
        detail += fmt::format("; not entered (other filesystems, --cross-mounts or name them): {}", fmt::join(left, ", "));
      }
      out.push_back({"walk", "info", detail});
    }
    // How a walk opens files (scan/nodev_view.hpp), tried as the scan does it, on /.
    std::string why_not = nodev_view_unfit(*mounts);
    if (why_not.empty()) {
      unique_fd root(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
      auto view = root ? open_nodev_view(root.get()) : result<unique_fd>(errno_error("open /"));
      if (!view) why_not = view.err().message();
    }
    if (why_not.empty()) {
      out.push_back({"file opening", "ok", "by name, through a private nodev copy of the mount tree"});
    } else {
      out.push_back({"file opening", "info",
                     terminal_safe(why_not) + "; scans open each file O_PATH, check it, and reopen it (as safe, slower)"});
    }
    // The runtimes' storage, from their own configuration: is each on a filesystem a report
    // with no PATH walks?
    cgroup::name_resolver names;
    std::vector<std::string> covered, uncovered;
    std::set<std::string> runtimes_with_containers;
    for (const auto& k : names.containers()) runtimes_with_containers.insert(k.runtime);
    for (const auto& loc : names.storage()) {
      // A runtime installed but holding no container (an empty /var/lib/lxc) is no concern.
      const std::string rt = loc.runtime == "incus" || loc.runtime == "lxd" ? "lxc" : loc.runtime;
      if (!runtimes_with_containers.count(rt)) continue;
      const mount_entry* at = nullptr;
      for (const auto& m : *mounts) {
        if (root_within(loc.path, m.mount_point) && (!at || m.mount_point.size() >= at->mount_point.size())) at = &m;
      }
      const std::string what = fmt::format("{} {}{}", loc.runtime, terminal_safe(loc.path),
                                           loc.driver.empty() ? "" : " (" + loc.driver + ")");
      const bool walked = at && std::any_of(chosen.begin(), chosen.end(), [&](const mount_entry& c) {
                            return c.major == at->major && c.minor == at->minor;
                          });
      if (walked) covered.push_back(what);
      else uncovered.push_back(what + (at ? " on " + at->fstype + ", which cannot share extents" : ""));
    }
    if (covered.empty() && uncovered.empty()) {
      out.push_back({"container storage", "info", "no container runtime's storage found"});
    } else if (uncovered.empty()) {
      out.push_back({"container storage", "ok", fmt::format("walked: {}", fmt::join(covered, ", "))});
    } else {
      out.push_back({"container storage", "missing",
                     fmt::format("not walked: {}{}", fmt::join(uncovered, ", "),
                                 covered.empty() ? "" : fmt::format("; walked: {}", fmt::join(covered, ", ")))});
    }
  }

  if (access("/proc/modules", F_OK) != 0) {
    out.push_back({"merge module", "missing", "kernel built without module support: merge falls back to eviction"});
  } else if (auto m = policy::merge_module::open(); m) {
    std::string counters;
    if (auto s = m->stats()) {
      std::uint64_t refused = 0;
      for (auto r : s->refused) refused += r;
      counters = fmt::format("; {} merged ({}), {} refused, {} pending", s->merged, human_bytes(s->merged_bytes), refused,
                             s->pending);
    }
    out.push_back({"merge module", "ok", fmt::format("{} ABI {}{}", policy::merge_module_device, m->version(), counters)});
  } else {
    out.push_back({"merge module", "missing", fmt::format("{}: merge falls back to page-out and eviction", m.err().reason())});
  }
  return out;
}

}  // namespace dupcache::doctor
