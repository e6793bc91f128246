#!/usr/bin/env python3
"""The workspace name -> address rule of spec/routing.md, a third implementation beside the
proxy's (Rust) and the shim's (C). The e2e suite first checks it against every row of
spec/workspace-addresses.tsv, then uses it to name stress workspaces and to predict where
their servers listen.

usage: wsname.py NAME...           print each name's address (or 'error')
       wsname.py --check FILE.tsv  check every row of the vectors file; exit 1 on a mismatch
       wsname.py --pick N          print N "name address" lines for the stress workspaces:
                                   numbered and hashed names mixed, no two on one address
"""
import sys

ALLOWED = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/")


def address(name):
    """'127.18.x.y' for a workspace name (str or bytes), or None if the name is refused."""
    raw = name.encode() if isinstance(name, str) else name
    raw = raw.strip(b" \t")
    if not raw or any(c not in ALLOWED for c in raw):
        return None
    base = raw.rsplit(b"/", 1)[-1]
    if not base:
        return None
    digits = len(base) - len(base.rstrip(b"0123456789"))
    if digits:
        n = int(base[-digits:])
        if not 1 <= n <= 65535:
            return None
    else:
        h = 0x811C9DC5
        for c in base.lower():
            h = ((h ^ c) * 0x01000193) & 0xFFFFFFFF
        n = h & 0xFFFF
    return "127.18.%d.%d" % (n >> 8, n & 255)


def check(path):
    bad = rows = 0
    with open(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if not line or line.startswith(b"#"):
                continue
            name, want = line.rsplit(b"\t", 1)
            name = name[1:-1]  # between the | bars
            got = address(name) or "error"
            rows += 1
            if got != want.decode():
                bad += 1
                print("mismatch: %r -> %s, want %s" % (name, got, want.decode()))
    print("%d rows, %d mismatches" % (rows, bad))
    return 1 if bad or rows == 0 else 0


def letters(i):
    s = ""
    while True:
        s = chr(ord("a") + i % 26) + s
        i = i // 26 - 1
        if i < 0:
            return s


def pick(n, reserved=range(1, 10)):
    """Odd workspaces are numbered (workspace-1001...), even ones have letter names whose
    address comes from the hash: both routes of the rule run in the stress test."""
    taken = {address("workspace-%d" % r) for r in reserved}
    out, i = [], 0
    while len(out) < n:
        i += 1
        name = "workspace-%d" % (1000 + i) if i % 2 else "workspace-h" + letters(i * 37)
        addr = address(name)
        if addr and addr not in taken:
            taken.add(addr)
            out.append((name, addr))
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    if len(sys.argv) == 3 and sys.argv[1] == "--pick":
        for name, addr in pick(int(sys.argv[2])):
            print(name, addr)
        sys.exit(0)
    for arg in sys.argv[1:]:
        print(address(arg) or "error")
