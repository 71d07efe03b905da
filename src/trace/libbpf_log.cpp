// SPDX-License-Identifier: GPL-2.0-only
#include "trace/libbpf_log.hpp"

#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

namespace dupcache::trace {
namespace {

std::mutex capture_mutex;
std::string* sink = nullptr;  // guarded by capture_mutex

int capture_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG || sink == nullptr) return 0;
  char line[1024];
  int n = std::vsnprintf(line, sizeof(line), fmt, args);
  if (n > 0) sink->append(line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof(line) - 1));
  return 0;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return std::string(s);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = trim(std::string_view(text).substr(start, end - start));
    if (line.rfind("libbpf: ", 0) == 0) line.erase(0, 8);
    if (!line.empty()) out.push_back(std::move(line));
    start = end + 1;
  }
  return out;
}

std::string blamed_program(const std::vector<std::string>& lines) {
  for (const auto& line : lines) {
    if (line.rfind("prog '", 0) != 0) continue;
    auto end = line.find('\'', 6);
    if (end == std::string::npos) continue;
    bool failure = line.find("fail") != std::string::npos || line.find("error") != std::string::npos ||
                   line.find("invalid") != std::string::npos;
    if (failure) return line.substr(6, end - 6);
  }
  return {};
}

std::string summarize(const std::vector<std::string>& lines) {
  std::string libbpf_line;
  std::string verifier_line;
  bool in_log = false;
  for (const auto& line : lines) {
    if (line.find("-- BEGIN PROG LOAD LOG --") != std::string::npos) {
      in_log = true;
      continue;
    }
    if (line.find("-- END PROG LOAD LOG --") != std::string::npos) {
      in_log = false;
      continue;
    }
    if (in_log) {
      if (line.find("processed ") != 0 && line.find("verification time") == std::string::npos)
        verifier_line = line;
      continue;
    }
    if (libbpf_line.empty() && line.find("prog '") == 0 &&
        (line.find("fail") != std::string::npos || line.find("invalid") != std::string::npos))
      libbpf_line = line;
  }
  if (libbpf_line.empty() && !lines.empty()) libbpf_line = lines.front();
  std::string out = libbpf_line;
  if (!verifier_line.empty()) out += (out.empty() ? "" : "; ") + std::string("verifier: ") + verifier_line;
  constexpr std::size_t max_len = 400;
  if (out.size() > max_len) out = out.substr(0, max_len) + "...";
  return out;
}

std::string errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case E2BIG: return "E2BIG";
    case ENOMEM: return "ENOMEM";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case 524: return "ENOTSUPP";
    case EBUSY: return "EBUSY";
    case ENODEV: return "ENODEV";
    default: return "errno " + std::to_string(err);
  }
}

}  // namespace

libbpf_log::libbpf_log() : lock_(capture_mutex) {
  previous_ = reinterpret_cast<void*>(libbpf_set_print(capture_print));
  sink = &buffer_;
}

libbpf_log::~libbpf_log() {
  sink = nullptr;
  libbpf_set_print(reinterpret_cast<libbpf_print_fn_t>(previous_));
}

log_blame read_blame(const std::string& text) {
  auto lines = lines_of(text);
  return {blamed_program(lines), summarize(lines)};
}

std::string errno_reason(int err) {
  // strerror(524) is "Unknown error 524"; name it.
  std::string text = err == 524 ? std::string("operation not supported by this kernel") : std::strerror(err);
  return errno_name(err) + " (" + text + ")";
}

}  // namespace dupcache::trace
