#!/usr/bin/env python3
"""Stress client for the e2e suite: CONC threads, each on its own keep-alive connection to the
proxy, send REQUESTS requests in all, each to a workspace picked in turn and routed either by
the routing headers or by a `<workspace>-<port>.localhost` Host. Every answer must come from
the server of the workspace asked for ("python <name> ..." from wsserver.py's /whoami).
Bounded: stops at DEADLINE seconds whatever happened.

usage: stress.py PROXY_PORT SERVER_PORT CONC REQUESTS DEADLINE NAME...
Prints "requests=R ok=X wrong=Y errors=Z seconds=S" and exits 0 only if every request was ok.
"""
import http.client
import sys
import threading
import time


def main():
    proxy_port, port, conc, total, deadline_s = (int(x) for x in sys.argv[1:6])
    names = sys.argv[6:]
    deadline = time.monotonic() + deadline_s
    counts = {"ok": 0, "wrong": 0, "errors": 0}
    samples = []
    lock = threading.Lock()

    def worker(tid):
        conn = None
        local = {"ok": 0, "wrong": 0, "errors": 0}
        for k in range(tid, total, conc):
            if time.monotonic() > deadline:
                local["errors"] += 1
                continue
            name = names[(k * 7 + tid) % len(names)]
            if k % 2:
                headers = {"X-Cmux-Port-Internal": str(port), "X-Cmux-Workspace-Internal": name}
            else:
                headers = {"Host": "%s-%d.localhost" % (name, port)}
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10)
                conn.request("GET", "/whoami", headers=headers)
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace")
                if resp.status == 200 and body.split()[:2] == ["python", name]:
                    local["ok"] += 1
                else:
                    local["wrong"] += 1
                    with lock:
                        samples.append("%s -> %d %r" % (name, resp.status, body[:100]))
                if resp.will_close:
                    conn.close()
                    conn = None
            except Exception as e:  # counted, and the connection is renewed
                local["errors"] += 1
                with lock:
                    samples.append("%s -> %s" % (name, e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            for key in counts:
                counts[key] += local[key]

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 15)
    for s in samples[:5]:
        print("  sample failure: " + s)
    print("requests=%d ok=%d wrong=%d errors=%d seconds=%.1f"
          % (total, counts["ok"], counts["wrong"], counts["errors"], time.monotonic() - start))
    sys.exit(0 if counts["ok"] == total else 1)


if __name__ == "__main__":
    main()
