#!/usr/bin/env python3
"""Layering check: the modules of each crate must import each other without a cycle.

For each crate root (default: src/lib.rs and wsloop-redis/src/lib.rs) the module files are
found by following `mod name;` declarations (`foo.rs`, `foo/mod.rs`, or `foo.rs` beside a
`foo/` directory). An edge goes from a module to the module that a path in its non-test code
refers to:

- `use crate::…`, `use super::…`, `use self::…`, and `use child::…` where `child` is a
  submodule (Rust 2018 relative paths, as in a `mod.rs` that re-exports: `pub use child::X;`),
  grouped (`use crate::{a::X, b::{Y, Z}}`) or spread over several lines;
- inline paths in code, such as `crate::a::b::f(…)`, `super::x::Y` or `child::f(…)`.

A path resolves to the deepest module file it names (`crate::session::Message` -> `session`).
A name that the module there only imports (a `pub use` re-export, or a private `use` seen by
its children through `super::`) is followed to where it comes from; a name defined in the
module's file (`super::Y` with `struct Y` in the parent's `mod.rs`) is an edge to that module.
A `mod foo;` declaration is not an edge. An edge to the module itself is dropped; an edge to a
parent or a child is kept, so a parent that re-exports a child's item and a child that uses an
item defined in the parent form a cycle.

Not read: comments (doc comments and their links included), string and char literals, items
under `#[cfg(test)]` (test modules, inline or in their own file), files with `#![cfg(test)]`.

Exit 1 and print every cycle (`a -> b -> a`, each edge with the file and line that makes it)
if there is one; otherwise print each crate's modules in dependency order (leaves first) and
exit 0. `--quiet` prints only failures; `--edges` also prints every edge with its source.
`--self-test` checks the script on small synthetic crates in a temporary directory.
"""

import argparse
import os
import re
import sys
import tempfile
from collections import deque

DEFAULT_ROOTS = ["src/lib.rs", "wsloop-redis/src/lib.rs"]

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
IDENT_RE = re.compile(IDENT)
CHAR_LITERAL = re.compile(r"'(?:\\(?:u\{[0-9a-fA-F_]+\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])'")
RAW_STRING = re.compile(r'b?r(#*)"')
CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
INNER_CFG_TEST = re.compile(r"#\s*!\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
VISIBILITY = re.compile(r"\bpub\s*\(\s*(?:crate|self|super|in\s+[^)]*)\s*\)")
MOD_DECL = re.compile(r"\bmod\s+(?:r#)?(" + IDENT + r")\s*([;{])")
USE_START = re.compile(r"(?<![\w:])use\s+(?!<)")
ITEM = re.compile(
    r"\b(?:fn|struct|enum|trait|type|union|mod)\s+(?:r#)?(" + IDENT + r")"
    r"|\b(?:const|static)\s+(?:mut\s+)?(" + IDENT + r")\s*:"
    r"|\bmacro_rules!\s*(" + IDENT + r")"
)
INLINE_PATH = re.compile(r"(?<![\w:#])(" + IDENT + r"(?:\s*::\s*" + IDENT + r")+)")


class LayersError(Exception):
    """A crate this script cannot read (a missing file, an unsupported construct)."""


# --- reading a file -------------------------------------------------------------------------


def shown(path, repo):
    """`path` relative to the repository, or as it is if outside it."""
    rel = os.path.relpath(path, repo)
    return path if rel.startswith("..") else rel


def blank(chars, start, end):
    for i in range(start, end):
        if chars[i] != "\n":
            chars[i] = " "


def strip_comments_and_literals(text):
    """The text with comments and string/char literals replaced by spaces (lines kept)."""
    chars = list(text)
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            blank(chars, i, end)
            i = end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(chars, i, j)
            i = j
        elif c.isalpha() or c == "_":
            raw = RAW_STRING.match(text, i)
            if raw and text[i] in "br":
                close = '"' + raw.group(1)
                end = text.find(close, raw.end())
                end = n if end < 0 else end + len(close)
                blank(chars, i, end)
                i = end
                continue
            if text.startswith('b"', i):
                i = skip_string(text, chars, i + 1)
                continue
            if text.startswith("b'", i):
                lit = CHAR_LITERAL.match(text, i + 1)
                if lit:
                    blank(chars, i, lit.end())
                    i = lit.end()
                    continue
            m = IDENT_RE.match(text, i)
            i = m.end()
        elif c == '"':
            i = skip_string(text, chars, i)
        elif c == "'":
            lit = CHAR_LITERAL.match(text, i)
            if lit:
                blank(chars, i, lit.end())
                i = lit.end()
            else:
                i += 1  # a lifetime or a label
        else:
            i += 1
    return "".join(chars)


def skip_string(text, chars, start):
    """Blank the string literal whose opening quote is at `start`; return the index after it."""
    j = start + 1
    while j < len(text) and text[j] != '"':
        j += 2 if text[j] == "\\" else 1
    end = min(j + 1, len(text))
    blank(chars, start, end)
    return end


def matching(code, start, opening, closing):
    """The index after the `closing` that matches the `opening` at `start`."""
    depth = 0
    for j in range(start, len(code)):
        if code[j] == opening:
            depth += 1
        elif code[j] == closing:
            depth -= 1
            if depth == 0:
                return j + 1
    return len(code)


def item_end(code, start):
    """The end of the item (or field, or statement) that begins at `start`."""
    depth = 0
    j = start
    while j < len(code):
        c = code[j]
        if c == "#" and code.startswith("[", j + 1) and depth == 0:
            j = matching(code, j + 1, "[", "]")  # another attribute
            continue
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0:
            if c in ";,":
                return j + 1
            if c == "{":
                end = matching(code, j, "{", "}")
                rest = code[end:].lstrip(" \t")
                if rest.startswith(";"):  # `let x = S { … };`
                    end = code.index(";", end) + 1
                return end
            if c == "}":
                return j  # the enclosing block ends: the attribute was on its last element
        j += 1
    return j


def without_tests(code):
    """The code with every `#[cfg(test)]` item blanked (the attribute included)."""
    chars = list(code)
    for m in CFG_TEST.finditer(code):
        if chars[m.start()] == " ":
            continue  # inside an item blanked already
        blank(chars, m.start(), item_end(code, m.end()))
    return "".join(chars)


class SourceFile:
    def __init__(self, path, display):
        self.path = path
        self.display = display
        with open(path, encoding="utf-8") as f:
            self.text = f.read()
        stripped = strip_comments_and_literals(self.text)
        self.is_test = bool(INNER_CFG_TEST.search(stripped))
        self.code = without_tests(stripped)
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        if re.search(r"#\s*\[\s*path\s*=", self.code):
            raise LayersError(f"{display}: #[path] on a module is not supported")
        self.depth = brace_depths(self.code)
        self.inline_mods = []  # (start, end) of each non-test inline `mod x { … }`
        self.mod_decls = []  # names of `mod x;`
        for m in MOD_DECL.finditer(self.code):
            if m.group(2) == ";":
                self.mod_decls.append(m.group(1))
            else:
                brace = m.end() - 1
                self.inline_mods.append((brace, matching(self.code, brace, "{", "}")))
        self.items = set()
        for m in ITEM.finditer(self.code):
            if self.depth[m.start()] == self.inline_nesting(m.start()):
                self.items.add(next(g for g in m.groups() if g))

    def line(self, pos):
        lo, hi = 0, len(self.line_starts)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.line_starts[mid] <= pos:
                lo = mid
            else:
                hi = mid
        return lo + 1

    def source_line(self, pos):
        start = self.line_starts[self.line(pos) - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end >= 0 else len(self.text)].strip()

    def inline_nesting(self, pos):
        """How many inline `mod x { … }` blocks of this file enclose `pos`."""
        return sum(1 for start, end in self.inline_mods if start < pos < end)


def brace_depths(code):
    depths = []
    depth = 0
    for c in code:
        if c == "}":
            depth -= 1
        depths.append(depth)
        if c == "{":
            depth += 1
    return depths


# --- use trees ------------------------------------------------------------------------------


def parse_use_tree(text):
    """Flatten a use tree into (segments, name bound) pairs; `*` ends a glob."""
    tokens = re.findall(r"::|[{},*]|" + IDENT, text)
    pos = 0

    def tree(prefix):
        nonlocal pos
        out = []
        segments = list(prefix)
        if pos < len(tokens) and tokens[pos] == "::":
            pos += 1  # `use ::std::…`: an extern crate
            segments = ["::"]
        while pos < len(tokens):
            tok = tokens[pos]
            if tok == "{":
                pos += 1
                while pos < len(tokens) and tokens[pos] != "}":
                    out += tree(segments)
                    if pos < len(tokens) and tokens[pos] == ",":
                        pos += 1
                pos += 1
                return out
            if tok == "*":
                pos += 1
                return out + [(segments, "*")]
            if tok in (",", "}"):
                break
            if tok == "::":
                pos += 1
                continue
            segments = segments + [tok]
            pos += 1
            if pos < len(tokens) and tokens[pos] == "as":
                alias = tokens[pos + 1] if pos + 1 < len(tokens) else "_"
                pos += 2
                return out + [(segments, alias)]
            if pos >= len(tokens) or tokens[pos] != "::":
                break
        if segments and segments != list(prefix):
            name = segments[-1]
            if name == "self":
                segments = segments[:-1]
                name = segments[-1] if segments else "self"
            out.append((segments, name))
        return out

    return tree([])


# --- a crate --------------------------------------------------------------------------------


class Crate:
    def __init__(self, root_path, repo):
        self.repo = repo
        self.root_display = shown(root_path, repo)
        self.files = {}  # module path (tuple) -> SourceFile
        self.children = {}  # module path -> set of child names
        self.aliases = {}  # module path -> {name: (segments or None, pos)}
        self.edges = {}  # (from, to) -> (file, line, source line)
        self._load((), root_path, is_root=True)
        for module in self.files:
            self.aliases[module] = {}
        for module, source in self.files.items():
            self._read_uses(module, source)
        for module, source in self.files.items():
            self._read_edges(module, source)

    def _load(self, module, path, is_root=False):
        source = SourceFile(path, shown(path, self.repo))
        if source.is_test:
            return
        self.files[module] = source
        self.children[module] = set()
        base = os.path.basename(path)
        if is_root or base == "mod.rs":
            directory = os.path.dirname(path)
        else:
            directory = os.path.join(os.path.dirname(path), base[: -len(".rs")])
        for name in source.mod_decls:
            candidates = [
                os.path.join(directory, name + ".rs"),
                os.path.join(directory, name, "mod.rs"),
            ]
            found = [c for c in candidates if os.path.isfile(c)]
            if not found:
                raise LayersError(f"{source.display}: no file for `mod {name};`")
            self.children[module].add(name)
            self._load(module + (name,), found[0])
        # Children under #[cfg(test)] were blanked with their declarations; a file that is
        # only a test module (#![cfg(test)]) is dropped by _load: forget its name.
        self.children[module] = {n for n in self.children[module] if module + (n,) in self.files}

    def name(self, module):
        return "::".join(module) if module else "crate"

    def _base(self, module, source, pos, segments):
        """Turn a path written in `module` at `pos` into one from the crate root, or None."""
        nesting = source.inline_nesting(pos)
        first = segments[0]
        if first == "crate":
            return list(segments[1:])
        if first in ("self", "super"):
            i, ups = 0, 0
            if first == "self":
                i = 1
            while i < len(segments) and segments[i] == "super":
                ups, i = ups + 1, i + 1
            ups = max(0, ups - nesting)  # `super` out of an inline module stays in the file
            if ups > len(module):
                return None
            return list(module[: len(module) - ups]) + list(segments[i:])
        if nesting == 0 and first in self.children[module]:
            return list(module) + list(segments)
        return None

    def _read_uses(self, module, source):
        code = source.code
        spans = []
        for m in USE_START.finditer(code):
            end = code.find(";", m.end())
            end = len(code) if end < 0 else end + 1
            spans.append((m.start(), end))
            for segments, name in parse_use_tree(code[m.end() : end - 1]):
                if not segments or segments[0] == "::":
                    continue
                base = self._base(module, source, m.start(), segments)
                if base is None and segments[0] in self.aliases[module]:
                    target = self.aliases[module][segments[0]][0]
                    if target is not None:
                        base = target + list(segments[1:])
                if name != "*":
                    self.aliases[module][name] = (base, m.start())
                if base is not None:
                    self._edge(module, self.resolve(base), source, m.start())
        # Inline paths must not count use statements twice (nor `pub(in crate::x)`).
        chars = list(code)
        for start, end in spans:
            blank(chars, start, end)
        for m in VISIBILITY.finditer(code):
            blank(chars, m.start(), m.end())
        source.code_without_uses = "".join(chars)

    def _read_edges(self, module, source):
        for m in INLINE_PATH.finditer(source.code_without_uses):
            segments = re.split(r"\s*::\s*", m.group(1))
            base = self._base(module, source, m.start(), segments)
            if base is not None:
                self._edge(module, self.resolve(base), source, m.start())

    def resolve(self, segments, hops=0):
        """The module a path from the crate root refers to."""
        module = ()
        i = 0
        while i < len(segments) and module + (segments[i],) in self.files:
            module += (segments[i],)
            i += 1
        if i == len(segments) or hops > 16:
            return module
        name = segments[i]
        if name not in self.files[module].items and name in self.aliases.get(module, {}):
            target = self.aliases[module][name][0]
            if target is not None:
                return self.resolve(target + list(segments[i + 1 :]), hops + 1)
        return module

    def _edge(self, src, dst, source, pos):
        if src == dst or (src, dst) in self.edges:
            return
        self.edges[(src, dst)] = (source.display, source.line(pos), source.source_line(pos))

    def graph(self):
        graph = {m: set() for m in self.files}
        for src, dst in self.edges:
            graph[src].add(dst)
        return graph


# --- cycles and order -----------------------------------------------------------------------


def strongly_connected(graph):
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        work = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == node:
                        break
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def shortest_path(graph, start, goal, allowed):
    previous = {start: None}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        if v == goal:
            path = []
            while v is not None:
                path.append(v)
                v = previous[v]
            return path[::-1]
        for w in sorted(graph[v]):
            if w in allowed and w not in previous:
                previous[w] = v
                queue.append(w)
    return None


def cycles(graph):
    """For each edge inside a strongly connected component, the shortest cycle through it."""
    found = []
    seen = set()
    for component in strongly_connected(graph):
        if len(component) < 2:
            continue
        members = set(component)
        for u in component:
            for v in sorted(graph[u]):
                if v not in members:
                    continue
                back = shortest_path(graph, v, u, members)
                cycle = [u] + back
                ring = cycle[:-1]
                k = ring.index(min(ring))
                key = tuple(ring[k:] + ring[:k])
                if key not in seen:
                    seen.add(key)
                    found.append(list(key) + [key[0]])
    return found


def dependency_order(graph):
    """Modules with every dependency listed before them (leaves first), ties by name."""
    left = {m: set(deps) for m, deps in graph.items()}
    order = []
    while left:
        ready = sorted(m for m, deps in left.items() if not deps)
        if not ready:
            break
        for m in ready:
            order.append(m)
            del left[m]
        for deps in left.values():
            deps.difference_update(ready)
    return order


def check(crate, quiet, out):
    graph = crate.graph()
    found = cycles(graph)
    label = f"{crate.root_display}"
    if found:
        print(f"FAIL {label}: {len(found)} import cycle(s)", file=out)
        for cycle in found:
            print(
                "  " + " -> ".join(f"{crate.name(m)} [{crate.files[m].display}]" for m in cycle),
                file=out,
            )
            for src, dst in zip(cycle, cycle[1:]):
                file, line, text = crate.edges[(src, dst)]
                edge = f"{crate.name(src)} -> {crate.name(dst)}"
                print(f"    {edge}: {file}:{line}: {text}", file=out)
        return False
    if not quiet:
        print(f"ok {label}: {len(graph)} modules, no import cycle; dependency order:", file=out)
        for module in dependency_order(graph):
            deps = ", ".join(sorted(crate.name(d) for d in graph[module]))
            print(
                f"  {crate.name(module):<24} {crate.files[module].display}"
                + (f"  (uses {deps})" if deps else ""),
                file=out,
            )
    return True


# --- self-test ------------------------------------------------------------------------------


def write_tree(root, files):
    for path, text in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(text)


def self_test(quiet):
    parent_defines_y = {
        "src/lib.rs": "mod parent;\npub use parent::X;\n",
        "src/parent/mod.rs": "mod child;\npub use child::X;\n\npub struct Y;\n",
        "src/parent/child.rs": "use super::Y;\n\npub struct X(pub Y);\n",
    }
    cases = [
        # (what, files, expected cycles as sets of module names, or [] for none)
        ("mod.rs re-exports a child that uses an item defined in mod.rs", parent_defines_y,
         [{"parent", "parent::child"}]),
        ("the same without `use super::Y`", {
            **parent_defines_y,
            "src/parent/child.rs": "pub struct X;\n",
        }, []),
        ("foo.rs beside foo/, an inline `super::` path to an item of the parent", {
            "src/lib.rs": "pub mod foo;\n",
            "src/foo.rs": "pub mod bar;\n\npub fn f() -> u8 { bar::g() }\n",
            "src/foo/bar.rs": "pub fn g() -> u8 { super::f() }\n",
        }, [{"foo", "foo::bar"}]),
        ("a child reaching a sibling through the parent's re-export is no cycle", {
            "src/lib.rs": "mod a;\nmod b;\npub use a::A;\npub use b::B;\n",
            "src/a.rs": "use crate::B;\n\npub struct A(B);\n",
            "src/b.rs": "pub struct B;\n",
        }, []),
        ("grouped, multi-line use, resolved to the deepest module", {
            "src/lib.rs": "mod a;\nmod b;\n",
            "src/a.rs": "use crate::{\n    b::{\n        c::C,\n    },\n};\npub struct A;\n",
            "src/b.rs": "pub mod c;\n",
            "src/b/c.rs": "pub struct C(crate::a::A);\n",
        }, [{"a", "b::c"}]),
        ("comments, doc links, strings and test code make no edge", {
            "src/lib.rs": "mod a;\nmod b;\n",
            "src/a.rs": (
                "//! See [`crate::b::B`].\n"
                "/// Like [`crate::b::B`].\n"
                "pub struct A; // crate::b::B\n"
                "/* use crate::b::B; */\n"
                "pub const S: &str = \"crate::b::B\";\n"
                "pub const C: char = '{';\n"
                "#[cfg(test)]\nmod tests {\n    use crate::b::B;\n}\n"
                "#[cfg(test)]\nmod more;\n"
            ),
            "src/a/more.rs": "use crate::b::B;\n",
            "src/b.rs": "pub struct B(crate::a::A);\n",
        }, []),
        ("raw strings, `pub(in crate::…)` and `use self::child` read as Rust does", {
            "src/lib.rs": "mod a;\nmod b;\n",
            "src/a.rs": (
                "mod inner;\npub use self::inner::I;\n"
                "pub fn f() -> &'static str { r#\"\" crate::b::B \"#; \"\\\"\" }\n"
            ),
            "src/a/inner.rs": "pub struct I;\npub(in crate::a) fn x() {}\n",
            "src/b.rs": "pub struct B(crate::a::I);\npub fn g() { crate::a::f(); }\n",
        }, []),
        ("`super::super::` out of an inline module reaches the parent file's module", {
            "src/lib.rs": "mod a;\n",
            "src/a.rs": "pub mod b;\npub struct A;\npub fn h() { b::g() }\n",
            "src/a/b.rs": (
                "pub fn g() {}\nmod inline {\n    pub fn f() { let _ = super::super::A; }\n}\n"
            ),
        }, [{"a", "a::b"}]),
        ("an inline module's `super::` stays in its file", {
            "src/lib.rs": "mod a;\n",
            "src/a.rs": "pub mod b;\npub struct A;\npub fn h() { b::g() }\n",
            "src/a/b.rs": "pub fn g() {}\nmod inline {\n    pub fn f() { super::g() }\n}\n",
        }, []),
        ("an edge hidden after a char literal and a lifetime is still found", {
            "src/lib.rs": "mod a;\nmod b;\n",
            "src/a.rs": "pub fn f<'x>(_: &'x str) -> char { let _ = crate::b::B; '}' }\n",
            "src/b.rs": "pub struct B;\npub fn g() { let _ = crate::a::f(\"\"); }\n",
        }, [{"a", "b"}]),
    ]
    failures = 0
    for what, files, expected in cases:
        with tempfile.TemporaryDirectory() as tmp:
            write_tree(tmp, files)
            crate = Crate(os.path.join(tmp, "src/lib.rs"), tmp)
            got = sorted(sorted(crate.name(m) for m in c[:-1]) for c in cycles(crate.graph()))
        ok = got == sorted(map(sorted, expected))
        failures += not ok
        if not ok or not quiet:
            print(f"{'ok  ' if ok else 'FAIL'} {what}: cycles {got or 'none'}")
    return failures == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = " ".join(DEFAULT_ROOTS)
    parser.add_argument("roots", nargs="*", help=f"crate roots (default: {default})")
    parser.add_argument("--quiet", action="store_true", help="print only failures")
    parser.add_argument("--self-test", action="store_true", help="check the script itself")
    parser.add_argument("--edges", action="store_true", help="also print every edge and its source")
    args = parser.parse_args()
    if args.self_test:
        return 0 if self_test(args.quiet) else 1
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    roots = args.roots or [os.path.join(repo, r) for r in DEFAULT_ROOTS]
    ok = True
    for root in roots:
        try:
            crate = Crate(os.path.abspath(root), repo)
        except (LayersError, OSError) as e:
            print(f"FAIL {root}: {e}", file=sys.stderr)
            ok = False
            continue
        ok &= check(crate, args.quiet, sys.stdout)
        if args.edges:
            for (src, dst), (file, line, text) in sorted(crate.edges.items()):
                print(f"  edge {crate.name(src)} -> {crate.name(dst)}: {file}:{line}: {text}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
