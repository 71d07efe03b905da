// SPDX-License-Identifier: GPL-2.0-only
// The runtimes' metadata on scratch trees laid out as each runtime writes them: Podman (system and
// rootless, several drivers, storage.conf), CRI-O, Docker (daemon.json, btrfs and overlay2), LXC,
// Incus, systemd-nspawn, Kubernetes' log links; names, roots, storage, path ownership; and
// metadata that is malformed, huge or hostile.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cgroup/names.hpp"
#include "cgroup/runtimes.hpp"

namespace dupcache::cgroup {
namespace {

namespace fs = std::filesystem;

std::string hex(char c) { return std::string(64, c); }
const std::string id_a = hex('a');
const std::string id_b = hex('b');
const std::string id_c = hex('c');
const std::string id_d = hex('d');
const std::string layer_1 = hex('1');
const std::string layer_2 = hex('2');
const std::string layer_3 = hex('3');
const std::string image_9 = hex('9');

class name_resolver_test : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dupcache-runtimes-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    seen_ = fs::canonical(root_).string();
  }
  void TearDown() override { fs::remove_all(root_); }

  void put(const std::string& rel, const std::string& text) {
    fs::create_directories(fs::path(root_ + rel).parent_path());
    std::ofstream(root_ + rel, std::ios::binary) << text;
  }
  void dir(const std::string& rel) { fs::create_directories(root_ + rel); }
  void link(const std::string& rel, const std::string& target) {
    fs::create_directories(fs::path(root_ + rel).parent_path());
    fs::create_symlink(target, root_ + rel);
  }
  // A path inside the tree as dupcache sees it.
  std::string at(const std::string& rel) const { return seen_ + rel; }

  static const known_container* find(const std::vector<known_container>& all, const std::string& runtime,
                                     const std::string& id) {
    for (const auto& k : all)
      if (k.runtime == runtime && k.id == id) return &k;
    return nullptr;
  }
  static std::size_t count(const std::vector<known_container>& all, const std::string& runtime) {
    return static_cast<std::size_t>(
        std::count_if(all.begin(), all.end(), [&](const known_container& k) { return k.runtime == runtime; }));
  }

  // A containers/storage entry as Podman writes it.
  static std::string podman_entry(const std::string& id, const std::string& name, const std::string& layer,
                                  const std::string& metadata = R"({\"image-name\":\"docker.io/library/nginx:latest\",\"image-id\":\"9999\",\"name\":\"x\",\"created-at\":1700000000})") {
    return R"({"id":")" + id + R"(","names":[")" + name + R"("],"image":")" + image_9 + R"(","layer":")" + layer +
           R"(","metadata":")" + metadata +
           R"(","big-data-names":["volatile.json"],"big-data-sizes":{"volatile.json":1250},"created":"2024-05-01T10:00:00.1Z","flags":{"MountLabel":"system_u:object_r:container_file_t:s0:c1,c2"}})";
  }

  // Docker's config.v2.json, trimmed to the fields around the ones we read.
  static std::string docker_config(const std::string& id, const std::string& name, const std::string& driver, bool running) {
    return R"({"StreamConfig":{},"State":{"Running":)" + std::string(running ? "true" : "false") +
           R"(,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":)" + (running ? "4242" : "0") +
           R"(,"ExitCode":0,"StartedAt":"2024-05-01T10:00:00Z","FinishedAt":"0001-01-01T00:00:00Z","Health":null},"ID":")" + id +
           R"(","Created":"2024-05-01T09:59:59Z","Managed":false,"Path":"nginx","Args":["-g","daemon off;"],"Config":{"Hostname":"aaaaaaaaaaaa","Env":["PATH=/usr/bin"],"Labels":{"com.docker.compose.project":"demo"}},"Image":"sha256:)" +
           image_9 + R"(","Name":")" + name + R"(","Driver":")" + driver +
           R"(","OS":"linux","MountLabel":"","ProcessLabel":"","RestartCount":0,"HasBeenStartedBefore":true,"MountPoints":{}})";
  }

  std::string root_;
  std::string seen_;
};

// ---- Podman ----------------------------------------------------------------------------------

TEST_F(name_resolver_test, podman_btrfs_driver_and_graphroot_from_etc_storage_conf) {
  put("/etc/containers/storage.conf", R"(# written by the administrator
[storage]
driver = "btrfs"
runroot = "/run/containers/storage"
graphroot = "/srv/containers"

[storage.options]
additionalimagestores = []
)");
  // Ignored: /etc/containers/storage.conf exists, so the packaged one is never read.
  put("/usr/share/containers/storage.conf", "[storage]\ndriver = \"overlay\"\ngraphroot = \"/var/lib/containers/storage\"\n");
  put("/var/lib/containers/storage/overlay-containers/containers.json", "[" + podman_entry(id_b, "stale", layer_2) + "]");
  put("/srv/containers/btrfs-containers/containers.json",
      "[" + podman_entry(id_a, "web", layer_1) + "," + podman_entry(id_c, "db", layer_3) + "]");
  dir("/srv/containers/btrfs/subvolumes/" + layer_1);  // db's layer is gone: no root

  name_resolver n(root_);
  const auto& all = n.containers();
  ASSERT_EQ(count(all, "podman"), 2u);
  const auto* web = find(all, "podman", id_a);
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->name, "web");
  EXPECT_EQ(web->roots, std::vector<std::string>{at("/srv/containers/btrfs/subvolumes/" + layer_1)});
  EXPECT_FALSE(web->running.has_value());
  const auto* db = find(all, "podman", id_c);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->name, "db");
  EXPECT_TRUE(db->roots.empty());
  EXPECT_EQ(find(all, "podman", id_b), nullptr);
  EXPECT_EQ(n.name({"podman", id_a, "/", "", "", false}), "web");
  EXPECT_EQ(n.name({"podman", id_b, "/", "", "", false}), "");

  const auto st = n.storage();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].runtime, "podman");
  EXPECT_EQ(st[0].path, at("/srv/containers"));
  EXPECT_EQ(st[0].driver, "btrfs");
}

TEST_F(name_resolver_test, podman_overlay_from_usr_share_with_volatile_containers) {
  // "overlay2" is containers/storage's old name for "overlay".
  put("/usr/share/containers/storage.conf", "[storage]\ndriver = \"overlay2\"\n");
  const std::string gr = "/var/lib/containers/storage";
  put(gr + "/overlay-containers/containers.json", "[" + podman_entry(id_a, "web", layer_1) + "]");
  put(gr + "/overlay-containers/volatile-containers.json", "[" + podman_entry(id_b, "scratch", layer_2) + "]");
  dir(gr + "/overlay/" + layer_1 + "/diff");
  dir(gr + "/overlay/" + layer_1 + "/merged");
  dir(gr + "/overlay/" + layer_1 + "/work");
  dir(gr + "/overlay/" + layer_2 + "/diff");

  name_resolver n(root_);
  const auto& all = n.containers();
  const auto* web = find(all, "podman", id_a);
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->roots, (std::vector<std::string>{at(gr + "/overlay/" + layer_1 + "/diff"),
                                                  at(gr + "/overlay/" + layer_1 + "/merged")}));
  const auto* scratch = find(all, "podman", id_b);
  ASSERT_NE(scratch, nullptr);
  EXPECT_EQ(scratch->name, "scratch");
  EXPECT_EQ(scratch->roots, std::vector<std::string>{at(gr + "/overlay/" + layer_2 + "/diff")});
  const auto st = n.storage();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].driver, "overlay");
}

TEST_F(name_resolver_test, podman_driver_unset_is_found_by_its_directory) {
  put("/etc/containers/storage.conf", "[storage]\ngraphroot = \"/var/lib/containers/storage\"\n");
  put("/var/lib/containers/storage/btrfs-containers/containers.json", "[" + podman_entry(id_a, "web", layer_1) + "]");
  dir("/var/lib/containers/storage/btrfs/subvolumes/" + layer_1);
  name_resolver n(root_);
  const auto* web = find(n.containers(), "podman", id_a);
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->roots, std::vector<std::string>{at("/var/lib/containers/storage/btrfs/subvolumes/" + layer_1)});
}

TEST_F(name_resolver_test, podman_transient_store_keeps_volatile_containers_in_the_runroot) {
  put("/etc/containers/storage.conf",
      "[storage]\ndriver = \"overlay\"\nrunroot = \"/run/containers/storage\"\ntransient_store = true\n");
  put("/run/containers/storage/overlay-containers/volatile-containers.json", "[" + podman_entry(id_a, "web", layer_1) + "]");
  dir("/var/lib/containers/storage/overlay/" + layer_1 + "/diff");
  name_resolver n(root_);
  const auto* web = find(n.containers(), "podman", id_a);
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->roots, std::vector<std::string>{at("/var/lib/containers/storage/overlay/" + layer_1 + "/diff")});
}

TEST_F(name_resolver_test, the_environments_storage_conf_is_only_for_the_host) {
  put("/etc/containers/storage.conf", "[storage]\ndriver = \"overlay\"\n");
  put("/elsewhere.conf", "[storage]\ndriver = \"vfs\"\ngraphroot = \"/elsewhere\"\n");
  put("/var/lib/containers/storage/overlay-containers/containers.json", "[" + podman_entry(id_a, "web", layer_1) + "]");
  put("/elsewhere/vfs-containers/containers.json", "[" + podman_entry(id_b, "other", layer_2) + "]");
  ASSERT_EQ(setenv("CONTAINERS_STORAGE_CONF", (root_ + "/elsewhere.conf").c_str(), 1), 0);
  name_resolver n(root_);
  const auto& all = n.containers();
  unsetenv("CONTAINERS_STORAGE_CONF");
  EXPECT_NE(find(all, "podman", id_a), nullptr);
  EXPECT_EQ(find(all, "podman", id_b), nullptr);
}

// Rootless stores belong to a user: home directories must be theirs. As root the test gives them
// away; otherwise it needs to run as a login user (uid >= 1000).
class rootless_test : public name_resolver_test {
 protected:
  void SetUp() override {
    name_resolver_test::SetUp();
    if (geteuid() == 0) {
      uid_ = 1000;
      chown_ok_ = true;
    } else if (getuid() >= 1000) {
      uid_ = getuid();
    } else {
      GTEST_SKIP() << "needs root or a login user (uid >= 1000) to own the scratch homes";
    }
  }
  void give(const std::string& rel, unsigned uid) {
    if (!chown_ok_) return;
    for (auto it = fs::recursive_directory_iterator(root_ + rel); it != fs::recursive_directory_iterator(); ++it)
      ASSERT_EQ(lchown(it->path().c_str(), uid, uid), 0) << it->path();
    ASSERT_EQ(lchown((root_ + rel).c_str(), uid, uid), 0);
  }
  unsigned uid_ = 0;
  bool chown_ok_ = false;
};

TEST_F(rootless_test, rootless_podman_stores_of_each_user) {
  const std::string u = std::to_string(uid_);
  put("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"
                     "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                     "alice:x:" + u + ":" + u + ":Alice:/home/alice:/bin/bash\n"
                     "bob:x:" + u + ":" + u + ":Bob:/home/bob:/bin/zsh\n"
                     "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
  // The system file's driver applies to users without their own file, when rootless can use it.
  put("/etc/containers/storage.conf", "[storage]\ndriver = \"overlay\"\n");
  // alice: no storage.conf of her own: the default rootless graphroot.
  const std::string ag = "/home/alice/.local/share/containers/storage";
  put(ag + "/overlay-containers/containers.json", "[" + podman_entry(id_a, "alices-web", layer_1) + "]");
  dir(ag + "/overlay/" + layer_1 + "/diff");
  // bob: his own file, graphroot with $HOME, vfs.
  put("/home/bob/.config/containers/storage.conf", "[storage]\ndriver = \"vfs\"\ngraphroot = \"$HOME/ctr\"\n");
  put("/home/bob/ctr/vfs-containers/containers.json", "[" + podman_entry(id_b, "bobs-db", layer_2) + "]");
  dir("/home/bob/ctr/vfs/dir/" + layer_2);
  give("/home/alice", uid_);
  give("/home/bob", uid_);

  name_resolver n(root_);
  const auto& all = n.containers();
  const auto* web = find(all, "podman", id_a);
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->name, "alices-web");
  EXPECT_EQ(web->roots, std::vector<std::string>{at(ag + "/overlay/" + layer_1 + "/diff")});
  const auto* db = find(all, "podman", id_b);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->name, "bobs-db");
  EXPECT_EQ(db->roots, std::vector<std::string>{at("/home/bob/ctr/vfs/dir/" + layer_2)});
  const auto st = n.storage();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].path, at(ag));
  EXPECT_EQ(st[0].driver, "overlay");
  EXPECT_EQ(st[1].path, at("/home/bob/ctr"));
  EXPECT_EQ(st[1].driver, "vfs");
}

TEST_F(rootless_test, a_users_files_never_reach_outside_their_home) {
  const std::string u = std::to_string(uid_);
  put("/etc/passwd", "mallory:x:" + u + ":" + u + "::/home/mallory:/bin/sh\n");
  // Root's store, which mallory's links point into.
  const std::string sys = "/var/lib/containers/storage";
  put(sys + "/overlay-containers/containers.json", "[" + podman_entry(id_a, "roots-web", layer_1) + "]");
  dir(sys + "/overlay/" + layer_1 + "/diff");
  put("/secret.conf", "[storage]\ndriver = \"overlay\"\ngraphroot = \"/var/lib/containers/storage\"\n");
  // storage.conf is a link out of the home: not read, the defaults apply.
  link("/home/mallory/.config/containers/storage.conf", root_ + "/secret.conf");
  const std::string mg = "/home/mallory/.local/share/containers/storage";
  // containers.json a link to root's: refused (the last component is a link).
  link(mg + "/overlay-containers/containers.json", root_ + sys + "/overlay-containers/containers.json");
  // A second file of hers names a layer whose directory links into root's store.
  put(mg + "/overlay-containers/volatile-containers.json", "[" + podman_entry(id_b, "mine", layer_1) + "]");
  link(mg + "/overlay", root_ + sys + "/overlay");
  give("/home/mallory", uid_);

  name_resolver n(root_);
  const auto& all = n.containers();
  const auto* mine = find(all, "podman", id_b);
  ASSERT_NE(mine, nullptr);
  EXPECT_TRUE(mine->roots.empty());  // the link out of the home is not followed
  // Root's container is known once, from root's store, with root's layer.
  const auto* web = find(all, "podman", id_a);
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->name, "roots-web");
  EXPECT_EQ(web->roots, std::vector<std::string>{at(sys + "/overlay/" + layer_1 + "/diff")});
  EXPECT_EQ(n.owner_of_path(at(sys + "/overlay/" + layer_1 + "/diff/etc/passwd")), web);
}

TEST_F(rootless_test, a_home_its_user_does_not_own_is_not_theirs) {
  if (!chown_ok_) GTEST_SKIP() << "needs root to make a home owned by someone else";
  put("/etc/passwd", "eve:x:1001:1001::/home/eve:/bin/sh\n");
  put("/home/eve/.local/share/containers/storage/overlay-containers/containers.json",
      "[" + podman_entry(id_a, "eves", layer_1) + "]");
  give("/home/eve", 1000);  // someone else's
  name_resolver n(root_);
  EXPECT_EQ(find(n.containers(), "podman", id_a), nullptr);
}

// ---- CRI-O and Kubernetes -------------------------------------------------------------------

TEST_F(name_resolver_test, crio_containers_in_containers_storage_and_kubelet_log_links) {
  const std::string uid = "8d5e0a4c-1b2f-4c3d-9e8f-7a6b5c4d3e2f";
  const std::string crio_meta =
      R"({\"pod-name\":\"api-7d9\",\"pod-id\":\")" + id_d + R"(\",\"image-name\":\"registry.k8s.io/pause:3.9\",\"image-id\":\"9\",\"name\":\"k8s_server_api-7d9_prod_)" + uid +
      R"(_0\",\"metadata-name\":\"server\",\"created-at\":1700000000})";
  put("/var/lib/containers/storage/overlay-containers/containers.json",
      "[" + podman_entry(id_a, "k8s_server_api-7d9_prod_" + uid + "_0", layer_1, crio_meta) + "," +
          podman_entry(id_d, "k8s_POD_api-7d9_prod_" + uid + "_0", layer_2, crio_meta) + "]");
  dir("/var/lib/containers/storage/overlay/" + layer_1 + "/diff");
  // A containerd container: only its log link says what it is.
  put("/var/log/containers/web-5f_shop_nginx-" + id_c + ".log", "");
  put("/var/log/pods/prod_api-7d9_" + uid + "/server/0.log", "");

  name_resolver n(root_);
  const auto& all = n.containers();
  const auto* server = find(all, "cri-o", id_a);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->name, "prod/api-7d9/server");
  EXPECT_EQ(server->roots, std::vector<std::string>{at("/var/lib/containers/storage/overlay/" + layer_1 + "/diff")});
  const auto* sandbox = find(all, "cri-o", id_d);
  ASSERT_NE(sandbox, nullptr);
  EXPECT_EQ(sandbox->name, "prod/api-7d9");
  const auto* nginx = find(all, "containerd", id_c);
  ASSERT_NE(nginx, nullptr);
  EXPECT_EQ(nginx->name, "shop/web-5f/nginx");
  const auto* pod = find(all, "kubernetes", uid);
  ASSERT_NE(pod, nullptr);
  EXPECT_EQ(pod->name, "prod/api-7d9");
  EXPECT_EQ(count(all, "podman"), 0u);
  EXPECT_EQ(n.name({"cri-o", id_a, "/", uid, "burstable", false}), "prod/api-7d9/server");
  EXPECT_EQ(n.name({"containerd", id_c, "/", "", "", false}), "shop/web-5f/nginx");
}

// ---- Docker ----------------------------------------------------------------------------------

TEST_F(name_resolver_test, docker_data_root_from_daemon_json_with_btrfs) {
  put("/etc/docker/daemon.json", R"({
  "data-root": "/data/docker",
  "storage-driver": "btrfs",
  "log-driver": "journald",
  "default-address-pools": [{"base": "10.200.0.0/16", "size": 24}]
})");
  const std::string dr = "/data/docker";
  put(dr + "/containers/" + id_a + "/config.v2.json", docker_config(id_a, "/web", "btrfs", true));
  put(dr + "/containers/" + id_a + "/hostconfig.json", "{}");
  const std::string m = hex('e');
  put(dr + "/image/btrfs/layerdb/mounts/" + id_a + "/mount-id", m);
  put(dr + "/image/btrfs/layerdb/mounts/" + id_a + "/init-id", m + "-init");
  put(dr + "/image/btrfs/layerdb/mounts/" + id_a + "/parent", "sha256:" + image_9);
  dir(dr + "/btrfs/subvolumes/" + m);
  dir(dr + "/btrfs/subvolumes/" + m + "-init");
  // The default data-root is not Docker's here.
  put("/var/lib/docker/containers/" + id_b + "/config.v2.json", docker_config(id_b, "/stale", "overlay2", false));

  name_resolver n(root_);
  const auto& all = n.containers();
  ASSERT_EQ(count(all, "docker"), 1u);
  const auto* web = find(all, "docker", id_a);
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->name, "web");
  EXPECT_EQ(web->running, std::optional<bool>(true));
  EXPECT_EQ(web->roots, (std::vector<std::string>{at(dr + "/btrfs/subvolumes/" + m), at(dr + "/btrfs/subvolumes/" + m + "-init")}));
  EXPECT_EQ(n.name({"docker", id_a, "/", "", "", false}), "web");
  EXPECT_EQ(n.name({"docker", id_b, "/", "", "", false}), "");
  const auto st = n.storage();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].runtime, "docker");
  EXPECT_EQ(st[0].path, at(dr));
  EXPECT_EQ(st[0].driver, "btrfs");
}

TEST_F(name_resolver_test, docker_overlay2_behind_an_absolute_link_inside_the_root) {
  // /var/lib/docker -> /mnt/ssd/docker, absolute: it must resolve inside the tree, not on the host.
  link("/var/lib/docker", "/mnt/ssd/docker");
  const std::string dr = "/mnt/ssd/docker";
  put(dr + "/containers/" + id_a + "/config.v2.json", docker_config(id_a, "/cache", "overlay2", false));
  const std::string m = hex('f');
  put(dr + "/image/overlay2/layerdb/mounts/" + id_a + "/mount-id", m + "\n");
  dir(dr + "/image/overlay2/imagedb");
  dir(dr + "/overlay2/" + m + "/diff");
  dir(dr + "/overlay2/" + m + "/merged");
  dir(dr + "/overlay2/" + m + "/work");

  name_resolver n(root_);
  const auto* c = find(n.containers(), "docker", id_a);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->name, "cache");
  EXPECT_EQ(c->running, std::optional<bool>(false));
  EXPECT_EQ(c->roots, (std::vector<std::string>{at(dr + "/overlay2/" + m + "/diff"), at(dr + "/overlay2/" + m + "/merged")}));
  const auto st = n.storage();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].path, at(dr));
  EXPECT_EQ(st[0].driver, "overlay2");  // from image/<driver>, daemon.json says nothing
  EXPECT_EQ(n.owner_of_path(at(dr + "/overlay2/" + m + "/diff/var/cache/apt/pkgcache.bin")), c);
  EXPECT_EQ(n.owner_of_path(at(dr + "/overlay2/" + m + "/work/x")), nullptr);
}

TEST_F(name_resolver_test, docker_legacy_graph_key_and_a_container_created_later) {
  put("/etc/docker/daemon.json", R"({"graph": "/docker"})");
  put("/docker/containers/" + id_a + "/config.v2.json", docker_config(id_a, "/old", "overlay2", true));
  name_resolver n(root_);
  EXPECT_EQ(n.name({"docker", id_a, "/", "", "", false}), "old");
  // Created after the catalog was read: named from its own config.
  put("/docker/containers/" + id_b + "/config.v2.json", docker_config(id_b, "/new", "overlay2", true));
  EXPECT_EQ(find(n.containers(), "docker", id_b), nullptr);
  EXPECT_EQ(n.name({"docker", id_b, "/", "", "", false}), "new");
  n.refresh();
  EXPECT_NE(find(n.containers(), "docker", id_b), nullptr);
}

// ---- LXC, Incus, nspawn ----------------------------------------------------------------------

TEST_F(name_resolver_test, lxc_rootfs_forms_under_a_configured_lxcpath) {
  put("/etc/lxc/lxc.conf", "# lxc system configuration\nlxc.lxcpath = /srv/lxc\nlxc.bdev.btrfs.subvolume = true\n");
  put("/srv/lxc/web/config", "# Template used to create this container: /usr/share/lxc/templates/lxc-download\n"
                             "lxc.include = /usr/share/lxc/config/common.conf\n"
                             "lxc.arch = linux64\n"
                             "lxc.rootfs.path = btrfs:/srv/lxc/web/rootfs\n"
                             "lxc.uts.name = web\n"
                             "lxc.net.0.type = veth\n");
  dir("/srv/lxc/web/rootfs/etc");
  put("/srv/lxc/db/config", "lxc.rootfs.path = overlay:/srv/lxc/base/rootfs:/srv/lxc/db/delta0\nlxc.uts.name = db\n");
  dir("/srv/lxc/db/delta0");
  dir("/srv/lxc/db/rootfs");
  put("/srv/lxc/plain/config", "lxc.uts.name = plain\n");  // no rootfs line: <lxcpath>/<name>/rootfs
  dir("/srv/lxc/plain/rootfs");
  put("/srv/lxc/old/config", "lxc.rootfs = '/srv/lxc/old/fs'\n");  // before LXC 2.1; quoted
  dir("/srv/lxc/old/fs");
  put("/srv/lxc/blk/config", "lxc.rootfs.path = lvm:/dev/vg0/blk\n");
  dir("/srv/lxc/not-a-container/rootfs");  // no config
  put("/var/lib/lxc/ignored/config", "lxc.uts.name = ignored\n");

  name_resolver n(root_);
  const auto& all = n.containers();
  EXPECT_EQ(count(all, "lxc"), 5u);
  auto roots = [&](const std::string& id) {
    const auto* k = find(all, "lxc", id);
    return k ? k->roots : std::vector<std::string>{"missing"};
  };
  EXPECT_EQ(roots("web"), std::vector<std::string>{at("/srv/lxc/web/rootfs")});
  EXPECT_EQ(roots("db"), std::vector<std::string>{at("/srv/lxc/db/delta0")});
  EXPECT_EQ(roots("plain"), std::vector<std::string>{at("/srv/lxc/plain/rootfs")});
  EXPECT_EQ(roots("old"), std::vector<std::string>{at("/srv/lxc/old/fs")});
  EXPECT_EQ(roots("blk"), std::vector<std::string>{});
  EXPECT_EQ(find(all, "lxc", "web")->name, "web");
  EXPECT_EQ(n.name({"lxc", "web", "/", "", "", false}), "web");
  EXPECT_EQ(n.name({"lxc", "unknown", "/", "", "", false}), "unknown");
  const auto st = n.storage();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].runtime, "lxc");
  EXPECT_EQ(st[0].path, at("/srv/lxc"));
}

TEST_F(name_resolver_test, incus_containers_through_their_storage_pool_links) {
  const std::string pool = "/var/lib/incus/storage-pools/default/containers";
  dir(pool + "/web/rootfs/usr");
  put(pool + "/web/backup.yaml", "container:\n  name: web\n");
  dir(pool + "/shop_api/rootfs");
  link("/var/lib/incus/containers/web", pool + "/web");  // absolute, as Incus makes them
  link("/var/lib/incus/containers/shop_api", pool + "/shop_api");
  dir("/var/lib/incus/virtual-machines/vm1");
  dir("/var/snap/lxd/common/lxd/storage-pools/local/containers/old/rootfs");
  link("/var/snap/lxd/common/lxd/containers/old", "/var/snap/lxd/common/lxd/storage-pools/local/containers/old");

  name_resolver n(root_);
  const auto& all = n.containers();
  const auto* web = find(all, "lxc", "web");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->name, "web");
  EXPECT_EQ(web->roots, std::vector<std::string>{at(pool + "/web/rootfs")});
  const auto* api = find(all, "lxc", "shop_api");
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->name, "shop/api");
  EXPECT_EQ(api->roots, std::vector<std::string>{at(pool + "/shop_api/rootfs")});
  const auto* old = find(all, "lxc", "old");
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(old->roots, std::vector<std::string>{at("/var/snap/lxd/common/lxd/storage-pools/local/containers/old/rootfs")});
  EXPECT_EQ(n.name({"lxc", "shop_api", "/", "", "", false}), "shop/api");
  const auto st = n.storage();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].runtime, "incus");
  EXPECT_EQ(st[0].path, at("/var/lib/incus/storage-pools/default"));
  EXPECT_EQ(st[1].runtime, "lxd");
  EXPECT_EQ(st[1].path, at("/var/snap/lxd/common/lxd/storage-pools/local"));
}

TEST_F(name_resolver_test, nspawn_machine_directories_and_machined_state) {
  dir("/var/lib/machines/fedora/usr");
  dir("/var/lib/machines/a/etc");
  dir("/var/lib/machines/ab/etc");
  put("/var/lib/machines/debian.raw", "not a directory");
  dir("/var/lib/machines/.#fedora.lck");
  dir("/srv/images/linked/etc");
  link("/etc/machines/linked", "/srv/images/linked");
  dir("/usr/lib/machines/fedora");  // shadowed by /var/lib/machines/fedora
  put("/run/systemd/machines/fedora", "NAME=fedora\nSCOPE=machine-fedora.scope\nCLASS=container\n");

  name_resolver n(root_);
  const auto& all = n.containers();
  EXPECT_EQ(count(all, "systemd-nspawn"), 4u);
  const auto* fedora = find(all, "systemd-nspawn", "fedora");
  ASSERT_NE(fedora, nullptr);
  EXPECT_EQ(fedora->roots, std::vector<std::string>{at("/var/lib/machines/fedora")});
  EXPECT_EQ(fedora->running, std::optional<bool>(true));
  const auto* linked = find(all, "systemd-nspawn", "linked");
  ASSERT_NE(linked, nullptr);
  EXPECT_EQ(linked->roots, std::vector<std::string>{at("/srv/images/linked")});
  EXPECT_EQ(linked->running, std::optional<bool>(false));
  // Longest prefix on '/' boundaries: "a" is not a prefix of "ab/...".
  EXPECT_EQ(n.owner_of_path(at("/var/lib/machines/ab/etc/os-release")), find(all, "systemd-nspawn", "ab"));
  EXPECT_EQ(n.owner_of_path(at("/var/lib/machines/a/etc/os-release")), find(all, "systemd-nspawn", "a"));
  EXPECT_EQ(n.owner_of_path(at("/var/lib/machines/a/")), find(all, "systemd-nspawn", "a"));
  EXPECT_EQ(n.owner_of_path(at("/var/lib/machines")), nullptr);
  EXPECT_EQ(n.owner_of_path(at("/var/lib/machines/abc")), nullptr);
  EXPECT_EQ(n.owner_of_path("var/lib/machines/a"), nullptr);
  EXPECT_EQ(n.owner_of_path("/"), nullptr);
  const auto st = n.storage();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].path, at("/usr/lib/machines"));
  EXPECT_EQ(st[1].path, at("/var/lib/machines"));
}

// ---- the catalog as a whole ------------------------------------------------------------------

TEST_F(name_resolver_test, catalog_is_sorted_and_names_are_listed) {
  dir("/var/lib/machines/zeta");
  put("/var/lib/lxc/alpha/config", "");
  put("/var/lib/docker/containers/" + id_b + "/config.v2.json", docker_config(id_b, "/b-web", "overlay2", false));
  put("/var/lib/docker/containers/" + id_a + "/config.v2.json", docker_config(id_a, "/z-web", "overlay2", false));
  put("/var/lib/docker/containers/not-an-id/config.v2.json", docker_config(id_c, "/skipped", "overlay2", false));
  name_resolver n(root_);
  const auto& all = n.containers();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].runtime + "/" + all[0].name, "docker/b-web");
  EXPECT_EQ(all[1].runtime + "/" + all[1].name, "docker/z-web");
  EXPECT_EQ(all[2].runtime + "/" + all[2].name, "lxc/alpha");
  EXPECT_EQ(all[3].runtime + "/" + all[3].name, "systemd-nspawn/zeta");
  std::vector<std::string> want{id_a, id_b, "alpha", "b-web", "z-web", "zeta"};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(n.known_names(), want);
}

TEST_F(name_resolver_test, an_empty_tree_knows_nothing) {
  name_resolver n(root_);
  EXPECT_TRUE(n.containers().empty());
  EXPECT_TRUE(n.storage().empty());
  EXPECT_TRUE(n.known_names().empty());
  EXPECT_EQ(n.owner_of_path(at("/var/lib/docker")), nullptr);
  name_resolver missing(root_ + "/does-not-exist");
  EXPECT_TRUE(missing.containers().empty());
  EXPECT_EQ(missing.name({"docker", id_a, "/", "", "", false}), "");
  EXPECT_EQ(missing.name({"lxc", "web", "/", "", "", false}), "web");
}

// ---- malformed and hostile metadata ----------------------------------------------------------

TEST_F(name_resolver_test, bad_toml_means_the_defaults) {
  put("/etc/containers/storage.conf", "[storage\ndriver = \"btrfs\ngraphroot = [[[\n");
  put("/var/lib/containers/storage/overlay-containers/containers.json", "[" + podman_entry(id_a, "web", layer_1) + "]");
  name_resolver n(root_);
  EXPECT_EQ(n.name({"podman", id_a, "/", "", "", false}), "web");
}

TEST_F(name_resolver_test, wrong_types_in_storage_conf_are_ignored) {
  put("/etc/containers/storage.conf", "[storage]\ndriver = 5\ngraphroot = [\"/x\"]\ndriver_priority = \"btrfs\"\n");
  put("/var/lib/containers/storage/overlay-containers/containers.json", "[" + podman_entry(id_a, "web", layer_1) + "]");
  name_resolver n(root_);
  EXPECT_EQ(n.name({"podman", id_a, "/", "", "", false}), "web");
}

TEST_F(name_resolver_test, malformed_json_names_nobody) {
  const std::string gr = "/var/lib/containers/storage/overlay-containers/containers.json";
  // Valid entries before a syntax error: the file is refused whole.
  put(gr, "[" + podman_entry(id_a, "web", layer_1) + ", {\"id\": ");
  put("/var/lib/docker/containers/" + id_a + "/config.v2.json", "{\"Name\": \"/web\", ");
  put("/var/lib/docker/containers/" + id_b + "/config.v2.json", "[\"Name\", \"/web\"]");
  put("/var/lib/docker/containers/" + id_c + "/config.v2.json", R"({"Name": 42, "State": {"Running": "yes"}})");
  name_resolver n(root_);
  EXPECT_EQ(count(n.containers(), "podman"), 0u);
  for (const auto& id : {id_a, id_b, id_c}) {
    const auto* k = find(n.containers(), "docker", id);
    ASSERT_NE(k, nullptr);  // the directory says there is a container; nothing names it
    EXPECT_EQ(k->name, "");
    EXPECT_FALSE(k->running.has_value());
    EXPECT_EQ(n.name({"docker", id, "/", "", "", false}), "");
  }
}

TEST_F(name_resolver_test, missing_fields_and_bad_ids) {
  put("/var/lib/containers/storage/overlay-containers/containers.json",
      R"([{"id": ")" + id_a + R"("}, {"names": ["no-id"]}, {"id": "../../etc", "names": ["x"]},
          {"id": ")" + id_b + R"(", "names": [], "layer": "../../../etc"}, 7, "str", [1, 2],
          {"id": ")" + id_c + R"(", "names": [5, "second"]}])");
  dir("/etc");
  name_resolver n(root_);
  const auto& all = n.containers();
  EXPECT_EQ(count(all, "podman"), 3u);
  for (const auto& id : {id_a, id_b, id_c}) {
    const auto* k = find(all, "podman", id);
    ASSERT_NE(k, nullptr);
    EXPECT_EQ(k->name, "");
    EXPECT_TRUE(k->roots.empty());
  }
}

TEST_F(name_resolver_test, non_utf8_and_control_characters_in_names) {
  // Invalid UTF-8 is not JSON: the file names nobody.
  put("/var/lib/docker/containers/" + id_a + "/config.v2.json", std::string("{\"Name\": \"/w\xff\xfe\"}"));
  put("/var/lib/containers/storage/overlay-containers/containers.json",
      std::string("[{\"id\": \"") + id_b + "\", \"names\": [\"d\xc3\x28\"]}]");
  // Escapes that decode to control characters or non-ASCII become '?'.
  put("/var/lib/docker/containers/" + id_c + "/config.v2.json", R"({"Name": "/we\u001b[2Jb\u00e9"})");
  name_resolver n(root_);
  EXPECT_EQ(n.name({"docker", id_a, "/", "", "", false}), "");
  EXPECT_EQ(count(n.containers(), "podman"), 0u);
  EXPECT_EQ(n.name({"docker", id_c, "/", "", "", false}), "we?[2Jb??");
  for (const auto& s : n.known_names())
    for (unsigned char ch : s) EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << s;
}

TEST_F(name_resolver_test, huge_and_deep_files_are_refused) {
  // daemon.json over its cap: the default data-root.
  put("/etc/docker/daemon.json", "{\"data-root\": \"/elsewhere\", \"pad\": \"" + std::string(5 << 20, 'x') + "\"}");
  put("/var/lib/docker/containers/" + id_a + "/config.v2.json",
      "{\"Name\": \"/big\", \"pad\": \"" + std::string(5 << 20, 'x') + "\"}");
  put("/var/lib/docker/containers/" + id_b + "/config.v2.json", std::string(100000, '[') + std::string(100000, ']'));
  put("/var/lib/containers/storage/overlay-containers/containers.json", std::string(1 << 20, '['));
  name_resolver n(root_);
  ASSERT_NE(find(n.containers(), "docker", id_a), nullptr);
  EXPECT_EQ(n.name({"docker", id_a, "/", "", "", false}), "");
  EXPECT_EQ(n.name({"docker", id_b, "/", "", "", false}), "");
  EXPECT_EQ(count(n.containers(), "podman"), 0u);
}

TEST_F(name_resolver_test, special_files_and_link_loops_are_not_read) {
  fs::create_directories(root_ + "/var/lib/docker/containers/" + id_a);
  ASSERT_EQ(mkfifo((root_ + "/var/lib/docker/containers/" + id_a + "/config.v2.json").c_str(), 0600), 0);
  link("/etc/docker/daemon.json", "/etc/docker/daemon.json");
  link("/etc/containers/storage.conf", "/etc/containers/loop");
  link("/etc/containers/loop", "/etc/containers/storage.conf");
  put("/var/lib/docker/image/overlay2/layerdb/mounts/" + id_a + "/mount-id", "/dev/null");
  name_resolver n(root_);
  const auto* k = find(n.containers(), "docker", id_a);  // a FIFO would hang a blocking read
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->name, "");
  EXPECT_TRUE(k->roots.empty());
}

TEST_F(name_resolver_test, the_number_of_containers_is_bounded) {
  std::string json = "[";
  for (std::size_t i = 0; i < max_known_containers + 10; ++i) {
    char id[65];
    std::snprintf(id, sizeof id, "%064zx", i);
    json += std::string(i ? "," : "") + R"({"id":")" + id + R"(","names":["c)" + std::to_string(i) + R"("]})";
  }
  put("/var/lib/containers/storage/overlay-containers/containers.json", json + "]");
  dir("/var/lib/machines/extra");
  name_resolver n(root_);
  EXPECT_EQ(n.containers().size(), max_known_containers);
}

}  // namespace
}  // namespace dupcache::cgroup
