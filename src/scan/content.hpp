// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Content duplicates: pages whose bytes are cached more than once at different physical places
// (copies in overlayfs layers, plain copies on ext4 or XFS without reflink). Two steps:
//
//  1. While the scanner holds a file open, hash_cached_pages() hashes its clean cached pages
//     (one page_hash each, with the page's physical place when FIEMAP gives one).
//  2. find_content_duplicates() keeps one page per physical place (several inodes caching one
//     physical page are shared-extent waste, already counted by the index), buckets the rest by
//     hash and confirms every equality byte for byte through a page_source, so a hash
//     collision can never make a duplicate.
//
// Never disturbing what is measured: pages are read only where the kernel says they are
// cached, through a mapping that cannot start readahead (see page_reader in content.cpp).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "index/block_index.hpp"
#include "scan/placement.hpp"
#include "util/result.hpp"

namespace dupcache {

// The hash behind an interface, so a test can force every page to collide.
class page_hasher {
 public:
  virtual ~page_hasher() = default;
  virtual std::uint64_t hash(std::span<const std::byte> page) const = 0;
};
// XXH3 64-bit (libxxhash).
class xxh3_hasher final : public page_hasher {
 public:
  std::uint64_t hash(std::span<const std::byte> page) const override;
};

// One clean cached page of a file.
struct page_hash {
  std::uint64_t page = 0;          // file page index
  std::uint64_t hash = 0;
  std::int32_t domain = -1;        // into content_pages::domains; -1: no exact physical place
  std::uint64_t physical = 0;      // page-aligned address inside the domain
};

// The hashed pages of every cached file of a scan, by copy_id.
struct content_pages {
  std::vector<std::string> domains;
  std::vector<std::vector<page_hash>> by_copy;
  std::vector<std::uint64_t> sizes;  // by copy_id: each file's size when it was hashed
  std::uint64_t pages_hashed = 0;
  std::uint64_t pages_gone = 0;  // evicted between the residency read and the hashing: not read
};

// A file's pages, read only while resident. read() fills `out` (one page) and returns false
// when the page is not cached now (or the file is gone): it never makes the kernel read it.
class page_source {
 public:
  virtual ~page_source() = default;
  virtual bool read(copy_id copy, std::uint64_t page, std::span<std::byte> out) = 0;
};

// Reads the pages of [run.first, run.first + run.pages) of fd that are resident, hashing each:
// fn(page, hash). Returns the pages of the runs that were not resident any more.
result<std::uint64_t> hash_resident_pages(int fd, std::uint64_t file_size, std::uint64_t page_size,
                                          const std::vector<struct page_run>& runs, const page_hasher& hasher,
                                          std::vector<page_hash>& out);

// The physical place of each hashed page, from the file's placement.
void place_pages(std::vector<page_hash>& pages, const std::vector<placed_extent>& placement,
                 std::uint64_t page_size, content_pages& into);

struct content_result {
  std::uint64_t wasted_bytes = 0;      // Σ over contents cached at k places of (k − 1) × page
  std::uint64_t pages_compared = 0;    // byte-for-byte comparisons made
  std::uint64_t hash_collisions = 0;   // equal hashes whose bytes differed
  std::uint64_t pages_gone = 0;        // evicted before they could be compared: not counted
  // By copy_id: bytes of the file's cached pages whose content is cached at another place too,
  // and its part of the waste (in each content the copy that sorts first is the one kept).
  std::vector<std::uint64_t> duplicate_bytes;
  std::vector<std::uint64_t> copy_wasted_bytes;
  // By copy_id, for each hashed page in order: its content class (equal bytes, equal class).
  std::vector<std::vector<std::uint64_t>> classes;
};

// order: copy ids ranked by which copy keeps a content (first wins), e.g. by path.
content_result find_content_duplicates(const content_pages& pages, page_source& source,
                                       std::uint64_t page_size, const std::vector<std::uint64_t>& rank);

// A page_source over files reopened by path (the root they were walked from and the path
// below it, no symbolic link followed), each checked to be the same inode.
struct reopen_target {
  std::string root;
  std::string path;
  std::uint64_t ino = 0;
  std::uint64_t size = 0;
};
std::unique_ptr<page_source> make_file_page_source(std::vector<reopen_target> files, std::uint64_t page_size);

}  // namespace dupcache
