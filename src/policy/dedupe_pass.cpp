// SPDX-License-Identifier: GPL-2.0-only
#include "policy/dedupe_pass.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <xxhash.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "policy/dedupe_plan.hpp"
#include "scan/fiemap.hpp"
#include "scan/fs_identity.hpp"
#include "scan/residency.hpp"
#include "util/fd.hpp"
#include "util/small_lru.hpp"

namespace dupcache::policy {
namespace {

constexpr std::uint64_t btrfs_magic = 0x9123683e, xfs_magic = 0x58465342, bcachefs_magic = 0xca451a4e;
// One FIDEDUPERANGE call at most: btrfs works in 16 MiB pieces anyway, and the rate limit and
// the kernel's lock on both ranges are then held for a bounded time.
constexpr std::uint64_t max_call_bytes = 16ull << 20;
constexpr std::uint64_t read_chunk = 1ull << 20;

struct found_file {
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
  std::uint64_t size = 0;
};

// The block size dedupe works in on the filesystem of fd, or why it cannot share extents.
result<std::uint64_t> sharing_block_size(const std::string& path, int fd) {
  struct statfs sf {};
  if (fstatfs(fd, &sf) != 0) return errno_error("deduplicate " + path + ": statfs");
  const auto magic = static_cast<std::uint64_t>(static_cast<std::uint32_t>(sf.f_type));
  if (magic == xfs_magic && !fs_can_share(fd, "xfs")) {
    return plain_error("deduplicate " + path,
                       "XFS without reflink cannot share extents (it needs mkfs.xfs -m reflink=1)");
  }
  if (magic != btrfs_magic && magic != xfs_magic && magic != bcachefs_magic) {
    return plain_error("deduplicate " + path, fs_type_name(magic) +
                                             " cannot share extents (dedupe works on btrfs, XFS with reflink "
                                             "and bcachefs)");
  }
  return static_cast<std::uint64_t>(sf.f_bsize);
}

// Regular files below dir (an open directory), staying on its device: another filesystem
// cannot share extents with this one. Symbolic links are not followed.
void walk(int dir, const std::string& path, dev_t dev, std::vector<found_file>& out, std::vector<std::string>& errors) {
  unique_fd own(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  DIR* d = own ? fdopendir(own.get()) : nullptr;
  if (!d) {
    errors.push_back(fmt::format("read directory {} failed: {}", path, std::strerror(errno)));
    return;
  }
  own.release();
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, closedir);
  while (const dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string child = path + "/" + name;
    struct stat st {};
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != dev) continue;
    if (S_ISREG(st.st_mode)) {
      out.push_back({child, st.st_dev, st.st_ino, static_cast<std::uint64_t>(st.st_size)});
    } else if (S_ISDIR(st.st_mode)) {
      unique_fd sub(::openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) {
        errors.push_back(fmt::format("open directory {} failed: {}", child, std::strerror(errno)));
        continue;
      }
      walk(sub.get(), child, dev, out, errors);
    }
  }
}

// Why the file must be left alone because someone may be writing it, or nullopt. A read lease
// is refused (EAGAIN) while the inode has any writer: an fd opened for writing in any process or
// pid namespace, or a shared writable mapping whose fd was since closed, which /proc/*/fdinfo
// cannot show. The lease is released at once: held, it would make a writer's open block for
// lease-break-time. Skipping is policy (a file being rewritten would unshare at its next write);
// FIDEDUPERANGE itself is safe against any writer, as it compares under the inodes' locks.
std::optional<std::string> writer_reason(int fd) {
  if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
    fcntl(fd, F_SETLEASE, F_UNLCK);
    return std::nullopt;
  }
  if (errno == EAGAIN || errno == EBUSY) return std::string("open for writing");
  return fmt::format("cannot tell whether it is open for writing (read lease: {})", std::strerror(errno));
}

// The pages of one file that were cached before the pass touched it; restore() drops the clean
// pages cached since (what hashing or the kernel's comparison read in), and only those.
class cache_guard {
 public:
  cache_guard(residency_reader& r, int fd, std::uint64_t size, std::uint64_t page)
      : reader_(r), fd_(fd), size_(size), page_(page) {
    auto before = r.cached_runs(fd, size);
    if (before) before_ = std::move(*before), ok_ = true;
  }
  bool ok() const { return ok_; }
  void restore() {
    auto after = reader_.clean_runs(fd_, 0, (size_ + page_ - 1) / page_);
    if (!after) return;
    for (const auto& run : subtract_runs(*after, before_)) {
      posix_fadvise(fd_, static_cast<off_t>(run.first * page_), static_cast<off_t>(run.pages * page_),
                    POSIX_FADV_DONTNEED);
    }
  }

 private:
  residency_reader& reader_;
  int fd_;
  std::uint64_t size_, page_;
  std::vector<page_run> before_;
  bool ok_ = false;
};

void pace(rate_limiter& limit, std::uint64_t bytes) {
  const auto wait = limit.take(bytes, rate_limiter::clock::now());
  if (wait.count() > 0) std::this_thread::sleep_for(wait);
}

// XXH3 of each block of the file, read with O_DIRECT where the filesystem takes it (nothing
// enters the page cache), else buffered (the caller's cache_guard drops what came in).
bool stop_asked(const std::atomic<bool>* stop) { return stop && stop->load(std::memory_order_relaxed); }

result<std::vector<std::uint64_t>> hash_blocks(const found_file& f, int fd, std::uint64_t bs, rate_limiter& limit,
                                               const std::atomic<bool>* stop) {
  const std::uint64_t align = std::max<std::uint64_t>(bs, 4096);
  std::unique_ptr<unsigned char, decltype(&std::free)> buf(
      static_cast<unsigned char*>(std::aligned_alloc(align, read_chunk)), &std::free);
  if (!buf) return errno_error("hash " + f.path + ": allocate", ENOMEM);
  unique_fd direct(::open(fmt::format("/proc/self/fd/{}", fd).c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
  std::vector<std::uint64_t> out;
  out.reserve((f.size + bs - 1) / bs);
  for (std::uint64_t off = 0; off < f.size;) {
    const std::uint64_t want = std::min(read_chunk, f.size - off);
    if (stop_asked(stop)) return plain_error("hash " + f.path, "stopped");
    pace(limit, want);
    ssize_t got = -1;
    if (direct) {
      got = ::pread(direct.get(), buf.get(), (want + align - 1) / align * align, static_cast<off_t>(off));
      if (got < 0 && errno == EINVAL) direct.reset();  // not for this file: read it buffered
    }
    if (!direct) got = ::pread(fd, buf.get(), want, static_cast<off_t>(off));
    if (got < 0) return errno_error("read " + f.path);
    if (static_cast<std::uint64_t>(got) < want) return plain_error("read " + f.path, "it shrank while read");
    for (std::uint64_t b = 0; b < want; b += bs) out.push_back(XXH3_64bits(buf.get() + b, std::min(bs, want - b)));
    off += want;
  }
  return out;
}

// FIDEDUPERANGE of [off, off + len) of src onto the same range of dst, in pieces; fills the
// action's shared bytes, differs and error.
void share_range(int src, int dst, dedupe_action& a, rate_limiter& limit, const std::atomic<bool>* stop) {
  alignas(file_dedupe_range) unsigned char raw[sizeof(file_dedupe_range) + sizeof(file_dedupe_range_info)]{};
  auto* arg = reinterpret_cast<file_dedupe_range*>(raw);
  auto* info = reinterpret_cast<file_dedupe_range_info*>(raw + sizeof(file_dedupe_range));
  for (std::uint64_t off = a.offset, end = a.offset + a.length; off < end;) {
    const std::uint64_t n = std::min(max_call_bytes, end - off);
    if (stop_asked(stop)) return;
    pace(limit, 2 * n);  // the kernel reads both ranges to compare them
    *arg = {};
    *info = {};
    arg->src_offset = off;
    arg->src_length = n;
    arg->dest_count = 1;
    info->dest_fd = dst;
    info->dest_offset = off;
    if (ioctl(src, FIDEDUPERANGE, arg) != 0) {
      a.error = fmt::format("FIDEDUPERANGE at {} failed: {}", off, std::strerror(errno));
      return;
    }
    if (info->status == FILE_DEDUPE_RANGE_DIFFERS) {
      a.differs = true;
      return;
    }
    if (info->status < 0) {
      a.error = fmt::format("FIDEDUPERANGE at {} failed: {}", off, std::strerror(-info->status));
      return;
    }
    if (info->bytes_deduped == 0) {
      a.error = fmt::format("FIDEDUPERANGE at {} failed: the kernel shared nothing", off);
      return;
    }
    a.shared_bytes += info->bytes_deduped;
    off += info->bytes_deduped;
  }
}

struct open_member {
  const found_file* file = nullptr;
  unique_fd fd;
  std::unique_ptr<cache_guard> guard;
};

// Opens and checks one member of a size group; nullopt (with the reason recorded) to skip it.
std::optional<open_member> open_checked(const found_file& f, residency_reader& reader, std::uint64_t page,
                                        dedupe_report& rep) {
  // O_NOATIME: hashing is not a use of the file (refused unless we own it or are root).
  unique_fd fd(::open(f.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME));
  if (!fd && errno == EPERM) fd.reset(::open(f.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (!fd || fstat(fd.get(), &st) != 0) {
    rep.errors.push_back(fmt::format("open {} failed: {}", f.path, std::strerror(errno)));
    rep.failed = true;
    return std::nullopt;
  }
  if (st.st_dev != f.dev || st.st_ino != f.ino || static_cast<std::uint64_t>(st.st_size) != f.size) {
    rep.skipped.push_back({f.path, "changed while dedupe ran"});
    return std::nullopt;
  }
  if (auto why = writer_reason(fd.get())) {
    rep.skipped.push_back({f.path, *why});
    return std::nullopt;
  }
  open_member m{&f, std::move(fd), nullptr};
  m.guard = std::make_unique<cache_guard>(reader, m.fd.get(), f.size, page);
  if (!m.guard->ok()) {
    rep.skipped.push_back({f.path, "its residency cannot be read, so what hashing caches could not be dropped"});
    return std::nullopt;
  }
  return m;
}

struct pass_context {
  const dedupe_request& req;
  residency_reader& reader;
  std::uint64_t page;
  rate_limiter& limit;
  dedupe_report& rep;
  std::set<std::string>& dst_files;
};

// The members of a size group reopened for sharing, a few at a time: a size group can hold
// thousands of files, and holding them all open failed every file past the open-file limit.
// Each member is checked again as it is reopened (the same inode, size, no writer); one that
// fails is left out of every range after it. Pages the sharing brought into the cache are
// dropped when a member is closed, as after hashing.
class reopened_members {
 public:
  reopened_members(const std::vector<const found_file*>& files, pass_context& ctx)
      : files_(files), ctx_(ctx), failed_(files.size(), false) {}
  reopened_members(const reopened_members&) = delete;
  reopened_members& operator=(const reopened_members&) = delete;
  ~reopened_members() {
    open_.for_each([](open_member& m) { m.guard->restore(); });
  }

  // The member's open file, or nullptr when it could not be reopened (the report says why).
  // The member returned by the call before this one stays valid (small_lru's slots never move).
  open_member* get(std::size_t i) {
    if (open_member* kept = open_.find(i)) return kept;
    if (failed_[i]) return nullptr;
    auto m = open_checked(*files_[i], ctx_.reader, ctx_.page, ctx_.rep);
    if (!m) {
      failed_[i] = true;
      return nullptr;
    }
    return &open_.put(i, std::move(*m), [](open_member& old) { old.guard->restore(); });
  }

 private:
  const std::vector<const found_file*>& files_;
  pass_context& ctx_;
  std::vector<bool> failed_;
  small_lru<std::size_t, open_member> open_{16};
};

void dedupe_group(const std::vector<const found_file*>& group, std::uint64_t bs, pass_context& ctx) {
  auto& rep = ctx.rep;
  const bool dry_run = ctx.req.dry_run;
  // Hashed one at a time, each closed (its cache as it was) before the next is opened.
  std::vector<const found_file*> hashed;
  std::vector<dedupe_member> members;
  for (const auto* f : group) {
    if (stop_asked(ctx.req.stop)) break;
    auto m = open_checked(*f, ctx.reader, ctx.page, rep);
    if (!m) continue;
    auto hashes = hash_blocks(*f, m->fd.get(), bs, ctx.limit, ctx.req.stop);
    auto extents = read_extent_map(m->fd.get());
    m->guard->restore();
    if (stop_asked(ctx.req.stop)) break;
    if (!hashes || !extents) {
      rep.errors.push_back(hashes ? extents.err().message() : hashes.err().message());
      rep.failed = true;
      continue;
    }
    rep.hashed_bytes += f->size;
    ++rep.candidate_files;
    std::vector<placed_block_run> runs;
    for (const auto& r : placed_runs(*extents, bs)) runs.push_back({r.first_page, r.pages, r.physical});
    members.push_back({f->size, std::move(*hashes), block_addresses(runs, f->size, bs)});
    hashed.push_back(f);
  }
  const dedupe_plan plan = plan_dedupe(members, bs);
  rep.already_shared_bytes += plan.already_shared_bytes;
  reopened_members open(hashed, ctx);
  for (const auto& r : plan.ranges) {
    if (stop_asked(ctx.req.stop)) break;
    dedupe_action a{hashed[r.src]->path, hashed[r.dst]->path, r.offset, r.length, 0, false, {}};
    rep.planned_bytes += r.length;
    if (!dry_run) {
      open_member* dst = open.get(r.dst);
      open_member* src = dst ? open.get(r.src) : nullptr;
      if (!dst || !src) continue;  // could not be reopened: in the report's skipped or errors
      // A writer may have come since the hashing: check again just before sharing.
      auto why = writer_reason(dst->fd.get());
      if (!why) why = writer_reason(src->fd.get());
      if (why) {
        rep.skipped.push_back({dst->file->path, fmt::format("range {}+{}: {}", r.offset, r.length, *why)});
        continue;
      }
      share_range(src->fd.get(), dst->fd.get(), a, ctx.limit, ctx.req.stop);
      rep.shared_bytes += a.shared_bytes;
      if (!a.error.empty()) rep.failed = true;
    }
    if (dry_run || a.shared_bytes > 0) ctx.dst_files.insert(a.dst);
    rep.actions.push_back(std::move(a));
  }
}

}  // namespace

result<dedupe_report> run_dedupe_pass(const dedupe_request& req) {
  if (req.paths.empty()) return plain_error("dedupe", "no PATH given");
  struct root {
    std::string path;
    unique_fd fd;
    struct stat st {};
    std::uint64_t block_size = 0;
  };
  std::vector<root> roots;
  for (const auto& p : req.paths) {
    root r{p, unique_fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)), {}, 0};
    if (!r.fd || fstat(r.fd.get(), &r.st) != 0) return errno_error("deduplicate " + p + ": open");
    if (!S_ISDIR(r.st.st_mode) && !S_ISREG(r.st.st_mode)) {
      return plain_error("deduplicate " + p, "not a regular file or a directory");
    }
    auto bs = sharing_block_size(p, r.fd.get());
    if (!bs) return bs.err();
    r.block_size = *bs;
    roots.push_back(std::move(r));
  }
  const auto page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  auto reader = make_residency_reader(residency_mode::automatic, page);
  if (!reader) return reader.err();

  dedupe_report rep;
  rep.dry_run = req.dry_run;
  std::vector<found_file> files;
  std::map<dev_t, std::uint64_t> block_size;
  for (const auto& r : roots) {
    block_size[r.st.st_dev] = r.block_size;
    if (S_ISREG(r.st.st_mode)) {
      files.push_back({r.path, r.st.st_dev, r.st.st_ino, static_cast<std::uint64_t>(r.st.st_size)});
    } else {
      std::string base = r.path;  // "dir/" and "dir" name their files alike; "/" walks as ""
      while (!base.empty() && base.back() == '/') base.pop_back();
      walk(r.fd.get(), base, r.st.st_dev, files, rep.errors);
    }
  }
  if (!rep.errors.empty()) rep.failed = true;
  // Hard links and PATHs that overlap reach one inode: it is one file.
  std::set<std::pair<dev_t, ino_t>> seen;
  std::map<dev_t, std::vector<const found_file*>> by_fs;
  for (const auto& f : files) {
    if (seen.insert({f.dev, f.ino}).second) by_fs[f.dev].push_back(&f);
  }
  rep.files_examined = seen.size();

  rate_limiter limit(req.rate_bytes_per_s);
  std::set<std::string> dst_files;
  pass_context ctx{req, **reader, page, limit, rep, dst_files};
  for (const auto& [dev, fs_files] : by_fs) {
    const std::uint64_t bs = block_size[dev];
    std::vector<std::uint64_t> sizes;
    for (const auto* f : fs_files) sizes.push_back(f->size);
    // Files below one block are left out: btrfs keeps them inline in metadata, with no extent.
    for (const auto& g : size_groups(sizes, bs)) {
      std::vector<const found_file*> group;
      for (std::size_t i : g) group.push_back(fs_files[i]);
      if (stop_asked(req.stop)) break;
      dedupe_group(group, bs, ctx);
    }
  }
  rep.files_shared = dst_files.size();
  rep.stopped = stop_asked(req.stop);
  return rep;
}

}  // namespace dupcache::policy
