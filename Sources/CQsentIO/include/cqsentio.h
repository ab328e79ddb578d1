#ifndef CQSENTIO_H
#define CQSENTIO_H

#include <stddef.h>
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

/// Under AddressSanitizer (the build's -fsanitize=address): marks [p, p+n) as unaddressable
/// (poisoned 1), so that an access there is reported as one past a malloc'd buffer would be, or
/// addressable again (0). Elsewhere a no-op. For memory that is not malloc's (a mapping cut
/// into several buffers).
void cqsentio_asan_mark(void *p, size_t n, int poisoned);

/// glibc: malloc_trim(0), returning freed heap pages of every arena to the kernel (1 if memory
/// was released). Elsewhere a no-op returning 0.
int cqsentio_release_free_memory(void);

/// glibc: pins the malloc thresholds with mallopt: allocations of at least `bytes` get their
/// own mmap (returned to the kernel by free), and an arena's free top above `bytes` is given
/// back. Without this glibc raises both thresholds after the first free of an mmapped chunk
/// (up to 32 MiB and 64 MiB), so large, varying buffers (activations) are carved from the arenas
/// and their freed space stays resident. Returns 1 when set, 0 where there is no such knob
/// (not glibc), -1 with errno EINVAL when refused.
int cqsentio_pin_malloc_thresholds(size_t bytes);

/// glibc: at most `n` malloc arenas (mallopt M_ARENA_MAX; by default up to 8 per core, one per
/// thread that allocates while the others are busy). Returns 1 when set, 0 where there is no
/// such knob (not glibc), -1 with errno EINVAL when refused.
int cqsentio_limit_malloc_arenas(int n);

/// Heap figures from glibc's mallinfo2, summed over all arenas.
typedef struct {
    /// Bytes the arenas hold from the kernel (sbrk heap + thread-arena heaps; not mmapped chunks).
    uint64_t heap_bytes;
    /// Of these, bytes in allocated chunks.
    uint64_t heap_in_use;
    /// Of these, bytes in free chunks.
    uint64_t heap_free;
    /// Bytes in chunks that have their own mmap.
    uint64_t mmapped_bytes;
    uint64_t mmapped_chunks;
} cqsentio_heap_stats;

/// Fills `out` from mallinfo2 and returns 0; -1 with errno ENOSYS (and zeros) without glibc 2.33+.
int cqsentio_heap_statistics(cqsentio_heap_stats *out);

/// glibc: how many malloc arenas the process has (the `<heap nr=…>` entries of malloc_info), or
/// -1 (errno set) where malloc_info is missing or fails.
int cqsentio_malloc_arena_count(void);

/// snprintf(buf, size, "%.*f" / "%.*e" / "%.*g", precision, x) for conversion 'f', 'e', 'g'
/// (a fixed format string: Swift cannot call the variadic snprintf). snprintf's return value.
int cqsentio_format_double(char *buf, size_t size, char conversion, int precision, double x);

#endif
