// SPDX-License-Identifier: GPL-2.0-only
// The shell completions cannot drift from the CLI: for every subcommand, the options each of
// bash, zsh and fish offers are exactly those `dupcache SUBCOMMAND --help` lists, and option
// values (views, --by, --sort columns, --residency) are those the help names. The completions
// are loaded by the real shells.

#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include "fs_fixture.hpp"

namespace dupcache::testing {
namespace {

const std::vector<std::string> subcommands{"report", "top", "trace", "evict", "merge", "dedupe", "daemon", "doctor"};

std::string source(const std::string& rel) { return std::string(DUPCACHE_SOURCE_DIR) + "/" + rel; }

std::set<std::string> lines_set(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) out.insert(l);
  }
  return out;
}

// The options `--help` lists: "  -d,--delay FLOAT ..." gives -d and --delay.
std::set<std::string> help_options(const std::string& sub) {
  auto r = run({DUPCACHE_BINARY, sub, "--help"});
  std::set<std::string> out;
  std::istringstream in(r.out);
  bool in_options = false;
  for (std::string l; std::getline(in, l);) {
    if (l == "Options:") {
      in_options = true;
      continue;
    }
    if (l.empty() || l.back() == ':') in_options = false;
    if (!in_options || l.rfind("  -", 0) != 0) continue;
    std::string first = l.substr(2, l.find(' ', 2) - 2);
    std::istringstream parts(first);
    for (std::string o; std::getline(parts, o, ',');) out.insert(o);
  }
  return out;
}

std::set<std::string> help_subcommands() {
  auto r = run({DUPCACHE_BINARY, "--help"});
  std::set<std::string> out;
  std::istringstream in(r.out);
  bool in_subs = false;
  for (std::string l; std::getline(in, l);) {
    if (l == "Subcommands:") {
      in_subs = true;
      continue;
    }
    if (in_subs && l.rfind("  ", 0) == 0) out.insert(l.substr(2, l.find(' ', 2) - 2));
    else if (in_subs) in_subs = false;
  }
  return out;
}

// Values named in an option's help text: "{a,b,c}" or the words of "x|y|z" lists.
std::set<std::string> help_values(const std::string& sub, const std::string& option) {
  auto r = run({DUPCACHE_BINARY, sub, "--help"});
  std::istringstream in(r.out);
  std::string text;
  bool on = false;
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("  ", 0) == 0 && l.find(option + " ") != std::string::npos) on = true;
    else if (on && l.rfind("  -", 0) == 0) break;
    if (on) text += l + "\n";
  }
  std::set<std::string> out;
  std::smatch m;
  if (std::regex_search(text, m, std::regex("\\{([a-z,-]+)\\}"))) {
    std::istringstream v(m[1].str());
    for (std::string x; std::getline(v, x, ',');) out.insert(x);
    return out;
  }
  static const std::regex lists("[a-z-]+(\\|[a-z-]+)+");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), lists);
       it != std::sregex_iterator(); ++it) {
    std::istringstream v(it->str());
    for (std::string x; std::getline(v, x, '|');) out.insert(x);
  }
  return out;
}

std::string bash_complete(const std::vector<std::string>& words) {
  std::string arr;
  for (const auto& w : words) arr += " '" + w + "'";
  const std::string script = "source " + source("completions/dupcache.bash") + "; COMP_WORDS=(" + arr +
                             "); COMP_CWORD=" + std::to_string(words.size() - 1) +
                             "; _dupcache; printf '%s\\n' \"${COMPREPLY[@]}\"";
  auto r = run({"bash", "--norc", "-c", script});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  return r.out;
}

std::string fish_complete(const std::string& line) {
  auto r = run({"fish", "--no-config", "-c", "source " + source("completions/dupcache.fish") + "; complete -C '" + line + "'"});
  EXPECT_EQ(r.status, 0) << r.err;
  std::string out;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);) out += l.substr(0, l.find('\t')) + "\n";
  return out;
}

TEST(Completion, BashOffersExactlyTheHelpOptionsAndValues) {
  DUPCACHE_REQUIRE_TOOLS("bash");
  auto subs = help_subcommands();
  subs.insert({"--help", "--version"});
  EXPECT_EQ(lines_set(bash_complete({"dupcache", ""})), subs);
  for (const auto& sub : subcommands) {
    EXPECT_EQ(lines_set(bash_complete({"dupcache", sub, "-"})), help_options(sub)) << sub;
  }
  EXPECT_EQ(lines_set(bash_complete({"dupcache", "top", "--view", ""})), help_values("top", "--view"));
  EXPECT_EQ(lines_set(bash_complete({"dupcache", "top", "--sort", ""})), help_values("top", "--sort"));
  EXPECT_EQ(lines_set(bash_complete({"dupcache", "report", "--residency", ""})), help_values("report", "--residency"));
  EXPECT_EQ(lines_set(bash_complete({"dupcache", "report", "--by", ""})),
            (std::set<std::string>{"file", "group", "fs", "container"}));
  EXPECT_EQ(lines_set(bash_complete({"dupcache", "report", "--by", "file,g"})), std::set<std::string>{"file,group"});
  // Paths where paths go.
  EXPECT_NE(bash_complete({"dupcache", "report", source("complet")}).find(source("completions")), std::string::npos);
  EXPECT_TRUE(lines_set(bash_complete({"dupcache", "report", "--top", ""})).empty());
}

TEST(Completion, FishOffersExactlyTheHelpOptionsAndValues) {
  DUPCACHE_REQUIRE_TOOLS("fish");
  auto subs = help_subcommands();
  EXPECT_EQ(lines_set(fish_complete("dupcache ")), subs);
  for (const auto& sub : subcommands) {
    auto got = lines_set(fish_complete("dupcache " + sub + " -"));
    // fish lists long options for "-" only when asked with "--": take both.
    for (const auto& l : lines_set(fish_complete("dupcache " + sub + " --"))) got.insert(l);
    EXPECT_EQ(got, help_options(sub)) << sub;
  }
  EXPECT_EQ(lines_set(fish_complete("dupcache top --view ")), help_values("top", "--view"));
  EXPECT_EQ(lines_set(fish_complete("dupcache top --sort ")), help_values("top", "--sort"));
  EXPECT_EQ(lines_set(fish_complete("dupcache report --residency ")), help_values("report", "--residency"));
}

TEST(Completion, ZshSpecsMatchTheHelpAndRegisterUnderCompinit) {
  DUPCACHE_REQUIRE_TOOLS("zsh");
  for (const auto& sub : subcommands) {
    const std::string script = "autoload -U compinit; compinit -u -D; source " +
                               source("completions/_dupcache") + "; print -r -- $_comps[dupcache]; print -rl -- \"${_dupcache_" +
                               sub + "_opts[@]}\"";
    auto r = run({"zsh", "-f", "-c", script});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "") << r.err;
    std::istringstream in(r.out);
    std::string registered;
    std::getline(in, registered);
    EXPECT_EQ(registered, "_dupcache");
    std::set<std::string> opts;
    for (std::string l; std::getline(in, l);) {
      if (!l.empty() && l[0] == '(') l = l.substr(l.find(')') + 1);
      if (!l.empty() && l[0] == '*') l = l.substr(1);
      if (l.empty() || l[0] != '-') continue;  // the *:path: spec
      opts.insert(l.substr(0, l.find('[')));
    }
    EXPECT_EQ(opts, help_options(sub)) << sub;
    EXPECT_EQ(r.out.find(":path:_files") != std::string::npos, sub != "daemon" && sub != "doctor") << sub;
  }
  // compinit without -D replaces its dump file: nothing here may touch anything but itself.
  EXPECT_TRUE(std::filesystem::is_character_file("/dev/null"));
}

}  // namespace
}  // namespace dupcache::testing
