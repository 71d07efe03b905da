// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The scanner: the ground truth. It walks trees, reads each regular file's residency and, for
// files with cached pages, its extent map, and feeds the index. It never reads file data, never
// starts writeback and never faults a page in.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "index/block_index.hpp"
#include "scan/charges.hpp"
#include "scan/content.hpp"
#include "scan/placement.hpp"
#include "scan/residency.hpp"
#include "util/chunked_vector.hpp"
#include "util/packed_string.hpp"
#include "util/result.hpp"

namespace dupcache {

struct scan_options {
  std::vector<std::string> paths;  // empty: every mounted filesystem that can share extents
  // A walk enters every mount of the filesystem it is walking (bind mounts, a directory
  // bind-mounted onto itself as Podman and Docker do with their storage, other subvolumes):
  // each inode is still counted once. Mounts of another filesystem are entered only with
  // cross_mounts (never pseudo filesystems); the ones left out are listed in skipped_mounts.
  bool cross_mounts = false;
  unsigned jobs = 0;               // walker threads; 0 picks from the CPU count
  // Only look up residency inside extents the filesystem flags SHARED: an extent nobody else
  // references cannot be a duplicate. Off, every placed extent is indexed (slower; tests use it
  // to cross-check the flag).
  bool shared_hint = true;
  residency_mode residency = residency_mode::automatic;
  // Read which memory cgroup each cached page is charged to (scan_result::charges; needs
  // CAP_SYS_ADMIN for /proc/kpagecgroup). Also keeps each cached file's placement.
  bool attribute = false;
  // With attribute: read the charges only of files with pages in the index (cached clean pages
  // of a shared extent), the only ones a plan can act on or keep; a file sharing nothing has
  // none (reading a file's charges maps it and reads two tables: most of an eviction's scan of
  // a million files went there). For evict without container options.
  bool attribute_shared_only = false;
  // Keep each cached file's placement (scan_result::placements) without reading charges: what
  // the eviction planner needs.
  bool keep_placements = false;
  // Keep a record of every inode scanned (for the live controller's path cache and extents).
  bool record_inodes = false;
  // --content: hash each cached file's clean cached pages (scan_result::content) for
  // find_content_duplicates(), and walk what content_roots.hpp says (overlayfs through its
  // layers; with no PATH, every local block filesystem). hasher: null for XXH3.
  bool content = false;
  const page_hasher* hasher = nullptr;
  // The records' paths in scan_result::paths (packed_string::pooled()): for a result whose
  // records stay with that pool (build_report(scan_result&&) moves both), never for one whose
  // records are moved elsewhere alone.
  bool pool_paths = false;
};

// A cached file, by copy_id. Its filesystem is its index key's (scan_result::index.key_of(id).fs)
// and its size, which only --content reads, is in scan_result::content.sizes: neither is
// repeated here (issue 17: 32 bytes a record).
struct file_entry {
  packed_string path;  // the first path the walk reached the inode by (8 bytes: issue 17)
  std::uint64_t cached_bytes = 0;
  std::uint64_t dirty_bytes = 0;  // dirty or under writeback: never counted as shared
  // The PATH or mount point the walk reached it from ("" when not known: then "/"). Whoever
  // re-opens the file resolves the part of `path` below it without following symlinks, as the
  // walk did; the root itself was named by the caller and may pass through links.
  interned root;
};

struct fs_entry {
  std::string id;
  std::string type;
  std::string where;  // the mount point or PATH it was first reached through
  std::uint64_t files_scanned = 0;
  std::uint64_t files_cached = 0;
  std::uint64_t cached_bytes = 0;
};

struct scan_error {
  std::string path;
  std::string message;  // "action failed: reason"
};

// A mount below a walked path that the walk did not enter: another filesystem.
struct skipped_mount {
  std::string path;
  std::string fstype;
  bool pseudo = false;  // proc, sysfs, ...: never entered, even with cross_mounts
  std::string fs_id;    // its filesystem's identity, when it could be read
};

struct scan_stats {
  std::uint64_t files_scanned = 0;  // distinct inodes whose residency was read
  std::uint64_t files_cached = 0;
  std::uint64_t directories = 0;
  std::uint64_t repeated_inodes = 0;  // hardlinks, bind mounts, PATHs naming the same inode
  std::uint64_t special_skipped = 0;  // FIFOs, sockets, device nodes and symlinks in a walk
  std::uint64_t vanished = 0;         // removed between readdir and open
  std::uint64_t mounts_not_crossed = 0;  // mounts of other filesystems left out
  std::uint64_t same_fs_mounts = 0;      // mounts of the walked filesystem entered
  std::uint64_t extents = 0;
};

// Every inode a scan met, when scan_options::record_inodes is set.
struct inode_record {
  copy_key key;
  std::string path;
  std::uint64_t mount_id = 0;  // statx mount id of the mount it was reached through
  std::int64_t copy = -1;      // copy_id in the index when it had cached pages, else -1
  std::vector<placed_extent> placement;  // when cached: its placed extents
};

struct scan_result {
  explicit scan_result(std::uint64_t page_size) : index(page_size) {}
  block_index index;
  string_pool paths;  // with scan_options::pool_paths: the records' paths (before files: outlives them)
  // Indexed by copy_id: every file with cached pages. Fixed blocks (util/chunked_vector.hpp):
  // growing never copies the records nor leaves half of them unused.
  chunked_vector<file_entry> files;
  std::map<std::string, fs_entry> filesystems;
  std::vector<scan_error> errors;  // sorted by path
  std::vector<skipped_mount> skipped_mounts;  // sorted by path
  std::vector<inode_record> inodes;
  // With scan_options::attribute, by copy_id: the memory cgroup of each cached page, and the
  // file's placed extents. attributed is false when the charges could not be read at all
  // (attribution_error says why); a file whose charges could not be read has none.
  std::vector<std::vector<charge_run>> charges;
  std::vector<std::vector<placed_extent>> placements;
  bool attributed = false;
  std::string attribution_error;
  scan_stats stats;
  bool named_path_failed = false;  // a PATH on the command line could not be scanned at all
  std::string residency_method;    // "cachestat" or "mincore"
  bool dirty_known = true;
  // How the walks opened files: "nodev view" (by name, through scan/nodev_view.hpp) or
  // "O_PATH reopen" (O_PATH, type check, reopen through /proc/self/fd); with the reason the view
  // was not used (not root, a kernel before 5.12, an unbindable mount) when it was not.
  std::string file_open = "O_PATH reopen";
  std::string file_open_note;
  content_pages content;                // with scan_options::content, by copy_id
  std::vector<std::string> content_notes;  // what the content walk resolved or left out
};

result<scan_result> scan(const scan_options& options);

}  // namespace dupcache
