// SPDX-License-Identifier: GPL-2.0-only
// Pure parts of the tracer's start-up: the plan the feature checks give (trace/probe.hpp) and
// the blame read from libbpf's log when a load the features allowed still fails
// (trace/libbpf_log.hpp).
#include <gtest/gtest.h>

#include "trace/libbpf_log.hpp"
#include "trace/probe.hpp"

namespace dupcache::trace {
namespace {

// The hooks the features rule out, in the tracer's order.
std::string ruled_out(const kernel_features& f) {
  std::string out;
  auto note = [&out](const char* name, const std::string& why) {
    if (!why.empty()) out += (out.empty() ? "" : " ") + std::string(name);
  };
  note("fentry", path_unavailable(f, hook_path::fentry));
  note("tp_btf", path_unavailable(f, hook_path::tp_btf));
  note("raw_tp", path_unavailable(f, hook_path::raw_tp));
  note("dirty:tp_btf", dirty_unavailable(f, dirty_variant::tp_btf));
  note("dirty:raw_tp", dirty_unavailable(f, dirty_variant::raw_tp));
  note("sharing", sharing_unavailable(f));
  return out;
}

TEST(TraceProbe, FentryRefusedLeavesTheTracepoints) {
  kernel_features f;
  f.tracing_progs = 0;  // what libbpf answers on kernels that deny trampolines
  f.raw_tp_progs = 1;
  f.tracepoint_progs = 1;
  EXPECT_EQ(ruled_out(f), "fentry");
  const auto why = path_unavailable(f, hook_path::fentry);
  EXPECT_EQ(why.rfind("trace[fentry]: check program type failed: ", 0), 0u) << why;
}

TEST(TraceProbe, UnknownAnswersNeverRuleAHookOut) {
  EXPECT_EQ(ruled_out(kernel_features{}), "");
}

TEST(TraceProbe, MissingBtfRulesOutTheTypedHooksOnly) {
  kernel_features f;
  f.btf_missing = "no vmlinux BTF";
  EXPECT_EQ(ruled_out(f), "fentry tp_btf dirty:tp_btf");
}

TEST(TraceProbe, MissingTargetsAreNamed) {
  kernel_features f;
  f.fentry_missing = "delete_from_page_cache_batch";
  f.dirty_tp = false;
  f.syscall_event_missing = "sys_enter_copy_file_range";
  EXPECT_EQ(ruled_out(f), "fentry dirty:tp_btf sharing");
  EXPECT_NE(path_unavailable(f, hook_path::fentry).find("delete_from_page_cache_batch"), std::string::npos);
  EXPECT_NE(dirty_unavailable(f, dirty_variant::tp_btf).find("btf_trace_writeback_dirty_folio"), std::string::npos);
  EXPECT_NE(sharing_unavailable(f).find("syscalls/sys_enter_copy_file_range"), std::string::npos);
}

TEST(LibbpfLog, BlameNamesTheProgramAndTheVerifiersLastWord) {
  const std::string log =
      "libbpf: prog 'dc_dirty_btf': BPF program load failed: Permission denied\n"
      "libbpf: prog 'dc_dirty_btf': -- BEGIN PROG LOAD LOG --\n"
      "0: R1=ctx() R10=fp0\n"
      "R2 invalid mem access 'scalar'\n"
      "processed 12 insns (limit 1000000)\n"
      "-- END PROG LOAD LOG --\n"
      "libbpf: failed to load object 'dupcache_bpf'\n";
  const auto blame = read_blame(log);
  EXPECT_EQ(blame.program, "dc_dirty_btf");
  EXPECT_EQ(blame.summary,
            "prog 'dc_dirty_btf': BPF program load failed: Permission denied; verifier: R2 invalid mem access 'scalar'");
  EXPECT_EQ(read_blame("").program, "");
}

TEST(LibbpfLog, ErrnoReasonNamesKernelInternalErrors) {
  EXPECT_EQ(errno_reason(1), "EPERM (Operation not permitted)");
  EXPECT_EQ(errno_reason(524), "ENOTSUPP (operation not supported by this kernel)");
}

}  // namespace
}  // namespace dupcache::trace
