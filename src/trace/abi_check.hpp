// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Compile-time check that the C++ view of bpf/dupcache_abi.h is the layout the BPF object was
// built with (clang -target bpf: LP64, little endian, same natural alignment as x86_64). A
// failing assert here means the header changed without a DUPCACHE_BPF_ABI_VERSION bump, or a
// field was added without explicit padding.

#include <cstddef>

#include "dupcache_abi.h"

namespace dupcache::trace::abi {

static_assert(DUPCACHE_BPF_ABI_VERSION == 4, "update the offsets below together with the ABI");

static_assert(sizeof(dupcache_event) == 128);
static_assert(alignof(dupcache_event) == 8);
static_assert(offsetof(dupcache_event, ts_ns) == 0);
static_assert(offsetof(dupcache_event, ino) == 8);
static_assert(offsetof(dupcache_event, subvol_id) == 16);
static_assert(offsetof(dupcache_event, index) == 24);
static_assert(offsetof(dupcache_event, cgroup_id) == 32);
static_assert(offsetof(dupcache_event, off) == 40);
static_assert(offsetof(dupcache_event, off2) == 48);
static_assert(offsetof(dupcache_event, len) == 56);
static_assert(offsetof(dupcache_event, dev) == 64);
static_assert(offsetof(dupcache_event, generation) == 68);
static_assert(offsetof(dupcache_event, nr_pages) == 72);
static_assert(offsetof(dupcache_event, pid) == 76);
static_assert(offsetof(dupcache_event, tid) == 80);
static_assert(offsetof(dupcache_event, fd) == 84);
static_assert(offsetof(dupcache_event, fd2) == 88);
static_assert(offsetof(dupcache_event, aux) == 92);
static_assert(offsetof(dupcache_event, kind) == 96);
static_assert(offsetof(dupcache_event, flags) == 97);
static_assert(offsetof(dupcache_event, cpu) == 98);
static_assert(offsetof(dupcache_event, pad) == 100);
static_assert(offsetof(dupcache_event, comm) == 104);
static_assert(sizeof(dupcache_event::comm) == 16);
static_assert(offsetof(dupcache_event, ts_end_ns) == 120);

static_assert(sizeof(dupcache_run) == 48 + sizeof(dupcache_event));
static_assert(offsetof(dupcache_run, host) == 0);
static_assert(offsetof(dupcache_run, sb) == 8);
static_assert(offsetof(dupcache_run, next_index) == 16);
static_assert(offsetof(dupcache_run, memcg_data) == 24);
static_assert(offsetof(dupcache_run, folios) == 32);
static_assert(offsetof(dupcache_run, busy) == 40);
static_assert(offsetof(dupcache_run, ev) == 48);

static_assert(DUPCACHE_EV_KIND_MAX < DUPCACHE_EV_KIND_SLOTS);
static_assert(sizeof(dupcache_counters) == (2 * DUPCACHE_EV_KIND_SLOTS + 5) * 8);
static_assert(offsetof(dupcache_counters, emitted) == 0);
static_assert(offsetof(dupcache_counters, drops) == DUPCACHE_EV_KIND_SLOTS * 8);
static_assert(offsetof(dupcache_counters, filtered_dev) == 2 * DUPCACHE_EV_KIND_SLOTS * 8);
static_assert(offsetof(dupcache_counters, filtered_nonreg) == 2 * DUPCACHE_EV_KIND_SLOTS * 8 + 8);
static_assert(offsetof(dupcache_counters, filtered_internal) == 2 * DUPCACHE_EV_KIND_SLOTS * 8 + 16);
static_assert(offsetof(dupcache_counters, no_host) == 2 * DUPCACHE_EV_KIND_SLOTS * 8 + 24);
static_assert(offsetof(dupcache_counters, fd_unresolved) == 2 * DUPCACHE_EV_KIND_SLOTS * 8 + 32);
// Per-CPU map values are laid out with an 8-byte stride per CPU; no rounding surprises.
static_assert(sizeof(dupcache_counters) % 8 == 0);

}  // namespace dupcache::trace::abi
