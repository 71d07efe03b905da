// SPDX-License-Identifier: GPL-2.0-only
// The streamed report of a real mixed tree on btrfs (reflinks, a subvolume and its snapshot,
// plain files, hostile names with bytes that are not UTF-8, a hardlink, a named PATH that is a
// FIFO: an error) is byte for byte what the in-memory renderers give, for the model built from
// a scan that is kept (build_report(const&): the live sampler's way) and from one whose paths
// are moved out (build_report(&&): the one-shot report's way).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include "fs_fixture.hpp"
#include "process.hpp"
#include "report/local.hpp"
#include "report/report.hpp"
#include "scan/scanner.hpp"
#include "util/json_text.hpp"

namespace dupcache {
namespace {

using namespace dupcache::testing;

TEST(ReportStreamBtrfs, MixedTreeByteForByte) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  must({"btrfs", "-q", "subvolume", "create", fs.path("vol")});
  ASSERT_EQ(mkdir(fs.path("vol/d").c_str(), 0755), 0);
  write_file(fs.path("vol/d/lib.so"), 32 * p, 1);
  reflink(fs.path("vol/d/lib.so"), fs.path("vol/d/lib-copy.so"));
  write_file(fs.path("vol/plain"), 5 * p, 2);
  write_file(fs.path("vol/d/\x1b[31mred\nname"), 4 * p, 3);
  reflink(fs.path("vol/d/\x1b[31mred\nname"), fs.path("vol/d/bad\xff\xfe.bin"));
  ASSERT_EQ(link(fs.path("vol/plain").c_str(), fs.path("vol/d/plain-link").c_str()), 0);
  must({"sync"});
  must({"btrfs", "-q", "subvolume", "snapshot", fs.path("vol"), fs.path("snap")});
  for (const char* f : {"vol/d/lib.so", "vol/d/lib-copy.so", "vol/plain", "vol/d/\x1b[31mred\nname",
                        "vol/d/bad\xff\xfe.bin", "snap/d/lib.so", "snap/plain"}) {
    read_all(fs.path(f));
  }
  ASSERT_EQ(mkfifo(fs.path("fifo").c_str(), 0644), 0);

  scan_options so;
  so.paths = {fs.dir(), fs.path("fifo")};
  auto scanned = scan(so);
  ASSERT_TRUE(scanned) << scanned.err().message();
  ASSERT_FALSE(scanned->errors.empty());  // the FIFO named as a PATH
  const scan_result kept = *scanned;
  const report_model from_kept = build_report(kept);
  const report_model from_moved = build_report(std::move(*scanned));
  EXPECT_GE(from_kept.groups.size(), 3u);  // lib.so x3 (two subvolumes), red/bad, plain/snapshot

  using v = report_view;
  for (const report_options& o : {report_options{}, report_options{{v::file, v::group, v::fs}, std::nullopt, true},
                                  report_options{{v::fs, v::file}, 1, false}}) {
    std::ostringstream json, moved_json, text, moved_text;
    write_report_json(json, from_kept, o);
    write_report_json(moved_json, from_moved, o);
    write_report_text(text, from_kept, o);
    write_report_text(moved_text, from_moved, o);
    EXPECT_EQ(json.str(), dump_json(report_json(from_kept, o), 2) + "\n");
    EXPECT_EQ(moved_json.str(), json.str());
    EXPECT_EQ(text.str(), report_text(from_kept, o));
    EXPECT_EQ(moved_text.str(), text.str());
  }
  // The JSON names the non-UTF-8 file by its bytes and parses.
  std::ostringstream json;
  write_report_json(json, from_moved, {});
  EXPECT_NE(json.str().find("\"path_base64\""), std::string::npos);
  EXPECT_TRUE(nlohmann::json::accept(json.str()));
}

}  // namespace
}  // namespace dupcache
