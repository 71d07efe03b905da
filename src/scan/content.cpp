// SPDX-License-Identifier: GPL-2.0-only
#include "scan/content.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>

#include "scan/residency.hpp"
#include "util/fd.hpp"
#include "util/open_beneath.hpp"

namespace dupcache {

std::uint64_t xxh3_hasher::hash(std::span<const std::byte> page) const {
  return XXH3_64bits(page.data(), page.size());
}

namespace {

// How a cached page is read without disturbing the cache:
//
// - Not read(2) or preadv2(RWF_NOWAIT): filemap_get_pages() (mm/filemap.c) runs
//   page_cache_sync_ra() for a missing page even under IOCB_NOWAIT (only the in-kernel
//   IOCB_NOIO stops it) and page_cache_async_ra() on a folio carrying PG_readahead, so a
//   read of cached pages can still start I/O for the pages after them.
// - A shared read-only mapping with MADV_RANDOM (VM_RAND_READ) instead: filemap_fault() then
//   skips both do_sync_mmap_readahead() and do_async_mmap_readahead() (each returns at once on
//   VM_RAND_READ), fault-around (filemap_map_pages()) maps only folios already cached and
//   uptodate and skips PG_readahead ones, and at unmap zap_pte_range() does not turn the young
//   bit into folio_mark_accessed() because vma_has_recency() is false for VM_RAND_READ. Each
//   page is touched only after mincore() on the same mapping said it is resident, in windows of
//   window_pages so the time between the two is short. What remains is the race in which reclaim
//   evicts a page between mincore() and the load: that one page (never more, no readahead) is
//   then read back. The residency tests check the ordinary case page by page.
constexpr std::uint64_t window_pages = 64;

class mapping {
 public:
  mapping(int fd, std::uint64_t offset, std::uint64_t len) : len_(len) {
    void* p = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(offset));
    if (p == MAP_FAILED) return;
    p_ = static_cast<std::byte*>(p);
    if (madvise(p, len, MADV_RANDOM) < 0) {
      munmap(p, len);
      p_ = nullptr;
    }
  }
  ~mapping() {
    if (p_) munmap(p_, len_);
  }
  mapping(const mapping&) = delete;
  mapping& operator=(const mapping&) = delete;
  const std::byte* data() const { return p_; }

 private:
  std::byte* p_ = nullptr;
  std::uint64_t len_;
};

std::uint64_t mapped_bytes(std::uint64_t first, std::uint64_t pages, std::uint64_t file_size, std::uint64_t ps) {
  // Past the end of the file a mapping faults SIGBUS: map only up to the page holding EOF.
  const std::uint64_t end_page = (file_size + ps - 1) / ps;
  if (first >= end_page) return 0;
  return std::min(pages, end_page - first) * ps;
}

}  // namespace

result<std::uint64_t> hash_resident_pages(int fd, std::uint64_t file_size, std::uint64_t ps,
                                          const std::vector<page_run>& runs, const page_hasher& hasher,
                                          std::vector<page_hash>& out) {
  std::uint64_t gone = 0;
  std::vector<unsigned char> resident(window_pages);
  for (const auto& run : runs) {
    for (std::uint64_t first = run.first; first < run.first + run.pages; first += window_pages) {
      const std::uint64_t pages = std::min(window_pages, run.first + run.pages - first);
      const std::uint64_t len = mapped_bytes(first, pages, file_size, ps);
      if (len == 0) {
        gone += pages;  // truncated since the residency read
        continue;
      }
      mapping m(fd, first * ps, len);
      if (!m.data()) return errno_error("map cached pages for hashing");
      if (mincore(const_cast<std::byte*>(m.data()), len, resident.data()) < 0) return errno_error("mincore");
      gone += pages - len / ps;
      for (std::uint64_t i = 0; i < len / ps; ++i) {
        if (!(resident[i] & 1)) {
          ++gone;
          continue;
        }
        out.push_back({first + i, hasher.hash({m.data() + i * ps, ps}), -1, 0});
      }
    }
  }
  return gone;
}

void place_pages(std::vector<page_hash>& pages, const std::vector<placed_extent>& placement, std::uint64_t ps,
                 content_pages& into) {
  // Both lists ascend by page: one merge.
  auto e = placement.begin();
  for (auto& p : pages) {
    while (e != placement.end() && e->first_page + e->pages <= p.page) ++e;
    if (e == placement.end()) break;
    if (p.page < e->first_page) continue;
    auto d = std::find(into.domains.begin(), into.domains.end(), e->domain);
    if (d == into.domains.end()) d = into.domains.insert(into.domains.end(), e->domain);
    p.domain = static_cast<std::int32_t>(d - into.domains.begin());
    p.physical = e->physical + (p.page - e->first_page) * ps;
  }
}

content_result find_content_duplicates(const content_pages& pages, page_source& source, std::uint64_t ps,
                                       const std::vector<std::uint64_t>& rank) {
  content_result r;
  const std::size_t ncopies = pages.by_copy.size();
  r.duplicate_bytes.assign(ncopies, 0);
  r.copy_wasted_bytes.assign(ncopies, 0);
  r.classes.resize(ncopies);
  r.pages_gone = pages.pages_gone;

  // One entry per physical place: the first page (in rank order) found there stands for it.
  struct entry {
    std::uint64_t hash;
    copy_id copy;
    std::uint32_t index;  // into by_copy[copy]
  };
  std::vector<copy_id> order(ncopies);
  std::iota(order.begin(), order.end(), copy_id{0});
  auto rank_of = [&](copy_id c) { return c < rank.size() ? rank[c] : c; };
  std::stable_sort(order.begin(), order.end(), [&](copy_id a, copy_id b) { return rank_of(a) < rank_of(b); });
  std::map<std::pair<std::int32_t, std::uint64_t>, std::pair<copy_id, std::uint32_t>> places;
  std::vector<entry> entries;
  std::vector<std::vector<std::int64_t>> entry_of(ncopies);  // -1: a place already standing
  for (copy_id c : order) {
    const auto& list = pages.by_copy[c];
    entry_of[c].assign(list.size(), -1);
    for (std::uint32_t i = 0; i < list.size(); ++i) {
      if (list[i].domain >= 0 && !places.try_emplace({list[i].domain, list[i].physical}, c, i).second) continue;
      entry_of[c][i] = static_cast<std::int64_t>(entries.size());
      entries.push_back({list[i].hash, c, i});
    }
  }

  // Bucket by hash, then split each bucket into classes of equal bytes.
  std::vector<std::uint32_t> by_hash(entries.size());
  std::iota(by_hash.begin(), by_hash.end(), 0u);
  std::stable_sort(by_hash.begin(), by_hash.end(),
                   [&](std::uint32_t a, std::uint32_t b) { return entries[a].hash < entries[b].hash; });
  constexpr std::uint64_t no_class = ~0ULL;
  std::vector<std::uint64_t> entry_class(entries.size(), no_class);
  std::uint64_t next_class = 0;
  std::vector<std::uint64_t> class_size;
  std::vector<std::byte> page(ps);
  for (std::size_t b = 0; b < by_hash.size();) {
    std::size_t e = b + 1;
    while (e < by_hash.size() && entries[by_hash[e]].hash == entries[by_hash[b]].hash) ++e;
    if (e - b == 1) {
      entry_class[by_hash[b]] = next_class++;
      class_size.push_back(1);
      b = e;
      continue;
    }
    // Representatives' bytes of this bucket's classes (one, unless the hash collided).
    std::vector<std::pair<std::uint64_t, std::vector<std::byte>>> reps;
    for (std::size_t k = b; k < e; ++k) {
      const auto& en = entries[by_hash[k]];
      if (!source.read(en.copy, pages.by_copy[en.copy][en.index].page, page)) {
        ++r.pages_gone;  // not compared, so not counted as anybody's duplicate
        entry_class[by_hash[k]] = next_class++;
        class_size.push_back(0);
        continue;
      }
      ++r.pages_compared;
      auto same = std::find_if(reps.begin(), reps.end(), [&](const auto& rep) {
        return std::memcmp(rep.second.data(), page.data(), ps) == 0;
      });
      if (same == reps.end()) {
        if (!reps.empty()) ++r.hash_collisions;
        reps.push_back({next_class++, page});
        class_size.push_back(0);
        same = reps.end() - 1;
      }
      entry_class[by_hash[k]] = same->first;
      ++class_size[same->first];
    }
    b = e;
  }

  // Waste: every place of a content but the first in rank order. Entries were made in rank
  // order, so the first entry met of each class is the one kept.
  std::vector<bool> kept(next_class, false);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::uint64_t cl = entry_class[i];
    if (class_size[cl] < 2) continue;
    r.duplicate_bytes[entries[i].copy] += ps;
    if (kept[cl]) {
      r.copy_wasted_bytes[entries[i].copy] += ps;
      r.wasted_bytes += ps;
    } else {
      kept[cl] = true;
    }
  }
  // Classes of every hashed page, for telling whole files equal: a page at a place another
  // copy stands for has that copy's class.
  for (copy_id c = 0; c < ncopies; ++c) {
    const auto& list = pages.by_copy[c];
    r.classes[c].resize(list.size());
    for (std::uint32_t i = 0; i < list.size(); ++i) {
      std::int64_t en = entry_of[c][i];
      if (en < 0) {
        const auto& [oc, oi] = places.at({list[i].domain, list[i].physical});
        en = entry_of[oc][oi];
      }
      r.classes[c][i] = entry_class[static_cast<std::size_t>(en)];
    }
  }
  return r;
}

namespace {

// Reopens each file once and keeps a few mappings open: comparisons within a bucket jump
// between files.
class file_page_source final : public page_source {
 public:
  file_page_source(std::vector<reopen_target> files, std::uint64_t ps) : files_(std::move(files)), ps_(ps) {}

  bool read(copy_id copy, std::uint64_t page, std::span<std::byte> out) override {
    if (copy >= files_.size() || out.size() != ps_) return false;
    const auto& f = files_[copy];
    if (page * ps_ >= f.size) return false;
    auto it = open_.find(copy);
    if (it == open_.end()) {
      if (open_.size() >= max_open_) open_.erase(open_.begin());
      unique_fd pfd = open_walked_path(f.root, f.path);
      struct stat st {};
      if (!pfd || fstat(pfd.get(), &st) < 0 || !S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_ino) != f.ino) {
        return false;  // replaced or removed since the scan
      }
      unique_fd fd(::open(fmt::format("/proc/self/fd/{}", pfd.get()).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
      if (!fd || fstat(fd.get(), &st) < 0 || static_cast<std::uint64_t>(st.st_size) < f.size) return false;
      it = open_.emplace(copy, std::move(fd)).first;
    }
    const std::uint64_t len = mapped_bytes(page, 1, f.size, ps_);
    mapping m(it->second.get(), page * ps_, len);
    if (!m.data()) return false;
    unsigned char resident = 0;
    if (mincore(const_cast<std::byte*>(m.data()), len, &resident) < 0 || !(resident & 1)) return false;
    std::memcpy(out.data(), m.data(), ps_);
    return true;
  }

 private:
  static constexpr std::size_t max_open_ = 64;
  std::vector<reopen_target> files_;
  std::uint64_t ps_;
  std::map<copy_id, unique_fd> open_;
};

}  // namespace

std::unique_ptr<page_source> make_file_page_source(std::vector<reopen_target> files, std::uint64_t ps) {
  return std::make_unique<file_page_source>(std::move(files), ps);
}

}  // namespace dupcache
