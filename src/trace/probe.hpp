// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// What this kernel offers the tracer, looked up before anything is loaded, in the manner of
// bpftrace's feature probing: vmlinux BTF and the hook targets in it, the program types (by
// libbpf_probe_bpf_prog_type), the syscall events in tracefs. The tracer plans its hook paths
// from these and tries only what may work; libbpf's log is read only when a load or attach
// that the features allowed still fails (trace/libbpf_log.hpp).
// Contract: probe_kernel() never fails; an answer it could not get (no privilege for the
// program-type probe, say) counts as "may work", so a kernel is never refused on a guess. Each
// *_unavailable() returns empty when the features allow the hook, else the reason, which says
// what was checked and that the programs cannot load.

#include <string>
#include <string_view>

namespace dupcache::trace {

enum class hook_path { fentry, tp_btf, raw_tp };
std::string_view to_string(hook_path path);

// The writeback_dirty_folio tracepoint, as a BTF-typed or a raw tracepoint.
enum class dirty_variant { tp_btf, raw_tp };
std::string_view to_string(dirty_variant v);

struct kernel_features {
  std::string btf_missing;     // why vmlinux BTF could not be read; empty: read
  std::string fentry_missing;  // a page-cache function absent from vmlinux BTF
  std::string cache_tp_missing;  // a btf_trace_mm_filemap_* type absent
  bool dirty_tp = true;          // btf_trace_writeback_dirty_folio present
  // libbpf_probe_bpf_prog_type(): 1 loads, 0 refused, < 0 could not tell.
  int tracing_progs = -1;     // BPF_PROG_TYPE_TRACING probed as fentry (BPF_TRACE_FENTRY)
  int raw_tp_progs = -1;      // BPF_PROG_TYPE_RAW_TRACEPOINT
  int tracepoint_progs = -1;  // BPF_PROG_TYPE_TRACEPOINT: the sharing syscalls
  std::string syscall_event_missing;  // a syscalls/sys_{enter,exit}_* event absent from tracefs
};

// Call after tracefs is mounted (the syscall events are looked up in it).
kernel_features probe_kernel();

std::string path_unavailable(const kernel_features& f, hook_path path);
std::string dirty_unavailable(const kernel_features& f, dirty_variant v);
std::string sharing_unavailable(const kernel_features& f);

}  // namespace dupcache::trace
