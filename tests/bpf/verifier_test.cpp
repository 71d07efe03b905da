// SPDX-License-Identifier: GPL-2.0-only
//
// The fentry/fexit programs cannot load on kernels that refuse trampolines, so the verifier
// would never see them there. This loads the same bodies compiled as raw_tp programs
// (DUPCACHE_FENTRY_AS_RAW_TP, see bpf/dupcache.bpf.c) — load only, no attach.

#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <cstdarg>
#include <cstdio>
#include <memory>
#include <string>

#include "dupcache_verify.skel.h"
#include "test_env.hpp"

namespace dupcache::test {
namespace {

std::string* log_sink = nullptr;

int capture(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG || log_sink == nullptr) return 0;
  char line[1024];
  int n = std::vsnprintf(line, sizeof(line), fmt, args);
  if (n > 0) log_sink->append(line);
  return 0;
}

struct skel_deleter {
  void operator()(dupcache_bpf_verify* s) const { dupcache_bpf_verify__destroy(s); }
};

TEST(bpf_verifier, fentry_program_bodies_pass_the_verifier) {
  if (auto why = bpf_unavailable_reason(); !why.empty()) DC_SKIP_OR_FAIL(why);

  std::unique_ptr<dupcache_bpf_verify, skel_deleter> skel(dupcache_bpf_verify__open());
  ASSERT_TRUE(skel);
  bpf_program* prog = nullptr;
  while ((prog = bpf_object__next_program(skel->obj, prog)) != nullptr) bpf_program__set_autoload(prog, false);
  for (bpf_program* p : {skel->progs.dc_add_fexit, skel->progs.dc_delete_fentry, skel->progs.dc_delete_batch_fentry}) {
    ASSERT_EQ(bpf_program__type(p), BPF_PROG_TYPE_RAW_TRACEPOINT) << bpf_program__name(p);
    bpf_program__set_autoload(p, true);
  }

  std::string log;
  log_sink = &log;
  libbpf_print_fn_t previous = libbpf_set_print(capture);
  int err = dupcache_bpf_verify__load(skel.get());
  libbpf_set_print(previous);
  log_sink = nullptr;
  EXPECT_EQ(err, 0) << log;
}

}  // namespace
}  // namespace dupcache::test
