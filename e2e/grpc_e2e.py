#!/usr/bin/env python3
"""gRPC through cmux-proxy, with real grpcio servers and clients (issue 18).

usage: grpc_e2e.py PROXY_BIN

Starts its own proxies and servers on loopback addresses only: grpcio servers at
127.18.0.7:P and 127.18.0.8:P (two workspaces, one port) and at 127.0.0.1, a TCP relay
that counts the proxy's upstream connections, and, when node is on PATH, a plain h2c
server. No protoc: the services are generic handlers on raw bytes. Prints PASS/FAIL per
check (SKIP, counted, for a check that cannot run here) and ends with "N passed, M failed,
K skipped"; exits 1 on any failure. Every wait is bounded.
"""

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

PROXY_BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/cmux-proxy"
HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1 << 20
BIG = 64 * MIB  # both ends raise gRPC's 4 MiB default message limit to this
MSG_OPTIONS = [
    ("grpc.max_receive_message_length", BIG),
    ("grpc.max_send_message_length", BIG),
]
# No proxy from the environment, and nothing but loopback.
CLIENT_OPTIONS = MSG_OPTIONS + [("grpc.enable_http_proxy", 0)]
SERVICE = "test.Echo"

PASSED = 0
FAILED = 0
SKIPPED = 0


def skip(desc):
    """A check that could not run here: printed and counted, never silent."""
    global SKIPPED
    SKIPPED += 1
    print(f"SKIP grpc: {desc}", flush=True)


def check(desc, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"PASS grpc: {desc}", flush=True)
    else:
        FAILED += 1
        print(f"FAIL grpc: {desc}  [{str(detail)[:300]}]", flush=True)


def expect(desc, got, want):
    check(desc, got == want, f"got: {got!r} want: {want!r}")


# ---- servers --------------------------------------------------------------------------


class Events:
    """What the servers saw of calls that end early, keyed by the request's name."""

    def __init__(self):
        self.lock = threading.Lock()
        self.started = {}
        self.ended = {}
        self.cancelled = {}
        self.time_remaining = {}

    def event(self, table, name):
        with self.lock:
            return table.setdefault(name, threading.Event())


EVENTS = Events()


def make_handlers(name):
    """The test service of the server called `name` (it says so in each answer)."""
    tag = name.encode()

    def unary(req, ctx):
        if req.startswith(b"fail:"):
            # An application error: its status and message travel as trailers.
            ctx.abort(grpc.StatusCode.NOT_FOUND, req[5:].decode())
        ctx.set_trailing_metadata((("x-served-by", name), ("x-trailer", "t1")))
        return tag + b":" + req

    def big_echo(req, ctx):
        # A digest of what came, then as many bytes back.
        return hashlib.sha256(req).digest() + req[::-1]

    def server_stream(req, ctx):
        for i in range(int(req)):
            yield tag + b":" + str(i).encode()

    def client_stream(it, ctx):
        parts = [m for m in it]
        return tag + b":" + b"|".join(parts)

    def client_stream_gated(it, ctx):
        # Says (EVENTS.started, keyed by the first message) when the first message has
        # arrived, while the client still holds the rest back.
        parts = []
        for m in it:
            if not parts:
                EVENTS.event(EVENTS.started, m.decode()).set()
            parts.append(m)
        return tag + b":" + b"|".join(parts)

    def bidi(it, ctx):
        for m in it:
            yield tag + b":" + m.upper()

    def wait(req, ctx):
        key = req.decode()
        EVENTS.time_remaining[key] = ctx.time_remaining()
        EVENTS.event(EVENTS.started, key).set()
        end = time.monotonic() + 20
        while ctx.is_active() and time.monotonic() < end:
            time.sleep(0.02)
        EVENTS.cancelled[key] = not ctx.is_active()
        EVENTS.event(EVENTS.ended, key).set()
        return b"finished"

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "BigEcho": grpc.unary_unary_rpc_method_handler(big_echo),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "ClientStreamGated": grpc.stream_unary_rpc_method_handler(client_stream_gated),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
            "Wait": grpc.unary_unary_rpc_method_handler(wait),
        },
    )


def start_server(name, addr):
    """A grpcio server at addr (port 0: any); returns (server, port) or (None, 0)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=MSG_OPTIONS)
    server.add_generic_rpc_handlers((make_handlers(name),))
    try:
        port = server.add_insecure_port(addr)
    except RuntimeError:
        return None, 0
    if port == 0:
        return None, 0
    server.start()
    return server, port


def two_workspaces_one_port():
    """Servers at 127.18.0.7:P and 127.18.0.8:P; a few tries to find a P free on both."""
    for _ in range(20):
        a, port = start_server("workspace-7", "127.18.0.7:0")
        if a is None:
            continue
        b, port_b = start_server("workspace-8", f"127.18.0.8:{port}")
        if b is not None and port_b == port:
            return a, b, port
        a.stop(0)
    raise SystemExit("no port free in both workspaces")


class CountingRelay:
    """A TCP relay in front of a server that counts the connections it accepts."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            try:
                u = socket.create_connection(self.target, timeout=5)
            except OSError:
                c.close()
                continue
            u.settimeout(None)
            for src, dst in ((c, u), (u, c)):
                threading.Thread(target=self.pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def unanswering_target():
    """A listener whose accept queue is full: SYNs get no answer (a connect timeout)."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.settimeout(0.3)
        try:
            s.connect(lst.getsockname())
            fillers.append(s)
        except OSError:
            s.close()
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect(lst.getsockname())
        full = False
    except OSError:
        full = True
    probe.close()
    return lst, fillers, full


# ---- the proxy ------------------------------------------------------------------------


class Proxy:
    def __init__(self, *extra):
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="cmux-grpc-proxy-", suffix=".log")
        args = [PROXY_BIN, "--listen", self.addr, "--admin-listen", "off",
                "--access-log", "off", *extra]
        # None of the caller's CMUX_* settings (an exported CMUX_AUTH_TOKEN_FILE would
        # turn every call into UNAUTHENTICATED).
        env = {k: v for k, v in os.environ.items() if not k.startswith("CMUX_")}
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise SystemExit(f"proxy did not start: {open(self.log.name).read()[-300:]}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def channel(proxy, authority=None):
    options = list(CLIENT_OPTIONS)
    if authority:
        options.append(("grpc.default_authority", authority))
    return grpc.insecure_channel(proxy.addr, options=options)


def stubs(ch):
    m = f"/{SERVICE}/"
    return {
        "unary": ch.unary_unary(m + "Unary"),
        "big": ch.unary_unary(m + "BigEcho"),
        "server_stream": ch.unary_stream(m + "ServerStream"),
        "client_stream": ch.stream_unary(m + "ClientStream"),
        "client_stream_gated": ch.stream_unary(m + "ClientStreamGated"),
        "bidi": ch.stream_stream(m + "Bidi"),
        "wait": ch.unary_unary(m + "Wait"),
    }


def route(port, ws=None, *more):
    md = [("x-cmux-port-internal", str(port))]
    if ws:
        md.append(("x-cmux-workspace-internal", ws))
    return md + list(more)


def rpc_error(fn):
    """Runs fn; returns the grpc.RpcError it raised, or None."""
    try:
        fn()
    except grpc.RpcError as e:
        return e
    return None


# ---- checks ---------------------------------------------------------------------------


def check_kinds(ch, md, ws, how):
    """Each RPC kind once over channel `ch` with metadata `md`, answered by the server of
    workspace `ws`; `how` names the way in the check's description."""
    s = stubs(ch)
    resp, call = s["unary"].with_call(b"hello", metadata=md, timeout=10)
    expect(f"unary to {ws} by {how}", resp, ws.encode() + b":hello")
    trailers = dict(call.trailing_metadata())
    expect(f"unary to {ws} by {how}: trailing metadata passes",
           (trailers.get("x-served-by"), trailers.get("x-trailer")), (ws, "t1"))
    got = [m for m in s["server_stream"](b"5", metadata=md, timeout=10)]
    expect(f"server streaming from {ws} by {how}", got,
           [f"{ws}:{i}".encode() for i in range(5)])
    got = s["client_stream"](iter([b"a", b"b", b"c"]), metadata=md, timeout=10)
    expect(f"client streaming to {ws} by {how}", got, ws.encode() + b":a|b|c")
    got = [m for m in s["bidi"](iter([b"x", b"y", b"z"]), metadata=md, timeout=10)]
    expect(f"bidi streaming with {ws} by {how}", got,
           [ws.encode() + b":" + c for c in (b"X", b"Y", b"Z")])
    ch.close()


def check_rpc_kinds(proxy, port):
    """Every RPC kind to both workspaces, by headers and by the .localhost authority."""
    for ws in ("workspace-7", "workspace-8"):
        check_kinds(channel(proxy), route(port, ws), ws, "headers")
        check_kinds(channel(proxy, f"{ws}-{port}.localhost:{proxy.port}"), [], ws, ".localhost")


def check_bidi_interleaved(proxy, port):
    """A bidi stream where each answer comes before the next message is sent."""
    ch = channel(proxy)
    s = stubs(ch)
    queue = []
    cond = threading.Condition()
    done = []

    late = []  # messages whose answer did not come before the next message was due

    def requests():
        for i in range(5):
            yield f"m{i}".encode()
            with cond:
                if not cond.wait_for(lambda: len(queue) > i or done, timeout=5):
                    late.append(i)
                    return  # end the stream: the next message waits for this answer

    answers = []
    error = None
    try:
        for m in s["bidi"](requests(), metadata=route(port, "workspace-7"), timeout=15):
            with cond:
                queue.append(m)
                answers.append(m)
                cond.notify_all()
    except grpc.RpcError as e:
        error = e
    finally:
        with cond:
            done.append(True)
            cond.notify_all()
    check("bidi streaming: each answer came before the next message was sent (5 s each)",
          not late and error is None,
          f"no answer in time to message(s) {late}; error {error and error.code()}")
    expect("bidi streaming, one message at a time each way", answers,
           [f"workspace-7:M{i}".encode() for i in range(5)])
    ch.close()


def check_client_stream_unbuffered(proxy, port):
    """A client stream is passed on as it is sent: the server has the first message while
    the client still holds the next ones back (it sends them only after that), so a
    proxy that buffered the request stream would fail here."""
    ch = channel(proxy)
    s = stubs(ch)
    key = "client-stream-first"
    seen = []

    def requests():
        yield key.encode()
        seen.append(EVENTS.event(EVENTS.started, key).wait(5))
        yield b"b"
        yield b"c"

    try:
        resp = s["client_stream_gated"](requests(), metadata=route(port, "workspace-7"),
                                        timeout=20)
    except grpc.RpcError as e:
        resp = e.code()
    check("client streaming: the server had the first message before the client sent the "
          "next (5 s)", seen == [True], seen)
    expect("client streaming, unbuffered: the whole stream arrives", resp,
           b"workspace-7:" + key.encode() + b"|b|c")
    ch.close()


def check_status_and_trailers(proxy, port):
    ch = channel(proxy)
    s = stubs(ch)
    e = rpc_error(lambda: s["unary"](b"fail:no such thing: 100% \xc3\xa9",
                                     metadata=route(port, "workspace-8"), timeout=10))
    expect("an application error status passes (grpc-status trailer)",
           e and e.code(), grpc.StatusCode.NOT_FOUND)
    expect("its grpc-message passes, percent-encoding and all",
           e and e.details(), "no such thing: 100% é")
    ch.close()


def check_large(proxy, port):
    ch = channel(proxy)
    s = stubs(ch)
    payload = os.urandom(5 * MIB + 123)
    start = time.monotonic()
    resp = s["big"](payload, metadata=route(port, "workspace-7"), timeout=60)
    took = time.monotonic() - start
    ok = (resp[:32] == hashlib.sha256(payload).digest() and resp[32:] == payload[::-1])
    check(f"a 5 MiB request and a 5 MiB response pass intact ({took:.2f} s)", ok,
          f"len {len(resp)}")
    ch.close()


def check_cancel_and_deadline(proxy, port):
    ch = channel(proxy)
    s = stubs(ch)
    md = route(port, "workspace-7")
    # Cancellation: the server's call ends (the proxy resets the upstream stream).
    fut = s["wait"].future(b"cancel-1", metadata=md, timeout=30)
    started = EVENTS.event(EVENTS.started, "cancel-1").wait(10)
    check("the server got the call that will be cancelled", started)
    t0 = time.monotonic()
    fut.cancel()
    ended = EVENTS.event(EVENTS.ended, "cancel-1").wait(10)
    check(f"a client's cancellation reaches the server "
          f"({time.monotonic() - t0:.2f} s)", ended and EVENTS.cancelled.get("cancel-1"),
          EVENTS.cancelled)
    # A deadline: grpc-timeout reaches the server, and so does the end of the call.
    e = rpc_error(lambda: s["wait"](b"deadline-1", metadata=md, timeout=1.0))
    expect("a deadline ends the call with DEADLINE_EXCEEDED", e and e.code(),
           grpc.StatusCode.DEADLINE_EXCEEDED)
    remaining = EVENTS.time_remaining.get("deadline-1")
    check("the client's deadline reached the server (grpc-timeout)",
          remaining is not None and 0 < remaining <= 1.5, remaining)
    ended = EVENTS.event(EVENTS.ended, "deadline-1").wait(10)
    check("the server's call ended with the deadline",
          ended and EVENTS.cancelled.get("deadline-1"), EVENTS.cancelled)
    ch.close()


def check_pooling(proxy, server_port):
    """The proxy's h2c connections to a target are reused and multiplexed."""
    relay = CountingRelay(server_port)
    for i in range(20):
        ch = channel(proxy)  # a new client connection each time
        stubs(ch)["unary"](b"seq", metadata=route(relay.port), timeout=10)
        ch.close()
    expect("20 calls over 20 client connections: 1 upstream h2c connection",
           relay.accepted, 1)
    chans = [channel(proxy) for _ in range(8)]
    calls = []
    for i in range(64):
        calls.append(stubs(chans[i % 8])["unary"].future(
            b"par", metadata=route(relay.port), timeout=20))
    ok = sum(1 for c in calls if c.result() == b"local:par")
    expect("64 concurrent calls from 8 clients all answered", ok, 64)
    check(f"... over {relay.accepted} upstream connection(s) in all (multiplexed)",
          relay.accepted <= 4, relay.accepted)
    for c in chans:
        c.close()


def http502_text(proxy, port):
    out = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--max-time", "10", "-H",
         f"X-Cmux-Port-Internal: {port}", "-H", "X-Cmux-Wait-Ms: 0",
         f"http://{proxy.addr}/"], capture_output=True, text=True)
    return out.stdout.strip()


def check_errors(proxy, slow_proxy):
    """The proxy's own errors are gRPC statuses with the error table's message."""
    ch = channel(proxy)
    s = stubs(ch)
    closed = free_port()
    e = rpc_error(lambda: s["unary"](b"x", metadata=route(closed, None, ("x-cmux-wait-ms", "0")),
                                     timeout=10))
    print(f"  a gRPC client sees: code={e and e.code()} details={e and e.details()!r}")
    expect("closed port: UNAVAILABLE", e and e.code(), grpc.StatusCode.UNAVAILABLE)
    expect("closed port: the same message as the HTTP 502 port_closed",
           e and e.details(), http502_text(proxy, closed))
    expect("closed port: x-cmux-error trailing metadata says port_closed",
           e and dict(e.trailing_metadata()).get("x-cmux-error"), "port_closed")
    e = rpc_error(lambda: s["unary"](b"x", metadata=[("x-cmux-port-internal", "abc")], timeout=10))
    expect("bad routing header: INVALID_ARGUMENT", e and e.code(),
           grpc.StatusCode.INVALID_ARGUMENT)
    check("bad routing header: the message names the header",
          e and "X-Cmux-Port-Internal" in e.details(), e and e.details())
    e = rpc_error(lambda: s["unary"](b"x", metadata=[], timeout=10))
    expect("no routing at all: INVALID_ARGUMENT", e and e.code(),
           grpc.StatusCode.INVALID_ARGUMENT)
    e = rpc_error(lambda: s["unary"](
        b"x", metadata=route(closed, None, ("x-cmux-upstream-protocol", "spdy")), timeout=10))
    expect("bad X-Cmux-Upstream-Protocol: INVALID_ARGUMENT", e and e.code(),
           grpc.StatusCode.INVALID_ARGUMENT)
    e = rpc_error(lambda: s["unary"](b"x", metadata=route(proxy.port), timeout=10))
    expect("the proxy's own port (loop): FAILED_PRECONDITION", e and e.code(),
           grpc.StatusCode.FAILED_PRECONDITION)
    lst, fillers, full = unanswering_target()
    if full:
        sch = channel(slow_proxy)
        t0 = time.monotonic()
        e = rpc_error(lambda: stubs(sch)["unary"](
            b"x", metadata=route(lst.getsockname()[1]), timeout=10))
        expect(f"connect timeout: DEADLINE_EXCEEDED ({time.monotonic() - t0:.2f} s)",
               e and e.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        check("connect timeout: the message says so",
              e and e.details().startswith("timed out connecting to 127.0.0.1:"),
              e and e.details())
        sch.close()
    else:
        check("the full-backlog trick holds here (for the connect timeout)", False)
    for f in fillers:
        f.close()
    lst.close()
    ch.close()


def check_tokens(port):
    tokens = tempfile.NamedTemporaryFile("w", prefix="cmux-grpc-tokens-")
    tokens.write("s3cret-token\n")
    tokens.flush()
    proxy = Proxy("--auth-token-file", tokens.name)
    try:
        ch = channel(proxy)
        s = stubs(ch)
        e = rpc_error(lambda: s["unary"](b"t", metadata=route(port, "workspace-7"), timeout=10))
        expect("tokens required, none sent: UNAUTHENTICATED", e and e.code(),
               grpc.StatusCode.UNAUTHENTICATED)
        md = route(port, "workspace-7", ("x-cmux-token", "s3cret-token"))
        expect("tokens required, token sent: served",
               s["unary"](b"t", metadata=md, timeout=10), b"workspace-7:t")
        ch.close()
    finally:
        proxy.stop()


def check_plain_h2c(proxy):
    """curl --http2-prior-knowledge to a plain (not gRPC) h2c server, asked for by header."""
    node = shutil.which("node")
    if not node:
        skip("plain h2c upstream (no node on PATH)")
        return
    srv = subprocess.Popen([node, os.path.join(HERE, "h2c_server.js"), "127.0.0.1"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = srv.stdout.readline().strip()
        port = int(line.rsplit(":", 1)[1])
        lines = []
        # One curl run per request: a new client connection each time (curl 7.88 cannot
        # reuse an h2c connection of its own anyway).
        for i in range(10):
            out = subprocess.run(
                ["curl", "-sS", "--noproxy", "*", "--max-time", "10",
                 "--http2-prior-knowledge", "-w", " %{http_version}",
                 "-H", "X-Cmux-Upstream-Protocol: h2c", "-H", f"X-Cmux-Port-Internal: {port}",
                 f"http://{proxy.addr}/n{i}"], capture_output=True, text=True)
            lines.append(out.stdout.replace("\n", ""))
        out = "\n".join(lines)
        expect("curl h2c -> proxy -> h2c server: 10 answers, HTTP/2 on both sides",
               [(l.split(" ")[0], l.split(" ")[-1]) for l in lines],
               [(f"/n{i}", "2") for i in range(10)])
        check("... carrying the forwarding headers, without the steering headers",
              all("via=1.1 cmux-proxy" in l and "proto-header=-" in l
                  and f"xfh={proxy.addr} " in l for l in lines), out)
        # The Via value holds a space: fields are found by name, not by position.
        sessions = {f for l in lines for f in l.split(" ") if f.startswith("session=")}
        expect("... 10 client connections, one upstream connection (session=N of every answer)",
               (len(sessions), sum(1 for l in lines if " session=" in l)), (1, 10))
    finally:
        srv.terminate()
        srv.wait(5)


# ---- through an edge (issue 19) -------------------------------------------------------

EDGE_SUFFIX = "machines.test"
EDGE_DOMAIN = "edge.test"


class Dns:
    """dnsmasq on loopback answering only its own records (never forwarding): machine m1
    is the node proxy, by an SRV record that names its port."""

    def __init__(self, node_port):
        binary = "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else "dnsmasq"
        self.dir = tempfile.TemporaryDirectory(prefix="cmux-grpc-dns-")
        hosts = os.path.join(self.dir.name, "hosts")
        with open(hosts, "w") as f:
            f.write(f"127.0.0.1 m1.{EDGE_SUFFIX}\n")
        for _ in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [binary, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
                 "--conf-file=/dev/null", "--listen-address=127.0.0.1", "--bind-interfaces",
                 "--user=root", f"--port={self.port}", f"--local=/{EDGE_SUFFIX}/",
                 f"--addn-hosts={hosts}", "--local-ttl=30",
                 f"--pid-file={os.path.join(self.dir.name, 'pid')}",
                 f"--srv-host=_cmux._tcp.m1.{EDGE_SUFFIX},m1.{EDGE_SUFFIX},{node_port}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.answers():
                    return
                time.sleep(0.05)
            self.proc.kill()
            self.proc.wait(5)
        raise SystemExit("dnsmasq did not start")

    def answers(self):
        """Whether dnsmasq answers a query for m1's A record (a hand-made DNS query)."""
        name = b"".join(bytes([len(p)]) + p for p in f"m1.{EDGE_SUFFIX}".encode().split(b"."))
        query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name + b"\x00\x00\x01\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(query, ("127.0.0.1", self.port))
                return s.recv(512)[:2] == b"\x12\x34"
            except OSError:
                return False

    def stop(self):
        self.proc.kill()
        self.proc.wait(5)
        self.dir.cleanup()


def check_through_edge(node, port):
    """gRPC through an edge and a node: the edge finds the node through DNS and speaks h2c
    to it; every RPC kind, by headers and by the edge's Host form; an unknown machine is
    a gRPC status."""
    dns = Dns(node.port)
    edge = Proxy("--mode", "edge", "--machine-dns-suffix", EDGE_SUFFIX,
                 "--edge-domain", EDGE_DOMAIN, "--dns-servers", f"127.0.0.1:{dns.port}")
    try:
        ws = "workspace-7"
        md = route(port, ws, ("x-cmux-machine-internal", "m1"))
        check_kinds(channel(edge), md, ws, "edge headers")
        host = f"{ws}-{port}--m1.{EDGE_DOMAIN}:{edge.port}"
        check_kinds(channel(edge, host), [], ws, "edge Host")
        ch = channel(edge)
        md = route(port, ws, ("x-cmux-machine-internal", "nosuch"))
        err = rpc_error(lambda: stubs(ch)["unary"](b"x", metadata=md, timeout=10))
        got = None
        if err is not None:
            trailers = dict(err.trailing_metadata() or ())
            got = (err.code(), trailers.get("x-cmux-error"))
        expect("edge: an unknown machine is UNAVAILABLE machine_unknown", got,
               (grpc.StatusCode.UNAVAILABLE, "machine_unknown"))
        ch.close()
    finally:
        edge.stop()
        dns.stop()


def main():
    if not os.access(PROXY_BIN, os.X_OK):
        raise SystemExit(f"no proxy binary at {PROXY_BIN}")
    a, b, port = two_workspaces_one_port()
    local, local_port = start_server("local", "127.0.0.1:0")
    # Also the node behind the edge of check_through_edge, which sends no node_token: the
    # node answers the edge's Host names because they are in its public_hosts.
    proxy = Proxy("--public-hosts", f"*.{EDGE_DOMAIN}")
    slow = Proxy("--connect-timeout-ms", "400")
    try:
        check_rpc_kinds(proxy, port)
        check_bidi_interleaved(proxy, port)
        check_client_stream_unbuffered(proxy, port)
        check_status_and_trailers(proxy, port)
        check_large(proxy, port)
        check_cancel_and_deadline(proxy, port)
        check_pooling(proxy, local_port)
        check_errors(proxy, slow)
        check_tokens(port)
        check_plain_h2c(proxy)
        check_through_edge(proxy, port)
        alive = proxy.proc.poll() is None
        check("the proxy is still running", alive)
    finally:
        for p in (proxy, slow):
            p.stop()
        for s in (a, b, local):
            s.stop(0)
    print(f"{PASSED} passed, {FAILED} failed, {SKIPPED} skipped")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
