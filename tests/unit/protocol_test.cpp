// SPDX-License-Identifier: GPL-2.0-only
// The control socket's messages: the exact bytes each request puts on the wire (older daemons
// and the fuzz corpora hold them), what the server decodes from them, and the answers' forms.

#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "daemon/protocol.hpp"
#include "live/sample_json.hpp"

namespace dupcache::daemon {
namespace {

TEST(protocol, report_request_bytes) {
  report_request r;
  EXPECT_EQ(encode(r), R"({"bytes":false,"cgroups":[],"containers":[],"json":false,"top":0,"views":["file","group"]})");
  r.views = {report_view::fs, report_view::container};
  r.json = true;
  r.top = 5;
  r.bytes = true;
  r.filter = {{"web"}, {"/system.slice"}};
  EXPECT_EQ(encode(r),
            R"({"bytes":true,"cgroups":["/system.slice"],"containers":["web"],"json":true,"top":5,"views":["fs","container"]})");
}

TEST(protocol, sample_request_bytes) {
  sample_request r;
  r.filter = {{"db"}, {}};
  EXPECT_EQ(encode(r), R"({"cgroups":[],"containers":["db"],"sample":true})");
  r.top = 3;
  EXPECT_EQ(encode(r), R"({"cgroups":[],"containers":["db"],"sample":true,"top":3})");
}

TEST(protocol, requests_decode_to_what_was_encoded) {
  report_request r;
  r.views = {report_view::group};
  r.json = true;
  r.top = 7;
  r.filter = {{"a", "b"}, {"/x"}};
  auto d = decode_request(encode(r));
  ASSERT_TRUE(d);
  const auto* got = std::get_if<report_request>(&*d);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->views, r.views);
  EXPECT_TRUE(got->json);
  EXPECT_EQ(got->top, 7u);
  EXPECT_FALSE(got->bytes);
  EXPECT_EQ(got->filter.containers, r.filter.containers);
  EXPECT_EQ(got->filter.cgroups, r.filter.cgroups);

  sample_request s;
  s.top = 2;
  s.filter = {{}, {"/y"}};
  d = decode_request(encode(s));
  ASSERT_TRUE(d);
  const auto* gs = std::get_if<sample_request>(&*d);
  ASSERT_NE(gs, nullptr);
  EXPECT_EQ(gs->top, 2u);
  EXPECT_EQ(gs->filter.cgroups, s.filter.cgroups);
}

TEST(protocol, sample_request_for_a_view) {
  sample_request r;
  r.top = 40;
  live::view_state st;
  st.view = live::view_kind::groups;
  st.sort_column = 3;
  st.descending = false;
  st.filter = "lib\"x";
  st.exact_bytes = true;  // not sent: it orders nothing
  r.view = st;
  EXPECT_EQ(encode(r), R"({"cgroups":[],"containers":[],"sample":true,"top":40,)"
                       R"("view":{"descending":false,"filter":"lib\"x","name":"groups","sort":3}})");
  auto d = decode_request(encode(r));
  ASSERT_TRUE(d);
  const auto& got = std::get<sample_request>(*d);
  ASSERT_TRUE(got.view);
  EXPECT_EQ(got.top, 40u);
  EXPECT_EQ(got.view->view, live::view_kind::groups);
  EXPECT_EQ(got.view->sort_column, 3u);
  EXPECT_FALSE(got.view->descending);
  EXPECT_EQ(got.view->filter, "lib\"x");
  // Only the name is needed: the view's first column, descending, no filter.
  d = decode_request(R"({"sample":true,"view":{"name":"containers"}})");
  ASSERT_TRUE(d);
  const auto& least = std::get<sample_request>(*d);
  ASSERT_TRUE(least.view);
  EXPECT_EQ(least.view->view, live::view_kind::containers);
  EXPECT_EQ(least.view->sort_column, 0u);
  EXPECT_TRUE(least.view->descending);
  EXPECT_EQ(least.view->filter, "");
  // A sample request without a view has none.
  d = decode_request(R"({"sample":true})");
  ASSERT_TRUE(d);
  EXPECT_FALSE(std::get<sample_request>(*d).view);
  for (auto [bad, why] : std::vector<std::pair<const char*, const char*>>{
           {R"({"sample":true,"view":1})", "view: not an object"},
           {R"({"sample":true,"view":{}})", "view: no name"},
           {R"({"sample":true,"view":{"name":"tables"}})", "view: unknown view 'tables'"},
           {R"({"sample":true,"view":{"name":"files","sort":-1}})", "view: sort is not a column number"},
           {R"({"sample":true,"view":{"name":"files","sort":"path"}})", "view: sort is not a column number"},
           {R"({"sample":true,"view":{"name":"files","descending":1}})", "view: descending is not true or false"},
           {R"({"sample":true,"view":{"name":"files","filter":["a"]}})", "view: filter is not text"}}) {
    auto r2 = decode_request(bad);
    ASSERT_FALSE(r2) << bad;
    EXPECT_EQ(r2.err().reason(), why) << bad;
  }
}

TEST(protocol, lenient_where_the_server_always_was) {
  // No views: the report's default; non-string filter items and a negative top are ignored.
  auto d = decode_request(R"({"containers":["a",1,null],"top":-3})");
  ASSERT_TRUE(d);
  const auto& r = std::get<report_request>(*d);
  EXPECT_EQ(r.views, (std::vector<report_view>{report_view::file, report_view::group}));
  EXPECT_EQ(r.filter.containers, std::vector<std::string>{"a"});
  EXPECT_EQ(r.top, 0u);
}

TEST(protocol, refusals_say_why) {
  for (const char* bad : {"", "[1]", "\"x\"", "{", "{\"views\":1"}) {
    auto d = decode_request(bad);
    ASSERT_FALSE(d) << bad;
    EXPECT_EQ(d.err().reason(), "the request is not a JSON object") << bad;
  }
  auto d = decode_request(R"({"views":["file","tables"]})");
  ASSERT_FALSE(d);
  EXPECT_EQ(d.err().reason(), "unknown view 'tables'");
  // A bad view is refused in a sample request too.
  d = decode_request(R"({"sample":true,"views":[3]})");
  ASSERT_FALSE(d);
  EXPECT_EQ(d.err().reason(), "unknown view ''");
  EXPECT_EQ(encode_error("no"), "error: no\n");
}

TEST(protocol, view_names) {
  EXPECT_EQ(view_named("file"), report_view::file);
  EXPECT_EQ(view_named("group"), report_view::group);
  EXPECT_EQ(view_named("fs"), report_view::fs);
  EXPECT_EQ(view_named("container"), report_view::container);
  EXPECT_EQ(view_named("files"), std::nullopt);
}

live::sample a_sample() {
  live::sample s;
  s.model.page_size = 4096;
  s.model.cached_bytes = 8192;
  s.model.wasted_bytes = 4096;
  s.iteration = 3;
  s.elapsed_s = 2.0;
  s.page_cache_bytes = 1 << 20;
  s.insert_bps = 10;
  s.duplicate_insert_bps = 5;
  s.evict_bps = 2.5;
  s.events = 9;
  s.lost_events = 1;
  s.applied_before_ns = 123456789012;
  s.index_entries = 70;
  s.rescans = 4;
  s.compactions = 2;
  s.late_records = 3;
  s.audit_repairs = 5;
  s.live = true;
  s.mode = "live (tp_btf)";
  return s;
}

TEST(protocol, sample_reply_round_trip) {
  const auto s = a_sample();
  const std::string answer = encode_sample_reply(s, 0);
  ASSERT_FALSE(answer.empty());
  EXPECT_EQ(answer.back(), '\n');
  EXPECT_EQ(answer.find('\n'), answer.size() - 1) << "one line";
  auto back = decode_sample_reply(answer);
  ASSERT_TRUE(back) << back.err().message();
  EXPECT_EQ(back->mode, "daemon, live (tp_btf)");
  EXPECT_TRUE(back->live);
  EXPECT_EQ(back->page_cache_bytes, s.page_cache_bytes);
  EXPECT_EQ(back->insert_bps, 10);
  EXPECT_EQ(back->duplicate_insert_bps, 5);
  EXPECT_EQ(back->evict_bps, 2.5);
  EXPECT_EQ(back->events, 9u);
  EXPECT_EQ(back->lost_events, 1u);
  EXPECT_EQ(back->applied_before_ns, 123456789012u);
  EXPECT_EQ(back->index_entries, 70u);
  EXPECT_EQ(back->rescans, 4u);
  EXPECT_EQ(back->compactions, 2u);
  EXPECT_EQ(back->late_records, 3u);
  EXPECT_EQ(back->audit_repairs, 5u);
  EXPECT_EQ(back->model.wasted_bytes, 4096u);
  EXPECT_EQ(back->model.cached_bytes, 8192u);

  auto rescan = a_sample();
  rescan.mode = "rescan (no BPF: disabled by --no-bpf)";
  back = decode_sample_reply(encode_sample_reply(rescan, 0));
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->live);

  auto bad = decode_sample_reply("{not json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err().action, "read the daemon's sample");
}

TEST(protocol, report_reply_is_the_report_commands_output) {
  const auto s = a_sample();
  report_request r;
  r.json = true;
  report_options ro;
  EXPECT_EQ(encode_report_reply(s.model, r), report_json(s.model, ro).dump(2) + "\n");
  r.json = false;
  r.top = 4;
  r.bytes = true;
  ro.top = 4;
  ro.exact_bytes = true;
  EXPECT_EQ(encode_report_reply(s.model, r), report_text(s.model, ro));
}

TEST(protocol, an_absent_daemon_is_named) {
  auto r = ask_report("/nonexistent/dupcache-test.sock", {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().action, "connect /nonexistent/dupcache-test.sock");
  EXPECT_NE(r.err().reason().find("is dupcache daemon running?"), std::string::npos);
}

}  // namespace
}  // namespace dupcache::daemon
