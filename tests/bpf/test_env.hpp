// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// When a privileged test cannot run: skip with the reason, or fail when CI=true, so CI cannot
// pass by skipping on a machine that was supposed to run it.

#include <bpf/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace dupcache::test {

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// Can this process use bpf() at all? (root in a container without CAP_BPF cannot.)
inline std::string bpf_unavailable_reason() {
  if (::geteuid() != 0) return "needs root (BPF)";
  int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "dc_probe", 4, 4, 1, nullptr);
  if (fd < 0) {
    int err = errno;
    return std::string("bpf(BPF_MAP_CREATE) refused: ") + std::strerror(err);
  }
  ::close(fd);
  return {};
}

}  // namespace dupcache::test

#define DC_SKIP_OR_FAIL(why)                                                          \
  do {                                                                                \
    const std::string why_ = (why);                                                   \
    if (::dupcache::test::in_ci()) FAIL() << "cannot run and CI=true forbids skipping: " << why_; \
    GTEST_SKIP() << why_;                                                             \
  } while (0)
