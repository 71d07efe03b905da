// SPDX-License-Identifier: GPL-2.0-only
#include "live/controller.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <string_view>
#include <tuple>
#include <utility>

#include "scan/fiemap.hpp"
#include "scan/fs_identity.hpp"
#include "scan/mounts.hpp"
#include "scan/placement.hpp"
#include "util/clock.hpp"
#include "util/path.hpp"

namespace dupcache::live {

std::size_t controller::ident_hash::operator()(const ident& i) const noexcept {
  std::size_t h = std::hash<std::uint64_t>{}(i.ino);
  h ^= std::hash<std::uint64_t>{}(i.subvol) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= std::hash<std::uint64_t>{}(static_cast<std::uint64_t>(i.dev)) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

controller::controller(controller_options opts)
    : opts_(std::move(opts)), ps_(static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE))) {
  window_.slack_ns = opts_.timestamp_slack_ns;
  // Events name absolute paths through /proc/self/fd; watched roots are compared in that form.
  for (auto& p : opts_.scan.paths) {
    char buf[PATH_MAX];
    if (realpath(p.c_str(), buf)) {
      roots_abs_.push_back(buf);
      p = buf;  // files found by the scan and by events then name paths the same way
    }
  }
}

namespace {

// Whether two of the placements hold the same block of one domain.
template <typename Placed>
bool any_block_placed_twice(std::vector<Placed> v, std::uint64_t page_size) {
  std::sort(v.begin(), v.end(), [](const Placed& x, const Placed& y) {
    return std::tie(x.domain, x.physical) < std::tie(y.domain, y.physical);
  });
  for (std::size_t i = 1; i < v.size(); ++i) {
    const Placed& prev = v[i - 1];
    if (v[i].domain == prev.domain && v[i].physical < prev.physical + prev.pages * page_size) return true;
  }
  return false;
}

}  // namespace

controller::~controller() = default;

result<void> controller::seed() {
  scan_options so = opts_.scan;
  so.shared_hint = false;  // index every placed extent: a clone then changes only its destination
  so.record_inodes = true;
  // The records' paths kept once per directory (the state keeps its pool with them); a sample's
  // model shares them (build_report()).
  so.pool_paths = !so.content;
  const std::uint64_t started = monotonic_ns();
  auto scanned = scan(so);
  if (!scanned) return scanned.err();
  seeded_ns_ = monotonic_ns();
  seed_started_ns_ = started;
  auto reader = make_residency_reader(so.residency, ps_);
  if (!reader) return reader.err();
  reader_ = std::move(reader.value());

  auto mounts = read_mountinfo();
  if (!mounts) return mounts.err();
  std::map<std::uint64_t, const mount_entry*> by_id;
  for (const auto& m : *mounts) by_id[static_cast<std::uint64_t>(m.id)] = &m;

  state_ = std::make_unique<scan_result>(std::move(scanned.value()));
  charges_.reset();
  if (state_->attributed) {
    auto c = charge_reader::open(ps_);
    if (c) charges_.emplace(std::move(*c));
  }
  slots_.clear();
  ignored_slots_ = 0;
  pending_.clear();
  path_checks_.active = false;
  audits_.active = false;
  last_insert_ns_.clear();  // copy ids are new
  auto& index = state_->index;
  for (auto& rec : state_->inodes) {
    auto mi = by_id.find(rec.mount_id);
    if (mi == by_id.end()) continue;
    const dev_t dev = makedev(mi->second->major, mi->second->minor);
    handles_.add(dev, *mi->second);
    slot s;
    s.key = rec.key;
    s.path = std::move(rec.path);
    s.dev = dev;
    if (rec.copy >= 0) {
      s.copy = static_cast<copy_id>(rec.copy);
      s.has_copy = true;
      s.cached_pages = state_->files[s.copy].cached_bytes / ps_;
      s.extents_gen = extents_gen_;
      for (const auto& p : rec.placement) {
        s.placement.push_back({index.intern_domain(p.domain), p.first_page, p.pages, p.physical});
      }
      s.aliased = any_block_placed_twice(s.placement, ps_);
      // Dirty or under writeback at the scan: those pages are not indexed (their blocks may
      // move at writeback), and writeback sends no event. Re-resolved once clean (tick()).
      s.dirty_pages = state_->files[s.copy].dirty_bytes / ps_;
      s.dirty = s.dirty_pages > 0;
    }
    const ident id{dev, rec.key.subvol, rec.key.ino};
    const bool dirty = s.dirty;
    auto [it, _] = slots_.insert_or_assign(id, std::move(s));
    if (dirty) mark_pending(id, it->second);
  }
  state_->inodes.clear();
  state_->inodes.shrink_to_fit();
  next_compaction_check_ = state_->files.size() + opts_.compact_min_gone;
  ++counters_.rescans;
#ifdef __GLIBC__
  // The old state was freed as a whole, in small blocks among live ones: give the free pages
  // back, or a long-running consumer's RSS ratchets up with every rescan.
  malloc_trim(0);
#endif
  return {};
}

std::vector<dev_t> controller::watched_devs() const {
  return handles_.devices();
}

std::size_t controller::known_files() const {
  // Counted as slots come and go: a walk over a million slots every interval was 7% of an idle
  // daemon's CPU.
  return slots_.size() - ignored_slots_;
}

void controller::erase_slot(std::unordered_map<ident, slot, ident_hash>::iterator it) {
  if (it->second.ignored) --ignored_slots_;
  slots_.erase(it);
}

void controller::note_drops(std::uint64_t total_drops) {
  if (total_drops > drops_seen_) {
    counters_.lost_events += total_drops - drops_seen_;
    drops_seen_ = total_drops;
    rescan_needed_ = true;
  }
}

void controller::touch(const trace::decoded_event& ev) {
  ++counters_.events;
  if (ev.is_sharing() && ev.kind != trace::event_kind::share_fiemap) return apply(ev);
  slot* s = find(ev, ev.kind == trace::event_kind::cache_add);
  if (!s) return;
  mark_pending(ident{ev.dev, ev.subvol_id, ev.ino}, *s, made_before(ev));
  s->changed = {};  // settled already
  s->extents_gen = 0;
  s->take_count = true;
}

void controller::recheck(const std::vector<copy_id>& copies) {
  if (copies.empty()) return;
  std::vector<bool> wanted(state_->files.size(), false);
  for (copy_id c : copies) {
    if (c < wanted.size()) wanted[c] = true;
  }
  for (auto& [id, s] : slots_) {
    if (!s.has_copy || s.copy >= wanted.size() || !wanted[s.copy]) continue;
    mark_pending(id, s);
    s.changed = {};  // nothing to settle: the count is what is asked for
    s.take_count = true;
  }
}

void controller::mark_pending(const ident& id, slot& s, std::uint64_t since_ns) {
  s.changed = std::chrono::steady_clock::now();
  const std::uint64_t since = std::min(window_.horizon_ns, since_ns);
  if (!s.pending) {
    s.pending = true;
    s.pending_since_ns = since;
    pending_.push_back(id);
  } else {
    s.pending_since_ns = std::min(s.pending_since_ns, since);
  }
}

std::uint64_t controller::made_before(const trace::decoded_event& ev) const {
  return ev.timestamp_ns > window_.slack_ns ? ev.timestamp_ns - window_.slack_ns : 0;
}

std::uint64_t controller::applied_before_ns() const {
  if (rescan_needed_) return 0;
  std::uint64_t t = window_.horizon_ns;
  for (const auto& id : pending_) {
    auto it = slots_.find(id);
    if (it == slots_.end() || !it->second.pending) continue;
    // Files waiting for writeback too: their dirty pages are out of the index, and pages
    // written back are not in it until the file is read again (writeback sends no event).
    t = std::min(t, it->second.pending_since_ns);
  }
  return t;
}

controller::slot* controller::find(const trace::decoded_event& ev, bool resolve) {
  if (ev.subvol_unknown) return nullptr;
  const ident id{ev.dev, ev.subvol_id, ev.ino};
  auto it = slots_.find(id);
  if (it != slots_.end()) {
    slot& s = it->second;
    if (s.generation == 0) s.generation = ev.generation;
    if (ev.generation == 0 || s.generation == ev.generation) return s.ignored ? nullptr : &s;
    // The inode number was reused by a new file: forget the old one's pages.
    unindex_all(s);
    s.cached_pages = 0;
    sync_file_entry(s);
    erase_slot(it);
  }
  return resolve ? resolve_unknown(id, ev) : nullptr;
}

controller::slot* controller::resolve_unknown(const ident& id, const trace::decoded_event& ev) {
  unique_fd fd = handles_.open(id.dev, id.ino, id.subvol, ev.generation);
  if (!fd) return nullptr;
  struct stat st {};
  if (fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode) || st.st_ino != id.ino) return nullptr;
  if (st.st_nlink == 0) return nullptr;  // unlinked: not a file of the tree (see open_slot)
  auto fs = registry_.lookup(fd.get(), st);
  if (!fs) return nullptr;

  slot s;
  s.key = copy_key{fs->id, fs->subvol, id.ino};
  s.dev = id.dev;
  s.generation = ev.generation;
  char buf[PATH_MAX];
  const std::string link = "/proc/self/fd/" + std::to_string(fd.get());
  const ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
  if (n > 0 && buf[0] == '/') s.path.assign(buf, static_cast<std::size_t>(n));
  // A file outside the watched paths (same filesystem) is remembered as ignored.
  s.ignored = s.path.empty() ? !roots_abs_.empty() : !path_under_any(s.path, roots_abs_, true);
  if (s.path.empty()) s.path = "<" + fs->id + " inode " + std::to_string(id.ino) + ">";
  if (auto old = slots_.find(id); old != slots_.end()) erase_slot(old);
  if (s.ignored) ++ignored_slots_;
  auto [it, _] = slots_.insert_or_assign(id, std::move(s));
  return it->second.ignored ? nullptr : &it->second;
}

unique_fd controller::open_slot(const slot& s, const ident& id) const {
  // By path first, checked to be the same inode; by handle when the path moved.
  unique_fd pfd(open(s.path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (pfd && fstat(pfd.get(), &st) == 0 && S_ISREG(st.st_mode) && st.st_ino == s.key.ino) {
    unique_fd fd(open(("/proc/self/fd/" + std::to_string(pfd.get())).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (fd) return fd;
  }
  if (s.generation == 0) return {};
  unique_fd fd = handles_.open(id.dev, id.ino, id.subvol, s.generation);
  // Unlinked but still in memory (open somewhere, or a btrfs delayed iput): no longer a file of
  // the tree, and a scan cannot see it, so the model does not keep it either.
  if (fd && (fstat(fd.get(), &st) != 0 || st.st_nlink == 0)) return {};
  return fd;
}

bool controller::refresh_path(slot& s, int fd) {
  struct stat fst {}, pst {};
  if (fstat(fd, &fst) != 0) return false;
  if (lstat(s.path.c_str(), &pst) == 0 && pst.st_ino == fst.st_ino && pst.st_dev == fst.st_dev) return false;
  char buf[PATH_MAX];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0 || buf[0] != '/') return false;
  // An unlinked file's link ends in " (deleted)" and leads nowhere: the lstat tells.
  std::string now(buf, static_cast<std::size_t>(n));
  if (lstat(now.c_str(), &pst) != 0 || pst.st_ino != fst.st_ino || pst.st_dev != fst.st_dev) return false;
  if (!roots_abs_.empty() && !path_under_any(now, roots_abs_, true)) return false;  // moved out: kept
  s.path = std::move(now);
  return true;
}

template <typename Wanted, typename Visit>
void controller::in_rounds(slot_round& r, int per_tick, Wanted&& wanted, Visit&& visit) {
  if (!r.active) {
    const auto now = std::chrono::steady_clock::now();
    if (now - r.started < std::chrono::seconds(1)) return;
    r.started = now;
    r.active = true;
    r.next_bucket = 0;
  }
  // The hash map's buckets in order: no list of the slots is made (24 B a file, twice, on a
  // large tree). A rehash meanwhile (files first seen) may skip or repeat a few in this round;
  // the next round sees them. Visits never add nor remove slots. The buckets looked at per call
  // are bounded too: most slots may not be wanted.
  int visited = 0;
  for (int b = 0; b < 16 * per_tick && visited < per_tick && r.next_bucket < slots_.bucket_count(); ++b) {
    const std::size_t bucket = r.next_bucket++;
    for (auto it = slots_.begin(bucket); it != slots_.end(bucket); ++it) {
      if (!wanted(it->second)) continue;
      visit(it->first, it->second);
      ++visited;
    }
  }
  if (r.next_bucket >= slots_.bucket_count()) r.active = false;
}

void controller::check_paths() {
  // A stat each, and a reopen only for a path that leads elsewhere: cheap beside the events.
  in_rounds(
      path_checks_, 256, [](const slot& s) { return s.has_copy && s.cached_pages > 0 && !s.ignored; },
      [this](const ident& id, slot& s) {
        struct stat pst {};
        if (lstat(s.path.c_str(), &pst) == 0 && pst.st_ino == s.key.ino) return;
        unique_fd fd = open_slot(s, id);  // by handle, the path leading elsewhere
        if (fd && refresh_path(s, fd.get())) sync_file_entry(s);
        // Unlinked (or gone): the reconcile finds it so and the tick forgets it. (A file seeded
        // and never seen in an event since cannot be opened by handle: it keeps its old path.)
        if (!fd && s.generation != 0) mark_pending(id, s);
      });
}

void controller::audit() {
  // mincore (before Linux 6.5) walks the whole file and does not see pages still being read in
  // (reconcile()'s recount): no audit there.
  if (std::string_view(reader_->name()) != "cachestat") return;
  // Quiet: no record applied nor count taken for a while before the horizon, so the records
  // still to arrive for it are the few made since (a difference they explain costs one re-read).
  constexpr std::uint64_t quiet_ns = 250'000'000;
  // Each costs an open and a cachestat: 64 per tick (about 10 ticks a second) is well under a
  // percent of a core, and every file of a large tree is audited every few minutes.
  in_rounds(
      audits_, 64, [](const slot& s) { return s.has_copy && !s.ignored; },
      [this](const ident& id, slot& s) {
        if (s.pending || s.dirty || s.take_count || !s.has_copy) return;  // being re-read already
        const std::uint64_t last =
            std::max({s.order.added.ns, s.order.removed.ns, s.order.counted_until_ns, s.order.counted_ns});
        if (last + quiet_ns > window_.horizon_ns) return;
        unique_fd fd = open_slot(s, id);
        if (!fd) return;  // gone: its removals or the path check tell
        auto counts = reader_->totals(fd.get(), 0);
        if (!counts || (counts->cached == s.cached_pages && counts->dirty + counts->writeback == 0)) return;
        mark_pending(id, s);
        s.changed = {};  // nothing to settle
        s.take_count = true;
        s.audited = true;
      });
}

void controller::ensure_copy(slot& s) {
  if (s.has_copy) return;
  s.copy = state_->index.intern_copy(s.key);
  s.has_copy = true;
  if (s.copy >= state_->files.size()) state_->files.resize(s.copy + 1);
  if ((opts_.scan.attribute || opts_.scan.keep_placements) && s.copy >= state_->charges.size()) {
    state_->charges.resize(s.copy + 1);
    state_->placements.resize(s.copy + 1);
  }
}

void controller::note_heat(const slot& s, const trace::decoded_event& ev) {
  if (!s.has_copy) return;
  if (s.copy >= last_insert_ns_.size()) last_insert_ns_.resize(s.copy + 1, 0);
  last_insert_ns_[s.copy] = std::max(last_insert_ns_[s.copy], ev.end_timestamp_ns);
}

void controller::charge(slot& s, const trace::decoded_event& ev, bool cached) {
  if (!state_->attributed || !s.has_copy) return;
  auto& runs = state_->charges[s.copy];
  if (cached) set_charge(runs, ev.index, ev.nr_pages, ev.cgroup_id);
  else clear_charge(runs, ev.index, ev.nr_pages);
}

void controller::sync_file_entry(slot& s) {
  if (!s.has_copy && s.cached_pages == 0) return;
  ensure_copy(s);
  auto& f = state_->files[s.copy];
  if (f.path != s.path) f.path = s.path;  // a packed path is a new block each time it is set
  f.cached_bytes = s.cached_pages * ps_;
  f.dirty_bytes = std::min(s.dirty_pages, s.cached_pages) * ps_;
}

template <typename Fn>
void controller::for_placed(const slot& s, std::uint64_t first, std::uint64_t n, Fn&& fn) const {
  const std::uint64_t end = first + n;
  for (const auto& p : s.placement) {
    const std::uint64_t lo = std::max(first, p.first_page);
    const std::uint64_t hi = std::min(end, p.first_page + p.pages);
    if (lo < hi) fn(p.domain, p.physical + (lo - p.first_page) * ps_, (hi - lo) * ps_);
  }
}

bool controller::unindex(slot& s, std::uint64_t first, std::uint64_t n) {
  if (!s.has_copy) return false;
  bool kept = false;
  for_placed(s, first, n, [&](domain_id d, std::uint64_t phys, std::uint64_t len) {
    if (s.aliased) {
      // The file pages outside [first, first + n) that hold any of these blocks.
      for (const auto& q : s.placement) {
        if (q.domain != d) continue;
        const std::uint64_t lo = std::max(phys, q.physical);
        const std::uint64_t hi = std::min(phys + len, q.physical + q.pages * ps_);
        if (lo >= hi) continue;
        const std::uint64_t a = q.first_page + (lo - q.physical) / ps_;
        const std::uint64_t b = q.first_page + (hi - q.physical + ps_ - 1) / ps_;
        if (a < first || b > first + n) {
          kept = true;
          return;
        }
      }
    }
    state_->index.remove(s.copy, d, phys, len);
  });
  return kept;
}


void controller::unindex_all(slot& s) {
  if (!s.has_copy) return;
  for (const auto& p : s.placement) state_->index.remove(s.copy, p.domain, p.physical, p.pages * ps_);
}

result<void> controller::reconcile(const ident& id, slot& s, std::uint64_t dup_first, std::uint64_t dup_n,
                                   bool take_count) {
  ++counters_.reconciles;
  s.pending = false;
  const bool was_recount = std::exchange(s.recount, false);
  unindex_all(s);
  s.placement.clear();
  unique_fd fd = open_slot(s, id);
  if (!fd) {
    // Gone: nothing of it can be cached any more.
    s.cached_pages = 0;
    s.dirty_pages = 0;
    s.dirty = false;
    if (state_->attributed && s.has_copy) state_->charges[s.copy].clear();
    sync_file_entry(s);
    return {};
  }
  struct stat st {};
  fstat(fd.get(), &st);
  refresh_path(s, fd.get());
  // The count's window is taken around the call alone: a record begun inside it may or may not
  // be counted (admit() doubts it), and a reader preempted here must not widen what is applied
  // on top of the count.
  const std::uint64_t counted_at = monotonic_ns();
  // The size bounds the mincore fallback's walk (cachestat ignores it).
  auto counts = reader_->totals(fd.get(), static_cast<std::uint64_t>(st.st_size));
  const std::uint64_t counted_until = monotonic_ns();
  if (!counts) return counts.err();
  auto extents = read_extent_map(fd.get());
  if (extents) {
    fs_info fs;
    fs.id = s.key.fs;
    fs.has_realtime = false;
    if (auto looked = registry_.lookup(fd.get(), st)) fs = *looked;
    for (const auto& p : file_placement(fd.get(), fs, *extents, ps_)) {
      s.placement.push_back({state_->index.intern_domain(p.domain), p.first_page, p.pages, p.physical});
    }
  }
  s.aliased = any_block_placed_twice(s.placement, ps_);
  s.extents_gen = extents_gen_;
  bool recount = false;
  if (take_count || s.take_count) {
    // Insertions are reported when a page enters the cache, before it is read in; mincore (the
    // fallback before Linux 6.5) sees a page only once its read has completed. A page still
    // being read in now (readahead while the file is evicted) is then in neither this count
    // nor the index, and its insertion, made before counted_at, is skipped as counted: the
    // file would stay short of it for good. So count again a settle later, until a count
    // agrees with the events applied since the one before and the file's last insertion is old
    // enough for its read to have completed: while reads go on, each count can lag the events
    // by the same pages in flight and still agree (a throttled reader, a loaded machine). cachestat
    // counts every page in the cache, read or not.
    constexpr std::uint64_t read_in_ns = 2'000'000'000;
    const bool reads_recent = s.order.added.ns + read_in_ns > window_.horizon_ns;
    recount = std::string_view(reader_->name()) == "mincore" &&
              (!was_recount || counts->cached != s.cached_pages || reads_recent);
    if (s.audited && (counts->cached != s.cached_pages || (!s.dirty && counts->dirty + counts->writeback > 0))) {
      ++counters_.audit_repairs;
    }
    s.cached_pages = counts->cached;
    s.order.counted_ns = counted_at;
    s.order.counted_until_ns = counted_until;
  }
  s.take_count = false;
  s.audited = false;
  s.dirty_pages = counts->dirty + counts->writeback;
  s.dirty = s.dirty_pages > 0;
  ensure_copy(s);
  if (dup_n > 0) {
    for_placed(s, dup_first, dup_n, [&](domain_id d, std::uint64_t phys, std::uint64_t len) {
      counters_.duplicate_inserted_pages += state_->index.covered_by_others(d, phys, len, s.copy) / ps_;
    });
  }
  for (const auto& p : s.placement) {
    auto clean = reader_->clean_runs(fd.get(), p.first_page, p.pages);
    if (!clean) return clean.err();
    for (const auto& c : *clean) {
      state_->index.add(s.copy, p.domain, p.physical + (c.first - p.first_page) * ps_, c.pages * ps_);
    }
  }
  if (opts_.scan.attribute || opts_.scan.keep_placements) {
    auto& placed = state_->placements[s.copy];
    placed.clear();
    for (const auto& p : s.placement) {
      placed.push_back({state_->index.domain_name(p.domain), p.first_page, p.pages, p.physical, false});
    }
  }
  if (state_->attributed) {
    // The charges are re-read with the residency: events queued meanwhile set or clear what
    // they touch, which is idempotent.
    auto& runs = state_->charges[s.copy];
    runs.clear();
    if (charges_) {
      auto cached = reader_->cached_runs(fd.get(), static_cast<std::uint64_t>(st.st_size));
      if (cached) {
        if (auto c = charges_->read(fd.get(), *cached)) runs = std::move(*c);
      }
    }
  }
  sync_file_entry(s);
  if (recount) {
    mark_pending(id, s);  // after the settle: by then the reads in flight have completed
    s.take_count = true;
    s.recount = true;
  } else if (s.dirty) {
    // Still dirty: looked at again until written back (writeback sends no event), whoever
    // called. A reconcile made while applying records (an insertion after the extents changed)
    // leaves the file out of the queue otherwise, its dirty count and index part stale for good.
    mark_pending(id, s);
  }
  return {};
}

bool controller::in_order(const ident& id, slot& s, const trace::decoded_event& ev) {
  switch (admit(s.order, ev, window_)) {
    case admission::apply: return true;
    case admission::counted: return false;
    case admission::doubt: break;
  }
  ++counters_.reordered;
  mark_pending(id, s, made_before(ev));
  s.changed = {};  // nothing to wait for: the count is what is in doubt
  s.take_count = true;
  return false;
}

void controller::apply(const trace::decoded_event& ev) {
  using trace::event_kind;
  // A record that began before the seed's scan ended may or may not be in it: applied on top
  // it would count twice (an insertion) or remove what the scan already left out. That is the
  // case for records still queued when a rescan repairs losses while the workload goes on, as
  // for those drained after the first seed: re-resolve the inode instead.
  if (!ev.is_sharing() && ev.timestamp_ns <= seeded_ns_ + window_.slack_ns) return touch(ev);
  ++counters_.events;
  if (ev.end_timestamp_ns + window_.slack_ns < window_.horizon_ns) ++counters_.late_records;
  switch (ev.kind) {
    case event_kind::cache_add: {
      counters_.inserted_pages += ev.nr_pages;
      slot* s = find(ev, true);
      if (!s) {
        ++counters_.unresolved_events;
        return;
      }
      const ident id{ev.dev, ev.subvol_id, ev.ino};
      if (!in_order(id, *s, ev)) return;
      if (s->extents_gen < extents_gen_) {
        // Extents never read, or possibly changed: re-resolve the whole file (its index part
        // comes from residency, which already holds this folio), then count the folio, unless
        // the reconcile took the whole count from cachestat, which holds it already.
        const bool counted = s->take_count;
        if (!reconcile(id, *s, ev.index, ev.nr_pages)) rescan_needed_ = true;
        if (!counted) s->cached_pages += ev.nr_pages;
        charge(*s, ev, true);
        note_heat(*s, ev);
        sync_file_entry(*s);
        return;
      }
      ensure_copy(*s);
      for_placed(*s, ev.index, ev.nr_pages, [&](domain_id d, std::uint64_t phys, std::uint64_t len) {
        counters_.duplicate_inserted_pages += state_->index.covered_by_others(d, phys, len, s->copy) / ps_;
        state_->index.add(s->copy, d, phys, len);
      });
      s->cached_pages += ev.nr_pages;
      charge(*s, ev, true);
      note_heat(*s, ev);
      sync_file_entry(*s);
      return;
    }
    case event_kind::cache_delete: {
      counters_.evicted_pages += ev.nr_pages;
      slot* s = find(ev, false);
      if (!s || !in_order(ident{ev.dev, ev.subvol_id, ev.ino}, *s, ev)) return;
      const bool kept = unindex(*s, ev.index, ev.nr_pages);
      s->cached_pages -= std::min<std::uint64_t>(s->cached_pages, ev.nr_pages);
      charge(*s, ev, false);
      sync_file_entry(*s);
      // Nothing cached any more: the file may have been deleted (unlinked, or its subvolume
      // removed), whose inode would otherwise stay counted until the next rescan. A settle
      // later the reconcile tells, and the tick forgets it if it is gone. Blocks kept because
      // another offset holds them: the reconcile reads which are still cached.
      if (kept || s->cached_pages == 0) mark_pending(ident{ev.dev, ev.subvol_id, ev.ino}, *s, made_before(ev));
      return;
    }
    case event_kind::folio_dirty: {
      counters_.dirtied_pages += ev.nr_pages;
      slot* s = find(ev, false);
      if (!s || !in_order(ident{ev.dev, ev.subvol_id, ev.ino}, *s, ev)) return;
      // Its contents may now differ, and writeback may move it (COW): out of the index until
      // the file is clean again and re-resolved.
      unindex(*s, ev.index, ev.nr_pages);
      s->dirty = true;
      s->dirty_pages += ev.nr_pages;  // the record is made only when a folio goes from clean to dirty
      sync_file_entry(*s);
      mark_pending(ident{ev.dev, ev.subvol_id, ev.ino}, *s, made_before(ev));
      return;
    }
    case event_kind::share_fiemap:
      return;  // reading extents changes nothing
    case event_kind::share_truncate:
    case event_kind::share_fallocate:
      // Removed pages arrive as delete events, but the blocks under what is read next may not
      // be the old ones (a hole punched, a range collapsed or unshared, a file grown): the
      // placement is read again before the next page is counted, and once settled.
      if (ev.has_identity) {
        if (slot* s = find(ev, false)) {
          s->extents_gen = 0;
          mark_pending(ident{ev.dev, ev.subvol_id, ev.ino}, *s, made_before(ev));
        }
      }
      ++counters_.sharing_changes;
      return;
    case event_kind::share_clone:
    case event_kind::share_clone_range:
    case event_kind::share_copy_range:
    case event_kind::share_dedupe: {
      ++counters_.sharing_changes;
      // Every kind names its destination, the file whose extents change (the source's stay
      // where they are). A dedupe's destination keeps its cached pages (same contents), so
      // it must be placed again even if nothing is read; only its first destination is
      // named: every inode re-reads extents before it is placed again.
      if (ev.kind == event_kind::share_dedupe || !ev.has_identity) ++extents_gen_;
      if (ev.has_identity) {
        if (slot* s = find(ev, false)) {
          s->extents_gen = 0;
          mark_pending(ident{ev.dev, ev.subvol_id, ev.ino}, *s, made_before(ev));
        }
      }
      return;
    }
  }
}

result<void> controller::tick() {
  if (rescan_needed_) {
    rescan_needed_ = false;
    return seed();
  }
  if (state_->files.size() >= next_compaction_check_) {
    // Entries with nothing cached: files gone, and files evicted since. A file deleted while
    // nothing of it was cached sends no event, so its slot and entry are known only to be
    // idle; a rescan keeps what the walk still finds. It costs a walk of the tree, so it waits
    // for idle entries to outnumber a part of the files known too.
    std::size_t cached = 0;
    for (const auto& [_, s] : slots_) cached += s.has_copy && s.cached_pages > 0;
    const std::size_t idle = state_->files.size() - std::min(cached, state_->files.size());
    if (idle > std::max({cached, opts_.compact_min_gone, slots_.size() / 8})) {
      ++counters_.compactions;
      return seed();
    }
    // Counting walks every slot: look again after a quarter of the smallest threshold, so the
    // walk costs a bounded number of slot visits per new entry however many files are known.
    next_compaction_check_ =
        state_->files.size() + std::max<std::size_t>({opts_.compact_min_gone / 4, slots_.size() / 32, 1});
  }
  const auto now = std::chrono::steady_clock::now();
  // mark_pending() appends to pending_: work on a copy so the loop's iterators stay valid.
  std::vector<ident> work;
  work.swap(pending_);
  std::vector<ident> keep;
  for (const auto& id : work) {
    auto it = slots_.find(id);
    if (it == slots_.end() || !it->second.pending) continue;
    slot& s = it->second;
    if (now - s.changed < opts_.settle) {
      keep.push_back(id);
      continue;
    }
    if (s.dirty && s.extents_gen == extents_gen_ && !s.take_count) {
      // Dirty pages already left the index; the extents can only change at writeback, so
      // re-resolve (FIEMAP) once, when nothing is dirty any more. Until then a count suffices.
      // (Not when the count itself is in doubt: then re-resolve now, and again after writeback.)
      unique_fd fd = open_slot(s, id);
      if (fd) {
        auto c = reader_->totals(fd.get(), 0);
        if (c && c->dirty + c->writeback > 0) {
          s.pending_since_ns = window_.horizon_ns;  // still dirty now: as current as the rest
          s.dirty_pages = c->dirty + c->writeback;
          sync_file_entry(s);
          keep.push_back(id);
          continue;
        }
      }
    }
    if (auto r = reconcile(id, s, 0, 0); !r) return r;
    if (s.cached_pages == 0 && !s.pending && !open_slot(s, id)) {
      // Gone (unlinked, or its subvolume deleted): forgotten, or it would stay counted among
      // the known files until the next rescan. Its copy entry stays (copy ids are not reused),
      // empty: reports skip it.
      erase_slot(it);
      continue;
    }
    // Still dirty (not written back yet): the reconcile queued it again.
  }
  // Inodes marked while this loop ran (pending_) stay queued too.
  keep.insert(keep.end(), pending_.begin(), pending_.end());
  pending_ = std::move(keep);
  check_paths();
  audit();
  return {};
}

}  // namespace dupcache::live
