#!/usr/bin/python3
"""Check that libgw's modules include only modules below them in README.md's module map.

usage: check_deps.py SOURCE_DIR
       check_deps.py --self-test

The module map is the tables in README.md's "## Architecture" section whose first column is
"Module": each row names one module in backticks, from the bottom layer up, and the later table
(gw_server) continues above the earlier one (gw). A module is the directories
libgw/include/gw/<module>/ and libgw/src/<module>/. A .hpp/.cpp file in module M may include
(`#include "..."`, resolved like the compiler: next to the file, then libgw/include, libgw/src)
headers of M and of modules listed before M. Each other include is printed as

  FILE:LINE: module M includes N (N is above M in the README's module map)

and so is a module directory the map does not list, or a listed module without a directory.

Exit status: 0 no violations, 1 violations, 2 bad usage or README.md has no module map.
"""

import re
import sys
import tempfile
from pathlib import Path

SECTION = re.compile(r"^## Architecture\n(.*?)(?=^## |\Z)", re.M | re.S)
TABLE_HEADER = re.compile(r"^\|\s*Module\s*\|")
SEPARATOR = re.compile(r"^\|[\s:|-]+\|\s*$")
ROW = re.compile(r"^\|\s*`([a-z0-9_]+)`\s*\|")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def module_map(readme_text):
    """The module map as [(module, README line)], bottom layer first, and the rows it cannot read."""
    section = SECTION.search(readme_text)
    if not section:
        return [], []
    first_line = readme_text.count("\n", 0, section.start(1)) + 1
    modules, bad_rows, in_table = [], [], False
    for lineno, line in enumerate(section.group(1).splitlines(), first_line):
        if TABLE_HEADER.match(line):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and not SEPARATOR.match(line):
            if m := ROW.match(line):
                modules.append((m.group(1), lineno))
            else:
                bad_rows.append(f"README.md:{lineno}: no `module` name in the first cell of this row")
    return modules, bad_rows


def module_of(path, lib):
    """The module a path under libgw/ belongs to, or None."""
    for root in (lib / "include" / "gw", lib / "src"):
        if path.is_relative_to(root) and len(path.relative_to(root).parts) > 1:
            return path.relative_to(root).parts[0]
    return None


def included_module(name, file, lib):
    """The module of the header `#include "name"` in `file` finds, or None (not a libgw header)."""
    for base in (file.parent, lib / "include", lib / "src"):
        if (base / name).is_file():
            return module_of((base / name).resolve(), lib)
    return module_of(lib / "include" / name, lib)  # a missing "gw/<module>/..." still names one


def check(source):
    """Every violation in the source tree at `source`, as printable lines."""
    source = Path(source).resolve()
    lib = source / "libgw"
    listed, problems = module_map((source / "README.md").read_text(encoding="utf-8"))
    if not listed:
        raise SystemExit(f"{source / 'README.md'}: no module tables in its '## Architecture' section")
    rank, line_of = {}, {}
    for module, lineno in listed:
        if module in rank:
            problems.append(f"README.md:{lineno}: module {module} is listed twice (first on line {line_of[module]})")
        else:
            rank[module], line_of[module] = len(rank), lineno

    roots = [lib / "include" / "gw", lib / "src"]
    dirs = {d.name for root in roots if root.is_dir() for d in root.iterdir() if d.is_dir()}
    for module in sorted(dirs - rank.keys()):
        problems.append(f"libgw: module {module} has a directory but is not in the README's module map")
    for module in sorted(rank.keys() - dirs, key=rank.get):
        problems.append(f"README.md:{line_of[module]}: module {module} is in the module map but has no directory in libgw")

    files = sorted(f for root in roots if root.is_dir() for f in root.rglob("*") if f.suffix in (".hpp", ".cpp"))
    for file in files:
        a = module_of(file, lib)
        for lineno, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if not (m := INCLUDE.match(line)):
                continue
            b = included_module(m.group(1), file, lib)
            if a in rank and b in rank and rank[b] > rank[a]:
                problems.append(f"{file.relative_to(source)}:{lineno}: module {a} includes {b} "
                                f"({b} is above {a} in the README's module map)")
    return problems


def self_test():
    """Check a small made-up tree with known violations, and that this tree's README parses."""
    readme = ("# x\n\n## Architecture\n\nModules from the bottom layer up:\n\n"
              "| Module | Responsibility |\n|---|---|\n| `low` | a |\n| `mid` | b |\n| `ghost` | c |\n\n"
              "Second library:\n\n| Module | Responsibility |\n|:--|--|\n| `high` | d |\n| high | e |\n\n"
              "## Next\n\n| Module | x |\n|---|---|\n| `ignored` | f |\n")
    files = {
        "README.md": readme,
        "libgw/include/gw/low/a.hpp": '#pragma once\n#include <vector>\n#include "gw/mid/m.hpp"\n',
        "libgw/src/low/a.cpp": '#include "gw/low/a.hpp"\n#include "p.hpp"\n  #  include "../high/h.hpp"\n',
        "libgw/src/low/p.hpp": '#include "gw/low/a.hpp"\n',
        "libgw/include/gw/mid/m.hpp": '#include "gw/low/a.hpp"\n#include "nlohmann_json_in_quotes.hpp"\n',
        "libgw/src/high/h.hpp": '#include "gw/mid/m.hpp"\n#include "gw/low/gone.hpp"\n#include "low/p.hpp"\n',
        "libgw/src/high/h.cpp": '#include "h.hpp"\n#include "gw/extra/e.hpp"\n',
        "libgw/src/extra/e.cpp": '#include "gw/high/nowhere.hpp"\n',
    }
    expected = [
        "README.md:18: no `module` name in the first cell of this row",
        "libgw: module extra has a directory but is not in the README's module map",
        "README.md:11: module ghost is in the module map but has no directory in libgw",
        "libgw/include/gw/low/a.hpp:3: module low includes mid (mid is above low in the README's module map)",
        "libgw/src/low/a.cpp:3: module low includes high (high is above low in the README's module map)",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / name).write_text(text)
        assert module_map(readme)[0] == [("low", 9), ("mid", 10), ("ghost", 11), ("high", 17)]
        got = check(tmp)
        assert got == expected, "\n".join(["got:", *got, "expected:", *expected])
    modules = [m for m, _ in module_map((Path(__file__).resolve().parents[2] / "README.md").read_text())[0]]
    assert modules[0] == "core" and modules.index("control") < modules.index("server"), modules
    print("check_deps.py: self-test passed")


def main(argv):
    if argv == ["--self-test"]:
        self_test()
        return 0
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(argv[0])
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
