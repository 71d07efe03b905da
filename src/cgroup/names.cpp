// SPDX-License-Identifier: GPL-2.0-only
#include "cgroup/names.hpp"

#include <dirent.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

namespace dupcache::cgroup {

namespace {

constexpr std::size_t max_metadata_bytes = 64 << 20;

std::optional<nlohmann::json> read_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::string text;
  char buf[65536];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(f.gcount()));
    if (text.size() > max_metadata_bytes) return std::nullopt;
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = opendir(path.c_str());
  if (!d) return out;
  while (struct dirent* de = readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..") out.push_back(std::move(n));
  }
  closedir(d);
  return out;
}

// Printable ASCII only: names end up on terminals.
std::string clean(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return s;
}

std::string join_root(const std::string& root, const std::string& path) {
  if (root.empty() || root == "/") return path;
  return (root.back() == '/' ? root.substr(0, root.size() - 1) : root) + path;
}

}  // namespace

std::string name_resolver::name(const container_ref& c) {
  if (c.host()) return {};
  const std::string key = c.runtime + ":" + c.id;
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  std::string n;
  if (c.runtime == "docker") n = docker(c.id);
  else if (c.runtime == "podman") n = podman(c.id);
  else if (c.runtime == "containerd" || c.runtime == "cri-o" || c.runtime == "kubernetes") n = kubernetes(c);
  else n = c.id;
  n = clean(std::move(n));
  cache_.emplace(key, n);
  return n;
}

std::string name_resolver::docker(const std::string& id) {
  auto j = read_json(join_root(root_, "/var/lib/docker/containers/" + id + "/config.v2.json"));
  if (!j || !j->is_object()) return {};
  auto it = j->find("Name");
  if (it == j->end() || !it->is_string()) return {};
  std::string n = it->get<std::string>();
  if (!n.empty() && n.front() == '/') n.erase(0, 1);
  return n;
}

void name_resolver::load_podman() {
  podman_loaded_ = true;
  auto j = read_json(join_root(root_, "/var/lib/containers/storage/overlay-containers/containers.json"));
  if (!j || !j->is_array()) return;
  for (const auto& c : *j) {
    if (!c.is_object()) continue;
    auto id = c.find("id");
    auto names = c.find("names");
    if (id == c.end() || !id->is_string() || names == c.end() || !names->is_array() || names->empty() ||
        !(*names)[0].is_string()) {
      continue;
    }
    podman_[id->get<std::string>()] = (*names)[0].get<std::string>();
  }
}

std::string name_resolver::podman(const std::string& id) {
  if (!podman_loaded_) load_podman();
  auto it = podman_.find(id);
  return it == podman_.end() ? std::string() : it->second;
}

void name_resolver::load_kube() {
  kube_loaded_ = true;
  // <pod>_<namespace>_<container>-<64 hex id>.log; pod and namespace names hold no '_'.
  for (const auto& f : list_dir(join_root(root_, "/var/log/containers"))) {
    constexpr std::size_t id_len = 64;
    if (f.size() < id_len + 6 || f.compare(f.size() - 4, 4, ".log") != 0) continue;
    const std::string stem = f.substr(0, f.size() - 4);
    const std::string id = stem.substr(stem.size() - id_len);
    if (stem[stem.size() - id_len - 1] != '-') continue;
    const std::string rest = stem.substr(0, stem.size() - id_len - 1);
    const auto a = rest.find('_');
    const auto b = a == std::string::npos ? a : rest.find('_', a + 1);
    if (b == std::string::npos) continue;
    kube_containers_[id] = rest.substr(a + 1, b - a - 1) + "/" + rest.substr(0, a) + "/" + rest.substr(b + 1);
  }
  // <namespace>_<pod>_<uid>
  for (const auto& d : list_dir(join_root(root_, "/var/log/pods"))) {
    const auto a = d.find('_');
    const auto b = d.rfind('_');
    if (a == std::string::npos || b == a) continue;
    kube_pods_[d.substr(b + 1)] = d.substr(0, a) + "/" + d.substr(a + 1, b - a - 1);
  }
}

std::string name_resolver::kubernetes(const container_ref& c) {
  if (!kube_loaded_) load_kube();
  if (auto it = kube_containers_.find(c.id); it != kube_containers_.end()) return it->second;
  if (auto it = kube_pods_.find(c.pod_uid.empty() ? c.id : c.pod_uid); it != kube_pods_.end()) {
    // The pod itself, or a container of it whose log link is gone: the pod names it.
    return c.id == c.pod_uid || c.pod_uid.empty() ? it->second : it->second + "/" + c.id.substr(0, 12);
  }
  return {};
}

}  // namespace dupcache::cgroup
