// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Per-container accounting: who pays for the duplicates.
//
// Every cached page of a copy is charged to one memory cgroup (scan_result::charges); the
// cgroup belongs to a container (classify()). A container's cached bytes are the pages charged
// to it. The waste is split per physical page: a page cached by k copies wastes k-1 pages, and
// each of the k copies pays an equal (k-1)/k of a page to the container its page is charged to.
// A container's exact share (a sum of such fractions) is rounded to whole pages by largest
// remainder (ties: by runtime, id and cgroup, never by scan order), so the containers' wasted bytes add up to the total
// exactly. Pages whose charge is unknown go to one "unattributed" row, never to a guess.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cgroup/container.hpp"
#include "scan/scanner.hpp"

namespace dupcache::cgroup {

struct container_row {
  std::string runtime;  // as container_ref; "host" for the host, "unattributed" for unknown charges
  std::string id;
  std::string name;
  std::string cgroup;   // the container's cgroup ("/" for the host, "" when unattributed)
  std::string pod_uid;
  std::string qos;
  std::uint64_t cached_bytes = 0;
  std::uint64_t shared_cached_bytes = 0;  // its cached bytes whose blocks another copy caches too
  std::uint64_t wasted_bytes = 0;         // its share of the waste
  // A container without a cgroup any more (stopped or removed): its still-cached pages are
  // charged to an ancestor cgroup, and were put here by where the files live.
  bool stopped = false;
  struct file_part {
    copy_id copy = 0;
    std::uint64_t shared_cached_bytes = 0;
    std::uint64_t wasted_bytes = 0;  // whole pages of the file's exact share, rounded down
  };
  std::vector<file_part> files;  // its duplicated files, most shared first
  struct peer {
    std::string runtime, id, name, cgroup, label;
    std::uint64_t bytes = 0;  // this container's duplicated bytes of which the peer holds a copy
  };
  std::vector<peer> shared_with;  // most bytes first
  std::vector<copy_id> copies;    // every copy with pages charged to it, sorted
  bool unattributed() const { return runtime == "unattributed"; }
  // A container with a cgroup now (not the host, not unattributed, not stopped or removed).
  bool live_container() const {
    return !stopped && runtime != "host" && runtime != "unattributed" && runtime != "removed" && !runtime.empty();
  }
  std::string label() const;  // name, else id, else cgroup
};

// Which container a memory cgroup (by inode number) belongs to.
struct charge_owner {
  container_ref ref;    // runtime "" for the host
  std::string name;
  bool known = true;    // false: the inode is not a cgroup of the hierarchy (removed since)
};
using owner_lookup = std::function<charge_owner(std::uint64_t cgroup_ino)>;
// The container whose root filesystem or layer holds a copy, when that container has no live
// cgroup (stopped, removed); nothing otherwise.
using location_lookup = std::function<std::optional<charge_owner>(copy_id)>;

class cgroup_map;
class name_resolver;
// The host's lookup: the inode's path in the memory hierarchy (walked again for new cgroups),
// classified, named from local runtime metadata.
owner_lookup host_owners(cgroup_map& map, name_resolver& names);

// Rows sorted by wasted bytes, then cached bytes, then label. Needs scan.charges and
// scan.placements (scan_options::attribute); without them every cached page is unattributed.
// use_charges false: the charges cannot be resolved (no hierarchy), every page is unattributed.
// located: pages charged to the host or a removed cgroup move to the stopped container whose
// files they are (empty: no such moves).
std::vector<container_row> account(const scan_result& scan, const owner_lookup& owner, bool use_charges = true,
                                   const location_lookup& located = {});

// The host's accounting, for report and top: the memory hierarchy found once (walked again for
// cgroups it does not know), names from runtime metadata under metadata_root.
class host_accounting {
 public:
  explicit host_accounting(std::string metadata_root = "/");
  ~host_accounting();
  std::vector<container_row> rows(const scan_result& scan);
  // Why pages are unattributed wholesale (charges unreadable, no hierarchy); empty when not.
  std::string error(const scan_result& scan) const;
  // Every container this host knows, whether or not it has cached pages: those the runtimes'
  // metadata lists (running or not) and those with a cgroup now (runtime, id, name, cgroup).
  std::vector<container_row> known_containers();

 private:
  void load_map();
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Filters, as on the command line: --container matches an id (or a prefix of at least 4
// characters of one), a name or a pod uid; --cgroup matches the container's cgroup or any
// cgroup above it.
bool matches_container(const container_row& r, const std::string& want);
bool matches_cgroup(const container_row& r, const std::string& want);

// --container and --cgroup values together (or a config's allow or deny list): a row is matched
// when any value matches it. Empty: no values given, which callers read as "no filter".
struct container_filter {
  std::vector<std::string> containers;
  std::vector<std::string> cgroups;
  bool empty() const { return containers.empty() && cgroups.empty(); }
  bool matches(const container_row& r) const;
};

// A value of an option that names containers (--container, --keep-container, ...) must name
// one: a row of this scan or a container the runtimes' metadata knows. Returns one error line per
// value that names nothing ("--container web-9: no such container (known: web-1, web-2)"),
// for the caller to print and exit 2 on.
std::vector<std::string> unknown_container_errors(const std::string& option, const std::vector<std::string>& wanted,
                                                  const std::vector<container_row>& rows, host_accounting& acc);

}  // namespace dupcache::cgroup
