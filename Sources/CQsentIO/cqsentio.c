#define _GNU_SOURCE 1
#include "cqsentio.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
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
