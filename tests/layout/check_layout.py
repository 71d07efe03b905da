#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Checks src/ against the tables of src/README.md: the floors (which directory may include and
link which), the confined headers and the size of files. Each finding is printed as
`path:line: rule: what, and the rule it breaks`; the exit status is 1 when there is one.

The tables are the only source of the rules, so that changing the architecture means changing
the document a reader looks at; this script knows only how the tables are written.

  check_layout.py --root REPO [--rule includes|confined|size|links|all]
  check_layout.py --self-test      plants each kind of violation in a scratch tree and checks
                                   that it is found (and that clean files are not)
"""

import argparse
import fnmatch
import os
import re
import shutil
import sys
import tempfile

SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".h", ".hpp")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
LINK_CALL = re.compile(r"\btarget_link_libraries\s*\(")
LINKED_DIR = re.compile(r"\bdupcache_([a-z0-9_]+)\b")


class LayoutError(Exception):
    """src/README.md cannot be read as the check expects."""


def cells(row):
    return [c.strip() for c in row.strip().strip("|").split("|")]


def names(cell):
    """`a`, `b` -> ["a", "b"]; "-" -> []; "all" -> ["*"]."""
    text = cell.replace("`", "").strip()
    if text in ("-", "—", ""):
        return []
    if text == "all":
        return ["*"]
    return [n.strip() for n in text.split(",") if n.strip()]


def read_table(readme, header):
    """Rows of the markdown table whose header cells are `header`, as (line number, cells)."""
    with open(readme, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if line.lstrip().startswith("|") and [c.lower() for c in cells(line)] == header:
            rows = []
            for j in range(i + 2, len(lines)):  # past the header and its --- line
                if not lines[j].lstrip().startswith("|"):
                    break
                rows.append((j + 1, cells(lines[j])))
            return rows
    raise LayoutError(f"{readme}: no table headed | {' | '.join(header)} |")


class Rules:
    def __init__(self, readme):
        self.readme = readme
        self.floors = {}
        for _, row in read_table(readme, ["directory", "may include"]):
            (directory,) = names(row[0])
            self.floors[directory] = names(row[1])
        for directory, below in self.floors.items():
            unknown = set(below) - set(self.floors) - {"*"}
            if unknown:
                raise LayoutError(f"{readme}: {directory} stands on {sorted(unknown)}, which have no row")
        self.confined = {}
        for _, row in read_table(readme, ["header", "included only by"]):
            (header,) = names(row[0])
            self.confined[header] = names(row[1])
        self.size = {}
        for _, row in read_table(readme, ["directory", "lines per file at most"]):
            (directory,) = names(row[0])
            self.size[directory] = int(row[1])

    def may_include(self, directory, other):
        below = self.floors.get(directory, [])
        return other == directory or "*" in below or other in below

    def floor_text(self, directory):
        below = self.floors.get(directory, [])
        if "*" in below:
            return "all"
        return ", ".join(below) if below else "nothing of the project"


def source_files(src):
    for base, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(SOURCE_SUFFIXES):
                yield os.path.join(base, name)


def directory_of(src, path):
    """The floor a path under src/ stands on (its first component), or None for src/ itself."""
    rel = os.path.relpath(path, src)
    parts = rel.split(os.sep)
    return parts[0] if len(parts) > 1 else None


def included_directory(src, path, target, quoted):
    """The src/ directory an include names, or None when it is not a project header."""
    candidates = []
    if quoted:
        candidates.append(os.path.normpath(os.path.join(os.path.dirname(path), target)))
    candidates.append(os.path.normpath(os.path.join(src, target)))
    for c in candidates:
        if os.path.isfile(c) and os.path.commonpath([src, c]) == src:
            return directory_of(src, c)
    # A header that does not exist yet still names its floor when written as dir/file.
    first = target.split("/")[0]
    return first if "/" in target and os.path.isdir(os.path.join(src, first)) else None


def rel(root, path):
    return os.path.relpath(path, root)


def check_directories(root, src, rules):
    found = []
    for entry in sorted(os.listdir(src)):
        if os.path.isdir(os.path.join(src, entry)) and entry not in rules.floors:
            found.append(f"{rel(root, os.path.join(src, entry))}:1: floors: directory with no row in "
                         f"{rel(root, rules.readme)}'s floors table")
    return found


def check_includes(root, src, rules):
    found = []
    for path in source_files(src):
        directory = directory_of(src, path)
        if directory is None:
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                other = included_directory(src, path, m.group(2), m.group(1) == '"')
                if other is None or rules.may_include(directory, other):
                    continue
                found.append(f"{rel(root, path)}:{n}: floors: {directory}/ includes {m.group(2)} from {other}/; "
                             f"{directory}/ may include {rules.floor_text(directory)} "
                             f"({rel(root, rules.readme)})")
    return found


def check_confined(root, src, rules):
    found = []
    for path in source_files(src):
        rel_src = os.path.relpath(path, src)
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                header = os.path.basename(m.group(2))
                allowed = rules.confined.get(header)
                if allowed is None or any(fnmatch.fnmatch(rel_src, a) for a in allowed):
                    continue
                found.append(f"{rel(root, path)}:{n}: confined header: {header} may be included only by "
                             f"{', '.join(allowed)} ({rel(root, rules.readme)})")
    return found


def check_size(root, src, rules):
    found = []
    for directory, limit in sorted(rules.size.items()):
        base = os.path.join(src, directory)
        if not os.path.isdir(base):
            continue
        for path in source_files(base):
            with open(path, encoding="utf-8", errors="replace") as f:
                count = sum(1 for _ in f)
            if count > limit:
                found.append(f"{rel(root, path)}:{count}: size: {count} lines, over the {limit} a file in "
                             f"{directory}/ may have ({rel(root, rules.readme)})")
    return found


def link_calls(text):
    """(line number of each dupcache_<name>, name) inside target_link_libraries(...), the target
    itself left out."""
    out = []
    for m in LINK_CALL.finditer(text):
        depth, end = 1, m.end()
        while end < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        body_start = m.end()
        words = list(LINKED_DIR.finditer(text, body_start, end))
        if words and text[body_start:words[0].start()].strip() == "":
            words = words[1:]
        for w in words:
            out.append((text.count("\n", 0, w.start()) + 1, w.group(1)))
    return out


def check_links(root, src, rules):
    found = []
    for directory in sorted(os.listdir(src)):
        cmake = os.path.join(src, directory, "CMakeLists.txt")
        if directory not in rules.floors or not os.path.isfile(cmake):
            continue
        with open(cmake, encoding="utf-8") as f:
            text = re.sub(r"#[^\n]*", lambda c: " " * len(c.group(0)), f.read())
        for n, other in link_calls(text):
            if other in rules.floors and not rules.may_include(directory, other):
                found.append(f"{rel(root, cmake)}:{n}: floors: {directory}/ links dupcache_{other}; "
                             f"{directory}/ may stand on {rules.floor_text(directory)} "
                             f"({rel(root, rules.readme)})")
    return found


CHECKS = {
    "includes": lambda root, src, rules: check_directories(root, src, rules) + check_includes(root, src, rules),
    "confined": check_confined,
    "size": check_size,
    "links": check_links,
}


def run(root, which):
    src = os.path.join(root, "src")
    rules = Rules(os.path.join(src, "README.md"))
    found = []
    for name in (CHECKS if which == "all" else [which]):
        found += CHECKS[name](root, src, rules)
    return found


def self_test():
    """Plants one violation of each rule beside files that keep the rules, under tables written
    as src/README.md writes them (its own, so that changing the real rules does not change what
    this proves), and checks that exactly the violations are found, each at its line."""
    tree = tempfile.mkdtemp(prefix="dupcache-layout-")
    try:
        def plant(path, text):
            full = os.path.join(tree, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                f.write(text)

        plant("src/README.md", "\n".join([
            "# floors", "",
            "| directory | may include |", "| --- | --- |",
            "| `util` | - |", "| `index` | `util` |", "| `scan` | `util`, `index` |",
            "| `report` | `util`, `index`, `scan` |", "| `live` | `util`, `report` |",
            "| `policy` | `util`, `scan` |",
            "| `top` | `util`, `live` |", "| `daemon` | `util`, `live` |", "| `cli` | all |", "",
            "| header | included only by |", "| --- | --- |",
            "| `dupcache_kmod.h` | `policy/merge_module.*` |", "",
            "| directory | lines per file at most |", "| --- | --- |", "| `cli` | 200 |", ""]))
        plant("src/util/result.hpp", "#pragma once\n")
        plant("src/top/view.hpp", '#pragma once\n#include "live/sample.hpp"\n#include "util/result.hpp"\n')
        plant("src/live/sample.hpp", '#pragma once\n#include "report/report.hpp"\n')
        plant("src/report/report.hpp", "#pragma once\n")
        plant("src/daemon/engine.cpp", '#include "daemon/engine.hpp"\n\n#include "top/view.hpp"\n')
        plant("src/daemon/engine.hpp", '#pragma once\n#include "engine_detail.hpp"\n')
        plant("src/daemon/engine_detail.hpp", "#pragma once\n")
        plant("src/index/block_index.cpp", '#include <vector>\n#include "../scan/x.hpp"\n')
        plant("src/scan/x.hpp", "#pragma once\n")
        plant("src/policy/merge_module.cpp", "#include <dupcache_kmod.h>\n")
        plant("src/policy/merge.cpp", '// x\n#include "dupcache_kmod.h"\n')
        plant("src/cli/short_cmd.cpp", "//\n" * 200)
        plant("src/cli/long_cmd.cpp", "//\n" * 201)
        plant("src/daemon/CMakeLists.txt",
              "# links dupcache_top would be wrong\n"
              "add_library(dupcache_daemon STATIC engine.cpp)\n"
              "target_link_libraries(dupcache_daemon PUBLIC dupcache_core\n  dupcache_live dupcache_top)\n")
        plant("src/top/CMakeLists.txt", "target_link_libraries(dupcache_top PUBLIC dupcache_live)\n")
        plant("src/stray/a.cpp", "\n")
        want = [
            "src/stray:1: floors:",
            "src/daemon/engine.cpp:3: floors: daemon/ includes top/view.hpp from top/",
            "src/index/block_index.cpp:2: floors: index/ includes ../scan/x.hpp from scan/",
            "src/policy/merge.cpp:2: confined header: dupcache_kmod.h may be included only by policy/merge_module.*",
            "src/cli/long_cmd.cpp:201: size: 201 lines, over the 200",
            "src/daemon/CMakeLists.txt:4: floors: daemon/ links dupcache_top;",
        ]
        found = run(tree, "all")
        ok = True
        for w in want:
            if not any(f.startswith(w) for f in found):
                print(f"self-test: not found: {w}", file=sys.stderr)
                ok = False
        for f in found:
            if not any(f.startswith(w) for w in want):
                print(f"self-test: found on a clean file: {f}", file=sys.stderr)
                ok = False
        print("\n".join(found))
        return 0 if ok and len(found) == len(want) else 1
    finally:
        shutil.rmtree(tree)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", help="the repository (holds src/README.md)")
    p.add_argument("--rule", choices=sorted(CHECKS) + ["all"], default="all")
    p.add_argument("--self-test", action="store_true")
    a = p.parse_args()
    if a.self_test:
        return self_test()
    if not a.root:
        p.error("--root is required")
    try:
        found = run(a.root, a.rule)
    except (LayoutError, OSError, ValueError) as e:
        print(f"check_layout: {e}", file=sys.stderr)
        return 2
    for f in found:
        print(f)
    if found:
        print(f"check_layout: {len(found)} finding(s) against src/README.md", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
