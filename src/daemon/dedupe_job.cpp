// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/dedupe_job.hpp"

#include <fmt/format.h>

#include "util/json_text.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

namespace dupcache::daemon {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

void dedupe_job::tick(const policy::config& cfg, std::chrono::steady_clock::time_point now) {
  if (running_.valid() && running_.wait_for(std::chrono::seconds(0)) == std::future_status::ready) record(running_.get());
  if (!cfg.dedupe || running_.valid() || (started_ && now < next_)) return;
  started_ = true;
  next_ = now + cfg.dedupe_interval;
  policy::dedupe_request req;
  req.paths = cfg.dedupe_paths.empty() ? cfg.watch_paths : cfg.dedupe_paths;
  req.dry_run = cfg.dry_run;
  req.rate_bytes_per_s = cfg.dedupe_rate_bytes_per_s;
  req.stop = &stop_;
  log::print(log::level::info, "dedupe: a pass over {} at most {}/s{}", fmt::join(req.paths, ", "),
             human_bytes(req.rate_bytes_per_s), req.dry_run ? " (dry run)" : "");
  running_ = std::async(std::launch::async, [req] { return policy::run_dedupe_pass(req); });
}

void dedupe_job::finish() {
  if (!running_.valid()) return;
  stop_ = true;
  record(running_.get());
}

void dedupe_job::record(const result<policy::dedupe_report>& r) {
  using json = nlohmann::ordered_json;
  if (!r) {
    ++counts_.actions[{"dedupe", "error"}];
    log::print(log::level::warning, "dedupe: {}", r.err().message());
    journal_.write({{"ts", now_s()}, {"event", "dedupe"}, {"result", "error"}, {"error", json_text(r.err().message())}});
    return;
  }
  for (const auto& a : r->actions) {
    const std::string result = !a.error.empty() ? "error" : r->dry_run ? "dry_run" : a.differs ? "differs" : "ok";
    ++counts_.actions[{"dedupe", result}];
    json j{{"ts", now_s()}, {"action", "dedupe"}, {"result", result}};
    put_path(j, "path", a.dst);
    put_path(j, "source", a.src);
    j["offset"] = a.offset;
    j["length"] = a.length;
    j["shared_bytes"] = a.shared_bytes;
    j["dry_run"] = r->dry_run;
    if (!a.error.empty()) j["error"] = json_text(a.error);
    journal_.write(j);
    if (!a.error.empty()) log::print(log::level::warning, "dedupe {}: {}", a.dst, a.error);
  }
  for (const auto& s : r->skipped) {
    ++counts_.actions[{"dedupe", "skipped"}];
    json j{{"ts", now_s()}, {"action", "dedupe"}, {"result", "skipped"}};
    put_path(j, "path", s.path);
    j["reason"] = json_text(s.reason);
    journal_.write(j);
  }
  for (const auto& e : r->errors) log::print(log::level::warning, "dedupe: {}", e);
  journal_.write({{"ts", now_s()},
                  {"event", "dedupe"},
                  {"result", r->stopped ? "stopped" : r->failed ? "error" : "ok"},
                  {"dry_run", r->dry_run},
                  {"files_examined", r->files_examined},
                  {"hashed_bytes", r->hashed_bytes},
                  {"planned_bytes", r->planned_bytes},
                  {"shared_bytes", r->shared_bytes},
                  {"already_shared_bytes", r->already_shared_bytes},
                  {"files_shared", r->files_shared},
                  {"skipped", r->skipped.size()},
                  {"errors", r->errors.size()}});
  log::print(log::level::info, "dedupe: {} {} in {} range(s) of {} file(s); {} already shared; {} skipped",
             r->dry_run ? "would share" : "shared", human_bytes(r->dry_run ? r->planned_bytes : r->shared_bytes),
             r->actions.size(), r->files_shared, human_bytes(r->already_shared_bytes), r->skipped.size());
}

}  // namespace dupcache::daemon
