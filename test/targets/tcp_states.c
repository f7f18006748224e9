/*
 * tcp_states: TCP connections past ESTABLISHED, both ends in the process. x wrote "tail" and
 * shut its sending side (FIN_WAIT2); y has not read "tail" nor the FIN (CLOSE_WAIT). With
 * ADDR PORT, also a connection still being set up (SYN_SENT: the test drops its SYN). Prints
 * READY, waits for SIGUSR1, then checks: y reads "tail" then EOF, y can still send to x, x
 * gets y's FIN; the connection being set up (restored unconnected with --skip-in-flight) has no
 * peer. PASS or FAIL: lines, exit 0 or 1.
 *
 * With "fin1 ADDR PORT" instead: one connection to a peer outside the tree that does not
 * acknowledge (the test drops what it sends): "bye" and the FIN wait unacknowledged
 * (FIN_WAIT1); after the restore the peer gets them and answers "ok", which x reads before EOF.
 *
 * With "lastack ADDR PORT": the peer closed first ("ok" and its FIN, read), then x sent "bye"
 * and its FIN, which the peer does not acknowledge (LAST_ACK).
 *
 * Usage: tcp_states [ADDR PORT] | tcp_states fin1|lastack ADDR PORT
 */
#include "target.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

static int state_of(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -1;
	return ti.tcpi_state;
}

/* Reads what comes within 5 s, up to n bytes, stopping at EOF; *eof says whether it came. */
static size_t read_some(int fd, char *buf, size_t n, int *eof)
{
	size_t got = 0;
	*eof = 0;
	for (time_t deadline = time(NULL) + 5; got < n && time(NULL) < deadline;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t r = read(fd, buf + got, n - got);
		if (r == 0) {
			*eof = 1;
			break;
		}
		if (r < 0)
			break;
		got += (size_t)r;
	}
	return got;
}

static int fin_wait1(const char *addr, int port)
{
	struct sockaddr_in far = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, addr, &far.sin_addr);
	int x = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(x, (struct sockaddr *)&far, sizeof far) < 0)
		die("connect");
	/* the peer says "go" once the test drops what it sends */
	char buf[64] = { 0 };
	int eof = 0;
	if (read_some(x, buf, 3, &eof) != 3 || memcmp(buf, "go\n", 3))
		die("go");
	if (write(x, "bye", 3) != 3 || shutdown(x, SHUT_WR) < 0)
		die("write and shut");
	usleep(200000);
	if (state_of(x) != TCP_FIN_WAIT1)
		die("FIN_WAIT1 before the dump");
	ready_and_wait();
	memset(buf, 0, sizeof buf);
	size_t n = read_some(x, buf, sizeof buf - 1, &eof);
	if (n != 2 || memcmp(buf, "ok", 2) || !eof)
		fail("x read %zu bytes \"%s\" and %s, expected \"ok\" then EOF", n, buf, eof ? "EOF" : "no EOF");
	/* its sending side stays shut: the FIN came back with it */
	if (send(x, "z", 1, MSG_NOSIGNAL) >= 0 || errno != EPIPE)
		fail("x could still send after its shutdown (%s)", strerror(errno));
	if (state_of(x) == TCP_CLOSE_WAIT || state_of(x) == TCP_ESTABLISHED)
		fail("x is in state %d after both FINs", state_of(x));
	return finish();
}

static int last_ack(const char *addr, int port)
{
	struct sockaddr_in far = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, addr, &far.sin_addr);
	int x = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(x, (struct sockaddr *)&far, sizeof far) < 0)
		die("connect");
	char buf[64] = { 0 };
	int eof = 0;
	if (read_some(x, buf, 3, &eof) != 3 || memcmp(buf, "go\n", 3))
		die("go");
	/* the peer's "ok" and FIN, read: CLOSE_WAIT */
	memset(buf, 0, sizeof buf);
	if (read_some(x, buf, sizeof buf - 1, &eof) != 2 || memcmp(buf, "ok", 2) || !eof)
		die("ok and EOF");
	if (write(x, "bye", 3) != 3 || shutdown(x, SHUT_WR) < 0)
		die("write and shut");
	usleep(200000);
	if (state_of(x) != TCP_LAST_ACK)
		die("LAST_ACK before the dump");
	ready_and_wait();
	for (int i = 0; i < 100 && state_of(x) == TCP_LAST_ACK; i++)
		usleep(50000);
	if (state_of(x) != TCP_CLOSE)
		fail("x is in state %d, expected CLOSE once the peer acknowledged its FIN", state_of(x));
	if (send(x, "z", 1, MSG_NOSIGNAL) >= 0)
		fail("x could still send after its shutdown");
	return finish();
}

int main(int argc, char **argv)
{
	start(1);
	if (argc == 4 && !strcmp(argv[1], "lastack"))
		return last_ack(argv[2], atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "fin1"))
		return fin_wait1(argv[2], atoi(argv[3]));
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof lo;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(l, (struct sockaddr *)&lo, sizeof lo) < 0 || listen(l, 1) < 0 || getsockname(l, (struct sockaddr *)&lo, &len) < 0)
		die("listener");
	int x = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(x, (struct sockaddr *)&lo, sizeof lo) < 0)
		die("connect");
	int y = accept(l, NULL, NULL);
	if (y < 0)
		die("accept");
	close(l);
	if (write(x, "tail", 4) != 4 || shutdown(x, SHUT_WR) < 0)
		die("write and shut");
	for (int i = 0; i < 100 && (state_of(x) != TCP_FIN_WAIT2 || state_of(y) != TCP_CLOSE_WAIT); i++)
		usleep(10000);
	if (state_of(x) != TCP_FIN_WAIT2 || state_of(y) != TCP_CLOSE_WAIT)
		die("states before the dump");

	int syn = -1;
	if (argc == 3) {
		struct sockaddr_in far = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
		inet_pton(AF_INET, argv[1], &far.sin_addr);
		syn = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(syn, (struct sockaddr *)&far, sizeof far) == 0 || errno != EINPROGRESS)
			die("connect in progress");
	}
	ready_and_wait();

	if (state_of(x) != TCP_FIN_WAIT2)
		fail("x is in state %d, expected FIN_WAIT2", state_of(x));
	if (state_of(y) != TCP_CLOSE_WAIT)
		fail("y is in state %d, expected CLOSE_WAIT", state_of(y));
	char buf[64] = { 0 };
	int eof = 0;
	size_t n = read_some(y, buf, sizeof buf - 1, &eof);
	if (n != 4 || memcmp(buf, "tail", 4) || !eof)
		fail("y read %zu bytes \"%s\" and %s, expected \"tail\" then EOF", n, buf, eof ? "EOF" : "no EOF");
	if (write(y, "back", 4) != 4 || shutdown(y, SHUT_WR) < 0)
		fail("y could not send back: %s", strerror(errno));
	memset(buf, 0, sizeof buf);
	n = read_some(x, buf, sizeof buf - 1, &eof);
	if (n != 4 || memcmp(buf, "back", 4) || !eof)
		fail("x read %zu bytes \"%s\" and %s, expected \"back\" then EOF", n, buf, eof ? "EOF" : "no EOF");
	if (syn >= 0) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof peer;
		if (getpeername(syn, (struct sockaddr *)&peer, &plen) == 0 || errno != ENOTCONN)
			fail("the connection that was being set up has a peer, or another error: %s", strerror(errno));
		if (!(fcntl(syn, F_GETFL) & O_NONBLOCK))
			fail("the connection that was being set up lost O_NONBLOCK");
	}
	return finish();
}
