// SPDX-License-Identifier: GPL-2.0-only
//
// Decoding of ring-buffer records: no privileges needed.

#include <gtest/gtest.h>
#include <sys/sysmacros.h>

#include <cstring>
#include <vector>

#include "dupcache_abi.h"
#include "trace/abi_check.hpp"
#include "trace/event.hpp"

namespace dupcache::test {
namespace {

using trace::decode_event;
using trace::event_kind;

dupcache_event sample() {
  dupcache_event raw{};
  raw.ts_ns = 123456789;
  raw.ino = 257;
  raw.subvol_id = 256;
  raw.index = 16;
  raw.cgroup_id = 2906;
  raw.dev = (0u << 20) | 45u;
  raw.generation = 7;
  raw.nr_pages = 4;
  raw.pid = 100;
  raw.tid = 101;
  raw.fd = DUPCACHE_FD_NONE;
  raw.fd2 = DUPCACHE_FD_NONE;
  raw.kind = DUPCACHE_EV_CACHE_ADD;
  raw.flags = DUPCACHE_EVF_IDENTITY;
  raw.cpu = 3;
  raw.ts_end_ns = 123999999;
  std::memcpy(raw.comm, "pread-test", 11);
  return raw;
}

TEST(decode_event, decodes_every_field) {
  auto raw = sample();
  auto ev = decode_event(&raw, sizeof(raw));
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->kind, event_kind::cache_add);
  EXPECT_EQ(ev->timestamp_ns, 123456789u);
  EXPECT_EQ(ev->end_timestamp_ns, 123999999u);
  EXPECT_EQ(ev->cpu, 3u);
  EXPECT_FALSE(ev->unordered);
  EXPECT_EQ(ev->ino, 257u);
  EXPECT_EQ(ev->subvol_id, 256u);
  EXPECT_EQ(ev->index, 16u);
  EXPECT_EQ(ev->nr_pages, 4u);
  EXPECT_EQ(ev->cgroup_id, 2906u);
  EXPECT_EQ(ev->dev_major, 0u);
  EXPECT_EQ(ev->dev_minor, 45u);
  EXPECT_EQ(ev->dev, makedev(0, 45));
  EXPECT_EQ(ev->generation, 7u);
  EXPECT_EQ(ev->pid, 100u);
  EXPECT_EQ(ev->tid, 101u);
  EXPECT_EQ(ev->comm_view(), "pread-test");
  EXPECT_EQ(ev->fd, -1);
  EXPECT_EQ(ev->fd2, -1);
  EXPECT_TRUE(ev->has_identity);
  EXPECT_TRUE(ev->is_cache());
  EXPECT_FALSE(ev->is_sharing());
}

TEST(decode_event, end_time_is_never_before_start_and_unordered_flag_decodes) {
  auto raw = sample();
  raw.ts_end_ns = 0;  // not filled: a single instant
  raw.flags |= DUPCACHE_EVF_UNORDERED;
  auto ev = decode_event(&raw, sizeof(raw));
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->end_timestamp_ns, ev->timestamp_ns);
  EXPECT_TRUE(ev->unordered);
}

TEST(decode_event, rejects_short_and_unknown_records) {
  auto raw = sample();
  EXPECT_FALSE(decode_event(&raw, sizeof(raw) - 1));
  EXPECT_FALSE(decode_event(nullptr, sizeof(raw)));
  raw.kind = 0;
  EXPECT_FALSE(decode_event(&raw, sizeof(raw)));
  raw.kind = DUPCACHE_EV_KIND_MAX + 1;
  EXPECT_FALSE(decode_event(&raw, sizeof(raw)));
}

TEST(decode_event, accepts_longer_records_and_unaligned_data) {
  auto raw = sample();
  std::vector<unsigned char> buf(sizeof(raw) + 9);
  std::memcpy(buf.data() + 1, &raw, sizeof(raw));
  auto ev = decode_event(buf.data() + 1, sizeof(raw) + 8);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->ino, 257u);
}

TEST(decode_event, comm_without_terminator_is_cut_at_15) {
  auto raw = sample();
  std::memset(raw.comm, 'x', sizeof(raw.comm));
  auto ev = decode_event(&raw, sizeof(raw));
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->comm_view().size(), 15u);
}

TEST(decode_event, sharing_flags) {
  auto raw = sample();
  raw.kind = DUPCACHE_EV_SHARE_COPY_RANGE;
  raw.flags = DUPCACHE_EVF_OFF_IS_FPOS | DUPCACHE_EVF_ARGS_UNREAD;
  raw.fd = 5;
  raw.fd2 = 6;
  auto ev = decode_event(&raw, sizeof(raw));
  ASSERT_TRUE(ev);
  EXPECT_TRUE(ev->is_sharing());
  EXPECT_FALSE(ev->has_identity);
  EXPECT_TRUE(ev->off_is_file_pos);
  EXPECT_FALSE(ev->off2_is_file_pos);
  EXPECT_TRUE(ev->args_unread);
  EXPECT_EQ(ev->fd, 5);
  EXPECT_EQ(ev->fd2, 6);
  EXPECT_EQ(trace::to_string(ev->kind), "copy_file_range");
}

TEST(kernel_dev, round_trips_large_minors) {
  // The kernel keeps 20 minor bits, glibc's dev_t splits them differently.
  dev_t d = makedev(259, 0x12345);
  std::uint32_t k = trace::kernel_dev_from(d);
  EXPECT_EQ(k, (259u << 20) | 0x12345u);
  EXPECT_EQ(trace::dev_from_kernel(k), d);
}

}  // namespace
}  // namespace dupcache::test
