/* net_dgram's UDP, UDP-lite, ping and raw sockets (included once, by net_dgram.c).
 *
 * UDP: a loopback pair 127.0.0.1:7101 <-> :7102 (the second connected) with datagrams queued
 * both ways (one empty, one of 20000 bytes), an IPv6 pair [::1]:7103 -> [::1]:7104 likewise,
 * a wildcard socket *:7105 in multicast group 239.1.2.3 on IFNAME with IP_PKTINFO and a
 * multicast TTL, holding a datagram from 127.0.0.1:7106 (and what the test sends it from the
 * other host), a UDP-lite socket holding a datagram it sent itself, and a socket never bound.
 * Ping: an IPv4 ping socket with identifier 0x4242 connected to PEER4, an IPv6 one, a raw ICMP
 * socket with an ICMP_FILTER and a raw IPPROTO_RAW socket. */
#ifndef NET_DGRAM_INET_H
#define NET_DGRAM_INET_H
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <netinet/udp.h>

#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#endif
#define BIG_DGRAM 20000
#define MCAST_GROUP "239.1.2.3"

static int u1, u2, u3, u4, u5, u6, u7, u8, u1_rcvbuf;
static int p1, p2, r1, r2, r3;
static struct icmp6_filter r3_filter;
static const char *peer4_addr, *peer6_addr;

static unsigned char big_byte(int i) { return (unsigned char)(i * 13 + 5); }

static struct sockaddr_in in4(const char *addr, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, addr, &a.sin_addr);
	return a;
}

static struct sockaddr_in6 in6(const char *addr, int port)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	inet_pton(AF_INET6, addr, &a.sin6_addr);
	return a;
}

static int udp_bound(int family, int proto, const void *addr, socklen_t len)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, proto);
	if (fd < 0 || (addr && bind(fd, addr, len) < 0))
		die("UDP socket/bind");
	return fd;
}

static void send_to(int fd, const void *data, size_t n, const void *to, socklen_t len)
{
	if (sendto(fd, data, n, 0, to, len) != (ssize_t)n)
		die("sendto");
}

static void setup_udp(const char *peer4, const char *peer6)
{
	peer4_addr = peer4;
	peer6_addr = peer6;
	struct sockaddr_in a1 = in4("127.0.0.1", 7101), a2 = in4("127.0.0.1", 7102), any5 = in4("0.0.0.0", 7105), a6 = in4("127.0.0.1", 7106),
		a7 = in4("127.0.0.1", 7107), lo5 = in4("127.0.0.1", 7105);
	struct sockaddr_in6 a3 = in6("::1", 7103), a4 = in6("::1", 7104);
	u1 = udp_bound(AF_INET, 0, &a1, sizeof a1);
	int rcvbuf = 100000;
	setsockopt(u1, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	socklen_t len = sizeof u1_rcvbuf;
	getsockopt(u1, SOL_SOCKET, SO_RCVBUF, &u1_rcvbuf, &len);
	/* a classic BPF filter that accepts every datagram whole */
	static struct sock_filter accept_all[] = { { BPF_RET | BPF_K, 0, 0, 0xffff } };
	struct sock_fprog prog = { .len = 1, .filter = accept_all };
	if (setsockopt(u1, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0)
		die("SO_ATTACH_FILTER");
	u2 = udp_bound(AF_INET, 0, &a2, sizeof a2);
	if (connect(u2, (struct sockaddr *)&a1, sizeof a1) < 0)
		die("connect u2");
	static unsigned char big[BIG_DGRAM];
	for (int i = 0; i < BIG_DGRAM; i++)
		big[i] = big_byte(i);
	send_to(u1, "dgram-1", 7, &a2, sizeof a2);
	send_to(u1, "", 0, &a2, sizeof a2);
	send_to(u1, big, BIG_DGRAM, &a2, sizeof a2);
	send_to(u2, "back-1", 6, NULL, 0);
	send_to(u2, "back-22", 7, NULL, 0);

	u4 = udp_bound(AF_INET6, 0, &a4, sizeof a4);
	u3 = udp_bound(AF_INET6, 0, &a3, sizeof a3);
	if (connect(u3, (struct sockaddr *)&a4, sizeof a4) < 0)
		die("connect u3");
	send_to(u4, "six-1", 5, &a3, sizeof a3);
	send_to(u4, "six-22", 6, &a3, sizeof a3);
	send_to(u3, "six-back", 8, NULL, 0);

	u5 = udp_bound(AF_INET, 0, &any5, sizeof any5);
	struct ip_mreqn mr = { .imr_ifindex = ifindex };
	inet_pton(AF_INET, MCAST_GROUP, &mr.imr_multiaddr);
	int on = 1, ttl = 5;
	if (setsockopt(u5, SOL_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0 || setsockopt(u5, SOL_IP, IP_PKTINFO, &on, sizeof on) < 0 ||
	    setsockopt(u5, SOL_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) < 0)
		die("u5 options");
	u6 = udp_bound(AF_INET, 0, &a6, sizeof a6);
	send_to(u6, "from-6", 6, &lo5, sizeof lo5);

	u7 = udp_bound(AF_INET, IPPROTO_UDPLITE, &a7, sizeof a7);
	int cscov = 20;
	if (setsockopt(u7, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, &cscov, sizeof cscov) < 0)
		die("UDPLITE_SEND_CSCOV");
	send_to(u7, "lite-self", 9, &a7, sizeof a7);
	u8 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	/* let loopback deliver what was sent before READY */
	usleep(50000);
	printf("UDP ready\n");
}

/* The next datagram queued on fd: its bytes and sender must be these. */
static void expect_dgram(const char *what, int fd, const void *data, size_t n, const void *from, socklen_t from_len)
{
	static unsigned char buf[65536];
	struct sockaddr_storage got;
	socklen_t got_len = sizeof got;
	ssize_t r = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&got, &got_len);
	if (r < 0) {
		fail("%s: no datagram of %zu bytes (%s)", what, n, strerror(errno));
		return;
	}
	if ((size_t)r != n || memcmp(buf, data, n))
		fail("%s: got %zd bytes, wanted %zu", what, r, n);
	if (from && (got_len != from_len || memcmp(&got, from, from_len)))
		fail("%s: from another sender (port %d)", what, ntohs(((struct sockaddr_in *)&got)->sin_port));
}

static void expect_empty(const char *what, int fd)
{
	char c;
	if (recv(fd, &c, 1, MSG_DONTWAIT) >= 0 || errno != EAGAIN)
		fail("%s: more datagrams than were queued", what);
}

static void check_udp(void)
{
	struct sockaddr_in a1 = in4("127.0.0.1", 7101), a2 = in4("127.0.0.1", 7102), a6 = in4("127.0.0.1", 7106), a7 = in4("127.0.0.1", 7107),
		b = in4(peer4_addr, 7200);
	struct sockaddr_in6 a3 = in6("::1", 7103), a4 = in6("::1", 7104);
	static unsigned char big[BIG_DGRAM];
	for (int i = 0; i < BIG_DGRAM; i++)
		big[i] = big_byte(i);
	expect_dgram("u2 first", u2, "dgram-1", 7, &a1, sizeof a1);
	expect_dgram("u2 empty", u2, "", 0, &a1, sizeof a1);
	expect_dgram("u2 big", u2, big, BIG_DGRAM, &a1, sizeof a1);
	expect_empty("u2", u2);
	expect_dgram("u1 first", u1, "back-1", 6, &a2, sizeof a2);
	expect_dgram("u1 second", u1, "back-22", 7, &a2, sizeof a2);
	expect_empty("u1", u1);
	expect_dgram("u3 first", u3, "six-1", 5, &a4, sizeof a4);
	expect_dgram("u3 second", u3, "six-22", 6, &a4, sizeof a4);
	expect_dgram("u4", u4, "six-back", 8, &a3, sizeof a3);
	expect_empty("u3", u3);
	/* u5: from u6, then from the other host (sent before the dump), then a multicast one sent after the restore */
	expect_dgram("u5 from u6", u5, "from-6", 6, &a6, sizeof a6);
	expect_dgram("u5 from the other host", u5, "from-b\n", 7, &b, sizeof b);
	struct pollfd p = { .fd = u5, .events = POLLIN };
	if (poll(&p, 1, 3000) != 1)
		fail("u5: the multicast datagram sent to %s after the restore did not arrive", MCAST_GROUP);
	else {
		char buf[64], control[256];
		struct iovec iov = { buf, sizeof buf };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
		ssize_t n = recvmsg(u5, &m, MSG_DONTWAIT);
		int pktinfo = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_PKTINFO)
				pktinfo = ((struct in_pktinfo *)CMSG_DATA(c))->ipi_ifindex == ifindex;
		if (n != 12 || memcmp(buf, "mcast-after\n", 12) || !pktinfo)
			fail("u5: multicast datagram of %zd bytes, IP_PKTINFO naming interface %d: %d", n, ifindex, pktinfo);
	}
	int ttl = 0;
	socklen_t len = sizeof ttl;
	getsockopt(u5, SOL_IP, IP_MULTICAST_TTL, &ttl, &len);
	if (ttl != 5)
		fail("u5: IP_MULTICAST_TTL %d", ttl);
	expect_dgram("UDP-lite self", u7, "lite-self", 9, &a7, sizeof a7);
	int cscov = 0, proto = 0;
	len = sizeof cscov;
	getsockopt(u7, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, &cscov, &len);
	len = sizeof proto;
	getsockopt(u7, SOL_SOCKET, SO_PROTOCOL, &proto, &len);
	if (cscov != 20 || proto != IPPROTO_UDPLITE)
		fail("UDP-lite: protocol %d, send coverage %d", proto, cscov);
	struct sockaddr_in name;
	len = sizeof name;
	getsockname(u8, (struct sockaddr *)&name, &len);
	if (name.sin_port != 0 || !(fcntl(u8, F_GETFL) & O_NONBLOCK))
		fail("unbound UDP socket: port %d", ntohs(name.sin_port));
	int rcvbuf = 0;
	len = sizeof rcvbuf;
	getsockopt(u1, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len);
	if (rcvbuf != u1_rcvbuf)
		fail("u1: SO_RCVBUF %d, was %d", rcvbuf, u1_rcvbuf);
	struct sock_filter insn[4];
	len = sizeof insn / sizeof insn[0]; /* SO_GET_FILTER counts in instructions */
	if (getsockopt(u1, SOL_SOCKET, SO_GET_FILTER, insn, &len) < 0 || len != 1 || insn[0].code != (BPF_RET | BPF_K) || insn[0].k != 0xffff)
		fail("u1: socket filter not back (%u instructions)", len);
	/* the pair still talks */
	send_to(u2, "again", 5, NULL, 0);
	usleep(20000);
	expect_dgram("u1 after restore", u1, "again", 5, &a2, sizeof a2);
}

static void setup_ping(const char *peer4)
{
	peer4_addr = peer4;
	struct sockaddr_in id = { .sin_family = AF_INET, .sin_port = htons(0x4242) }, to = in4(peer4, 0);
	p1 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (p1 < 0 || bind(p1, (struct sockaddr *)&id, sizeof id) < 0 || connect(p1, (struct sockaddr *)&to, sizeof to) < 0)
		die("ping socket");
	p2 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMPV6);
	if (p2 < 0)
		die("ping6 socket");
	r1 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	struct icmp_filter filter = { .data = ~(1u << ICMP_ECHOREPLY) };
	if (r1 < 0 || setsockopt(r1, SOL_RAW, ICMP_FILTER, &filter, sizeof filter) < 0)
		die("raw ICMP socket");
	r2 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (r2 < 0)
		die("raw socket");
	r3 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
	ICMP6_FILTER_SETBLOCKALL(&r3_filter);
	ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &r3_filter);
	if (r3 < 0 || setsockopt(r3, IPPROTO_ICMPV6, ICMP6_FILTER, &r3_filter, sizeof r3_filter) < 0)
		die("raw ICMPv6 socket");
	printf("PING ready\n");
}

/* One echo request on a ping socket, and its reply. */
static int ping_once(int fd, const void *to, socklen_t len, int type, int seq)
{
	struct icmphdr req = { .type = type, .un.echo.sequence = htons(seq) };
	if (sendto(fd, &req, sizeof req, 0, to, len) != sizeof req)
		return -1;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[256];
	while (poll(&p, 1, 3000) == 1) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n >= (ssize_t)sizeof req && ntohs(((struct icmphdr *)buf)->un.echo.sequence) == seq)
			return 0;
	}
	return -1;
}

static void check_ping(void)
{
	struct sockaddr_in name;
	socklen_t len = sizeof name;
	getsockname(p1, (struct sockaddr *)&name, &len);
	if (name.sin_port != htons(0x4242))
		fail("ping socket: identifier %x, was 4242", ntohs(name.sin_port));
	if (ping_once(p1, NULL, 0, ICMP_ECHO, 11) < 0)
		fail("ping socket: no echo reply from %s after restore", peer4_addr);
	/* the raw ICMP socket saw that reply too (its filter lets echo replies through) */
	char buf[512];
	ssize_t n = recv(r1, buf, sizeof buf, MSG_DONTWAIT);
	if (n < (ssize_t)(sizeof(struct iphdr) + sizeof(struct icmphdr)) || ((struct icmphdr *)(buf + sizeof(struct iphdr)))->type != ICMP_ECHOREPLY)
		fail("raw ICMP socket: no echo reply (%zd bytes)", n);
	struct icmp_filter filter = { 0 };
	len = sizeof filter;
	getsockopt(r1, SOL_RAW, ICMP_FILTER, &filter, &len);
	if (filter.data != ~(1u << ICMP_ECHOREPLY))
		fail("raw ICMP socket: ICMP_FILTER %x", filter.data);
	int proto = 0;
	len = sizeof proto;
	getsockopt(r2, SOL_SOCKET, SO_PROTOCOL, &proto, &len);
	if (proto != IPPROTO_RAW)
		fail("raw socket: protocol %d", proto);
	struct icmp6_filter f6;
	len = sizeof f6;
	if (getsockopt(r3, IPPROTO_ICMPV6, ICMP6_FILTER, &f6, &len) < 0 || memcmp(&f6, &r3_filter, sizeof f6))
		fail("raw ICMPv6 socket: ICMP6_FILTER not back");
	if (peer6_addr) {
		struct sockaddr_in6 to6 = in6(peer6_addr, 0);
		if (ping_once(p2, &to6, sizeof to6, ICMP6_ECHO_REQUEST, 12) < 0)
			fail("ping6 socket: no echo reply from %s", peer6_addr);
	}
}

#endif
