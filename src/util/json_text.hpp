// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Text from outside (file names, error messages that quote them) into JSON. nlohmann's dump()
// throws type_error 316 on bytes that are not UTF-8, and a name is any bytes a user chose: one
// uncaught throw aborted the CLI and crash-looped the daemon. So:
//   - paths go through put_path(): "key" is readable text, "key_base64" the exact bytes when
//     they are not UTF-8 (the shape report --json documents);
//   - free text goes through json_text(): invalid bytes become \xHH;
//   - and every document built from such content is written with dump_json(), which replaces
//     what slipped through instead of throwing, as the last line of defence.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "util/text.hpp"

namespace dupcache {

inline std::string json_text(std::string_view s) { return to_json_path(s).text; }

template <typename Json>
Json& put_path(Json& obj, std::string_view key, std::string_view path) {
  auto p = to_json_path(path);
  obj[std::string(key)] = std::move(p.text);
  if (p.raw_base64) obj[std::string(key) + "_base64"] = std::move(*p.raw_base64);
  return obj;
}

template <typename Json>
std::string dump_json(const Json& j, int indent = -1) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

}  // namespace dupcache
