// SPDX-License-Identifier: GPL-2.0-only
// dupcache top as a script runs it: --json documents, batch text (-b) and its usage errors.
// Each scenario starts from an evicted state and reads without readahead; cached_pages() checks
// the preconditions. Once read, a scene's files are pinned (process.hpp) so that reclaim cannot
// change the scene under the tool; a run that still finds its scene disturbed is repeated, never
// judged.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "cli_test.hpp"

namespace dupcache::testing {
namespace {

using nlohmann::json;
using clock_type = std::chrono::steady_clock;

std::vector<json> parse_json_lines(const std::string& out) {
  std::vector<json> docs;
  for (const auto& l : split_lines(out)) {
    if (l.empty()) continue;
    try {
      docs.push_back(json::parse(l));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a JSON document: " << e.what() << "\n" << l;
    }
  }
  return docs;
}

const json* file_of(const json& doc, const std::string& path) {
  for (const auto& f : doc.at("files")) {
    if (f.at("path") == path) return &f;
  }
  return nullptr;
}

std::uint64_t u64(const json& j) { return j.get<std::uint64_t>(); }


void check_static_scene_totals(const json& last, const scratch_fs& fs, const std::vector<std::string>& names,
                               std::uint64_t size) {
  const std::uint64_t n = names.size();
  EXPECT_EQ(last.at("schema"), 1);
  EXPECT_EQ(u64(last.at("page_size")), ps());
  EXPECT_EQ(u64(last["totals"]["wasted_bytes"]), (n - 1) * size);
  EXPECT_EQ(u64(last["totals"]["cached_bytes"]), n * size);
  EXPECT_EQ(u64(last["totals"]["files_cached"]), n);
  EXPECT_EQ(u64(last["totals"]["files_scanned"]), n);
  std::uint64_t parts = 0;
  for (const auto& name : names) {
    const json* f = file_of(last, fs.path(name));
    ASSERT_NE(f, nullptr) << "no entry with the absolute path " << fs.path(name);
    EXPECT_EQ(u64((*f)["cached_bytes"]), size) << name;
    EXPECT_EQ(u64((*f)["shared_cached_bytes"]), size) << name;
    parts += u64((*f)["wasted_bytes"]);
  }
  EXPECT_EQ(parts, (n - 1) * size) << "the split of the waste among copies must add up to the total";
  EXPECT_TRUE(last.contains("groups"));
  EXPECT_TRUE(last.contains("filesystems"));
  EXPECT_TRUE(last.contains("containers"));
  ASSERT_TRUE(last.contains("errors"));
  EXPECT_TRUE(last["errors"].empty()) << last["errors"].dump();
  for (const char* k : {"insert_bytes_per_s", "duplicate_insert_bytes_per_s", "evict_bytes_per_s"}) {
    EXPECT_TRUE(last["rates"].contains(k)) << k;
  }
  EXPECT_TRUE(last.contains("page_cache_bytes"));
  EXPECT_TRUE(last.contains("events"));
}

// ---------------------------------------------------------------------------------------------
// top --json

TEST(TopJson, StaticScene) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 4 * MiB;
  const std::vector<std::string> names{"a", "b", "c"};
  copies_all_read(fs, names, size, 11);
  scene sc;
  for (const auto& n : names) {
    ASSERT_EQ(cached_pages(fs.path(n)), size / ps()) << n;
    sc.add(fs.path(n));
  }

  const std::vector<std::string> argv{DUPCACHE_BINARY, "top", "--json", "-n", "2", "-d", "0.5", fs.dir()};
  auto r = run_on(sc, argv);
  ASSERT_EQ(r.status, 0) << join_argv(argv) << "\n" << r.err;
  const auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << "one JSON document per line per interval:\n" << r.out;
  const auto docs = parse_json_lines(r.out);
  ASSERT_EQ(docs.size(), 2u);

  for (std::size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(u64(docs[i].at("iteration")), i + 1);
    const double iv = docs[i].at("interval_s").get<double>();
    EXPECT_GE(iv, 0.3) << "iteration " << i + 1;
    EXPECT_LE(iv, 3.0) << "iteration " << i + 1;
  }
  const json& last = docs.back();
  check_static_scene_totals(last, fs, names, size);
  const std::string mode = last.at("mode").get<std::string>();
  EXPECT_TRUE(starts_with(mode, "live")) << mode;
  EXPECT_EQ(u64(last.at("lost_events")), 0u);
  ASSERT_EQ(last["groups"].size(), 1u) << last["groups"].dump();
  EXPECT_EQ(u64(last["groups"][0]["copies"]), names.size());
  EXPECT_EQ(u64(last["groups"][0]["bytes_per_copy"]), size);

  // Paths in top are absolute, also when the PATH argument is relative.
  const std::string parent = fs.dir().substr(0, fs.dir().rfind('/'));
  const std::string rel = fs.dir().substr(fs.dir().rfind('/') + 1);
  auto rr = run_on(sc, {"env", "-C", parent, DUPCACHE_BINARY, "top", "--json", "-n", "1", "-d", "0.5", rel});
  ASSERT_EQ(rr.status, 0) << rr.err;
  const auto rdocs = parse_json_lines(rr.out);
  ASSERT_EQ(rdocs.size(), 1u) << rr.out;
  for (const auto& name : names) EXPECT_NE(file_of(rdocs[0], fs.path(name)), nullptr) << name << "\n" << rr.out;
  EXPECT_EQ(u64(rdocs[0]["totals"]["wasted_bytes"]), (names.size() - 1) * size);
}

TEST(TopJson, SeesReadsAsTheyHappen) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 4 * MiB;
  const std::string a = fs.path("a"), b = fs.path("b");
  write_file(a, size, 12);
  reflink(a, b);
  scene sc;
  sc.track(a);
  sc.track(b);

  std::string out;
  for (int attempt = 1;; ++attempt) {
    sc.release();
    evict(a);
    evict(b);
    read_all(a);
    sc.hold(a);
    ASSERT_EQ(cached_pages(a), size / ps());
    ASSERT_EQ(cached_pages(b), 0u);

    background top({DUPCACHE_BINARY, "top", "--json", "-d", "1", "-n", "4", fs.dir()});
    // The first document means the tracer is attached and the index seeded.
    ASSERT_TRUE(top.wait_for([&] { return !top.out_lines().empty(); }, 20))
        << top.command() << " printed no document\nstderr: " << top.err();
    const auto read_start = clock_type::now();
    read_all(b);
    const double read_s = std::chrono::duration<double>(clock_type::now() - read_start).count();
    sc.hold(b);
    ASSERT_EQ(cached_pages(b), size / ps());
    top.drain();
    const std::size_t docs_when_read_done = top.out_lines().size();
    const int status = top.finish(30);
    ASSERT_EQ(status, 0) << top.command() << "\n" << top.err();
    // The read must end well before the last interval, or the final document cannot show it.
    ASSERT_LE(docs_when_read_done, 2u) << "reading " << size << " bytes took " << read_s
                                       << " s: too slow for this scenario to mean anything";
    out = top.out();
    if (sc.intact()) break;
    ASSERT_LT(attempt, max_attempts) << "pages of the scene were evicted by something else during each run; "
                                     << sc.describe();
    std::fprintf(stderr, "note: scene disturbed (%s); running again\n", sc.describe().c_str());
  }

  const auto docs = parse_json_lines(out);
  ASSERT_EQ(docs.size(), 4u) << out;
  // Before the read: only a was cached, nothing wasted.
  EXPECT_EQ(u64(docs[0]["totals"]["wasted_bytes"]), 0u);
  EXPECT_EQ(u64(docs[0]["totals"]["cached_bytes"]), size);
  // After: b's copy of every block a held is waste.
  const json& last = docs.back();
  EXPECT_EQ(u64(last["totals"]["wasted_bytes"]), size);
  EXPECT_EQ(u64(last["totals"]["cached_bytes"]), 2 * size);
  EXPECT_EQ(u64(last["totals"]["files_cached"]), 2u);
  EXPECT_TRUE(starts_with(last.at("mode").get<std::string>(), "live")) << last.at("mode");
  EXPECT_EQ(u64(last.at("lost_events")), 0u);

  double dup_bytes = 0, insert_bytes = 0;
  bool some_interval_saw_it = false;
  for (const auto& d : docs) {
    const double iv = d.at("interval_s").get<double>();
    const double dup = d["rates"]["duplicate_insert_bytes_per_s"].get<double>();
    some_interval_saw_it = some_interval_saw_it || dup > 0;
    dup_bytes += dup * iv;
    insert_bytes += d["rates"]["insert_bytes_per_s"].get<double>() * iv;
  }
  EXPECT_TRUE(some_interval_saw_it) << "no interval showed duplicate insertions";
  // Every page of b was inserted while a held the same block: exactly `size` duplicate bytes.
  EXPECT_NEAR(dup_bytes, static_cast<double>(size), 0.05 * static_cast<double>(size));
  EXPECT_NEAR(insert_bytes, static_cast<double>(size), 0.05 * static_cast<double>(size));
}

TEST(TopJson, WithoutBpf) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 4 * MiB;
  const std::vector<std::string> names{"a", "b", "c"};
  copies_all_read(fs, names, size, 13);
  scene sc;
  for (const auto& n : names) {
    ASSERT_EQ(cached_pages(fs.path(n)), size / ps()) << n;
    sc.add(fs.path(n));
  }

  const std::vector<std::string> argv{DUPCACHE_BINARY, "top", "--json", "--no-bpf", "-n", "2", "-d", "0.5", fs.dir()};
  auto r = run_on(sc, argv);
  ASSERT_EQ(r.status, 0) << join_argv(argv) << "\n" << r.err;
  const auto docs = parse_json_lines(r.out);
  ASSERT_EQ(docs.size(), 2u) << r.out;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(u64(docs[i].at("iteration")), i + 1);
    const std::string mode = docs[i].at("mode").get<std::string>();
    EXPECT_TRUE(starts_with(mode, "rescan")) << mode;
  }
  check_static_scene_totals(docs.back(), fs, names, size);
}

// ---------------------------------------------------------------------------------------------
// top -b

struct batch_output {
  std::vector<std::string> header;  // up to the blank line
  std::string titles;
  std::vector<std::string> rows;
  std::vector<std::string> all;
};

batch_output parse_batch(const std::string& out) {
  batch_output b;
  b.all = split_lines(out);
  std::size_t i = 0;
  for (; i < b.all.size() && !b.all[i].empty(); ++i) b.header.push_back(b.all[i]);
  for (; i < b.all.size() && b.all[i].empty(); ++i) {
  }
  if (i < b.all.size()) b.titles = b.all[i++];
  for (; i < b.all.size() && !b.all[i].empty(); ++i) b.rows.push_back(b.all[i]);
  return b;
}

// Runs top in batch mode with COLUMNS unset, as from a pipe.
command_result top_batch(const scene& sc, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"env", "-u", "COLUMNS", DUPCACHE_BINARY, "top", "-b", "-n", "1", "-d", "0.5"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_on(sc, argv);
}

void expect_fits_80(const std::vector<std::string>& lines, const std::string& what) {
  for (const auto& l : lines) EXPECT_LE(columns_of(l), 80u) << what << ": line wider than 80 columns:\n" << l;
}

std::string row_path(const std::string& row, std::size_t numeric_columns) {
  auto t = tokens(row);
  std::string p;
  for (std::size_t i = numeric_columns; i < t.size(); ++i) p += (p.empty() ? "" : " ") + t[i];
  return p;
}

TEST(TopBatch, Text) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 4 * MiB, solo_size = 1 * MiB;
  // Two copies b, c and an unshared file a: the wasted order (b, c, a) is neither path order.
  copies_all_read(fs, {"b", "c"}, size, 14);
  write_file(fs.path("a"), solo_size, 15);
  evict(fs.path("a"));
  read_all(fs.path("a"));
  ASSERT_EQ(cached_pages(fs.path("a")), solo_size / ps());
  ASSERT_EQ(cached_pages(fs.path("b")), size / ps());
  ASSERT_EQ(cached_pages(fs.path("c")), size / ps());
  scene sc;
  for (const auto& n : {"a", "b", "c"}) sc.add(fs.path(n));
  const std::uint64_t wasted = size, cached = 2 * size + solo_size;

  {
    auto r = top_batch(sc, {"--bytes", fs.dir()});
    ASSERT_EQ(r.status, 0) << r.err;
    auto b = parse_batch(r.out);
    expect_fits_80(b.all, "top -b --bytes");
    ASSERT_GE(b.header.size(), 4u) << r.out;
    EXPECT_TRUE(starts_with(b.header[0], "dupcache top - ")) << r.out;
    const auto pc = std::find_if(b.header.begin(), b.header.end(), [](auto& l) { return starts_with(l, "page cache "); });
    ASSERT_NE(pc, b.header.end()) << r.out;
    const auto t = tokens(*pc);
    const auto w = std::find(t.begin(), t.end(), "wasted");
    ASSERT_TRUE(w != t.end() && w + 1 != t.end()) << *pc;
    EXPECT_EQ(*(w + 1), std::to_string(wasted)) << *pc;
    EXPECT_NE(std::find(t.begin(), t.end(), std::to_string(cached)), t.end())
        << "watched cached bytes " << cached << " not in: " << *pc;
    EXPECT_TRUE(std::any_of(b.header.begin(), b.header.end(), [](auto& l) { return starts_with(l, "insert "); }))
        << r.out;
    EXPECT_TRUE(std::any_of(b.header.begin(), b.header.end(), [](auto& l) { return starts_with(l, "files scanned "); }))
        << r.out;
    EXPECT_EQ(tokens(b.titles), (std::vector<std::string>{"WASTED", "SHARED", "CACHED", "PATH"})) << b.titles;

    // Each file's row, with its exact numbers: the group's waste is split evenly between b and c.
    std::map<std::string, std::vector<std::string>> by_path;
    for (const auto& row : b.rows) by_path[row_path(row, 3)] = tokens(row);
    ASSERT_EQ(by_path.size(), 3u) << r.out;
    using sv = std::vector<std::string>;
    auto s = [](std::uint64_t v) { return std::to_string(v); };
    EXPECT_EQ(by_path[fs.path("a")], (sv{"0", "0", s(solo_size), fs.path("a")})) << r.out;
    EXPECT_EQ(by_path[fs.path("b")], (sv{s(size / 2), s(size), s(size), fs.path("b")})) << r.out;
    EXPECT_EQ(by_path[fs.path("c")], (sv{s(size / 2), s(size), s(size), fs.path("c")})) << r.out;
    // Default order: wasted, descending.
    ASSERT_EQ(b.rows.size(), 3u);
    EXPECT_EQ(row_path(b.rows[2], 3), fs.path("a")) << r.out;
  }
  {
    auto r = top_batch(sc, {"--bytes", "--view", "groups", fs.dir()});
    ASSERT_EQ(r.status, 0) << r.err;
    auto b = parse_batch(r.out);
    expect_fits_80(b.all, "top -b --view groups");
    EXPECT_TRUE(contains(b.titles, "COPIES")) << r.out;
    ASSERT_EQ(b.rows.size(), 1u) << r.out;
    const auto t = tokens(b.rows[0]);
    ASSERT_GE(t.size(), 4u) << b.rows[0];
    EXPECT_EQ(t[0], "2");
    EXPECT_EQ(t[1], std::to_string(size));
    EXPECT_EQ(t[2], std::to_string(wasted));
  }
  {
    auto r = top_batch(sc, {"--sort", "path", fs.dir()});
    ASSERT_EQ(r.status, 0) << r.err;
    auto b = parse_batch(r.out);
    expect_fits_80(b.all, "top -b --sort path");
    std::vector<std::string> order;
    for (const auto& row : b.rows) {
      for (const auto& n : {"a", "b", "c"}) {
        if (row.size() >= fs.path(n).size() && row.ends_with(fs.path(n))) order.push_back(n);
      }
    }
    ASSERT_EQ(order.size(), 3u) << r.out;
    const bool ascending = order == std::vector<std::string>{"a", "b", "c"};
    const bool descending = order == std::vector<std::string>{"c", "b", "a"};
    EXPECT_TRUE(ascending || descending) << "rows not ordered by path:\n" << r.out;
  }
  {
    auto r = top_batch(sc, {"--sort", "nope", fs.dir()});
    EXPECT_EQ(r.status, 2) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "nope")) << "the message must name the column: " << r.err;
  }

  // A path longer than the line: cut from the left, the line still fits.
  const std::string long_name = std::string(120, 'L') + "-tail";
  reflink(fs.path("b"), fs.path(long_name));
  evict(fs.path(long_name));
  read_all(fs.path(long_name));
  ASSERT_EQ(cached_pages(fs.path(long_name)), size / ps());
  sc.add(fs.path(long_name));
  for (const auto& args : std::vector<std::vector<std::string>>{{"--bytes", fs.dir()},
                                                                {fs.dir()},
                                                                {"--view", "groups", "--bytes", fs.dir()},
                                                                {"--view", "fs", "--bytes", fs.dir()}}) {
    auto r = top_batch(sc, args);
    ASSERT_EQ(r.status, 0) << r.err;
    expect_fits_80(split_lines(r.out), "top -b " + join_argv(args));
  }
  {
    auto r = top_batch(sc, {"--bytes", fs.dir()});
    auto b = parse_batch(r.out);
    EXPECT_TRUE(std::any_of(b.rows.begin(), b.rows.end(),
                            [](auto& row) { return contains(row, "...") && row.ends_with("LLLL-tail"); }))
        << "the long path's row should show its end, cut from the left:\n" << r.out;
  }
}

// ---------------------------------------------------------------------------------------------
// usage errors

TEST(Top, UsageErrors) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-d", "0", "-b", "-n", "1"}, {"--view", "nope", "-b", "-n", "1"}, {"-d", "0", "--json", "-n", "1"}}) {
    std::vector<std::string> argv{DUPCACHE_BINARY, "top"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(fs.dir());
    auto r = run(argv, 30);
    EXPECT_EQ(r.status, 2) << join_argv(argv) << "\nstdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_TRUE(contains(r.err, args[0])) << "the message should name the option " << args[0] << ": " << r.err;
  }
}


}  // namespace
}  // namespace dupcache::testing
