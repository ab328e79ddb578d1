#define _GNU_SOURCE 1
#include "cqsentio.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/prctl.h>
#else
#include <pthread.h>
#endif

int cqsentio_peer_credentials(int fd, cqsentio_peer_cred *out) {
#if defined(__linux__)
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    if (len != sizeof cred) { errno = EINVAL; return -1; }
    out->pid = (int32_t)cred.pid;
    out->uid = (uint32_t)cred.uid;
    out->gid = (uint32_t)cred.gid;
    return 0;
#else
    uid_t uid;
    gid_t gid;
    if (getpeereid(fd, &uid, &gid) != 0) return -1;
    out->pid = 0;
    out->uid = (uint32_t)uid;
    out->gid = (uint32_t)gid;
    return 0;
#endif
}

int cqsentio_set_thread_name(const char *name) {
#if defined(__linux__)
    return prctl(PR_SET_NAME, name, 0, 0, 0);
#elif defined(__APPLE__)
    return pthread_setname_np(name);
#else
    (void)name;
    return 0;
#endif
}

/* The write end of the signal pipe. Set once by cqsentio_signal_pipe before any handler is
   installed, read by the handler (async-signal-safe: write(2) only). */
static volatile int signal_pipe_write = -1;

static void on_signal(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t r = write(signal_pipe_write, &b, 1); /* a full pipe drops the byte: a signal is already pending */
    (void)r;
    errno = saved;
}

int cqsentio_signal_pipe(const int *signals, int count) {
    if (signal_pipe_write >= 0) { errno = EBUSY; return -1; }
    int fds[2];
    if (pipe(fds) != 0) return -1;
    for (int i = 0; i < 2; i++) {
        if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0) goto fail;
    }
    int fl = fcntl(fds[1], F_GETFL);
    if (fl < 0 || fcntl(fds[1], F_SETFL, fl | O_NONBLOCK) != 0) goto fail;
    signal_pipe_write = fds[1];
    for (int i = 0; i < count; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        if (sigaction(signals[i], &sa, NULL) != 0) return -1;
    }
    return fds[0];
fail:
    close(fds[0]);
    close(fds[1]);
    return -1;
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CQSENTIO_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CQSENTIO_ASAN 1
#endif
#if defined(CQSENTIO_ASAN)
#include <sanitizer/asan_interface.h>
#endif

void cqsentio_asan_mark(void *p, size_t n, int poisoned) {
#if defined(CQSENTIO_ASAN)
    if (poisoned) __asan_poison_memory_region(p, n);
    else __asan_unpoison_memory_region(p, n);
#else
    (void)p; (void)n; (void)poisoned;
#endif
}

int cqsentio_release_free_memory(void) {
#if defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}

int cqsentio_pin_malloc_thresholds(size_t bytes) {
#if defined(__GLIBC__)
    if (bytes > (size_t)0x7fffffff) { errno = EINVAL; return -1; }
    /* Setting either one also turns off glibc's dynamic threshold (which would raise both). */
    if (mallopt(M_MMAP_THRESHOLD, (int)bytes) != 1) { errno = EINVAL; return -1; }
    if (mallopt(M_TRIM_THRESHOLD, (int)bytes) != 1) { errno = EINVAL; return -1; }
    return 1;
#else
    (void)bytes;
    return 0;
#endif
}

int cqsentio_limit_malloc_arenas(int n) {
#if defined(__GLIBC__)
    if (n < 1 || mallopt(M_ARENA_MAX, n) != 1) { errno = EINVAL; return -1; }
    return 1;
#else
    (void)n;
    return 0;
#endif
}

int cqsentio_heap_statistics(cqsentio_heap_stats *out) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    out->heap_bytes = (uint64_t)mi.arena;
    out->heap_in_use = (uint64_t)mi.uordblks;
    out->heap_free = (uint64_t)mi.fordblks;
    out->mmapped_bytes = (uint64_t)mi.hblkhd;
    out->mmapped_chunks = (uint64_t)mi.hblks;
    return 0;
#else
    memset(out, 0, sizeof *out);
    errno = ENOSYS;
    return -1;
#endif
}

int cqsentio_malloc_arena_count(void) {
#if defined(__GLIBC__)
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return -1;
    const int rc = malloc_info(0, f);
    if (fclose(f) != 0 || rc != 0) { free(buf); return -1; }
    int n = 0;
    for (const char *p = buf; p && (p = strstr(p, "<heap nr=\"")) != NULL; p++) n++;
    free(buf);
    return n;
#else
    errno = ENOSYS;
    return -1;
#endif
}

int cqsentio_format_double(char *buf, size_t size, char conversion, int precision, double x) {
    switch (conversion) {
    case 'f': return snprintf(buf, size, "%.*f", precision, x);
    case 'e': return snprintf(buf, size, "%.*e", precision, x);
    case 'g': return snprintf(buf, size, "%.*g", precision, x);
    default: errno = EINVAL; return -1;
    }
}
