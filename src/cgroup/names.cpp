// SPDX-License-Identifier: GPL-2.0-only
#include "cgroup/names.hpp"

#include <dirent.h>

#include <algorithm>
#include <memory>
#include <set>
#include <tuple>

namespace dupcache::cgroup {

namespace {

constexpr std::size_t max_log_entries = max_known_containers;

struct dir_closer {
  void operator()(DIR* d) const { ::closedir(d); }
};

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> out;
  std::unique_ptr<DIR, dir_closer> d(::opendir(path.c_str()));
  if (!d) return out;
  while (struct dirent* de = ::readdir(d.get())) {
    std::string n = de->d_name;
    if (n == "." || n == "..") continue;
    if (out.size() >= max_log_entries) break;
    out.push_back(std::move(n));
  }
  return out;
}

std::string clean(std::string s) { return clean_name(std::move(s)); }

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
  if (c.runtime == "containerd" || c.runtime == "cri-o" || c.runtime == "kubernetes") {
    // CRI-O's catalog entry has the log link's name when there is one, else its storage name.
    if (const known_container* k = c.runtime == "cri-o" ? find(c.runtime, c.id) : nullptr) n = k->name;
    if (n.empty()) n = kubernetes(c);
  } else if (c.runtime == "docker" || c.runtime == "podman" || c.runtime == "lxc" || c.runtime == "systemd-nspawn") {
    if (const known_container* k = find(c.runtime, c.id)) {
      n = k->name;
    } else if (c.runtime == "docker") {
      // Created after the catalog was read.
      if (auto d = runtime_metadata(root_).docker_container(c.id)) n = d->name;
    }
    if (n.empty() && (c.runtime == "lxc" || c.runtime == "systemd-nspawn")) n = c.id;
  } else {
    n = c.id;
  }
  n = clean(std::move(n));
  cache_.emplace(key, n);
  return n;
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

void name_resolver::load_catalog() {
  catalog_loaded_ = true;
  runtime_metadata meta(root_);
  std::vector<known_container> all = meta.containers();
  storage_ = meta.storage();

  // Kubernetes: containers by their log links, pods by their log directories. A container id
  // that CRI-O's storage holds is CRI-O's; the others are containerd's (the links do not say).
  if (!kube_loaded_) load_kube();
  std::map<std::string, std::size_t> crio;
  for (std::size_t i = 0; i < all.size(); ++i)
    if (all[i].runtime == "cri-o") crio.emplace(all[i].id, i);
  for (const auto& [id, kname] : kube_containers_) {
    if (auto it = crio.find(id); it != crio.end()) {
      all[it->second].name = clean(kname);
    } else if (all.size() < max_known_containers) {
      all.push_back({"containerd", id, clean(kname), {}, std::nullopt});
    }
  }
  for (const auto& [uid, pname] : kube_pods_)
    if (all.size() < max_known_containers) all.push_back({"kubernetes", uid, clean(pname), {}, std::nullopt});

  // The first of a runtime and id wins: system stores are read before users'.
  std::set<std::pair<std::string, std::string>> ids;
  for (auto& k : all) {
    if (!ids.insert({k.runtime, k.id}).second) continue;
    catalog_.push_back(std::move(k));
  }
  std::sort(catalog_.begin(), catalog_.end(), [](const known_container& a, const known_container& b) {
    return std::tie(a.runtime, a.name, a.id) < std::tie(b.runtime, b.name, b.id);
  });
  for (std::size_t i = 0; i < catalog_.size(); ++i) {
    by_id_.emplace(std::make_pair(catalog_[i].runtime, catalog_[i].id), i);
    for (const auto& r : catalog_[i].roots) by_root_.emplace(r, i);
  }
}

const known_container* name_resolver::find(const std::string& runtime, const std::string& id) {
  if (!catalog_loaded_) load_catalog();
  auto it = by_id_.find({runtime, id});
  return it == by_id_.end() ? nullptr : &catalog_[it->second];
}

const std::vector<known_container>& name_resolver::containers() {
  if (!catalog_loaded_) load_catalog();
  return catalog_;
}

std::vector<std::string> name_resolver::known_names() {
  if (!catalog_loaded_) load_catalog();
  std::vector<std::string> out;
  for (const auto& k : catalog_) {
    if (!k.name.empty()) out.push_back(k.name);
    if (!k.id.empty()) out.push_back(clean(k.id));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<storage_location> name_resolver::storage() {
  if (!catalog_loaded_) load_catalog();
  return storage_;
}

const known_container* name_resolver::owner_of_path(std::string_view path) {
  if (!catalog_loaded_) load_catalog();
  if (by_root_.empty() || path.empty() || path.front() != '/') return nullptr;
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  // Longest prefix first: the path itself, then each parent. Roots are never "/".
  for (;;) {
    if (auto it = by_root_.find(path); it != by_root_.end()) return &catalog_[it->second];
    const std::size_t slash = path.rfind('/');
    if (slash == std::string_view::npos || slash == 0) return nullptr;
    path = path.substr(0, slash);
  }
}

void name_resolver::refresh() {
  cache_.clear();
  kube_loaded_ = false;
  kube_containers_.clear();
  kube_pods_.clear();
  catalog_loaded_ = false;
  catalog_.clear();
  storage_.clear();
  by_id_.clear();
  by_root_.clear();
}

}  // namespace dupcache::cgroup
