// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dupcache {

bool is_valid_utf8(std::string_view s);

// A name made safe for a terminal: control characters (C0, DEL, C1) become \n, \t, \e or \xHH,
// bytes that are not valid UTF-8 become \xHH and a backslash becomes \\, so nothing a file name
// holds can move the cursor or change colours, and distinct names stay distinct.
std::string terminal_safe(std::string_view s);

// A path for JSON: valid UTF-8 paths pass unchanged. Otherwise `text` has each invalid byte as
// the four characters \xHH (readable, valid UTF-8) and `raw_base64` carries the exact bytes so the
// path can be recovered.
struct json_path {
  std::string text;
  std::optional<std::string> raw_base64;
};
json_path to_json_path(std::string_view s);
std::string base64_encode(std::string_view bytes);
// The inverse; nullopt for text that is not base64.
std::optional<std::string> base64_decode(std::string_view text);

// A path made to fit `width` columns (counted in bytes: callers pass terminal_safe text)
// without losing what tells it apart from its neighbours: container ids (a component of 16+ hex
// digits) are cut to 12 digits, the file name and the component that names the container (the
// last id, else the one after lxc/, machines/, containers/, subvolumes/ or snapshots/) are kept,
// then as many components as fit from the right, then from the left; what is left out becomes
// "...". Only a file name alone wider than `width` is cut, from the left.
std::string elide_path(std::string_view path, int width);

// 1536 -> "1.5 KiB"; exact bytes below 1 KiB.
std::string human_bytes(std::uint64_t bytes);
// 100 * part / whole with one decimal, "0.0%" when whole is zero.
std::string percent(std::uint64_t part, std::uint64_t whole);

// "a,b,,c" -> {"a", "b", "", "c"}; "" -> {""}: empty items are kept for the caller to refuse.
std::vector<std::string> split_commas(std::string_view v);

}  // namespace dupcache
