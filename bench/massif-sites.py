#!/usr/bin/env python3
"""Heap at massif's peak snapshot, by allocation site (bench/massif.sh).

Usage: massif-sites.py MASSIF_OUT CONNS [TOP]

Reads massif's own output file (not ms_print's), takes the peak snapshot's allocation tree,
and charges each allocation to the first frame below it that is not the standard library's
allocation machinery (alloc::, raw_vec, Box, Vec, BytesMut growth, inlined helpers): that
frame is "the site". Prints the sites by bytes, with bytes per connection (CONNS).
"""
import re
import sys

BORING = re.compile(
    r"^(malloc|calloc|realloc|posix_memalign|aligned_alloc|memalign|operator new)|"
    r"library/alloc/|library/core/|UnknownInlinedFun|__rust_|alloc::|"
    r"<alloc::|bytes_mut\.rs|bytes/src/bytes\.rs|raw_vec|hashbrown|with_capacity|"
    r"reserve|grow|finish_grow|do_reserve_and_handle"
)


def parse_peak(path):
    """The peak snapshot's tree as nested (bytes, desc, children)."""
    lines = open(path, errors="replace").read().splitlines()
    start = None
    for i, line in enumerate(lines):
        if line == "heap_tree=peak":
            start = i + 1
    if start is None:
        sys.exit("no peak snapshot in " + path)
    node_re = re.compile(r"^( *)n(\d+): (\d+) (.*)$")

    def node(i):
        m = node_re.match(lines[i])
        n, size, desc = int(m.group(2)), int(m.group(3)), m.group(4)
        children, j = [], i + 1
        for _ in range(n):
            child, j = node(j)
            children.append(child)
        return (size, desc, children), j

    tree, _ = node(start)
    return tree


def frame(desc):
    """'0xADDR: function (file:line)' -> 'function (file:line)'."""
    return re.sub(r"^0x[0-9A-Fa-f]+: ", "", desc)


def charge(tree, sites):
    size, desc, children = tree
    f = frame(desc)
    if BORING.search(f) and children:
        covered = 0
        for c in children:
            charge(c, sites)
            covered += c[0]
        if size > covered:  # below massif's threshold: stays with this frame
            sites[f] = sites.get(f, 0) + size - covered
    else:
        sites[f] = sites.get(f, 0) + size


def main():
    path, conns = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    size, _, children = parse_peak(path)
    sites = {}
    for c in children:
        charge(c, sites)
    print(f"peak heap {size:,} bytes; per connection {size / conns / 1024:.1f} KiB "
          f"(heap bytes requested, not resident pages)")
    print(f"{'bytes':>12} {'per conn':>9}  site")
    for f, b in sorted(sites.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{b:12,} {b / conns:9.0f}  {f[:150]}")


if __name__ == "__main__":
    main()
