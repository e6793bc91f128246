/*
 * probe: small socket actions run under the shim by test_shim. Each prints one line on stdout.
 * Listeners that the probe needs as fixtures are set up with raw syscalls, so the shim does not
 * see (or rewrite) them; the action under test goes through libc, and so through the shim.
 *
 *   bind4 ADDR                       bind ADDR:0 (IPv4), print the bound address
 *   bind6 ADDR [v6only]              bind [ADDR]:0 (IPv6), print the bound address or errno
 *   reach6 ADDR TARGET...            listen on [ADDR]:0, then raw-connect to TARGET:port each
 *   connect LISTEN DEST              raw listener on LISTEN:0; libc connect to DEST:port;
 *                                    print the peer address
 *   connect-nb LISTEN DEST           same with a non-blocking socket
 *   connect-port LISTEN DEST PORT    same as connect with the listener on a given port
 *   udp LISTEN DEST [msg]            raw UDP socket on LISTEN:0; sendto (or sendmsg) DEST:port
 *   udp53 DEST                       raw UDP socket on 127.0.0.1:53; sendto DEST:53
 *   gai NODE FAMILY SOCKTYPE SERVICE [canon|numeric]   print getaddrinfo's list
 *   gai-loop N THREADS               N x (getaddrinfo localhost + 127.0.0.1, freeaddrinfo)
 *   listen-unbound                   listen() on a socket never bound, print its address
 *   inuse ADDR                       two binds of ADDR on one port: print the second's errno
 *   badfd                            bind and connect on fd -1: print errno
 *   signal LISTEN DEST               connect from inside a signal handler
 */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

union sa_any {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
    struct sockaddr_storage ss;
};

static const char *errname(int e)
{
    switch (e) {
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK";
    case EINVAL: return "EINVAL";
    case EINPROGRESS: return "EINPROGRESS";
    case ENETUNREACH: return "ENETUNREACH";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EAGAIN: return "EAGAIN";
    default: return "E?";
    }
}

static void die(const char *what)
{
    printf("FATAL:%s:%s\n", what, errname(errno));
    exit(2);
}

/* Parses an IPv4 or IPv6 literal with a port. */
static socklen_t parse(const char *addr, int port, union sa_any *out)
{
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, addr, &out->in.sin_addr) == 1) {
        out->in.sin_family = AF_INET;
        out->in.sin_port = htons((unsigned short)port);
        return sizeof out->in;
    }
    if (inet_pton(AF_INET6, addr, &out->in6.sin6_addr) == 1) {
        out->in6.sin6_family = AF_INET6;
        out->in6.sin6_port = htons((unsigned short)port);
        return sizeof out->in6;
    }
    fprintf(stderr, "probe: bad address %s\n", addr);
    exit(2);
}

static const char *fmt(const union sa_any *a, char *buf, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->in.sin_addr, ip, sizeof ip);
        snprintf(buf, n, "%s:%d", ip, ntohs(a->in.sin_port));
    } else {
        inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof ip);
        snprintf(buf, n, "[%s]:%d", ip, ntohs(a->in6.sin6_port));
    }
    return buf;
}

static int port_of(int fd)
{
    union sa_any a;
    socklen_t len = sizeof a;
    if (getsockname(fd, &a.sa, &len) != 0) die("getsockname");
    return ntohs(a.sa.sa_family == AF_INET ? a.in.sin_port : a.in6.sin6_port);
}

/* A fixture listener bound with the raw syscall: invisible to the shim. */
static int raw_listener_on(const char *addr, int port, int type)
{
    union sa_any a;
    socklen_t len = parse(addr, port, &a);
    int fd = socket(a.sa.sa_family, type, 0);
    if (fd < 0) die("socket");
    if (a.sa.sa_family == AF_INET6) {
        int off = 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    if (syscall(SYS_bind, fd, &a.sa, len) != 0) die("raw bind");
    if (type == SOCK_STREAM && syscall(SYS_listen, fd, 16) != 0) die("raw listen");
    return fd;
}

static int raw_listener(const char *addr, int type) { return raw_listener_on(addr, 0, type); }

static int do_bind(int family, const char *addr, int v6only)
{
    union sa_any a;
    char buf[80];
    socklen_t len = parse(addr, 0, &a);
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (family == AF_INET6 && v6only >= 0)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    if (bind(fd, &a.sa, len) != 0) {
        printf("ERR:%s\n", errname(errno));
        return 0;
    }
    len = sizeof a;
    getsockname(fd, &a.sa, &len);
    printf("%s\n", fmt(&a, buf, sizeof buf));
    return 0;
}

static int do_reach6(const char *addr, int ntargets, char **targets)
{
    union sa_any a;
    socklen_t len = parse(addr, 0, &a);
    int fd = socket(AF_INET6, SOCK_STREAM, 0), off = 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    if (bind(fd, &a.sa, len) != 0 || listen(fd, 16) != 0) die("bind/listen");
    int port = port_of(fd);
    for (int i = 0; i < ntargets; i++) {
        union sa_any t;
        socklen_t tl = parse(targets[i], port, &t);
        int c = socket(t.sa.sa_family, SOCK_STREAM, 0);
        int r = (int)syscall(SYS_connect, c, &t.sa, tl); /* raw: not rewritten */
        printf("%s%s=%s", i ? " " : "", targets[i], r == 0 ? "ok" : errname(errno));
        close(c);
    }
    printf("\n");
    return 0;
}

static int do_connect(const char *listen_addr, const char *dest, int nonblock, int port)
{
    int l = raw_listener_on(listen_addr, port, SOCK_STREAM);
    union sa_any d, peer;
    char buf[80];
    socklen_t len = parse(dest, port_of(l), &d);
    int c = socket(d.sa.sa_family, SOCK_STREAM, 0);
    if (nonblock) fcntl(c, F_SETFL, O_NONBLOCK);
    errno = 0;
    if (connect(c, &d.sa, len) != 0) {
        if (!(nonblock && errno == EINPROGRESS)) {
            printf("ERR:%s\n", errname(errno));
            return 0;
        }
        struct pollfd p = {.fd = c, .events = POLLOUT};
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (poll(&p, 1, 5000) != 1) die("poll");
        getsockopt(c, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            printf("ERR:%s\n", errname(soerr));
            return 0;
        }
        printf("inprogress ");
    }
    len = sizeof peer;
    if (getpeername(c, &peer.sa, &len) != 0) die("getpeername");
    printf("peer=%s\n", fmt(&peer, buf, sizeof buf));
    return 0;
}

static int do_udp(const char *listen_addr, const char *dest, int use_sendmsg, int port53)
{
    int l;
    if (port53) { /* the host's resolver port: skip if taken (or not root) */
        union sa_any a;
        socklen_t al = parse(listen_addr, 53, &a);
        l = socket(AF_INET, SOCK_DGRAM, 0);
        if (syscall(SYS_bind, l, &a.sa, al) != 0) {
            printf("skip:%s\n", errname(errno));
            return 0;
        }
    } else {
        l = raw_listener(listen_addr, SOCK_DGRAM);
    }
    union sa_any d;
    socklen_t len = parse(dest, port_of(l), &d);
    int c = socket(d.sa.sa_family, SOCK_DGRAM, 0);
    ssize_t r;
    char msg[] = "ping";
    if (use_sendmsg) {
        struct iovec iov = {.iov_base = msg, .iov_len = 4};
        struct msghdr mh = {.msg_name = &d, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
        r = sendmsg(c, &mh, 0);
    } else {
        r = sendto(c, msg, 4, 0, &d.sa, len);
    }
    if (r < 0) {
        printf("ERR:%s\n", errname(errno));
        return 0;
    }
    struct pollfd p = {.fd = l, .events = POLLIN};
    char got[8] = {0};
    if (poll(&p, 1, 2000) == 1 && recv(l, got, sizeof got - 1, 0) == 4)
        printf("received %s\n", got);
    else
        printf("not-received\n");
    return 0;
}

static int family_of(const char *s)
{
    if (!strcmp(s, "inet")) return AF_INET;
    if (!strcmp(s, "inet6")) return AF_INET6;
    return AF_UNSPEC;
}

static int socktype_of(const char *s)
{
    if (!strcmp(s, "stream")) return SOCK_STREAM;
    if (!strcmp(s, "dgram")) return SOCK_DGRAM;
    return 0;
}

static int do_gai(const char *node, const char *fam, const char *st, const char *svc, int canon)
{
    struct addrinfo h, *res = NULL;
    memset(&h, 0, sizeof h);
    h.ai_family = family_of(fam);
    h.ai_socktype = socktype_of(st);
    h.ai_flags = canon == 1 ? AI_CANONNAME : canon == 2 ? AI_NUMERICHOST : 0;
    int r = getaddrinfo(node, strcmp(svc, "-") ? svc : NULL, &h, &res);
    if (r != 0) {
        printf("EAI:%d\n", r);
        return 0;
    }
    for (struct addrinfo *p = res; p; p = p->ai_next) {
        char buf[80];
        union sa_any a;
        memcpy(&a, p->ai_addr, p->ai_addrlen);
        printf("%s%s/%d/%d/%s", p == res ? "" : ";", p->ai_family == AF_INET ? "inet" : "inet6",
               p->ai_socktype, p->ai_protocol, fmt(&a, buf, sizeof buf));
        if (p->ai_canonname) printf("/%s", p->ai_canonname);
        if (p->ai_addrlen != (p->ai_family == AF_INET ? sizeof a.in : sizeof a.in6))
            printf("/BADLEN");
    }
    printf("\n");
    freeaddrinfo(res);
    return 0;
}

static long loop_n;

static void *gai_loop(void *arg)
{
    (void)arg;
    static const char *nodes[] = {"localhost", "LocalHost", "127.0.0.1", "::1"};
    for (long i = 0; i < loop_n; i++) {
        struct addrinfo h, *res = NULL;
        memset(&h, 0, sizeof h);
        h.ai_family = (i % 3 == 0) ? AF_INET6 : AF_UNSPEC;
        h.ai_flags = (i % 5 == 0) ? AI_CANONNAME : 0;
        const char *node = nodes[i % 4];
        if (getaddrinfo(node, (i & 1) ? "8080" : NULL, &h, &res) == 0) freeaddrinfo(res);
    }
    return NULL;
}

static int do_gai_loop(long n, int threads)
{
    pthread_t t[16];
    loop_n = n;
    if (threads < 1 || threads > 16) threads = 1;
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, gai_loop, NULL);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    printf("ok\n");
    return 0;
}

static int do_listen_unbound(void)
{
    union sa_any a;
    char buf[80];
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (listen(fd, 4) != 0) die("listen");
    getsockname(fd, &a.sa, &len);
    printf("%s\n", fmt(&a, buf, sizeof buf));
    return 0;
}

static int do_inuse(const char *addr)
{
    union sa_any a;
    socklen_t len = parse(addr, 0, &a);
    int f1 = socket(a.sa.sa_family, SOCK_STREAM, 0), f2 = socket(a.sa.sa_family, SOCK_STREAM, 0);
    if (bind(f1, &a.sa, len) != 0 || listen(f1, 4) != 0) die("first bind");
    len = parse(addr, port_of(f1), &a);
    errno = 0;
    printf("%s\n", bind(f2, &a.sa, len) == 0 ? "bound" : errname(errno));
    return 0;
}

static int do_badfd(void)
{
    union sa_any a;
    socklen_t len = parse("127.0.0.1", 1, &a);
    errno = 0;
    int r1 = bind(-1, &a.sa, len), e1 = errno;
    errno = 0;
    int r2 = connect(-1, &a.sa, len), e2 = errno;
    len = parse("::1", 1, &a);
    errno = 0;
    int r3 = bind(-1, &a.sa, len), e3 = errno;
    printf("bind=%d/%s connect=%d/%s bind6=%d/%s\n", r1, errname(e1), r2, errname(e2), r3,
           errname(e3));
    return 0;
}

static union sa_any sig_dest;
static socklen_t sig_len;
static volatile sig_atomic_t sig_result = -2, sig_errno;

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    int c = socket(sig_dest.sa.sa_family, SOCK_STREAM, 0);
    sig_result = connect(c, &sig_dest.sa, sig_len);
    sig_errno = errno;
    close(c);
    errno = saved;
}

static int do_signal(const char *listen_addr, const char *dest)
{
    int l = raw_listener(listen_addr, SOCK_STREAM);
    sig_len = parse(dest, port_of(l), &sig_dest);
    signal(SIGUSR1, on_signal);
    raise(SIGUSR1);
    printf("%s\n", sig_result == 0 ? "ok" : errname(sig_errno));
    return 0;
}

int main(int argc, char **argv)
{
    alarm(20); /* a probe never outlives a stuck test */
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) return 2;
    const char *c = argv[1];
    if (!strcmp(c, "bind4") && argc == 3) return do_bind(AF_INET, argv[2], -1);
    if (!strcmp(c, "bind6") && argc >= 3) return do_bind(AF_INET6, argv[2], argc > 3 ? 1 : 0);
    if (!strcmp(c, "reach6") && argc >= 4) return do_reach6(argv[2], argc - 3, argv + 3);
    if (!strcmp(c, "connect") && argc == 4) return do_connect(argv[2], argv[3], 0, 0);
    if (!strcmp(c, "connect-nb") && argc == 4) return do_connect(argv[2], argv[3], 1, 0);
    if (!strcmp(c, "connect-port") && argc == 5)
        return do_connect(argv[2], argv[3], 0, atoi(argv[4]));
    if (!strcmp(c, "udp") && argc >= 4) return do_udp(argv[2], argv[3], argc > 4, 0);
    if (!strcmp(c, "udp53") && argc == 3) return do_udp("127.0.0.1", argv[2], 0, 1);
    if (!strcmp(c, "gai") && argc >= 6)
        return do_gai(argv[2], argv[3], argv[4], argv[5],
                      argc < 7 ? 0 : !strcmp(argv[6], "numeric") ? 2 : 1);
    if (!strcmp(c, "gai-loop") && argc == 4) return do_gai_loop(atol(argv[2]), atoi(argv[3]));
    if (!strcmp(c, "listen-unbound")) return do_listen_unbound();
    if (!strcmp(c, "inuse") && argc == 3) return do_inuse(argv[2]);
    if (!strcmp(c, "badfd")) return do_badfd();
    if (!strcmp(c, "signal") && argc == 4) return do_signal(argv[2], argv[3]);
    fprintf(stderr, "probe: bad arguments\n");
    return 2;
}
