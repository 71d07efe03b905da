// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// libbpf says *why* it refused a program only through its print callback (the verifier log,
// "failed to find kernel BTF type ID", ...). This captures that text while the tracer opens, so
// an expected refusal (fentry on kernels that deny trampolines) is reported once, in the
// probe report, instead of reaching stderr; and it reads blame out of libbpf's wording.
// Contract: one capture at a time in the process (the callback is global); a libbpf_log holds a
// process-wide lock from construction to destruction and restores the previous callback.
// Reading libbpf's wording is the fallback: the feature checks of trace/probe.hpp come first.

#include <mutex>
#include <string>

namespace dupcache::trace {

class libbpf_log {
 public:
  libbpf_log();
  ~libbpf_log();
  libbpf_log(const libbpf_log&) = delete;
  libbpf_log& operator=(const libbpf_log&) = delete;

  void clear() { buffer_.clear(); }
  const std::string& text() const { return buffer_; }

 private:
  std::unique_lock<std::mutex> lock_;
  void* previous_;  // libbpf_print_fn_t, kept opaque so this header needs no libbpf
  std::string buffer_;
};

// What a failure log says: the program libbpf blamed ("prog 'NAME': ... failed"; empty if none)
// and one line for a person: libbpf's complaint, plus the verifier's last word when there is a
// verifier log.
struct log_blame {
  std::string program;
  std::string summary;
};
log_blame read_blame(const std::string& text);

// "EPERM (Operation not permitted)", naming the kernel-internal ENOTSUPP (524) that leaks out
// of BPF syscalls.
std::string errno_reason(int err);

}  // namespace dupcache::trace
