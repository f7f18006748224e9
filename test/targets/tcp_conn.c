/*
 * tcp_conn: a TCP connection to a peer outside the tree. Connects to ADDR PORT, writes
 * OUT_BYTES the peer does not read yet (they sit in flight and in the send queue), waits until
 * the peer's IN_BYTES have arrived without reading them, prints READY and waits for SIGUSR1.
 * Then it reads the IN_BYTES (every byte in order), sends "PING\n", expects "PONG\n" and checks
 * the connection saw no reset and no EOF. PASS or FAIL: lines, exit 0 or 1.
 *
 * Usage: tcp_conn ADDR PORT
 */
#include "target.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#define OUT_BYTES (200 * 1024)
#define IN_BYTES (5 * 1024)

static unsigned char out_byte(int i) { return (unsigned char)(i * 31 + 7); }
static unsigned char in_byte(int i) { return (unsigned char)(i * 13 + 5); }

/* Reads exactly n bytes within 20 s; returns what it got (0 on EOF before, -errno on error). */
static long read_n(int fd, unsigned char *buf, size_t n)
{
	size_t got = 0;
	time_t deadline = time(NULL) + 20;
	while (got < n && time(NULL) < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 1000) <= 0)
			continue;
		ssize_t r = read(fd, buf + got, n - got);
		if (r == 0)
			return 0;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	return (long)got;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: tcp_conn ADDR PORT\n");
		return 2;
	}
	start(1);
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, argv[1], &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)atoi(argv[2]));
		len = sizeof *v4;
	} else if (inet_pton(AF_INET6, argv[1], &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)atoi(argv[2]));
		len = sizeof *v6;
	} else {
		errno = EINVAL;
		die("address");
	}
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&ss, len) < 0)
		die("connect");

	static unsigned char out[OUT_BYTES], in[IN_BYTES];
	for (int i = 0; i < OUT_BYTES; i++)
		out[i] = out_byte(i);
	for (size_t done = 0; done < OUT_BYTES;) {
		ssize_t w = write(fd, out + done, OUT_BYTES - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			die("write");
		done += (size_t)w;
	}
	/* the peer's bytes arrive unread: wait until all of them are queued */
	for (int tries = 0;; tries++) {
		int queued = 0;
		if (ioctl(fd, FIONREAD, &queued) < 0)
			die("FIONREAD");
		if (queued >= IN_BYTES)
			break;
		if (tries > 200) {
			errno = ETIMEDOUT;
			die("peer's bytes");
		}
		usleep(50000);
	}
	ready_and_wait();

	long r = read_n(fd, in, IN_BYTES);
	if (r != IN_BYTES)
		fail("read %ld of the peer's %d bytes (%s)", r, IN_BYTES, r < 0 ? strerror((int)-r) : r == 0 ? "EOF" : "short");
	else
		for (int i = 0; i < IN_BYTES; i++)
			if (in[i] != in_byte(i)) {
				fail("peer's byte %d is %u, expected %u", i, in[i], in_byte(i));
				break;
			}
	if (write(fd, "PING\n", 5) != 5)
		fail("write PING: %s", strerror(errno));
	unsigned char pong[5];
	r = read_n(fd, pong, 5);
	if (r != 5 || memcmp(pong, "PONG\n", 5))
		fail("no PONG after the restore (%ld: %s)", r, r < 0 ? strerror((int)-r) : r == 0 ? "EOF" : "other bytes");
	int err = 0;
	socklen_t elen = sizeof err;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
	if (err)
		fail("socket error %s", strerror(err));
	return finish();
}
