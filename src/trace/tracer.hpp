// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Live feed: loads bpf/dupcache.bpf.c, picks the page-cache hooks this kernel accepts, and
// hands decoded events to a callback. Load sequence (each step reports what failed and why):
//   open -> configure rodata and map sizes -> choose hooks (autoload) -> load -> fill the
//   watched-device map -> attach -> ring buffer.
// Hook paths are tried in order fentry -> tp_btf -> raw_tp, skipping those the kernel's features
// rule out (trace/probe.hpp); a path whose load or attach fails is recorded with the reason
// (from libbpf's log, trace/libbpf_log.hpp) and the object is reopened with the next one.

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trace/event.hpp"
#include "trace/feed.hpp"
#include "trace/probe.hpp"
#include "util/result.hpp"

struct dupcache_bpf;  // bpftool skeleton (dupcache.skel.h)
struct ring_buffer;
struct bpf_link;

namespace dupcache::trace {

enum class probe_status {
  chosen,     // page-cache path in use
  rejected,   // tried, failed to load or attach (reason says why)
  not_tried,  // an earlier path was chosen
  enabled,    // optional hook group loaded and attached
  disabled,   // optional hook group turned off by options
};
std::string_view to_string(probe_status status);

// One line of `dupcache doctor`.
struct probe_result {
  std::string hook;  // "fentry", "tp_btf", "raw_tp", "dirty:tp_btf", "sharing:syscalls", ...
  probe_status status = probe_status::not_tried;
  std::string reason;
};

struct tracer_options {
  // Ring buffer size; rounded up to a power of two of at least one page (kernel requirement).
  std::uint64_t ring_buffer_bytes = std::uint64_t{16} << 20;
  // Superblock devices to report, as user-space dev_t (makedev of the major:minor that
  // /proc/self/mountinfo shows; on btrfs NOT stat()'s st_dev, which differs per subvolume).
  // Empty = every filesystem.
  std::vector<dev_t> watch_devs;
  // Wake the consumer when 1/wakeup_fraction of the ring buffer is filled, not per event
  // (0: per event). Consumers that batch must poll with a timeout: it bounds the latency.
  unsigned wakeup_fraction = 0;
  bool sharing_events = true;  // clone/dedupe/copy_file_range/truncate/fallocate syscalls
  // FS_IOC_FIEMAP calls too (with sharing_events). They change nothing, and a live model's own
  // seed makes one per cached file: with hundreds of thousands of files cached, that alone
  // overflowed the ring buffer at every seed, and the repair (a seed) overflowed it again, for
  // good. Only `dupcache trace` asks for them.
  bool fiemap_events = false;
  bool dirty_events = true;    // writeback_dirty_folio
  // Merge consecutive insertions of one file on one CPU into one record (see dupcache_abi.h).
  // Needs BPF_PROG_TEST_RUN on a chosen CPU (v5.10) for flush(); where that fails the tracer
  // falls back to one record per folio and says so in probe_report().
  bool coalesce = true;
  // Classic tracepoints (the sharing syscalls) are attached through tracefs: mount it at
  // /sys/kernel/tracing if no tracefs is mounted (reported in probe_report()).
  bool mount_tracefs = true;
  // Page-cache hook paths to try, in order. Tests and `doctor` may narrow it.
  std::vector<hook_path> paths{hook_path::fentry, hook_path::tp_btf, hook_path::raw_tp};
};

// Sum over CPUs of struct dupcache_counters, indexed by event_kind value.
struct event_counters {
  std::array<std::uint64_t, 16> emitted{};
  std::array<std::uint64_t, 16> drops{};  // ring buffer full, or run stranded on a CPU gone offline
  std::uint64_t filtered_dev = 0;
  std::uint64_t filtered_nonreg = 0;
  std::uint64_t filtered_internal = 0;
  std::uint64_t no_host = 0;
  std::uint64_t fd_unresolved = 0;
  std::uint64_t run_folios = 0;     // folios that went into coalesced runs (opening or extending)
  std::uint64_t decode_errors = 0;  // user side: malformed samples

  std::uint64_t emitted_of(event_kind k) const { return emitted[static_cast<std::size_t>(k)]; }
  std::uint64_t drops_of(event_kind k) const { return drops[static_cast<std::size_t>(k)]; }
  std::uint64_t total_emitted() const;
  std::uint64_t total_drops() const;
};

class tracer : public feed {
 public:
  // Needs CAP_BPF + CAP_PERFMON (or root). Fails only if no page-cache path works or a
  // non-optional step fails; optional groups (dirty, sharing) that cannot load are disabled
  // and reported in probe_report().
  static result<std::unique_ptr<tracer>> open(const tracer_options& options);

  tracer(const tracer&) = delete;
  tracer& operator=(const tracer&) = delete;
  ~tracer() override;

  // Waits up to timeout_ms (0: no wait, -1: forever) and delivers every available event to fn.
  // Open runs are flushed first. While coalescing, the wait is capped at
  // flush_interval_ms, so a caller that polls in a loop sees every run within about that long
  // even if its CPU inserts nothing more. Returns the number of records consumed;
  // 0 when interrupted by a signal (EINTR), so a caller's stop flag is checked promptly. An
  // exception thrown by fn stops consumption and is rethrown here.
  result<int> poll(int timeout_ms, const event_fn& fn) override;

  // Emits every CPU's open run into the ring buffer (a no-op when not coalescing).
  result<void> flush();
  // CLOCK_MONOTONIC ns at the start of the last flush() that reached every CPU: once the ring
  // buffer has been consumed after it, every record of a run opened before that time has been
  // delivered. Later records have ts_ns at or after it. 0 before the first.
  std::uint64_t flushed_before_ns() const override { return flushed_before_ns_; }
  bool coalescing() const { return coalescing_; }
  static constexpr int flush_interval_ms = 100;

  // For an external epoll loop: readable when poll() has work.
  int epoll_fd() const override;

  result<event_counters> counters() const;
  result<std::uint64_t> total_drops() const override {
    auto c = counters();
    if (!c) return c.err();
    return c->total_drops();
  }

  // Add or remove a superblock device at run time; only when opened with watch_devs non-empty
  // (the in-kernel filter is fixed at load).
  result<void> watch_dev(dev_t dev);
  result<void> unwatch_dev(dev_t dev);

  hook_path chosen_path() const { return chosen_; }
  std::string_view hook_name() const override { return to_string(chosen_); }
  const std::vector<probe_result>& probe_report() const { return report_; }
  std::uint64_t ring_buffer_bytes() const { return ring_bytes_; }
  bool filtering() const { return filtering_; }

 private:
  struct skel_deleter {
    void operator()(dupcache_bpf* skel) const;
  };
  struct ring_deleter {
    void operator()(ring_buffer* rb) const;
  };
  struct link_deleter {
    void operator()(bpf_link* link) const;
  };
  using skel_ptr = std::unique_ptr<dupcache_bpf, skel_deleter>;
  using ring_ptr = std::unique_ptr<ring_buffer, ring_deleter>;
  using link_ptr = std::unique_ptr<bpf_link, link_deleter>;

  struct attempt;  // one open->attach try (tracer.cpp)

  tracer() = default;
  static int on_sample(void* ctx, void* data, std::size_t size);
  int drain(int timeout_ms);  // ring_buffer__poll + consume: records, or -errno

  // Members are destroyed in reverse order: ring buffer, then links, then the BPF object.
  skel_ptr skel_;
  std::vector<link_ptr> links_;
  ring_ptr ring_;

  hook_path chosen_ = hook_path::tp_btf;
  std::vector<probe_result> report_;
  std::uint64_t ring_bytes_ = 0;
  bool filtering_ = false;
  bool coalescing_ = false;
  std::uint64_t flushed_before_ns_ = 0;
  int flush_fd_ = -1;  // dc_flush, owned by skel_
  std::array<std::uint64_t, 16> stranded_runs_{};  // open runs of CPUs gone offline, by kind

  const event_fn* callback_ = nullptr;  // valid only during poll()
  std::exception_ptr callback_error_;
  std::uint64_t decode_errors_ = 0;
};

// The live loop's opener (live::sampler_options::open_feed): a tracer batched for polling.
inline result<std::unique_ptr<feed>> open_feed(const feed_options& o) {
  tracer_options to;
  to.ring_buffer_bytes = o.ring_buffer_bytes;
  to.wakeup_fraction = o.wakeup_fraction;
  to.watch_devs = o.watch_devs;
  auto t = tracer::open(to);
  if (!t) return t.err();
  return std::unique_ptr<feed>(std::move(t.value()));
}

}  // namespace dupcache::trace
