// SPDX-License-Identifier: GPL-2.0-only
// dupcache top as a user runs it in a terminal: the curses view in tmux, driven by keys.
// Each scenario starts from an evicted state and reads without readahead; cached_pages() checks
// the preconditions. Once read, a scene's files are pinned (process.hpp) so that reclaim cannot
// change the scene under the tool; a run that still finds its scene disturbed is repeated, never
// judged.

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

#include "cli_test.hpp"

namespace dupcache::testing {
namespace {

using clock_type = std::chrono::steady_clock;

class tmux_session {
 public:
  tmux_session() {
    static std::atomic<int> counter{0};
    socket_ = "dupcache-cli-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  }
  ~tmux_session() { run({"tmux", "-L", socket_, "kill-server"}, 10); }
  tmux_session(const tmux_session&) = delete;
  tmux_session& operator=(const tmux_session&) = delete;

  command_result tmux(std::vector<std::string> args) const {
    std::vector<std::string> argv{"tmux", "-L", socket_, "-f", "/dev/null"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, 10);
  }
  command_result start(const std::string& shell_command) const {
    return tmux({"new-session", "-d", "-s", name_, "-x", "80", "-y", "24", shell_command});
  }
  std::vector<std::string> capture() const {
    auto r = tmux({"capture-pane", "-p", "-t", name_});
    return r.status == 0 ? split_lines(r.out) : std::vector<std::string>{};
  }
  void keys(const std::string& key) const { tmux({"send-keys", "-t", name_, key}); }
  void literal(const std::string& text) const { tmux({"send-keys", "-t", name_, "-l", text}); }
  bool alive() const { return tmux({"has-session", "-t", name_}).status == 0; }
  // Polls the pane until pred holds; returns the last capture.
  std::vector<std::string> wait_screen(const std::function<bool(const std::vector<std::string>&)>& pred,
                                       double timeout_s, bool* ok) const {
    const auto deadline = clock_type::now() + std::chrono::duration<double>(timeout_s);
    std::vector<std::string> screen;
    for (;;) {
      screen = capture();
      if (pred(screen)) {
        *ok = true;
        return screen;
      }
      if (clock_type::now() >= deadline) {
        *ok = false;
        return screen;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

 private:
  std::string socket_;
  std::string name_ = "top";
};

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string joined(const std::vector<std::string>& screen) {
  std::string s;
  for (const auto& l : screen) s += l + "\n";
  return s;
}

// The column title line (the first line after the header that names the last column).
std::string title_line(const std::vector<std::string>& screen) {
  for (const auto& l : screen) {
    if (contains(l, "PATH") || contains(l, "FILES") || contains(l, "FILESYSTEM") || contains(l, "CONTAINER")) {
      if (!starts_with(l, "files scanned")) return l;
    }
  }
  return "";
}

// Rows: lines below the title line that name a path under dir.
std::vector<std::string> screen_rows(const std::vector<std::string>& screen, const std::string& dir) {
  std::vector<std::string> rows;
  bool after_title = false;
  for (const auto& l : screen) {
    if (!after_title) {
      after_title = !title_line({l}).empty() && !starts_with(l, "files scanned");
      continue;
    }
    if (contains(l, dir)) rows.push_back(l);
  }
  return rows;
}

TEST(TopCurses, KeysInTmux) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "tmux");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 4 * MiB, solo_size = 1 * MiB;
  copies_all_read(fs, {"copy-a", "copy-b"}, size, 16);
  write_file(fs.path("solo"), solo_size, 17);
  evict(fs.path("solo"));
  read_all(fs.path("solo"));
  ASSERT_EQ(cached_pages(fs.path("copy-a")), size / ps());
  ASSERT_EQ(cached_pages(fs.path("copy-b")), size / ps());
  ASSERT_EQ(cached_pages(fs.path("solo")), solo_size / ps());
  scene sc;
  for (const auto& n : {"copy-a", "copy-b", "solo"}) sc.add(fs.path(n));
  auto scene_now = [&] { return "\n" + sc.describe(); };
  tmux_session t;
  // Waits for a screen whose numbers depend on the scene; if the scene was disturbed meanwhile,
  // restores it (the live view must follow) and waits again.
  auto wait_exact = [&](const std::function<bool(const std::vector<std::string>&)>& pred, bool* done) {
    std::vector<std::string> scr;
    for (int attempt = 1; attempt <= max_attempts; ++attempt) {
      scr = t.wait_screen(pred, 5, done);
      if (*done || sc.intact()) break;
      std::fprintf(stderr, "note: scene disturbed (%s); restoring it\n", sc.describe().c_str());
      sc.restore();
    }
    return scr;
  };

  const std::string status_file = "/tmp/dupcache-cli-test-top-status-" + std::to_string(getpid());
  struct unlink_guard {
    std::string p;
    ~unlink_guard() { unlink(p.c_str()); }
  } remove_status{status_file};
  unlink(status_file.c_str());
  const std::string cmd = shell_quote(DUPCACHE_BINARY) + " top -d 0.5 " + shell_quote(fs.dir()) + "; echo $? > " +
                          shell_quote(status_file);
  auto st = t.start("sh -c " + shell_quote(cmd));
  ASSERT_EQ(st.status, 0) << st.err;

  bool ok = false;
  const auto& dir = fs.dir();
  auto screen = t.wait_screen(
      [&](const auto& s) {
        return !s.empty() && starts_with(s[0], "dupcache top - ") && screen_rows(s, dir).size() == 3;
      },
      20, &ok);
  ASSERT_TRUE(ok) << "top did not draw its header and three rows:\n" << joined(screen) << scene_now();
  auto check_width = [](const std::vector<std::string>& s) {
    for (const auto& l : s) EXPECT_LE(columns_of(l), 80u) << l;
  };
  check_width(screen);
  EXPECT_TRUE(contains(title_line(screen), "WASTEDv")) << joined(screen);

  // > : next column (SHARED), still descending: solo (nothing shared) comes last.
  t.keys(">");
  screen = t.wait_screen([](const auto& s) { return contains(title_line(s), "SHAREDv"); }, 5, &ok);
  ASSERT_TRUE(ok) << "'>' did not move the sort to SHARED:\n" << joined(screen);
  EXPECT_FALSE(contains(title_line(screen), "WASTEDv")) << joined(screen);
  {
    auto rows = screen_rows(screen, dir);
    ASSERT_EQ(rows.size(), 3u) << joined(screen);
    EXPECT_TRUE(rows[2].ends_with("/solo")) << joined(screen);
  }

  // r : ascending: solo first.
  t.keys("r");
  screen = t.wait_screen([](const auto& s) { return contains(title_line(s), "SHARED^"); }, 5, &ok);
  ASSERT_TRUE(ok) << "'r' did not reverse the order:\n" << joined(screen);
  {
    auto rows = screen_rows(screen, dir);
    ASSERT_EQ(rows.size(), 3u) << joined(screen);
    EXPECT_TRUE(rows[0].ends_with("/solo")) << joined(screen);
  }
  check_width(screen);

  // / solo Enter : only the matching row, and the filter is shown.
  t.keys("/");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  t.literal("solo");
  t.keys("Enter");
  screen = t.wait_screen(
      [&](const auto& s) { return contains(joined(s), "filter: solo") && screen_rows(s, dir).size() == 1; }, 5, &ok);
  ASSERT_TRUE(ok) << "the filter did not leave exactly the matching row:\n" << joined(screen);
  EXPECT_TRUE(screen_rows(screen, dir)[0].ends_with(fs.path("solo"))) << joined(screen);
  check_width(screen);

  // / Enter : an empty filter shows everything again.
  t.keys("/");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  t.keys("Enter");
  screen = t.wait_screen(
      [&](const auto& s) { return !contains(joined(s), "filter: solo") && screen_rows(s, dir).size() == 3; }, 5, &ok);
  ASSERT_TRUE(ok) << "clearing the filter did not bring the rows back:\n" << joined(screen);

  // g : groups view, one group of two copies; b : exact bytes.
  t.keys("g");
  screen = t.wait_screen([](const auto& s) { return contains(title_line(s), "COPIES"); }, 5, &ok);
  ASSERT_TRUE(ok) << "'g' did not show the groups view:\n" << joined(screen);
  EXPECT_TRUE(contains(title_line(screen), "WASTEDv")) << joined(screen);
  t.keys("b");
  screen = wait_exact(
      [&](const auto& s) {
        auto rows = screen_rows(s, dir);
        return rows.size() == 1 && contains(rows[0], std::to_string(size));
      },
      &ok);
  ASSERT_TRUE(ok) << "groups view with exact bytes: expected one group of " << size << " bytes per copy:\n"
                  << joined(screen) << scene_now();
  {
    const auto tk = tokens(screen_rows(screen, dir)[0]);
    ASSERT_GE(tk.size(), 4u);
    EXPECT_EQ(tk[0], "2") << joined(screen);
    EXPECT_EQ(tk[1], std::to_string(size)) << joined(screen);
    EXPECT_EQ(tk[2], std::to_string(size)) << "wasted of the group" << joined(screen);
  }
  check_width(screen);

  // s : filesystems view.
  t.keys("s");
  screen = t.wait_screen([](const auto& s) { return contains(title_line(s), "FILESYSTEM"); }, 5, &ok);
  ASSERT_TRUE(ok) << "'s' did not show the filesystems view:\n" << joined(screen);
  // One btrfs filesystem: wasted one copy, cached two copies and solo, three files (exact bytes).
  const std::vector<std::string> want_fs{std::to_string(size), std::to_string(2 * size + solo_size), "3", "btrfs"};
  auto fs_row = [&](const std::vector<std::string>& s) {
    for (const auto& l : s) {
      const auto tk = tokens(l);
      if (tk.size() >= 5 && tk[3] == "btrfs") return std::vector<std::string>(tk.begin(), tk.begin() + 4);
    }
    return std::vector<std::string>{};
  };
  screen = wait_exact([&](const auto& s) { return fs_row(s) == want_fs; }, &ok);
  EXPECT_TRUE(ok) << "expected a btrfs row: wasted " << want_fs[0] << ", cached " << want_fs[1] << ", 3 files:\n"
                  << joined(screen) << scene_now();
  check_width(screen);

  // c : containers view. This test's own reads are charged to its cgroup, which is the host's:
  // one row paying the whole waste.
  t.keys("c");
  screen = t.wait_screen([](const auto& s) { return contains(title_line(s), "CONTAINER"); }, 5, &ok);
  ASSERT_TRUE(ok) << "'c' did not show the containers view:\n" << joined(screen);
  const std::vector<std::string> want_c{std::to_string(size), std::to_string(2 * size),
                                        std::to_string(2 * size + solo_size), "host"};
  auto host_row = [&](const std::vector<std::string>& s) {
    for (const auto& l : s) {
      const auto tk = tokens(l);
      if (tk.size() >= 5 && tk[3] == "host") return std::vector<std::string>(tk.begin(), tk.begin() + 4);
    }
    return std::vector<std::string>{};
  };
  screen = wait_exact([&](const auto& s) { return host_row(s) == want_c; }, &ok);
  EXPECT_TRUE(ok) << "expected a host row: wasted " << want_c[0] << ", shared " << want_c[1] << ", cached "
                  << want_c[2] << ":\n"
                  << joined(screen) << scene_now();
  check_width(screen);

  // q : the program exits, with status 0.
  t.keys("q");
  const auto deadline = clock_type::now() + std::chrono::seconds(5);
  while (t.alive() && clock_type::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(t.alive()) << "top still running 5 s after q:\n" << joined(t.capture());
  std::ifstream in(status_file);
  std::string exit_status;
  in >> exit_status;
  EXPECT_EQ(exit_status, "0") << "exit status of top after q";
}


}  // namespace
}  // namespace dupcache::testing
