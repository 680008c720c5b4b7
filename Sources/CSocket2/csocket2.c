#define _GNU_SOURCE
#include <sys/socket.h>
#include <stddef.h>
#include <netdb.h>
#include <netinet/udp.h>
#include "csocket2.h"
#include <linux/tcp.h>

// The layouts must agree with glibc's, since the shims cast between them.
_Static_assert(sizeof(struct socket2_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr layout");
_Static_assert(offsetof(struct socket2_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len),
               "mmsghdr layout");
_Static_assert(sizeof(struct socket2_ucred) == sizeof(struct ucred), "ucred layout");
_Static_assert(sizeof(struct socket2_tcp_info) <= sizeof(struct tcp_info), "tcp_info layout");
_Static_assert(offsetof(struct socket2_tcp_info, tcpi_rto) == offsetof(struct tcp_info, tcpi_rto),
               "tcp_info layout");
_Static_assert(offsetof(struct socket2_tcp_info, tcpi_snd_wnd) ==
                   offsetof(struct tcp_info, tcpi_snd_wnd),
               "tcp_info layout");

int socket2_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}

int socket2_recvmmsg(int fd, struct socket2_mmsghdr *messages, unsigned int count, int flags,
                     struct timespec *timeout) {
    return recvmmsg(fd, (struct mmsghdr *)messages, count, flags, timeout);
}

int socket2_sendmmsg(int fd, struct socket2_mmsghdr *messages, unsigned int count, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)messages, count, flags);
}

// MARK: - Control messages, batched datagrams, zero copy (beyond socket2)

const int socket2_SCM_CREDENTIALS = SCM_CREDENTIALS;
_Static_assert(sizeof(struct socket2_in6_pktinfo) == sizeof(struct in6_pktinfo), "in6_pktinfo layout");

// MARK: - Name resolution (getaddrinfo)

const int socket2_EAI_ADDRFAMILY = EAI_ADDRFAMILY;
const int socket2_EAI_NODATA = EAI_NODATA;
const int socket2_EAI_INPROGRESS = EAI_INPROGRESS;
const int socket2_EAI_CANCELED = EAI_CANCELED;
const int socket2_EAI_NOTCANCELED = EAI_NOTCANCELED;
const int socket2_EAI_ALLDONE = EAI_ALLDONE;
const int socket2_EAI_INTR = EAI_INTR;
const int socket2_EAI_IDN_ENCODE = EAI_IDN_ENCODE;
const int socket2_AI_IDN = AI_IDN;
const int socket2_AI_CANONIDN = AI_CANONIDN;

_Static_assert(SOL_UDP == IPPROTO_UDP, "SOL_UDP");
