// SPDX-License-Identifier: GPL-2.0-only
// cgroup path -> container, for every runtime's naming, both cgroup drivers, and hostile input.

#include <gtest/gtest.h>

#include <string>

#include "cgroup/container.hpp"

namespace dupcache::cgroup {
namespace {

const std::string id_a = "4f2b8c6e0d1a3b5c7e9f0a2b4c6d8e0f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d";
const std::string id_b = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string uid = "8d5e0a4c-1b2f-4c3d-9e8f-7a6b5c4d3e2f";
const std::string uid_ = "8d5e0a4c_1b2f_4c3d_9e8f_7a6b5c4d3e2f";

TEST(classify, docker_systemd_and_cgroupfs_drivers) {
  auto r = classify("/system.slice/docker-" + id_a + ".scope");
  EXPECT_EQ(r.runtime, "docker");
  EXPECT_EQ(r.id, id_a);
  EXPECT_EQ(r.cgroup, "/system.slice/docker-" + id_a + ".scope");
  r = classify("/docker/" + id_a);
  EXPECT_EQ(r.runtime, "docker");
  EXPECT_EQ(r.id, id_a);
  EXPECT_EQ(r.cgroup, "/docker/" + id_a);
  // A process's sub-cgroup (systemd inside the container) still belongs to it.
  r = classify("/docker/" + id_a + "/init.scope");
  EXPECT_EQ(r.id, id_a);
  EXPECT_EQ(r.cgroup, "/docker/" + id_a);
}

TEST(classify, containerd_crio_podman) {
  auto r = classify("/system.slice/cri-containerd-" + id_a + ".scope");
  EXPECT_EQ(r.runtime, "containerd");
  EXPECT_EQ(r.id, id_a);
  r = classify("/machine.slice/libpod-" + id_b + ".scope/container");
  EXPECT_EQ(r.runtime, "podman");
  EXPECT_EQ(r.id, id_b);
  EXPECT_FALSE(r.monitor);
  EXPECT_EQ(r.cgroup, "/machine.slice/libpod-" + id_b + ".scope");
  r = classify("/machine.slice/libpod-conmon-" + id_b + ".scope");
  EXPECT_EQ(r.runtime, "podman");
  EXPECT_TRUE(r.monitor);
  r = classify("/libpod_parent/libpod-" + id_b);
  EXPECT_EQ(r.runtime, "podman");
  EXPECT_EQ(r.id, id_b);
  r = classify("/system.slice/crio-" + id_a + ".scope");
  EXPECT_EQ(r.runtime, "cri-o");
  EXPECT_FALSE(r.monitor);
  r = classify("/system.slice/crio-conmon-" + id_a + ".scope");
  EXPECT_EQ(r.runtime, "cri-o");
  EXPECT_TRUE(r.monitor);
}

TEST(classify, kubernetes_pods_with_qos_both_drivers) {
  const std::string burstable = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice";
  auto r = classify(burstable + "/cri-containerd-" + id_a + ".scope");
  EXPECT_EQ(r.runtime, "containerd");
  EXPECT_EQ(r.id, id_a);
  EXPECT_EQ(r.pod_uid, uid);
  EXPECT_EQ(r.qos, "burstable");
  EXPECT_EQ(r.cgroup, burstable + "/cri-containerd-" + id_a + ".scope");

  r = classify("/kubepods.slice/kubepods-pod" + uid_ + ".slice/crio-" + id_b + ".scope");
  EXPECT_EQ(r.runtime, "cri-o");
  EXPECT_EQ(r.qos, "guaranteed");
  EXPECT_EQ(r.pod_uid, uid);

  r = classify("/kubepods/besteffort/pod" + uid + "/" + id_a);
  EXPECT_EQ(r.runtime, "kubernetes");
  EXPECT_EQ(r.id, id_a);
  EXPECT_EQ(r.qos, "besteffort");
  EXPECT_EQ(r.pod_uid, uid);

  r = classify("/kubepods/pod" + uid + "/" + id_b);
  EXPECT_EQ(r.qos, "guaranteed");
  EXPECT_EQ(r.id, id_b);

  // Charged to the pod itself, not to one of its containers.
  r = classify(burstable);
  EXPECT_EQ(r.runtime, "kubernetes");
  EXPECT_EQ(r.id, uid);
  EXPECT_EQ(r.cgroup, burstable);
}

TEST(classify, nspawn_lxc_and_services) {
  auto r = classify("/machine.slice/machine-web\\x2d1.scope/payload");
  EXPECT_EQ(r.runtime, "systemd-nspawn");
  EXPECT_EQ(r.id, "web-1");
  EXPECT_EQ(r.cgroup, "/machine.slice/machine-web\\x2d1.scope");
  r = classify("/machine.slice/systemd-nspawn@db.service");
  EXPECT_EQ(r.runtime, "systemd-nspawn");
  EXPECT_EQ(r.id, "db");
  r = classify("/lxc.payload.builder/system.slice/cron.service");
  EXPECT_EQ(r.runtime, "lxc");
  EXPECT_EQ(r.id, "builder");
  EXPECT_EQ(r.cgroup, "/lxc.payload.builder");
  r = classify("/lxc/old-style");
  EXPECT_EQ(r.runtime, "lxc");
  EXPECT_EQ(r.id, "old-style");
  r = classify("/system.slice/nginx.service");
  EXPECT_EQ(r.runtime, "systemd");
  EXPECT_EQ(r.id, "nginx.service");
  // A container started by a service's process is the container, not the service.
  r = classify("/system.slice/containerd.service/docker-" + id_a + ".scope");
  EXPECT_EQ(r.runtime, "docker");
}

TEST(classify, host_and_not_quite_containers) {
  for (const std::string p : {"/", "", "/init.scope", "/user.slice/user-1000.slice/session-3.scope", "/system.slice",
                              "/kubepods.slice", "/machine.slice"}) {
    EXPECT_TRUE(classify(p).host()) << p;
  }
  // Ids must be exactly 64 lower-case hex digits.
  EXPECT_TRUE(classify("/system.slice/docker-" + id_a.substr(1) + ".scope").host());
  EXPECT_TRUE(classify("/system.slice/docker-" + id_a + "0.scope").host());
  std::string upper = id_a;
  upper[0] = 'F';
  EXPECT_TRUE(classify("/system.slice/docker-" + upper + ".scope").host());
  EXPECT_TRUE(classify("/docker/notanid").host());
  // A hex directory not under docker/ or a pod is nobody's container.
  EXPECT_TRUE(classify("/" + id_a).host());
  // Malformed pod uids.
  EXPECT_TRUE(classify("/kubepods/burstable/pod" + uid.substr(0, 35)).host());
  EXPECT_TRUE(classify("/kubepods/other/pod" + uid).host());
}

TEST(classify, hostile_names_are_not_reported) {
  // Control characters, spaces, overlong names: not a name we would print.
  EXPECT_TRUE(classify(std::string("/lxc.payload.evil\nname")).host());
  EXPECT_TRUE(classify("/lxc.payload.").host());
  EXPECT_TRUE(classify("/machine.slice/machine-" + std::string(300, 'a') + ".scope").host());
  EXPECT_TRUE(classify(std::string("/machine.slice/machine-a b.scope")).host());
  EXPECT_TRUE(classify(std::string("/system.slice/\x1b[31m.service")).host());
  // Escapes that would produce a '/' or a control byte stay escaped.
  EXPECT_EQ(classify("/machine.slice/machine-a\\x2fb.scope").id, "a\\x2fb");
  EXPECT_EQ(classify("/machine.slice/machine-a\\x0ab.scope").id, "a\\x0ab");
  // Repeated and trailing slashes are tolerated.
  auto r = classify("//system.slice///docker-" + id_a + ".scope/");
  EXPECT_EQ(r.id, id_a);
  EXPECT_EQ(r.cgroup, "/system.slice/docker-" + id_a + ".scope");
}

TEST(unescape_unit, decodes_printable_escapes_only) {
  EXPECT_EQ(unescape_unit("a\\x2db"), "a-b");
  EXPECT_EQ(unescape_unit("a\\x2"), "a\\x2");
  EXPECT_EQ(unescape_unit("\\xzz"), "\\xzz");
  EXPECT_EQ(unescape_unit("\\x41\\x42"), "AB");
}

}  // namespace
}  // namespace dupcache::cgroup
