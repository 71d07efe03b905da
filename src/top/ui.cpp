// SPDX-License-Identifier: GPL-2.0-only
#include "top/ui.hpp"

#include <curses.h>
#include <fmt/format.h>

#include <atomic>
#include <clocale>
#include <condition_variable>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "live/sample_json.hpp"
#include "util/json_text.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

namespace dupcache::top {
namespace {

struct curses_session {
  curses_session() {
    std::setlocale(LC_ALL, "");
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    timeout(200);
  }
  ~curses_session() { endwin(); }
};

void draw(const sample* s, const view_state& st, const std::string& status) {
  erase();
  const int width = COLS;
  int y = 0;
  if (!s) {
    mvaddnstr(0, 0, "dupcache top: scanning...", width);
    refresh();
    return;
  }
  for (const auto& l : header_lines(*s, st.exact_bytes, width)) mvaddnstr(y++, 0, l.c_str(), width);
  std::string tabs;
  for (auto v : {view_kind::files, view_kind::groups, view_kind::filesystems, view_kind::containers}) {
    tabs += v == st.view ? fmt::format("[{}] ", view_name(v)) : fmt::format(" {}  ", view_name(v));
  }
  tabs += st.filter.empty() ? "" : "filter: " + st.filter;
  mvaddnstr(y++, 0, tabs.c_str(), width);

  table t = make_table(*s, st.view, st.exact_bytes);
  sort_table(t, st.sort_column, st.descending);
  filter_table(t, st.filter);
  std::vector<std::string> titles;
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    std::string title = t.columns[i].title;
    if (i == st.sort_column) title += st.descending ? "v" : "^";
    titles.push_back(title);
  }
  attron(A_REVERSE);
  std::string head = format_row(t, titles, width);
  head.resize(static_cast<std::size_t>(width), ' ');
  mvaddnstr(y++, 0, head.c_str(), width);
  attroff(A_REVERSE);
  for (const auto& r : t.rows) {
    if (y >= LINES - 1) break;
    mvaddnstr(y++, 0, format_row(t, r.cells, width).c_str(), width);
  }
  mvaddnstr(LINES - 1, 0, status.c_str(), width);
  refresh();
}

}  // namespace

int run_curses(live::sample_source& smp, view_state st, std::uint64_t iterations, bool (*stop_requested)(),
               const std::function<void(const view_state&)>& on_view) {
  std::mutex mu;
  std::shared_ptr<const sample> latest;
  std::string failure;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> produced{0};

  std::exception_ptr escaped;  // from the producer, thrown again here once curses has ended
  std::thread producer([&] {
    try {
      while (!stop) {
        auto s = smp.next();
        std::lock_guard lock(mu);
        if (!s) {
          failure = s.err().message();
          stop = true;
          return;
        }
        latest = std::make_shared<const sample>(std::move(s.value()));
        ++produced;
        if (iterations && produced >= iterations) return;
      }
    } catch (...) {
      std::lock_guard lock(mu);
      escaped = std::current_exception();
      failure = "the sampler failed";
      stop = true;
    }
  });
  // Whichever way the screen loop ends, a throw included, the producer is stopped and joined
  // (a joinable std::thread destroyed would end the process before the screen is restored).
  struct producer_stop {
    std::atomic<bool>& stop;
    live::sample_source& smp;
    std::thread& producer;
    ~producer_stop() {
      stop = true;
      smp.wake();
      if (producer.joinable()) producer.join();
    }
  } stop_producer{stop, smp, producer};

  int status = 0;
  {
    curses_session session;
    const std::string keys = "q quit  < > sort  r reverse  / filter  f g s views  b bytes";
    std::uint64_t drawn = 0;
    bool dirty = true;
    view_state told = st;  // what on_view was last told (the caller set the first)
    for (;;) {
      std::shared_ptr<const sample> s;
      {
        std::lock_guard lock(mu);
        s = latest;
        if (!failure.empty()) {
          status = 1;
          break;
        }
      }
      const std::uint64_t now_produced = produced;
      if (dirty || now_produced != drawn) {
        draw(s.get(), st, keys);
        drawn = now_produced;
        dirty = false;
      }
      if (iterations && drawn >= iterations) break;
      if (stop_requested && stop_requested()) break;
      const int ch = getch();
      if (ch == ERR) continue;
      dirty = true;
      const std::size_t ncols = s ? make_table(*s, st.view, st.exact_bytes).columns.size() : 4;
      switch (ch) {
        case 'q':
        case 'Q':
          goto done;
        case '<':
        case KEY_LEFT:
          st.sort_column = st.sort_column == 0 ? ncols - 1 : st.sort_column - 1;
          break;
        case '>':
        case KEY_RIGHT:
          st.sort_column = (st.sort_column + 1) % ncols;
          break;
        case 'r':
          st.descending = !st.descending;
          break;
        case 'b':
          st.exact_bytes = !st.exact_bytes;
          break;
        case 'f':
        case 'g':
        case 's':
        case 'c':
        case '\t': {
          view_kind next = ch == 'f' ? view_kind::files : ch == 'g' ? view_kind::groups
                         : ch == 's' ? view_kind::filesystems
                         : ch == 'c' ? view_kind::containers
                         : st.view == view_kind::files ? view_kind::groups
                         : st.view == view_kind::groups ? view_kind::filesystems
                         : st.view == view_kind::filesystems ? view_kind::containers : view_kind::files;
          st.view = next;
          st.sort_column = next == view_kind::groups ? 2 : 0;
          st.descending = true;
          break;
        }
        case '/': {
          echo();
          curs_set(1);
          timeout(-1);
          mvaddstr(LINES - 1, 0, "filter: ");
          clrtoeol();
          char buf[256] = {};
          getnstr(buf, sizeof buf - 1);
          st.filter = buf;
          noecho();
          curs_set(0);
          timeout(200);
          break;
        }
        default:
          break;
      }
      if (on_view && (st.view != told.view || st.sort_column != told.sort_column ||
                      st.descending != told.descending || st.filter != told.filter)) {
        told = st;
        on_view(st);
        smp.wake();  // the rows of the new view now, not at the next interval
      }
    }
  done:;
  }
  stop = true;
  smp.wake();
  producer.join();
  if (escaped) std::rethrow_exception(escaped);
  if (!failure.empty()) log::error("{}", failure);
  return status;
}

int run_batch(live::sample_source& smp, const view_state& st, const batch_options& o, bool (*stop_requested)()) {
  for (std::uint64_t i = 0; (o.iterations == 0 || i < o.iterations) && !stop_requested(); ++i) {
    auto s = smp.next();
    if (!s) {
      log::error("{}", terminal_safe(s.err().message()));
      return 1;
    }
    if (o.json) {
      live::write_sample_json(std::cout, *s, o.rows);
      std::cout << '\n';
    } else {
      std::cout << batch_text(*s, st, o.rows, o.width) << '\n';
    }
    std::cout.flush();
    if (!std::cout) return 1;
  }
  return 0;
}

}  // namespace dupcache::top
