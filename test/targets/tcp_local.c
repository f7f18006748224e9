/*
 * tcp_local: TCP sockets whose every end is in the tree, with their options. Holds an IPv4
 * listener (SO_REUSEADDR, backlog 17), an IPv6-only listener (SO_REUSEPORT, IPV6_V6ONLY, bound to
 * device lo), a loopback connection between this process and its child (bytes unread both ways,
 * options on both ends), a bound socket that never connected and a fresh one. With "pending",
 * also a connection the IPv4 listener has not accepted. Prints READY, waits for SIGUSR1, then
 * checks every socket: options, addresses, the unread bytes, a round trip on the connection, and
 * that both listeners accept new connections. PASS or FAIL: lines, exit 0 or 1.
 *
 * With "md5", the listener and the connection carry TCP-MD5 keys (which amber refuses).
 *
 * Usage: tcp_local [pending|md5]
 */
#include "target.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#define TO_CHILD "parent bytes the child has not read"
#define TO_PARENT "child bytes the parent has not read, a little longer"

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof v;
	if (getsockopt(fd, level, name, &v, &len) < 0)
		return -1000 - errno;
	return v;
}

static void set(int fd, int level, int name, int v)
{
	if (setsockopt(fd, level, name, &v, sizeof v) < 0)
		die("setsockopt");
}

#define EXPECT(what, got, want) do { int g_ = (got), w_ = (want); if (g_ != w_) fail("%s: %d, expected %d", what, g_, w_); } while (0)

static int port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port) : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int read_exact(int fd, char *buf, size_t n)
{
	size_t got = 0;
	for (time_t deadline = time(NULL) + 10; got < n && time(NULL) < deadline;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 500) <= 0)
			continue;
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0) {
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			return -1;
		}
		got += (size_t)r;
	}
	return got == n ? 0 : -1;
}

static void expect_text(int fd, const char *text, const char *what)
{
	char buf[256] = { 0 };
	if (read_exact(fd, buf, strlen(text)) < 0 || strcmp(buf, text))
		fail("%s: got \"%s\"", what, buf);
}

/* Connects a new client to addr and checks the listener accepts it. */
static void accepts(int l, struct sockaddr *addr, socklen_t len, const char *what)
{
	int c = socket(addr->sa_family, SOCK_STREAM, 0);
	if (connect(c, addr, len) < 0) {
		fail("%s: connect: %s", what, strerror(errno));
		close(c);
		return;
	}
	int s = accept(l, NULL, NULL);
	if (s < 0)
		fail("%s: accept: %s", what, strerror(errno));
	else
		close(s);
	close(c);
}

int main(int argc, char **argv)
{
	int pending = argc > 1 && !strcmp(argv[1], "pending");
	int md5 = argc > 1 && !strcmp(argv[1], "md5");
	start(1);
	struct sockaddr_in lo4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 lo6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };

	int l4 = socket(AF_INET, SOCK_STREAM, 0);
	set(l4, SOL_SOCKET, SO_REUSEADDR, 1);
	struct tcp_md5sig key = { .tcpm_keylen = 4 };
	memcpy(key.tcpm_key, "abcd", 4);
	memcpy(&key.tcpm_addr, &lo4, sizeof lo4);
	if (md5 && setsockopt(l4, IPPROTO_TCP, TCP_MD5SIG, &key, sizeof key) < 0)
		die("TCP_MD5SIG");
	if (bind(l4, (struct sockaddr *)&lo4, sizeof lo4) < 0 || listen(l4, 17) < 0)
		die("listener 4");
	lo4.sin_port = htons((uint16_t)port_of(l4));

	int l6 = socket(AF_INET6, SOCK_STREAM, 0);
	set(l6, SOL_SOCKET, SO_REUSEPORT, 1);
	set(l6, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	if (setsockopt(l6, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3) < 0)
		die("SO_BINDTODEVICE");
	if (bind(l6, (struct sockaddr *)&lo6, sizeof lo6) < 0 || listen(l6, 5) < 0)
		die("listener 6");
	lo6.sin6_port = htons((uint16_t)port_of(l6));

	/* the connection: the parent's end c, the child's end s */
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (md5 && setsockopt(c, IPPROTO_TCP, TCP_MD5SIG, &key, sizeof key) < 0)
		die("TCP_MD5SIG");
	if (connect(c, (struct sockaddr *)&lo4, sizeof lo4) < 0)
		die("connect");
	int s = accept(l4, NULL, NULL);
	if (s < 0)
		die("accept");
	set(c, IPPROTO_TCP, TCP_NODELAY, 1);
	set(c, SOL_SOCKET, SO_KEEPALIVE, 1);
	set(c, IPPROTO_TCP, TCP_KEEPIDLE, 77);
	set(c, IPPROTO_TCP, TCP_KEEPINTVL, 11);
	set(c, IPPROTO_TCP, TCP_KEEPCNT, 4);
	set(c, IPPROTO_TCP, TCP_USER_TIMEOUT, 12345);
	set(c, SOL_SOCKET, SO_SNDBUF, 64 * 1024);
	/* IP_TOS sets the priority too (rt_tos2priority): the program's later SO_PRIORITY wins */
	set(c, IPPROTO_IP, IP_TOS, 0x10);
	set(c, SOL_SOCKET, SO_PRIORITY, 5);
	set(c, SOL_SOCKET, SO_MARK, 0x1234);
	struct linger lg = { .l_onoff = 1, .l_linger = 9 };
	if (setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0)
		die("SO_LINGER");
	set(s, IPPROTO_TCP, TCP_CORK, 1);
	set(s, SOL_SOCKET, SO_RCVBUF, 100 * 1024);
	fcntl(s, F_SETFL, O_NONBLOCK);
	int sndbuf = opt(c, SOL_SOCKET, SO_SNDBUF), rcvbuf = opt(s, SOL_SOCKET, SO_RCVBUF);

	int bound = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(bound, (struct sockaddr *)&(struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) }, sizeof lo4) < 0)
		die("bind");
	int bound_port = port_of(bound);
	int fresh = socket(AF_INET6, SOCK_STREAM, 0);
	int waiting = -1;
	if (pending) {
		waiting = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(waiting, (struct sockaddr *)&lo4, sizeof lo4) < 0)
			die("pending connect");
	}

	if (write(c, TO_CHILD, strlen(TO_CHILD)) < 0)
		die("write");
	/* TCP_CORK holds a short write back for 200 ms: wait until it has gone */
	if (write(s, TO_PARENT, strlen(TO_PARENT)) < 0)
		die("write");
	for (int i = 0; i < 100; i++) {
		int q = 0;
		ioctl(c, FIONREAD, &q);
		if (q == (int)strlen(TO_PARENT))
			break;
		usleep(20000);
	}

	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		/* the child keeps s and waits for its own SIGUSR1 (sent by the parent) */
		close(c);
		wait_usr1();
		expect_text(s, TO_CHILD, "child: unread bytes");
		expect_text(s, "ping", "child: ping");
		if (write(s, "pong", 4) != 4)
			fail("child: write pong: %s", strerror(errno));
		EXPECT("child: TCP_CORK", opt(s, IPPROTO_TCP, TCP_CORK), 1);
		EXPECT("child: O_NONBLOCK", (fcntl(s, F_GETFL) & O_NONBLOCK) != 0, 1);
		EXPECT("child: SO_RCVBUF", opt(s, SOL_SOCKET, SO_RCVBUF), rcvbuf);
		return failures ? 1 : 0;
	}
	close(s);
	ready_and_wait();

	EXPECT("TCP_NODELAY", opt(c, IPPROTO_TCP, TCP_NODELAY), 1);
	EXPECT("SO_KEEPALIVE", opt(c, SOL_SOCKET, SO_KEEPALIVE), 1);
	EXPECT("TCP_KEEPIDLE", opt(c, IPPROTO_TCP, TCP_KEEPIDLE), 77);
	EXPECT("TCP_KEEPINTVL", opt(c, IPPROTO_TCP, TCP_KEEPINTVL), 11);
	EXPECT("TCP_KEEPCNT", opt(c, IPPROTO_TCP, TCP_KEEPCNT), 4);
	EXPECT("TCP_USER_TIMEOUT", opt(c, IPPROTO_TCP, TCP_USER_TIMEOUT), 12345);
	EXPECT("SO_SNDBUF", opt(c, SOL_SOCKET, SO_SNDBUF), sndbuf);
	EXPECT("SO_PRIORITY", opt(c, SOL_SOCKET, SO_PRIORITY), 5);
	EXPECT("SO_MARK", opt(c, SOL_SOCKET, SO_MARK), 0x1234);
	EXPECT("IP_TOS", opt(c, IPPROTO_IP, IP_TOS), 0x10);
	struct linger got = { 0 };
	socklen_t glen = sizeof got;
	getsockopt(c, SOL_SOCKET, SO_LINGER, &got, &glen);
	EXPECT("SO_LINGER on", got.l_onoff, 1);
	EXPECT("SO_LINGER seconds", got.l_linger, 9);
	EXPECT("listener: SO_REUSEADDR", opt(l4, SOL_SOCKET, SO_REUSEADDR), 1);
	EXPECT("listener: SO_ACCEPTCONN", opt(l4, SOL_SOCKET, SO_ACCEPTCONN), 1);
	EXPECT("listener 6: SO_REUSEPORT", opt(l6, SOL_SOCKET, SO_REUSEPORT), 1);
	EXPECT("listener 6: IPV6_V6ONLY", opt(l6, IPPROTO_IPV6, IPV6_V6ONLY), 1);
	char dev[IFNAMSIZ] = { 0 };
	socklen_t dlen = sizeof dev;
	if (getsockopt(l6, SOL_SOCKET, SO_BINDTODEVICE, dev, &dlen) < 0 || strcmp(dev, "lo"))
		fail("listener 6: SO_BINDTODEVICE is \"%s\"", dev);
	EXPECT("connection: SO_REUSEADDR", opt(c, SOL_SOCKET, SO_REUSEADDR), 0);
	EXPECT("bound socket: port", port_of(bound), bound_port);
	EXPECT("fresh socket: port", port_of(fresh), 0);

	expect_text(c, TO_PARENT, "parent: unread bytes");
	kill(child, SIGUSR1);
	if (write(c, "ping", 4) != 4)
		fail("write ping: %s", strerror(errno));
	expect_text(c, "pong", "parent: pong");
	int status = 0;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("the child failed its checks (status %#x)", status);

	/* (with md5 the listener wants a key from every client) */
	if (!md5)
		accepts(l4, (struct sockaddr *)&lo4, sizeof lo4, "listener 4");
	accepts(l6, (struct sockaddr *)&lo6, sizeof lo6, "listener 6");
	if (pending)
		close(waiting);
	return finish();
}
