/*
 * tcp_conn: a TCP connection to a peer outside the tree. Connects to ADDR PORT, writes
 * OUT_BYTES the peer does not read yet (they sit in flight and in the send queue), waits until
 * the peer's IN_BYTES have arrived without reading them, prints READY and waits for SIGUSR1.
 * Then it reads the IN_BYTES (every byte in order), sends "PING\n", expects "PONG\n" and checks
 * the connection saw no reset and no EOF. PASS or FAIL: lines, exit 0 or 1.
 *
 * With STREAM_PORT, a second connection to ADDR STREAM_PORT on which the peer sends a byte
 * stream without pause (byte i is stream_byte(i)): the target reads and checks it all along,
 * before READY, while it waits for SIGUSR1 and across the dump and restore. After the PONG it
 * sends "STOP\n" on it and reads until the peer's FIN; a byte missing, duplicated or out of order
 * shows as the first wrong byte, a reset as an error. It prints "STREAM <bytes>" for the test to
 * compare with what the peer sent.
 *
 * Usage: tcp_conn ADDR PORT [STREAM_PORT]
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
/* the top byte of a multiplicative hash: no period a lost or repeated segment could hide in */
static unsigned char stream_byte(uint64_t i) { return (unsigned char)((uint32_t)(i * 2654435761u) >> 24); }

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

static int dial(const char *addr, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)atoi(port));
		len = sizeof *v4;
	} else if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)atoi(port));
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
	return fd;
}

/* The stream connection: what was read and checked so far, and how it went wrong (once). */
static int stream_fd = -1;
static uint64_t stream_got;
static int stream_bad, stream_eof;

/* Reads what is there (waiting up to ms) and checks it; 0 once the stream ended or went wrong. */
static int stream_step(int ms)
{
	if (stream_bad || stream_eof)
		return 0;
	struct pollfd p = { .fd = stream_fd, .events = POLLIN };
	if (poll(&p, 1, ms) <= 0)
		return 1; /* EINTR included: the dump's freeze can interrupt the wait */
	static unsigned char buf[65536];
	ssize_t r = read(stream_fd, buf, sizeof buf);
	if (r < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return 1;
		fail("stream: read after %llu bytes: %s", (unsigned long long)stream_got, strerror(errno));
		stream_bad = 1;
		return 0;
	}
	if (r == 0) {
		stream_eof = 1;
		return 0;
	}
	for (ssize_t k = 0; k < r; k++)
		if (buf[k] != stream_byte(stream_got + (uint64_t)k)) {
			fail("stream: byte %llu is %u, expected %u", (unsigned long long)(stream_got + (uint64_t)k), buf[k], stream_byte(stream_got + (uint64_t)k));
			stream_bad = 1;
			return 0;
		}
	stream_got += (uint64_t)r;
	return 1;
}

static int usr1_pending(void)
{
	sigset_t p;
	sigpending(&p);
	return sigismember(&p, SIGUSR1);
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: tcp_conn ADDR PORT [STREAM_PORT]\n");
		return 2;
	}
	start(1);
	int fd = dial(argv[1], argv[2]);
	if (argc == 4)
		stream_fd = dial(argv[1], argv[3]);

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
	if (stream_fd < 0) {
		ready_and_wait();
	} else {
		/* the stream is flowing before READY; read it until told (SIGUSR1 stays blocked, pending) */
		for (time_t deadline = time(NULL) + 20; stream_got == 0 && time(NULL) < deadline;)
			stream_step(100);
		if (stream_got == 0) {
			errno = ETIMEDOUT;
			die("stream's first bytes");
		}
		printf("READY %d\n", getpid());
		while (!usr1_pending() && stream_step(100))
			;
		while (!usr1_pending())
			usleep(10000);
	}

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
	if (stream_fd >= 0) {
		if (!stream_bad && write(stream_fd, "STOP\n", 5) != 5)
			fail("stream: write STOP: %s", strerror(errno));
		for (time_t deadline = time(NULL) + 30; stream_step(100) && time(NULL) < deadline;)
			;
		if (!stream_bad && !stream_eof)
			fail("stream: no end within 30 s of STOP (%llu bytes)", (unsigned long long)stream_got);
		printf("STREAM %llu\n", (unsigned long long)stream_got);
	}
	return finish();
}
