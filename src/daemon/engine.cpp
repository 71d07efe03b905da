// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/engine.hpp"

#include <fmt/format.h>
#include <systemd/sd-daemon.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <tuple>

#include "daemon/control.hpp"
#include "daemon/dedupe_job.hpp"
#include "daemon/journal.hpp"
#include "daemon/metrics.hpp"
#include "daemon/triggers.hpp"
#include "live/sampler.hpp"
#include "policy/canonical.hpp"
#include "policy/evict.hpp"
#include "policy/in_use.hpp"
#include "policy/merge.hpp"
#include "policy/plan.hpp"
#include "policy/scope.hpp"
#include "trace/tracer.hpp"
#include "util/json_text.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

namespace dupcache::daemon {

using log::level;

namespace {

// Per file: when it may be acted on again, and how long it backs off after a refault.
struct file_state {
  std::chrono::steady_clock::time_point not_before{};
  std::chrono::milliseconds backoff{0};
  std::chrono::steady_clock::time_point evicted_at{};
  std::uint64_t cached_after = 0;  // its cached bytes right after the action
  bool watching = false;           // within the refault window of an eviction
};

}  // namespace

class engine::loop {
 public:
  loop(policy::config cfg, overrides o) : cfg_(std::move(cfg)), over_(std::move(o)) {
    if (over_.dry_run) cfg_.dry_run = true;
    std::uint64_t usec = 0;
    watchdog_ = sd_watchdog_enabled(0, &usec) > 0;
    live::sampler_options so;
    so.scan.paths = cfg_.watch_paths;
    so.interval = interval();
    so.open_feed = trace::open_feed;
    so.containers = cfg_.needs_containers();
    so.metadata_root = cfg_.metadata_root;
    so.keep_placements = true;
    sampler_ = std::make_unique<live::sampler>(std::move(so));
  }

  void wake() { sampler_->wake(); }

  bool run(bool (*stop_requested)(), bool (*reload_requested)()) {
    if (auto r = open_outputs(); !r) {
      log::print(level::err, "{}", r.err().message());
      return false;
    }
    auto& smp = *sampler_;
    if (auto r = smp.start(); !r) {
      log::print(level::err, "cannot start: {}", r.err().message());
      return false;
    }
    if (cfg_.merge) open_module();
    log::print(level::info, "watching {}; {}; {}", cfg_.watch_paths.empty() ? "every filesystem that can share extents" : fmt::format("{}", fmt::join(cfg_.watch_paths, ", ")),
        smp.mode(), cfg_.dry_run ? "dry run: nothing will be changed" : "acting");
    sd_notify(0, "READY=1\nSTATUS=seeded, watching");
    while (!stop_requested()) {
      auto s = smp.next();
      if (!s) {
        log::print(level::err, "{}", s.err().message());
        sd_notify(0, "STOPPING=1");
        return false;
      }
      if (stop_requested()) break;
      if (reload_requested()) reload();
      step(std::move(*s));
      dedupe_.tick(cfg_, std::chrono::steady_clock::now());
    }
    dedupe_.finish();
    log::print(level::info, "stopping: freed {} in {} action(s)", human_bytes(counts_.freed_bytes), actions_taken_);
    sd_notify(0, "STOPPING=1");
    return true;
  }

 private:
  std::chrono::milliseconds interval() const {
    auto iv = cfg_.interval;
    std::uint64_t usec = 0;
    if (watchdog_ && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
      iv = std::min(iv, std::chrono::milliseconds(std::max<std::uint64_t>(usec / 2000, 100)));
    }
    return iv;
  }

  result<void> open_outputs() {
    if (!cfg_.journal_path.empty()) {
      if (auto r = journal_.open(cfg_.journal_path, cfg_.journal_max_bytes, cfg_.journal_keep); !r) return r;
    }
    if (!cfg_.metrics_listen.empty()) {
      metrics_ = std::make_unique<metrics_server>();
      if (auto r = metrics_->start(cfg_.metrics_listen); !r) return r;
      log::print(level::info, "metrics on http://{}/metrics", cfg_.metrics_listen);
    }
    if (!cfg_.control_socket.empty()) {
      const auto slash = cfg_.control_socket.rfind('/');
      if (slash != std::string::npos && slash > 0) ::mkdir(cfg_.control_socket.substr(0, slash).c_str(), 0755);
      control_ = std::make_unique<control_server>();
      if (auto r = control_->start(cfg_.control_socket); !r) return r;
    }
    return {};
  }

  void reload() {
    auto next = policy::load_config(over_.config_path);
    if (!next) {
      log::print(level::err, "SIGHUP: {}; keeping the configuration in force", next.err().reason());
      journal_.write({{"ts", now_s()}, {"event", "reload"}, {"result", "rejected"}, {"error", json_text(next.err().reason())}});
      return;
    }
    if (next->watch_paths != cfg_.watch_paths || next->needs_containers() != cfg_.needs_containers() ||
        next->metrics_listen != cfg_.metrics_listen || next->journal_path != cfg_.journal_path ||
        next->interval != cfg_.interval || next->control_socket != cfg_.control_socket) {
      log::print(level::warning, "SIGHUP: [watch], [metrics] listen, [journal] path, [policy] interval and container scope "
                   "take effect at restart; the rest applies now");
      next->watch_paths = cfg_.watch_paths;
      next->metrics_listen = cfg_.metrics_listen;
      next->journal_path = cfg_.journal_path;
      next->interval = cfg_.interval;
      next->control_socket = cfg_.control_socket;
      if (next->needs_containers() && !cfg_.needs_containers()) {
        next->containers.clear();
        next->cgroups.clear();
        next->exclude_containers.clear();
        next->exclude_cgroups.clear();
        next->priority.clear();
      }
    }
    if (over_.dry_run) next->dry_run = true;
    cfg_ = std::move(*next);
    if (cfg_.merge && !module_) open_module();
    log::print(level::info, "SIGHUP: configuration {} reloaded", over_.config_path);
    journal_.write({{"ts", now_s()}, {"event", "reload"}, {"result", "ok"}});
  }

  // The companion module, when "merge" is asked for; where it is absent, say what happens instead.
  void open_module() {
    auto m = policy::merge_module::open();
    if (m) {
      module_.emplace(std::move(*m));
      log::print(level::info, "merge: companion module ABI {}: mapped duplicates are merged onto canonical copies", module_->version());
      return;
    }
    module_.reset();
    log::print(level::notice, "merge: {}; mapped duplicates are {}", "companion module " + m.err().reason(),
        cfg_.pageout ? "paged out and evicted instead" : "left alone (add \"pageout\" to [policy] actions)");
  }

  // Merges every process's mappings of in-scope duplicated copies; the eviction that follows
  // frees the copies the mappings were moved off.
  void merge(const scan_result& st, const std::function<bool(copy_id)>& scope, const std::string& why) {
    policy::merge_options mo;
    mo.all = true;
    mo.dry_run = cfg_.dry_run;
    mo.in_scope = scope;
    // A target that does not return to user space must not hold the loop up for long.
    mo.timeout_ms = 1000;
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(refused_, [&](const auto& r) { return r.second <= now; });
    mo.skip = [&](int pid, std::uint64_t start, std::uint64_t end) { return refused_.count({pid, start, end}) > 0; };
    const auto run = policy::merge_mapped(st, *module_, mo);
    for (const auto& m : run.done) {
      // Refused or failed: not asked again for a cooldown (10 min at least), nor journaled again.
      if (!m.merged && !m.error.empty()) refused_[{m.pid, m.start, m.end}] = now + std::max<std::chrono::milliseconds>(cfg_.cooldown, std::chrono::minutes(10));
      const std::string result = m.merged ? "ok" : !m.refusal.empty() ? "refused" : !m.error.empty() ? "error" : "dry_run";
      ++counts_.actions[{"merge", result}];
      nlohmann::ordered_json j{{"ts", now_s()}, {"action", "merge"}, {"result", result}, {"pid", m.pid},
                               {"start", fmt::format("{:#x}", m.start)}, {"end", fmt::format("{:#x}", m.end)},
                               {"why", why}};
      put_path(j, "path", m.path);
      put_path(j, "canonical", m.canonical);
      if (!m.refusal.empty()) j["refusal"] = m.refusal;
      if (!m.error.empty()) j["error"] = json_text(m.error);
      journal_.write(j);
      if (m.merged) log::print(level::info, "merged pid {} {:x}-{:x} {} onto {}", m.pid, m.start, m.end, m.path, m.canonical);
      else if (!m.error.empty()) log::print(level::notice, "merge: {}", m.error);
    }
    // Removing unmapped canonical copies reads every process's map_files: once a minute at most.
    if (cfg_.dry_run || now < next_collect_) return;
    next_collect_ = now + std::chrono::minutes(1);
    std::vector<std::string> errors;
    const auto removed = policy::collect_canonical(policy::canonical_mounts(st), &errors);
    if (removed) log::print(level::info, "merge: removed {} canonical cop{} nobody maps", removed, removed == 1 ? "y" : "ies");
    for (const auto& e : errors) log::print(level::warning, "merge: {}", e);
  }

  static double now_s() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  }

  void step(live::sample&& s) {
    const auto* ctl = sampler_->live_controller();
    const auto& state = ctl->state();
    check_refaults(state);
    proc_readings readings(cfg_.pressure_file);
    const std::string why = triggered(cfg_, s.model, acting_, readings);
    if (!why.empty() && !acting_) log::print(level::notice, "acting: {}", why);
    if (why.empty() && acting_) log::print(level::notice, "stopped acting: wasted {}", human_bytes(s.model.wasted_bytes));
    acting_ = !why.empty();
    if (acting_) act(*ctl, s, why);
    publish(s, state, ctl);
    // Only what changed, and the watchdog only when systemd asked for it: sd_notify blocks when
    // the manager's queue is full.
    std::string status = fmt::format("STATUS=wasted {} of {} cached; freed {} in {} action(s){}",
                                     human_bytes(s.model.wasted_bytes), human_bytes(s.model.cached_bytes),
                                     human_bytes(counts_.freed_bytes), actions_taken_, acting_ ? "; acting" : "");
    std::string msg = status == last_status_ ? std::string() : status;
    if (watchdog_) msg += std::string(msg.empty() ? "" : "\n") + "WATCHDOG=1";
    if (!msg.empty()) sd_notify(0, msg.c_str());
    last_status_ = std::move(status);
    if (control_) control_->publish(std::move(s));  // last: the sample is handed over
  }

  void act(const live::controller& ctl, const live::sample& s, const std::string& why) {
    const auto& st = ctl.state();
    const auto now = std::chrono::steady_clock::now();
    const policy::scope sc(policy::scope_rules_of(cfg_), st, s.model.containers);
    auto scope = [&](copy_id c) { return sc.in_scope(c); };
    if (cfg_.merge && module_) merge(st, scope, why);
    // Which copies processes use now: the keepers are chosen among them (one walk of /proc).
    const auto in_use = st.index.wasted_bytes() > 0 ? policy::files_in_use::collect() : policy::files_in_use{};
    auto plans = policy::plan_evictions(st, cfg_.keep, [&](copy_id c) {
      policy::copy_facts f;
      f.in_use = in_use.holds_copy(st, c);
      f.live_container = sc.live_container(c);
      const std::uint64_t live_ns = ctl.last_insert_ns(c);
      // Recently inserted first; copies not touched since the seed by how much they cache.
      f.heat = live_ns ? live_ns : st.files[c].cached_bytes / st.index.page_size();
      f.priority = sc.priority(c);
      // Canonical copies are what merged processes map: never the ones to evict, and the keepers
      // of their blocks (policy/plan.hpp).
      f.canonical = policy::is_canonical(st.files[c].path.str());
      f.evictable = scope(c) && !f.canonical;
      if (f.evictable) {
        if (auto it = files_.find(st.index.key_of(c)); it != files_.end() && now < it->second.not_before) f.evictable = false;
      }
      return f;
    });
    const double secs = std::chrono::duration<double>(interval()).count();
    const auto budget = static_cast<std::uint64_t>(static_cast<double>(cfg_.rate_limit_bytes_per_s) * secs);
    std::uint64_t spent = 0;
    policy::evictor ev(st, cfg_.dry_run, cfg_.pageout);
    std::vector<copy_id> acted;
    for (const auto& p : plans) {
      if (spent + st.index.page_size() > budget) break;
      auto o = ev.run(p, budget - spent);
      spent += o.planned_bytes;
      if (!cfg_.dry_run && o.planned_bytes > 0) acted.push_back(p.copy);
      record(st, p, o, why, now);
    }
    // The next pass plans from the live model. The copies acted on are re-read from the kernel
    // at the next tick rather than left to their events: pages a reader brought in while they
    // were evicted or paged out are counted (and evicted next pass), and a copy already
    // dropped is never planned again from removals still on their way.
    sampler_->recheck(acted);
  }

  void record(const scan_result& st, const policy::copy_plan& p, const policy::evict_outcome& o,
              const std::string& why, std::chrono::steady_clock::time_point now) {
    const std::string result = !o.error.empty()   ? "error"
                               : cfg_.dry_run      ? "dry_run"
                               : o.freed_bytes > 0 ? "ok"
                                                   : "nothing_freed";
    ++counts_.actions[{"evict", result}];
    counts_.freed_bytes += o.freed_bytes;
    counts_.planned_bytes += o.planned_bytes;
    if (result == "ok") ++actions_taken_;
    auto& fs = files_[st.index.key_of(p.copy)];
    if (fs.backoff.count() == 0) fs.backoff = cfg_.cooldown;
    fs.not_before = now + fs.backoff;
    if (!cfg_.dry_run && o.freed_bytes > 0) {
      fs.evicted_at = now;
      fs.watching = true;
      fs.cached_after = st.files[p.copy].cached_bytes > o.freed_bytes ? st.files[p.copy].cached_bytes - o.freed_bytes : 0;
    }
    nlohmann::ordered_json j{{"ts", now_s()}, {"action", "evict"}, {"result", result}};
    j.update(policy::outcome_json(o));
    j["why"] = why;
    j["dry_run"] = cfg_.dry_run;
    if (auto r = journal_.write(j); !r) log::print(level::warning, "{}", r.err().message());
    if (!o.error.empty()) log::print(level::warning, "evict {}: {}", o.path, o.error);
    else log::print(level::info, "{} {} of {} (kept {})", cfg_.dry_run ? "would evict" : "evicted",
             human_bytes(cfg_.dry_run ? o.planned_bytes : o.freed_bytes), o.path, o.kept_path);
  }

  // An evicted copy whose pages come back within the refault window was needed: back off.
  void check_refaults(const scan_result& st) {
    const auto now = std::chrono::steady_clock::now();
    const std::uint64_t ps = st.index.page_size();
    for (auto next = files_.begin(); next != files_.end();) {
      const auto cur = next++;
      const copy_key& key = cur->first;
      file_state& fs = cur->second;
      // Past its cooldown and never read back: nothing to remember. One read back (its backoff
      // grew): remembered for one more backoff of quiet. So the map holds the files acted on
      // lately, not every file ever acted on (files come and go on a busy host).
      const auto memory = fs.backoff > cfg_.cooldown ? fs.backoff : std::chrono::milliseconds{0};
      if (!fs.watching && now > fs.not_before + memory) {
        files_.erase(cur);
        continue;
      }
      if (!fs.watching) continue;
      if (now - fs.evicted_at > cfg_.refault_window) {
        fs.watching = false;
        continue;
      }
      auto c = st.index.find_copy(key);
      if (!c || *c >= st.files.size()) continue;
      const std::uint64_t cached = st.files[*c].cached_bytes;
      if (cached < fs.cached_after + ps) continue;
      fs.watching = false;
      fs.backoff = std::min(cfg_.max_backoff, std::max(cfg_.cooldown, fs.backoff) * 2);
      fs.not_before = now + fs.backoff;
      ++counts_.refaults;
      log::print(level::notice, "{} was read back in ({} since the eviction): backing off for {} s", st.files[*c].path,
          human_bytes(cached - fs.cached_after), fs.backoff.count() / 1000.0);
      nlohmann::ordered_json j{{"ts", now_s()}, {"event", "backoff"}};
      put_path(j, "path", st.files[*c].path.str());
      j["refault_bytes"] = cached - fs.cached_after;
      j["backoff_s"] = fs.backoff.count() / 1000.0;
      journal_.write(j);
    }
  }

  void publish(const live::sample& s, const scan_result& st, const live::controller* ctl) {
    if (!metrics_ && cfg_.metrics_textfile.empty()) return;
    metrics_input in;
    in.model = &s.model;
    in.index = &st.index;
    in.events = s.events;
    in.lost_events = s.lost_events;
    in.actions = &counts_;
    in.triggered = acting_;
    in.dry_run = cfg_.dry_run;
    in.live = s.live;
    (void)ctl;
    std::string text = render_metrics(in);
    if (!cfg_.metrics_textfile.empty()) {
      if (auto r = write_textfile(cfg_.metrics_textfile, text); !r) log::print(level::warning, "{}", r.err().message());
    }
    if (metrics_) metrics_->publish(std::move(text));
  }

  policy::config cfg_;
  const overrides over_;
  std::unique_ptr<live::sampler> sampler_;
  journal journal_;
  std::unique_ptr<metrics_server> metrics_;
  std::unique_ptr<control_server> control_;
  action_counts counts_;
  dedupe_job dedupe_{journal_, counts_};
  std::optional<policy::merge_module> module_;
  std::map<std::tuple<int, std::uint64_t, std::uint64_t>, std::chrono::steady_clock::time_point> refused_;
  std::chrono::steady_clock::time_point next_collect_{};
  std::uint64_t actions_taken_ = 0;
  bool acting_ = false;
  std::map<copy_key, file_state> files_;
  std::string last_status_;
  bool watchdog_ = false;
};

engine::engine(policy::config cfg, overrides o) : loop_(std::make_unique<loop>(std::move(cfg), std::move(o))) {}
engine::~engine() = default;
void engine::wake() { loop_->wake(); }
bool engine::run(bool (*stop_requested)(), bool (*reload_requested)()) { return loop_->run(stop_requested, reload_requested); }

}  // namespace dupcache::daemon
