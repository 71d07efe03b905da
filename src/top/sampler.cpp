// SPDX-License-Identifier: GPL-2.0-only
#include "top/sampler.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "report/remote.hpp"
#include "trace/tracer.hpp"
#include "util/proc.hpp"

namespace dupcache::top {

sampler::sampler(sampler_options opts) : opts_(std::move(opts)) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

sampler::~sampler() {
  if (wake_fd_ >= 0) close(wake_fd_);
}

void sampler::wake() {
  const std::uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
}

// One sample from the daemon: its sample_json() document, turned back into a sample.
result<sample> sampler::remote_sample() {
  nlohmann::json req{{"sample", true}, {"containers", opts_.filter.containers}, {"cgroups", opts_.filter.cgroups}};
  auto answer = ask_daemon(opts_.from_daemon, req.dump());
  if (!answer) return answer.err();
  try {
    const auto j = nlohmann::json::parse(*answer);
    sample s;
    s.model = report_from_json(j);
    s.page_cache_bytes = j.value("page_cache_bytes", std::uint64_t{0});
    s.insert_bps = j["rates"].value("insert_bytes_per_s", 0.0);
    s.duplicate_insert_bps = j["rates"].value("duplicate_insert_bytes_per_s", 0.0);
    s.evict_bps = j["rates"].value("evict_bytes_per_s", 0.0);
    s.events = j.value("events", std::uint64_t{0});
    s.lost_events = j.value("lost_events", std::uint64_t{0});
    s.mode = "daemon, " + j.value("mode", std::string("?"));
    s.live = s.mode.find("live") != std::string::npos;
    return s;
  } catch (const std::exception& e) {
    return plain_error("read the daemon's sample", e.what());
  }
}

result<void> sampler::start() {
  if (!opts_.from_daemon.empty()) {
    auto s = remote_sample();
    if (!s) return s.err();
    mode_ = s->mode;
    last_ = std::chrono::steady_clock::now();
    return {};
  }
  live::controller_options co;
  co.scan = opts_.scan;
  co.scan.attribute = opts_.containers || !opts_.filter.empty();
  co.scan.keep_placements = opts_.keep_placements;
  if (co.scan.attribute) accounting_ = std::make_unique<cgroup::host_accounting>(opts_.metadata_root);
  controller_ = std::make_unique<live::controller>(co);

  std::string why_not;
  if (opts_.use_bpf) {
    // Attach before seeding, so nothing that happens during the scan is missed; events that
    // touch files the scan already saw are applied afterwards (idempotent for the index).
    auto devs = live::superblock_devs(opts_.scan);
    if (!devs) return devs.err();
    trace::tracer_options to;
    to.ring_buffer_bytes = opts_.ring_buffer_bytes;
    to.wakeup_fraction = 8;  // batched; the loop below polls at least every 100 ms
    to.watch_devs = *devs;
    if (to.watch_devs.empty()) {
      why_not = "nothing to watch";
    } else if (auto t = trace::tracer::open(to)) {
      tracer_ = std::move(t.value());
    } else {
      why_not = t.err().message();
    }
  } else {
    why_not = "disabled by --no-bpf";
  }
  if (auto r = controller_->seed(); !r) return r;
  if (tracer_) {
    // What arrived during the seed may or may not be in the scan: re-resolve those inodes.
    auto drained = tracer_->poll(0, [this](const trace::decoded_event& ev) { controller_->touch(ev); });
    if (!drained) return drained.err();
    controller_->set_horizon(tracer_->flushed_before_ns());
    if (auto t = controller_->tick(); !t) return t;
    mode_ = "live (" + std::string(trace::to_string(tracer_->chosen_path())) + ")";
  } else {
    mode_ = "rescan (no BPF: " + why_not + ")";
  }
  last_ = std::chrono::steady_clock::now();
  last_counters_ = controller_->counters();
  return {};
}

result<sample> sampler::next() {
  const auto deadline = last_ + opts_.interval;
  bool woken = false;
  if (!opts_.from_daemon.empty()) {
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd fd{wake_fd_, POLLIN, 0};
    if (wait.count() > 0 && ::poll(&fd, 1, static_cast<int>(wait.count())) > 0) {
      std::uint64_t v;
      (void)!read(wake_fd_, &v, sizeof v);
    }
    auto s = remote_sample();
    if (!s) return s.err();
    const auto now = std::chrono::steady_clock::now();
    s->iteration = ++iteration_;
    s->elapsed_s = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    mode_ = s->mode;
    return s;
  }
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline || woken) break;
    const int wait_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()) + 1;
    if (tracer_) {
      pollfd fds[2] = {{tracer_->epoll_fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      ::poll(fds, 2, std::min(wait_ms, 100));
      if (fds[1].revents & POLLIN) woken = true;
      auto r = tracer_->poll(0, [this](const trace::decoded_event& ev) { controller_->apply(ev); });
      if (!r) return r.err();
      if (auto c = tracer_->counters()) controller_->note_drops(c->total_drops());
      controller_->set_horizon(tracer_->flushed_before_ns());
      if (auto t = controller_->tick(); !t) return t.err();
    } else {
      pollfd fd{wake_fd_, POLLIN, 0};
      if (::poll(&fd, 1, wait_ms) > 0) woken = true;
    }
  }
  if (woken && wake_fd_ >= 0) {
    std::uint64_t v;
    (void)!read(wake_fd_, &v, sizeof v);
  }
  if (!tracer_) {
    if (auto r = controller_->seed(); !r) return r.err();
  } else if (auto t = controller_->tick(); !t) {
    return t.err();
  }
  const auto now = std::chrono::steady_clock::now();
  sample s;
  s.iteration = ++iteration_;
  s.elapsed_s = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  s.model = build_report(controller_->state());
  if (accounting_) {
    const auto& state = controller_->state();
    attach_containers(s.model, state, accounting_->rows(state), accounting_->error(state));
    filter_containers(s.model, opts_.filter);
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
  s.events = c.events;
  s.live = tracer_ != nullptr;
  s.mode = mode_;
  return s;
}

}  // namespace dupcache::top
