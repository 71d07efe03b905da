// SPDX-License-Identifier: GPL-2.0-only
#include "soak/churn.hpp"

#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "util/fd.hpp"

namespace dupcache::soak {
namespace {

constexpr unsigned pool_size = 40;        // files per area that the churn writes, clones, renames
constexpr std::uint64_t max_blocks = 512;  // 2 MiB per file at most
constexpr unsigned burst_count = 256;      // small files per area for the burst
constexpr std::uint64_t burst_blocks = 16;  // of 4 KiB each
constexpr unsigned max_snapshots = 3, max_subvolumes = 2;

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t blocks_of(const std::vector<std::uint64_t>& t) { return t.size(); }

void make_dirs(const std::string& p) {
  std::error_code ec;
  std::filesystem::create_directories(p, ec);
  if (ec) throw std::runtime_error("create " + p + ": " + ec.message());
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

}  // namespace

void fill_block(std::uint64_t tag, unsigned char* out) {
  if (tag == 0) {
    std::memset(out, 0, block);
    return;
  }
  for (std::uint64_t i = 0; i < block / 8; ++i) {
    const std::uint64_t w = mix(tag * 4099 + i);
    std::memcpy(out + i * 8, &w, 8);
  }
}

churn::churn(std::vector<area> areas, std::uint64_t seed) : areas_(std::move(areas)), seed_(seed), rng_(seed) {}

std::string churn::pool_name(const area& a, unsigned i) const {
  // On btrfs the pool lives in a subvolume (sv), which the snapshots copy.
  const std::string base = a.mount + (a.btrfs ? "/sv" : "/data");
  char name[32];
  std::snprintf(name, sizeof name, i < pool_size * 3 / 5 ? "/f%02u" : "/d/f%02u", i);
  return base + name;
}

bool churn::structural_due() {
  if (!subvolumes_on_) return false;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_structural_ < std::chrono::seconds(2)) return false;
  last_structural_ = now;
  return true;
}

bool churn::chance(unsigned percent) { return below(100) < percent; }
std::uint64_t churn::below(std::uint64_t n) { return n == 0 ? 0 : rng_() % n; }

void churn::fail(const std::string& what, int err) {
  ++counts_.errors;
  if (counts_.first_errors.size() < 20) counts_.first_errors.push_back(what + ": " + std::strerror(err));
}

std::uint64_t churn::modelled_bytes() const {
  std::uint64_t n = 0;
  for (const auto& [p, t] : model_) n += blocks_of(t) * block;
  return n;
}

std::vector<std::string> churn::existing(const area& a, bool writable_only) const {
  std::vector<std::string> out;
  const std::string root = a.mount + "/";
  for (const auto& [p, t] : model_) {
    if (!starts_with(p, root) || starts_with(p, a.mount + "/burst/")) continue;
    if (writable_only && starts_with(p, a.mount + "/snaps/")) continue;
    out.push_back(p);
  }
  return out;
}

bool churn::write_blocks(int fd, std::uint64_t first, const tags& t) {
  std::vector<unsigned char> buf(t.size() * block);
  for (std::size_t i = 0; i < t.size(); ++i) fill_block(t[i], buf.data() + i * block);
  const auto n = ::pwrite(fd, buf.data(), buf.size(), static_cast<off_t>(first * block));
  return n == static_cast<ssize_t>(buf.size());
}

void churn::setup() {
  for (const auto& a : areas_) {
    if (a.btrfs) {
      make_dirs(a.mount + "/snaps");
      make_dirs(a.mount + "/vols");
      unique_fd dir(::open(a.mount.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      btrfs_ioctl_vol_args args{};
      std::strncpy(args.name, "sv", sizeof args.name - 1);
      if (dir.get() < 0 || ::ioctl(dir.get(), BTRFS_IOC_SUBVOL_CREATE, &args) != 0)
        throw std::runtime_error("create the subvolume " + a.mount + "/sv: " + std::strerror(errno));
      make_dirs(a.mount + "/sv/d");
    } else {
      make_dirs(a.mount + "/data/d");
    }
    make_dirs(a.mount + "/burst");
    // Half the pool written, a quarter cloned from it: waste as soon as both are read.
    for (unsigned i = 0; i < pool_size; ++i) {
      const std::string p = pool_name(a, i);
      if (i < pool_size / 2) {
        tags t(1 + below(max_blocks / 2));
        for (auto& x : t) x = new_tag();
        unique_fd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (fd.get() < 0 || !write_blocks(fd.get(), 0, t)) throw std::runtime_error("write " + p + ": " + std::strerror(errno));
        model_[p] = std::move(t);
      } else if (i < pool_size * 3 / 4) {
        const std::string src = pool_name(a, i - pool_size / 2);
        unique_fd s(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
        unique_fd d(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (s.get() < 0 || d.get() < 0 || ::ioctl(d.get(), FICLONE, s.get()) != 0)
          throw std::runtime_error("clone " + src + " to " + p + ": " + std::strerror(errno));
        model_[p] = model_[src];
      }
    }
    for (unsigned i = 0; i < burst_count; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "/burst/b%03u", i);
      const std::string p = a.mount + name;
      tags t(burst_blocks);
      for (auto& x : t) x = new_tag();
      unique_fd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (fd.get() < 0 || !write_blocks(fd.get(), 0, t)) throw std::runtime_error("write " + p + ": " + std::strerror(errno));
      model_[p] = std::move(t);
      burst_files_.push_back(p);
    }
  }
  ::sync();
}

void churn::step() {
  const area& a = areas_[below(areas_.size())];
  // Percent per operation: reads dominate, as on a real host; structural operations are rare.
  const unsigned r = static_cast<unsigned>(below(100));
  if (r < 14) op_read(a, false);
  else if (r < 26) op_read(a, true);
  else if (r < 34) op_mmap(a);
  else if (r < 46) op_write(a);
  else if (r < 51) op_clone_file(a);
  else if (r < 57) op_clone_range(a);
  else if (r < 63) op_dedupe(a);
  else if (r < 66) op_truncate(a);
  else if (r < 69) op_punch(a);
  else if (r < 72) op_unlink(a);
  else if (r < 75) op_rename(a);
  else if (r < 83) op_dontneed(a);
  else if (r < 87 && structural_due()) {
    // Snapshots and subvolumes commit a transaction each: one every two seconds at most.
    if (r < 84) op_snapshot(a, true);
    else if (r < 85) op_snapshot(a, false);
    else if (r < 86) op_subvolume(a, true);
    else op_subvolume(a, false);
  }
  else if (r < 88) op_sync(a);
  else op_read(a, chance(50));
}

void churn::op_read(const area& a, bool partial) {
  auto files = existing(a, false);
  if (files.empty()) return;
  const std::string& p = files[below(files.size())];
  unique_fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return fail("open " + p, errno);
  // With and without read-ahead: RANDOM turns it off, SEQUENTIAL doubles it.
  static const int advice[] = {POSIX_FADV_NORMAL, POSIX_FADV_RANDOM, POSIX_FADV_SEQUENTIAL};
  const int adv = advice[below(3)];
  (void)::posix_fadvise(fd.get(), 0, 0, adv);
  const std::uint64_t size = blocks_of(model_.at(p)) * block;
  std::uint64_t off = 0, len = size;
  if (partial && size > 0) {
    off = below(size);  // not block aligned on purpose: partial pages at both ends
    len = 1 + below(size - off);
  }
  const std::size_t chunk = adv == POSIX_FADV_RANDOM ? 4096 : 65536;
  std::vector<char> buf(chunk);
  for (std::uint64_t done = 0; done < len;) {
    const auto n = ::pread(fd.get(), buf.data(), std::min<std::uint64_t>(chunk, len - done), static_cast<off_t>(off + done));
    if (n < 0) return fail("read " + p, errno);
    if (n == 0) break;
    done += static_cast<std::uint64_t>(n);
  }
  ++counts_.done[partial ? "read_partial" : "read_whole"];
}

void churn::op_mmap(const area& a) {
  const bool writing = chance(30);
  auto files = existing(a, writing);
  if (files.empty()) return;
  const std::string p = files[below(files.size())];
  auto& t = model_.at(p);
  if (t.empty()) return;
  unique_fd fd(::open(p.c_str(), (writing ? O_RDWR : O_RDONLY) | O_CLOEXEC));
  if (fd.get() < 0) return fail("open " + p, errno);
  const std::size_t len = t.size() * block;
  void* m = ::mmap(nullptr, len, writing ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd.get(), 0);
  if (m == MAP_FAILED) return fail("mmap " + p, errno);
  auto* bytes = static_cast<unsigned char*>(m);
  if (chance(50)) (void)::madvise(m, len, chance(50) ? MADV_RANDOM : MADV_SEQUENTIAL);
  volatile unsigned sum = 0;
  const std::uint64_t faults = 1 + below(t.size());
  for (std::uint64_t i = 0; i < faults; ++i) sum = sum + bytes[below(t.size()) * block + below(block)];
  if (writing) {
    const std::uint64_t b = below(t.size());
    t[b] = new_tag();
    fill_block(t[b], bytes + b * block);
    if (chance(50) && ::msync(m, len, MS_SYNC) != 0) fail("msync " + p, errno);
  }
  ::munmap(m, len);
  ++counts_.done[writing ? "mmap_write" : "mmap_fault"];
}

void churn::op_write(const area& a) {
  // A pool file (created when missing) or, on btrfs, a file of an extra subvolume.
  std::string p = pool_name(a, static_cast<unsigned>(below(pool_size)));
  if (chance(20)) {
    auto w = existing(a, true);
    if (!w.empty()) p = w[below(w.size())];
  }
  auto& t = model_[p];
  const std::uint64_t first = below(std::min<std::uint64_t>(t.size() + 1, max_blocks - 1));
  const std::uint64_t n = std::min<std::uint64_t>(1 + below(64), max_blocks - first);
  tags w(n);
  for (auto& x : w) x = new_tag();
  unique_fd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0) {
    if (t.empty()) model_.erase(p);
    return fail("open " + p, errno);
  }
  if (!write_blocks(fd.get(), first, w)) return fail("write " + p, errno);
  if (t.size() < first + n) t.resize(first + n, 0);
  std::copy(w.begin(), w.end(), t.begin() + static_cast<std::ptrdiff_t>(first));
  // Half the writes stay dirty until writeback: the daemon must leave those pages alone.
  const unsigned r = static_cast<unsigned>(below(4));
  if (r == 0 && ::fsync(fd.get()) != 0) return fail("fsync " + p, errno);
  if (r == 1 && ::fdatasync(fd.get()) != 0) return fail("fdatasync " + p, errno);
  ++counts_.done["write"];
}

void churn::op_clone_file(const area& a) {
  auto src = existing(a, false);
  if (src.empty()) return;
  const std::string s = src[below(src.size())];
  const std::string d = pool_name(a, static_cast<unsigned>(below(pool_size)));
  if (s == d) return;
  unique_fd sf(::open(s.c_str(), O_RDONLY | O_CLOEXEC));
  unique_fd df(::open(d.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (sf.get() < 0 || df.get() < 0) return fail("open " + s + " / " + d, errno);
  model_[d].clear();  // truncated: whatever happens next, it is empty now
  if (::ioctl(df.get(), FICLONE, sf.get()) != 0) return fail("FICLONE " + s + " -> " + d, errno);
  model_[d] = model_.at(s);
  ++counts_.done["clone_file"];
}

void churn::op_clone_range(const area& a) {
  auto src = existing(a, false);
  auto dst = existing(a, true);
  if (src.empty() || dst.empty()) return;
  const std::string s = src[below(src.size())];
  const std::string d = dst[below(dst.size())];
  const tags& st = model_.at(s);
  tags& dt = model_.at(d);
  if (s == d || st.empty()) return;
  const std::uint64_t so = below(st.size());
  const std::uint64_t n = 1 + below(std::min<std::uint64_t>(st.size() - so, 64));
  // The destination range starts at most at its end of file (no gap), and fits the maximum.
  const std::uint64_t dmax = std::min<std::uint64_t>(dt.size(), max_blocks - n);
  const std::uint64_t doff = below(dmax + 1);
  unique_fd sf(::open(s.c_str(), O_RDONLY | O_CLOEXEC));
  unique_fd df(::open(d.c_str(), O_WRONLY | O_CLOEXEC));
  if (sf.get() < 0 || df.get() < 0) return fail("open " + s + " / " + d, errno);
  file_clone_range r{};
  r.src_fd = sf.get();
  r.src_offset = so * block;
  r.src_length = n * block;
  r.dest_offset = doff * block;
  if (::ioctl(df.get(), FICLONERANGE, &r) != 0) return fail("FICLONERANGE " + s + " -> " + d, errno);
  if (dt.size() < doff + n) dt.resize(doff + n, 0);
  std::copy(st.begin() + static_cast<std::ptrdiff_t>(so), st.begin() + static_cast<std::ptrdiff_t>(so + n),
            dt.begin() + static_cast<std::ptrdiff_t>(doff));
  ++counts_.done["clone_range"];
}

void churn::op_dedupe(const area& a) {
  auto src = existing(a, false);
  auto dst = existing(a, true);
  if (src.empty() || dst.empty()) return;
  const std::string s = src[below(src.size())];
  const std::string d = dst[below(dst.size())];
  const tags st = model_.at(s);
  tags& dt = model_.at(d);
  if (s == d || st.empty() || dt.empty()) return;
  const std::uint64_t so = below(st.size());
  const std::uint64_t doff = below(dt.size());
  const std::uint64_t n = 1 + below(std::min<std::uint64_t>({st.size() - so, dt.size() - doff, 64}));
  unique_fd sf(::open(s.c_str(), O_RDONLY | O_CLOEXEC));
  unique_fd df(::open(d.c_str(), O_RDWR | O_CLOEXEC));
  if (sf.get() < 0 || df.get() < 0) return fail("open " + s + " / " + d, errno);
  // Mostly: copy the bytes first (new extents), then dedupe them onto the source's. Else the
  // ranges as they are: the kernel must find them different unless the model says equal.
  const bool copy_first = chance(70);
  if (copy_first) {
    const tags w(st.begin() + static_cast<std::ptrdiff_t>(so), st.begin() + static_cast<std::ptrdiff_t>(so + n));
    if (!write_blocks(df.get(), doff, w)) return fail("write " + d, errno);
    std::copy(w.begin(), w.end(), dt.begin() + static_cast<std::ptrdiff_t>(doff));
    if (chance(50) && ::fsync(df.get()) != 0) return fail("fsync " + d, errno);
  }
  const bool equal = std::equal(st.begin() + static_cast<std::ptrdiff_t>(so),
                                st.begin() + static_cast<std::ptrdiff_t>(so + n),
                                dt.begin() + static_cast<std::ptrdiff_t>(doff));
  auto arg = std::unique_ptr<file_dedupe_range, void (*)(void*)>(
      static_cast<file_dedupe_range*>(std::calloc(1, sizeof(file_dedupe_range) + sizeof(file_dedupe_range_info))),
      std::free);
  arg->src_offset = so * block;
  arg->src_length = n * block;
  arg->dest_count = 1;
  arg->info[0].dest_fd = df.get();
  arg->info[0].dest_offset = doff * block;
  if (::ioctl(sf.get(), FIDEDUPERANGE, arg.get()) != 0) return fail("FIDEDUPERANGE " + s + " -> " + d, errno);
  const auto& info = arg->info[0];
  if (info.status < 0) return fail("FIDEDUPERANGE " + s + " -> " + d + " status", -info.status);
  const bool same = info.status == FILE_DEDUPE_RANGE_SAME;
  if (same != equal) {
    ++counts_.errors;
    if (counts_.first_errors.size() < 20)
      counts_.first_errors.push_back("FIDEDUPERANGE " + s + " -> " + d + ": the kernel found the ranges " +
                                     (same ? "equal" : "different") + ", the model " + (equal ? "equal" : "different"));
  }
  ++counts_.done[same ? "dedupe" : "dedupe_differs"];
}

void churn::op_truncate(const area& a) {
  auto files = existing(a, true);
  if (files.empty()) return;
  const std::string p = files[below(files.size())];
  tags& t = model_.at(p);
  const std::uint64_t n = below(std::min<std::uint64_t>(t.size() + 32, max_blocks) + 1);
  if (::truncate(p.c_str(), static_cast<off_t>(n * block)) != 0) return fail("truncate " + p, errno);
  t.resize(n, 0);
  ++counts_.done["truncate"];
}

void churn::op_punch(const area& a) {
  auto files = existing(a, true);
  if (files.empty()) return;
  const std::string p = files[below(files.size())];
  tags& t = model_.at(p);
  if (t.empty()) return;
  const std::uint64_t first = below(t.size());
  const std::uint64_t n = 1 + below(std::min<std::uint64_t>(t.size() - first, 32));
  unique_fd fd(::open(p.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) return fail("open " + p, errno);
  if (::fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(first * block),
                  static_cast<off_t>(n * block)) != 0)
    return fail("punch a hole in " + p, errno);
  std::fill(t.begin() + static_cast<std::ptrdiff_t>(first), t.begin() + static_cast<std::ptrdiff_t>(first + n), 0);
  ++counts_.done["punch_hole"];
}

void churn::op_unlink(const area& a) {
  auto files = existing(a, true);
  if (files.size() < pool_size / 3) return;  // keep something to work on
  const std::string p = files[below(files.size())];
  if (::unlink(p.c_str()) != 0) return fail("unlink " + p, errno);
  model_.erase(p);
  ++counts_.done["unlink"];
}

void churn::op_rename(const area& a) {
  // Within the pool (one directory tree, one subvolume): the target may exist and is replaced.
  const std::string s = pool_name(a, static_cast<unsigned>(below(pool_size)));
  const std::string d = pool_name(a, static_cast<unsigned>(below(pool_size)));
  if (s == d || !model_.count(s)) return;
  if (::rename(s.c_str(), d.c_str()) != 0) return fail("rename " + s + " -> " + d, errno);
  model_[d] = std::move(model_.at(s));
  model_.erase(s);
  ++counts_.done["rename"];
}

void churn::op_dontneed(const area& a) {
  auto files = existing(a, false);
  if (files.empty()) return;
  const std::string& p = files[below(files.size())];
  unique_fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return fail("open " + p, errno);
  const std::uint64_t size = blocks_of(model_.at(p)) * block;
  const std::uint64_t off = chance(50) ? 0 : below(size + 1);
  const std::uint64_t len = chance(50) ? 0 : below(size + 1);
  if (::posix_fadvise(fd.get(), static_cast<off_t>(off), static_cast<off_t>(len), POSIX_FADV_DONTNEED) != 0)
    return fail("fadvise DONTNEED " + p, errno);
  ++counts_.done["fadvise_dontneed"];
}

// Deletes the oldest of these subvolumes (snapshots are subvolumes too) of the directory dir.
void churn::destroy_oldest(int dir_fd, const std::string& dir, std::vector<std::string>& list, const char* op) {
  if (list.empty()) return;
  const std::string path = list.front();
  btrfs_ioctl_vol_args args{};
  std::strncpy(args.name, path.substr(dir.size() + 1).c_str(), sizeof args.name - 1);
  if (::ioctl(dir_fd, BTRFS_IOC_SNAP_DESTROY, &args) != 0) return fail("delete the subvolume " + path, errno);
  std::erase_if(model_, [&](const auto& e) { return starts_with(e.first, path + "/"); });
  list.erase(list.begin());
  ++counts_.done[op];
}

void churn::op_snapshot(const area& a, bool create) {
  if (!a.btrfs) return;
  const std::string dir = a.mount + "/snaps";
  unique_fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0) return fail("open " + dir, errno);
  if (create) {
    if (snapshots_.size() >= max_snapshots) return;
    const std::string name = "s" + std::to_string(next_snapshot_++);
    unique_fd src(::open((a.mount + "/sv").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    btrfs_ioctl_vol_args_v2 args{};
    args.fd = src.get();
    args.flags = BTRFS_SUBVOL_RDONLY;
    std::strncpy(args.name, name.c_str(), sizeof args.name - 1);
    if (src.get() < 0 || ::ioctl(dfd.get(), BTRFS_IOC_SNAP_CREATE_V2, &args) != 0)
      return fail("snapshot " + a.mount + "/sv to " + dir + "/" + name, errno);
    // The snapshot holds what the subvolume holds now (btrfs flushes dirty data first).
    const std::string from = a.mount + "/sv/", to = dir + "/" + name + "/";
    std::vector<std::pair<std::string, tags>> copies;
    for (const auto& [p, t] : model_)
      if (starts_with(p, from)) copies.emplace_back(to + p.substr(from.size()), t);
    for (auto& [p, t] : copies) model_[p] = std::move(t);
    snapshots_.push_back(dir + "/" + name);
    ++counts_.done["snapshot_create"];
  } else {
    destroy_oldest(dfd.get(), dir, snapshots_, "snapshot_delete");
  }
}

void churn::op_subvolume(const area& a, bool create) {
  if (!a.btrfs) return;
  const std::string dir = a.mount + "/vols";
  unique_fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0) return fail("open " + dir, errno);
  if (create) {
    if (subvolumes_.size() >= max_subvolumes) return;
    const std::string name = "v" + std::to_string(next_subvolume_++);
    btrfs_ioctl_vol_args args{};
    std::strncpy(args.name, name.c_str(), sizeof args.name - 1);
    if (::ioctl(dfd.get(), BTRFS_IOC_SUBVOL_CREATE, &args) != 0) return fail("create the subvolume " + dir + "/" + name, errno);
    const std::string path = dir + "/" + name;
    subvolumes_.push_back(path);
    // Reflinks across subvolumes, and one file of its own.
    auto src = existing(a, false);
    for (unsigned i = 0; i < 3 && !src.empty(); ++i) {
      const std::string s = src[below(src.size())];
      const std::string d = path + "/g" + std::to_string(i);
      unique_fd sf(::open(s.c_str(), O_RDONLY | O_CLOEXEC));
      unique_fd df(::open(d.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (sf.get() < 0 || df.get() < 0) return fail("open " + s + " / " + d, errno);
      model_[d].clear();
      if (::ioctl(df.get(), FICLONE, sf.get()) != 0) return fail("FICLONE " + s + " -> " + d, errno);
      model_[d] = model_.at(s);
    }
    tags t(1 + below(64));
    for (auto& x : t) x = new_tag();
    const std::string own = path + "/own";
    unique_fd fd(::open(own.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0 || !write_blocks(fd.get(), 0, t)) return fail("write " + own, errno);
    model_[own] = std::move(t);
    ++counts_.done["subvolume_create"];
  } else {
    destroy_oldest(dfd.get(), dir, subvolumes_, "subvolume_delete");
  }
}

void churn::op_sync(const area& a) {
  unique_fd fd(::open(a.mount.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::syncfs(fd.get()) != 0) return fail("syncfs " + a.mount, errno);
  ++counts_.done["syncfs"];
}

std::uint64_t churn::burst(int ms) {
  std::vector<int> fds;
  for (const auto& p : burst_files_) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);  // no read-ahead: one page per read
    fds.push_back(fd);
  }
  // Page p of every file, then page p + 1 of every file: consecutive insertions are never of
  // one file, so the kernel side cannot merge them into runs, and each is a record of its own.
  std::uint64_t reads = 0;
  char buf[block];
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    for (std::uint64_t p = 0; p < burst_blocks; ++p) {
      for (int fd : fds) reads += ::pread(fd, buf, sizeof buf, static_cast<off_t>(p * block)) > 0;
    }
    for (int fd : fds) (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  }
  for (int fd : fds) ::close(fd);
  counts_.done["burst_page_read"] += reads;
  return reads;
}

std::vector<std::string> churn::verify(std::uint64_t* files, std::uint64_t* bytes) const {
  std::vector<std::string> bad;
  std::vector<unsigned char> want(block), got(block);
  *files = 0;
  *bytes = 0;
  for (const auto& [p, t] : model_) {
    unique_fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) {
      bad.push_back(p + ": cannot open: " + std::strerror(errno));
      continue;
    }
    if (static_cast<std::uint64_t>(st.st_size) != t.size() * block) {
      bad.push_back(p + ": size " + std::to_string(st.st_size) + ", the model says " + std::to_string(t.size() * block));
      continue;
    }
    for (std::size_t b = 0; b < t.size(); ++b) {
      fill_block(t[b], want.data());
      if (::pread(fd.get(), got.data(), block, static_cast<off_t>(b * block)) != static_cast<ssize_t>(block) ||
          std::memcmp(want.data(), got.data(), block) != 0) {
        bad.push_back(p + ": block " + std::to_string(b) + " differs from what was written");
        break;
      }
    }
    ++*files;
    *bytes += t.size() * block;
  }
  return bad;
}

}  // namespace dupcache::soak
