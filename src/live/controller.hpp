// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The live controller: the index seeded once by a scan, then kept current by page-cache
// events. It consumes decoded events (plain data) and knows nothing of how they were captured.
//
// Exactness rules:
//  - cached pages: +nr on insertion, -nr on removal; the kernel pairs them per page index.
//  - index: a page enters when inserted (if placed), leaves when removed or dirtied. A dirtied
//    page's extents may change at writeback (COW), so the inode is re-resolved (cachestat +
//    FIEMAP) once nothing of it is dirty or under writeback.
//  - sharing changes: the destination's extents are re-read. A change whose destination the
//    kernel could not name bumps the extent generation: every inode re-reads its extents before
//    its next insertion is placed.
//  - lost events: the whole index is rebuilt by a rescan at the next tick. Never silently wrong.
//    A seed (first or repair) leaves dirty pages out like the scan does, and re-resolves those
//    files once they are clean: writeback itself sends no event.
//  - paths: an inode keeps the path it was found under until that path leads elsewhere
//    (a rename); cached files' paths are checked about once a second and follow the file.
//  - order: a record that may have been overtaken by a record of another CPU (live/ordering.hpp)
//    is not applied: the inode is re-resolved from cachestat, and records already reflected in
//    that count (made before it was taken) are then skipped.
//  - audit: what no rule above can bound (a record that never arrives, nothing telling it was
//    lost) is caught by comparing quiet files' cached counts with cachestat, 64 per tick in
//    rounds at most a second apart, and re-reading those that differ (audit_repairs).

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "live/ordering.hpp"
#include "scan/file_handle.hpp"
#include "scan/scanner.hpp"
#include "scan/superblocks.hpp"
#include "trace/event.hpp"
#include "util/fd.hpp"

namespace dupcache::live {

struct live_counters {
  std::uint64_t events = 0;
  std::uint64_t inserted_pages = 0;
  std::uint64_t duplicate_inserted_pages = 0;  // inserted while another copy cached the block
  std::uint64_t evicted_pages = 0;
  std::uint64_t dirtied_pages = 0;
  std::uint64_t sharing_changes = 0;
  std::uint64_t unresolved_events = 0;  // inode could not be opened (gone, or not under watch)
  std::uint64_t lost_events = 0;        // ring buffer drops, as the feed reported them
  std::uint64_t reconciles = 0;         // single inodes re-resolved
  std::uint64_t rescans = 0;            // full rescans (seed, repairs and compactions)
  std::uint64_t compactions = 0;        // rescans made to drop the copies of files gone
  std::uint64_t reordered = 0;          // records that may have been overtaken: inode re-resolved
  // Records that arrived after the horizon had passed their end (plus the slack): every record
  // made before the horizon should have been applied by then. A diagnostic: should stay 0.
  std::uint64_t late_records = 0;
  // Files the audit found holding another cached count (or dirty pages) than the model and
  // re-read, whose re-read confirmed the difference: records the kernel made but the model
  // never applied (see audit()). A diagnostic, like late_records; the 7-minute soak's churn
  // makes 20-30 (a few of them may be records still on their way at both looks).
  std::uint64_t audit_repairs = 0;
};

struct controller_options {
  scan_options scan;
  // Wait this long after a sharing event before re-reading extents. The tracer emits them when
  // the syscall returns (the change is done), except when it could not hold them (then at entry).
  std::chrono::milliseconds settle{100};
  // How late after the kernel acted an event's timestamp may be taken (the program runs first).
  // Two records of different CPUs whose times differ by less are treated as unordered.
  std::uint64_t timestamp_slack_ns = 100'000;
  // Copy ids are not reused: every file first seen since the seed adds one, and a file gone
  // leaves its (empty) entry until the next seed; a file deleted while nothing of it is cached
  // sends no event at all. When the entries with nothing cached outnumber the cached files, an
  // eighth of the files known and this, tick() seeds again (a compaction), so that memory
  // follows what is cached, not every file ever seen. In the soak the daemon's index gains
  // about 1300 entries a minute, each costing about 1 KiB of heap with the samples built from
  // it: 16384 let its RSS climb for 15 minutes before the first compaction.
  std::size_t compact_min_gone = 4096;
};

// Callers name it live::superblock_devs (the BPF filter's keys); it lives with the mounts.
using ::dupcache::superblock_devs;

class controller {
 public:
  explicit controller(controller_options opts);
  ~controller();

  // Full scan of the watched paths; replaces the whole state. Also the repair after losses.
  result<void> seed();
  // The hot path: one event.
  void apply(const trace::decoded_event& ev);
  // For events that raced with seed(): the scan may or may not have seen them, so instead of
  // applying them, the inode is re-resolved at the next tick.
  void touch(const trace::decoded_event& ev);
  // Re-resolves these copies' inodes from cachestat at the next tick, as touch() does. For the
  // files a caller has just acted on (evicted, paged out): pages read in while the action ran
  // are then counted from what the kernel holds, not from the order in which runs of other CPUs
  // arrive, and the caller's next plan starts from what its action left.
  void recheck(const std::vector<copy_id>& copies);
  // The feed's running total of dropped events; a rise schedules a rescan.
  void note_drops(std::uint64_t total_drops);
  // Every record made before this CLOCK_MONOTONIC time has been applied (the tracer's
  // flushed_before_ns() once its ring buffer was drained): older removals can be forgotten.
  void set_horizon(std::uint64_t ns) { window_.horizon_ns = std::max(window_.horizon_ns, ns); }
  // Every page-cache change made before this CLOCK_MONOTONIC time is in the model: its records
  // are applied (the horizon) and the inodes they left in doubt are re-read. A file with dirty
  // pages holds it back from when tick() last found it still dirty (writeback sends no event:
  // once written back it is current when read again). 0 while lost records wait for repair. For a consumer that must know the model has
  // caught up with a point in time (the soak's quiescent checks).
  std::uint64_t applied_before_ns() const;
  // When the last seed's scan began (CLOCK_MONOTONIC): without a feed, what a rescan-mode
  // model is current to.
  std::uint64_t seed_started_ns() const { return seed_started_ns_; }
  // Re-resolves what changed (settled sharing changes, written-back dirty pages), and rescans
  // after losses. Call between batches of events.
  result<void> tick();

  // The current index and per-copy files, in the scanner's terms (build_report takes it).
  const scan_result& state() const { return *state_; }
  const live_counters& counters() const { return counters_; }
  // Superblock devices of the watched filesystems (the BPF filter's keys), major:minor.
  std::vector<dev_t> watched_devs() const;
  std::size_t tracked_inodes() const { return slots_.size(); }
  // CLOCK_MONOTONIC ns of the copy's latest insertion seen live; 0 if none since the seed.
  std::uint64_t last_insert_ns(copy_id c) const { return c < last_insert_ns_.size() ? last_insert_ns_[c] : 0; }
  // Inodes under the watched paths that the controller knows (scanned or seen in events).
  std::size_t known_files() const;

 private:
  struct ident {
    dev_t dev = 0;  // superblock device
    std::uint64_t subvol = 0;
    std::uint64_t ino = 0;
    bool operator==(const ident&) const = default;
  };
  struct ident_hash {
    std::size_t operator()(const ident& i) const noexcept;
  };
  struct placed {
    domain_id domain;
    std::uint64_t first_page;
    std::uint64_t pages;
    std::uint64_t physical;
  };
  struct slot {
    copy_key key;
    std::string path;
    dev_t dev = 0;
    std::uint32_t generation = 0;  // 0 until an event tells
    copy_id copy = 0;
    bool has_copy = false;
    std::vector<placed> placement;
    std::uint64_t extents_gen = 0;  // extent generation the placement was read at; 0 = never
    std::uint64_t cached_pages = 0;
    // Dirty or under writeback, as last counted: +n per dirtying record, and read again from
    // cachestat by each reconcile and each tick that finds the file still dirty (writeback sends
    // no event). A report row's dirty_bytes.
    std::uint64_t dirty_pages = 0;
    bool ignored = false;  // on a watched filesystem but outside the watched paths
    bool pending = false;  // re-resolve at the next tick once settled
    bool dirty = false;    // re-resolve once written back
    bool take_count = false;  // next reconcile takes the cached count from cachestat
    bool recount = false;     // that reconcile is a recount (mincore: see reconcile())
    // Some blocks are placed at two offsets of the file (two clones of one range into it):
    // removing one offset's pages does not tell whether the file still caches them.
    bool aliased = false;
    bool audited = false;  // queued by the audit: the reconcile tells whether the count differed
    // The horizon when it last became pending: every record applied since was made later.
    std::uint64_t pending_since_ns = 0;
    std::chrono::steady_clock::time_point changed{};
    inode_order order;
  };

  // A walk over the slots spread across ticks, in rounds at most a second apart: about
  // per_tick of the slots wanted are visited at each call.
  struct slot_round {
    bool active = false;
    std::size_t next_bucket = 0;  // of slots_
    std::chrono::steady_clock::time_point started{};
  };
  template <typename Wanted, typename Visit>
  void in_rounds(slot_round& r, int per_tick, Wanted&& wanted, Visit&& visit);

  slot* find(const trace::decoded_event& ev, bool resolve);
  slot* resolve_unknown(const ident& id, const trace::decoded_event& ev);
  // Re-reads one file (residency, extents) and replaces its part of the index. Insertions in
  // [dup_first, dup_first + dup_n) are counted as duplicate insertions where another copy
  // already caches the block.
  // The cached-page count stays event-driven (cachestat races with queued events) unless
  // take_count: for inodes whose events may have been missed (the seed race).
  result<void> reconcile(const ident& id, slot& s, std::uint64_t dup_first, std::uint64_t dup_n,
                         bool take_count = false);
  unique_fd open_slot(const slot& s, const ident& id) const;
  void erase_slot(std::unordered_map<ident, slot, ident_hash>::iterator it);
  // Queues the slot for a re-read at the next tick (once settled). since_ns: the change that
  // calls for it was made no earlier (a record's time), so applied_before_ns() stays before it
  // even when the record arrives after the horizon has passed it.
  void mark_pending(const ident& id, slot& s, std::uint64_t since_ns = UINT64_MAX);
  std::uint64_t made_before(const trace::decoded_event& ev) const;
  // A rename sends no event: a file found under another name than s.path (fd open on it) takes
  // the name the kernel gives its open file, when that name leads to it. True when it changed.
  bool refresh_path(slot& s, int fd);
  // A few cached files' paths per tick, all of them about once a second.
  void check_paths();
  // A few files' cached counts per tick against cachestat, in rounds at most a second apart:
  // a file quiet for a while whose count differs is re-read (take_count). The net under the
  // rules of live/ordering.hpp for what no rule can bound: an insertion's tracepoint fires after
  // the page is in the cache, so a task preempted between the two makes a record whose time is
  // later than a count that already held its page.
  void audit();
  void ensure_copy(slot& s);
  template <typename Fn>
  void for_placed(const slot& s, std::uint64_t first, std::uint64_t n, Fn&& fn) const;
  // Takes pages [first, first + n) out of the index. Blocks that another offset of the file also
  // holds stay in (it may cache them) and the result is true: re-resolve the file once settled.
  bool unindex(slot& s, std::uint64_t first, std::uint64_t n);
  void unindex_all(slot& s);
  void sync_file_entry(slot& s);
  // Keeps the page charges (scan_options::attribute) with an applied insertion or removal.
  void charge(slot& s, const trace::decoded_event& ev, bool cached);
  void note_heat(const slot& s, const trace::decoded_event& ev);
  // False when the record is already reflected in the slot's state or may be out of order (the
  // slot is then re-resolved at the next tick): the caller must not apply it.
  bool in_order(const ident& id, slot& s, const trace::decoded_event& ev);

  controller_options opts_;
  std::uint64_t ps_;
  std::unique_ptr<scan_result> state_;
  std::unique_ptr<residency_reader> reader_;
  std::optional<charge_reader> charges_;
  fs_registry registry_;
  std::unordered_map<ident, slot, ident_hash> slots_;
  inode_opener handles_;  // per watched superblock device
  std::vector<std::string> roots_abs_;  // watched PATHs, resolved; empty = whole filesystems
  std::vector<ident> pending_;
  std::size_t ignored_slots_ = 0;  // slots_ whose file is outside the watched paths
  slot_round path_checks_;  // check_paths()
  slot_round audits_;       // audit()
  std::uint64_t extents_gen_ = 1;
  std::uint64_t drops_seen_ = 0;
  order_window window_;
  std::vector<std::uint64_t> last_insert_ns_;  // by copy_id
  bool rescan_needed_ = false;
  // CLOCK_MONOTONIC ns when the last seed's scan ended: a page-cache record that began before
  // it may or may not be in the scan (see apply()).
  std::uint64_t seeded_ns_ = 0;
  std::uint64_t seed_started_ns_ = 0;
  std::size_t next_compaction_check_ = 0;  // copy count at which tick() counts the gone ones
  live_counters counters_;
};

}  // namespace dupcache::live
