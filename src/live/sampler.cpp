// SPDX-License-Identifier: GPL-2.0-only
#include "live/sampler.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "cgroup/accounting.hpp"
#include "util/proc.hpp"

namespace dupcache::live {

sampler::sampler(sampler_options opts)
    : opts_(std::move(opts)), wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

sampler::~sampler() = default;

void sampler::wake() {
  const std::uint64_t one = 1;
  if (wake_fd_) (void)!write(wake_fd_.get(), &one, sizeof one);
}

result<void> sampler::start() {
  controller_options co;
  co.scan = opts_.scan;
  co.scan.attribute = opts_.containers || !opts_.filter.empty();
  co.scan.keep_placements = opts_.keep_placements;
  if (co.scan.attribute) accounting_ = std::make_unique<cgroup::host_accounting>(opts_.metadata_root);
  controller_ = std::make_unique<controller>(co);

  std::string why_not;
  if (opts_.open_feed) {
    // Attach before seeding, so nothing that happens during the scan is missed; events that
    // touch files the scan already saw are applied afterwards (idempotent for the index).
    auto devs = superblock_devs(opts_.scan);
    if (!devs) return devs.err();
    trace::feed_options fo;
    fo.ring_buffer_bytes = opts_.ring_buffer_bytes;
    fo.wakeup_fraction = 8;  // batched; consume_until() polls at least every 100 ms
    fo.watch_devs = *devs;
    if (fo.watch_devs.empty()) {
      why_not = "nothing to watch";
    } else if (auto f = opts_.open_feed(fo)) {
      feed_ = std::move(f.value());
    } else {
      why_not = f.err().message();
    }
  } else {
    why_not = "disabled by --no-bpf";
  }
  if (auto r = controller_->seed(); !r) return r;
  if (feed_) {
    // What arrived during the seed may or may not be in the scan: re-resolve those inodes.
    auto drained = feed_->poll(0, [this](const trace::decoded_event& ev) { controller_->touch(ev); });
    if (!drained) return drained.err();
    controller_->set_horizon(feed_->flushed_before_ns());
    if (auto t = controller_->tick(); !t) return t;
    mode_ = "live (" + std::string(feed_->hook_name()) + ")";
  } else {
    mode_ = "rescan (no BPF: " + why_not + ")";
  }
  if (opts_.content_interval) {
    content_ = std::make_unique<content_job>(*opts_.content_interval);
    content_->offer(controller_->state());  // the first pass starts now, beside the first interval
  }
  last_ = std::chrono::steady_clock::now();
  last_counters_ = controller_->counters();
  return {};
}

// Applies events until the deadline or a wake(); without a feed, only waits.
result<void> sampler::consume_until(std::chrono::steady_clock::time_point deadline) {
  bool woken = false;
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline || woken) break;
    const int wait_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()) + 1;
    if (feed_) {
      pollfd fds[2] = {{feed_->epoll_fd(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
      ::poll(fds, 2, std::min(wait_ms, 100));
      if (fds[1].revents & POLLIN) woken = true;
      auto r = feed_->poll(0, [this](const trace::decoded_event& ev) { controller_->apply(ev); });
      if (!r) return r.err();
      if (auto d = feed_->total_drops()) controller_->note_drops(*d);
      controller_->set_horizon(feed_->flushed_before_ns());
      if (auto t = controller_->tick(); !t) return t;
    } else {
      pollfd fd{wake_fd_.get(), POLLIN, 0};
      if (::poll(&fd, 1, wait_ms) > 0) woken = true;
    }
  }
  if (woken && wake_fd_) {
    std::uint64_t v;
    (void)!read(wake_fd_.get(), &v, sizeof v);
  }
  return {};
}

result<sample> sampler::next() {
  if (auto r = consume_until(last_ + opts_.interval); !r) return r.err();
  if (!feed_) {
    if (auto r = controller_->seed(); !r) return r.err();
  } else if (auto t = controller_->tick(); !t) {
    return t.err();
  }
  const auto now = std::chrono::steady_clock::now();
  sample s;
  s.iteration = ++iteration_;
  s.elapsed_s = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  s.model = build_report(controller_->state(), ranks_);
  if (accounting_) {
    const auto& state = controller_->state();
    attach_containers(s.model, state, accounting_->rows(state), accounting_->error(state));
    filter_containers(s.model, opts_.filter);
  }
  if (content_) {
    // Only the list of cached paths crosses to the hashing thread; the figures attached are
    // those of its latest finished pass (see content_job.hpp).
    content_->offer(controller_->state());
    s.content_status = content_->attach(s.model, controller_->state());
  }
  s.model.files_scanned = controller_->known_files();
  s.page_cache_bytes = proc::meminfo_bytes("Cached").value_or(0);
  const auto& c = controller_->counters();
  const double ps = static_cast<double>(s.model.page_size);
  if (s.elapsed_s > 0) {
    s.insert_bps = static_cast<double>(c.inserted_pages - last_counters_.inserted_pages) * ps / s.elapsed_s;
    s.duplicate_insert_bps =
        static_cast<double>(c.duplicate_inserted_pages - last_counters_.duplicate_inserted_pages) * ps / s.elapsed_s;
    s.evict_bps = static_cast<double>(c.evicted_pages - last_counters_.evicted_pages) * ps / s.elapsed_s;
  }
  last_counters_ = c;
  s.lost_events = c.lost_events;
  s.applied_before_ns = feed_ ? controller_->applied_before_ns() : controller_->seed_started_ns();
  s.events = c.events;
  s.index_entries = controller_->state().files.size();
  s.rescans = c.rescans;
  s.compactions = c.compactions;
  s.late_records = c.late_records;
  s.audit_repairs = c.audit_repairs;
  s.live = feed_ != nullptr;
  s.mode = mode_;
  return s;
}

}  // namespace dupcache::live
