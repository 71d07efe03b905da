// SPDX-License-Identifier: GPL-2.0-only
// The daemon's configuration (strict, errors with line and column) and the eviction planner.

#include <gtest/gtest.h>

#include "policy/config.hpp"
#include "policy/plan.hpp"

namespace dupcache::policy {
namespace {

TEST(config, a_full_file_parses_to_exact_values) {
  auto c = parse_config(R"(
[watch]
paths = ["/var/lib/containers"]
[trigger]
wasted_bytes = "1.5GiB"
wasted_percent = 20
psi_some_avg10 = 10.5
mem_available_below = 1048576
hysteresis_percent = 10
[policy]
keep = "priority"
interval = "500ms"
cooldown = "2m"
max_backoff = "1h"
refault_window = "30s"
rate_limit = "64MiB"
dry_run = true
[scope]
paths = ["/var/lib/containers/storage"]
exclude_paths = ["/var/lib/containers/storage/volumes"]
filesystems = ["btrfs"]
exclude_containers = ["db"]
[priority]
web = 10
"default/api/server" = -5
[journal]
path = "/var/log/dupcache/actions.jsonl"
max_bytes = "1MiB"
keep = 5
[metrics]
listen = "[::1]:9477"
textfile = "/var/lib/prometheus/node-exporter/dupcache.prom"
)",
                        "t.toml");
  ASSERT_TRUE(c) << c.err().message();
  EXPECT_EQ(c->watch_paths, std::vector<std::string>{"/var/lib/containers"});
  EXPECT_EQ(c->wasted_bytes, 1610612736u);
  EXPECT_EQ(c->wasted_percent, 20);
  EXPECT_EQ(c->psi_some_avg10, 10.5);
  EXPECT_EQ(c->mem_available_below, 1048576u);
  EXPECT_EQ(c->keep, keep_rule::priority);
  EXPECT_EQ(c->interval.count(), 500);
  EXPECT_EQ(c->cooldown.count(), 120000);
  EXPECT_EQ(c->refault_window.count(), 30000);
  EXPECT_EQ(c->rate_limit_bytes_per_s, 64u << 20);
  EXPECT_TRUE(c->dry_run);
  EXPECT_EQ(c->exclude_containers, std::vector<std::string>{"db"});
  EXPECT_EQ(c->priority.at("web"), 10);
  EXPECT_EQ(c->priority.at("default/api/server"), -5);
  EXPECT_EQ(c->journal_keep, 5u);
  EXPECT_EQ(c->metrics_listen, "[::1]:9477");
  EXPECT_TRUE(c->needs_containers());
  EXPECT_TRUE(c->any_trigger());
}

TEST(config, defaults_when_empty) {
  auto c = parse_config("", "empty.toml");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->any_trigger());
  EXPECT_FALSE(c->needs_containers());
  EXPECT_EQ(c->interval.count(), 5000);
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9477");
}

void expect_error(const std::string& text, const std::string& where, const std::string& what) {
  auto c = parse_config(text, "bad.toml");
  ASSERT_FALSE(c) << text;
  EXPECT_NE(c.err().reason().find(where), std::string::npos) << c.err().reason();
  EXPECT_NE(c.err().reason().find(what), std::string::npos) << c.err().reason();
}

TEST(config, errors_name_the_place_and_the_reason) {
  expect_error("[policy]\ninterval = \"5 s\"\n", "bad.toml:2:12", "'interval'");
  expect_error("[policy]\n  cooldwn = \"5s\"\n", "bad.toml:2:3", "unknown key 'cooldwn' in [policy]");
  expect_error("[trigger]\nwasted_bytes = \"12 parsecs\"\n", "bad.toml:2:16", "unknown unit 'parsecs'");
  expect_error("[trigger]\nwasted_percent = 120\n", "bad.toml:2:18", "between 0 and 100");
  expect_error("[scope]\npaths = \"/var\"\n", "bad.toml:2:9", "array of strings");
  expect_error("[policy]\nkeep = \"coldest\"\n", "bad.toml:2:8", "\"hottest\" or \"priority\"");
  expect_error("[policy\ninterval = \"5s\"\n", "bad.toml:1:", "");  // TOML syntax error
  expect_error("[wach]\n", "bad.toml:1:2", "unknown key 'wach'");
  expect_error("[priority]\nweb = \"high\"\n", "bad.toml:2:7", "must be an integer");
  expect_error("[metrics]\nlisten = \"localhost\"\n", "bad.toml:2:10", "ADDRESS:PORT");
  expect_error("[policy]\ninterval = \"10ms\"\n", "bad.toml:2:12", "at least 100 ms");
}

TEST(config, sizes_and_durations) {
  EXPECT_EQ(parse_size("4096").value(), 4096u);
  EXPECT_EQ(parse_size("64MiB").value(), 64u << 20);
  EXPECT_EQ(parse_size("1.5 KiB").value(), 1536u);
  EXPECT_EQ(parse_size("2GB").value(), 2000000000u);
  EXPECT_FALSE(parse_size("MiB"));
  EXPECT_FALSE(parse_size("5 XiB"));
  EXPECT_FALSE(parse_size("1e30"));
  // Past 2^63 (found by fuzz/config): exact to double precision, never wrapped.
  EXPECT_EQ(parse_size("10000000000000000000").value(), 10000000000000000000u);
  EXPECT_FALSE(parse_size("18000000000000000000"));  // at the cap, just under 2^64
  EXPECT_EQ(parse_duration("250ms")->count(), 250);
  EXPECT_EQ(parse_duration("1.5s")->count(), 1500);
  EXPECT_EQ(parse_duration("2h")->count(), 7200000);
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("5 weeks"));
}

constexpr std::uint64_t ps = 4096;

// n copies of one 8-page extent, each caching all of it.
scan_result copies(std::size_t n, std::uint64_t pages = 8) {
  scan_result s(ps);
  for (std::size_t i = 0; i < n; ++i) {
    const copy_id c = s.index.intern_copy({"fs", 0, i + 100});
    s.files.resize(c + 1);
    s.placements.resize(c + 1);
    s.files[c] = {"/f" + std::to_string(i), pages * ps, 0};
    s.index.add(c, s.index.intern_domain("fs"), 1 << 20, pages * ps);
    s.placements[c] = {{"fs", 0, pages, 1 << 20, true}};
  }
  return s;
}

TEST(plan, keeps_the_hottest_and_plans_every_other_copy) {
  auto s = copies(3);
  auto plans = plan_evictions(s, keep_rule::hottest, [](copy_id c) {
    copy_facts f;
    f.heat = c == 1 ? 100 : 1;
    return f;
  });
  ASSERT_EQ(plans.size(), 2u);
  for (const auto& p : plans) {
    EXPECT_NE(p.copy, 1u);
    EXPECT_EQ(p.bytes, 8 * ps);
    ASSERT_EQ(p.items.size(), 1u);
    EXPECT_EQ(p.items[0].keeper, 1u);
    EXPECT_EQ(p.items[0].first_page, 0u);
    EXPECT_EQ(p.items[0].pages, 8u);
  }
}

TEST(plan, priority_beats_heat_only_under_the_priority_rule) {
  auto s = copies(2);
  auto facts = [](copy_id c) {
    copy_facts f;
    f.heat = c == 0 ? 100 : 1;
    f.priority = c == 1 ? 5 : 0;
    return f;
  };
  auto by_heat = plan_evictions(s, keep_rule::hottest, facts);
  ASSERT_EQ(by_heat.size(), 1u);
  EXPECT_EQ(by_heat[0].copy, 1u);
  auto by_prio = plan_evictions(s, keep_rule::priority, facts);
  ASSERT_EQ(by_prio.size(), 1u);
  EXPECT_EQ(by_prio[0].copy, 0u);
}

TEST(plan, out_of_scope_copies_are_kept_and_unshared_pages_never_planned) {
  auto s = copies(2);
  // A third copy holding only pages 2..4 of the extent, at file pages 10..12.
  const copy_id c = s.index.intern_copy({"fs", 0, 7});
  s.files.resize(c + 1);
  s.placements.resize(c + 1);
  s.files[c] = {"/g", 3 * ps, 0};
  s.index.add(c, s.index.intern_domain("fs"), (1 << 20) + 2 * ps, 3 * ps);
  s.placements[c] = {{"fs", 8, 8, 1 << 20, true}};
  auto plans = plan_evictions(s, keep_rule::hottest, [&](copy_id x) {
    copy_facts f;
    f.heat = x == 0 ? 10 : 1;
    f.evictable = x != 1;  // out of scope
    return f;
  });
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].copy, c);
  ASSERT_EQ(plans[0].items.size(), 1u);
  EXPECT_EQ(plans[0].items[0].first_page, 10u);
  EXPECT_EQ(plans[0].items[0].pages, 3u);
  EXPECT_EQ(plans[0].items[0].keeper, 0u);
  EXPECT_EQ(plans[0].items[0].keeper_first_page, 2u);
  // Nothing evictable: no plan at all, whatever the waste.
  EXPECT_TRUE(plan_evictions(s, keep_rule::hottest, [](copy_id) {
                copy_facts f;
                f.evictable = false;
                return f;
              }).empty());
}

// After a merge the processes map the canonical copy, yet the copy they were moved off may
// still be open, hotter and charged to a container: the canonical copy (never evicted) keeps
// the blocks all the same, else both would stay cached for good.
TEST(plan, the_canonical_copy_is_the_keeper_once_merged_onto) {
  for (auto rule : {keep_rule::hottest, keep_rule::priority}) {
    auto s = copies(3);
    auto plans = plan_evictions(s, rule, [](copy_id c) {
      copy_facts f;
      f.canonical = c == 2;
      f.evictable = !f.canonical;
      f.in_use = true;  // the merged copy's file may still be open
      f.live_container = c == 0;
      f.heat = c == 0 ? 100 : 1;  // the copy just unmapped was read last
      f.priority = c == 0 ? 5 : 0;
      return f;
    });
    ASSERT_EQ(plans.size(), 2u);
    for (const auto& p : plans) {
      EXPECT_NE(p.copy, 2u);
      ASSERT_EQ(p.items.size(), 1u);
      EXPECT_EQ(p.items[0].keeper, 2u);
      EXPECT_EQ(p.items[0].pages, 8u);
    }
  }
}

}  // namespace
}  // namespace dupcache::policy
