/*
 * libworkspace_net.so: an LD_PRELOAD shim that gives every workspace its own loopback address.
 *
 * A process started inside workspace N (see init_once for how N is found) gets:
 *   bind     0.0.0.0 / 127.0.0.1            -> 127.18.x.y (its workspace address)
 *            :: / ::1 on a dual-stack socket -> ::ffff:127.18.x.y (IPv4-mapped)
 *            :: / ::1 on a v6-only socket    -> refused with EADDRNOTAVAIL (see bind_v6)
 *   listen   on a never-bound socket          -> bound to the workspace address first
 *   connect, sendto, sendmsg
 *            127.0.0.1, 0.0.0.0, ::1, ::     -> the workspace address, except to port 53
 *                                               and CMUX_PRELOAD_HOST_PORTS
 *            another workspace's 127.18.x.y  -> passes, or ECONNREFUSED in strict mode
 *   getaddrinfo("localhost")                 -> the workspace address (mapped for AF_INET6)
 * Everything else passes through untouched to the next definition (dlsym(RTLD_NEXT)).
 *
 * Rules this file keeps:
 *  - bind/connect/sendto/sendmsg/listen are async-signal-safe in libc, so their paths here use
 *    no malloc, no stdio, no locks: only stack buffers, syscalls and write(2) for logging.
 *    The workspace is detected once, from a constructor, so that a signal handler never runs
 *    the detection itself.
 *  - errno: a call we pass through leaves errno to the real function; our own helper calls
 *    (getsockopt, write) never leak their errno to the caller.
 *  - getaddrinfo results we build are tracked, so freeaddrinfo frees exactly those and hands
 *    every other list to the real freeaddrinfo.
 *  - A refused workspace name is reported once per process tree, not once per exec: the
 *    constructor (and only it, before main) sets CMUX_PRELOAD_WARNED for the children.
 */
#define _DEFAULT_SOURCE /* not _GNU_SOURCE: it turns the sockaddr prototypes into unions */

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wsname.h"

#ifndef RTLD_NEXT
#define RTLD_NEXT ((void *)-1L) /* glibc's value; declared only under _GNU_SOURCE */
#endif

#define EXPORT __attribute__((visibility("default")))

/* ------------------------------------------------------------------------------------------ */
/* State, written once by init_once() and read-only afterwards.                               */

#define MAX_HOST_PORTS 64

static struct {
    int active;      /* rewriting is on */
    int strict;      /* refuse other workspaces' addresses */
    int log;         /* log each rewrite to stderr */
    uint32_t ws_be;  /* workspace address, network byte order */
    char name[96];   /* workspace name for log lines (sanitized) */
    uint16_t host_ports[MAX_HOST_PORTS]; /* destination ports left on the host, network order */
    int n_host_ports;
    int refused;     /* the workspace name was refused: the constructor marks the environment */
    char refused_name[PATH_MAX]; /* that name, unsanitized, for the mark ("" if too long) */
} g;

/* Set by the first process that reports a refused name, to that name; inherited by its
 * children, which then stay quiet about the same name (see init_once). */
#define WARNED_VAR "CMUX_PRELOAD_WARNED"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_ready;

static int (*real_bind)(int, const struct sockaddr *, socklen_t);
static int (*real_connect)(int, const struct sockaddr *, socklen_t);
static int (*real_listen)(int, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static int (*real_getaddrinfo)(const char *, const char *, const struct addrinfo *,
                               struct addrinfo **);
static void (*real_freeaddrinfo)(struct addrinfo *);

static void init_once(void);

static inline void ensure_init(void)
{
    if (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE)) pthread_once(&g_once, init_once);
}

/* ------------------------------------------------------------------------------------------ */
/* Logging with write(2) only: usable inside async-signal-safe paths.                         */

struct logbuf {
    char b[320];
    size_t n;
};

static void lb_str(struct logbuf *l, const char *s)
{
    while (*s && l->n < sizeof l->b - 1) l->b[l->n++] = *s++;
}

static void lb_uint(struct logbuf *l, unsigned long v)
{
    char tmp[24];
    int i = 0;
    do { tmp[i++] = (char)('0' + v % 10); v /= 10; } while (v && i < (int)sizeof tmp);
    while (i > 0 && l->n < sizeof l->b - 1) l->b[l->n++] = tmp[--i];
}

static void lb_hex16(struct logbuf *l, unsigned v)
{
    static const char hex[] = "0123456789abcdef";
    int started = 0;
    for (int shift = 12; shift >= 0; shift -= 4) {
        unsigned d = (v >> shift) & 0xF;
        if (d || started || shift == 0) {
            started = 1;
            if (l->n < sizeof l->b - 1) l->b[l->n++] = hex[d];
        }
    }
}

static void lb_v4(struct logbuf *l, uint32_t a_be)
{
    const unsigned char *p = (const unsigned char *)&a_be;
    for (int i = 0; i < 4; i++) {
        if (i) lb_str(l, ".");
        lb_uint(l, p[i]);
    }
}

static int v6_is_mapped(const struct in6_addr *a);
static uint32_t v6_mapped_v4(const struct in6_addr *a);

static void lb_v6(struct logbuf *l, const struct in6_addr *a)
{
    static const struct in6_addr any = IN6ADDR_ANY_INIT, lo = IN6ADDR_LOOPBACK_INIT;
    if (!memcmp(a, &any, sizeof any)) { lb_str(l, "::"); return; }
    if (!memcmp(a, &lo, sizeof lo)) { lb_str(l, "::1"); return; }
    if (v6_is_mapped(a)) { lb_str(l, "::ffff:"); lb_v4(l, v6_mapped_v4(a)); return; }
    for (int i = 0; i < 8; i++) { /* uncompressed form is fine for a log line */
        if (i) lb_str(l, ":");
        lb_hex16(l, (unsigned)(a->s6_addr[2 * i] << 8 | a->s6_addr[2 * i + 1]));
    }
}

static void lb_sockaddr(struct logbuf *l, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        lb_v4(l, in->sin_addr.s_addr);
        lb_str(l, ":");
        lb_uint(l, ntohs(in->sin_port));
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        lb_str(l, "[");
        lb_v6(l, &in6->sin6_addr);
        lb_str(l, "]:");
        lb_uint(l, ntohs(in6->sin6_port));
    }
}

static void lb_begin(struct logbuf *l)
{
    l->n = 0;
    lb_str(l, "cmux-preload[");
    lb_uint(l, (unsigned long)getpid());
    lb_str(l, "]: ");
}

static void lb_flush(struct logbuf *l)
{
    int saved = errno;
    l->b[l->n++] = '\n'; /* lb_* always keep one byte free */
    ssize_t off = 0;
    while (off < (ssize_t)l->n) {
        ssize_t w = write(STDERR_FILENO, l->b + off, l->n - (size_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += w;
    }
    errno = saved;
}

/* "cmux-preload[pid]: OP FROM -> TO (workspace)" */
static void log_rewrite(const char *op, const struct sockaddr *from, const struct sockaddr *to)
{
    if (!g.log) return;
    struct logbuf l;
    lb_begin(&l);
    lb_str(&l, op);
    lb_str(&l, " ");
    lb_sockaddr(&l, from);
    lb_str(&l, " -> ");
    if (to) lb_sockaddr(&l, to); else lb_str(&l, "refused");
    lb_str(&l, " (");
    lb_str(&l, g.name);
    lb_str(&l, ")");
    lb_flush(&l);
}

static void log_msg(const char *a, const char *b, const char *c)
{
    struct logbuf l;
    lb_begin(&l);
    lb_str(&l, a);
    if (b) lb_str(&l, b);
    if (c) lb_str(&l, c);
    lb_flush(&l);
}

/* ------------------------------------------------------------------------------------------ */
/* Real functions, with raw syscalls as the fallback should dlsym ever come back empty (for    */
/* instance a call that arrives while another library's constructor runs before ours).        */

static int call_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    if (real_bind) return real_bind(fd, sa, len);
    return (int)syscall(SYS_bind, fd, sa, len);
}

static int call_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    if (real_connect) return real_connect(fd, sa, len);
    return (int)syscall(SYS_connect, fd, sa, len);
}

static int call_listen(int fd, int backlog)
{
    if (real_listen) return real_listen(fd, backlog);
    return (int)syscall(SYS_listen, fd, backlog);
}

static ssize_t call_sendto(int fd, const void *buf, size_t n, int flags,
                           const struct sockaddr *sa, socklen_t len)
{
    if (real_sendto) return real_sendto(fd, buf, n, flags, sa, len);
    return syscall(SYS_sendto, fd, buf, n, flags, sa, len);
}

static ssize_t call_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (real_sendmsg) return real_sendmsg(fd, msg, flags);
    return syscall(SYS_sendmsg, fd, msg, flags);
}

static void resolve_real_symbols(void)
{
    real_bind = dlsym(RTLD_NEXT, "bind");
    real_connect = dlsym(RTLD_NEXT, "connect");
    real_listen = dlsym(RTLD_NEXT, "listen");
    real_sendto = dlsym(RTLD_NEXT, "sendto");
    real_sendmsg = dlsym(RTLD_NEXT, "sendmsg");
    real_getaddrinfo = dlsym(RTLD_NEXT, "getaddrinfo");
    real_freeaddrinfo = dlsym(RTLD_NEXT, "freeaddrinfo");
}

/* ------------------------------------------------------------------------------------------ */
/* Workspace detection.                                                                       */

static int env_true(const char *var)
{
    const char *v = getenv(var);
    if (!v || !*v) return 0;
    return strcmp(v, "0") && strcmp(v, "false") && strcmp(v, "no") && strcmp(v, "off");
}

/* If cwd lies in ROOT/workspace-*, copy that component into out. root may end in '/'. */
static int ws_component_under(const char *cwd, const char *root, char *out, size_t outsz)
{
    size_t rl = strlen(root);
    while (rl > 0 && root[rl - 1] == '/') rl--;
    if (strncmp(cwd, root, rl) != 0 || cwd[rl] != '/') return 0;
    const char *comp = cwd + rl + 1;
    size_t cl = strcspn(comp, "/");
    if (cl < 10 || strncmp(comp, "workspace-", 10) != 0 || cl >= outsz) return 0;
    memcpy(out, comp, cl);
    out[cl] = '\0';
    return 1;
}

/* The workspace named by the current directory: the directory itself or any parent that is a
 * `workspace-*` directly under the root. getcwd() is already canonical, so the root is tried
 * both as given and canonicalized (a root reached through a symlink still matches). */
static int ws_from_cwd(char *out, size_t outsz)
{
    char cwd[PATH_MAX], real_root[PATH_MAX];
    const char *root = getenv("CMUX_WORKSPACE_ROOT");
    if (!root || !*root) root = "/root";
    if (!getcwd(cwd, sizeof cwd)) return 0;
    if (ws_component_under(cwd, root, out, outsz)) return 1;
    if (realpath(root, real_root) && ws_component_under(cwd, real_root, out, outsz)) return 1;
    return 0;
}

/* Copies name into dst with anything unprintable escaped, so a log line stays one line. */
static void sanitize(char *dst, size_t dstsz, const char *name)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p && n + 5 < dstsz; p++) {
        if (*p >= 0x20 && *p < 0x7F && *p != '"' && *p != '\\') {
            dst[n++] = (char)*p;
        } else {
            dst[n++] = '\\'; dst[n++] = 'x';
            dst[n++] = hex[*p >> 4]; dst[n++] = hex[*p & 0xF];
        }
    }
    dst[n] = '\0';
}

/* Destination ports whose 127.0.0.1/::1 stay the host's: 53 (a local DNS resolver such as
 * dnsmasq, which programs with their own DNS client, c-ares or Go, talk to directly) and the
 * comma-separated list in CMUX_PRELOAD_HOST_PORTS (say a shared database on 127.0.0.1:5432).
 * Entries that are not 1..65535 are ignored. */
static void parse_host_ports(const char *list)
{
    g.host_ports[g.n_host_ports++] = htons(53);
    while (list && *list && g.n_host_ports < MAX_HOST_PORTS) {
        unsigned long v = 0;
        int digits = 0;
        for (; *list >= '0' && *list <= '9'; list++, digits++)
            if (v <= 65535) v = v * 10 + (unsigned long)(*list - '0');
        if (digits && v >= 1 && v <= 65535 && (*list == ',' || *list == '\0'))
            g.host_ports[g.n_host_ports++] = htons((uint16_t)v);
        while (*list && *list != ',') list++; /* skip the rest of a malformed entry */
        if (*list == ',') list++;
    }
}

static void init_once(void)
{
    char cwd_name[NAME_MAX + 1];
    const char *name, *source = "CMUX_WORKSPACE_INTERNAL", *why = NULL;
    unsigned n = 0;

    resolve_real_symbols();
    if (env_true("CMUX_PRELOAD_DISABLE")) goto done;
    g.log = env_true("CMUX_PRELOAD_LOG");
    g.strict = env_true("CMUX_PRELOAD_STRICT");
    parse_host_ports(getenv("CMUX_PRELOAD_HOST_PORTS"));

    name = getenv("CMUX_WORKSPACE_INTERNAL");
    if (!name || !*name) { /* unset or empty: fall back to the current directory */
        name = ws_from_cwd(cwd_name, sizeof cwd_name) ? cwd_name : NULL;
        source = "the current directory";
    }
    if (!name) {
        if (g.log) log_msg("no workspace (not under CMUX_WORKSPACE_ROOT); shim inactive", 0, 0);
        goto done;
    }
    sanitize(g.name, sizeof g.name, name);
    if (cmux_ws_number(name, strlen(name), &n, &why) != 0) {
        /* A refused name is a configuration error, never silently guessed, but one line per
         * process tree is enough: the first process to report it leaves WARNED_VAR set to the
         * name (see the constructor), and its descendants with the same name stay quiet.
         * Every process reports when CMUX_PRELOAD_LOG is on, and a different name is always
         * reported. */
        const char *warned = getenv(WARNED_VAR);
        size_t len = strlen(name);
        g.refused = 1;
        if (len < sizeof g.refused_name) memcpy(g.refused_name, name, len + 1);
        if (!g.log && warned && *warned && strcmp(warned, name) == 0) goto done;
        struct logbuf l;
        lb_begin(&l);
        lb_str(&l, "workspace name \"");
        lb_str(&l, g.name);
        lb_str(&l, "\" from ");
        lb_str(&l, source);
        lb_str(&l, " refused (");
        lb_str(&l, why);
        lb_str(&l, "); shim disabled, sockets are not isolated");
        lb_flush(&l);
        goto done;
    }
    g.ws_be = htonl(cmux_ws_addr_host(n));
    g.active = 1;
    if (g.log) {
        struct logbuf l;
        lb_begin(&l);
        lb_str(&l, "workspace ");
        lb_str(&l, g.name);
        lb_str(&l, " -> ");
        lb_v4(&l, g.ws_be);
        lb_str(&l, g.strict ? " (strict)" : "");
        lb_flush(&l);
    }
done:
    __atomic_store_n(&g_ready, 1, __ATOMIC_RELEASE);
}

/* Detect at load time, so that the first socket call (maybe in a signal handler) finds the
 * state ready. The hooks still call ensure_init() for calls that arrive even earlier. */
__attribute__((constructor)) static void cmux_preload_ctor(void)
{
    int saved = errno;
    ensure_init();
    /* Marks the environment after a refused name, here and not in init_once: a constructor
     * runs before main, when changing the environment is safe, while init_once may run from
     * a socket call in any context. Children started with this process's environment
     * (exec*, posix_spawn, shells) inherit the mark. */
    if (g.refused && g.refused_name[0]) {
        const char *warned = getenv(WARNED_VAR);
        if (!warned || strcmp(warned, g.refused_name) != 0) setenv(WARNED_VAR, g.refused_name, 1);
    }
    errno = saved;
}

/* ------------------------------------------------------------------------------------------ */
/* Address classification (network byte order throughout).                                   */

static int v4_is_local(uint32_t a_be)
{
    return a_be == htonl(INADDR_LOOPBACK) || a_be == htonl(INADDR_ANY);
}

/* 127.18.0.0/16 but not our own address: another workspace. */
static int v4_is_other_ws(uint32_t a_be)
{
    return (ntohl(a_be) >> 16) == ((127u << 8) | 18u) && a_be != g.ws_be;
}

static int v6_is_mapped(const struct in6_addr *a)
{
    static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a->s6_addr, prefix, sizeof prefix) == 0;
}

static uint32_t v6_mapped_v4(const struct in6_addr *a)
{
    uint32_t v;
    memcpy(&v, a->s6_addr + 12, 4);
    return v;
}

static void v6_set_mapped(struct in6_addr *a, uint32_t v4_be)
{
    memset(a->s6_addr, 0, 10);
    a->s6_addr[10] = a->s6_addr[11] = 0xff;
    memcpy(a->s6_addr + 12, &v4_be, 4);
}

/* ::, ::1 and their IPv4-mapped counterparts ::ffff:0.0.0.0 and ::ffff:127.0.0.1. */
static int v6_is_local(const struct in6_addr *a)
{
    return IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) ||
           (v6_is_mapped(a) && v4_is_local(v6_mapped_v4(a)));
}

static int v6_is_other_ws(const struct in6_addr *a)
{
    return v6_is_mapped(a) && v4_is_other_ws(v6_mapped_v4(a));
}

/* IPV6_V6ONLY of fd: 1, 0, or -1 when it cannot be read (not an IPv6 socket, bad fd). */
static int v6only_of(int fd)
{
    int saved = errno, v = 0;
    socklen_t len = sizeof v;
    int r = getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len);
    errno = saved;
    return r == 0 ? (v != 0) : -1;
}

union sa_any {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

/* ------------------------------------------------------------------------------------------ */
/* bind / listen                                                                              */

/* :: and ::1 are served at ::ffff:<workspace> on a dual-stack socket: reachable over IPv4 at
 * the workspace address only, and not at the shared ::1. Linux has a single IPv6 loopback
 * address, so a v6-only socket cannot be isolated: its bind fails with EADDRNOTAVAIL, the
 * errno servers already treat as "this address is not here" (Redis' `-::1`, PostgreSQL's
 * listen_addresses both carry on with their IPv4 socket). */
static int bind_v6(int fd, const struct sockaddr_in6 *in6, socklen_t len)
{
    int v6only = v6only_of(fd);
    if (v6only < 0 || !v6_is_local(&in6->sin6_addr)) return call_bind(fd, (const void *)in6, len);
    if (v6only) {
        if (g.log) log_rewrite("bind (v6-only socket)", (const void *)in6, NULL);
        errno = EADDRNOTAVAIL;
        return -1;
    }
    union sa_any to = {.in6 = *in6};
    v6_set_mapped(&to.in6.sin6_addr, g.ws_be);
    to.in6.sin6_scope_id = 0;
    to.in6.sin6_flowinfo = 0;
    log_rewrite("bind", (const void *)in6, &to.sa);
    return call_bind(fd, &to.sa, sizeof to.in6);
}

static int shim_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (!g.active || !addr || len < sizeof(sa_family_t)) return call_bind(fd, addr, len);
    if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        if (!v4_is_local(in->sin_addr.s_addr)) return call_bind(fd, addr, len);
        union sa_any to = {.in = *in};
        to.in.sin_addr.s_addr = g.ws_be;
        log_rewrite("bind", addr, &to.sa);
        return call_bind(fd, &to.sa, sizeof to.in);
    }
    if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        return bind_v6(fd, (const struct sockaddr_in6 *)addr, len);
    return call_bind(fd, addr, len);
}

EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    ensure_init();
    return shim_bind(fd, addr, len);
}

/* listen() on a socket that was never bound makes the kernel bind it to the wildcard address
 * on an ephemeral port, which would escape the workspace: bind it to the workspace first. */
static void bind_before_listen(int fd)
{
    int saved = errno;
    union sa_any cur;
    socklen_t len = sizeof cur;
    memset(&cur, 0, sizeof cur);
    if (getsockname(fd, &cur.sa, &len) != 0) goto out;
    if (cur.sa.sa_family == AF_INET && cur.in.sin_port == 0 &&
        cur.in.sin_addr.s_addr == htonl(INADDR_ANY)) {
        shim_bind(fd, &cur.sa, sizeof cur.in); /* 0.0.0.0:0 -> workspace:0 */
    } else if (cur.sa.sa_family == AF_INET6 && cur.in6.sin6_port == 0 &&
               IN6_IS_ADDR_UNSPECIFIED(&cur.in6.sin6_addr) && v6only_of(fd) == 0) {
        shim_bind(fd, &cur.sa, sizeof cur.in6); /* [::]:0 -> [::ffff:workspace]:0 */
    }
out:
    errno = saved;
}

EXPORT int listen(int fd, int backlog)
{
    ensure_init();
    if (g.active) bind_before_listen(fd);
    return call_listen(fd, backlog);
}

/* ------------------------------------------------------------------------------------------ */
/* connect / sendto / sendmsg: destination rewriting                                          */

enum dest { DEST_KEEP, DEST_REWRITTEN, DEST_REFUSED };

static int is_host_port(uint16_t port_be)
{
    for (int i = 0; i < g.n_host_ports; i++)
        if (g.host_ports[i] == port_be) return 1;
    return 0;
}

/* Decides where a destination goes; on DEST_REWRITTEN fills *to and *tolen. */
static enum dest rewrite_dest(int fd, const struct sockaddr *addr, socklen_t len,
                              union sa_any *to, socklen_t *tolen)
{
    if (!g.active || !addr || len < sizeof(sa_family_t)) return DEST_KEEP;
    if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        if (g.strict && v4_is_other_ws(in->sin_addr.s_addr)) return DEST_REFUSED;
        if (!v4_is_local(in->sin_addr.s_addr) || is_host_port(in->sin_port))
            return DEST_KEEP;
        to->in = *in;
        to->in.sin_addr.s_addr = g.ws_be;
        *tolen = sizeof to->in;
        return DEST_REWRITTEN;
    }
    if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        if (g.strict && v6_is_other_ws(&in6->sin6_addr)) return DEST_REFUSED;
        if (!v6_is_local(&in6->sin6_addr) || is_host_port(in6->sin6_port))
            return DEST_KEEP;
        /* The mapped workspace address needs a dual-stack socket; a client socket that asked
         * for v6-only is switched back when the kernel still allows it (before it is bound). */
        if (v6only_of(fd) == 1) {
            int off = 0, saved = errno;
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
            errno = saved;
        }
        to->in6 = *in6;
        v6_set_mapped(&to->in6.sin6_addr, g.ws_be);
        to->in6.sin6_scope_id = 0;
        to->in6.sin6_flowinfo = 0;
        *tolen = sizeof to->in6;
        return DEST_REWRITTEN;
    }
    return DEST_KEEP;
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    ensure_init();
    union sa_any to;
    socklen_t tolen = 0;
    switch (rewrite_dest(fd, addr, len, &to, &tolen)) {
    case DEST_REWRITTEN:
        log_rewrite("connect", addr, &to.sa);
        return call_connect(fd, &to.sa, tolen);
    case DEST_REFUSED:
        log_rewrite("connect (strict)", addr, NULL);
        errno = ECONNREFUSED;
        return -1;
    default:
        return call_connect(fd, addr, len);
    }
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                      const struct sockaddr *addr, socklen_t len)
{
    ensure_init();
    union sa_any to;
    socklen_t tolen = 0;
    switch (rewrite_dest(fd, addr, len, &to, &tolen)) {
    case DEST_REWRITTEN:
        log_rewrite("sendto", addr, &to.sa);
        return call_sendto(fd, buf, n, flags, &to.sa, tolen);
    case DEST_REFUSED:
        log_rewrite("sendto (strict)", addr, NULL);
        errno = ECONNREFUSED;
        return -1;
    default:
        return call_sendto(fd, buf, n, flags, addr, len);
    }
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    ensure_init();
    union sa_any to;
    socklen_t tolen = 0;
    if (!msg) return call_sendmsg(fd, msg, flags);
    switch (rewrite_dest(fd, msg->msg_name, msg->msg_namelen, &to, &tolen)) {
    case DEST_REWRITTEN: {
        struct msghdr copy = *msg; /* the caller's msghdr is const: rewrite a copy */
        copy.msg_name = &to;
        copy.msg_namelen = tolen;
        log_rewrite("sendmsg", msg->msg_name, &to.sa);
        return call_sendmsg(fd, &copy, flags);
    }
    case DEST_REFUSED:
        log_rewrite("sendmsg (strict)", msg->msg_name, NULL);
        errno = ECONNREFUSED;
        return -1;
    default:
        return call_sendmsg(fd, msg, flags);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* getaddrinfo / freeaddrinfo                                                                 */

/* One allocation per result list built by the shim; blocks are linked in a list so that
 * freeaddrinfo can tell them from the real getaddrinfo's lists. */
struct gai_entry {
    struct addrinfo ai;
    union sa_any sa;
};

struct gai_block {
    struct gai_block *next;
    char canon[16];
    struct gai_entry e[];
};

static pthread_mutex_t gai_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gai_block *gai_blocks;
static int gai_outstanding; /* lets freeaddrinfo skip the lock when the shim has none out */

static void gai_lock_prepare(void) { pthread_mutex_lock(&gai_lock); }
static void gai_lock_release(void) { pthread_mutex_unlock(&gai_lock); }
static pthread_once_t gai_atfork_once = PTHREAD_ONCE_INIT;

/* Keeps a fork() that races with getaddrinfo from leaving the child a held lock. */
static void gai_register_atfork(void)
{
    pthread_atfork(gai_lock_prepare, gai_lock_release, gai_lock_release);
}

static void gai_track(struct gai_block *b)
{
    pthread_once(&gai_atfork_once, gai_register_atfork);
    pthread_mutex_lock(&gai_lock);
    b->next = gai_blocks;
    gai_blocks = b;
    __atomic_add_fetch(&gai_outstanding, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&gai_lock);
}

/* Unlinks and returns the shim's block whose list starts at ai, or NULL if it is not ours. */
static struct gai_block *gai_untrack(struct addrinfo *ai)
{
    struct gai_block *found = NULL;
    if (!__atomic_load_n(&gai_outstanding, __ATOMIC_ACQUIRE)) return NULL;
    pthread_mutex_lock(&gai_lock);
    for (struct gai_block **pp = &gai_blocks; *pp; pp = &(*pp)->next) {
        if (&(*pp)->e[0].ai == ai) {
            found = *pp;
            *pp = found->next;
            __atomic_sub_fetch(&gai_outstanding, 1, __ATOMIC_RELEASE);
            break;
        }
    }
    pthread_mutex_unlock(&gai_lock);
    return found;
}

/* "localhost" or "localhost." in any ASCII case. */
static int is_localhost(const char *node)
{
    static const char want[] = "localhost";
    size_t i = 0;
    for (; want[i]; i++) {
        char c = node[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != want[i]) return 0;
    }
    return node[i] == '\0' || (node[i] == '.' && node[i + 1] == '\0');
}

/* Copies a real result list into one shim block, pointing every address at the workspace. */
static struct gai_block *gai_copy_rewritten(const struct addrinfo *src, int want_canon)
{
    size_t count = 0;
    for (const struct addrinfo *p = src; p; p = p->ai_next) count++;
    struct gai_block *b = calloc(1, sizeof *b + count * sizeof b->e[0]);
    if (!b) return NULL;
    memcpy(b->canon, "localhost", sizeof "localhost");
    size_t i = 0;
    for (const struct addrinfo *p = src; p; p = p->ai_next, i++) {
        struct gai_entry *e = &b->e[i];
        e->ai.ai_flags = p->ai_flags;
        e->ai.ai_family = p->ai_family;
        e->ai.ai_socktype = p->ai_socktype;
        e->ai.ai_protocol = p->ai_protocol;
        e->ai.ai_addr = &e->sa.sa;
        e->ai.ai_next = (i + 1 < count) ? &b->e[i + 1].ai : NULL;
        e->ai.ai_canonname = (i == 0 && want_canon) ? b->canon : NULL;
        if (p->ai_family == AF_INET6) {
            memcpy(&e->sa.in6, p->ai_addr, sizeof e->sa.in6);
            v6_set_mapped(&e->sa.in6.sin6_addr, g.ws_be);
            e->ai.ai_addrlen = sizeof e->sa.in6;
        } else {
            memcpy(&e->sa.in, p->ai_addr, sizeof e->sa.in);
            e->sa.in.sin_addr.s_addr = g.ws_be;
            e->ai.ai_addrlen = sizeof e->sa.in;
        }
    }
    return b;
}

/* getaddrinfo("localhost") answers the workspace address: IPv4 for AF_UNSPEC and AF_INET,
 * the IPv4-mapped form for AF_INET6. The real getaddrinfo is asked for the numeric loopback
 * address with the caller's service and hints, so ports, service names, socket types,
 * protocols and errors are exactly libc's; only the address is then replaced. */
EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
    ensure_init();
    if (!real_getaddrinfo) { errno = ENOSYS; return EAI_SYSTEM; }
    int family = hints ? hints->ai_family : AF_UNSPEC;
    if (!g.active || !node || !res || !is_localhost(node) ||
        (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) ||
        (hints && (hints->ai_flags & AI_NUMERICHOST))) /* libc refuses "localhost" then */
        return real_getaddrinfo(node, service, hints, res);

    struct addrinfo h;
    memset(&h, 0, sizeof h);
    if (hints) {
        h.ai_flags = hints->ai_flags;
        h.ai_family = hints->ai_family;
        h.ai_socktype = hints->ai_socktype;
        h.ai_protocol = hints->ai_protocol;
    } else {
        h.ai_flags = AI_V4MAPPED | AI_ADDRCONFIG; /* glibc's default for NULL hints */
    }
    int want_canon = (h.ai_flags & AI_CANONNAME) != 0;
    /* Numeric host: no name service is ever consulted. No AI_ADDRCONFIG: loopback is always
     * configured. No AI_CANONNAME: we supply "localhost" ourselves. */
    h.ai_flags = (h.ai_flags | AI_NUMERICHOST) & ~(AI_ADDRCONFIG | AI_CANONNAME);
    const char *numeric = family == AF_INET6 ? "::ffff:127.0.0.1" : "127.0.0.1";

    struct addrinfo *tmp = NULL;
    int r = real_getaddrinfo(numeric, service, &h, &tmp);
    if (r != 0) return r;
    struct gai_block *b = gai_copy_rewritten(tmp, want_canon);
    if (real_freeaddrinfo) real_freeaddrinfo(tmp);
    if (!b) return EAI_MEMORY;
    gai_track(b);
    *res = &b->e[0].ai;
    if (g.log) {
        struct logbuf l;
        lb_begin(&l);
        lb_str(&l, "getaddrinfo ");
        lb_str(&l, node);
        lb_str(&l, " -> ");
        lb_sockaddr(&l, b->e[0].ai.ai_addr);
        lb_flush(&l);
    }
    return 0;
}

EXPORT void freeaddrinfo(struct addrinfo *ai)
{
    ensure_init();
    struct gai_block *b = ai ? gai_untrack(ai) : NULL;
    if (b) {
        free(b);
        return;
    }
    if (real_freeaddrinfo) real_freeaddrinfo(ai);
}
