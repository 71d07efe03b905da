// SPDX-License-Identifier: GPL-2.0-only
#include "live/content_job.hpp"

#include <fmt/format.h>

#include <unordered_map>

#include "report/local.hpp"

namespace dupcache::live {

content_job::content_job(std::chrono::milliseconds interval) : interval_(interval), thread_([this] { run(); }) {}

content_job::~content_job() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void content_job::offer(const scan_result& state) {
  std::vector<std::string> paths;
  paths.reserve(state.files.size());
  for (const auto& f : state.files) {
    if (f.cached_bytes > 0 && !f.path.empty()) paths.push_back(f.path);
  }
  {
    std::lock_guard lock(mu_);
    wanted_ = std::move(paths);
    offered_ = true;
  }
  cv_.notify_all();
}

void content_job::run() {
  auto next_at = std::chrono::steady_clock::now();
  for (;;) {
    std::vector<std::string> paths;
    {
      std::unique_lock lock(mu_);
      // Wait for the interval to pass, and for an offer made since the last pass.
      cv_.wait_until(lock, next_at, [this] { return stop_; });
      if (stop_) return;
      cv_.wait(lock, [this] { return stop_ || offered_; });
      if (stop_) return;
      paths = std::move(wanted_);
      offered_ = false;
    }
    const auto began = std::chrono::steady_clock::now();
    next_at = began + interval_;
    finished f;
    if (!paths.empty()) {
      // The same entry point as `report --content`: a scan of just these files (each named as a
      // PATH), their resident pages hashed, equal ones confirmed byte for byte.
      local_report_request req;
      req.scan.paths = std::move(paths);
      req.views = {report_view::file};
      req.content = true;
      if (auto r = make_local_report(req); !r) {
        f.error = r.err().message();
      } else if (r->model.content) {
        f.content = std::move(*r->model.content);
        // The copy ids of the pass's scan, by path (attach() maps them onto the live ids).
        for (const auto& row : r->model.files) {
          if (row.copy >= f.paths.size()) f.paths.resize(row.copy + 1);
          f.paths[row.copy] = row.path;
        }
      }
    }
    f.at = std::chrono::steady_clock::now();
    f.took = f.at - began;
    std::lock_guard lock(mu_);
    latest_ = std::move(f);
  }
}

std::string content_job::attach(report_model& m, const scan_result& state) {
  std::optional<finished> f;
  {
    std::lock_guard lock(mu_);
    f = latest_;
  }
  if (!f) return "content: first pass running";
  if (!f->error.empty()) return "content: " + f->error;
  std::unordered_map<std::string, copy_id> live_ids;
  for (copy_id id = 0; id < state.files.size(); ++id) live_ids.emplace(state.files[id].path, id);
  auto remap = [&](const std::vector<std::uint64_t>& by_pass) {
    std::vector<std::uint64_t> out(state.files.size());
    for (std::size_t c = 0; c < by_pass.size() && c < f->paths.size(); ++c) {
      if (auto it = live_ids.find(f->paths[c]); it != live_ids.end()) out[it->second] = by_pass[c];
    }
    return out;
  };
  content_model c = f->content;
  c.copy_wasted_bytes = remap(f->content.copy_wasted_bytes);
  c.copy_duplicate_bytes = remap(f->content.copy_duplicate_bytes);
  for (auto& g : c.groups) {
    g.copies.clear();
    for (const auto& p : g.paths) {
      if (auto it = live_ids.find(p); it != live_ids.end()) g.copies.push_back(it->second);
    }
  }
  // The what-if beside the shared-extent waste of this sample.
  c.shareable_bytes = m.wasted_bytes + c.wasted_bytes;
  m.content = std::move(c);
  const double age = std::chrono::duration<double>(std::chrono::steady_clock::now() - f->at).count();
  return fmt::format("content pass {:.1f}s ago, took {:.1f}s, every {}s", age, f->took.count(),
                     std::chrono::duration<double>(interval_).count());
}

}  // namespace dupcache::live
