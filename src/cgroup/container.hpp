// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Which container a cgroup belongs to, from its path alone, following each runtime's naming:
//   Docker        docker-<id>.scope (systemd driver), /docker/<id> (cgroupfs driver)
//   containerd    cri-containerd-<id>.scope, /kubepods/.../pod<uid>/<id> (cgroupfs, CRI)
//   CRI-O         crio-<id>.scope (crio-conmon-<id>.scope: its monitor)
//   Podman        libpod-<id>.scope (libpod-conmon-<id>.scope), /libpod_parent/libpod-<id>
//   Kubernetes    kubepods[-<qos>]-pod<uid>.slice, /kubepods[/<qos>]/pod<uid>: the pod, with
//                 its QoS class; the container inside it by the runtime's own name
//   systemd-nspawn machine.slice/machine-<name>.scope, machine.slice/systemd-nspawn@<name>.service
//   LXC / Incus   lxc.payload.<name> (LXC 4+), /lxc/<name> (older)
//   systemd       <unit>.service anywhere else: a plain service is a "container" of its own
// Anything else is the host. Pure string work: no filesystem access, so it is unit-tested on
// hostile input; names are looked up elsewhere (names.hpp).

#include <string>
#include <string_view>

namespace dupcache::cgroup {

struct container_ref {
  std::string runtime;  // "docker", "containerd", "cri-o", "podman", "kubernetes", "systemd-nspawn",
                        // "lxc", "systemd", or "" for the host
  std::string id;       // container id (64 hex digits), pod uid, machine/container name, unit name
  std::string cgroup;   // the container's own cgroup: the path up to the component that named it
  std::string pod_uid;  // Kubernetes: the pod's uid (with dashes), also for its containers
  std::string qos;      // Kubernetes: "guaranteed", "burstable" or "besteffort"
  bool monitor = false; // conmon of a Podman / CRI-O container, not the container itself
  bool host() const { return runtime.empty(); }
};

// path: a cgroup path as /proc/PID/cgroup shows it ("/system.slice/docker-<id>.scope"),
// relative to its hierarchy's root. Never throws; malformed input is the host.
container_ref classify(std::string_view path);

// systemd's unit-name unescaping of "\xNN" sequences (machine-foo\x2dbar.scope is "foo-bar").
// Sequences that do not decode to a printable byte stay as they are.
std::string unescape_unit(std::string_view s);

}  // namespace dupcache::cgroup
