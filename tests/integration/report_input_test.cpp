// SPDX-License-Identifier: GPL-2.0-only
// Bad input: each case gets a clear message (or an errors entry), the rest of the report goes
// on, nothing blocks, and the exit status says what happened.

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "fs_fixture.hpp"

namespace dupcache::testing {
namespace {

const nlohmann::json* error_for(const nlohmann::json& r, const std::string& path) {
  for (const auto& e : r.at("errors")) {
    if (e.at("path") == path) return &e;
  }
  return nullptr;
}

TEST(ReportInput, NonexistentPathIsAnErrorAndTheRestGoesOn) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  write_file(fs.path("a"), 16 * page_size(), 1);
  evict(fs.path("a"));
  read_all(fs.path("a"));
  int status = 0;
  auto r = report_json({fs.path("missing"), fs.dir()}, &status);
  EXPECT_EQ(status, 1);
  auto* e = error_for(r, fs.path("missing"));
  ASSERT_NE(e, nullptr);
  EXPECT_NE((*e)["error"].get<std::string>().find("No such file or directory"), std::string::npos);
  EXPECT_EQ(r["totals"]["cached_bytes"], 16 * page_size());
}

TEST(ReportInput, SpecialFilesAreNeverOpened) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  ASSERT_EQ(mkfifo(fs.path("fifo").c_str(), 0644), 0);
  ASSERT_EQ(mknod(fs.path("null").c_str(), S_IFCHR | 0644, makedev(1, 3)), 0);
  int sock = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", fs.path("sock").c_str());
  ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(symlink("loop", fs.path("loop").c_str()), 0);

  // Inside a walk: skipped silently and counted; a FIFO with no writer must not block.
  auto r = report_json({fs.dir()});
  EXPECT_EQ(r["errors"].size(), 0u);
  EXPECT_EQ(r["skipped"]["special_files"], 4);

  // Named on the command line: an error naming the file and what it is, exit 1.
  for (auto [name, what] : std::vector<std::pair<std::string, std::string>>{
           {"fifo", "FIFO"}, {"null", "character device"}, {"sock", "socket"},
           {"loop", "Too many levels of symbolic links"}}) {
    int status = 0;
    auto named = report_json({fs.path(name)}, &status);
    EXPECT_EQ(status, 1) << name;
    auto* e = error_for(named, fs.path(name));
    ASSERT_NE(e, nullptr) << name;
    EXPECT_NE((*e)["error"].get<std::string>().find(what), std::string::npos) << (*e)["error"];
  }
  close(sock);
}

TEST(ReportInput, UnreadableFileIsReportedAndTheRestCounted) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "setpriv");
  scratch_fs fs("btrfs");
  const std::uint64_t p = page_size();
  chmod(fs.dir().c_str(), 0755);
  chmod((fs.dir() + "/..").c_str(), 0755);
  write_file(fs.path("secret"), 8 * p, 2);
  write_file(fs.path("mine"), 8 * p, 3);
  write_file(fs.path("readonly"), 8 * p, 4);
  chmod(fs.path("secret").c_str(), 0600);
  ASSERT_EQ(chown(fs.path("mine").c_str(), 65534, 65534), 0);
  chmod(fs.path("readonly").c_str(), 0644);
  for (auto n : {"secret", "mine", "readonly"}) {
    evict(fs.path(n));
    read_all(fs.path(n));
  }
  auto res = run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", DUPCACHE_BINARY, "report",
                  "--json", fs.dir()});
  ASSERT_EQ(res.status, 0) << res.err;
  auto r = nlohmann::json::parse(res.out);
  auto* e = error_for(r, fs.path("secret"));
  ASSERT_NE(e, nullptr);
  EXPECT_NE((*e)["error"].get<std::string>().find("Permission denied"), std::string::npos);
  // Readable but not writable: Linux hides its residency from this user; said, never guessed.
  auto* ro = error_for(r, fs.path("readonly"));
  ASSERT_NE(ro, nullptr);
  EXPECT_NE((*ro)["error"].get<std::string>().find("cannot write"), std::string::npos);
  EXPECT_EQ(r["totals"]["cached_bytes"], 8 * p);  // "mine" alone
  EXPECT_EQ(r["totals"]["files_scanned"], 1);
}

TEST(ReportInput, HostileFileNamesAreEscaped) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = page_size();
  const std::string evil = fs.path("evil\n\x1b[31mred\x1b]0;title\x07");
  const std::string bad = fs.path("bad\xff\xfe.bin");
  write_file(evil, 8 * p, 4);
  reflink(evil, bad);
  for (const auto& n : {evil, bad}) {
    evict(n);
    read_all(n);
  }
  auto text = run({DUPCACHE_BINARY, "report", fs.dir()});
  ASSERT_EQ(text.status, 0) << text.err;
  for (char c : text.out + text.err) {
    const auto u = static_cast<unsigned char>(c);
    EXPECT_FALSE((u < 0x20 && c != '\n') || u == 0x7f) << "raw control byte " << int(u) << " in output";
  }
  EXPECT_EQ((text.out + text.err).find('\xff'), std::string::npos) << "invalid UTF-8 passed through";
  EXPECT_NE(text.out.find("evil\\n\\e[31mred"), std::string::npos) << text.out;

  auto r = report_json({fs.dir()});  // parses: valid JSON
  EXPECT_EQ(r["totals"]["wasted_bytes"], 8 * p);
  auto* f = file_entry(r, fs.path("bad\\xff\\xfe.bin"));
  ASSERT_NE(f, nullptr) << r["files"].dump();
  // base64("bad\xff\xfe.bin") of the whole path: recover it and compare bytes.
  const std::string b64 = (*f)["path_base64"];
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string decoded;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : b64) {
    if (c == '=') break;
    acc = (acc << 6) | static_cast<std::uint32_t>(alphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      decoded += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  EXPECT_EQ(decoded, bad);
  EXPECT_NE(file_entry(r, evil), nullptr) << "valid UTF-8 with controls stays as is in JSON";
}

TEST(ReportInput, FilesVanishingMidWalkAreTolerated) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const int n = 3000;
  mkdir(fs.path("d").c_str(), 0755);
  const std::string page(4096, 'v');
  for (int i = 0; i < n; ++i) {
    int fd = open(fs.path("d/" + std::to_string(i)).c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_EQ(write(fd, page.data(), page.size()), 4096);
    close(fd);
  }
  must({"sync"});
  std::atomic<bool> stop{false};
  std::thread deleter([&] {
    for (int i = 0; i < n && !stop; ++i) {
      unlink(fs.path("d/" + std::to_string(i)).c_str());
      if (i % 2) truncate(fs.path("d/" + std::to_string(i + 1)).c_str(), 0);
    }
  });
  int status = 0;
  auto r = report_json({fs.dir()}, &status);
  stop = true;
  deleter.join();
  EXPECT_EQ(status, 0);
  EXPECT_EQ(r["errors"].size(), 0u) << r["errors"].dump();
}

TEST(ReportInput, FilesystemWithoutFiemapIsSaidOnceAndStillCounted) {
  DUPCACHE_REQUIRE_ROOT();
  char tmpl[] = "/tmp/dupcache-tmpfs-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  must({"mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dir});
  const std::uint64_t p = page_size();
  for (auto n : {"a", "b", "c"}) write_file(dir + "/" + n, 10 * p, 5);
  int status = 0;
  auto r = report_json({dir}, &status);
  run({"umount", dir});
  rmdir(dir.c_str());
  EXPECT_EQ(status, 0);
  EXPECT_EQ(r["totals"]["cached_bytes"], 30 * p);
  EXPECT_EQ(r["totals"]["wasted_bytes"], 0);
  ASSERT_EQ(r["errors"].size(), 1u) << r["errors"].dump();
  EXPECT_NE(r["errors"][0]["error"].get<std::string>().find("cannot report extents"), std::string::npos);
}

TEST(ReportInput, UsageErrorsExitTwo) {
  for (auto args : std::vector<std::vector<std::string>>{
           {"report", "--by", "nope"}, {"report", "--top", "0"}, {"frobnicate"}, {}, {"report", "--jobs", "x"}}) {
    args.insert(args.begin(), DUPCACHE_BINARY);
    auto r = run(args);
    EXPECT_EQ(r.status, 2) << args.back() << ": " << r.err;
    EXPECT_FALSE(r.err.empty());
  }
  auto help = run({DUPCACHE_BINARY, "report", "--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("--by"), std::string::npos);
}

}  // namespace
}  // namespace dupcache::testing
