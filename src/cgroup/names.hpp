// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Container names, and the catalog of containers the runtimes know, from their local metadata,
// read from files below a root, never through a daemon (layouts in runtimes.hpp):
//   Docker      <data-root>/containers/<id>/config.v2.json "Name": "/web"; data-root from
//               /etc/docker/daemon.json (default /var/lib/docker), the snap's, rootless users'
//   Podman      <graphroot>/<driver>-containers/containers.json [{"id", "names": ["web"]}];
//               graphroot and driver from storage.conf, also rootless users' stores
//   CRI-O       the same containers.json (its entries carry a pod in their metadata)
//   Kubernetes  <root>/var/log/containers/<pod>_<namespace>_<container>-<id>.log (kubelet's
//               links, for containerd and CRI-O containers), <root>/var/log/pods/
//               <namespace>_<pod>_<uid>/ for pods: "namespace/pod/container", "namespace/pod"
//   LXC         <lxcpath>/<name>/config; Incus and LXD containers/<name> ("project/name" outside
//               the default project)
//   nspawn      machine images that are directories (/var/lib/machines/<name>, ...)
//   systemd     the unit is the name.
// Unreadable or malformed metadata leaves the name empty; the id still names the container.
// Names are printable ASCII. The catalog is read once, on first use; refresh() reads it again.
// Not thread-safe: one resolver per thread.

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cgroup/container.hpp"
#include "cgroup/runtimes.hpp"

namespace dupcache::cgroup {

class name_resolver {
 public:
  // root: "/" on a host; --metadata-root points it at the host's tree elsewhere, tests at a
  // scratch tree.
  explicit name_resolver(std::string root = "/") : root_(std::move(root)) {}

  // The container's name, "" for the host or when the metadata has none. A Docker container
  // created after the catalog was read is still named (its config is read then).
  std::string name(const container_ref& c);

  // Every container the metadata knows, running or not, sorted by runtime, name, id. runtime and
  // id are what classify() gives for the container's cgroup (for Kubernetes containers: as the
  // systemd cgroup driver names them, "containerd" unless CRI-O's storage holds the id).
  // References stay valid until refresh().
  const std::vector<known_container>& containers();
  // Every name and id in the catalog, sorted, for "no such container" messages.
  std::vector<std::string> known_names();
  // The runtimes' storage directories that exist, sorted by runtime then path.
  std::vector<storage_location> storage();
  // The container whose root is the longest prefix of path, on '/' boundaries; nullptr if none.
  // path is absolute as dupcache sees it (roots are: see known_container).
  const known_container* owner_of_path(std::string_view path);

  // Forget everything read: the next call reads the metadata again.
  void refresh();

 private:
  std::string kubernetes(const container_ref& c);
  void load_kube();
  void load_catalog();
  const known_container* find(const std::string& runtime, const std::string& id);

  std::string root_;
  std::map<std::string, std::string> cache_;  // runtime + ":" + id -> name
  bool kube_loaded_ = false;
  std::map<std::string, std::string> kube_containers_;  // container id -> ns/pod/container
  std::map<std::string, std::string> kube_pods_;        // pod uid -> ns/pod
  bool catalog_loaded_ = false;
  std::vector<known_container> catalog_;
  std::vector<storage_location> storage_;
  std::map<std::pair<std::string, std::string>, std::size_t> by_id_;  // (runtime, id) -> catalog_
  std::map<std::string, std::size_t, std::less<>> by_root_;           // root -> catalog_
};

}  // namespace dupcache::cgroup
