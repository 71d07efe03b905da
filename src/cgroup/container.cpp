// SPDX-License-Identifier: GPL-2.0-only
#include "cgroup/container.hpp"

#include <vector>

namespace dupcache::cgroup {
namespace {

bool hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// 8-4-4-4-12 hex with '-' (or '_' as systemd slices write it), lower case as Kubernetes makes it.
bool pod_uid(std::string_view s, std::string* out) {
  if (s.size() != 36) return false;
  std::string u(s);
  for (std::size_t i = 0; i < u.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash) {
      if (u[i] != '-' && u[i] != '_') return false;
      u[i] = '-';
    } else if (!((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f'))) {
      return false;
    }
  }
  *out = std::move(u);
  return true;
}

bool take_affixes(std::string_view s, std::string_view prefix, std::string_view suffix, std::string_view* mid) {
  if (s.size() < prefix.size() + suffix.size()) return false;
  if (s.substr(0, prefix.size()) != prefix || s.substr(s.size() - suffix.size()) != suffix) return false;
  *mid = s.substr(prefix.size(), s.size() - prefix.size() - suffix.size());
  return true;
}

// A name from a cgroup path that we report: printable ASCII without '/', at most 255 bytes
// (a path component's limit). Anything else makes the component not a container name.
bool plain_name(std::string_view s) {
  if (s.empty() || s.size() > 255) return false;
  for (unsigned char c : s)
    if (c < 0x21 || c > 0x7e || c == '/') return false;
  return true;
}

std::vector<std::string_view> components(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    std::size_t j = i;
    while (j < path.size() && path[j] != '/') ++j;
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string join(const std::vector<std::string_view>& parts, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += '/';
    out += parts[i];
  }
  return out.empty() ? "/" : out;
}

// Kubernetes pod and QoS from one component, either driver. True if it names a pod.
bool kube_pod(std::string_view c, std::string_view parent, container_ref* r) {
  std::string_view mid;
  std::string uid;
  // systemd driver: kubepods-pod<uid>.slice, kubepods-burstable-pod<uid>.slice
  if (take_affixes(c, "kubepods-", ".slice", &mid)) {
    std::string_view qos;
    if (mid.substr(0, 10) == "burstable-") {
      qos = "burstable";
      mid.remove_prefix(10);
    } else if (mid.substr(0, 11) == "besteffort-") {
      qos = "besteffort";
      mid.remove_prefix(11);
    } else {
      qos = "guaranteed";
    }
    if (mid.substr(0, 3) != "pod" || !pod_uid(mid.substr(3), &uid)) return false;
    r->pod_uid = uid;
    r->qos = std::string(qos);
    return true;
  }
  // cgroupfs driver: /kubepods/pod<uid>, /kubepods/burstable/pod<uid>
  if (c.substr(0, 3) == "pod" && pod_uid(c.substr(3), &uid)) {
    if (parent == "kubepods") r->qos = "guaranteed";
    else if (parent == "burstable" || parent == "besteffort") r->qos = std::string(parent);
    else return false;
    r->pod_uid = uid;
    return true;
  }
  return false;
}

}  // namespace

std::string unescape_unit(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hexval = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x') {
      const int hi = hexval(s[i + 2]);
      const int lo = hexval(s[i + 3]);
      if (hi >= 0 && lo >= 0) {
        const int v = hi * 16 + lo;
        if (v >= 0x20 && v < 0x7f && v != '/') {
          out += static_cast<char>(v);
          i += 3;
          continue;
        }
      }
    }
    out += s[i];
  }
  return out;
}

container_ref classify(std::string_view path) {
  const auto parts = components(path);
  container_ref pod;  // Kubernetes pod seen on the way down, if any
  std::size_t pod_depth = 0;
  container_ref found;

  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string_view c = parts[i];
    const std::string_view parent = i > 0 ? parts[i - 1] : std::string_view();
    std::string_view mid;
    container_ref r;

    if (kube_pod(c, parent, &r)) {
      pod = r;
      pod_depth = i + 1;
      continue;
    }
    if (take_affixes(c, "docker-", ".scope", &mid) && hex64(mid)) {
      r.runtime = "docker";
      r.id = std::string(mid);
    } else if (parent == "docker" && hex64(c)) {
      r.runtime = "docker";
      r.id = std::string(c);
    } else if (take_affixes(c, "cri-containerd-", ".scope", &mid) && hex64(mid)) {
      r.runtime = "containerd";
      r.id = std::string(mid);
    } else if (take_affixes(c, "crio-conmon-", ".scope", &mid) && hex64(mid)) {
      r.runtime = "cri-o";
      r.id = std::string(mid);
      r.monitor = true;
    } else if (take_affixes(c, "crio-", ".scope", &mid) && hex64(mid)) {
      r.runtime = "cri-o";
      r.id = std::string(mid);
    } else if (take_affixes(c, "libpod-conmon-", ".scope", &mid) && hex64(mid)) {
      r.runtime = "podman";
      r.id = std::string(mid);
      r.monitor = true;
    } else if ((take_affixes(c, "libpod-", ".scope", &mid) || (parent == "libpod_parent" && take_affixes(c, "libpod-", "", &mid))) &&
               hex64(mid)) {
      r.runtime = "podman";
      r.id = std::string(mid);
    } else if (pod_depth == i && !pod.pod_uid.empty() && hex64(c)) {
      // cgroupfs driver under a pod: the container's id alone; the runtime does not say which.
      r.runtime = "kubernetes";
      r.id = std::string(c);
    } else if (parent == "machine.slice" && take_affixes(c, "machine-", ".scope", &mid) && plain_name(mid)) {
      r.runtime = "systemd-nspawn";
      r.id = unescape_unit(mid);
    } else if (parent == "machine.slice" && take_affixes(c, "systemd-nspawn@", ".service", &mid) && plain_name(mid)) {
      r.runtime = "systemd-nspawn";
      r.id = unescape_unit(mid);
    } else if (take_affixes(c, "lxc.payload.", "", &mid) && plain_name(mid)) {
      r.runtime = "lxc";
      r.id = std::string(mid);
    } else if (i == 1 && parent == "lxc" && plain_name(c)) {
      r.runtime = "lxc";
      r.id = std::string(c);
    } else if (take_affixes(c, "", ".service", &mid) && plain_name(c) && !mid.empty() && found.runtime.empty()) {
      r.runtime = "systemd";
      r.id = unescape_unit(c);
    } else {
      continue;
    }
    // Containers nest (a service inside a container, a container inside a pod): the outermost
    // container wins, except that a systemd service is replaced by a container inside it.
    if (!found.runtime.empty() && found.runtime != "systemd") continue;
    r.cgroup = join(parts, i + 1);
    found = std::move(r);
  }
  if (!pod.pod_uid.empty()) {
    if (found.runtime.empty() || found.runtime == "systemd") {
      // The pod itself (its pause container, or pod-level charges).
      container_ref r = pod;
      r.runtime = "kubernetes";
      r.id = pod.pod_uid;
      r.cgroup = join(parts, pod_depth);
      return r;
    }
    found.pod_uid = pod.pod_uid;
    found.qos = pod.qos;
  }
  return found;
}

}  // namespace dupcache::cgroup
