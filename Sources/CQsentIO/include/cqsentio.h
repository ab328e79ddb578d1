#ifndef CQSENTIO_H
#define CQSENTIO_H

#include <stdint.h>

/// Peer credentials of a connected Unix stream socket.
typedef struct {
    int32_t pid;
    uint32_t uid;
    uint32_t gid;
} cqsentio_peer_cred;

/// Linux: getsockopt(SO_PEERCRED) into `struct ucred` (declared only with _GNU_SOURCE, which
/// this shim defines so Swift code need not lay the struct out by hand). Elsewhere:
/// getpeereid (pid 0). Returns 0, or -1 with errno set.
int cqsentio_peer_credentials(int fd, cqsentio_peer_cred *out);

/// Names the calling thread (Linux keeps the first 15 bytes; shown by top -H and in cores).
/// Returns 0, or -1 with errno set.
int cqsentio_set_thread_name(const char *name);

/// Installs a handler for each of `signals` that writes the signal's number (one byte) to a
/// pipe, and returns the pipe's read end (close-on-exec), or -1 with errno set. Once per
/// process (EBUSY after). The handler only calls write(2), so it is async-signal-safe whatever
/// thread it interrupts.
int cqsentio_signal_pipe(const int *signals, int count);

/// glibc: malloc_trim(0), returning freed heap pages of every arena to the kernel (1 if memory
/// was released). Elsewhere a no-op returning 0.
int cqsentio_release_free_memory(void);

#endif
