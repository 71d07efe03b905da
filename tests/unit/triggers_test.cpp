// SPDX-License-Identifier: GPL-2.0-only
// The daemon's triggers at their exact thresholds, with and without hysteresis, on readings fed
// by the test: a trigger that is not configured must not even read its source.

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>

#include "daemon/triggers.hpp"

namespace dupcache::daemon {
namespace {

constexpr std::uint64_t mib = std::uint64_t{1} << 20;
constexpr std::uint64_t gib = std::uint64_t{1} << 30;

struct fake_readings final : memory_readings {
  std::optional<double> some, full;
  std::optional<std::uint64_t> available;
  int psi_reads = 0, meminfo_reads = 0;
  std::optional<double> psi_avg10(std::string_view kind) override {
    ++psi_reads;
    return kind == "some" ? some : kind == "full" ? full : std::nullopt;
  }
  std::optional<std::uint64_t> mem_available() override {
    ++meminfo_reads;
    return available;
  }
};

report_model model(std::uint64_t wasted, std::uint64_t cached) {
  report_model m;
  m.wasted_bytes = wasted;
  m.cached_bytes = cached;
  return m;
}

// Hysteresis 50% keeps every threshold an exact binary fraction, so the edges are exact.
policy::config base() {
  policy::config c;
  c.hysteresis_percent = 50;
  return c;
}

TEST(triggers, without_a_trigger_any_waste_acts) {
  fake_readings r;
  const auto c = base();
  EXPECT_EQ(triggered(c, model(1, 10), false, r), "waste present (no trigger configured)");
  EXPECT_EQ(triggered(c, model(0, 10), true, r), "");
  EXPECT_EQ(r.psi_reads + r.meminfo_reads, 0);
}

TEST(triggers, wasted_bytes_threshold_and_hysteresis) {
  fake_readings r;
  auto c = base();
  c.wasted_bytes = 100 * mib;
  EXPECT_EQ(triggered(c, model(100 * mib, gib), false, r), "wasted 100 MiB >= 100 MiB");
  EXPECT_EQ(triggered(c, model(100 * mib - 1, gib), false, r), "");
  // Acting: holds down to half the threshold.
  EXPECT_EQ(triggered(c, model(50 * mib, gib), true, r), "wasted 50.0 MiB >= 100 MiB");
  EXPECT_EQ(triggered(c, model(50 * mib - 1, gib), true, r), "");
  EXPECT_EQ(r.psi_reads + r.meminfo_reads, 0);
}

TEST(triggers, wasted_percent_threshold_and_hysteresis) {
  fake_readings r;
  auto c = base();
  c.wasted_percent = 10;
  EXPECT_EQ(triggered(c, model(100, 1000), false, r), "wasted 10.0% >= 10%");
  EXPECT_EQ(triggered(c, model(99, 1000), false, r), "");
  EXPECT_EQ(triggered(c, model(50, 1000), true, r), "wasted 5.0% >= 10%");
  EXPECT_EQ(triggered(c, model(49, 1000), true, r), "");
  EXPECT_EQ(triggered(c, model(0, 0), false, r), "") << "nothing cached is no percentage";
}

TEST(triggers, pressure_some_and_full) {
  fake_readings r;
  auto c = base();
  c.psi_some_avg10 = 10;
  r.some = 10.0;
  EXPECT_EQ(triggered(c, model(0, 0), false, r), "memory pressure some avg10 10.00 >= 10");
  r.some = 9.99;
  EXPECT_EQ(triggered(c, model(0, 0), false, r), "");
  r.some = 5.0;
  EXPECT_EQ(triggered(c, model(0, 0), true, r), "memory pressure some avg10 5.00 >= 10");
  r.some = 4.99;
  EXPECT_EQ(triggered(c, model(0, 0), true, r), "");
  r.some.reset();
  EXPECT_EQ(triggered(c, model(0, 0), true, r), "") << "an unreadable pressure file never triggers";

  c.psi_some_avg10 = 0;
  c.psi_full_avg10 = 2;
  r.some = 99;
  r.full = 2.0;
  EXPECT_EQ(triggered(c, model(0, 0), false, r), "memory pressure full avg10 2.00 >= 2");
  r.full = 1.0;
  EXPECT_EQ(triggered(c, model(0, 0), false, r), "");
  EXPECT_EQ(triggered(c, model(0, 0), true, r), "memory pressure full avg10 1.00 >= 2");
  EXPECT_EQ(r.meminfo_reads, 0);
}

TEST(triggers, mem_available_threshold_and_hysteresis) {
  fake_readings r;
  auto c = base();
  c.mem_available_below = gib;
  r.available = gib;
  EXPECT_EQ(triggered(c, model(0, 0), false, r), "MemAvailable 1.0 GiB <= 1.0 GiB");
  r.available = gib + 1;
  EXPECT_EQ(triggered(c, model(0, 0), false, r), "");
  // Acting: holds until MemAvailable is half as much again above the limit.
  r.available = gib + gib / 2;
  EXPECT_EQ(triggered(c, model(0, 0), true, r), "MemAvailable 1.5 GiB <= 1.0 GiB");
  r.available = gib + gib / 2 + 1;
  EXPECT_EQ(triggered(c, model(0, 0), true, r), "");
  r.available.reset();
  EXPECT_EQ(triggered(c, model(0, 0), false, r), "MemAvailable 0 B <= 1.0 GiB")
      << "an unreadable meminfo counts as nothing available";
  EXPECT_EQ(r.psi_reads, 0);
}

TEST(triggers, the_first_trigger_that_holds_says_why) {
  fake_readings r;
  auto c = base();
  c.wasted_bytes = mib;
  c.psi_some_avg10 = 1;
  c.mem_available_below = gib;
  r.some = 50;
  r.available = 0;
  EXPECT_EQ(triggered(c, model(mib, gib), false, r), "wasted 1.0 MiB >= 1.0 MiB");
  EXPECT_EQ(r.psi_reads + r.meminfo_reads, 0) << "later triggers are not read once one holds";
  EXPECT_EQ(triggered(c, model(0, gib), false, r), "memory pressure some avg10 50.00 >= 1");
  r.some = 0;
  EXPECT_EQ(triggered(c, model(0, gib), false, r), "MemAvailable 0 B <= 1.0 GiB");
}

TEST(triggers, default_hysteresis_is_twenty_percent) {
  fake_readings r;
  policy::config c;
  c.wasted_bytes = 1000;
  EXPECT_EQ(triggered(c, model(800, gib), true, r), "wasted 800 B >= 1000 B");
  EXPECT_EQ(triggered(c, model(799, gib), true, r), "");
  EXPECT_EQ(triggered(c, model(999, gib), false, r), "");
}

}  // namespace
}  // namespace dupcache::daemon
