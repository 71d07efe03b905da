// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Readers of /proc and PSI files: each /proc format is parsed here and nowhere else. Every
// reader tolerates a process vanishing under it (it then reads nothing of that process).

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dupcache::proc {

// The pid of every process in /proc.
std::vector<int> process_ids();

// The state letter of /proc/PID/stat ('R', 'S', 'T', 't', ...), or 0 when it cannot be read.
char process_state(int pid);

// A field of /proc/meminfo (e.g. "Cached", "MemAvailable") in bytes; nullopt when absent.
// `text` is the file's content; meminfo_bytes(key) reads /proc/meminfo.
std::optional<std::uint64_t> meminfo_bytes(std::string_view text, std::string_view key);
std::optional<std::uint64_t> meminfo_bytes(std::string_view key);

// avg10 of the "some" or "full" line of a PSI file (/proc/pressure/memory, a cgroup's
// memory.pressure); nullopt when the file or the line is missing. `text`: the file's content.
std::optional<double> psi_avg10(std::string_view text, std::string_view kind);
std::optional<double> psi_avg10_file(const std::string& path, std::string_view kind);

// One entry of /proc/PID/map_files (a mapped range) or /proc/PID/fd (an open file), with the
// stat of the file it names (the link followed: the file as the process holds it).
struct held_file {
  int dir_fd = -1;           // the map_files or fd directory: openat(dir_fd, name, ...) reopens it
  const char* name = "";     // "start-end" in hex for map_files, the fd number for fd
  std::uint64_t start = 0;   // map_files only: the mapped address range
  std::uint64_t end = 0;
  struct stat st {};
};
enum class held_kind { mapped, open };
// Calls fn for every regular file the process maps (held_kind::mapped) or holds open
// (held_kind::open). False, with errno set, when the directory cannot be read (the process is
// gone, a kernel thread, or not ours to read).
bool for_each_held_file(int pid, held_kind kind, const std::function<void(const held_file&)>& fn);

// One mapping of /proc/PID/smaps: its header line and the one field read of its block.
struct smaps_mapping {
  std::uint64_t start = 0, end = 0, offset = 0;
  std::string perms;  // "r-xp", ...
  unsigned dev_major = 0, dev_minor = 0;
  std::uint64_t inode = 0;          // 0 for an anonymous mapping
  std::uint64_t anonymous_kib = 0;  // its copy-on-write pages ("Anonymous:")
};
// The mappings of one /proc/PID/smaps text, in its order; lines that are neither a mapping's
// header nor a field of one are skipped.
std::vector<smaps_mapping> parse_smaps(std::string_view text);
// /proc/PID/smaps read and parsed; nullopt, with errno set, when it cannot be opened.
std::optional<std::vector<smaps_mapping>> read_smaps(int pid);

}  // namespace dupcache::proc
