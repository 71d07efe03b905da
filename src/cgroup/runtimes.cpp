// SPDX-License-Identifier: GPL-2.0-only
#include "cgroup/runtimes.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <toml++/toml.h>
#include <tuple>
#include <utility>

#include "util/fd.hpp"
#include "util/path.hpp"

namespace dupcache::cgroup {

std::string clean_name(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return s;
}

namespace {

// Caps, sized well above what a runtime writes, so that a hostile file costs little.
constexpr std::size_t max_metadata_bytes = 64 << 20;  // containers.json: ~600 bytes a container
constexpr std::size_t max_config_bytes = 4 << 20;     // config.v2.json, daemon.json (a few KiB)
constexpr std::size_t max_conf_bytes = 1 << 20;       // storage.conf, lxc.conf, an LXC config
constexpr std::size_t max_passwd_bytes = 16 << 20;
constexpr std::size_t max_id_file_bytes = 4096;       // mount-id, init-id: 64 hex digits
constexpr std::size_t max_dir_entries = max_known_containers;
constexpr std::size_t max_users = 65536;
constexpr std::size_t max_name_bytes = 255;
constexpr std::size_t max_json_depth = 64;
constexpr unsigned first_user_uid = 1000;  // login.defs UID_MIN on every major distribution
constexpr unsigned nobody_uid = 65534;

bool hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// One path component we may put into a path: printable ASCII, no '/', not "." or "..".
bool plain_component(std::string_view s) {
  if (s.empty() || s.size() > 255 || s == "." || s == "..") return false;
  for (unsigned char c : s)
    if (c < 0x21 || c > 0x7e || c == '/') return false;
  return true;
}

std::string bounded_name(std::string_view s) { return clean_name(std::string(s.substr(0, max_name_bytes))); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  for (;;) {
    const std::size_t j = s.find(sep, i);
    out.push_back(s.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
    if (j == std::string_view::npos) return out;
    i = j + 1;
  }
}

// Lexically clean an absolute path ("//a/./b/../c/" -> "/a/c"), as Go's filepath.Clean does for
// the paths containers/storage reads. nullopt for a relative path.
std::optional<std::string> clean_path(std::string_view p) {
  p = trim(p);
  if (p.empty() || p.front() != '/') return std::nullopt;
  std::vector<std::string_view> parts;
  for (std::string_view c : split(p, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(c);
  }
  std::string out;
  for (std::string_view c : parts) {
    out += '/';
    out += c;
  }
  return out.empty() ? std::string("/") : out;
}

std::string join_root(const std::string& root, std::string_view path) {
  if (root.empty() || root == "/") return std::string(path);
  return (root.back() == '/' ? root.substr(0, root.size() - 1) : root) + std::string(path);
}

// ---- opening files below a directory -------------------------------------------------------

// Kernels before 5.6 (and seccomp profiles that predate it) answer ENOSYS; then we fall back.
std::atomic<bool> openat2_missing{false};

int call_openat2(int dirfd, const std::string& rel, int flags, std::uint64_t resolve) {
  open_how how{};
  // openat2 refuses flags that do not apply (EINVAL): O_PATH takes no O_NOCTTY.
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY));
  how.resolve = resolve;
  for (int attempt = 0;; ++attempt) {
    const long fd = syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how);
    // EAGAIN: a rename or mount raced the resolution; the kernel asks us to retry.
    if (fd < 0 && errno == EAGAIN && attempt < 3) continue;
    return static_cast<int>(fd);
  }
}

std::string relative(std::string_view p) {
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  return p.empty() ? std::string(".") : std::string(p);
}

// Without openat2: one component at a time, no symbolic link anywhere, no "..".
unique_fd walk_beneath(int dirfd, const std::string& rel, int flags) {
  std::vector<std::string_view> parts;
  for (std::string_view c : split(rel, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") return {};
    parts.push_back(c);
  }
  if (parts.empty()) return unique_fd(::openat(dirfd, ".", flags | O_CLOEXEC | O_NOCTTY));
  unique_fd cur;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    const int f = last ? flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    unique_fd next(::openat(cur ? cur.get() : dirfd, std::string(parts[i]).c_str(), f));
    if (!next) return {};
    cur = std::move(next);
  }
  return cur;
}

// rel below dirfd, never leaving it, never through a link as the last component.
unique_fd open_beneath(int dirfd, std::string_view rel, int flags) {
  const std::string r = relative(rel);
  if (!openat2_missing.load(std::memory_order_relaxed)) {
    const int fd = call_openat2(dirfd, r, flags | O_NOFOLLOW, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
    if (fd >= 0 || errno != ENOSYS) return unique_fd(fd);
    openat2_missing.store(true, std::memory_order_relaxed);
  }
  return walk_beneath(dirfd, r, flags);
}

// path resolved as if rootfd were "/".
unique_fd open_in_root(int rootfd, std::string_view path, int flags) {
  const std::string r = relative(path);
  if (!openat2_missing.load(std::memory_order_relaxed)) {
    const int fd = call_openat2(rootfd, r, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    if (fd >= 0 || errno != ENOSYS) return unique_fd(fd);
    openat2_missing.store(true, std::memory_order_relaxed);
  }
  // Old kernels: plain resolution. Identical on a host; below another root an absolute link
  // resolves against our own "/".
  return unique_fd(::openat(rootfd, r.c_str(), flags | O_CLOEXEC | O_NOCTTY));
}

// A regular file's content, at most cap bytes (a bigger file is refused whole, not truncated).
std::optional<std::string> read_fd(const unique_fd& fd, std::size_t cap) {
  if (!fd) return std::nullopt;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  if (st.st_size < 0 || static_cast<std::uint64_t>(st.st_size) > cap) return std::nullopt;
  std::string out;
  out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (n == 0) return out;
    if (out.size() + static_cast<std::size_t>(n) > cap) return std::nullopt;  // grew while read
    out.append(buf, static_cast<std::size_t>(n));
  }
}

struct dir_closer {
  void operator()(DIR* d) const { ::closedir(d); }
};

std::vector<std::string> list_fd(unique_fd fd, std::size_t max) {
  std::vector<std::string> out;
  if (!fd) return out;
  std::unique_ptr<DIR, dir_closer> d(::fdopendir(fd.get()));
  if (!d) return out;
  fd.release();  // the DIR owns it now
  while (struct dirent* de = ::readdir(d.get())) {
    std::string_view n = de->d_name;
    if (n == "." || n == "..") continue;
    if (out.size() >= max) break;
    out.emplace_back(n);
  }
  std::sort(out.begin(), out.end());  // readdir order is the filesystem's: make results stable
  return out;
}

// The path of an open file as this process sees it: symbolic links resolved, below any root.
std::string seen_path(int fd, std::string fallback) {
  char buf[4096];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf || buf[0] != '/') return fallback;
  std::string p(buf, static_cast<std::size_t>(n));
  if (p.size() > 10 && p.compare(p.size() - 10, 10, " (deleted)") == 0) return fallback;
  return p;
}

uid_t owner_of(const unique_fd& fd) {
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) return static_cast<uid_t>(-1);
  return st.st_uid;
}

// The metadata root: "/" on a host.
class tree {
 public:
  explicit tree(std::string root) : root_(root.empty() ? "/" : std::move(root)) {
    fd_.reset(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (fd_) top_ = seen_path(fd_.get(), root_);
  }
  bool host() const { return root_ == "/"; }
  unique_fd open(std::string_view path, int flags) const {
    if (!fd_) return {};
    return open_in_root(fd_.get(), path, flags);
  }
  std::optional<std::string> read(std::string_view path, std::size_t cap) const {
    return read_fd(open(path, O_RDONLY | O_NONBLOCK), cap);
  }
  std::string seen(int fd, std::string_view path) const { return seen_path(fd, join_root(root_, path)); }
  // The root itself as seen: never a container's root.
  const std::string& top() const { return top_; }

 private:
  std::string root_;
  std::string top_;
  unique_fd fd_;
};

// Where one runtime's files live. A confined place is a user's: everything is opened beneath its
// directory; otherwise paths resolve within the tree (a system store may be reached through
// absolute links).
class place {
 public:
  place(const tree& t, std::string path) : t_(&t), path_(std::move(path)) {}
  place(const tree& t, std::string path, unique_fd dir) : t_(&t), path_(std::move(path)), fd_(std::move(dir)), confined_(true) {}

  const std::string& path() const { return path_; }
  unique_fd open(std::string_view rel, int flags) const {
    if (confined_) return open_beneath(fd_.get(), rel, flags);
    return t_->open(sub(rel), flags);
  }
  std::optional<std::string> read(std::string_view rel, std::size_t cap) const {
    return read_fd(open(rel, O_RDONLY | O_NONBLOCK), cap);
  }
  bool has_dir(std::string_view rel) const { return static_cast<bool>(open(rel, O_PATH | O_DIRECTORY)); }
  std::vector<std::string> list(std::string_view rel, std::size_t max) const {
    return list_fd(open(rel, O_RDONLY | O_DIRECTORY), max);
  }
  // The directory rel as dupcache sees it, if it exists and is not the whole tree.
  std::optional<std::string> seen_dir(std::string_view rel) const {
    unique_fd d = open(rel, O_PATH | O_DIRECTORY);
    if (!d) return std::nullopt;
    std::string s = t_->seen(d.get(), sub(rel));
    if (s == "/" || s == t_->top()) return std::nullopt;
    return s;
  }

 private:
  std::string sub(std::string_view rel) const {
    std::string r = relative(rel);
    return r == "." ? path_ : path_ + "/" + r;
  }
  const tree* t_;
  std::string path_;
  unique_fd fd_;
  bool confined_ = false;
};

// ---- JSON without a document ---------------------------------------------------------------

// Runtime metadata can be large (containers.json) and, in homes, hostile: it is read with the SAX
// interface, keeping only the values asked for, so memory stays bounded by the biggest string
// and nesting by max_json_depth.
struct json_leaf {
  bool is_string = false;
  bool is_bool = false;
  std::string_view text;
  bool flag = false;
};

class json_picker final : public nlohmann::json_sax<nlohmann::json> {
 public:
  using path = std::vector<std::string>;
  std::function<void(const path&, const json_leaf&)> on_value;
  std::function<bool(std::size_t depth)> on_end;  // a container closed; depth is what remains

  bool null() override { return leaf({}); }
  bool boolean(bool b) override {
    json_leaf l;
    l.is_bool = true;
    l.flag = b;
    return leaf(l);
  }
  bool number_integer(number_integer_t) override { return leaf({}); }
  bool number_unsigned(number_unsigned_t) override { return leaf({}); }
  bool number_float(number_float_t, const string_t&) override { return leaf({}); }
  bool string(string_t& s) override {
    json_leaf l;
    l.is_string = true;
    l.text = s;
    return leaf(l);
  }
  bool binary(binary_t&) override { return leaf({}); }
  bool start_object(std::size_t) override { return open(false); }
  bool key(string_t& k) override {
    if (!path_.empty()) path_.back() = k;
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(true); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    failed_ = true;
    return false;
  }

  bool failed() const { return failed_; }
  bool top_is_array() const { return !frames_.empty() && frames_.front().array; }

 private:
  struct frame {
    bool array;
    std::size_t next;
  };
  void position() {
    if (!frames_.empty() && frames_.back().array) path_.back() = std::to_string(frames_.back().next++);
  }
  bool leaf(const json_leaf& l) {
    position();
    if (on_value) on_value(path_, l);
    return true;
  }
  bool open(bool array) {
    position();
    if (frames_.size() >= max_json_depth) {
      failed_ = true;
      return false;
    }
    frames_.push_back({array, 0});
    path_.emplace_back();
    return true;
  }
  bool close() {
    frames_.pop_back();
    path_.pop_back();
    return on_end ? on_end(frames_.size()) : true;
  }

  std::vector<frame> frames_;
  path path_;
  bool failed_ = false;
};

// False when the text is not JSON; a picker that stopped early on purpose is not a failure.
bool parse_json(std::string_view text, json_picker& p) {
  try {
    nlohmann::json::sax_parse(text.begin(), text.end(), &p, nlohmann::json::input_format_t::json, true);
    return !p.failed();
  } catch (...) {
    return false;
  }
}

// Top-level string values of a JSON object.
std::optional<std::vector<std::string>> json_top_strings(std::string_view text, std::initializer_list<std::string_view> keys) {
  std::vector<std::string_view> want(keys);
  std::vector<std::string> out(want.size());
  json_picker p;
  p.on_value = [&](const json_picker::path& at, const json_leaf& v) {
    if (at.size() != 1 || !v.is_string || p.top_is_array()) return;
    for (std::size_t i = 0; i < want.size(); ++i)
      if (at[0] == want[i]) out[i] = std::string(v.text);
  };
  if (!parse_json(text, p)) return std::nullopt;
  return out;
}

// ---- configuration files -------------------------------------------------------------------

struct storage_conf {
  std::string driver, graphroot, runroot, rootless_storage_path;
  std::vector<std::string> driver_priority;
  bool transient_store = false;
};

// containers-storage.conf(5). A file that does not parse counts as absent (defaults apply); a key
// of the wrong type is ignored.
std::optional<storage_conf> parse_storage_conf(std::string_view text) {
  try {
    toml::table doc = toml::parse(text);
    storage_conf c;
    const toml::table* s = doc["storage"].as_table();
    if (!s) return c;
    auto str = [&](const char* key, std::string& out) {
      if (auto v = (*s)[key].value_exact<std::string>()) out = *v;
    };
    str("driver", c.driver);
    str("graphroot", c.graphroot);
    str("runroot", c.runroot);
    str("rootless_storage_path", c.rootless_storage_path);
    if (const toml::array* a = (*s)["driver_priority"].as_array()) {
      for (const auto& e : *a) {
        if (c.driver_priority.size() >= 16) break;
        if (auto v = e.value_exact<std::string>()) c.driver_priority.push_back(*v);
      }
    }
    if (auto v = (*s)["transient_store"].value_exact<bool>()) c.transient_store = *v;
    return c;
  } catch (...) {
    return std::nullopt;
  }
}

// "key = value" lines as LXC writes them; the last occurrence wins, as in LXC.
std::optional<std::string> lxc_value(std::string_view text, std::string_view key) {
  std::optional<std::string> out;
  for (std::string_view line : split(text, '\n')) {
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos || trim(line.substr(0, eq)) != key) continue;
    std::string_view v = trim(line.substr(eq + 1));
    // LXC's own templates quote some values (lxc.uts.name = "web"); LXC drops the quotes.
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) v = v.substr(1, v.size() - 2);
    out = std::string(v);
  }
  return out;
}

// lxc.rootfs.path -> the directory holding the container's own files, inside the tree.
std::optional<std::string> lxc_rootfs(std::string_view v, const std::string& fallback) {
  if (v.empty()) return fallback;
  if (v.front() == '/') return clean_path(v);
  const std::size_t colon = v.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view kind = v.substr(0, colon);
  const std::string_view rest = v.substr(colon + 1);
  if (kind == "dir" || kind == "btrfs") return clean_path(rest);
  if (kind == "overlay" || kind == "overlayfs") {
    // overlay:<lower>[:<lower>...]:<upper>, each absolute: the upper follows the last ":/".
    const std::size_t at = rest.rfind(":/");
    if (at == std::string_view::npos) return std::nullopt;
    return clean_path(rest.substr(at + 1));
  }
  return std::nullopt;  // zfs:, lvm:, loop:, rbd:, nbd: name a device or dataset, not a directory
}

struct user_info {
  std::string name;
  unsigned uid = 0;
  std::string home;
};

// Login users from passwd(5): the owners of rootless stores.
std::vector<user_info> read_users(const tree& t) {
  std::vector<user_info> out;
  auto text = t.read("/etc/passwd", max_passwd_bytes);
  if (!text) return out;
  for (std::string_view line : split(*text, '\n')) {
    if (out.size() >= max_users) break;
    const auto f = split(line, ':');
    if (f.size() != 7) continue;
    unsigned uid = 0;
    const auto [end, ec] = std::from_chars(f[2].data(), f[2].data() + f[2].size(), uid);
    if (ec != std::errc() || end != f[2].data() + f[2].size()) continue;
    if (uid < first_user_uid || uid == nobody_uid || uid == static_cast<unsigned>(-1)) continue;
    auto home = clean_path(f[5]);
    if (!home || *home == "/") continue;
    if (!plain_component(f[0])) continue;
    out.push_back({std::string(f[0]), uid, std::move(*home)});
  }
  return out;
}

// containers/storage expands $UID and the environment in its paths. Of another user's
// environment we know $HOME, $USER and $UID; a path naming any other variable is not used.
std::optional<std::string> expand(std::string_view p, const user_info& u) {
  std::string out;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '$') {
      out += p[i];
      continue;
    }
    std::string_view rest = p.substr(i + 1);
    std::string_view var;
    std::size_t used = 0;
    if (!rest.empty() && rest.front() == '{') {
      const std::size_t close = rest.find('}');
      if (close == std::string_view::npos) return std::nullopt;
      var = rest.substr(1, close - 1);
      used = close + 1;
    } else {
      while (used < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[used])) || rest[used] == '_')) ++used;
      var = rest.substr(0, used);
    }
    if (var == "HOME") out += u.home;
    else if (var == "USER") out += u.name;
    else if (var == "UID") out += std::to_string(u.uid);
    else return std::nullopt;
    i += used;
  }
  return clean_path(out);
}

// ---- the collector -------------------------------------------------------------------------

// A directory of a user's, as a confined place: reached beneath the home when inside it, and in
// any case owned by the user (so nobody can claim root's or another user's files as theirs).
std::optional<place> user_place(const tree& t, const user_info& u, const place& home, const std::string& path) {
  unique_fd fd = path == u.home   ? home.open("", O_PATH | O_DIRECTORY)
                 : path_below(path, u.home) ? home.open(path.substr(u.home.size()), O_PATH | O_DIRECTORY)
                                       : t.open(path, O_PATH | O_DIRECTORY);
  if (!fd || owner_of(fd) != u.uid) return std::nullopt;
  return place(t, path, std::move(fd));
}

struct podman_store {
  place graph;
  std::string driver;
  std::optional<place> run;  // transient_store: volatile containers live in the runroot
};

struct docker_store {
  place root;
  std::string driver;  // daemon.json "storage-driver", if set
};

// Where a layer's directories are, below the graphroot (containers/storage) or data-root (Docker).
std::vector<std::string> storage_layer_dirs(const std::string& driver, const std::string& l) {
  if (driver == "overlay") return {"overlay/" + l + "/diff", "overlay/" + l + "/merged"};
  if (driver == "btrfs") return {"btrfs/subvolumes/" + l};
  if (driver == "vfs") return {"vfs/dir/" + l};
  if (driver == "zfs") return {"zfs/graph/" + l};
  if (driver == "aufs") return {"aufs/diff/" + l, "aufs/mnt/" + l};
  return {};
}

std::vector<std::string> docker_layer_dirs(const std::string& driver, const std::string& m) {
  if (driver == "overlay2") return {"overlay2/" + m + "/diff", "overlay2/" + m + "/merged"};
  if (driver == "fuse-overlayfs") return {"fuse-overlayfs/" + m + "/diff", "fuse-overlayfs/" + m + "/merged"};
  if (driver == "btrfs") return {"btrfs/subvolumes/" + m};
  if (driver == "vfs") return {"vfs/dir/" + m};
  if (driver == "zfs") return {"zfs/graph/" + m};
  if (driver == "aufs") return {"aufs/diff/" + m, "aufs/mnt/" + m};
  if (driver == "overlay") return {"overlay/" + m + "/upper", "overlay/" + m + "/merged"};
  if (driver == "devicemapper") return {"devicemapper/mnt/" + m};
  return {};
}

// k8s_<container>_<pod>_<namespace>_<pod uid>_<attempt> (k8s_POD_... for the sandbox), the
// kubelet's naming that CRI-O keeps; Kubernetes names hold no '_'.
std::string kube_name(std::string_view n) {
  if (n.substr(0, 4) != "k8s_") return {};
  const auto f = split(n, '_');
  if (f.size() != 6) return {};
  const std::string pod = std::string(f[3]) + "/" + std::string(f[2]);
  return f[1] == "POD" ? pod : pod + "/" + std::string(f[1]);
}

class collector {
 public:
  explicit collector(const tree& t, bool want_containers) : t_(t), want_(want_containers) {}

  void run() {
    podman();
    docker();
    lxc();
    incus();
    nspawn();
  }

  std::vector<known_container> containers;
  std::vector<storage_location> storage;

  std::vector<docker_store> system_docker_stores() {
    std::vector<docker_store> out;
    add_docker_store(out, "/etc/docker/daemon.json", "/var/lib/docker");
    // The snap keeps its configuration and data under /var/snap (canonical/docker-snap README).
    if (t_.open("/var/snap/docker", O_PATH | O_DIRECTORY))
      add_docker_store(out, "/var/snap/docker/current/config/daemon.json", "/var/snap/docker/common/var-lib-docker");
    return out;
  }

  std::optional<known_container> docker_one(const docker_store& s, const std::string& id) {
    if (!hex64(id)) return std::nullopt;
    const std::string dir = "containers/" + id;
    if (!s.root.has_dir(dir)) return std::nullopt;
    known_container k{"docker", id, {}, {}, std::nullopt};
    std::string driver;
    if (auto text = s.root.read(dir + "/config.v2.json", max_config_bytes)) {
      std::string name;
      json_picker p;
      p.on_value = [&](const json_picker::path& at, const json_leaf& v) {
        if (p.top_is_array()) return;
        if (at.size() == 1 && at[0] == "Name" && v.is_string) name = std::string(v.text);
        else if (at.size() == 1 && at[0] == "Driver" && v.is_string) driver = std::string(v.text);
        else if (at.size() == 2 && at[0] == "State" && at[1] == "Running" && v.is_bool) k.running = v.flag;
      };
      if (parse_json(*text, p)) {
        if (!name.empty() && name.front() == '/') name.erase(0, 1);
        k.name = bounded_name(name);
      } else {
        driver.clear();
        k.running.reset();
      }
    }
    if (driver.empty()) driver = s.driver;
    if (driver.empty()) {
      // No config: the layer store that knows this container says which driver it was.
      for (const auto& d : s.root.list("image", 64))
        if (plain_component(d) && s.root.has_dir("image/" + d + "/layerdb/mounts/" + id)) driver = d;
    }
    if (plain_component(driver)) {
      const std::string mounts = "image/" + driver + "/layerdb/mounts/" + id + "/";
      for (const char* file : {"mount-id", "init-id"}) {
        auto text = s.root.read(mounts + file, max_id_file_bytes);
        if (!text) continue;
        const std::string m(trim(*text));
        if (!plain_component(m)) continue;
        for (const auto& d : docker_layer_dirs(driver, m)) add_root(k, s.root, d);
      }
    }
    return k;
  }

 private:
  void add(known_container k) {
    if (containers.size() >= max_known_containers) return;
    containers.push_back(std::move(k));
  }
  void add_storage(std::string runtime, const std::optional<std::string>& path, std::string driver) {
    if (path) storage.push_back({std::move(runtime), *path, std::move(driver)});
  }
  static void add_root(known_container& k, const place& p, const std::string& rel) {
    if (auto s = p.seen_dir(rel)) {
      if (std::find(k.roots.begin(), k.roots.end(), *s) == k.roots.end()) k.roots.push_back(std::move(*s));
    }
  }
  bool full() const { return containers.size() >= max_known_containers; }

  // -- Podman and CRI-O (containers/storage)

  std::string pick_driver(const place& graph, std::string configured, const std::vector<std::string>& priority) {
    if (configured == "overlay2") configured = "overlay";
    if (!configured.empty()) return plain_component(configured) ? configured : std::string();
    static const std::vector<std::string> builtin{"overlay", "aufs", "btrfs", "zfs", "vfs"};
    for (const auto& d : priority.empty() ? builtin : priority) {
      const std::string name = d == "overlay2" ? "overlay" : d;
      if (plain_component(name) && graph.has_dir(name + "-containers")) return name;
    }
    return "overlay";
  }

  void podman() {
    std::vector<podman_store> stores;
    // The system configuration: the first file that exists is the only one read.
    // A file that exists but does not parse means the defaults, as if it were empty.
    std::vector<std::string> files;
    if (t_.host()) {
      // Our environment, not Podman's: honoured as the administrator's pointer to the file.
      if (const char* env = std::getenv("CONTAINERS_STORAGE_CONF"); env && *env == '/') files.emplace_back(env);
    }
    files.emplace_back("/etc/containers/storage.conf");
    files.emplace_back("/usr/share/containers/storage.conf");
    std::optional<storage_conf> conf;
    for (const auto& f : files) {
      if (auto text = t_.read(f, max_conf_bytes)) {
        conf = parse_storage_conf(*text);
        break;
      }
    }
    const storage_conf sys = conf.value_or(storage_conf{});
    const user_info root_user{"root", 0, "/root"};
    {
      auto graph = sys.graphroot.empty() ? std::optional<std::string>("/var/lib/containers/storage") : expand(sys.graphroot, root_user);
      if (graph) {
        place g(t_, *graph);
        std::string driver = pick_driver(g, sys.driver, sys.driver_priority);
        std::optional<place> run;
        if (sys.transient_store) {
          auto r = sys.runroot.empty() ? std::optional<std::string>("/run/containers/storage") : expand(sys.runroot, root_user);
          if (r) run.emplace(t_, *r);
        }
        if (!driver.empty()) stores.push_back({std::move(g), std::move(driver), std::move(run)});
      }
    }
    for (const auto& u : users()) {
      const place& home = u.second;
      const user_info& info = u.first;
      std::optional<storage_conf> own;
      bool own_found = false;
      if (auto text = home.read(".config/containers/storage.conf", max_conf_bytes)) {
        own_found = true;
        own = parse_storage_conf(*text);
      }
      std::string graph_path, driver;
      std::vector<std::string> priority;
      bool transient = false;
      std::string runroot;
      if (own_found) {
        // The user's file replaces everything (containers/storage resets its options to the file's).
        const storage_conf c = own.value_or(storage_conf{});
        graph_path = !c.graphroot.empty() ? c.graphroot : c.rootless_storage_path;
        driver = c.driver;
        priority = c.driver_priority;
        transient = c.transient_store;
        runroot = c.runroot;
      } else {
        graph_path = sys.rootless_storage_path;
        if (sys.driver == "btrfs" || sys.driver == "overlay" || sys.driver == "overlay2" || sys.driver == "vfs") driver = sys.driver;
      }
      if (graph_path.empty()) graph_path = info.home + "/.local/share/containers/storage";
      auto graph = expand(graph_path, info);
      if (!graph) continue;
      auto g = user_place(t_, info, home, *graph);
      if (!g) continue;
      std::string d = pick_driver(*g, driver, priority);
      if (d.empty()) continue;
      std::optional<place> run;
      if (transient) {
        auto r = expand(runroot.empty() ? "/run/user/" + std::to_string(info.uid) + "/containers" : runroot, info);
        if (r) run = user_place(t_, info, home, *r);
      }
      stores.push_back({std::move(*g), std::move(d), std::move(run)});
    }

    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& s : stores) {
      auto where = s.graph.seen_dir("");
      if (!where || !seen.insert({*where, s.driver}).second) continue;
      add_storage("podman", where, s.driver);
      if (!want_) continue;
      const std::string dir = s.driver + "-containers/";
      podman_file(s, s.graph, dir + "containers.json");
      podman_file(s, s.graph, dir + "volatile-containers.json");
      if (s.run) podman_file(s, *s.run, dir + "volatile-containers.json");
    }
  }

  void podman_file(const podman_store& s, const place& where, const std::string& rel) {
    if (full()) return;
    auto text = where.read(rel, max_metadata_bytes);
    if (!text) return;
    struct entry {
      std::string id, name, layer, metadata;
    };
    std::vector<entry> entries;
    entry cur;
    json_picker p;
    p.on_value = [&](const json_picker::path& at, const json_leaf& v) {
      if (!v.is_string || at.size() < 2) return;
      if (at.size() == 2) {
        if (at[1] == "id") cur.id = std::string(v.text);
        else if (at[1] == "layer") cur.layer = std::string(v.text);
        else if (at[1] == "metadata") cur.metadata = std::string(v.text.substr(0, max_config_bytes));
      } else if (at.size() == 3 && at[1] == "names" && at[2] == "0") {
        cur.name = std::string(v.text.substr(0, max_name_bytes));
      }
    };
    const std::size_t room = max_known_containers - containers.size();
    p.on_end = [&](std::size_t depth) {
      if (depth != 1 || !p.top_is_array()) return true;
      entries.push_back(std::move(cur));
      cur = {};
      return entries.size() < room;
    };
    if (!parse_json(*text, p)) return;  // a file that is not JSON names nobody, not half of them
    for (auto& e : entries) {
      if (!hex64(e.id)) continue;
      known_container k{"podman", e.id, bounded_name(e.name), {}, std::nullopt};
      if (!e.metadata.empty()) {
        // CRI-O stores its containers in the same library, marked by the pod in their metadata.
        auto pod = json_top_strings(e.metadata, {"pod-id"});
        if (pod && !(*pod)[0].empty()) {
          k.runtime = "cri-o";
          if (auto kn = kube_name(e.name); !kn.empty()) k.name = bounded_name(kn);
        }
      }
      if (plain_component(e.layer))
        for (const auto& d : storage_layer_dirs(s.driver, e.layer)) add_root(k, s.graph, d);
      add(std::move(k));
    }
  }

  // -- Docker

  void add_docker_store(std::vector<docker_store>& out, const std::string& conf, const std::string& fallback) {
    std::string root = fallback, driver;
    if (auto text = t_.read(conf, max_config_bytes)) {
      if (auto v = json_top_strings(*text, {"data-root", "graph", "storage-driver"})) {
        // "graph" is the name before Docker 17.05; "data-root" wins when both are set.
        const std::string& chosen = !(*v)[0].empty() ? (*v)[0] : (*v)[1];
        if (auto p = clean_path(chosen)) root = *p;
        driver = (*v)[2];
      }
    }
    out.push_back({place(t_, root), driver});
  }

  void docker() {
    std::vector<docker_store> stores = system_docker_stores();
    // Rootless Docker: $XDG_CONFIG_HOME/docker/daemon.json, data in $XDG_DATA_HOME/docker.
    for (const auto& u : users()) {
      const place& home = u.second;
      const user_info& info = u.first;
      std::string root = info.home + "/.local/share/docker", driver;
      if (auto text = home.read(".config/docker/daemon.json", max_config_bytes)) {
        if (auto v = json_top_strings(*text, {"data-root", "storage-driver"})) {
          if (auto p = clean_path((*v)[0]); p && !(*v)[0].empty()) root = *p;
          driver = (*v)[1];
        }
      }
      if (auto p = user_place(t_, info, home, root)) stores.push_back({std::move(*p), driver});
    }
    std::set<std::string> seen;
    for (const auto& s : stores) {
      auto where = s.root.seen_dir("");
      if (!where || !seen.insert(*where).second) continue;
      std::string driver = s.driver;
      if (driver.empty()) {
        // Not configured: the daemon's choice shows as its layer store, image/<driver>.
        auto drivers = s.root.list("image", 64);
        if (drivers.size() == 1) driver = drivers.front();
      }
      add_storage("docker", where, plain_component(driver) ? driver : std::string());
      if (!want_) continue;
      for (const auto& id : s.root.list("containers", max_dir_entries)) {
        if (full()) return;
        if (auto k = docker_one(s, id)) add(std::move(*k));
      }
    }
  }

  // -- LXC, Incus, LXD

  void lxc() {
    std::string lxcpath = "/var/lib/lxc";
    if (auto text = t_.read("/etc/lxc/lxc.conf", max_conf_bytes)) {
      if (auto v = lxc_value(*text, "lxc.lxcpath"); v && clean_path(*v)) lxcpath = *clean_path(*v);
    }
    place p(t_, lxcpath);
    add_storage("lxc", p.seen_dir(""), "");
    if (!want_) return;
    for (const auto& name : p.list("", max_dir_entries)) {
      if (full()) return;
      if (!plain_component(name)) continue;
      auto config = p.read(name + "/config", max_conf_bytes);
      if (!config) continue;
      known_container k{"lxc", name, name, {}, std::nullopt};
      auto rootfs = lxc_value(*config, "lxc.rootfs.path");
      if (!rootfs) rootfs = lxc_value(*config, "lxc.rootfs");  // before LXC 2.1
      if (auto dir = lxc_rootfs(rootfs.value_or(""), lxcpath + "/" + name + "/rootfs")) add_root(k, place(t_, *dir), "");
      add(std::move(k));
    }
  }

  void incus() {
    static const std::array<std::pair<const char*, const char*>, 3> bases{{
        {"incus", "/var/lib/incus"},
        {"lxd", "/var/snap/lxd/common/lxd"},
        {"lxd", "/var/lib/lxd"},
    }};
    for (const auto& [runtime, base] : bases) {
      place p(t_, base);
      for (const auto& pool : p.list("storage-pools", 1024))
        if (plain_component(pool)) add_storage(runtime, p.seen_dir("storage-pools/" + pool), "");
      if (!want_) continue;
      for (const auto& lxc_name : p.list("containers", max_dir_entries)) {
        if (full()) return;
        if (!plain_component(lxc_name) || !p.has_dir("containers/" + lxc_name)) continue;
        // <project>_<instance> outside the default project; instance names hold no '_'.
        std::string name = lxc_name;
        if (const auto us = name.rfind('_'); us != std::string::npos && us > 0 && us + 1 < name.size())
          name = name.substr(0, us) + "/" + name.substr(us + 1);
        known_container k{"lxc", lxc_name, bounded_name(name), {}, std::nullopt};
        add_root(k, p, "containers/" + lxc_name + "/rootfs");
        add(std::move(k));
      }
    }
  }

  // -- systemd-nspawn

  void nspawn() {
    static const std::array<const char*, 6> search{"/etc/machines",     "/run/machines",           "/var/lib/machines",
                                                   "/var/lib/container", "/usr/local/lib/machines", "/usr/lib/machines"};
    for (std::size_t i = 2; i < search.size(); ++i) add_storage("systemd-nspawn", place(t_, search[i]).seen_dir(""), "");
    if (!want_) return;
    const bool machined = static_cast<bool>(t_.open("/run/systemd/machines", O_PATH | O_DIRECTORY));
    std::set<std::string> names;
    for (const char* dir : search) {
      place p(t_, dir);
      for (const auto& name : p.list("", max_dir_entries)) {
        if (full()) return;
        // Hidden entries are systemd's own (locks, temporary copies); images that are files
        // (.raw) are not directories and are skipped by has_dir.
        if (!plain_component(name) || name.front() == '.' || names.count(name) || !p.has_dir(name)) continue;
        names.insert(name);
        known_container k{"systemd-nspawn", name, name, {}, std::nullopt};
        if (machined) k.running = static_cast<bool>(t_.open("/run/systemd/machines/" + name, O_PATH));
        add_root(k, p, name);
        add(std::move(k));
      }
    }
  }

  // Users with a home they own, opened once for both runtimes.
  const std::vector<std::pair<user_info, place>>& users() {
    if (!users_loaded_) {
      users_loaded_ = true;
      for (auto& u : read_users(t_)) {
        unique_fd fd = t_.open(u.home, O_PATH | O_DIRECTORY);
        if (!fd || owner_of(fd) != u.uid) continue;
        std::string home = u.home;
        users_.emplace_back(std::move(u), place(t_, std::move(home), std::move(fd)));
      }
    }
    return users_;
  }

  const tree& t_;
  bool want_;
  bool users_loaded_ = false;
  std::vector<std::pair<user_info, place>> users_;
};

}  // namespace

struct runtime_metadata::impl {
  explicit impl(std::string root) : t(std::move(root)) {}
  tree t;
};

runtime_metadata::runtime_metadata(std::string root) : impl_(std::make_unique<impl>(std::move(root))) {}
runtime_metadata::~runtime_metadata() = default;

std::vector<known_container> runtime_metadata::containers() {
  try {
    collector c(impl_->t, true);
    c.run();
    return std::move(c.containers);
  } catch (...) {
    return {};  // allocation failure on hostile input: no catalog rather than no dupcache
  }
}

std::vector<storage_location> runtime_metadata::storage() {
  try {
    collector c(impl_->t, false);
    c.run();
    auto out = std::move(c.storage);
    std::sort(out.begin(), out.end(), [](const storage_location& a, const storage_location& b) {
      return std::tie(a.runtime, a.path, a.driver) < std::tie(b.runtime, b.path, b.driver);
    });
    out.erase(std::unique(out.begin(), out.end(),
                          [](const storage_location& a, const storage_location& b) {
                            return a.runtime == b.runtime && a.path == b.path && a.driver == b.driver;
                          }),
              out.end());
    return out;
  } catch (...) {
    return {};
  }
}

std::optional<known_container> runtime_metadata::docker_container(const std::string& id) {
  try {
    collector c(impl_->t, true);
    for (const auto& s : c.system_docker_stores())
      if (auto k = c.docker_one(s, id)) return k;
  } catch (...) {
  }
  return std::nullopt;
}

}  // namespace dupcache::cgroup
