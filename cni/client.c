/* nodelet-cni client: the executable a CNI runtime runs. Compiled by cni/install.py at install time.
 *
 * Forwards CNI_* env + stdin to the nodelet CNI server (unix socket) and prints its answer; ~1 ms instead of
 * the ~10 ms a Python interpreter needs just to start. When no server answers it execs the full Python plugin
 * (the fallback), so every command - DEL above all - works with the daemon down.
 * VERSION is answered here (the reply is embedded at install time).
 * Wire format: see cni/server.py.  Build: cc -O2 -DSOCKET_PATH=... -DPYTHON=... -DPKG_PARENT=... -DMARKER=... -DVERSION_REPLY=...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;
__attribute__((used)) static const char marker[] = MARKER; /* lets install.py tell whether this binary is current */

static char *slurp(int fd, size_t *len) {
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) return NULL;
        if (n == cap) buf = realloc(buf, cap *= 2);
        if (!buf) return NULL;
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { free(buf); return NULL; }
        if (r == 0) break;
        n += (size_t)r;
    }
    *len = n;
    return buf;
}

static void fallback(const char *stdin_data, size_t stdin_len) {
    if (stdin_data) { /* stdin was consumed: hand the bytes to the fallback through a memfd */
        int fd = memfd_create("nodelet-cni-stdin", 0);
        if (fd >= 0 && write(fd, stdin_data, stdin_len) == (ssize_t)stdin_len && lseek(fd, 0, SEEK_SET) == 0)
            dup2(fd, 0);
    }
    const char *command = getenv("CNI_COMMAND");
    if (command && !strcmp(command, "DEL")) { /* import-light DEL: no site, no asyncio, no pyroute2 */
        char *argv[] = {PYTHON, "-I", "-S", "-c",
                        "import sys; sys.path.append(" PKG_PARENT_PY "); from cni.lightdel import main; main("
                        PKG_PARENT_PY ")", NULL};
        execv(PYTHON, argv);
    }
    char *argv[] = {PYTHON, "-I", "-c",
                    "import sys; sys.path.append(" PKG_PARENT_PY "); from cni.__main__ import main; main()", NULL};
    execv(PYTHON, argv);
    printf("{\"cniVersion\": \"1.1.0\", \"code\": 999, \"msg\": \"nodelet-cni: cannot exec %s: %s\"}\n", PYTHON,
           strerror(errno));
    exit(1);
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w; n -= (size_t)w;
    }
    return 0;
}

int main(void) {
    (void)marker;
    const char *command = getenv("CNI_COMMAND");
    if (command && !strcmp(command, "VERSION")) { /* constant answer, embedded at install: no server, no Python */
        fputs(VERSION_REPLY, stdout);
        return 0;
    }
    const char *path = getenv("NODELET_CNI_SOCKET");
    if (!path || !*path) path = SOCKET_PATH;
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (s < 0 || strlen(path) >= sizeof(addr.sun_path)) fallback(NULL, 0);
    strcpy(addr.sun_path, path);
    if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) != 0) { close(s); fallback(NULL, 0); }
    struct timeval tmo = {.tv_sec = 120}; /* a hung server must not hang the runtime forever */
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof tmo);

    size_t in_len = 0;
    char *in = slurp(0, &in_len);
    if (!in) { puts("{\"cniVersion\": \"1.1.0\", \"code\": 5, \"msg\": \"nodelet-cni: cannot read stdin\"}"); return 1; }
    size_t env_len = 0, k = 0;
    for (char **e = environ; *e; e++) if (!strncmp(*e, "CNI_", 4)) env_len += strlen(*e) + (k++ ? 1 : 0);
    char *env = malloc(env_len + 1), *p = env;
    k = 0;
    for (char **e = environ; *e; e++) if (!strncmp(*e, "CNI_", 4)) {
        if (k++) *p++ = '\0';
        size_t l = strlen(*e);
        memcpy(p, *e, l); p += l;
    }
    char head[64];
    int hl = snprintf(head, sizeof head, "NCNI1 %zu %zu\n", env_len, in_len);
    int ok = write_all(s, head, (size_t)hl) == 0 && write_all(s, env, env_len) == 0 && write_all(s, in, in_len) == 0
             && shutdown(s, SHUT_WR) == 0;
    size_t out_len = 0;
    char *out = ok ? slurp(s, &out_len) : NULL;
    char *nl = out ? memchr(out, '\n', out_len) : NULL;
    if (!nl) { /* the server went away mid-request */
        const char *cmd = getenv("CNI_COMMAND");
        if (cmd && !strcmp(cmd, "ADD")) {
            puts("{\"cniVersion\": \"1.1.0\", \"code\": 11, \"msg\": \"nodelet-cni server went away during ADD; try again\"}");
            return 1;
        }
        fallback(in, in_len);
    }
    int code = atoi(out);
    size_t body = out_len - (size_t)(nl + 1 - out);
    if (write_all(1, nl + 1, body) != 0) return 1;
    return code;
}
