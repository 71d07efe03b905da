// SPDX-License-Identifier: GPL-2.0-only
#include "util/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

namespace dupcache {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one (overlongs,
// surrogates and code points past U+10FFFF are invalid).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  std::size_t n;
  std::uint32_t cp;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    n = 2;
    cp = b0 & 0x1f;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 3;
    cp = b0 & 0x0f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return 0;
  if (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) return 0;
  return n;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string terminal_safe(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const std::size_t n = utf8_sequence(s, i);
    if (n == 1) {
      if (b == '\\') out += "\\\\";
      else if (b == '\n') out += "\\n";
      else if (b == '\t') out += "\\t";
      else if (b == 0x1b) out += "\\e";
      else if (b < 0x20 || b == 0x7f) out += fmt::format("\\x{:02x}", b);
      else out += static_cast<char>(b);
      ++i;
    } else if (n == 2 && b == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0) {
      // C1 controls U+0080..U+009F: some terminals act on them (CSI is U+009B).
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(s[i + 1]));
      i += 2;
    } else if (n == 0) {
      out += fmt::format("\\x{:02x}", b);
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                            static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += rest == 2 ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

json_path to_json_path(std::string_view s) {
  if (is_valid_utf8(s)) return {std::string(s), std::nullopt};
  json_path p;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) {
      p.text += fmt::format("\\x{:02x}", static_cast<unsigned char>(s[i]));
      ++i;
    } else {
      p.text.append(s.substr(i, n));
      i += n;
    }
  }
  p.raw_base64 = base64_encode(s);
  return p;
}

std::string human_bytes(std::uint64_t bytes) {
  static constexpr std::array<const char*, 6> units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double v = static_cast<double>(bytes) / 1024.0;
  std::size_t u = 0;
  // Decide on the value as it will be printed, so 1048575 B is "1.0 MiB", not "1024 KiB".
  auto shown = [](double x) { return x >= 99.95 ? std::round(x) : std::round(x * 10.0) / 10.0; };
  while (shown(v) >= 1024.0 && u + 1 < units.size()) {
    v /= 1024.0;
    ++u;
  }
  return shown(v) >= 100.0 ? fmt::format("{:.0f} {}", v, units[u]) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string percent(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return "0.0%";
  return fmt::format("{:.1f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

std::optional<std::string> base64_decode(std::string_view text) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + static_cast<std::size_t>(k)];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else if (pad > 0 || (v[k] = val(c)) < 0) {
        return std::nullopt;
      }
    }
    const std::uint32_t n = (static_cast<std::uint32_t>(v[0]) << 18) | (static_cast<std::uint32_t>(v[1]) << 12) |
                            (static_cast<std::uint32_t>(v[2]) << 6) | static_cast<std::uint32_t>(v[3]);
    out += static_cast<char>(n >> 16);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

namespace {

bool is_hex_id(std::string_view c) {
  if (c.size() < 16) return false;
  return std::all_of(c.begin(), c.end(), [](char x) { return (x >= '0' && x <= '9') || (x >= 'a' && x <= 'f'); });
}

std::string cut_left(std::string_view s, int width) {
  if (width <= 0) return "";
  if (static_cast<int>(s.size()) <= width) return std::string(s);
  if (width <= 3) return std::string(s.substr(s.size() - static_cast<std::size_t>(width)));
  std::size_t start = s.size() - static_cast<std::size_t>(width - 3);
  while (start < s.size() && (static_cast<unsigned char>(s[start]) & 0xc0) == 0x80) ++start;
  return "..." + std::string(s.substr(start));
}

}  // namespace

std::string elide_path(std::string_view path, int width) {
  if (width <= 0) return "";
  if (static_cast<int>(path.size()) <= width) return std::string(path);
  const bool absolute = !path.empty() && path.front() == '/';
  std::vector<std::string> comps;
  for (std::size_t pos = absolute ? 1 : 0; pos <= path.size();) {
    const std::size_t slash = std::min(path.find('/', pos), path.size());
    comps.emplace_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  std::optional<std::size_t> names;  // the component that names the container
  for (std::size_t i = 0; i + 1 < comps.size(); ++i) {
    if (is_hex_id(comps[i])) {
      comps[i].resize(12);
      names = i;
    }
  }
  auto join_all = [&] {
    std::string out = absolute ? "/" : "";
    for (std::size_t i = 0; i < comps.size(); ++i) out += (i ? "/" : "") + comps[i];
    return out;
  };
  if (std::string all = join_all(); static_cast<int>(all.size()) <= width) return all;
  if (!names) {
    static constexpr std::string_view parents[] = {"lxc", "machines", "containers", "subvolumes", "snapshots"};
    for (std::size_t i = 0; i + 2 < comps.size(); ++i) {
      if (std::find(std::begin(parents), std::end(parents), comps[i]) != std::end(parents)) names = i + 1;
    }
  }
  const std::size_t last = comps.size() - 1;
  std::vector<bool> keep(comps.size(), false);
  keep[last] = true;
  if (names) keep[*names] = true;
  auto render = [&] {
    std::string out = absolute ? "/" : "";
    bool first = true, gap = false;
    for (std::size_t i = 0; i < comps.size(); ++i) {
      if (!keep[i]) {
        gap = true;
        continue;
      }
      if (gap) out += first ? ".../" : "/.../";
      else if (!first) out += "/";
      out += comps[i];
      first = gap = false;
    }
    return out;
  };
  std::string best = render();
  if (static_cast<int>(best.size()) > width) {
    // Even the container and the file name do not fit: the file name alone, cut if need be.
    std::string tail = ".../" + comps[last];
    return static_cast<int>(tail.size()) <= width ? tail : cut_left(comps[last], width);
  }
  auto try_keep = [&](std::size_t i) {
    if (keep[i]) return;
    keep[i] = true;
    std::string r = render();
    if (static_cast<int>(r.size()) <= width) best = std::move(r);
    else keep[i] = false;
  };
  for (std::size_t i = last; i-- > 0;) try_keep(i);
  for (std::size_t i = 0; i < last; ++i) try_keep(i);
  return best;
}

std::vector<std::string> split_commas(std::string_view v) {
  std::vector<std::string> out;
  for (std::size_t start = 0; start <= v.size();) {
    const std::size_t comma = std::min(v.find(',', start), v.size());
    out.emplace_back(v.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace dupcache
