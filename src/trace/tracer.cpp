// SPDX-License-Identifier: GPL-2.0-only
#include "trace/tracer.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <utility>

#include "dupcache.skel.h"
#include "trace/abi_check.hpp"
#include "trace/libbpf_log.hpp"
#include "util/clock.hpp"

namespace dupcache::trace {

namespace {

// Slot 0 of a PERCPU_ARRAY map, one value per possible CPU.
template <typename T>
result<std::vector<T>> read_per_cpu(const bpf_map* map, const char* name) {
  static_assert(sizeof(T) % 8 == 0, "per-CPU values are copied with an 8-byte stride");
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return errno_error("trace: count possible CPUs", -ncpu);
  std::vector<T> out(static_cast<std::size_t>(ncpu));
  std::uint32_t key = 0;
  if (int err = bpf_map__lookup_elem(map, &key, sizeof(key), out.data(), out.size() * sizeof(T), 0))
    return errno_error(std::string("trace: read ") + name + " map", -err);
  return out;
}

std::vector<bpf_program*> path_programs(dupcache_bpf* s, hook_path path) {
  switch (path) {
    case hook_path::fentry:
      return {s->progs.dc_add_fexit, s->progs.dc_delete_fentry, s->progs.dc_delete_batch_fentry};
    case hook_path::tp_btf: return {s->progs.dc_add_btf, s->progs.dc_delete_btf};
    case hook_path::raw_tp: return {s->progs.dc_add_raw, s->progs.dc_delete_raw};
  }
  return {};
}

bpf_program* dirty_program(dupcache_bpf* s, dirty_variant v) {
  return v == dirty_variant::tp_btf ? s->progs.dc_dirty_btf : s->progs.dc_dirty_raw;
}

std::vector<bpf_program*> sharing_programs(dupcache_bpf* s) {
  return {s->progs.dc_sys_ioctl,          s->progs.dc_sys_copy_file_range,      s->progs.dc_sys_ftruncate,
          s->progs.dc_sys_truncate,       s->progs.dc_sys_fallocate,            s->progs.dc_sys_exit_ioctl,
          s->progs.dc_sys_exit_copy_file_range, s->progs.dc_sys_exit_ftruncate, s->progs.dc_sys_exit_truncate,
          s->progs.dc_sys_exit_fallocate};
}

std::vector<bpf_program*> all_programs(dupcache_bpf* s) {
  std::vector<bpf_program*> out;
  bpf_program* prog = nullptr;
  while ((prog = bpf_object__next_program(s->obj, prog)) != nullptr) out.push_back(prog);
  return out;
}

std::string section_list(const std::vector<bpf_program*>& progs) {
  std::string out;
  for (auto* p : progs) {
    if (!out.empty()) out += ", ";
    out += bpf_program__section_name(p);
  }
  return out;
}

bool contains_program(const std::vector<bpf_program*>& progs, std::string_view name) {
  return std::any_of(progs.begin(), progs.end(),
                     [&](bpf_program* p) { return name == bpf_program__name(p); });
}

result<std::uint64_t> ring_size_for(std::uint64_t requested) {
  long page = ::sysconf(_SC_PAGESIZE);
  std::uint64_t min = page > 0 ? static_cast<std::uint64_t>(page) : 4096;
  constexpr std::uint64_t max = std::uint64_t{1} << 30;
  if (requested > max)
    return plain_error("trace: size ring buffer", std::to_string(requested) + " bytes is over the 1 GiB limit");
  return std::bit_ceil(std::max(requested, min));
}

// libbpf attaches tp/ programs with perf_event_open on the tracepoint id it reads from
// tracefs (/sys/kernel/tracing, then /sys/kernel/debug/tracing). Without a mounted tracefs the
// sharing group cannot attach; mount it where the kernel provides the mount point.
std::optional<probe_result> ensure_tracefs() {
  struct stat st {};
  if (::stat("/sys/kernel/tracing/events", &st) == 0 || ::stat("/sys/kernel/debug/tracing/events", &st) == 0)
    return std::nullopt;
  if (::mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) == 0)
    return probe_result{"tracefs", probe_status::enabled, "mounted tracefs on /sys/kernel/tracing (none was mounted)"};
  int err = errno;
  return probe_result{"tracefs", probe_status::disabled,
                      "trace: mount tracefs on /sys/kernel/tracing failed: " + errno_reason(err)};
}

}  // namespace

// ---- names ------------------------------------------------------------------------------------

std::string_view to_string(probe_status status) {
  switch (status) {
    case probe_status::chosen: return "chosen";
    case probe_status::rejected: return "rejected";
    case probe_status::not_tried: return "not tried";
    case probe_status::enabled: return "enabled";
    case probe_status::disabled: return "disabled";
  }
  return "unknown";
}

std::uint64_t event_counters::total_emitted() const {
  std::uint64_t sum = 0;
  for (auto v : emitted) sum += v;
  return sum;
}

std::uint64_t event_counters::total_drops() const {
  std::uint64_t sum = 0;
  for (auto v : drops) sum += v;
  return sum;
}

void tracer::skel_deleter::operator()(dupcache_bpf* skel) const { dupcache_bpf__destroy(skel); }
void tracer::ring_deleter::operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
void tracer::link_deleter::operator()(bpf_link* link) const { bpf_link__destroy(link); }

tracer::~tracer() = default;

// ---- one open -> attach attempt ---------------------------------------------------------------

struct tracer::attempt {
  // What to enable.
  hook_path path = hook_path::tp_btf;
  std::optional<dirty_variant> dirty;
  bool sharing = false;
  bool coalesce = false;

  // Results, moved into the tracer on success.
  skel_ptr skel;
  std::vector<link_ptr> links;
  std::vector<bpf_program*> enabled;

  // On failure: what failed, which program libbpf blamed (empty if none), and whether trying
  // another hook set is pointless (the object itself is wrong).
  error failure;
  std::string blamed;
  bool fatal = false;

  bool run(const tracer_options& options, std::uint64_t ring_bytes, libbpf_log& log);

 private:
  bool fail(std::string action, int err, const libbpf_log* log, std::string blamed_prog = {});
};

bool tracer::attempt::fail(std::string action, int err, const libbpf_log* log, std::string blamed_prog) {
  std::string detail = errno_reason(err);
  if (log != nullptr) {
    // Only here, once the features allowed the hook and the kernel still refused it, does
    // libbpf's wording decide which program to blame.
    auto blame = read_blame(log->text());
    if (blamed_prog.empty()) blamed_prog = std::move(blame.program);
    if (!blame.summary.empty()) detail += ": " + blame.summary;
  }
  failure = error{std::move(action), err, std::move(detail)};
  blamed = std::move(blamed_prog);
  return false;
}

bool tracer::attempt::run(const tracer_options& options, std::uint64_t ring_bytes, libbpf_log& log) {
  const std::string where = "trace[" + std::string(to_string(path)) + "]: ";

  // 1. open
  log.clear();
  skel.reset(dupcache_bpf__open());
  if (!skel) return fail(where + "open BPF object", errno, &log);

  // 2. configure rodata and map sizes
  if (skel->rodata->abi_version != DUPCACHE_BPF_ABI_VERSION) {
    failure = plain_error(where + "check BPF ABI version",
                          "object has " + std::to_string(skel->rodata->abi_version) + ", loader expects " +
                              std::to_string(DUPCACHE_BPF_ABI_VERSION) + " (stale dupcache.skel.h?)");
    fatal = true;
    return false;
  }
  skel->rodata->filter_devs = !options.watch_devs.empty();
  skel->rodata->wakeup_bytes = options.wakeup_fraction > 0 ? ring_bytes / options.wakeup_fraction : 0;
  skel->rodata->coalesce = coalesce;
  skel->rodata->fiemap_events = options.fiemap_events;
  if (int err = bpf_map__set_max_entries(skel->maps.events, static_cast<std::uint32_t>(ring_bytes)))
    return fail(where + "size ring buffer", -err, &log);

  // 3. choose programs: everything off, then exactly the chosen set on
  for (auto* prog : all_programs(skel.get())) bpf_program__set_autoload(prog, false);
  enabled = path_programs(skel.get(), path);
  if (dirty) enabled.push_back(dirty_program(skel.get(), *dirty));
  if (sharing) {
    auto progs = sharing_programs(skel.get());
    enabled.insert(enabled.end(), progs.begin(), progs.end());
  }
  for (auto* prog : enabled) bpf_program__set_autoload(prog, true);
  // Loaded, never attached: run on demand by flush().
  if (coalesce) bpf_program__set_autoload(skel->progs.dc_flush, true);

  // 4. load
  log.clear();
  if (int err = dupcache_bpf__load(skel.get())) return fail(where + "load BPF programs", -err, &log);

  // 5. watched devices: before attach, so no unfiltered event is ever produced
  for (dev_t dev : options.watch_devs) {
    std::uint32_t key = kernel_dev_from(dev);
    std::uint8_t value = 1;
    if (int err = bpf_map__update_elem(skel->maps.watched_devs, &key, sizeof(key), &value, sizeof(value), BPF_ANY))
      return fail(where + "add device " + std::to_string(major(dev)) + ":" + std::to_string(minor(dev)) +
                      " to watched_devs",
                  -err, nullptr);
  }

  // 6. attach, one program at a time so a failure names its hook
  for (auto* prog : enabled) {
    log.clear();
    bpf_link* link = bpf_program__attach(prog);
    if (link == nullptr) {
      int err = errno;
      return fail(where + "attach " + bpf_program__section_name(prog), err, &log, bpf_program__name(prog));
    }
    links.emplace_back(link);
  }

  // 7. coalescing needs dc_flush to run on a chosen CPU; try it once on CPU 0 before relying on it
  if (coalesce) {
    LIBBPF_OPTS(bpf_test_run_opts, run_opts, .flags = BPF_F_TEST_RUN_ON_CPU, .cpu = 0);
    if (int err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.dc_flush), &run_opts)) {
      fail(where + "run dc_flush on CPU 0 (BPF_PROG_TEST_RUN, BPF_F_TEST_RUN_ON_CPU)", -err, nullptr,
           bpf_program__name(skel->progs.dc_flush));
      return false;
    }
  }
  return true;
}

// ---- open -------------------------------------------------------------------------------------

result<std::unique_ptr<tracer>> tracer::open(const tracer_options& options) {
  if (options.paths.empty()) return plain_error("trace: choose hooks", "no page-cache hook path allowed");
  if (options.watch_devs.size() > DUPCACHE_MAX_WATCHED_DEVS)
    return plain_error("trace: configure device filter",
                       std::to_string(options.watch_devs.size()) + " devices, at most " +
                           std::to_string(DUPCACHE_MAX_WATCHED_DEVS));
  auto ring_bytes = ring_size_for(options.ring_buffer_bytes);
  if (!ring_bytes) return ring_bytes.err();

  libbpf_log log;  // also serializes opens: libbpf's print callback is process-global

  std::unique_ptr<tracer> t(new tracer());
  t->ring_bytes_ = ring_bytes.value();
  t->filtering_ = !options.watch_devs.empty();
  if (options.sharing_events && options.mount_tracefs) {
    if (auto mounted = ensure_tracefs()) t->report_.push_back(std::move(*mounted));
  }

  // Feature checks first: a hook the kernel cannot take is reported and never tried.
  const kernel_features features = probe_kernel();
  bool sharing = options.sharing_events;
  if (sharing) {
    if (auto why = sharing_unavailable(features); !why.empty()) {
      t->report_.push_back({"sharing:syscalls", probe_status::rejected, std::move(why)});
      sharing = false;
    }
  }
  bool coalesce = options.coalesce;
  std::string coalesce_reason = options.coalesce ? "" : "turned off by options";
  std::set<dirty_variant> dirty_failed;
  if (options.dirty_events) {
    for (auto v : {dirty_variant::tp_btf, dirty_variant::raw_tp}) {
      if (auto why = dirty_unavailable(features, v); !why.empty()) {
        t->report_.push_back({"dirty:" + std::string(to_string(v)), probe_status::rejected, std::move(why)});
        dirty_failed.insert(v);
      }
    }
  }
  std::optional<attempt> chosen;
  std::string failures;

  for (std::size_t i = 0; i < options.paths.size() && !chosen; ++i) {
    const hook_path path = options.paths[i];
    if (std::find(options.paths.begin(), options.paths.begin() + static_cast<std::ptrdiff_t>(i), path) !=
        options.paths.begin() + static_cast<std::ptrdiff_t>(i))
      continue;  // listed twice
    if (auto why = path_unavailable(features, path); !why.empty()) {
      t->report_.push_back({std::string(to_string(path)), probe_status::rejected, why});
      failures += (failures.empty() ? "" : "; ") + why;
      continue;
    }

    // Retry the same path while the blame falls on an optional group; each retry turns one
    // group (variant) off, so this terminates.
    while (true) {
      attempt a;
      a.path = path;
      a.sharing = sharing;
      a.coalesce = coalesce;
      if (options.dirty_events) {
        // The fentry path has no dirty hook of its own; it uses the tracepoint.
        std::vector<dirty_variant> candidates = path == hook_path::raw_tp
                                                    ? std::vector{dirty_variant::raw_tp}
                                                    : std::vector{dirty_variant::tp_btf, dirty_variant::raw_tp};
        for (auto v : candidates) {
          if (!dirty_failed.count(v)) {
            a.dirty = v;
            break;
          }
        }
      }

      if (a.run(options, t->ring_bytes_, log)) {
        chosen = std::move(a);
        break;
      }
      if (a.fatal) return a.failure;

      const std::string reason = a.failure.message();
      if (a.skel && a.coalesce && a.blamed == bpf_program__name(a.skel->progs.dc_flush)) {
        coalesce = false;  // one record per folio still works
        coalesce_reason = reason;
        continue;
      }
      if (a.skel && !a.blamed.empty() && a.dirty && a.blamed == bpf_program__name(dirty_program(a.skel.get(), *a.dirty))) {
        t->report_.push_back({"dirty:" + std::string(to_string(*a.dirty)), probe_status::rejected, reason});
        dirty_failed.insert(*a.dirty);
        continue;
      }
      if (a.skel && !a.blamed.empty() && a.sharing && contains_program(sharing_programs(a.skel.get()), a.blamed)) {
        t->report_.push_back({"sharing:syscalls", probe_status::rejected, reason});
        sharing = false;
        continue;
      }
      t->report_.push_back({std::string(to_string(path)), probe_status::rejected, reason});
      failures += (failures.empty() ? "" : "; ") + reason;
      break;
    }
  }

  if (!chosen)
    return error{"trace: load page-cache hooks", 0,
                 "no hook path could be loaded and attached (" + failures + ")"};

  attempt& a = *chosen;
  t->chosen_ = a.path;
  t->report_.push_back({std::string(to_string(a.path)), probe_status::chosen,
                        "loaded and attached: " + section_list(path_programs(a.skel.get(), a.path))});
  for (hook_path p : options.paths) {
    bool reported = std::any_of(t->report_.begin(), t->report_.end(),
                                [&](const probe_result& r) { return r.hook == to_string(p); });
    if (!reported)
      t->report_.push_back({std::string(to_string(p)), probe_status::not_tried,
                            std::string(to_string(a.path)) + " chosen first"});
  }
  if (a.dirty)
    t->report_.push_back({"dirty:" + std::string(to_string(*a.dirty)), probe_status::enabled,
                          bpf_program__section_name(dirty_program(a.skel.get(), *a.dirty))});
  else if (!options.dirty_events)
    t->report_.push_back({"dirty", probe_status::disabled, "turned off by options"});
  else
    t->report_.push_back({"dirty", probe_status::disabled, "no variant could be loaded (see above)"});
  if (a.sharing)
    t->report_.push_back({"sharing:syscalls", probe_status::enabled, section_list(sharing_programs(a.skel.get()))});
  else
    t->report_.push_back({"sharing:syscalls", probe_status::disabled,
                          options.sharing_events ? "could not be loaded (see above)" : "turned off by options"});

  if (a.coalesce)
    t->report_.push_back({"coalesce", probe_status::enabled,
                          "consecutive folio events of a file on one CPU make one record; dc_flush runs on each CPU"});
  else
    t->report_.push_back({"coalesce", probe_status::disabled,
                          coalesce_reason.empty() ? "could not be enabled (see above)" : coalesce_reason});
  t->coalescing_ = a.coalesce;
  if (a.coalesce) t->flush_fd_ = bpf_program__fd(a.skel->progs.dc_flush);

  // 8. ring buffer
  ring_buffer* rb = ring_buffer__new(bpf_map__fd(a.skel->maps.events), &tracer::on_sample, t.get(), nullptr);
  if (rb == nullptr) return errno_error("trace: create ring buffer consumer");
  t->ring_.reset(rb);
  t->skel_ = std::move(a.skel);
  t->links_ = std::move(a.links);
  return t;
}

// ---- running ----------------------------------------------------------------------------------

int tracer::on_sample(void* ctx, void* data, std::size_t size) {
  auto* self = static_cast<tracer*>(ctx);
  auto ev = decode_event(data, size);
  if (!ev) {
    ++self->decode_errors_;
    return 0;
  }
  if (self->callback_ == nullptr || !*self->callback_) return 0;
  // Never let an exception unwind through libbpf's C frames: park it, stop, rethrow in poll().
  try {
    (*self->callback_)(*ev);
  } catch (...) {
    self->callback_error_ = std::current_exception();
    return -ECANCELED;
  }
  return 0;
}

result<void> tracer::flush() {
  if (!coalescing_) return {};
  const std::uint64_t started = monotonic_ns();
  // Only CPUs with an open run get an IPI; the map read is racy, which is fine: a run opened
  // after it has ts_ns after `started`.
  auto runs = read_per_cpu<dupcache_run>(skel_->maps.runs, "runs");
  if (!runs) return runs.err();
  const auto& per_cpu = *runs;
  const int ncpu = static_cast<int>(per_cpu.size());
  bool complete = true;
  for (int cpu = 0; cpu < ncpu; ++cpu) {
    if (per_cpu[static_cast<std::size_t>(cpu)].host == 0) continue;
    // dc_flush returns 1 while the slot is held by the program it interrupted, which finishes
    // within microseconds.
    bool done = false;
    for (int attempt = 0; attempt < 100 && !done; ++attempt) {
      LIBBPF_OPTS(bpf_test_run_opts, run_opts, .flags = BPF_F_TEST_RUN_ON_CPU, .cpu = static_cast<__u32>(cpu));
      if (int err = bpf_prog_test_run_opts(flush_fd_, &run_opts)) {
        if (err == -ENXIO) {
          // Offline since the map was read: its run cannot be had. Count it as lost, so the
          // consumer repairs by rescanning rather than go on without it.
          const auto& ev = per_cpu[static_cast<std::size_t>(cpu)].ev;
          if (ev.kind < stranded_runs_.size()) ++stranded_runs_[ev.kind];
          break;
        }
        return errno_error("trace: run dc_flush on CPU " + std::to_string(cpu), -err);
      }
      done = run_opts.retval == 0;
    }
    complete = complete && done;
  }
  if (complete) flushed_before_ns_ = started;
  return {};
}

int tracer::drain(int timeout_ms) {
  int n = ring_buffer__poll(ring_.get(), timeout_ms);
  // With batched wakeups (wakeup_fraction) records can wait without a wakeup: epoll says
  // nothing until the threshold, so read what is there once the timeout has passed.
  if (n >= 0 && !callback_error_) {
    const int more = ring_buffer__consume(ring_.get());
    n = more < 0 ? more : n + more;
  }
  return n;
}

result<int> tracer::poll(int timeout_ms, const event_fn& fn) {
  callback_ = &fn;
  callback_error_ = nullptr;
  int n = 0;
  result<void> flushed = flush();
  if (flushed) {
    // While coalescing, never wait longer than a flush interval: runs opened meanwhile sit in
    // their CPU's slot until the caller polls (and so flushes) again. Waiting in slices inside
    // this call instead would lose a signal that lands between two slices.
    if (coalescing_ && (timeout_ms < 0 || timeout_ms > flush_interval_ms)) timeout_ms = flush_interval_ms;
    n = drain(timeout_ms);
  }
  callback_ = nullptr;
  if (callback_error_) std::rethrow_exception(std::exchange(callback_error_, nullptr));
  if (!flushed) return flushed.err();
  if (n == -EINTR) return 0;
  if (n < 0) return errno_error("trace: poll ring buffer", -n);
  return n;
}

int tracer::epoll_fd() const { return ring_buffer__epoll_fd(ring_.get()); }

result<event_counters> tracer::counters() const {
  auto counters = read_per_cpu<dupcache_counters>(skel_->maps.counters, "counters");
  if (!counters) return counters.err();
  auto runs = read_per_cpu<dupcache_run>(skel_->maps.runs, "runs");
  if (!runs) return runs.err();

  event_counters sum;
  static_assert(std::tuple_size_v<decltype(sum.emitted)> == DUPCACHE_EV_KIND_SLOTS);
  for (const auto& c : *counters) {
    for (std::size_t k = 0; k < DUPCACHE_EV_KIND_SLOTS; ++k) {
      sum.emitted[k] += c.emitted[k];
      sum.drops[k] += c.drops[k];
    }
    sum.filtered_dev += c.filtered_dev;
    sum.filtered_nonreg += c.filtered_nonreg;
    sum.filtered_internal += c.filtered_internal;
    sum.no_host += c.no_host;
    sum.fd_unresolved += c.fd_unresolved;
  }
  for (const auto& r : *runs) sum.run_folios += r.folios;
  for (std::size_t k = 0; k < stranded_runs_.size(); ++k) sum.drops[k] += stranded_runs_[k];
  sum.decode_errors = decode_errors_;
  return sum;
}

result<void> tracer::watch_dev(dev_t dev) {
  if (!filtering_)
    return plain_error("trace: watch device", "tracer was opened without a device filter (watching all)");
  std::uint32_t key = kernel_dev_from(dev);
  std::uint8_t value = 1;
  if (int err = bpf_map__update_elem(skel_->maps.watched_devs, &key, sizeof(key), &value, sizeof(value), BPF_ANY))
    return errno_error("trace: add device to watched_devs", -err);
  return {};
}

result<void> tracer::unwatch_dev(dev_t dev) {
  if (!filtering_)
    return plain_error("trace: unwatch device", "tracer was opened without a device filter (watching all)");
  std::uint32_t key = kernel_dev_from(dev);
  if (int err = bpf_map__delete_elem(skel_->maps.watched_devs, &key, sizeof(key), 0); err && err != -ENOENT)
    return errno_error("trace: remove device from watched_devs", -err);
  return {};
}

}  // namespace dupcache::trace
