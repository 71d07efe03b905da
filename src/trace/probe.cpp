// SPDX-License-Identifier: GPL-2.0-only
#include "trace/probe.hpp"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>

#include <cerrno>
#include <memory>

#include "trace/libbpf_log.hpp"

namespace dupcache::trace {
namespace {

struct btf_deleter {
  void operator()(struct btf* b) const { btf__free(b); }
};

// The first name of `names` that vmlinux BTF lacks as `kind`; empty when all are there.
template <std::size_t N>
std::string first_missing(const struct btf* btf, const char* const (&names)[N], int kind) {
  for (const char* name : names) {
    if (btf__find_by_name_kind(btf, name, kind) < 0) return name;
  }
  return {};
}

bool tracefs_event(const std::string& event) {
  struct stat st {};
  return ::stat(("/sys/kernel/tracing/events/" + event).c_str(), &st) == 0 ||
         ::stat(("/sys/kernel/debug/tracing/events/" + event).c_str(), &st) == 0;
}

// "trace[PATH]: check WHAT failed: WHY", the shape of the tracer's other failures; `what`
// arrives as "WHAT: WHY".
std::string check_failed(std::string_view path, std::string_view what) {
  const auto colon = what.find(": ");
  return "trace[" + std::string(path) + "]: check " + std::string(what.substr(0, colon)) + " failed" +
         std::string(what.substr(colon));
}

std::string raw_tp_unavailable(const kernel_features& f, std::string_view name) {
  if (f.raw_tp_progs != 0) return {};
  return check_failed(name, "program type: this kernel does not load BPF_PROG_TYPE_RAW_TRACEPOINT programs "
                            "(libbpf_probe_bpf_prog_type)");
}

std::string btf_unavailable(const kernel_features& f, std::string_view name) {
  if (f.btf_missing.empty()) return {};
  return check_failed(name, "kernel BTF: " + f.btf_missing + "; BTF-typed programs cannot load");
}

}  // namespace

std::string_view to_string(hook_path path) {
  switch (path) {
    case hook_path::fentry: return "fentry";
    case hook_path::tp_btf: return "tp_btf";
    case hook_path::raw_tp: return "raw_tp";
  }
  return "unknown";
}

std::string_view to_string(dirty_variant v) { return v == dirty_variant::tp_btf ? "tp_btf" : "raw_tp"; }

kernel_features probe_kernel() {
  kernel_features f;
  std::unique_ptr<struct btf, btf_deleter> btf(btf__load_vmlinux_btf());
  if (!btf) {
    f.btf_missing = "no vmlinux BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF): " + errno_reason(errno);
  } else {
    static const char* const functions[] = {"filemap_add_folio", "__filemap_remove_folio",
                                            "delete_from_page_cache_batch"};
    static const char* const cache_tps[] = {"btf_trace_mm_filemap_add_to_page_cache",
                                            "btf_trace_mm_filemap_delete_from_page_cache"};
    static const char* const dirty_tps[] = {"btf_trace_writeback_dirty_folio"};
    f.fentry_missing = first_missing(btf.get(), functions, BTF_KIND_FUNC);
    f.cache_tp_missing = first_missing(btf.get(), cache_tps, BTF_KIND_TYPEDEF);
    f.dirty_tp = first_missing(btf.get(), dirty_tps, BTF_KIND_TYPEDEF).empty();
  }
  f.tracing_progs = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACING, nullptr);
  f.raw_tp_progs = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_RAW_TRACEPOINT, nullptr);
  f.tracepoint_progs = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACEPOINT, nullptr);
  if (f.raw_tp_progs != 1 && f.tracepoint_progs != 1) {
    // libbpf answers 0 for any refusal, lack of privilege included: when not even the simplest
    // tracing programs load, the answers say nothing about this kernel.
    f.tracing_progs = f.raw_tp_progs = f.tracepoint_progs = -1;
  }
  for (const char* event : {"sys_enter_ioctl", "sys_enter_copy_file_range", "sys_enter_ftruncate",
                            "sys_enter_truncate", "sys_enter_fallocate", "sys_exit_ioctl",
                            "sys_exit_copy_file_range", "sys_exit_ftruncate", "sys_exit_truncate",
                            "sys_exit_fallocate"}) {
    if (!tracefs_event(std::string("syscalls/") + event)) {
      f.syscall_event_missing = event;
      break;
    }
  }
  return f;
}

std::string path_unavailable(const kernel_features& f, hook_path path) {
  const auto name = to_string(path);
  if (path == hook_path::raw_tp) return raw_tp_unavailable(f, name);
  if (auto why = btf_unavailable(f, name); !why.empty()) return why;
  if (path == hook_path::tp_btf) {
    if (!f.cache_tp_missing.empty())
      return check_failed(name, "kernel BTF: no type " + f.cache_tp_missing + ", so its tp_btf programs cannot load");
    return {};
  }
  // libbpf probes BPF_PROG_TYPE_TRACING with expected_attach_type BPF_TRACE_FENTRY: the answer
  // is about fentry/fexit, not about tp_btf (the same program type, another attach type).
  if (f.tracing_progs == 0)
    return check_failed(name, "program type: this kernel refuses to load fentry programs (BPF_PROG_TYPE_TRACING, "
                              "BPF_TRACE_FENTRY; libbpf_probe_bpf_prog_type)");
  if (!f.fentry_missing.empty())
    return check_failed(name, "kernel BTF: no function " + f.fentry_missing + ", so its fentry/fexit programs cannot load");
  return {};
}

std::string dirty_unavailable(const kernel_features& f, dirty_variant v) {
  const std::string name = "dirty:" + std::string(to_string(v));
  if (v == dirty_variant::raw_tp) return raw_tp_unavailable(f, name);
  if (auto why = btf_unavailable(f, name); !why.empty()) return why;
  if (!f.dirty_tp)
    return check_failed(name, "kernel BTF: no type btf_trace_writeback_dirty_folio, so its tp_btf program cannot load");
  return {};
}

std::string sharing_unavailable(const kernel_features& f) {
  if (f.tracepoint_progs == 0)
    return check_failed("sharing", "program type: this kernel does not load BPF_PROG_TYPE_TRACEPOINT programs "
                                   "(libbpf_probe_bpf_prog_type)");
  if (!f.syscall_event_missing.empty())
    return check_failed("sharing", "tracefs: no event syscalls/" + f.syscall_event_missing +
                                       " (CONFIG_FTRACE_SYSCALLS, or tracefs not mounted), so the sharing programs cannot attach");
  return {};
}

}  // namespace dupcache::trace
