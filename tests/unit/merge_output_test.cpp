// SPDX-License-Identifier: GPL-2.0-only
// What `dupcache merge` prints of a merge pass, text and JSON, from a report made up here: the
// wording and the keys are a contract (scripts and the guest test read them).
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "output/merge.hpp"

namespace dupcache::output {
namespace {

// Two mappings asked about (one merged, one refused for its copy-on-write pages), the copy
// merged off evicted, a canonical copy collected, and a process that was gone.
policy::merge_report merged_run() {
  policy::merge_report r;
  r.module = true;
  r.module_version = "1.1";
  r.mapped = 2;
  const policy::merge_outcome ok{.pid = 42, .start = 0x7f0000000000, .end = 0x7f0000100000, .path = "/mnt/c1",
                                 .canonical = "/mnt/.dupcache-canonical/00ab", .merged = true};
  const policy::merge_outcome cow{.pid = 43, .start = 0x1000, .end = 0x3000, .path = "/mnt/c2", .refusal = "cow",
                                  .error = "1000-3000 of process 43 holds 8 KiB of copy-on-write pages"};
  r.merged.done = {ok, cow};
  r.merged.merged_bytes = 1 << 20;
  r.merged_mappings = 1;
  policy::evict_outcome ev;
  ev.path = "/mnt/c1";
  ev.kept_path = ok.canonical;
  ev.planned_bytes = ev.freed_bytes = 1 << 20;
  r.evicted.done = {ev};
  r.evicted.planned_bytes = r.evicted.freed_bytes = 1 << 20;
  r.canonical_removed = 1;
  r.errors = {"read /proc/44/smaps failed: No such file or directory (no such process)"};
  return r;
}

struct printed {
  std::string out, err;
};

printed text_of(const policy::merge_report& r, bool bytes) {
  std::ostringstream out;
  char* buf = nullptr;
  std::size_t len = 0;
  std::FILE* err = open_memstream(&buf, &len);
  merge_text(r, bytes, out, err);
  std::fclose(err);
  printed p{out.str(), std::string(buf, len)};
  std::free(buf);
  return p;
}

TEST(MergeOutput, TextNamesEachMappingTheEvictionAndTheSummary) {
  const auto p = text_of(merged_run(), true);
  EXPECT_EQ(p.out,
            "merged pid 42 7f0000000000-7f0000100000  /mnt/c1  ->  /mnt/.dupcache-canonical/00ab  (1048576)\n"
            "refused pid 43 1000-3000  /mnt/c2: 1000-3000 of process 43 holds 8 KiB of copy-on-write pages\n"
            "freed   1048576  /mnt/c1  (kept: /mnt/.dupcache-canonical/00ab; paged out of 0 process(es))\n"
            "merged 1 mapping(s) of 2 duplicated file(s) (1048576); freed 1048576; removed 1 unused canonical copy\n");
  EXPECT_EQ(p.err, "dupcache: merge: read /proc/44/smaps failed: No such file or directory (no such process)\n");
}

TEST(MergeOutput, DryRunSaysWouldAndCountsEveryMappingAsked) {
  auto r = merged_run();
  r.dry_run = true;
  r.merged.done.pop_back();
  r.merged.done[0].merged = false;
  r.merged_mappings = 0;
  r.evicted = {};
  r.canonical_removed = 0;
  r.errors.clear();
  const auto p = text_of(r, false);
  EXPECT_EQ(p.out,
            "would merge pid 42 7f0000000000-7f0000100000  /mnt/c1  ->  /mnt/.dupcache-canonical/00ab  (1.0 MiB)\n"
            "would merge 1 mapping(s) of 2 duplicated file(s) (1.0 MiB); freed 0 B; removed 0 unused canonical copies\n");
  EXPECT_EQ(p.err, "");
}

TEST(MergeOutput, WithoutTheModuleTheFallbackIsSaid) {
  policy::merge_report r;
  r.module_declined = true;
  auto p = text_of(r, false);
  EXPECT_EQ(p.err, "dupcache: merge: --no-module: paging out and evicting instead\n");
  EXPECT_EQ(p.out, "nothing to merge: 0 mapped file(s), none with a duplicate cached\n");

  r.module_declined = false;
  r.module_error = "not loaded (/dev/dupcache does not exist)";
  r.mapped = 3;
  r.evicted = merged_run().evicted;
  r.evicted.done[0].pageout_processes = 2;
  p = text_of(r, true);
  EXPECT_EQ(p.err, "dupcache: merge: companion module not loaded (/dev/dupcache does not exist): paging out and "
                   "evicting instead\n");
  EXPECT_EQ(p.out, "freed   1048576  /mnt/c1  (kept: /mnt/.dupcache-canonical/00ab; paged out of 2 process(es))\n"
                   "freed 1048576 from 1 mapped duplicate(s)\n");
}

TEST(MergeOutput, JsonKeysInTheirOrder) {
  std::ostringstream out;
  merge_json(merged_run(), out);
  const auto j = nlohmann::ordered_json::parse(out.str());
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  const std::vector<std::string> want{"merged", "module", "fallback", "dry_run", "mapped_copies", "merged_mappings",
                                      "merged_bytes", "canonical_read_bytes", "canonical_cached_bytes", "mappings", "planned_bytes", "freed_bytes", "actions",
                                      "canonical_removed", "errors"};
  EXPECT_EQ(keys, want);
  EXPECT_EQ(j["merged"], true);
  EXPECT_EQ(j["module"], "1.1");
  EXPECT_TRUE(j["fallback"].is_null());
  ASSERT_EQ(j["mappings"].size(), 2u);
  EXPECT_EQ(j["mappings"][0]["start"], "0x7f0000000000");
  EXPECT_TRUE(j["mappings"][0]["refusal"].is_null());
  EXPECT_TRUE(j["mappings"][0]["error"].is_null());
  EXPECT_EQ(j["mappings"][0]["canonical"], "/mnt/.dupcache-canonical/00ab");
  EXPECT_EQ(j["mappings"][1]["refusal"], "cow");
  EXPECT_EQ(j["actions"][0]["freed_bytes"], 1 << 20);
  EXPECT_EQ(j["canonical_removed"], 1);
  EXPECT_EQ(j["errors"].size(), 1u);

  policy::merge_report declined;
  declined.module_declined = true;
  std::ostringstream o2;
  merge_json(declined, o2);
  const auto d = nlohmann::ordered_json::parse(o2.str());
  EXPECT_TRUE(d["module"].is_null());
  EXPECT_EQ(d["fallback"], "--no-module");
  EXPECT_EQ(d["merged"], false);
}

}  // namespace
}  // namespace dupcache::output
