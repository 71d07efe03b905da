// SPDX-License-Identifier: GPL-2.0-only
// UTF-8 validation, terminal-safe names, JSON paths, base64 and human-readable numbers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>
#include <limits>
#include <string>

#include "util/chunked_vector.hpp"
#include "util/packed_string.hpp"
#include "util/text.hpp"

namespace dupcache {
namespace {

using namespace std::string_literals;

TEST(Utf8, ValidSequences) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain/ascii path"));
  EXPECT_TRUE(is_valid_utf8("nul\0inside"s));
  EXPECT_TRUE(is_valid_utf8("\x7f"));
  EXPECT_TRUE(is_valid_utf8("\xc2\x80"));          // U+0080, smallest 2-byte
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9"));       // é
  EXPECT_TRUE(is_valid_utf8("\xdf\xbf"));          // U+07FF
  EXPECT_TRUE(is_valid_utf8("\xe0\xa0\x80"));      // U+0800, smallest 3-byte
  EXPECT_TRUE(is_valid_utf8("\xe2\x82\xac"));      // €
  EXPECT_TRUE(is_valid_utf8("\xed\x9f\xbf"));      // U+D7FF, just below the surrogates
  EXPECT_TRUE(is_valid_utf8("\xee\x80\x80"));      // U+E000, just above them
  EXPECT_TRUE(is_valid_utf8("\xef\xbf\xbf"));      // U+FFFF
  EXPECT_TRUE(is_valid_utf8("\xf0\x90\x80\x80"));  // U+10000, smallest 4-byte
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x98\x80"));  // 😀
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF, the last code point
}

TEST(Utf8, Overlongs) {
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // '/' in two bytes
  EXPECT_FALSE(is_valid_utf8("\xc0\x80"));          // NUL in two bytes
  EXPECT_FALSE(is_valid_utf8("\xc1\xbf"));          // U+007F in two bytes
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // '/' in three
  EXPECT_FALSE(is_valid_utf8("\xe0\x9f\xbf"));      // U+07FF in three
  EXPECT_FALSE(is_valid_utf8("\xf0\x80\x80\xaf"));  // '/' in four
  EXPECT_FALSE(is_valid_utf8("\xf0\x8f\xbf\xbf"));  // U+FFFF in four
}

TEST(Utf8, Surrogates) {
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));  // U+D800
  EXPECT_FALSE(is_valid_utf8("\xed\xb0\x80"));  // U+DC00
  EXPECT_FALSE(is_valid_utf8("\xed\xbf\xbf"));  // U+DFFF
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\xbd\xed\xb8\x80"));  // a CESU-8 pair
}

TEST(Utf8, BeyondU10FFFF) {
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(is_valid_utf8("\xf5\x80\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("\xf7\xbf\xbf\xbf"));
  EXPECT_FALSE(is_valid_utf8("\xf8\x88\x80\x80\x80"));  // old 5-byte form
  EXPECT_FALSE(is_valid_utf8("\xfe"));
  EXPECT_FALSE(is_valid_utf8("\xff"));
}

TEST(Utf8, TruncatedAndStray) {
  EXPECT_FALSE(is_valid_utf8("\xc3"));
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));
  EXPECT_FALSE(is_valid_utf8("\xf0\x9f\x98"));
  EXPECT_FALSE(is_valid_utf8("ok\xe2\x82"));       // truncated at the end
  EXPECT_FALSE(is_valid_utf8("\xe2\x82z"));        // interrupted by ASCII
  EXPECT_FALSE(is_valid_utf8("\xc3\xa9\xa9"));     // extra continuation byte
  EXPECT_FALSE(is_valid_utf8("\x80"));             // lone continuation
  EXPECT_FALSE(is_valid_utf8("abc\xbf"));
}

TEST(TerminalSafe, ControlCharacters) {
  EXPECT_EQ(terminal_safe("\x1b[31mred"), "\\e[31mred");
  EXPECT_EQ(terminal_safe("a\nb"), "a\\nb");
  EXPECT_EQ(terminal_safe("a\tb"), "a\\tb");
  EXPECT_EQ(terminal_safe("a\rb"), "a\\x0db");
  EXPECT_EQ(terminal_safe("\x01\x7f"), "\\x01\\x7f");
  EXPECT_EQ(terminal_safe("nul\0x"s), "nul\\x00x");
}

TEST(TerminalSafe, C1Controls) {
  EXPECT_EQ(terminal_safe("\xc2\x9b" "2J"), "\\u009b2J");  // CSI
  EXPECT_EQ(terminal_safe("\xc2\x80"), "\\u0080");
  EXPECT_EQ(terminal_safe("\xc2\x9f"), "\\u009f");
  EXPECT_EQ(terminal_safe("\xc2\xa0"), "\xc2\xa0");  // NBSP is printable: kept
}

TEST(TerminalSafe, InvalidBytes) {
  EXPECT_EQ(terminal_safe("bad\xff"), "bad\\xff");
  EXPECT_EQ(terminal_safe("\xc3"), "\\xc3");
  EXPECT_EQ(terminal_safe("\xe2\x82" "x"), "\\xe2\\x82x");
  EXPECT_EQ(terminal_safe("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate, byte by byte
  EXPECT_EQ(terminal_safe("\xc0\xaf"), "\\xc0\\xaf");
}

TEST(TerminalSafe, BackslashIsDoubledSoNamesStayDistinct) {
  EXPECT_EQ(terminal_safe("a\\b"), "a\\\\b");
  EXPECT_EQ(terminal_safe("\\e"), "\\\\e");
  EXPECT_NE(terminal_safe("\x1b"), terminal_safe("\\e"));
  EXPECT_NE(terminal_safe("\xff"), terminal_safe("\\xff"));
  EXPECT_NE(terminal_safe("\xc2\x9b"), terminal_safe("\\u009b"));
}

TEST(TerminalSafe, ValidMultibyteKept) {
  const std::string s = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac";
  EXPECT_EQ(terminal_safe(s), s);
  EXPECT_EQ(terminal_safe("/usr/lib/x86_64-linux-gnu/libc.so.6"), "/usr/lib/x86_64-linux-gnu/libc.so.6");
}

TEST(TerminalSafe, NoSingleByteOrC1SurvivesRaw) {
  for (int b = 0; b < 256; ++b) {
    const std::string out = terminal_safe(std::string(1, static_cast<char>(b)));
    for (unsigned char c : out) {
      EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "byte " << b << " gave " << out;
    }
  }
  for (int b = 0x80; b < 0xa0; ++b) {
    const std::string out = terminal_safe(std::string("\xc2") + static_cast<char>(b));
    EXPECT_TRUE(is_valid_utf8(out));
    EXPECT_EQ(out.find('\xc2'), std::string::npos) << "C1 " << b;
  }
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(Base64, HighAndZeroBytes) {
  EXPECT_EQ(base64_encode("\xff\xff\xff"), "////");
  EXPECT_EQ(base64_encode("\xfb\xff"), "+/8=");  // 111110 111111 111111(00): '+' '/' '8'
  EXPECT_EQ(base64_encode("\0"s), "AA==");
  EXPECT_EQ(base64_encode("\0\0\0"s), "AAAA");
}

TEST(JsonPath, ValidPassesThrough) {
  auto p = to_json_path("/srv/caf\xc3\xa9/a b");
  EXPECT_EQ(p.text, "/srv/caf\xc3\xa9/a b");
  EXPECT_FALSE(p.raw_base64.has_value());
  auto q = to_json_path("/odd\\xff");  // a real backslash in a valid name: untouched
  EXPECT_EQ(q.text, "/odd\\xff");
  EXPECT_FALSE(q.raw_base64.has_value());
  EXPECT_FALSE(to_json_path("").raw_base64.has_value());
}

TEST(JsonPath, InvalidBytesEscapedAndBase64Exact) {
  // "/tmp/\xff\xfe" = 2f 74 6d | 70 2f ff | fe
  //   2f746d -> 001011 110111 010001 101101 -> L 3 R t
  //   702fff -> 011100 000010 111111 111111 -> c C / /
  //   fe     -> 111111 10(0000)             -> / g = =
  auto p = to_json_path("/tmp/\xff\xfe");
  EXPECT_EQ(p.text, "/tmp/\\xff\\xfe");
  ASSERT_TRUE(p.raw_base64.has_value());
  EXPECT_EQ(*p.raw_base64, "L3RtcC///g==");
  EXPECT_TRUE(is_valid_utf8(p.text));
}

TEST(JsonPath, ValidSequencesNextToInvalidOnesAreKept) {
  auto p = to_json_path("ok\xc3\xa9\xc3");  // é, then a truncated sequence
  EXPECT_EQ(p.text, "ok\xc3\xa9\\xc3");
  ASSERT_TRUE(p.raw_base64.has_value());
  // 6f 6b c3 | a9 c3 -> 011011 110110 101111 000011 | 101010 011100 0011(00) -> b2vD qcM=
  EXPECT_EQ(*p.raw_base64, "b2vDqcM=");
}

TEST(HumanBytes, Values) {
  EXPECT_EQ(human_bytes(0), "0 B");
  EXPECT_EQ(human_bytes(1), "1 B");
  EXPECT_EQ(human_bytes(1023), "1023 B");
  EXPECT_EQ(human_bytes(1024), "1.0 KiB");
  EXPECT_EQ(human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(human_bytes(101888), "99.5 KiB");     // 99.5 * 1024
  EXPECT_EQ(human_bytes(102400), "100 KiB");      // 100 and up: no decimal
  EXPECT_EQ(human_bytes(1024000), "1000 KiB");
  EXPECT_EQ(human_bytes(10ULL << 20), "10.0 MiB");
  EXPECT_EQ(human_bytes(150ULL << 20), "150 MiB");
  EXPECT_EQ(human_bytes(1ULL << 30), "1.0 GiB");
  EXPECT_EQ(human_bytes(5ULL << 39), "2.5 TiB");  // 5 * 2^39 = 2.5 * 2^40
  EXPECT_EQ(human_bytes(1ULL << 50), "1.0 PiB");
  EXPECT_EQ(human_bytes(1ULL << 60), "1.0 EiB");
  EXPECT_EQ(human_bytes(std::numeric_limits<std::uint64_t>::max()), "16.0 EiB");
}

TEST(HumanBytes, RoundingCarriesIntoTheNextUnit) {
  // 2^20 - 1 bytes is 0.99999905 MiB: shown as "1.0 MiB", never as 1024 of the smaller unit.
  EXPECT_EQ(human_bytes((1ULL << 20) - 1), "1.0 MiB");
  // 102399 bytes is 99.999 KiB, which rounds to 100: shown in the "100 and up" form.
  EXPECT_EQ(human_bytes(102399), "100 KiB");
}

TEST(Percent, Values) {
  EXPECT_EQ(percent(0, 0), "0.0%");
  EXPECT_EQ(percent(5, 0), "0.0%");
  EXPECT_EQ(percent(0, 7), "0.0%");
  EXPECT_EQ(percent(1, 3), "33.3%");
  EXPECT_EQ(percent(2, 3), "66.7%");
  EXPECT_EQ(percent(1, 1), "100.0%");
  EXPECT_EQ(percent(3, 2), "150.0%");
  EXPECT_EQ(percent(1, 1000), "0.1%");
  EXPECT_EQ(percent(45056, 98304), "45.8%");  // 11/24 = 45.833...
}

TEST(ElidePath, FitsUnchanged) {
  EXPECT_EQ(elide_path("/usr/lib/libc.so.6", 40), "/usr/lib/libc.so.6");
  EXPECT_EQ(elide_path("", 10), "");
  EXPECT_EQ(elide_path("/a/b", 0), "");
}

TEST(ElidePath, KeepsTheContainerIdAndTheFileName) {
  const std::string id1(64, 'a'), id2 = std::string(63, 'a') + "b";
  const std::string base = "/var/lib/containers/storage/btrfs/subvolumes/";
  const std::string p1 = base + id1 + "/usr/lib/llvm-14/lib/libLLVM-14.so.1";
  const std::string p2 = base + std::string(12, 'c') + std::string(52, 'd') + "/usr/lib/llvm-14/lib/libLLVM-14.so.1";
  // Ids are cut to 12 digits first; that alone may make it fit.
  EXPECT_EQ(elide_path(p1, 94), base + std::string(12, 'a') + "/usr/lib/llvm-14/lib/libLLVM-14.so.1");
  // Narrower: the middle goes, the id and the file name stay, then components from the right.
  const std::string e1 = elide_path(p1, 48);
  EXPECT_LE(e1.size(), 48U);
  EXPECT_EQ(e1, "/.../aaaaaaaaaaaa/usr/.../lib/libLLVM-14.so.1");
  const std::string e2 = elide_path(p2, 48);
  EXPECT_NE(e1, e2);  // two containers' copies stay apart
  EXPECT_NE(e2.find("cccccccccccc"), std::string::npos);
  // Two ids that differ only after the 12th digit are not told apart by the cut; the id is
  // still shown as far as the runtimes' short ids go.
  EXPECT_NE(elide_path(base + id2 + "/lib/x", 40).find("aaaaaaaaaaaa"), std::string::npos);
}

TEST(ElidePath, NamesTheContainerAfterKnownParents) {
  const std::string p = "/var/lib/lxc/web-1/rootfs/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1";
  const std::string e = elide_path(p, 40);
  EXPECT_LE(e.size(), 40U);
  EXPECT_NE(e.find("/web-1/"), std::string::npos) << e;
  EXPECT_NE(e.find("libLLVM-14.so.1"), std::string::npos) << e;
}

TEST(ElidePath, AFileNameWiderThanTheColumnIsCutFromTheLeft) {
  EXPECT_EQ(elide_path("/a/b/" + std::string(30, 'n'), 10), "..." + std::string(7, 'n'));
  EXPECT_EQ(elide_path("/x/" + std::string(40, 'y') + "/name", 10), "/.../name");
  EXPECT_EQ(elide_path("relative/dir/that/is/long/file", 16), ".../is/long/file");
}

}  // namespace
}  // namespace dupcache

// Issue 15, 9: the walk's and the evictor's opens never pass a symbolic link, with openat2 and
// with the component-by-component fallback of kernels before 5.6.
#include <fcntl.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "util/open_beneath.hpp"

namespace dupcache {
namespace {

TEST(OpenBeneath, RefusesSymlinksAnywhereOnThePath) {
  char tmpl[] = "/tmp/dupcache-beneath-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  ASSERT_EQ(mkdir((root + "/a").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((root + "/a/b").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((root + "/other").c_str(), 0755), 0);
  { unique_fd f(open((root + "/other/x").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)); }
  { unique_fd f(open((root + "/a/b/x").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)); }
  ASSERT_EQ(symlink((root + "/other").c_str(), (root + "/a/link").c_str()), 0);
  ASSERT_EQ(symlink("x", (root + "/a/b/lx").c_str()), 0);
  unique_fd base(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(base);
  for (bool fallback : {false, true}) {
    detail::openat2_unavailable = fallback;
    EXPECT_TRUE(open_no_symlinks(base.get(), "a/b/x", O_RDONLY)) << fallback;
    EXPECT_TRUE(open_no_symlinks(base.get(), "/a//b/x", O_RDONLY)) << fallback;
    EXPECT_TRUE(open_no_symlinks(base.get(), "", O_RDONLY | O_DIRECTORY)) << fallback;
    errno = 0;
    EXPECT_FALSE(open_no_symlinks(base.get(), "a/link/x", O_RDONLY)) << fallback;
    EXPECT_TRUE(errno == ELOOP || errno == ENOTDIR) << fallback << " " << errno;
    EXPECT_FALSE(open_no_symlinks(base.get(), "a/b/lx", O_RDONLY)) << fallback;
    EXPECT_FALSE(open_no_symlinks(base.get(), "a/../other/x", O_RDONLY)) << fallback;
  }
  detail::openat2_unavailable = false;
  std::filesystem::remove_all(root);
}

// The 8-byte string of a scanned file's path: the same text back (NUL bytes and invalid UTF-8
// included), empty holds nothing, copies are deep, moves leave the source empty, it orders as
// its bytes do, and setting it from its own text keeps the text.
TEST(PackedString, HoldsItsTextInEightBytes) {
  static_assert(sizeof(packed_string) == 8);
  const std::string raw = "/data/bad\xff\0name"s;
  packed_string p = raw;
  EXPECT_EQ(p.size(), raw.size());
  EXPECT_EQ(p.str(), raw);
  EXPECT_EQ(p.str(), raw);
  EXPECT_TRUE(p == raw);
  EXPECT_EQ(p.pieces().first, "");  // a heap string is one piece
  EXPECT_EQ(p.pieces().second, std::string_view(raw));
  EXPECT_EQ(packed_string("/a/b").str(), "/a/b");
  packed_string e;
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(e.size(), 0u);
  EXPECT_EQ(e.str(), "");
  EXPECT_EQ(e.pieces().second.size(), 0u);
  e = std::string();
  EXPECT_TRUE(e.empty());

  packed_string copy = p;
  EXPECT_TRUE(copy == p);
  copy = "/other";
  EXPECT_EQ(p.str(), raw) << "a copy is deep";
  packed_string moved = std::move(copy);
  EXPECT_EQ(moved.str(), "/other");
  EXPECT_TRUE(copy.empty());  // NOLINT(bugprone-use-after-move): what a move leaves
  const packed_string& same = moved;
  moved = same;  // self-assignment keeps the text
  EXPECT_EQ(moved.str(), "/other");
  moved = moved.pieces().second.substr(1);  // set from a view of its own block
  EXPECT_EQ(moved.str(), "other");

  // Ordered bytewise, as std::string is ("\xff" after ASCII, a prefix first).
  EXPECT_TRUE(packed_string("/a") < packed_string("/a/b"));
  EXPECT_TRUE(packed_string("/a/z") < packed_string("/a/\xff"));
  EXPECT_TRUE(packed_string("/b") > std::string("/a/zzz"));
  EXPECT_EQ("x" + packed_string("/y") + "z", "x/yz");
  EXPECT_EQ(fmt::format("[{}]", packed_string("/p q")), "[/p q]");
  EXPECT_EQ(std::hash<packed_string>{}(packed_string("/h")), std::hash<std::string_view>{}("/h"));
}

// Issue 17: the scan's paths in a pool, each directory once. A pooled path is its directory's
// block (4 + length bytes, rounded up to even), shared by the directory's files, and a leaf block
// of 8 + 1 + leaf bytes, rounded up to even; copies are heap strings; it compares, hashes and
// formats as its whole text; a pooled string frees nothing.
// Paths of one directory share its block, and are compared by their leaves alone (the report
// sorts a million of them): every pair must still order as the whole texts do.
TEST(PackedString, PathsOfOneDirectoryOrderAsTheirTexts) {
  string_pool pool;
  const std::vector<std::string> texts = {"/t/d1/f1", "/t/d1/f10", "/t/d1/f2", "/t/d1/", "/t/d1/\xff",
                                          "/t/d1/F", "/t/d1/f1", "/t/d10/a", "/t/d1"};
  std::vector<packed_string> paths;
  for (const auto& t : texts) paths.push_back(packed_string::pooled(t, pool));
  EXPECT_EQ(paths[0].pieces().first.data(), paths[6].pieces().first.data());  // one block for "/t/d1/"
  EXPECT_EQ(paths[0].pieces().first.data(), paths[3].pieces().first.data());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    for (std::size_t j = 0; j < texts.size(); ++j) {
      EXPECT_EQ(paths[i] <=> paths[j], texts[i].compare(texts[j]) <=> 0) << texts[i] << " vs " << texts[j];
      EXPECT_EQ(paths[i] == paths[j], texts[i] == texts[j]) << texts[i] << " vs " << texts[j];
    }
  }
}

TEST(PackedString, PooledPathsKeepEachDirectoryOnce) {
  static_assert(sizeof(packed_string) == 8);
  string_pool pool;
  EXPECT_EQ(pool.blocks(), 0u);
  auto a = packed_string::pooled("/t/d1/f1", pool);   // dir 4 + 6 = 10, leaf 8 + 1 + 2 = 11 -> 12
  auto b = packed_string::pooled("/t/d1/f22", pool);  // the same dir; leaf 8 + 1 + 3 = 12
  const auto e = packed_string::pooled("", pool);     // no '/': a heap string (empty: nothing)
  const auto n = packed_string::pooled("name", pool);
  EXPECT_EQ(pool.blocks(), 1u);
  EXPECT_EQ(pool.bytes_used(), 34u);
  EXPECT_EQ(pool.dirs_stored(), 1u);
  EXPECT_TRUE(a.is_pooled());
  EXPECT_FALSE(e.is_pooled());
  EXPECT_TRUE(e.empty());
  EXPECT_FALSE(n.is_pooled());
  EXPECT_EQ(n, "name");
  EXPECT_EQ(a, "/t/d1/f1");
  EXPECT_EQ(a.pieces().first, "/t/d1/");
  EXPECT_EQ(a.pieces().second, "f1");
  EXPECT_EQ(b.str(), "/t/d1/f22");
  EXPECT_EQ(b.size(), 9u);
  EXPECT_EQ(b.pieces().first.data(), a.pieces().first.data());  // one directory block
  EXPECT_EQ(a.pieces().second.data(), a.pieces().first.data() + 6 + 9);  // its leaf block follows
  EXPECT_EQ(b.pieces().second.data(), a.pieces().second.data() + 12);
  EXPECT_LT(a, b);
  EXPECT_EQ(fmt::format("[{}]", a), "[/t/d1/f1]");
  EXPECT_EQ(fmt::format("[{:>10}]", a), "[  /t/d1/f1]");
  EXPECT_EQ(std::hash<packed_string>{}(a), std::hash<std::string_view>{}("/t/d1/f1"));
  EXPECT_EQ(std::string(a), "/t/d1/f1");
  std::string out = "<";
  a.append_to(out);
  EXPECT_EQ(out, "</t/d1/f1");

  // Compared as the whole text, across the pieces' boundaries.
  const auto x = packed_string::pooled("/a/bc", pool);    // dir 4 + 3 -> 8, leaf 8 + 1 + 2 -> 12
  const auto y = packed_string::pooled("/ab/c", pool);    // dir 4 + 4 = 8, leaf 8 + 1 + 1 -> 10
  const auto z = packed_string::pooled("/a/bc/d", pool);  // dir 4 + 6 = 10, leaf 10
  EXPECT_EQ(pool.bytes_used(), 92u);
  EXPECT_EQ(pool.dirs_stored(), 4u);
  EXPECT_TRUE(x == packed_string("/a/bc"));
  EXPECT_TRUE(x == "/a/bc");
  EXPECT_FALSE(x == y);  // the same size, other text
  EXPECT_LT(x, y);       // '/' before 'b'
  EXPECT_GT(y, std::string("/a/bz"));
  EXPECT_EQ(x <=> std::string_view("/a/bc"), std::strong_ordering::equal);
  EXPECT_LT(x, z);  // a prefix first
  EXPECT_GT(z, x);
  EXPECT_LT(packed_string("/a/b"), x);
  EXPECT_LT(x, packed_string("/a/bd"));
  EXPECT_GT(packed_string::pooled("/a/\xff", pool), packed_string("/a/z"));  // bytes unsigned, as std::string
  EXPECT_EQ(pool.bytes_used(), 102u);  // "/a/" is recent: its leaf only, 8 + 1 + 1 -> 10

  packed_string copy = a;  // a heap copy
  EXPECT_FALSE(copy.is_pooled());
  EXPECT_EQ(copy, a);
  EXPECT_EQ(copy.pieces().first, "");
  const char* at = a.pieces().second.data();
  packed_string moved = std::move(a);  // keeps its place in the pool
  EXPECT_TRUE(moved.is_pooled());
  EXPECT_EQ(moved.pieces().second.data(), at);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): what the move leaves
  moved = "/heap";  // the pooled place is left, not freed
  EXPECT_FALSE(moved.is_pooled());
  EXPECT_EQ(moved, "/heap");
  EXPECT_EQ(std::string_view(at, 2), "f1");
  b = std::move(copy);
  EXPECT_FALSE(b.is_pooled());
  EXPECT_EQ(b, "/t/d1/f1");
  packed_string c = packed_string::pooled("/x", pool);  // dir 4 + 1 -> 6, leaf 8 + 1 + 1 -> 10
  c = c.pieces().first;  // assigned from its own pooled directory: now a heap string
  EXPECT_FALSE(c.is_pooled());
  EXPECT_EQ(c, "/");
  EXPECT_EQ(pool.bytes_used(), 118u);
  EXPECT_EQ(pool.dirs_stored(), 5u);

  // A leaf name of up to 255 bytes (NAME_MAX) is pooled; a longer one is a heap string.
  const std::string d255 = "/d/" + std::string(255, 'l');
  const std::string d256 = "/d/" + std::string(256, 'l');
  const auto l255 = packed_string::pooled(d255, pool);  // dir 4 + 3 -> 8, leaf 8 + 1 + 255 = 264
  const auto l256 = packed_string::pooled(d256, pool);
  EXPECT_TRUE(l255.is_pooled());
  EXPECT_FALSE(l256.is_pooled());
  EXPECT_EQ(l255, d255);
  EXPECT_EQ(l256, d256);
  EXPECT_EQ(pool.bytes_used(), 390u);
  EXPECT_EQ(pool.dirs_stored(), 6u);

  // The last 16 directories are found; an older one is stored again (the same text).
  const auto t3 = packed_string::pooled("/t/d1/f3", pool);
  EXPECT_EQ(pool.dirs_stored(), 6u);
  std::vector<packed_string> others;
  for (int i = 0; i < 16; ++i) others.push_back(packed_string::pooled(fmt::format("/n{}/f", i), pool));
  EXPECT_EQ(pool.dirs_stored(), 22u);
  const auto t4 = packed_string::pooled("/t/d1/f4", pool);
  EXPECT_EQ(pool.dirs_stored(), 23u);
  EXPECT_EQ(t4, "/t/d1/f4");
  EXPECT_NE(t4.pieces().first.data(), t3.pieces().first.data());
  EXPECT_EQ(packed_string::pooled("/n15/g", pool), "/n15/g");
  EXPECT_EQ(pool.dirs_stored(), 23u);
  EXPECT_EQ(others[3], "/n3/f");

  // A directory longer than a quarter block gets a block of its own.
  const std::string long_dir = "/" + std::string(16398, 'x') + "/";  // 4 + 16,400 = 16,404 bytes
  const auto ld = packed_string::pooled(long_dir + "f", pool);
  EXPECT_EQ(pool.blocks(), 2u);
  EXPECT_EQ(ld, long_dir + "f");
  EXPECT_EQ(ld.pieces().first.size(), 16400u);

  // Filling a block: a new one. Leaves of 99 bytes: 8 + 1 + 99 = 108 each, after the 6 of "/".
  string_pool pool2;
  std::vector<packed_string> many;
  const std::string name = "/" + std::string(99, 'n');
  for (int i = 0; i < 606; ++i) many.push_back(packed_string::pooled(name, pool2));  // 6 + 606 * 108 = 65,454
  EXPECT_EQ(pool2.blocks(), 1u);
  EXPECT_EQ(pool2.bytes_used(), 65454u);
  many.push_back(packed_string::pooled(name, pool2));  // 108 more do not fit in 65,536
  EXPECT_EQ(pool2.blocks(), 2u);
  EXPECT_EQ(many.back(), name);
  EXPECT_EQ(many.back().pieces().first.data(), many.front().pieces().first.data());
  string_pool other(pool2);  // a copy is empty
  EXPECT_EQ(other.blocks(), 0u);
  EXPECT_EQ(other.dirs_stored(), 0u);
  string_pool taken(std::move(pool2));  // blocks and recent directories move, strings stay put
  EXPECT_EQ(taken.blocks(), 2u);
  EXPECT_EQ(taken.dirs_stored(), 1u);
  EXPECT_EQ(pool2.blocks(), 0u);        // NOLINT(bugprone-use-after-move): what the move leaves
  EXPECT_EQ(pool2.bytes_used(), 0u);    // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(pool2.dirs_stored(), 0u);   // NOLINT(bugprone-use-after-move)
  const auto again = packed_string::pooled(name, taken);  // "/" found in the moved pool
  EXPECT_EQ(taken.dirs_stored(), 1u);
  EXPECT_EQ(again.pieces().first.data(), many.front().pieces().first.data());
  EXPECT_EQ(many.front(), name);
}

// Issue 17: the scan's records in fixed blocks. Growing allocates one block at a time, never
// moves a record, and constructs only the records below size().
struct counted {
  static inline int live = 0;
  static inline int made = 0;
  int v = -1;
  counted() : v(-1) { ++live, ++made; }
  explicit counted(int x) : v(x) { ++live, ++made; }
  counted(const counted& o) : v(o.v) { ++live, ++made; }
  counted& operator=(const counted&) = default;
  ~counted() { --live; }
  bool operator==(const counted& o) const { return v == o.v; }
};

TEST(ChunkedVector, GrowsByFixedBlocksThatNeverMove) {
  static_assert(std::random_access_iterator<chunked_vector<int, 4>::iterator>);
  static_assert(std::random_access_iterator<chunked_vector<int, 4>::const_iterator>);
  counted::live = counted::made = 0;
  {
    chunked_vector<counted, 4> v;
    EXPECT_TRUE(v.empty());
    EXPECT_EQ(v.capacity(), 0u);
    v.resize(5);  // two blocks; only the 5 records are made
    EXPECT_EQ(v.size(), 5u);
    EXPECT_EQ(v.capacity(), 8u);
    EXPECT_EQ(counted::live, 5);
    EXPECT_EQ(counted::made, 5);
    for (int i = 0; i < 5; ++i) v[i].v = i;
    const counted* first = &v[0];
    const counted* fifth = &v[4];
    for (int i = 5; i < 10; ++i) v.push_back(counted(i));  // each push: one temporary, one copy
    EXPECT_EQ(v.size(), 10u);
    EXPECT_EQ(v.capacity(), 12u);  // 3 blocks of 4, not a doubled 16
    EXPECT_EQ(counted::live, 10);
    EXPECT_EQ(counted::made, 15);
    EXPECT_EQ(&v[0], first);  // nothing moved
    EXPECT_EQ(&v[4], fifth);
    EXPECT_EQ(v.front().v, 0);
    EXPECT_EQ(v.back().v, 9);
    int sum = 0;
    for (const auto& c : v) sum += c.v;
    EXPECT_EQ(sum, 45);
    EXPECT_EQ(std::count_if(v.begin(), v.end(), [](const counted& c) { return c.v % 3 == 0; }), 4);  // 0 3 6 9
    EXPECT_EQ(v.end() - v.begin(), 10);
    EXPECT_EQ((v.begin() + 7)->v, 7);
    EXPECT_EQ(v.begin()[6].v, 6);
    std::sort(v.begin(), v.end(), [](const counted& a, const counted& b) { return a.v > b.v; });
    std::vector<int> sorted;
    for (const auto& c : v) sorted.push_back(c.v);
    EXPECT_EQ(sorted, (std::vector<int>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));

    v.resize(3);  // shrinking destroys the records past 3 and keeps the blocks
    EXPECT_EQ(v.size(), 3u);
    EXPECT_EQ(v.capacity(), 12u);
    EXPECT_EQ(counted::live, 3);
    v.resize(6, counted(42));
    EXPECT_EQ(v[2].v, 7);
    EXPECT_EQ(v[3].v, 42);
    EXPECT_EQ(v[5].v, 42);
    EXPECT_EQ(counted::live, 6);

    chunked_vector<counted, 4> copy(v);  // a deep copy
    EXPECT_EQ(copy, v);
    EXPECT_EQ(counted::live, 12);
    copy[0].v = 100;
    EXPECT_EQ(v[0].v, 9);
    EXPECT_FALSE(copy == v);

    chunked_vector<counted, 4> moved(std::move(copy));  // takes the blocks: no record made
    EXPECT_EQ(counted::live, 12);
    EXPECT_EQ(moved.size(), 6u);
    EXPECT_EQ(moved[0].v, 100);
    EXPECT_EQ(copy.size(), 0u);      // NOLINT(bugprone-use-after-move): what the move leaves
    EXPECT_EQ(copy.capacity(), 0u);  // NOLINT(bugprone-use-after-move)
    const counted* kept = &moved[1];
    v = std::move(moved);  // v's own 6 records are destroyed
    EXPECT_EQ(counted::live, 6);
    EXPECT_EQ(&v[1], kept);
    EXPECT_EQ(v[0].v, 100);

    v.clear();  // frees every block
    EXPECT_EQ(counted::live, 0);
    EXPECT_EQ(v.capacity(), 0u);
    v.reserve(9);  // blocks only
    EXPECT_EQ(v.capacity(), 12u);
    EXPECT_EQ(counted::live, 0);
    v.emplace_back(7);
    v.assign(2, counted(1));
    EXPECT_EQ(v.size(), 2u);
    EXPECT_EQ(v.capacity(), 4u);
    EXPECT_EQ(counted::live, 2);
  }
  EXPECT_EQ(counted::live, 0);  // the destructor destroyed every record
}

// The default block: 4096 records, so 1,000,000 records take 245 blocks (1,003,520 places),
// where a vector grown by doubling takes 1,048,576.
TEST(ChunkedVector, AMillionRecordsFitIn245Blocks) {
  chunked_vector<std::uint32_t> v;
  for (std::uint32_t i = 0; i < 1000000; ++i) v.push_back(i);
  EXPECT_EQ(v.capacity(), 245u * 4096u);
  EXPECT_EQ(v.capacity(), 1003520u);
  EXPECT_EQ(v[999999], 999999u);
  EXPECT_EQ(v[4096], 4096u);
  chunked_vector<std::uint32_t> w(3, 5u);
  EXPECT_EQ(w.capacity(), 4096u);
  EXPECT_EQ(w[2], 5u);
}

}  // namespace
}  // namespace dupcache
