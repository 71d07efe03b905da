// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// User-space view of one ring-buffer record (struct dupcache_event, bpf/dupcache_abi.h).
// Deliberately free of libbpf: the decoder is shared with the benchmark and unit tests.

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace dupcache::trace {

// Values equal enum dupcache_event_kind.
enum class event_kind : std::uint8_t {
  cache_add = 1,
  cache_delete = 2,
  folio_dirty = 3,
  share_clone = 4,
  share_clone_range = 5,
  share_dedupe = 6,
  share_copy_range = 7,
  share_fiemap = 8,
  share_truncate = 9,
  share_fallocate = 10,
};

std::string_view to_string(event_kind kind);

// Plain data. Which fields are meaningful for which kind: see the table in dupcache_abi.h.
struct decoded_event {
  event_kind kind{};
  std::uint64_t timestamp_ns = 0;  // CLOCK_MONOTONIC; for a coalesced run, its first folio
  std::uint64_t end_timestamp_ns = 0;  // coalesced run: when it was flushed; else == timestamp_ns

  // Identity (always for cache/dirty kinds; for sharing kinds only if has_identity).
  bool has_identity = false;
  std::uint32_t kernel_dev = 0;  // s_dev as the kernel encodes it (major << 20 | minor)
  std::uint32_t dev_major = 0;
  std::uint32_t dev_minor = 0;
  dev_t dev = 0;  // makedev(dev_major, dev_minor): the superblock's device, as mountinfo shows it
  std::uint64_t subvol_id = 0;  // btrfs root id; 0 elsewhere
  bool subvol_unknown = false;  // btrfs, but the kernel's BTF did not let us read the root
  std::uint64_t ino = 0;
  std::uint32_t generation = 0;

  // Cache and dirty kinds.
  std::uint64_t index = 0;  // first page index of the folio (or of the run)
  std::uint32_t nr_pages = 0;  // pages of the folio, or of the coalesced run of folios
  std::uint64_t cgroup_id = 0;  // memcg's cgroup id; 0 = none/unknown

  // Task.
  std::uint32_t pid = 0;  // tgid
  std::uint32_t tid = 0;
  std::array<char, 16> comm{};  // NUL-terminated

  // Sharing kinds.
  int fd = -1;  // -1 = none
  int fd2 = -1;
  std::uint64_t off = 0;
  std::uint64_t off2 = 0;
  std::uint64_t len = 0;
  std::uint32_t aux = 0;
  bool args_unread = false;  // user-memory arguments could not be read; off/off2/len are 0
  bool off_is_file_pos = false;
  bool off2_is_file_pos = false;

  std::uint32_t cpu = 0;      // CPU the record was made on
  bool unordered = false;     // may have overtaken an earlier run of its own CPU (DUPCACHE_EVF_UNORDERED)
  std::uint8_t raw_flags = 0;  // DUPCACHE_EVF_* as received

  std::string_view comm_view() const;
  bool is_cache() const { return kind == event_kind::cache_add || kind == event_kind::cache_delete; }
  bool is_sharing() const { return static_cast<std::uint8_t>(kind) >= 4; }
};

// Validates and decodes one ring-buffer sample. nullopt if the sample is shorter than the ABI
// struct or carries an unknown kind. Longer samples are accepted (a newer object may append).
std::optional<decoded_event> decode_event(const void* data, std::size_t size);

// Kernel dev_t encoding (include/linux/kdev_t.h: MINORBITS 20) to and from user-space dev_t.
std::uint32_t kernel_dev_from(dev_t dev);
dev_t dev_from_kernel(std::uint32_t kernel_dev);

}  // namespace dupcache::trace
