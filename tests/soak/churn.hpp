// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The churn generator of the soak (bench/README.md, "Churn soak"): random file-system work on btrfs and
// XFS at once, from a seed, with a content model of every file so that the contents can be
// checked at any quiescent point (the daemon must never change them, nor drop a dirty page).
//
// Every file is a whole number of 4 KiB blocks; every block holds a pattern derived from a
// 64-bit tag (0: zeros, a hole or an extension). Writes, clones, dedupes, truncates and punched
// holes are block aligned, so the model is one tag per block, updated with each operation.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace dupcache::soak {

constexpr std::uint64_t block = 4096;

// One filesystem the churn runs on.
struct area {
  std::string mount;
  bool btrfs = false;
};

struct op_counts {
  std::map<std::string, std::uint64_t> done;  // operation name -> times
  std::uint64_t errors = 0;                   // operations that failed unexpectedly
  std::vector<std::string> first_errors;      // the first few, verbatim
};

class churn {
 public:
  churn(std::vector<area> areas, std::uint64_t seed);
  // Without snapshots and subvolumes (to tell their drift from the rest's).
  void without_subvolumes() { subvolumes_on_ = false; }
  // The initial files (and on btrfs the subvolume they live in). Throws on failure.
  void setup();
  // One random operation.
  void step();
  // A tight loop of small reads and POSIX_FADV_DONTNEED over the burst files, for ms: drives
  // the tracer's ring buffer into overflow when its consumer cannot keep up (or is stopped).
  std::uint64_t burst(int ms);
  // Reads every modelled file and compares size and blocks with the model. Returns the
  // mismatches (path: what differs); empty when every file holds what the model says.
  std::vector<std::string> verify(std::uint64_t* files, std::uint64_t* bytes) const;
  const op_counts& counts() const { return counts_; }
  std::uint64_t modelled_bytes() const;

 private:
  using tags = std::vector<std::uint64_t>;
  struct pick {
    const area* a = nullptr;
    std::string path;
  };

  std::string pool_name(const area& a, unsigned i) const;
  std::vector<std::string> existing(const area& a, bool writable_only) const;
  bool chance(unsigned percent);
  bool structural_due();
  std::uint64_t below(std::uint64_t n);  // uniform in [0, n)
  std::uint64_t new_tag() { return (seed_ << 40) ^ ++tag_counter_; }
  void fail(const std::string& what, int err);

  void op_read(const area& a, bool partial);
  void op_mmap(const area& a);
  void op_write(const area& a);
  void op_clone_file(const area& a);
  void op_clone_range(const area& a);
  void op_dedupe(const area& a);
  void op_truncate(const area& a);
  void op_punch(const area& a);
  void op_unlink(const area& a);
  void op_rename(const area& a);
  void op_dontneed(const area& a);
  void op_snapshot(const area& a, bool create);
  void op_subvolume(const area& a, bool create);
  void op_sync(const area& a);
  void destroy_oldest(int dir_fd, const std::string& dir, std::vector<std::string>& list, const char* op);
  // pwrite of blocks [first, first + t.size()) with the given tags.
  bool write_blocks(int fd, std::uint64_t first, const tags& t);

  std::vector<area> areas_;
  std::uint64_t seed_;
  std::mt19937_64 rng_;
  std::uint64_t tag_counter_ = 0;
  std::map<std::string, tags> model_;  // absolute path -> tag per block
  std::vector<std::string> burst_files_;
  unsigned next_snapshot_ = 0, next_subvolume_ = 0;
  std::vector<std::string> snapshots_, subvolumes_;  // absolute paths, oldest first
  op_counts counts_;
  std::chrono::steady_clock::time_point last_structural_{};
  bool subvolumes_on_ = true;
};

// The pattern of a block with this tag (tag 0: zeros).
void fill_block(std::uint64_t tag, unsigned char* out);

}  // namespace dupcache::soak
