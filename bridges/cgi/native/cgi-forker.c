/*
 * cgi-forker: the CGI bridge's forker, in C. bridges/cgi/bridge.pl runs it in place of
 * bridges/cgi/forker.pl when it has been built (npm ci does, with the system C compiler; see
 * build.ts); the two speak the same messages and behave the same, forker.pl's header has them.
 *
 * Why a C version: a script started by forker.pl costs a fork() of a perl process (its page
 * tables copied, then the pages the child touches before execve() faulted in again, then that
 * copy torn down at execve()). Here every script is started with posix_spawn(), which glibc
 * implements with clone(CLONE_VM | CLONE_VFORK): the child borrows this process's memory until
 * it calls execve(), so nothing is copied. On a hello-world CGI script that is about a fifth
 * of the CPU a request costs (docs/cgi.md has the measurements).
 *
 *   cgi-forker FD [ignored]     FD: the SOCK_SEQPACKET socket to the bridge (as forker.pl)
 *
 * Messages (one datagram each, bridge -> forker; nothing comes back):
 *   "S" id:u32be nargs:u32be nenv:u32be, then NUL-terminated strings: directory, program
 *       (a path, or a helper name looked up in PATH), name for the log, nargs arguments,
 *       nenv "NAME=value"; SCM_RIGHTS: the script's stdout, then its stdin when there is a
 *       body. Start the script: its own process group, stdin/stdout from the descriptors,
 *       cwd the directory. When it cannot be started, log why; its stdout is closed without
 *       a header block, which the bridge answers with a 500.
 *   "K" id:u32be: kill that script's process group if it still runs (and do not log its exit).
 * EOF from the bridge: kill every script still running and exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* A request's variables are at most 64 KB; the rest is our environment (as forker.pl). */
#define MAX_MESSAGE 262144
#define MAX_FDS 4

/* A script not yet reaped. */
struct script {
    pid_t pid;
    uint32_t id;
    int killed;
    char *what;
};

static struct script *live;
static size_t live_count, live_size;

static void log_line(const char *fmt, const char *a, const char *b) {
    char line[4096];
    int n = snprintf(line, sizeof line, fmt, a, b);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    ssize_t ignored = write(2, line, (size_t)n);
    (void)ignored;
}

static void kill_group(pid_t pid) {
    if (kill(-pid, SIGKILL) < 0) kill(pid, SIGKILL);
}

static const char *describe_status(int status, char *buf, size_t size) {
    if (WIFSIGNALED(status)) {
        const char *name = sigabbrev_np(WTERMSIG(status));
        if (name) snprintf(buf, size, "signal SIG%s", name);
        else snprintf(buf, size, "signal %d", WTERMSIG(status));
    } else {
        snprintf(buf, size, "status %d", WEXITSTATUS(status));
    }
    return buf;
}

static void reap(void) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < live_count; i++) {
            if (live[i].pid != pid) continue;
            if (!live[i].killed && status != 0) {
                char why[64];
                log_line("[cgi] %s exited with %s\n", live[i].what, describe_status(status, why, sizeof why));
            }
            free(live[i].what);
            live[i] = live[--live_count];
            break;
        }
    }
}

static void remember(pid_t pid, uint32_t id, const char *what) {
    if (live_count == live_size) {
        size_t size = live_size ? live_size * 2 : 64;
        struct script *grown = realloc(live, size * sizeof *grown);
        if (!grown) {
            log_line("[cgi] %s%s: out of memory, its exit will not be logged\n", what, "");
            return;
        }
        live = grown;
        live_size = size;
    }
    live[live_count].pid = pid;
    live[live_count].id = id;
    live[live_count].killed = 0;
    live[live_count].what = strdup(what);
    if (!live[live_count].what) return;
    live_count++;
}

static uint32_t be32(const char *p) {
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static void spawn_script(char *data, size_t length, int out_fd, int in_fd) {
    if (length < 13) {
        log_line("[cgi] %s%s\n", "cgi forker: malformed message from the bridge", "");
        return;
    }
    uint32_t id = be32(data + 1), nargs = be32(data + 5), nenv = be32(data + 9);
    size_t count = 3 + (size_t)nargs + nenv;
    if (nargs > MAX_MESSAGE || nenv > MAX_MESSAGE) {
        log_line("[cgi] %s%s\n", "cgi forker: malformed message from the bridge", "");
        return;
    }
    char **strings = malloc((count + 2) * sizeof *strings);
    if (!strings) return;
    size_t at = 13;
    for (size_t i = 0; i < count; i++) {
        char *end = at < length ? memchr(data + at, '\0', length - at) : NULL;
        if (!end) {
            log_line("[cgi] %s%s\n", "cgi forker: malformed message from the bridge", "");
            free(strings);
            return;
        }
        strings[i] = data + at;
        at = (size_t)(end - data) + 1;
    }
    const char *dir = strings[0], *file = strings[1], *what = strings[2];
    /* argv = { file, args..., NULL } (strings[1..2+nargs] with the log name dropped). */
    char **argv = malloc((nargs + 2) * sizeof *argv);
    if (!argv) {
        free(strings);
        return;
    }
    argv[0] = (char *)file;
    for (uint32_t i = 0; i < nargs; i++) argv[1 + i] = strings[3 + i];
    argv[1 + nargs] = NULL;
    char **envp = strings + 3 + nargs;
    envp[nenv] = NULL;

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    /* Our descriptors are close-on-exec; 0-2 are the script's (0 stays ours, /dev/null, without a body). */
    if (in_fd >= 0) posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    posix_spawn_file_actions_addchdir_np(&actions, dir);
    /* Its own process group (a timeout kills the script and what it started), default
     * signal dispositions and an empty mask, as after fork() + execve() from forker.pl. */
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_USEVFORK);

    pid_t pid;
    /* A helper given by name is looked up in PATH, as execvp() does (forker.pl: find_program). */
    int err = strchr(file, '/') ? posix_spawn(&pid, file, &actions, &attr, argv, envp)
                                : posix_spawnp(&pid, file, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (err == 0) {
        remember(pid, id, what);
    } else if (err == ENOENT && !strchr(file, '/')) {
        log_line("[cgi] unable to run %s: helper \"%s\" not found in PATH (check --cgi-helper)\n", what, file);
    } else {
        log_line("[cgi] unable to run %s: %s\n", what, strerror(err));
    }
    free(argv);
    free(strings);
}

static void kill_script(uint32_t id) {
    /* Still ours (not reaped), so its pid cannot have been reused. */
    for (size_t i = 0; i < live_count; i++) {
        if (live[i].id != id) continue;
        live[i].killed = 1;
        kill_group(live[i].pid);
        return;
    }
}

static void noop(int sig) { (void)sig; }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "cgi-forker: usage: cgi-forker FD (it is started by bridges/cgi/bridge.pl)\n");
        return 2;
    }
    int sock = atoi(argv[1]);
    if (fcntl(sock, F_SETFD, FD_CLOEXEC) < 0) {
        fprintf(stderr, "cgi forker: fd %s is not open (it is started by bridges/cgi/bridge.pl): %s\n", argv[1], strerror(errno));
        return 1;
    }
    /* Ctrl-C signals the whole process group: the bridge decides how we stop. A handler (not
     * SIG_IGN) so that the scripts start with the default action. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = noop;
    sigaction(SIGINT, &sa, NULL);

    static char data[MAX_MESSAGE + 1];
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
    } control;

    for (;;) {
        /* No SIGCHLD handler (as forker.pl): scripts are collected before each wait for a
         * message, and every second while any runs. */
        if (live_count) reap();
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        int ready = poll(&pfd, 1, live_count ? 1000 : -1);
        if (ready <= 0) continue; /* timeout (collect) or EINTR */

        struct iovec iov = {.iov_base = data, .iov_len = MAX_MESSAGE};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
        ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            fprintf(stderr, "cgi forker: recvmsg: %s\n", strerror(errno));
            return 1;
        }
        if (n == 0) {
            for (size_t i = 0; i < live_count; i++) kill_group(live[i].pid);
            return 0;
        }
        int fds[MAX_FDS];
        int nfds = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k && nfds < MAX_FDS; i++) memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }
        data[n] = '\0';
        if (data[0] == 'S' && nfds > 0) {
            spawn_script(data, (size_t)n, fds[0], nfds > 1 ? fds[1] : -1);
        } else if (data[0] == 'K' && n >= 5) {
            kill_script(be32(data + 1));
        }
        for (int i = 0; i < nfds; i++) close(fds[i]);
    }
}
