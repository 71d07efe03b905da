// SPDX-License-Identifier: GPL-2.0-only
// Ring-buffer records (trace/event.hpp): the decoder takes whatever the kernel side hands it,
// of any length and alignment. The input is cut into samples as a ring buffer would deliver
// them: a length byte (in units of 8 bytes), then that many bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "trace/abi_check.hpp"
#include "trace/event.hpp"

namespace {

void check(const std::uint8_t* p, std::size_t n) {
  using namespace dupcache::trace;
  const auto ev = decode_event(p, n);
  if (!ev) return;
  if (n < sizeof(dupcache_event)) std::abort();
  if (to_string(ev->kind) == "unknown") std::abort();
  if (ev->comm_view().size() >= ev->comm.size()) std::abort();
  if (ev->end_timestamp_ns < ev->timestamp_ns) std::abort();
  if (dev_from_kernel(ev->kernel_dev) != ev->dev || kernel_dev_from(ev->dev) != ev->kernel_dev) std::abort();
  if (ev->is_cache() && ev->is_sharing()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The whole input as one sample, at an odd address too (a copy: ASan sees over-reads).
  {
    std::vector<std::uint8_t> exact(data, data + size);
    check(exact.data(), exact.size());
    std::vector<std::uint8_t> shifted(size + 1);
    if (size) std::memcpy(shifted.data() + 1, data, size);
    check(shifted.data() + 1, size);
  }
  // Then as a stream of samples.
  std::size_t i = 0;
  while (i < size) {
    const std::size_t len = std::size_t{data[i++]} * 8;
    const std::size_t n = len < size - i ? len : size - i;
    std::vector<std::uint8_t> sample(data + i, data + i + n);
    check(sample.data(), sample.size());
    i += n;
  }
  check(nullptr, 0);
  return 0;
}
