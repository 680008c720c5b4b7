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
// Socket options: SIOCOUTQ expands to TIOCOUTQ (sys/ioctl.h); DCCP_SOCKOPT_*; sock_filter/sock_fprog.
#include <sys/ioctl.h>
#include <linux/dccp.h>
#include <linux/filter.h>

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

// MARK: - Socket options

/// The kernel's `struct tcp_info` (linux/tcp.h, up to `tcpi_snd_wnd`), which glibc's
/// <netinet/tcp.h> declares only up to `tcpi_total_retrans`. The UAPI header cannot be included
/// here beside glibc's, so the layout is restated; csocket2.c checks it against linux/tcp.h.
struct socket2_tcp_info {
    __u8 tcpi_state;
    __u8 tcpi_ca_state;
    __u8 tcpi_retransmits;
    __u8 tcpi_probes;
    __u8 tcpi_backoff;
    __u8 tcpi_options;
    __u8 tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4;
    __u8 tcpi_delivery_rate_app_limited : 1, tcpi_fastopen_client_fail : 2;
    __u32 tcpi_rto;
    __u32 tcpi_ato;
    __u32 tcpi_snd_mss;
    __u32 tcpi_rcv_mss;
    __u32 tcpi_unacked;
    __u32 tcpi_sacked;
    __u32 tcpi_lost;
    __u32 tcpi_retrans;
    __u32 tcpi_fackets;
    __u32 tcpi_last_data_sent;
    __u32 tcpi_last_ack_sent;
    __u32 tcpi_last_data_recv;
    __u32 tcpi_last_ack_recv;
    __u32 tcpi_pmtu;
    __u32 tcpi_rcv_ssthresh;
    __u32 tcpi_rtt;
    __u32 tcpi_rttvar;
    __u32 tcpi_snd_ssthresh;
    __u32 tcpi_snd_cwnd;
    __u32 tcpi_advmss;
    __u32 tcpi_reordering;
    __u32 tcpi_rcv_rtt;
    __u32 tcpi_rcv_space;
    __u32 tcpi_total_retrans;
    __u64 tcpi_pacing_rate;
    __u64 tcpi_max_pacing_rate;
    __u64 tcpi_bytes_acked;
    __u64 tcpi_bytes_received;
    __u32 tcpi_segs_out;
    __u32 tcpi_segs_in;
    __u32 tcpi_notsent_bytes;
    __u32 tcpi_min_rtt;
    __u32 tcpi_data_segs_in;
    __u32 tcpi_data_segs_out;
    __u64 tcpi_delivery_rate;
    __u64 tcpi_busy_time;
    __u64 tcpi_rwnd_limited;
    __u64 tcpi_sndbuf_limited;
    __u32 tcpi_delivered;
    __u32 tcpi_delivered_ce;
    __u64 tcpi_bytes_sent;
    __u64 tcpi_bytes_retrans;
    __u32 tcpi_dsack_dups;
    __u32 tcpi_reord_seen;
    __u32 tcpi_rcv_ooopack;
    __u32 tcpi_snd_wnd;
};
// MARK: - Control messages, batched datagrams, zero copy (beyond socket2)

// SOL_UDP, UDP_SEGMENT and UDP_GRO (udp(7)), which Glibc's module does not import. Defined
// here rather than by including <netinet/udp.h>: every glibc header this file includes that
// Glibc's module does not already cover moves declarations out of reach of code importing Glibc.
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/// `SCM_CREDENTIALS` (GNU-only in glibc's headers): its value, taken in csocket2.c.
extern const int socket2_SCM_CREDENTIALS;

// MARK: - Name resolution (getaddrinfo)

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
