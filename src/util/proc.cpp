// SPDX-License-Identifier: GPL-2.0-only
#include "util/proc.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "util/fd.hpp"

namespace dupcache::proc {

namespace {

bool all_digits(const char* s) {
  if (!*s) return false;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9') return false;
  }
  return true;
}

std::optional<std::string> slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Each line of text, without its newline.
template <typename Fn>
void for_each_line(std::string_view text, Fn&& fn) {
  while (!text.empty()) {
    const auto nl = text.find('\n');
    fn(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

}  // namespace

std::vector<int> process_ids() {
  std::vector<int> out;
  if (DIR* d = opendir("/proc")) {
    while (struct dirent* de = readdir(d)) {
      if (all_digits(de->d_name)) out.push_back(std::atoi(de->d_name));
    }
    closedir(d);
  }
  return out;
}

char process_state(int pid) {
  const auto text = slurp("/proc/" + std::to_string(pid) + "/stat");
  // "pid (comm) S ...": comm may hold spaces and parentheses, so the state follows the last ')'.
  if (!text) return 0;
  const auto close = text->rfind(')');
  if (close == std::string::npos || close + 2 >= text->size()) return 0;
  return (*text)[close + 2];
}

std::optional<std::uint64_t> meminfo_bytes(std::string_view text, std::string_view key) {
  std::optional<std::uint64_t> out;
  for_each_line(text, [&](std::string_view line) {
    if (out) return;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || line.substr(0, colon) != key) return;
    std::string_view rest = trim(line.substr(colon + 1));
    std::uint64_t v = 0;
    const auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
    if (ec != std::errc{}) return;
    const std::string_view unit = trim(rest.substr(static_cast<std::size_t>(p - rest.data())));
    if (unit == "kB") {
      if (v > UINT64_MAX / 1024) return;
      v *= 1024;
    } else if (!unit.empty()) {
      return;
    }
    out = v;
  });
  return out;
}

std::optional<std::uint64_t> meminfo_bytes(std::string_view key) {
  const auto text = slurp("/proc/meminfo");
  return text ? meminfo_bytes(*text, key) : std::nullopt;
}

std::optional<double> psi_avg10(std::string_view text, std::string_view kind) {
  std::optional<double> out;
  for_each_line(text, [&](std::string_view line) {
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos || line.substr(0, sp) != kind) return;
    const auto at = line.find("avg10=");
    if (at == std::string_view::npos) return;
    const std::string num(line.substr(at + 6, line.find(' ', at) == std::string_view::npos
                                                  ? std::string_view::npos
                                                  : line.find(' ', at) - at - 6));
    char* end = nullptr;
    const double v = std::strtod(num.c_str(), &end);
    if (end != num.c_str()) out = v;
  });
  return out;
}

std::optional<double> psi_avg10_file(const std::string& path, std::string_view kind) {
  const auto text = slurp(path);
  return text ? psi_avg10(*text, kind) : std::nullopt;
}

bool for_each_held_file(int pid, held_kind kind, const std::function<void(const held_file&)>& fn) {
  const std::string dir = "/proc/" + std::to_string(pid) + (kind == held_kind::mapped ? "/map_files" : "/fd");
  DIR* d = opendir(dir.c_str());
  if (!d) return false;
  while (struct dirent* de = readdir(d)) {
    if (de->d_name[0] == '.') continue;
    held_file h;
    h.dir_fd = dirfd(d);
    h.name = de->d_name;
    if (kind == held_kind::mapped &&
        std::sscanf(de->d_name, "%" SCNx64 "-%" SCNx64, &h.start, &h.end) != 2) {
      continue;
    }
    // Following the link stats the file itself, as the process holds it.
    if (fstatat(h.dir_fd, de->d_name, &h.st, 0) < 0 || !S_ISREG(h.st.st_mode)) continue;
    fn(h);
  }
  closedir(d);
  return true;
}

std::vector<smaps_mapping> parse_smaps(std::string_view text) {
  std::vector<smaps_mapping> out;
  for_each_line(text, [&](std::string_view view) {
    const std::string line(view);  // sscanf wants it terminated
    unsigned long long s = 0, e = 0, off = 0, ino = 0, kib = 0;
    char perms[8] = {};
    unsigned maj = 0, min = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu", &s, &e, perms, &off, &maj, &min, &ino) == 7) {
      out.push_back({s, e, off, perms, maj, min, ino, 0});
    } else if (!out.empty() && std::sscanf(line.c_str(), "Anonymous: %llu kB", &kib) == 1) {
      out.back().anonymous_kib = kib;
    }
  });
  return out;
}

std::optional<std::vector<smaps_mapping>> read_smaps(int pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/smaps";
  const unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  std::string text;
  char buf[1 << 16];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  return parse_smaps(text);
}

}  // namespace dupcache::proc
