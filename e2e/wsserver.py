#!/usr/bin/env python3
"""The e2e suite's Python dev server: http.server's file handler plus a /whoami page.

Started inside a workspace with the shim preloaded, it binds the address it is given (0.0.0.0
or ::1, as a dev would) and the shim moves it to the workspace address. It prints
"listening on ADDR:PORT" once bound (the address the kernel actually gave it).

  GET /whoami       -> "python <workspace dir name> <bound address>"
  GET /<file>       -> the file from the current directory (http.server's own handler)

usage: wsserver.py BIND_ADDR PORT

Unlike `python3 -m http.server`, it never calls socket.getfqdn(), which may query DNS.
"""
import http.server
import os
import socket
import socketserver
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=os.getcwd(), **kwargs)

    def do_GET(self):
        if self.path != "/whoami":
            return super().do_GET()
        host, port = self.server.socket.getsockname()[:2]
        body = ("python %s %s:%d\n" % (os.path.basename(os.getcwd()), host, port)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # keep the suite's logs small
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        if self.address_family == socket.AF_INET6:  # dual-stack, like http.server does
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # Not HTTPServer.server_bind: it calls socket.getfqdn(host), a possible DNS lookup.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]


def main():
    bind, port = sys.argv[1], int(sys.argv[2])
    Server.address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with Server((bind, port), Handler) as srv:
        host, bound_port = srv.socket.getsockname()[:2]
        print("listening on %s:%d" % (host, bound_port), flush=True)
        srv.serve_forever()


if __name__ == "__main__":
    main()
