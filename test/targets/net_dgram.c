/*
 * net_dgram: netlink, packet, UDP and ping sockets, run inside a network namespace the test
 * made. Sets them up, prints what it holds ("NL ...", "PK ..." lines) and "READY <pid>", waits
 * for SIGUSR1, then checks each socket is the same and still works, printing PASS or FAIL lines.
 *
 * Usage: net_dgram PARTS IFNAME PEER4 [PEER6]
 *   PARTS  letters: n netlink, p packet, u UDP, i ping and raw, R a packet socket with a mapped
 *          PACKET_RX_RING, r one with the ring set up but not mapped (amber refuses to dump
 *          either: the check is that it is still there)
 *   IFNAME the interface of this namespace the packet socket binds to (its veth end)
 *   PEER4  an IPv4 address reachable through IFNAME (the other host), PEER6 its IPv6 one
 */
#define _GNU_SOURCE
#include "target.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/genetlink.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>


static const char *parts, *ifname, *peer4, *peer6;
static int ifindex;

#include "net_dgram_inet.h"

/* ---- netlink ---- */

#define NL_EXPLICIT_PORT 0x7abc1234u
#define NL_RCVBUF 300000
#define RTNLGRP_HIGH 33 /* RTNLGRP_BRVLAN: a group above 32, joined only by setsockopt */
static const int route_groups[] = { RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_RULE, RTNLGRP_HIGH };
#define N_ROUTE_GROUPS (int)(sizeof route_groups / sizeof route_groups[0])

static int nl_route, nl_explicit, nl_unbound, nl_generic, nl_uevent, nl_diag, nl_audit;
static uint32_t route_port, generic_port, uevent_port, diag_port, audit_port;
static int route_rcvbuf;

static uint32_t nl_port(int fd)
{
	struct sockaddr_nl a;
	socklen_t len = sizeof a;
	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		die("getsockname(netlink)");
	return a.nl_pid;
}

static uint32_t nl_bound_groups(int fd)
{
	struct sockaddr_nl a;
	socklen_t len = sizeof a;
	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		die("getsockname(netlink)");
	return a.nl_groups;
}

static int nl_socket(int type, int proto, uint32_t port, uint32_t groups)
{
	int fd = socket(AF_NETLINK, type | SOCK_CLOEXEC, proto);
	if (fd < 0)
		die("socket(AF_NETLINK)");
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = port, .nl_groups = groups };
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
		die("bind(netlink)");
	return fd;
}

static void setup_netlink(void)
{
	int on = 1;
	nl_route = nl_socket(SOCK_RAW, NETLINK_ROUTE, 0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR);
	for (int i = 2; i < N_ROUTE_GROUPS; i++)
		if (setsockopt(nl_route, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &route_groups[i], sizeof(int)) < 0)
			die("NETLINK_ADD_MEMBERSHIP");
	if (setsockopt(nl_route, SOL_NETLINK, NETLINK_PKTINFO, &on, sizeof on) < 0 ||
	    setsockopt(nl_route, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof on) < 0)
		die("NETLINK_PKTINFO/NO_ENOBUFS");
	int rcvbuf = NL_RCVBUF;
	if (setsockopt(nl_route, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
		die("SO_RCVBUF");
	socklen_t len = sizeof route_rcvbuf;
	getsockopt(nl_route, SOL_SOCKET, SO_RCVBUF, &route_rcvbuf, &len);
	static struct sock_filter accept_all[] = { { BPF_RET | BPF_K, 0, 0, 0xffff } };
	struct sock_fprog prog = { .len = 1, .filter = accept_all };
	if (setsockopt(nl_route, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0)
		die("SO_ATTACH_FILTER(netlink)");
	route_port = nl_port(nl_route);

	nl_explicit = nl_socket(SOCK_RAW, NETLINK_ROUTE, NL_EXPLICIT_PORT, 0);
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (connect(nl_explicit, (struct sockaddr *)&kernel, sizeof kernel) < 0)
		die("connect(netlink)");
	if (setsockopt(nl_explicit, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on) < 0)
		die("NETLINK_EXT_ACK");

	nl_unbound = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	if (nl_unbound < 0)
		die("socket(netlink unbound)");

	nl_generic = nl_socket(SOCK_RAW, NETLINK_GENERIC, 0, 0);
	generic_port = nl_port(nl_generic);
	nl_uevent = nl_socket(SOCK_DGRAM, NETLINK_KOBJECT_UEVENT, 0, 1);
	uevent_port = nl_port(nl_uevent);
	nl_diag = nl_socket(SOCK_RAW, NETLINK_SOCK_DIAG, 0, 0);
	diag_port = nl_port(nl_diag);
	nl_audit = nl_socket(SOCK_RAW, NETLINK_AUDIT, 0, 0);
	audit_port = nl_port(nl_audit);
	/* the namespace's interfaces were just set up: let their notifications pass before READY */
	char buf[16384];
	struct pollfd p = { .fd = nl_route, .events = POLLIN };
	while (poll(&p, 1, 300) == 1)
		recv(nl_route, buf, sizeof buf, 0);
	printf("NL route port %u groups 1,5,8,33\n", route_port);
	printf("NL route port %u\n", NL_EXPLICIT_PORT);
	printf("NL generic port %u\n", generic_port);
	printf("NL uevent port %u groups 1\n", uevent_port);
	printf("NL sock_diag port %u\n", diag_port);
	printf("NL audit port %u\n", audit_port);
}

/* Adds 10.99.0.1/32 to lo through a socket of its own and waits for the route socket to hear of it. */
static void check_route_notification(void)
{
	char buf[16384];
	while (recv(nl_route, buf, sizeof buf, MSG_DONTWAIT) > 0)
		;
	int req_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct {
		struct nlmsghdr h;
		struct ifaddrmsg ifa;
		struct rtattr rta;
		struct in_addr addr;
	} req = {
		.h = { .nlmsg_len = sizeof req, .nlmsg_type = RTM_NEWADDR, .nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, .nlmsg_seq = 1 },
		.ifa = { .ifa_family = AF_INET, .ifa_prefixlen = 32, .ifa_index = 1 },
		.rta = { .rta_len = RTA_LENGTH(4), .rta_type = IFA_LOCAL },
	};
	inet_pton(AF_INET, "10.99.0.1", &req.addr);
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (req_fd < 0 || sendto(req_fd, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
		fail("netlink: cannot ask for a new address: %s", strerror(errno));
		return;
	}
	close(req_fd);
	struct pollfd p = { .fd = nl_route, .events = POLLIN };
	for (;;) {
		if (poll(&p, 1, 3000) != 1) {
			fail("netlink route socket (port %u): no RTM_NEWADDR for 10.99.0.1 within 3 s after restore", route_port);
			return;
		}
		char control[256];
		struct iovec iov = { buf, sizeof buf };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
		ssize_t n = recvmsg(nl_route, &m, 0);
		if (n <= 0)
			continue;
		int group = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_PKTINFO)
				group = ((struct nl_pktinfo *)CMSG_DATA(c))->group;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type != RTM_NEWADDR)
				continue;
			struct ifaddrmsg *ifa = NLMSG_DATA(h);
			if (ifa->ifa_family != AF_INET || ifa->ifa_index != 1)
				continue;
			if (group != RTNLGRP_IPV4_IFADDR)
				fail("netlink: RTM_NEWADDR came without NETLINK_PKTINFO naming group %d (got %d)", RTNLGRP_IPV4_IFADDR, group);
			return;
		}
	}
}

/* Asks the generic netlink controller for its own family: the reply comes to the dumped port id. */
static void check_generic(void)
{
	struct {
		struct nlmsghdr h;
		struct genlmsghdr g;
		struct nlattr a;
		char name[8];
	} req = {
		.h = { .nlmsg_len = sizeof req, .nlmsg_type = GENL_ID_CTRL, .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 7 },
		.g = { .cmd = CTRL_CMD_GETFAMILY, .version = 1 },
		.a = { .nla_len = NLA_HDRLEN + 7, .nla_type = CTRL_ATTR_FAMILY_NAME },
		.name = "nlctrl",
	};
	if (send(nl_generic, &req, sizeof req, 0) < 0) {
		fail("generic netlink: send: %s", strerror(errno));
		return;
	}
	struct pollfd p = { .fd = nl_generic, .events = POLLIN };
	char buf[8192];
	if (poll(&p, 1, 3000) != 1) {
		fail("generic netlink (port %u): no reply from the controller", generic_port);
		return;
	}
	ssize_t n = recv(nl_generic, buf, sizeof buf, 0);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	if (n < (ssize_t)sizeof *h || h->nlmsg_type != GENL_ID_CTRL || h->nlmsg_seq != 7 || h->nlmsg_pid != generic_port)
		fail("generic netlink: reply type %u seq %u to port %u, wanted type %u seq 7 to port %u", h->nlmsg_type, h->nlmsg_seq, h->nlmsg_pid, GENL_ID_CTRL, generic_port);
}

static void check_netlink(void)
{
	if (nl_port(nl_route) != route_port)
		fail("netlink route socket: port %u, was %u", nl_port(nl_route), route_port);
	uint32_t groups[4] = { 0 };
	socklen_t len = sizeof groups;
	if (getsockopt(nl_route, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &len) < 0)
		fail("NETLINK_LIST_MEMBERSHIPS: %s", strerror(errno));
	uint32_t want[4] = { 0 };
	for (int i = 0; i < N_ROUTE_GROUPS; i++)
		want[(route_groups[i] - 1) / 32] |= 1u << ((route_groups[i] - 1) % 32);
	if (memcmp(groups, want, sizeof want))
		fail("netlink route socket: groups %08x %08x, wanted %08x %08x", groups[0], groups[1], want[0], want[1]);
	int v = 0;
	len = sizeof v;
	getsockopt(nl_route, SOL_NETLINK, NETLINK_NO_ENOBUFS, &v, &len);
	if (!v)
		fail("netlink route socket: NETLINK_NO_ENOBUFS is off");
	len = sizeof v;
	getsockopt(nl_route, SOL_SOCKET, SO_RCVBUF, &v, &len);
	if (v != route_rcvbuf)
		fail("netlink route socket: SO_RCVBUF %d, was %d", v, route_rcvbuf);
	struct sock_filter insn[4];
	len = sizeof insn / sizeof insn[0]; /* SO_GET_FILTER counts in instructions */
	if (getsockopt(nl_route, SOL_SOCKET, SO_GET_FILTER, insn, &len) < 0 || len != 1 || insn[0].k != 0xffff)
		fail("netlink route socket: socket filter not back (%u instructions)", len);
	if (nl_port(nl_explicit) != NL_EXPLICIT_PORT)
		fail("netlink socket bound to %u: now %u", NL_EXPLICIT_PORT, nl_port(nl_explicit));
	len = sizeof v;
	getsockopt(nl_explicit, SOL_NETLINK, NETLINK_EXT_ACK, &v, &len);
	if (!v)
		fail("netlink socket %u: NETLINK_EXT_ACK is off", NL_EXPLICIT_PORT);
	if (nl_port(nl_unbound) != 0)
		fail("unbound netlink socket: bound to %u", nl_port(nl_unbound));
	if (!(fcntl(nl_unbound, F_GETFL) & O_NONBLOCK))
		fail("unbound netlink socket: O_NONBLOCK lost");
	int proto = -1, type = -1;
	len = sizeof proto;
	getsockopt(nl_uevent, SOL_SOCKET, SO_PROTOCOL, &proto, &len);
	len = sizeof type;
	getsockopt(nl_uevent, SOL_SOCKET, SO_TYPE, &type, &len);
	if (proto != NETLINK_KOBJECT_UEVENT || type != SOCK_DGRAM)
		fail("uevent socket: protocol %d type %d", proto, type);
	if (nl_port(nl_uevent) != uevent_port || nl_bound_groups(nl_uevent) != 1)
		fail("uevent socket: port %u groups %x, was %u groups 1", nl_port(nl_uevent), nl_bound_groups(nl_uevent), uevent_port);
	int diag_proto = -1, audit_proto = -1;
	len = sizeof diag_proto;
	getsockopt(nl_diag, SOL_SOCKET, SO_PROTOCOL, &diag_proto, &len);
	len = sizeof audit_proto;
	getsockopt(nl_audit, SOL_SOCKET, SO_PROTOCOL, &audit_proto, &len);
	if (nl_port(nl_diag) != diag_port || diag_proto != NETLINK_SOCK_DIAG)
		fail("sock_diag socket: port %u protocol %d, was %u", nl_port(nl_diag), diag_proto, diag_port);
	if (nl_port(nl_audit) != audit_port || audit_proto != NETLINK_AUDIT)
		fail("audit socket: port %u protocol %d, was %u", nl_port(nl_audit), audit_proto, audit_port);
	check_generic();
	check_route_notification();
}

/* ---- packet ---- */

#define FANOUT_ID 77
static int pk_raw, pk_dgram;

static int packet_option(int fd, int opt)
{
	int v = -1;
	socklen_t len = sizeof v;
	if (getsockopt(fd, SOL_PACKET, opt, &v, &len) < 0)
		return -errno;
	return v;
}

static void setup_packet(void)
{
	pk_raw = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (pk_raw < 0)
		die("socket(AF_PACKET)");
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = ifindex };
	if (bind(pk_raw, (struct sockaddr *)&a, sizeof a) < 0)
		die("bind(AF_PACKET)");
	int v2 = TPACKET_V2, on = 1, fanout = FANOUT_ID | (PACKET_FANOUT_HASH << 16);
	if (setsockopt(pk_raw, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2) < 0 ||
	    setsockopt(pk_raw, SOL_PACKET, PACKET_AUXDATA, &on, sizeof on) < 0 ||
	    setsockopt(pk_raw, SOL_PACKET, PACKET_ORIGDEV, &on, sizeof on) < 0)
		die("PACKET_VERSION/AUXDATA/ORIGDEV");
	struct packet_mreq mr = { .mr_ifindex = ifindex, .mr_type = PACKET_MR_PROMISC };
	if (setsockopt(pk_raw, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
		die("PACKET_ADD_MEMBERSHIP");
	if (setsockopt(pk_raw, SOL_PACKET, PACKET_FANOUT, &fanout, sizeof fanout) < 0)
		die("PACKET_FANOUT");
	pk_dgram = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_IP));
	if (pk_dgram < 0)
		die("socket(AF_PACKET dgram)");
	printf("PK raw ifindex %d fanout %x\n", ifindex, fanout);
}

static void check_packet(void)
{
	struct sockaddr_ll a;
	socklen_t len = sizeof a;
	if (getsockname(pk_raw, (struct sockaddr *)&a, &len) < 0 || a.sll_ifindex != ifindex || a.sll_protocol != htons(ETH_P_ALL))
		fail("packet socket: bound to interface %d protocol %04x, was %d %04x", a.sll_ifindex, ntohs(a.sll_protocol), ifindex, ETH_P_ALL);
	if (packet_option(pk_raw, PACKET_VERSION) != TPACKET_V2)
		fail("packet socket: PACKET_VERSION %d", packet_option(pk_raw, PACKET_VERSION));
	if (packet_option(pk_raw, PACKET_AUXDATA) != 1 || packet_option(pk_raw, PACKET_ORIGDEV) != 1)
		fail("packet socket: AUXDATA %d ORIGDEV %d", packet_option(pk_raw, PACKET_AUXDATA), packet_option(pk_raw, PACKET_ORIGDEV));
	int fanout = packet_option(pk_raw, PACKET_FANOUT);
	if ((fanout & 0xffff) != FANOUT_ID || ((fanout >> 16) & 0xff) != PACKET_FANOUT_HASH)
		fail("packet socket: PACKET_FANOUT %x", fanout);
	int type = -1;
	len = sizeof type;
	getsockopt(pk_dgram, SOL_SOCKET, SO_TYPE, &type, &len);
	/* (SO_PROTOCOL says 0 for packet sockets: the protocol shows in the name) */
	len = sizeof a;
	memset(&a, 0, sizeof a);
	getsockname(pk_dgram, (struct sockaddr *)&a, &len);
	if (type != SOCK_DGRAM || a.sll_protocol != htons(ETH_P_IP) || a.sll_ifindex != 0 || !(fcntl(pk_dgram, F_GETFL) & O_NONBLOCK))
		fail("packet dgram socket: type %d protocol %04x interface %d nonblock %d", type, ntohs(a.sll_protocol), a.sll_ifindex, !!(fcntl(pk_dgram, F_GETFL) & O_NONBLOCK));
	/* it still captures: a datagram sent to the peer through its interface shows up, with aux data */
	char buf[2048];
	while (recv(pk_raw, buf, sizeof buf, MSG_DONTWAIT) > 0)
		;
	const char marker[] = "amber-packet-probe";
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
	inet_pton(AF_INET, peer4, &to.sin_addr);
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int tries = 0; tries < 30; tries++) {
		sendto(u, marker, sizeof marker, 0, (struct sockaddr *)&to, sizeof to);
		struct pollfd p = { .fd = pk_raw, .events = POLLIN };
		while (poll(&p, 1, 100) == 1) {
			char control[256];
			struct sockaddr_ll from;
			struct iovec iov = { buf, sizeof buf };
			struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
			ssize_t n = recvmsg(pk_raw, &m, 0);
			if (n <= 0 || !memmem(buf, n, marker, sizeof marker))
				continue;
			int aux = 0;
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
				aux |= c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA;
			if (!aux)
				fail("packet socket: frame without PACKET_AUXDATA");
			if (from.sll_ifindex != ifindex)
				fail("packet socket: frame from interface %d, bound to %d", from.sll_ifindex, ifindex);
			close(u);
			return;
		}
	}
	close(u);
	fail("packet socket: did not see the probe datagram sent to %s through %s", peer4, ifname);
}

static int pk_ring;
static void *ring;
#define RING_BYTES (4 * 4096)

static void setup_ring(void)
{
	pk_ring = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	int v2 = TPACKET_V2;
	struct tpacket_req req = { .tp_block_size = 4096, .tp_block_nr = 4, .tp_frame_size = 2048, .tp_frame_nr = 8 };
	if (pk_ring < 0 || setsockopt(pk_ring, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2) < 0 ||
	    setsockopt(pk_ring, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0)
		die("PACKET_RX_RING");
	if (!strchr(parts, 'R'))
		return;
	ring = mmap(NULL, RING_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, pk_ring, 0);
	if (ring == MAP_FAILED)
		die("mmap(ring)");
}

static void check_ring(void)
{
	/* still mapped and readable, and the socket still has its version */
	if (ring) {
		volatile unsigned status = ((struct tpacket2_hdr *)ring)->tp_status;
		(void)status;
	}
	if (packet_option(pk_ring, PACKET_VERSION) != TPACKET_V2)
		fail("ring socket: PACKET_VERSION %d", packet_option(pk_ring, PACKET_VERSION));
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: net_dgram PARTS IFNAME PEER4 [PEER6]\n");
		return 2;
	}
	start(1);
	parts = argv[1];
	ifname = argv[2];
	peer4 = argv[3];
	peer6 = argc > 4 ? argv[4] : NULL;
	ifindex = if_nametoindex(ifname);
	if (!ifindex)
		die(ifname);
	if (strchr(parts, 'n'))
		setup_netlink();
	if (strchr(parts, 'p'))
		setup_packet();
	if (strchr(parts, 'u'))
		setup_udp(peer4, peer6);
	if (strchr(parts, 'i'))
		setup_ping(peer4);
	if (strchr(parts, 'R') || strchr(parts, 'r'))
		setup_ring();
	ready_and_wait();
	if (strchr(parts, 'n'))
		check_netlink();
	if (strchr(parts, 'p'))
		check_packet();
	if (strchr(parts, 'u'))
		check_udp();
	if (strchr(parts, 'i'))
		check_ping();
	if (strchr(parts, 'R') || strchr(parts, 'r'))
		check_ring();
	return finish();
}
