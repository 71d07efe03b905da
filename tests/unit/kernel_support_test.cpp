// SPDX-License-Identifier: GPL-2.0-only
// doctor's kernel lines for the releases of the test matrix and around its floor: which lines,
// which status, and the version each one turns on.
#include "doctor/kernel_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dupcache::doctor {
namespace {

std::vector<std::string> names_and_statuses(std::string_view release) {
  std::vector<std::string> out;
  for (const auto& c : kernel_support(release)) out.push_back(c.name + "=" + c.status);
  return out;
}

const std::vector<std::string> info_lines{"kernel hooks=info", "kernel large folios=info", "kernel merge module=info"};

std::vector<std::string> with_info(std::vector<std::string> head) {
  head.insert(head.end(), info_lines.begin(), info_lines.end());
  return head;
}

TEST(KernelSupport, MatrixKernels) {
  // Debian 12's kernel: supported, but before cachestat.
  EXPECT_EQ(names_and_statuses("6.1.0-57-amd64"), with_info({"kernel support=ok", "kernel 6.5 cachestat=missing"}));
  EXPECT_EQ(names_and_statuses("6.12.117+deb12-amd64"), with_info({"kernel support=ok", "kernel 6.5 cachestat=ok"}));
  EXPECT_EQ(names_and_statuses("6.18.44-fc-v657"), with_info({"kernel support=ok", "kernel 6.5 cachestat=ok"}));
}

TEST(KernelSupport, Boundaries) {
  EXPECT_EQ(names_and_statuses("6.0.19"), with_info({"kernel support=missing", "kernel 6.5 cachestat=missing"}));
  EXPECT_EQ(names_and_statuses("5.15.0-91-generic"),
            with_info({"kernel support=missing", "kernel 6.5 cachestat=missing"}));
  EXPECT_EQ(names_and_statuses("6.4.16"), with_info({"kernel support=ok", "kernel 6.5 cachestat=missing"}));
  EXPECT_EQ(names_and_statuses("6.5.0"), with_info({"kernel support=ok", "kernel 6.5 cachestat=ok"}));
  // 10.0 compares as a number, not as text.
  EXPECT_EQ(names_and_statuses("10.0"), with_info({"kernel support=ok", "kernel 6.5 cachestat=ok"}));
}

TEST(KernelSupport, UnparsableRelease) {
  EXPECT_EQ(names_and_statuses("custom"), with_info({"kernel support=info", "kernel 6.5 cachestat=missing"}));
  EXPECT_EQ(names_and_statuses("6"), with_info({"kernel support=info", "kernel 6.5 cachestat=missing"}));
  EXPECT_EQ(names_and_statuses("6."), with_info({"kernel support=info", "kernel 6.5 cachestat=missing"}));
}

TEST(KernelSupport, DetailsNameWhatWasTested) {
  const auto old = kernel_support("6.1.0-57-amd64");
  EXPECT_NE(old[1].detail.find("mincore(2)"), std::string::npos) << old[1].detail;
  EXPECT_NE(old[1].detail.find("tested: 6.1"), std::string::npos) << old[1].detail;
  const auto older = kernel_support("5.10.0");
  EXPECT_NE(older[0].detail.find("untested"), std::string::npos) << older[0].detail;
}

}  // namespace
}  // namespace dupcache::doctor
