// SPDX-License-Identifier: GPL-2.0-only
#include "trace/event.hpp"

#include <sys/sysmacros.h>

#include <cstring>

#include "trace/abi_check.hpp"

namespace dupcache::trace {

namespace {

constexpr std::uint32_t kernel_minor_bits = 20;
constexpr std::uint32_t kernel_minor_mask = (1u << kernel_minor_bits) - 1;

int fd_or_none(std::uint32_t fd) {
  return fd == DUPCACHE_FD_NONE ? -1 : static_cast<int>(fd);
}

}  // namespace

std::string_view to_string(event_kind kind) {
  switch (kind) {
    case event_kind::cache_add: return "cache_add";
    case event_kind::cache_delete: return "cache_delete";
    case event_kind::folio_dirty: return "folio_dirty";
    case event_kind::share_clone: return "clone";
    case event_kind::share_clone_range: return "clone_range";
    case event_kind::share_dedupe: return "dedupe";
    case event_kind::share_copy_range: return "copy_file_range";
    case event_kind::share_fiemap: return "fiemap";
    case event_kind::share_truncate: return "truncate";
    case event_kind::share_fallocate: return "fallocate";
  }
  return "unknown";
}

std::string_view decoded_event::comm_view() const {
  return std::string_view(comm.data(), ::strnlen(comm.data(), comm.size()));
}

std::uint32_t kernel_dev_from(dev_t dev) {
  return (static_cast<std::uint32_t>(major(dev)) << kernel_minor_bits) |
         (static_cast<std::uint32_t>(minor(dev)) & kernel_minor_mask);
}

dev_t dev_from_kernel(std::uint32_t kernel_dev) {
  return makedev(kernel_dev >> kernel_minor_bits, kernel_dev & kernel_minor_mask);
}

std::optional<decoded_event> decode_event(const void* data, std::size_t size) {
  if (data == nullptr || size < sizeof(dupcache_event)) return std::nullopt;
  dupcache_event raw;
  std::memcpy(&raw, data, sizeof(raw));  // ring-buffer samples are only 8-byte aligned
  if (raw.kind < DUPCACHE_EV_CACHE_ADD || raw.kind > DUPCACHE_EV_KIND_MAX) return std::nullopt;

  decoded_event ev;
  ev.kind = static_cast<event_kind>(raw.kind);
  ev.timestamp_ns = raw.ts_ns;
  // A zero end (an object that does not fill it) reads as a single instant.
  ev.end_timestamp_ns = raw.ts_end_ns > raw.ts_ns ? raw.ts_end_ns : raw.ts_ns;
  ev.raw_flags = raw.flags;
  ev.has_identity = (raw.flags & DUPCACHE_EVF_IDENTITY) != 0;
  ev.subvol_unknown = (raw.flags & DUPCACHE_EVF_SUBVOL_UNKNOWN) != 0;
  ev.unordered = (raw.flags & DUPCACHE_EVF_UNORDERED) != 0;
  ev.cpu = raw.cpu;
  ev.args_unread = (raw.flags & DUPCACHE_EVF_ARGS_UNREAD) != 0;
  ev.off_is_file_pos = (raw.flags & DUPCACHE_EVF_OFF_IS_FPOS) != 0;
  ev.off2_is_file_pos = (raw.flags & DUPCACHE_EVF_OFF2_IS_FPOS) != 0;
  ev.kernel_dev = raw.dev;
  ev.dev_major = raw.dev >> kernel_minor_bits;
  ev.dev_minor = raw.dev & kernel_minor_mask;
  ev.dev = makedev(ev.dev_major, ev.dev_minor);
  ev.subvol_id = raw.subvol_id;
  ev.ino = raw.ino;
  ev.generation = raw.generation;
  ev.index = raw.index;
  ev.nr_pages = raw.nr_pages;
  ev.cgroup_id = raw.cgroup_id;
  ev.pid = raw.pid;
  ev.tid = raw.tid;
  static_assert(sizeof(ev.comm) == sizeof(raw.comm));
  std::memcpy(ev.comm.data(), raw.comm, sizeof(raw.comm));
  ev.comm.back() = '\0';
  ev.fd = fd_or_none(raw.fd);
  ev.fd2 = fd_or_none(raw.fd2);
  ev.off = raw.off;
  ev.off2 = raw.off2;
  ev.len = raw.len;
  ev.aux = raw.aux;
  return ev;
}

}  // namespace dupcache::trace
