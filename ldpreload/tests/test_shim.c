/*
 * Tests of libworkspace_net.so:
 *  1. the name rule (wsname.c, the code the shim runs) against every row of the vectors in
 *     $CMUX_SPEC_DIR/workspace-addresses.tsv (default: the repository's spec/, found from
 *     this program's own path), plus a few edge cases of our own;
 *  2. behaviour under LD_PRELOAD: each case runs ./probe (see probe.c) with the shim and a
 *     given environment and working directory, and checks what it printed;
 *  3. valgrind on the getaddrinfo/freeaddrinfo path, when valgrind is installed.
 * Prints PASS/FAIL per check and ends with "N passed, M failed"; exits 1 on any failure.
 *
 * usage: test_shim --shim /abs/libworkspace_net.so --probe /abs/probe
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wsname.h"

extern char **environ;

static int passed, failed;
static const char *shim_path, *probe_path;
static char tmpdir[512]; /* short, so that paths built from it fit */

static void check(int ok, const char *what, const char *detail)
{
    if (ok) passed++; else failed++;
    printf("%s %s", ok ? "PASS" : "FAIL", what);
    if (!ok && detail) printf("  [got: %s]", detail);
    printf("\n");
    fflush(stdout);
}

/* ------------------------------------------------------------------------------------------ */
/* 1. Vectors                                                                                 */

static void addr_string(unsigned n, char *buf, size_t len)
{
    uint32_t a = cmux_ws_addr_host(n);
    snprintf(buf, len, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

/* What the rule gives for a name: "127.18.x.y" or "error". */
static void rule(const char *name, size_t len, char *out, size_t outlen)
{
    unsigned n;
    const char *why;
    if (cmux_ws_number(name, len, &n, &why) == 0) addr_string(n, out, outlen);
    else snprintf(out, outlen, "error");
}

static void check_vector(const char *name, size_t len, const char *want, const char *label)
{
    char got[32], what[200];
    rule(name, len, got, sizeof got);
    snprintf(what, sizeof what, "vector %s -> %s", label, want);
    check(strcmp(got, want) == 0, what, got);
}

/* The vectors file: $CMUX_SPEC_DIR, else the repository's spec/, two levels above this
 * program (ldpreload/build/test_shim), else spec/ seen from ldpreload/. */
static void vectors_path(char *path, size_t len)
{
    const char *dir = getenv("CMUX_SPEC_DIR");
    char exe[PATH_MAX];
    ssize_t n;
    if (dir && *dir) {
        snprintf(path, len, "%s/workspace-addresses.tsv", dir);
    } else if ((n = readlink("/proc/self/exe", exe, sizeof exe - 1)) > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        snprintf(path, len, "%.*s/../../spec/workspace-addresses.tsv", PATH_MAX - 64, exe);
    } else {
        snprintf(path, len, "../spec/workspace-addresses.tsv");
    }
}

static int test_vectors_file(void)
{
    char path[PATH_MAX], line[512];
    vectors_path(path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) {
        check(0, "vectors file readable (set CMUX_SPEC_DIR)", path);
        return 0;
    }
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0') continue;
        /* |name|<TAB>address: the name is between the first '|' and the '|' before the tab. */
        char *tab = strrchr(line, '\t');
        if (line[0] != '|' || !tab || tab == line || tab[-1] != '|') {
            check(0, "vectors file: well-formed row", line);
            continue;
        }
        size_t len = (size_t)(tab - 1 - (line + 1));
        char label[160];
        snprintf(label, sizeof label, "%.*s", (int)(tab - line), line);
        check_vector(line + 1, len, tab + 1, label);
        rows++;
    }
    fclose(f);
    return rows;
}

/* The address the vectors file gives `name` (a name without blanks), in `out`; 0 when the
 * file has no such row. The expectations of the tests below come from here, never from
 * the code under test. */
static int vector_address(const char *name, char *out, size_t outlen)
{
    char path[PATH_MAX], line[512], want[200];
    vectors_path(path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    snprintf(want, sizeof want, "|%s|\t", name);
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!strncmp(line, want, strlen(want))) {
            snprintf(out, outlen, "%s", line + strlen(want));
            found = 1;
        }
    }
    fclose(f);
    return found;
}

static void test_vectors(void)
{
    int rows = test_vectors_file();
    char what[120];
    snprintf(what, sizeof what, "vectors file has rows (%d)", rows);
    check(rows >= 30, what, NULL);

    /* Our own edge cases, beyond the vectors file. */
    check_vector(" workspace-3 ", 13, "127.18.0.3", "| workspace-3 | (spaces trimmed)");
    check_vector("\tws-4\t", 6, "127.18.0.4", "|\\tws-4\\t| (tabs trimmed)");
    check_vector("workspace-000000000000000000009", 31, "127.18.0.9",
                 "long run of leading zeros");
    check_vector("workspace-18446744073709551617", 30, "error", "2^64+1 never wraps to 1");
    check_vector("workspace-4294967297", 20, "error", "2^32+1 never wraps to 1");
    check_vector("workspace-65535", 15, "127.18.255.255", "upper bound");
    check_vector("a/b/", 4, "error", "trailing slash");
    check_vector("workspace-1\n", 12, "error", "newline refused");
    check_vector("work\0space-1", 12, "error", "NUL byte refused");
}

/* ------------------------------------------------------------------------------------------ */
/* 2. Running the probe                                                                       */

struct run {
    char out[8192];
    char err[8192];
    int status; /* exit status, or -1 if killed/timeout */
};

static int split(char *s, char **argv, int max)
{
    int n = 0;
    for (char *tok = strtok(s, " "); tok && n < max - 1; tok = strtok(NULL, " ")) argv[n++] = tok;
    argv[n] = NULL;
    return n;
}

/* Builds the child's environment: ours without any CMUX_* or LD_PRELOAD, plus LD_PRELOAD=shim
 * and the space-separated KEY=VALUE pairs in extra. */
static void child_env(char **envp, int max, char *extra)
{
    static char preload[PATH_MAX + 16];
    int n = 0;
    for (char **e = environ; *e && n < max - 40; e++)
        if (strncmp(*e, "CMUX_", 5) && strncmp(*e, "LD_PRELOAD=", 11)) envp[n++] = *e;
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", shim_path);
    envp[n++] = preload;
    n += split(extra, envp + n, max - n);
    envp[n] = NULL;
}

static void drain(int fd, char *buf, size_t cap, size_t *len, int *open)
{
    ssize_t r = read(fd, buf + *len, cap - 1 - *len);
    if (r > 0) *len += (size_t)r;
    else if (r == 0 || errno != EINTR) *open = 0;
    if (*len >= cap - 1) *open = 0;
    buf[*len] = '\0';
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs argv (looked up in PATH) in cwd with env; bounded by timeout seconds. */
static void run_argv(struct run *r, const char *cwd, const char *env, char *const argv[],
                     int timeout)
{
    char envbuf[2048];
    char *envp[512];
    int po[2], pe[2];
    snprintf(envbuf, sizeof envbuf, "%s", env ? env : "");
    memset(r, 0, sizeof *r);
    if (pipe(po) || pipe(pe)) { perror("pipe"); exit(2); }
    pid_t pid = fork();
    if (pid == 0) {
        child_env(envp, 512, envbuf);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]); close(pe[0]); close(po[1]); close(pe[1]);
        if (cwd && chdir(cwd) != 0) _exit(126);
        environ = envp; /* execvp: "valgrind" is looked up in PATH */
        execvp(argv[0], argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t lo = 0, le = 0;
    int oo = 1, oe = 1;
    double deadline = now() + timeout;
    while ((oo || oe) && now() < deadline) {
        struct pollfd p[2] = {{.fd = oo ? po[0] : -1, .events = POLLIN},
                              {.fd = oe ? pe[0] : -1, .events = POLLIN}};
        if (poll(p, 2, 200) <= 0) continue;
        if (p[0].revents) drain(po[0], r->out, sizeof r->out, &lo, &oo);
        if (p[1].revents) drain(pe[0], r->err, sizeof r->err, &le, &oe);
    }
    if (oo || oe) kill(pid, SIGKILL); /* timed out */
    int st = 0;
    waitpid(pid, &st, 0);
    close(po[0]);
    close(pe[0]);
    r->status = (!oo && !oe && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
    r->out[strcspn(r->out, "\n")] = '\0'; /* probes print one line */
}

/* Runs "[valgrind ...] probe ARGS" in cwd with env; bounded by timeout seconds. */
static void run_cmd(struct run *r, const char *cwd, const char *env, const char *args,
                    const char *prefix, int timeout)
{
    char cmd[4096];
    char *argv[64];
    snprintf(cmd, sizeof cmd, "%s%s %s", prefix ? prefix : "", probe_path, args);
    split(cmd, argv, 64);
    run_argv(r, cwd, env, argv, timeout);
}

static void probe(struct run *r, const char *cwd, const char *env, const char *args)
{
    run_cmd(r, cwd, env, args, NULL, 30);
}

static int starts(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

#define WS5 "CMUX_WORKSPACE_INTERNAL=workspace-5"
#define STRICT5 WS5 " CMUX_PRELOAD_STRICT=1"

/* One probe, one expectation on its output: an exact line or a prefix. */
static void expect(const char *what, const char *cwd, const char *env, const char *args,
                   const char *want, int prefix)
{
    struct run r;
    probe(&r, cwd, env, args);
    int ok = r.status == 0 && (prefix ? starts(r.out, want) : !strcmp(r.out, want));
    check(ok, what, r.status == 0 ? r.out : r.err);
}

static void test_bind(void)
{
    expect("bind 0.0.0.0 -> workspace address", NULL, WS5, "bind4 0.0.0.0", "127.18.0.5:", 1);
    expect("bind 127.0.0.1 -> workspace address", NULL, WS5, "bind4 127.0.0.1", "127.18.0.5:", 1);
    expect("bind 127.0.0.2 left alone", NULL, WS5, "bind4 127.0.0.2", "127.0.0.2:", 1);
    expect("bind another workspace's address left alone", NULL, WS5, "bind4 127.18.0.9",
           "127.18.0.9:", 1);
    expect("bind [::] dual-stack -> [::ffff:workspace]", NULL, WS5, "bind6 ::",
           "[::ffff:127.18.0.5]:", 1);
    expect("bind [::1] dual-stack -> [::ffff:workspace]", NULL, WS5, "bind6 ::1",
           "[::ffff:127.18.0.5]:", 1);
    expect("bind [::ffff:127.0.0.1] -> [::ffff:workspace]", NULL, WS5, "bind6 ::ffff:127.0.0.1",
           "[::ffff:127.18.0.5]:", 1);
    expect("bind [::] on a v6-only socket -> EADDRNOTAVAIL", NULL, WS5, "bind6 :: v6only",
           "ERR:EADDRNOTAVAIL", 0);
    expect("bind [::1] on a v6-only socket -> EADDRNOTAVAIL", NULL, WS5, "bind6 ::1 v6only",
           "ERR:EADDRNOTAVAIL", 0);
    expect("server on [::] reachable at the workspace address only", NULL, WS5,
           "reach6 :: 127.18.0.5 127.0.0.1 ::1 127.18.0.6",
           "127.18.0.5=ok 127.0.0.1=ECONNREFUSED ::1=ECONNREFUSED 127.18.0.6=ECONNREFUSED", 0);
    expect("server on [::1] reachable at the workspace address only", NULL, WS5,
           "reach6 ::1 127.18.0.5 ::ffff:127.18.0.5 127.0.0.1 ::1",
           "127.18.0.5=ok ::ffff:127.18.0.5=ok 127.0.0.1=ECONNREFUSED ::1=ECONNREFUSED", 0);
    expect("listen() on an unbound socket binds the workspace address", NULL, WS5,
           "listen-unbound", "127.18.0.5:", 1);
    expect("second bind of 0.0.0.0:P in one workspace -> EADDRINUSE", NULL, WS5, "inuse 0.0.0.0",
           "EADDRINUSE", 0);
    expect("second bind of [::]:P in one workspace -> EADDRINUSE", NULL, WS5, "inuse ::",
           "EADDRINUSE", 0);
}

/* A port free on 127.0.0.1 (and so on every loopback address we use) for a fixed listener. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void test_host_ports(void)
{
    char env[200], args[100];
    int port = free_port();
    snprintf(env, sizeof env, WS5 " CMUX_PRELOAD_HOST_PORTS=1,x9,%d", port);
    snprintf(args, sizeof args, "connect-port 127.0.0.1 127.0.0.1 %d", port);
    expect("CMUX_PRELOAD_HOST_PORTS: a listed port stays on the host", NULL, env, args,
           "peer=127.0.0.1:", 1);
    snprintf(args, sizeof args, "connect-port 127.0.0.1 ::1 %d", port);
    expect("CMUX_PRELOAD_HOST_PORTS: a listed port stays on the host over [::1]", NULL, env,
           args, "ERR:ECONNREFUSED", 0); /* host ::1, where nothing listens: not the workspace */
    snprintf(env, sizeof env, WS5 " CMUX_PRELOAD_HOST_PORTS=1,2");
    snprintf(args, sizeof args, "connect-port 127.18.0.5 127.0.0.1 %d", port);
    expect("CMUX_PRELOAD_HOST_PORTS: other ports still go to the workspace", NULL, env, args,
           "peer=127.18.0.5:", 1);
}

static void test_connect(void)
{
    expect("connect 127.0.0.1 -> workspace", NULL, WS5, "connect 127.18.0.5 127.0.0.1",
           "peer=127.18.0.5:", 1);
    expect("connect 0.0.0.0 -> workspace", NULL, WS5, "connect 127.18.0.5 0.0.0.0",
           "peer=127.18.0.5:", 1);
    expect("connect [::1] -> [::ffff:workspace]", NULL, WS5, "connect 127.18.0.5 ::1",
           "peer=[::ffff:127.18.0.5]:", 1);
    expect("connect [::ffff:127.0.0.1] -> [::ffff:workspace]", NULL, WS5,
           "connect 127.18.0.5 ::ffff:127.0.0.1", "peer=[::ffff:127.18.0.5]:", 1);
    struct run r;
    probe(&r, NULL, WS5, "connect-nb 127.18.0.5 127.0.0.1");
    check(r.status == 0 && strstr(r.out, "peer=127.18.0.5:"), "non-blocking connect 127.0.0.1 -> workspace",
          r.out);
    expect("connect 127.0.0.1 with only a host listener elsewhere -> ECONNREFUSED (errno kept)",
           NULL, WS5, "connect 127.18.0.7 127.0.0.1", "ERR:ECONNREFUSED", 0);
    expect("default: another workspace's address is reachable", NULL, WS5,
           "connect 127.18.0.6 127.18.0.6", "peer=127.18.0.6:", 1);
    expect("strict: another workspace's address -> ECONNREFUSED", NULL, STRICT5,
           "connect 127.18.0.6 127.18.0.6", "ERR:ECONNREFUSED", 0);
    expect("strict: another workspace's mapped address -> ECONNREFUSED", NULL, STRICT5,
           "connect 127.18.0.6 ::ffff:127.18.0.6", "ERR:ECONNREFUSED", 0);
    expect("strict: own workspace still reachable", NULL, STRICT5, "connect 127.18.0.5 127.0.0.1",
           "peer=127.18.0.5:", 1);
    expect("strict: own address by number still reachable", NULL, STRICT5,
           "connect 127.18.0.5 127.18.0.5", "peer=127.18.0.5:", 1);
    expect("strict: non-workspace loopback 127.0.0.2 untouched", NULL, STRICT5,
           "connect 127.0.0.2 127.0.0.2", "peer=127.0.0.2:", 1);
    test_host_ports();
    expect("connect from a signal handler", NULL, WS5, "signal 127.18.0.5 127.0.0.1", "ok", 0);
    expect("bad fd keeps EBADF", NULL, WS5, "badfd",
           "bind=-1/EBADF connect=-1/EBADF bind6=-1/EBADF", 0);
}

static void test_udp(void)
{
    expect("UDP sendto 127.0.0.1 -> workspace", NULL, WS5, "udp 127.18.0.5 127.0.0.1",
           "received ping", 0);
    expect("UDP sendmsg 127.0.0.1 -> workspace", NULL, WS5, "udp 127.18.0.5 127.0.0.1 msg",
           "received ping", 0);
    expect("UDP sendto [::1] -> workspace", NULL, WS5, "udp 127.18.0.5 ::1", "received ping", 0);
    expect("strict: UDP sendto another workspace -> ECONNREFUSED", NULL, STRICT5,
           "udp 127.18.0.6 127.18.0.6", "ERR:ECONNREFUSED", 0);
    struct run r;
    probe(&r, NULL, WS5, "udp53 127.0.0.1");
    if (starts(r.out, "skip:"))
        printf("SKIP UDP to 127.0.0.1:53 stays on the host (port 53 busy: %s)\n", r.out);
    else
        check(r.status == 0 && !strcmp(r.out, "received ping"),
              "UDP to 127.0.0.1:53 (the host's resolver) is not redirected", r.out);
}

/* The port/error part of a gai line, compared against the real getaddrinfo without the shim. */
static void expect_same_service(const char *what, const char *service)
{
    struct run shim, real;
    char args[128];
    snprintf(args, sizeof args, "gai localhost inet stream %s", service);
    probe(&shim, NULL, WS5, args);
    snprintf(args, sizeof args, "gai 127.0.0.1 inet stream %s", service);
    probe(&real, NULL, "CMUX_PRELOAD_DISABLE=1", args);
    const char *colon_s = strrchr(shim.out, ':'), *colon_r = strrchr(real.out, ':');
    int ok = shim.status == 0 && real.status == 0 &&
             (starts(real.out, "EAI:") ? !strcmp(shim.out, real.out)
                                       : (starts(shim.out, "inet/1/6/127.18.0.5:") && colon_s &&
                                          colon_r && !strcmp(colon_s, colon_r)));
    char detail[300];
    snprintf(detail, sizeof detail, "shim '%.120s' real '%.120s'", shim.out, real.out);
    check(ok, what, detail);
}

static void test_getaddrinfo(void)
{
    expect("getaddrinfo localhost (unspec, stream) -> workspace, one entry", NULL, WS5,
           "gai localhost unspec stream 8080", "inet/1/6/127.18.0.5:8080", 0);
    expect("getaddrinfo LocalHost (any case)", NULL, WS5, "gai LocalHost inet stream 80",
           "inet/1/6/127.18.0.5:80", 0);
    expect("getaddrinfo localhost. (trailing dot)", NULL, WS5, "gai localhost. inet stream 80",
           "inet/1/6/127.18.0.5:80", 0);
    expect("getaddrinfo localhost AF_INET6 -> mapped workspace", NULL, WS5,
           "gai localhost inet6 stream 3000", "inet6/1/6/[::ffff:127.18.0.5]:3000", 0);
    expect("getaddrinfo localhost dgram -> udp", NULL, WS5, "gai localhost inet dgram 53",
           "inet/2/17/127.18.0.5:53", 0);
    expect("getaddrinfo localhost any socktype -> stream, dgram, raw", NULL, WS5,
           "gai localhost inet any 7",
           "inet/1/6/127.18.0.5:7;inet/2/17/127.18.0.5:7;inet/3/0/127.18.0.5:7", 0);
    expect("getaddrinfo localhost AI_CANONNAME -> localhost", NULL, WS5,
           "gai localhost inet stream 80 canon", "inet/1/6/127.18.0.5:80/localhost", 0);
    struct run real;
    probe(&real, NULL, "CMUX_PRELOAD_DISABLE=1", "gai localhost inet stream 80 numeric");
    expect("getaddrinfo localhost with AI_NUMERICHOST: libc's error", NULL, WS5,
           "gai localhost inet stream 80 numeric", real.out, 0);
    check(starts(real.out, "EAI:"), "control: libc itself refuses localhost with AI_NUMERICHOST", real.out);
    expect("getaddrinfo localhost no service -> port 0", NULL, WS5, "gai localhost inet stream -",
           "inet/1/6/127.18.0.5:0", 0);
    expect("getaddrinfo 127.0.0.1 passes through", NULL, WS5, "gai 127.0.0.1 inet stream 80",
           "inet/1/6/127.0.0.1:80", 0);
    expect("getaddrinfo localhost6 passes through", NULL, WS5, "gai ::1 inet6 stream 80",
           "inet6/1/6/[::1]:80", 0);
    expect_same_service("getaddrinfo localhost service name resolves like libc", "http");
    expect_same_service("getaddrinfo localhost unknown service: libc's error", "no-such-svc");
    expect_same_service("getaddrinfo localhost bad port: libc's error", "99999999");
    expect("many threads of getaddrinfo/freeaddrinfo", NULL, WS5, "gai-loop 20000 4", "ok", 0);
}

static void test_control(void)
{
    struct run r;
    probe(&r, NULL, WS5 " CMUX_PRELOAD_DISABLE=1", "bind4 127.0.0.1");
    check(r.status == 0 && starts(r.out, "127.0.0.1:") && !r.err[0],
          "CMUX_PRELOAD_DISABLE=1: bind untouched, silent", r.out);
    probe(&r, NULL, WS5 " CMUX_PRELOAD_DISABLE=1", "gai localhost inet stream 80");
    check(r.status == 0 && strstr(r.out, "127.0.0.1:80"), "CMUX_PRELOAD_DISABLE=1: real getaddrinfo",
          r.out);

    probe(&r, NULL, "CMUX_WORKSPACE_INTERNAL=workspace-0", "bind4 127.0.0.1");
    check(r.status == 0 && starts(r.out, "127.0.0.1:"), "refused name: shim disabled", r.out);
    check(count_lines(r.err) == 1 && strstr(r.err, "\"workspace-0\"") && strstr(r.err, "refused"),
          "refused name: exactly one line on stderr", r.err);
    probe(&r, NULL, "CMUX_WORKSPACE_INTERNAL=workspace-65536", "connect 127.0.0.1 127.0.0.1");
    check(r.status == 0 && starts(r.out, "peer=127.0.0.1:") && count_lines(r.err) == 1,
          "refused name (65536): connect untouched, one line", r.err);

    probe(&r, NULL, WS5, "bind4 0.0.0.0");
    check(r.status == 0 && !r.err[0], "no log lines without CMUX_PRELOAD_LOG", r.err);
    probe(&r, NULL, WS5 " CMUX_PRELOAD_LOG=1", "bind4 0.0.0.0");
    check(strstr(r.err, "bind 0.0.0.0:0 -> 127.18.0.5:0 (workspace-5)") != NULL,
          "CMUX_PRELOAD_LOG=1 logs a bind rewrite", r.err);
    probe(&r, NULL, WS5 " CMUX_PRELOAD_LOG=1", "connect 127.18.0.5 ::1");
    check(strstr(r.err, "connect [::1]:") && strstr(r.err, "-> [::ffff:127.18.0.5]:"),
          "CMUX_PRELOAD_LOG=1 logs a connect rewrite", r.err);
    expect("CMUX_WORKSPACE_INTERNAL as a path /root/workspace-9", NULL,
           "CMUX_WORKSPACE_INTERNAL=/root/workspace-9", "bind4 0.0.0.0", "127.18.0.9:", 1);
}

/* Counts the lines of s that contain needle. */
static int count_matching(const char *s, const char *needle)
{
    int n = 0;
    while (*s) {
        const char *end = strchr(s, '\n');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *hit = strstr(s, needle);
        if (hit && hit < s + len) n++;
        s += len + (end != NULL);
    }
    return n;
}

/* A refused name is reported once per process tree: a shell that runs two more shells loads
 * the shim three times but prints one line, unless CMUX_PRELOAD_LOG asks for every process. */
static void test_refused_once(void)
{
    struct run r;
    char what[200];
    char *tree[] = {"/bin/sh", "-c", "sh -c true; sh -c true; true", NULL};
    run_argv(&r, NULL, "CMUX_WORKSPACE_INTERNAL=workspace-0", tree, 30);
    snprintf(what, sizeof what, "refused name, 3 processes: one line on stderr (%d)",
             count_lines(r.err));
    check(r.status == 0 && count_lines(r.err) == 1 && count_matching(r.err, "refused") == 1,
          what, r.err);
    run_argv(&r, NULL, "CMUX_WORKSPACE_INTERNAL=workspace-0 CMUX_PRELOAD_LOG=1", tree, 30);
    snprintf(what, sizeof what,
             "refused name, 3 processes, CMUX_PRELOAD_LOG=1: one line each (%d)",
             count_matching(r.err, "\"workspace-0\" from CMUX_WORKSPACE_INTERNAL refused"));
    check(r.status == 0 && count_lines(r.err) == 3 &&
              count_matching(r.err, "\"workspace-0\" from CMUX_WORKSPACE_INTERNAL refused") == 3,
          what, r.err);

    char *other[] = {"/bin/sh", "-c",
                     "CMUX_WORKSPACE_INTERNAL=workspace-65536 sh -c 'sh -c true; true'; true",
                     NULL};
    run_argv(&r, NULL, "CMUX_WORKSPACE_INTERNAL=workspace-0", other, 30);
    check(r.status == 0 && count_lines(r.err) == 2 &&
              count_matching(r.err, "\"workspace-0\"") == 1 &&
              count_matching(r.err, "\"workspace-65536\"") == 1,
          "a child with another refused name reports it, once", r.err);

    char *show[] = {"/bin/sh", "-c", "sh -c 'echo \"${CMUX_PRELOAD_WARNED-unset}\"'", NULL};
    run_argv(&r, NULL, "CMUX_WORKSPACE_INTERNAL=workspace-0", show, 30);
    check(r.status == 0 && !strcmp(r.out, "workspace-0"),
          "children inherit CMUX_PRELOAD_WARNED=<the refused name>", r.out);
    run_argv(&r, NULL, WS5, show, 30);
    check(r.status == 0 && !strcmp(r.out, "unset") && !r.err[0],
          "a valid name sets no CMUX_PRELOAD_WARNED", r.out);

    probe(&r, NULL, "CMUX_WORKSPACE_INTERNAL=workspace-0 CMUX_PRELOAD_WARNED=workspace-0",
          "bind4 127.0.0.1");
    check(r.status == 0 && starts(r.out, "127.0.0.1:") && !r.err[0],
          "CMUX_PRELOAD_WARNED inherited with the same name: quiet", r.err);
}

static void mk(const char *sub)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", tmpdir, sub);
    mkdir(p, 0755);
}

static void test_cwd(void)
{
    char root[PATH_MAX + 32], rootslash[PATH_MAX + 40], linkroot[PATH_MAX + 40], cwd[PATH_MAX];
    char env[PATH_MAX + 100], want[32], what[160];
    snprintf(root, sizeof root, "CMUX_WORKSPACE_ROOT=%s", tmpdir);
    mk("workspace-12"); mk("workspace-12/src"); mk("workspace-12/src/deep");
    mk("workspace-a"); mk("workspace-0"); mk("workspace-\xc3\xa9"); mk("other");
    mk("other/workspace-3"); mk("root");

#define CWD(sub) (snprintf(cwd, sizeof cwd, "%s/%s", tmpdir, sub), cwd)
    expect("cwd in the workspace directory", CWD("workspace-12"), root, "bind4 0.0.0.0",
           "127.18.0.12:", 1);
    expect("cwd in a subdirectory of the workspace", CWD("workspace-12/src/deep"), root,
           "bind4 0.0.0.0", "127.18.0.12:", 1);
    /* A hashed name: the expected address is the vectors file's row for it. */
    if (vector_address("workspace-a", want, sizeof want - 1)) {
        strcat(want, ":");
        snprintf(what, sizeof what, "cwd workspace-a (hashed) -> %s (the vectors file)", want);
        expect(what, CWD("workspace-a"), root, "bind4 0.0.0.0", want, 1);
    } else {
        check(0, "the vectors file has a row for workspace-a", NULL);
    }
    expect("cwd not in a workspace: untouched", CWD("other"), root, "bind4 0.0.0.0",
           "0.0.0.0:", 1);
    expect("cwd workspace-* not directly under the root: untouched", CWD("other/workspace-3"),
           root, "bind4 0.0.0.0", "0.0.0.0:", 1);
    expect("cwd outside the root (default /root)", CWD("workspace-12"), "", "bind4 0.0.0.0",
           "0.0.0.0:", 1);
    snprintf(rootslash, sizeof rootslash, "CMUX_WORKSPACE_ROOT=%s//", tmpdir);
    expect("root given with trailing slashes", CWD("workspace-12/src"), rootslash,
           "bind4 0.0.0.0", "127.18.0.12:", 1);
    char target[PATH_MAX], link[PATH_MAX + 8];
    snprintf(target, sizeof target, "%s", tmpdir);
    snprintf(link, sizeof link, "%s/root/link", tmpdir);
    if (symlink(target, link) == 0) {
        snprintf(linkroot, sizeof linkroot, "CMUX_WORKSPACE_ROOT=%s", link);
        expect("root reached through a symlink", CWD("workspace-12"), linkroot, "bind4 0.0.0.0",
               "127.18.0.12:", 1);
    }
    snprintf(env, sizeof env, "%s %s", root, WS5);
    expect("CMUX_WORKSPACE_INTERNAL wins over the cwd", CWD("workspace-12"), env, "bind4 0.0.0.0",
           "127.18.0.5:", 1);

    struct run r;
    probe(&r, CWD("workspace-0"), root, "bind4 0.0.0.0");
    check(r.status == 0 && starts(r.out, "0.0.0.0:") && count_lines(r.err) == 1 &&
              strstr(r.err, "current directory"),
          "cwd workspace-0 refused: one line, untouched", r.err);
    probe(&r, CWD("workspace-\xc3\xa9"), root, "bind4 0.0.0.0");
    check(r.status == 0 && starts(r.out, "0.0.0.0:") && count_lines(r.err) == 1 &&
              strstr(r.err, "workspace-\\xc3\\xa9"),
          "cwd with a non-ASCII name refused, name escaped", r.err);
#undef CWD
}

/* ------------------------------------------------------------------------------------------ */
/* 3. valgrind                                                                                */

static int have_valgrind(void)
{
    return system("command -v valgrind >/dev/null 2>&1") == 0;
}

static void test_valgrind(void)
{
    if (!have_valgrind()) {
        printf("SKIP valgrind not installed (run e2e/deps.sh)\n");
        return;
    }
    struct run r;
    run_cmd(&r, NULL, WS5,
            "gai-loop 3000 2", "valgrind --leak-check=full --errors-for-leak-kinds=all "
            "--show-leak-kinds=definite,indirect,possible --error-exitcode=1 ", 300);
    const char *summary = strstr(r.err, "ERROR SUMMARY:");
    char detail[200];
    snprintf(detail, sizeof detail, "status %d, %.120s", r.status, summary ? summary : r.err);
    check(r.status == 0 && !strcmp(r.out, "ok") && summary && starts(summary, "ERROR SUMMARY: 0 errors"),
          "valgrind: getaddrinfo/freeaddrinfo x6000 under the shim, no leak, no error", detail);
    if (summary) printf("     valgrind %.*s\n", (int)strcspn(summary, "\n"), summary);
    const char *leak = strstr(r.err, "definitely lost:");
    if (leak) printf("     valgrind %.*s\n", (int)strcspn(leak, "\n"), leak);
    else if (strstr(r.err, "All heap blocks were freed")) printf("     valgrind: all heap blocks were freed\n");
}

/* ------------------------------------------------------------------------------------------ */

static void cleanup(void)
{
    char cmd[PATH_MAX + 20];
    if (!tmpdir[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--shim")) shim_path = argv[i + 1];
        if (!strcmp(argv[i], "--probe")) probe_path = argv[i + 1];
    }
    if (!shim_path || !probe_path) {
        fprintf(stderr, "usage: %s --shim LIB --probe PROBE\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cmux-shim-test.XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 2; }
    /* getcwd() in the child is canonical: canonicalize our root too (e.g. /tmp as a symlink). */
    char canon[PATH_MAX];
    if (realpath(tmpdir, canon)) snprintf(tmpdir, sizeof tmpdir, "%.500s", canon);

    test_vectors();
    test_bind();
    test_connect();
    test_udp();
    test_getaddrinfo();
    test_control();
    test_refused_once();
    test_cwd();
    test_valgrind();
    cleanup();

    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
