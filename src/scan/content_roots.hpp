// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// What `report --content` walks. Content duplicates live on any local filesystem (ext4, XFS
// without reflink, the layers of overlayfs), not only on those that share extents, so:
//  - with no PATH, every mounted filesystem on a block device (one mount per filesystem);
//    overlayfs mounts are not walked as such, their layers are on those filesystems;
//  - a PATH on overlayfs is replaced by the same place in each of its layers (upper first),
//    because the page cache of a file read through an overlay belongs to the real inode in
//    its layer: cachestat or mincore on the overlay file sees nothing. Each real inode is
//    counted once however many overlays share its layer.

#include <string>
#include <vector>

#include "scan/mounts.hpp"

namespace dupcache {

struct content_roots {
  std::vector<std::string> paths;
  std::vector<std::string> notes;  // one line per overlay resolved, per kind of mount left out
};

// The layer directories of an overlayfs mount from its options: upperdir, then lowerdir
// ("a:b", ':' escaped as "\:") or lowerdir+= / datadir+= (one per option), top to bottom.
std::vector<std::string> overlay_layers(const std::string& super_options);

// The mounts walked when no PATH is named: one per local block filesystem.
std::vector<mount_entry> local_fs_mounts(const std::vector<mount_entry>& mounts);

content_roots resolve_content_roots(const std::vector<std::string>& paths, const std::vector<mount_entry>& mounts);

}  // namespace dupcache
