#!/usr/bin/env python3
"""Where cmux-proxy's instructions go beyond bare pingora's (bench/callgrind.sh, CG_ANNOTATE=1).

Usage: callgrind-diff.py CMUX.annotate BARE.annotate REQUESTS TOP CMUX_PER_REQ BARE_PER_REQ

Each input is `callgrind_annotate --inclusive=yes --threshold=100 --auto=no` of one dump.
Entries are matched by file:function. pingora's generic code is instantiated for each
proxy's own types (HttpProxy<CmuxProxy> against HttpProxy<Bare>, cmux-proxy's FrontDoor
against pingora's blanket ServerApp impl): those type names are replaced by `App` so that
the two instantiations line up. Paths are shortened to the crate (or the std library).
"""
import re
import sys

APP = re.compile(
    r"cmux_proxy::proxy::hooks::CmuxProxy|pingora_bare::Bare|"
    r"cmux_proxy::front::dispatch::FrontDoor<H>|\bT(?= as pingora_core::apps::ServerApp>)"
)
ENTRY = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*?)(?: \[[^\]]*\])?$")


def load(path):
    """{file:function: inclusive instructions} from the function list of an annotation."""
    costs, in_list = {}, False
    for line in open(path, errors="replace"):
        if re.match(r"^Ir\s+file:function", line):
            in_list = True
            continue
        if not in_list:
            continue
        m = ENTRY.match(line)
        if not m:
            continue
        name = APP.sub("App", m.group(2).strip())
        name = re.sub(r"^/root/\.cargo/registry/src/[^/]+/", "", name)
        name = re.sub(r"^/rustc/[0-9a-f]+/", "", name)
        name = re.sub(r"^/work/[^/]+/", "", name)  # this repository: src/..., bench/...
        costs[name] = costs.get(name, 0) + int(m.group(1).replace(",", ""))
    return costs


def main():
    cmux_file, bare_file, reqs, top, cmux_total, bare_total = sys.argv[1:7]
    reqs, top = int(reqs), int(top)
    c, b = load(cmux_file), load(bare_file)
    diff = {k: (c.get(k, 0) - b.get(k, 0)) / reqs for k in set(c) | set(b)}
    print(f"# Inclusive instructions per small request: cmux-proxy {cmux_total}, "
          f"bare pingora {bare_total} (+{int(cmux_total) - int(bare_total)})")
    print(f"# callgrind, {reqs} keep-alive requests on one connection (bench/callgrind.sh,")
    print("# CG_ANNOTATE=1). Entries (file:function, inclusive: callees counted) by how much")
    print("# more cmux-proxy spends in them; nested entries repeat their callees' cost, so the")
    print("# rows do not add up. `App`: the proxy's own type (CmuxProxy / Bare, FrontDoor / T).")
    print(f"{'cmux':>8} {'bare':>8} {'diff':>8}  file:function")
    for k in sorted(diff, key=lambda k: -diff[k])[:top]:
        print(f"{c.get(k, 0) / reqs:8.0f} {b.get(k, 0) / reqs:8.0f} {diff[k]:+8.0f}  {k[:170]}")
    print("# ... and where bare pingora spends more:")
    for k in sorted(diff, key=lambda k: diff[k])[:15]:
        if diff[k] < -20:
            print(f"{c.get(k, 0) / reqs:8.0f} {b.get(k, 0) / reqs:8.0f} {diff[k]:+8.0f}  {k[:170]}")


if __name__ == "__main__":
    main()
