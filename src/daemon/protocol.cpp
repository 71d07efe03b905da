// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/protocol.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <sstream>
#include <nlohmann/json.hpp>

#include "live/sample_json.hpp"
#include "util/fd.hpp"

namespace dupcache::daemon {
namespace {

constexpr std::string_view error_prefix = "error: ";

const char* view_wire_name(report_view v) {
  switch (v) {
    case report_view::file: return "file";
    case report_view::group: return "group";
    case report_view::fs: return "fs";
    case report_view::container: return "container";
  }
  return "file";
}

// Strings of a JSON array member; anything else in it is ignored, as the server always did.
std::vector<std::string> string_items(const nlohmann::json& j, const char* key) {
  std::vector<std::string> out;
  if (auto v = j.find(key); v != j.end() && v->is_array()) {
    for (const auto& x : *v) {
      if (x.is_string()) out.push_back(x.get<std::string>());
    }
  }
  return out;
}

// One connection: the line out, the whole answer in, the "error: " convention applied.
result<std::string> round_trip(const std::string& path, const std::string& request) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return plain_error("connect " + path, "path too long for a Unix socket");
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    return error{"connect " + path, errno, std::string(std::strerror(errno)) + " (is dupcache daemon running?)"};
  }
  const std::string line = request + "\n";
  for (std::size_t off = 0; off < line.size();) {
    const ssize_t n = ::send(fd.get(), line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return errno_error("write to " + path);
    off += static_cast<std::size_t>(n);
  }
  std::string out;
  char buf[65536];
  for (;;) {
    pollfd p{fd.get(), POLLIN, 0};
    // A large report takes the daemon a while to render; the server allows it as long.
    if (::poll(&p, 1, 30000) <= 0) return plain_error("read from " + path, "the daemon did not answer in 30 s");
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0) return errno_error("read from " + path);
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  if (out.starts_with(error_prefix)) {
    std::string why = out.substr(error_prefix.size());
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return plain_error("report from the daemon", why);
  }
  return out;
}

}  // namespace

std::optional<report_view> view_named(std::string_view s) {
  for (auto v : {report_view::file, report_view::group, report_view::fs, report_view::container}) {
    if (s == view_wire_name(v)) return v;
  }
  return std::nullopt;
}

std::string encode(const report_request& r) {
  // nlohmann::json (not ordered): keys go out sorted, as every client has sent them.
  nlohmann::json j;
  std::vector<std::string> views;
  for (auto v : r.views) views.emplace_back(view_wire_name(v));
  j["views"] = views;
  j["json"] = r.json;
  j["top"] = r.top;
  j["bytes"] = r.bytes;
  j["containers"] = r.filter.containers;
  j["cgroups"] = r.filter.cgroups;
  return j.dump();
}

std::string encode(const sample_request& r) {
  nlohmann::json j{{"sample", true}, {"containers", r.filter.containers}, {"cgroups", r.filter.cgroups}};
  if (r.top > 0) j["top"] = r.top;
  if (r.view) {
    j["view"] = {{"name", live::view_name(r.view->view)},
                 {"sort", r.view->sort_column},
                 {"descending", r.view->descending},
                 {"filter", r.view->filter}};
  }
  return j.dump();
}

namespace {

result<live::view_state> decode_view(const nlohmann::json& v) {
  auto bad = [](const std::string& why) { return plain_error("read the request", "view: " + why); };
  if (!v.is_object()) return bad("not an object");
  live::view_state st;
  const auto name = v.find("name");
  if (name == v.end() || !name->is_string()) return bad("no name");
  bool known = false;
  for (auto k : {live::view_kind::files, live::view_kind::groups, live::view_kind::filesystems, live::view_kind::containers}) {
    if (name->get<std::string>() == live::view_name(k)) {
      st.view = k;
      known = true;
    }
  }
  if (!known) return bad("unknown view '" + name->get<std::string>() + "'");
  // A column past the last sorts by the last, as the screen's own sort does.
  if (auto c = v.find("sort"); c != v.end()) {
    if (!c->is_number_unsigned()) return bad("sort is not a column number");
    st.sort_column = c->get<std::size_t>();
  }
  if (auto d = v.find("descending"); d != v.end()) {
    if (!d->is_boolean()) return bad("descending is not true or false");
    st.descending = d->get<bool>();
  }
  if (auto f = v.find("filter"); f != v.end()) {
    if (!f->is_string()) return bad("filter is not text");
    st.filter = f->get<std::string>();
  }
  return st;
}

}  // namespace

result<request> decode_request(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return plain_error("read the request", "the request is not a JSON object");
  // Views are checked in either kind of request: a sample request naming a bad view has
  // always been refused.
  std::vector<report_view> views;
  bool views_given = false;
  if (auto v = j.find("views"); v != j.end() && v->is_array()) {
    views_given = true;
    for (const auto& x : *v) {
      const std::string s = x.is_string() ? x.get<std::string>() : "";
      auto named = view_named(s);
      if (!named) return plain_error("read the request", "unknown view '" + s + "'");
      views.push_back(*named);
    }
  }
  std::size_t top = 0;
  if (auto v = j.find("top"); v != j.end() && v->is_number_unsigned()) top = v->get<std::size_t>();
  const bool bytes = j.value("bytes", false);
  const container_filter filter{string_items(j, "containers"), string_items(j, "cgroups")};
  if (j.value("sample", false)) {
    sample_request r{top, filter, std::nullopt};
    if (auto v = j.find("view"); v != j.end()) {
      auto st = decode_view(*v);
      if (!st) return st.err();
      r.view = std::move(*st);
    }
    return request{std::move(r)};
  }
  report_request r;
  if (views_given) r.views = std::move(views);
  r.json = j.value("json", false);
  r.top = top;
  r.bytes = bytes;
  r.filter = filter;
  return request{std::move(r)};
}

std::string encode_error(std::string_view why) { return std::string(error_prefix) + std::string(why) + "\n"; }

std::string encode_report_reply(const report_model& m, const report_request& r) {
  report_options ro;
  ro.views = r.views;
  if (r.top > 0) ro.top = r.top;
  ro.exact_bytes = r.bytes;
  if (!r.json) return report_text(m, ro);
  // Written as it is produced, as report --json writes it: the document tree would take about
  // ten times the text's size (1.5 GB for a million cached files), and a daemon's heap keeps
  // most of what it once held.
  std::ostringstream out;
  write_report_json(out, m, ro);
  return std::move(out).str();
}

std::string encode_sample_reply(const live::sample& s, std::size_t top) {
  std::ostringstream out;
  live::write_sample_json(out, s, top);
  out << '\n';
  return std::move(out).str();
}

std::string encode_sample_reply(const live::sample& s, const sample_request& r) {
  if (!r.view) return encode_sample_reply(s, r.top);
  // Only the rows the view shows, in its own list: at a million cached files the whole sample
  // took the daemon seconds to write and the client 20 s and 1.6 GB to read, every interval.
  row_selection rows;
  std::vector<std::size_t> shown;
  if (r.view->view == live::view_kind::containers) {
    // Chosen among the rows as the client will read them: a container's names travel as JSON
    // text, where bytes that are not UTF-8 do not come back as they were (paths do), and the
    // client filters what it reads. The containers alone make the trip: a short document.
    row_selection all;
    for (std::size_t i = 0; i < s.model.containers.size(); ++i) all.containers.push_back(i);
    std::ostringstream trip;
    live::write_sample_json(trip, s, all);
    live::sample read;
    read.model = report_from_json(nlohmann::json::parse(trip.str()));
    shown = live::shown_sources(read, *r.view, r.top);
  } else {
    shown = live::shown_sources(s, *r.view, r.top);
  }
  switch (r.view->view) {
    case live::view_kind::files: rows.files = std::move(shown); break;
    case live::view_kind::groups: rows.groups = std::move(shown); break;
    case live::view_kind::containers: rows.containers = std::move(shown); break;
    case live::view_kind::filesystems: break;  // always listed whole
  }
  std::ostringstream out;
  live::write_sample_json(out, s, rows);
  out << '\n';
  return std::move(out).str();
}

result<live::sample> decode_sample_reply(const std::string& answer) {
  try {
    auto s = live::sample_from_json(nlohmann::json::parse(answer));
    s.mode = "daemon, " + s.mode;
    s.live = s.mode.find("live") != std::string::npos;
    return s;
  } catch (const std::exception& e) {
    return plain_error("read the daemon's sample", e.what());
  }
}

result<std::string> ask_report(const std::string& socket_path, const report_request& r) {
  return round_trip(socket_path, encode(r));
}

result<live::sample> ask_sample(const std::string& socket_path, const sample_request& r) {
  auto answer = round_trip(socket_path, encode(r));
  if (!answer) return answer.err();
  return decode_sample_reply(*answer);
}

}  // namespace dupcache::daemon
