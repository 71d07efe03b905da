// SPDX-License-Identifier: GPL-2.0-only
#include "policy/merge_module.hpp"

#include <dupcache_kmod.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cstring>
#include <string_view>

namespace dupcache::policy {

static_assert(std::string_view(merge_module_device) == DUPCACHE_DEVICE);
static_assert(refused_cow == DUPCACHE_R_COW && refused_stopped == DUPCACHE_R_STOPPED);
static_assert(refused_ptrace >= DUPCACHE_R_COUNT, "dupcache's own refusal must not collide with the module's");
// merge() speaks either ABI 1.0 or this struct; a struct grown past 1.1 needs a third case there.
static_assert(sizeof(dupcache_merge) == DUPCACHE_MERGE_SIZE_V2);
static_assert(std::tuple_size_v<decltype(merge_module::counters::refused)> == DUPCACHE_R_COUNT);

result<merge_module> merge_module::open(const char* device) {
  merge_module m;
  m.fd_.reset(::open(device, O_RDWR | O_CLOEXEC));
  if (!m.fd_) {
    const int e = errno;
    return plain_error("use the companion module", e == ENOENT ? fmt::format("not loaded ({} does not exist)", device)
                                                                 : fmt::format("{}: {}", device, std::strerror(e)));
  }
  dupcache_version v{};
  if (ioctl(m.fd_.get(), DUPCACHE_IOC_VERSION, &v) != 0) {
    return plain_error("use the companion module", fmt::format("{} does not answer DUPCACHE_IOC_VERSION: {}", device, std::strerror(errno)));
  }
  if (v.major != DUPCACHE_ABI_MAJOR) {
    return plain_error("use the companion module", fmt::format("{} speaks ABI {}.{}; this dupcache speaks {}.x", device,
                                                               v.major, v.minor, DUPCACHE_ABI_MAJOR));
  }
  m.major_ = v.major;
  m.minor_ = v.minor;
  m.merge_size_ = v.merge_size;
  m.stats_size_ = v.stats_size;
  return m;
}

std::string merge_module::version() const { return fmt::format("{}.{}", major_, minor_); }

merge_module::answer merge_module::merge(const request& r) const {
  // An ABI 1.0 module knows the first struct and ioctl number only, and the target by pid only.
  const bool v1 = !takes_pidfd();
  const bool by_pidfd = !v1 && r.pidfd >= 0;
  dupcache_merge req{.size = static_cast<__u32>(v1 ? DUPCACHE_MERGE_SIZE_V1 : sizeof(dupcache_merge)),
                     .pid = r.pid, .start = r.start, .end = r.end, .canonical_fd = r.canonical_fd,
                     .timeout_ms = r.timeout_ms, .expect_dev = r.expect_dev, .expect_ino = r.expect_ino,
                     .expect_generation = r.expect_generation, .reason = 0,
                     .flags = by_pidfd ? DUPCACHE_MERGE_PIDFD : 0, .pidfd = by_pidfd ? r.pidfd : 0, .reserved = 0};
  if (ioctl(fd_.get(), v1 ? DUPCACHE_IOC_MERGE_V1 : DUPCACHE_IOC_MERGE, &req) == 0) return {};
  return {errno, req.reason};
}

bool merge_module::takes_pidfd() const { return merge_size_ >= DUPCACHE_MERGE_SIZE_V2; }

result<merge_module::counters> merge_module::stats() const {
  dupcache_stats s{};
  const unsigned long cmd = stats_size_ >= sizeof(s) ? DUPCACHE_IOC_STATS : DUPCACHE_IOC_STATS_V1;
  if (ioctl(fd_.get(), cmd, &s) != 0) return errno_error("read the companion module's counters");
  counters c;
  c.requests = s.requests;
  c.merged = s.merged;
  c.merged_bytes = s.merged_bytes;
  c.pending = s.pending;
  std::copy(std::begin(s.refused), std::end(s.refused), c.refused.begin());
  return c;
}

std::string refusal_name(std::uint32_t reason) {
  switch (reason) {
    case DUPCACHE_OK: return "ok";
    case DUPCACHE_R_PERMISSION: return "permission";
    case DUPCACHE_R_NO_PROCESS: return "no_process";
    case DUPCACHE_R_RANGE: return "range";
    case DUPCACHE_R_IDENTITY: return "identity";
    case DUPCACHE_R_SHARED: return "shared";
    case DUPCACHE_R_WRITABLE: return "writable";
    case DUPCACHE_R_COW: return "cow";
    case DUPCACHE_R_SPECIAL: return "special";
    case DUPCACHE_R_CANONICAL: return "canonical";
    case DUPCACHE_R_OTHER_FS: return "other_fs";
    case DUPCACHE_R_TIMEOUT: return "timeout";
    case DUPCACHE_R_MAP_FAILED: return "map_failed";
    case DUPCACHE_R_INVALID: return "invalid";
    case DUPCACHE_R_STOPPED: return "stopped";
    case DUPCACHE_R_PENDING: return "pending";
    case DUPCACHE_R_WRITERS: return "writers";
    case DUPCACHE_R_CONTENT: return "content";
    case DUPCACHE_R_RACED: return "raced";
    case refused_ptrace: return "ptrace";
    default: return fmt::format("reason_{}", reason);
  }
}

}  // namespace dupcache::policy
