// SPDX-License-Identifier: GPL-2.0-only
// Documentation that cannot drift: every man page lints clean under mandoc and renders with
// man; every option `--help` lists is in its command's man page; --version names the BPF ABI;
// the staged install tree holds exactly what an operator needs, the companion module's DKMS
// source tree included.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "fs_fixture.hpp"

namespace dupcache::testing {
namespace {

const std::vector<std::string> pages{"dupcache.8",       "dupcache-report.8", "dupcache-top.8",  "dupcache-trace.8",
                                     "dupcache-evict.8", "dupcache-merge.8", "dupcache-dedupe.8", "dupcache-daemon.8", "dupcache-doctor.8", "dupcache.toml.5"};

// The project version, as CMakeLists.txt's project() sets it.
const std::string version = "0.1.0";

std::string man(const std::string& page) { return std::string(DUPCACHE_SOURCE_DIR) + "/man/" + page; }

TEST(ManPages, LintCleanAndRender) {
  DUPCACHE_REQUIRE_TOOLS("mandoc", "man");
  for (const auto& p : pages) {
    auto lint = run({"mandoc", "-T", "lint", man(p)});
    EXPECT_EQ(lint.status, 0) << p << "\n" << lint.out << lint.err;
    EXPECT_EQ(lint.out + lint.err, "") << p;
    auto shown = run({"env", "MANWIDTH=80", "man", "-P", "cat", "-l", man(p)});
    EXPECT_EQ(shown.status, 0) << p << shown.err;
    EXPECT_GT(shown.out.size(), 1000u) << p;
    EXPECT_NE(shown.out.find("NAME"), std::string::npos) << p;
  }
  // Every page in the tree is in the list above (a new page gets linted too).
  std::set<std::string> found;
  for (const auto& e : std::filesystem::directory_iterator(std::string(DUPCACHE_SOURCE_DIR) + "/man")) {
    found.insert(e.path().filename().string());
  }
  EXPECT_EQ(found, std::set<std::string>(pages.begin(), pages.end()));
}

TEST(ManPages, EveryHelpOptionIsDocumented) {
  for (const std::string sub : {"report", "top", "trace", "evict", "merge", "dedupe", "daemon", "doctor"}) {
    auto r = run({DUPCACHE_BINARY, sub, "--help"});
    ASSERT_EQ(r.status, 0);
    const std::string page = contents(man("dupcache-" + sub + ".8"));
    std::istringstream in(r.out);
    for (std::string l; std::getline(in, l);) {
      if (l.rfind("  -", 0) != 0) continue;
      std::istringstream parts(l.substr(2, l.find(' ', 2) - 2));
      for (std::string o; std::getline(parts, o, ',');) {
        if (o == "-h" || o == "--help") continue;  // dupcache(8) documents --help once
        std::string escaped;
        for (char c : o) escaped += c == '-' ? std::string("\\-") : std::string(1, c);
        // As a whole option: "\-d" must not count because "\-\-delay" is there.
        std::string re;
        for (char c : escaped) re += c == '\\' ? std::string("\\\\") : std::string(1, c);
        EXPECT_TRUE(std::regex_search(page, std::regex(re + "(?![a-z]|\\\\-)")))
            << sub << ": " << o << " is not in dupcache-" << sub << ".8";
      }
    }
  }
}

TEST(Version, NamesTheBpfAbi) {
  auto r = run({DUPCACHE_BINARY, "--version"});
  EXPECT_EQ(r.status, 0);
  const std::string abi = contents(std::string(DUPCACHE_SOURCE_DIR) + "/bpf/dupcache_abi.h");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(abi, m, std::regex("#define DUPCACHE_BPF_ABI_VERSION ([0-9]+)")));
  EXPECT_EQ(r.out, "dupcache " + version + " (BPF ABI " + m[1].str() + ")\n");
}

TEST(Install, StagedTreeHoldsExactlyTheseFiles) {
  DUPCACHE_REQUIRE_TOOLS("cmake");
  char tmpl[] = "/tmp/dupcache-stage-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string stage = tmpl;
  auto r = run({"env", "DESTDIR=" + stage, "cmake", "--install", DUPCACHE_BUILD_DIR});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  std::set<std::string> got;
  for (const auto& e : std::filesystem::recursive_directory_iterator(stage)) {
    if (e.is_regular_file()) got.insert(e.path().string().substr(stage.size()));
  }
  const std::string p = DUPCACHE_INSTALL_PREFIX;
  std::set<std::string> want{p + "/sbin/dupcache",
                             std::string(DUPCACHE_FULL_SYSCONFDIR) + "/dupcache/dupcache.toml",
                             p + "/lib/systemd/system/dupcache.service",
                             p + "/share/doc/dupcache/examples/dupcache.toml",
                             p + "/share/doc/dupcache/examples/dupcache-daemonset.yaml",
                             p + "/share/doc/dupcache/examples/dupcache-seccomp.json",
                             p + "/share/doc/dupcache/examples/dupcache-merge.conf",
                             p + "/share/doc/dupcache/examples/dupcache-dedupe.conf",
                             p + "/share/bash-completion/completions/dupcache",
                             p + "/share/zsh/vendor-completions/_dupcache",
                             p + "/share/fish/vendor_completions.d/dupcache.fish",
                             p + "/share/man/man5/dupcache.toml.5",
                             p + "/include/dupcache/dupcache_kmod.h"};
  // Where DKMS takes the module's source from (/usr/src/dupcache-VERSION for the prefix /usr).
  const std::string dkms = p + "/src/dupcache-" + version;
  for (const std::string f : {"dupcache.c", "dupcache_kmod.h", "Kbuild", "Makefile", "dkms.conf"}) want.insert(dkms + "/" + f);
  for (const auto& page : pages) {
    if (page.back() == '8') want.insert(p + "/share/man/man8/" + page);
  }
  EXPECT_EQ(got, want);
  // The installed files are the tree's, byte for byte; the binary runs.
  EXPECT_EQ(contents(stage + p + "/share/man/man8/dupcache-daemon.8"), contents(man("dupcache-daemon.8")));
  EXPECT_EQ(contents(stage + std::string(DUPCACHE_FULL_SYSCONFDIR) + "/dupcache/dupcache.toml"),
            contents(std::string(DUPCACHE_SOURCE_DIR) + "/packaging/dupcache.toml"));
  for (const std::string f : {"dupcache.c", "dupcache_kmod.h", "Kbuild", "Makefile"}) {
    EXPECT_EQ(contents(stage + dkms + "/" + f), contents(std::string(DUPCACHE_SOURCE_DIR) + "/kmod/" + f)) << f;
  }
  EXPECT_EQ(contents(stage + p + "/include/dupcache/dupcache_kmod.h"),
            contents(std::string(DUPCACHE_SOURCE_DIR) + "/kmod/dupcache_kmod.h"));
  // dkms.conf is the tree's with the version filled in, and nothing else changed.
  const std::string conf = contents(stage + dkms + "/dkms.conf");
  EXPECT_NE(conf.find("PACKAGE_VERSION=\"" + version + "\"\n"), std::string::npos) << conf;
  EXPECT_EQ(conf.find('@'), std::string::npos) << conf;
  std::string want_conf = contents(std::string(DUPCACHE_SOURCE_DIR) + "/kmod/dkms.conf");
  const auto at = want_conf.find("@VERSION@");
  ASSERT_NE(at, std::string::npos) << "kmod/dkms.conf has no @VERSION@";
  want_conf.replace(at, 9, version);
  EXPECT_EQ(conf, want_conf);
  auto v = run({stage + p + "/sbin/dupcache", "--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_TRUE(std::filesystem::perms::owner_exec ==
              (std::filesystem::status(stage + p + "/sbin/dupcache").permissions() & std::filesystem::perms::owner_exec));
  std::filesystem::remove_all(stage);
}

}  // namespace
}  // namespace dupcache::testing
