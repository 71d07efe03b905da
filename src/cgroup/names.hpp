// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Container names from the runtimes' local metadata, read from files, never through a daemon:
//   Docker      <root>/var/lib/docker/containers/<id>/config.v2.json        "Name": "/web"
//   Podman      <root>/var/lib/containers/storage/overlay-containers/containers.json
//               [{"id": ..., "names": ["web"]}]
//   Kubernetes  <root>/var/log/containers/<pod>_<namespace>_<container>-<id>.log (kubelet's
//               links, for containerd and CRI-O containers), <root>/var/log/pods/
//               <namespace>_<pod>_<uid>/ for pods: "namespace/pod/container", "namespace/pod"
//   nspawn, LXC, systemd: the id is the name.
// Anything unreadable leaves the name empty; the id still names the container.

#include <map>
#include <string>

#include "cgroup/container.hpp"

namespace dupcache::cgroup {

class name_resolver {
 public:
  // root: "/" on a host; tests point it at a scratch tree.
  explicit name_resolver(std::string root = "/") : root_(std::move(root)) {}
  std::string name(const container_ref& c);

 private:
  std::string docker(const std::string& id);
  std::string podman(const std::string& id);
  std::string kubernetes(const container_ref& c);
  void load_kube();
  void load_podman();

  std::string root_;
  std::map<std::string, std::string> cache_;  // runtime + ":" + id -> name
  bool kube_loaded_ = false;
  std::map<std::string, std::string> kube_containers_;  // container id -> ns/pod/container
  std::map<std::string, std::string> kube_pods_;        // pod uid -> ns/pod
  bool podman_loaded_ = false;
  std::map<std::string, std::string> podman_;
};

}  // namespace dupcache::cgroup
