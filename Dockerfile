# cmux-proxy image: the proxy, plus the LD_PRELOAD shim for the workspaces' processes.
# Not built by this repository's tests (its CI machines have no Docker engine): kept simple.
#
#   docker build -t cmux-proxy .
#   docker run -d --name cmux -p 8080:8080 cmux-proxy
#   # a shell in workspace 3 (a login shell, so it has the shim): its dev servers on any
#   # port are isolated at 127.18.0.3, e.g. one on 5173 is then reached with
#   docker exec -it cmux bash -lc 'mkdir -p /root/workspace-3 && cd /root/workspace-3 && exec bash -l'
#   curl -H 'Host: workspace-3-5173.localhost' http://127.0.0.1:8080/

# ---- build ---------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
# cmake: pingora's zlib-ng build script needs it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --bin cmux-proxy \
 && make -C ldpreload

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim
COPY --from=build /src/target/release/cmux-proxy /usr/local/bin/cmux-proxy
COPY --from=build /src/ldpreload/libworkspace_net.so /usr/local/lib/libworkspace_net.so
COPY conf/ /etc/cmux-proxy/

# The shim is deliberately NOT a global `ENV LD_PRELOAD`: the proxy must connect to the real
# workspace addresses, untouched. Workspace processes get it from login shells (the terminals
# and `bash -lc` commands of a workspace); outside /root/workspace-* it does nothing anyway.
# Elsewhere, start a workspace process with:
#   LD_PRELOAD=/usr/local/lib/libworkspace_net.so CMUX_WORKSPACE_INTERNAL=workspace-3 CMD...
RUN echo 'export LD_PRELOAD=/usr/local/lib/libworkspace_net.so' >/etc/profile.d/cmux-workspace.sh

EXPOSE 8080
# Healthy while the admin listener's /healthz answers 200: it turns 503 as soon as a shutdown
# begins. The conf leaves admin_listen at its default, 127.0.0.1:9091 inside the container;
# a CMUX_ADMIN_LISTEN given to `docker run` is followed (its port, on the loopback address).
# The slim image has no curl: bash's /dev/tcp sends the request.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD bash -c 'p=${CMUX_ADMIN_LISTEN:-127.0.0.1:9091}; exec 3<>"/dev/tcp/127.0.0.1/${p##*:}" && printf "GET /healthz HTTP/1.0\r\n\r\n" >&3 && read -r status <&3 && [[ $status == HTTP/1.?" 200 "* ]]'
# `env -u LD_PRELOAD`: even with `docker run -e LD_PRELOAD=...`, the proxy runs without it.
ENTRYPOINT ["/usr/bin/env", "-u", "LD_PRELOAD", "/usr/local/bin/cmux-proxy"]
CMD ["-c", "/etc/cmux-proxy/cmux-proxy.yaml"]
