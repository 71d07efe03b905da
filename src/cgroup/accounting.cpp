// SPDX-License-Identifier: GPL-2.0-only
#include "cgroup/accounting.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <unordered_map>

#include "cgroup/hierarchy.hpp"
#include "cgroup/names.hpp"
#include "scan/placement_lookup.hpp"
#include "util/text.hpp"

namespace dupcache::cgroup {

namespace {

// One copy's pages within a physical range: [start, end) charged to one row.
struct charged_piece {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  std::size_t row = 0;
};

class accountant {
 public:
  accountant(const scan_result& scan, const owner_lookup& owner, bool use_charges, const location_lookup& located)
      : scan_(scan), owner_(owner), located_(located), ps_(scan.index.page_size()), use_charges_(use_charges),
        placed_(scan) {}

  std::vector<container_row> run() {
    for (copy_id c = 0; c < scan_.files.size(); ++c) cached(c);
    scan_.index.for_each_shared([&](domain_id d, std::uint64_t s, std::uint64_t e, const std::vector<copy_id>& cs) {
      segment(d, s, e, cs);
    });
    round_waste();
    return finish();
  }

 private:
  struct acc {
    std::map<std::uint64_t, std::uint64_t> share;  // k -> Σ (k-1)·pages: the share is Σ n/k pages
    std::unordered_map<copy_id, std::pair<std::uint64_t, std::map<std::uint64_t, std::uint64_t>>> files;
    std::unordered_map<std::size_t, std::uint64_t> peers;
  };

  std::size_t row_of(std::uint64_t ino) {
    if (auto it = row_by_ino_.find(ino); it != row_by_ino_.end()) return it->second;
    container_row r;
    if (ino == 0) {
      r.runtime = "unattributed";
    } else {
      const charge_owner o = owner_(ino);
      if (!o.known) {
        r.runtime = "removed";
        r.id = "cgroup-ino-" + std::to_string(ino);
      } else {
        r = owner_row(o);
      }
    }
    const std::size_t idx = intern(std::move(r));
    row_by_ino_.emplace(ino, idx);
    return idx;
  }

  static container_row owner_row(const charge_owner& o) {
    container_row r;
    if (o.ref.host()) {
      r.runtime = "host";
      r.cgroup = "/";
      return r;
    }
    r.runtime = o.ref.runtime;
    r.id = o.ref.id;
    r.cgroup = o.ref.cgroup;
    r.pod_uid = o.ref.pod_uid;
    r.qos = o.ref.qos;
    r.name = o.name;
    return r;
  }

  std::size_t intern(container_row r) {
    const std::string key = r.runtime + "\n" + r.id + "\n" + r.cgroup + (r.stopped ? "\nstopped" : "");
    if (auto it = row_by_key_.find(key); it != row_by_key_.end()) return it->second;
    const std::size_t idx = rows_.size();
    rows_.push_back(std::move(r));
    accs_.emplace_back();
    row_by_key_.emplace(key, idx);
    return idx;
  }

  // The row a page of copy c charged to cgroup `ino` belongs to. A page charged to the host or
  // to a removed cgroup, in a file that lives in a container that has no cgroup any more, is
  // that stopped container's: the kernel moved its charge to the nearest surviving ancestor.
  std::size_t row_for(copy_id c, std::uint64_t ino) {
    const std::size_t r = row_of(ino);
    if (!located_ || (rows_[r].runtime != "host" && rows_[r].runtime != "removed")) return r;
    auto it = stopped_row_.find(c);
    if (it == stopped_row_.end()) {
      std::optional<std::size_t> row;
      if (auto o = located_(c)) {
        container_row x = owner_row(*o);
        x.stopped = true;
        row = intern(std::move(x));
      }
      it = stopped_row_.emplace(c, row).first;
    }
    return it->second.value_or(r);
  }

  const std::vector<charge_run>* charges_of(copy_id c) const {
    if (!use_charges_ || !scan_.attributed || c >= scan_.charges.size()) return nullptr;
    return &scan_.charges[c];
  }

  // Cached bytes per container; what the charges do not cover is unattributed.
  void cached(copy_id c) {
    const std::uint64_t total = scan_.files[c].cached_bytes;
    if (total == 0) return;
    std::uint64_t seen = 0;
    if (const auto* runs = charges_of(c)) {
      for (const auto& r : *runs) {
        auto& row = rows_[row_for(c, r.cgroup)];
        row.cached_bytes += r.pages * ps_;
        add_copy(row, c);
        seen += r.pages * ps_;
      }
    }
    if (seen < total) {
      auto& row = rows_[row_of(0)];
      row.cached_bytes += total - seen;
      add_copy(row, c);
    }
  }

  static void add_copy(container_row& row, copy_id c) {
    if (row.copies.empty() || row.copies.back() != c) row.copies.push_back(c);
  }

  // The charges of copy c's pages within [s, e) of domain d, in address order, gap-free.
  std::vector<charged_piece> pieces(copy_id c, domain_id d, std::uint64_t s, std::uint64_t e) {
    std::vector<charged_piece> out;
    auto emit = [&](std::uint64_t a, std::uint64_t b, std::size_t row) {
      if (a >= b) return;
      if (!out.empty() && out.back().end == a && out.back().row == row) out.back().end = b;
      else out.push_back({a, b, row});
    };
    const auto* runs = charges_of(c);
    for (const auto& sp : placed_.spans(c, d, s, e)) {
      if (!sp.placed) {
        emit(sp.start, sp.end, row_of(0));  // not placed: cannot say whose
        continue;
      }
      // File pages [p0, p1) hold [sp.start, sp.end).
      const std::uint64_t xs = sp.start, xe = sp.end;
      const std::uint64_t p0 = sp.first_page;
      const std::uint64_t p1 = p0 + (xe - xs) / ps_;
      std::uint64_t p = p0;
      if (runs) {
        auto r = std::upper_bound(runs->begin(), runs->end(), p0,
                                  [](std::uint64_t v, const charge_run& cr) { return v < cr.first; });
        if (r != runs->begin()) --r;
        for (; r != runs->end() && r->first < p1; ++r) {
          const std::uint64_t a = std::max(p, r->first);
          const std::uint64_t b = std::min(p1, r->first + r->pages);
          if (a >= b) continue;
          emit(xs + (p - p0) * ps_, xs + (a - p0) * ps_, row_of(0));
          emit(xs + (a - p0) * ps_, xs + (b - p0) * ps_, row_for(c, r->cgroup));
          p = b;
        }
      }
      emit(xs + (p - p0) * ps_, xe, row_of(0));
    }
    return out;
  }

  void segment(domain_id d, std::uint64_t s, std::uint64_t e, const std::vector<copy_id>& cs) {
    const std::size_t k = cs.size();
    std::vector<std::vector<charged_piece>> per(k);
    std::vector<std::size_t> pos(k, 0);
    for (std::size_t i = 0; i < k; ++i) per[i] = pieces(cs[i], d, s, e);
    std::vector<std::size_t> rows(k);
    std::vector<std::pair<std::size_t, std::uint64_t>> present;  // row, copies in it
    for (std::uint64_t at = s; at < e;) {
      std::uint64_t next = e;
      for (std::size_t i = 0; i < k; ++i) {
        while (per[i][pos[i]].end <= at) ++pos[i];
        rows[i] = per[i][pos[i]].row;
        next = std::min(next, per[i][pos[i]].end);
      }
      const std::uint64_t pages = (next - at) / ps_;
      present.clear();
      for (std::size_t i = 0; i < k; ++i) {
        auto& a = accs_[rows[i]];
        a.share[k] += (k - 1) * pages;
        auto& f = a.files[cs[i]];
        f.first += pages * ps_;
        f.second[k] += (k - 1) * pages;
        rows_[rows[i]].shared_cached_bytes += pages * ps_;
        auto p = std::find_if(present.begin(), present.end(), [&](const auto& x) { return x.first == rows[i]; });
        if (p == present.end()) present.push_back({rows[i], 1});
        else ++p->second;
      }
      for (const auto& [x, n] : present) {
        for (const auto& [y, _] : present) {
          if (y != x) accs_[x].peers[y] += n * pages * ps_;
        }
      }
      total_wasted_pages_ += (k - 1) * pages;
      at = next;
    }
  }

  // Whole pages of each row's exact share, then the pages left over by largest remainder.
  void round_waste() {
    std::vector<std::uint64_t> whole(rows_.size(), 0);
    std::vector<long double> frac(rows_.size(), 0);
    std::uint64_t given = 0;
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      for (const auto& [k, n] : accs_[i].share) {
        whole[i] += n / k;
        frac[i] += static_cast<long double>(n % k) / static_cast<long double>(k);
      }
      const auto extra = static_cast<std::uint64_t>(std::floor(frac[i] + 1e-9L));
      whole[i] += extra;
      frac[i] = std::max<long double>(0, frac[i] - static_cast<long double>(extra));
      given += whole[i];
    }
    std::vector<std::size_t> order(rows_.size());
    std::iota(order.begin(), order.end(), 0);
    // Ties go by the rows' identity, never by the order rows were met in: that order follows the
    // scanner's threads, and the same cache must give the same bytes per row on every run.
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      if (frac[a] != frac[b]) return frac[a] > frac[b];
      const auto& x = rows_[a];
      const auto& y = rows_[b];
      return std::tie(x.runtime, x.id, x.cgroup) < std::tie(y.runtime, y.id, y.cgroup);
    });
    // Rounding of the remainders may be off by a page either way: the total is exact by
    // construction.
    for (std::size_t j = 0; given < total_wasted_pages_ && !order.empty(); j = (j + 1) % order.size()) {
      ++whole[order[j]];
      ++given;
    }
    for (std::size_t j = order.size(); given > total_wasted_pages_ && j-- > 0;) {
      if (whole[order[j]] > 0) {
        --whole[order[j]];
        --given;
        if (j == 0) j = order.size();
      }
    }
    for (std::size_t i = 0; i < rows_.size(); ++i) rows_[i].wasted_bytes = whole[i] * ps_;
  }

  std::vector<container_row> finish() {
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      auto& r = rows_[i];
      for (const auto& [c, f] : accs_[i].files) {
        std::uint64_t w = 0;
        for (const auto& [k, n] : f.second) w += n / k;
        r.files.push_back({c, f.first, w * ps_});
      }
      std::sort(r.files.begin(), r.files.end(), [&](const auto& a, const auto& b) {
        if (a.shared_cached_bytes != b.shared_cached_bytes) return a.shared_cached_bytes > b.shared_cached_bytes;
        return scan_.files[a.copy].path < scan_.files[b.copy].path;
      });
      for (const auto& [y, bytes] : accs_[i].peers) {
        const auto& o = rows_[y];
        r.shared_with.push_back({o.runtime, o.id, o.name, o.cgroup, o.label(), bytes});
      }
      std::sort(r.shared_with.begin(), r.shared_with.end(), [](const auto& a, const auto& b) {
        return a.bytes != b.bytes ? a.bytes > b.bytes : std::tie(a.label, a.cgroup) < std::tie(b.label, b.cgroup);
      });
      std::sort(r.copies.begin(), r.copies.end());
      r.copies.erase(std::unique(r.copies.begin(), r.copies.end()), r.copies.end());
    }
    std::vector<container_row> out = std::move(rows_);
    // Rows met only on the way (an empty gap) hold nothing.
    std::erase_if(out, [](const container_row& r) { return r.cached_bytes == 0 && r.shared_cached_bytes == 0 && r.wasted_bytes == 0; });
    std::sort(out.begin(), out.end(), [&](const container_row& x, const container_row& y) {
      if (x.wasted_bytes != y.wasted_bytes) return x.wasted_bytes > y.wasted_bytes;
      if (x.cached_bytes != y.cached_bytes) return x.cached_bytes > y.cached_bytes;
      return std::tie(x.runtime, x.id, x.cgroup) < std::tie(y.runtime, y.id, y.cgroup);
    });
    return out;
  }

  const scan_result& scan_;
  const owner_lookup& owner_;
  const location_lookup& located_;
  std::uint64_t ps_;
  bool use_charges_;
  placement_lookup placed_;
  std::vector<container_row> rows_;
  std::vector<acc> accs_;
  std::unordered_map<std::uint64_t, std::size_t> row_by_ino_;
  std::unordered_map<std::string, std::size_t> row_by_key_;
  std::unordered_map<copy_id, std::optional<std::size_t>> stopped_row_;
  std::uint64_t total_wasted_pages_ = 0;
};

}  // namespace

std::string container_row::label() const {
  if (!name.empty()) return name;
  if (!id.empty()) return id.size() > 12 && runtime != "systemd" && runtime != "lxc" && runtime != "systemd-nspawn"
                              ? id.substr(0, 12)
                              : id;
  if (runtime == "unattributed") return "(unattributed)";
  return runtime == "host" ? "(host)" : cgroup;
}

owner_lookup host_owners(cgroup_map& map, name_resolver& names) {
  return [&map, &names](std::uint64_t ino) {
    charge_owner o;
    const std::string* path = map.path_refreshing(ino);
    if (!path) {
      o.known = false;
      return o;
    }
    o.ref = classify(*path);
    o.name = names.name(o.ref);
    return o;
  };
}

std::vector<container_row> account(const scan_result& scan, const owner_lookup& owner, bool use_charges,
                                   const location_lookup& located) {
  return accountant(scan, owner, use_charges, located).run();
}

struct host_accounting::impl {
  explicit impl(std::string root) : names(std::move(root)) {}
  name_resolver names;
  std::optional<cgroup_map> map;
  std::string map_error;
  bool tried = false;
};

host_accounting::host_accounting(std::string metadata_root) : impl_(std::make_unique<impl>(std::move(metadata_root))) {}
host_accounting::~host_accounting() = default;

void host_accounting::load_map() {
  if (impl_->tried) return;
  impl_->tried = true;
  auto m = cgroup_map::load();
  if (m) impl_->map.emplace(std::move(*m));
  else impl_->map_error = m.err().message();
}

std::vector<container_row> host_accounting::rows(const scan_result& scan) {
  load_map();
  if (!impl_->map) return account(scan, [](std::uint64_t) { return charge_owner{}; }, false);
  // Containers with a cgroup now; the others the runtimes know of are stopped (or removed), and
  // their pages, charged to an ancestor since, are put back on them by where the files live.
  // By id alone: the runtime a cgroup's name suggests is not always the catalog's (a CRI-O
  // container under the cgroupfs driver classifies as "kubernetes").
  std::set<std::string> live;
  for (const auto& [ino, path] : impl_->map->paths()) {
    if (auto ref = classify(path); !ref.host()) live.insert(ref.id);
  }
  const location_lookup located = [&](copy_id c) -> std::optional<charge_owner> {
    if (c >= scan.files.size()) return std::nullopt;
    const known_container* k = impl_->names.owner_of_path(scan.files[c].path.str());
    if (!k || live.count(k->id)) return std::nullopt;
    charge_owner o;
    o.ref.runtime = k->runtime;
    o.ref.id = k->id;
    o.name = k->name;
    return o;
  };
  return account(scan, host_owners(*impl_->map, impl_->names), true, located);
}

std::string host_accounting::error(const scan_result& scan) const {
  if (!scan.attributed) return scan.attribution_error;
  return impl_->map_error;
}

std::vector<container_row> host_accounting::known_containers() {
  std::vector<container_row> out;
  for (const auto& k : impl_->names.containers()) {
    container_row r;
    r.runtime = k.runtime;
    r.id = k.id;
    r.name = k.name;
    out.push_back(std::move(r));
  }
  load_map();
  if (impl_->map) {
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& [ino, path] : impl_->map->paths()) {
      const container_ref ref = classify(path);
      if (ref.host() || ref.monitor || !seen.insert({ref.runtime, ref.id}).second) continue;
      container_row r;
      r.runtime = ref.runtime;
      r.id = ref.id;
      r.cgroup = ref.cgroup;
      r.pod_uid = ref.pod_uid;
      r.name = impl_->names.name(ref);
      out.push_back(std::move(r));
    }
  }
  return out;
}

bool matches_container(const container_row& r, const std::string& want) {
  if (want.empty()) return false;
  if (r.name == want || r.id == want || r.pod_uid == want) return true;
  return want.size() >= 4 && r.id.size() > want.size() && r.id.compare(0, want.size(), want) == 0;
}

bool matches_cgroup(const container_row& r, const std::string& want) {
  if (r.cgroup.empty() || want.empty()) return false;
  std::string w = want;
  while (w.size() > 1 && w.back() == '/') w.pop_back();
  if (w == "/") return true;
  return r.cgroup == w || (r.cgroup.size() > w.size() && r.cgroup.compare(0, w.size(), w) == 0 && r.cgroup[w.size()] == '/');
}

bool container_filter::matches(const container_row& r) const {
  for (const auto& c : containers) {
    if (matches_container(r, c)) return true;
  }
  for (const auto& c : cgroups) {
    if (matches_cgroup(r, c)) return true;
  }
  return false;
}

std::vector<std::string> unknown_container_errors(const std::string& option, const std::vector<std::string>& wanted,
                                                  const std::vector<container_row>& rows, host_accounting& acc) {
  std::vector<std::string> out;
  if (wanted.empty()) return out;
  std::vector<container_row> known = acc.known_containers();
  for (const auto& r : rows) {
    if (r.runtime != "host" && r.runtime != "unattributed" && r.runtime != "removed") known.push_back(r);
  }
  std::set<std::string> labels;
  for (const auto& r : known) labels.insert(r.label());
  for (const auto& want : wanted) {
    if (std::any_of(known.begin(), known.end(), [&](const auto& r) { return matches_container(r, want); })) {
      continue;
    }
    constexpr std::size_t listed = 20;
    std::string names;
    std::size_t n = 0;
    for (const auto& l : labels) {
      if (n++ == listed) break;
      names += (names.empty() ? "" : ", ") + terminal_safe(l);
    }
    if (labels.size() > listed) names += fmt::format(" and {} more", labels.size() - listed);
    out.push_back(fmt::format("{} {}: no such container ({})", option, terminal_safe(want),
                              names.empty() ? "no containers are known on this host" : "known: " + names));
  }
  return out;
}

}  // namespace dupcache::cgroup
