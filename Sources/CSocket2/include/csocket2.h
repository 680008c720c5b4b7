// Declarations Swift's Glibc module does not import: GNU-only calls and structures of
// <sys/socket.h>, and Linux UAPI headers. Only Socket2's Syscalls.swift uses them.
#ifndef CSOCKET2_H
#define CSOCKET2_H

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <linux/sockios.h>
#include <linux/vm_sockets.h>

/// `struct mmsghdr` (GNU): one message of recvmmsg/sendmmsg.
struct socket2_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

/// `struct ucred` (GNU): SO_PEERCRED and SCM_CREDENTIALS.
struct socket2_ucred {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};

/// `struct in6_pktinfo` (GNU): IPV6_PKTINFO.
struct socket2_in6_pktinfo {
    struct in6_addr ipi6_addr;
    unsigned int ipi6_ifindex;
};

// MARK: - Control messages, batched datagrams, zero copy (beyond socket2)

// <netinet/udp.h> (glibc) names SOL_UDP, UDP_SEGMENT and UDP_GRO, which Glibc's module does not
// import; unlike <linux/udp.h> it does not clash with <netinet/in.h>.
#include <netinet/udp.h>

/// `SCM_CREDENTIALS` (GNU-only in glibc's headers): its value, taken in csocket2.c.
extern const int socket2_SCM_CREDENTIALS;

// MARK: - Name resolution (getaddrinfo)

#include <netdb.h>

// The GNU-only `EAI_*` codes of <netdb.h>, taken in csocket2.c (compiled with _GNU_SOURCE).
extern const int socket2_EAI_ADDRFAMILY;
extern const int socket2_EAI_NODATA;
extern const int socket2_EAI_INPROGRESS;
extern const int socket2_EAI_CANCELED;
extern const int socket2_EAI_NOTCANCELED;
extern const int socket2_EAI_ALLDONE;
extern const int socket2_EAI_INTR;
extern const int socket2_EAI_IDN_ENCODE;
// The GNU-only `AI_*` flags.
extern const int socket2_AI_IDN;
extern const int socket2_AI_CANONIDN;

int socket2_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
int socket2_recvmmsg(int fd, struct socket2_mmsghdr *messages, unsigned int count, int flags,
                     struct timespec *timeout);
int socket2_sendmmsg(int fd, struct socket2_mmsghdr *messages, unsigned int count, int flags);

#endif
