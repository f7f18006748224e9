/*
 * unix_ext PEER MYNAME dgram|stream: one unix socket bound to MYNAME and connected to PEER, a
 * socket of a process outside the dumped tree (the test's). Sends "before", prints
 * "READY <pid>", waits for SIGUSR1, sends "after" on the same socket and expects "reply" back
 * within 5 s; prints PASS or FAIL: <what>, exits 0 or 1.
 * unix_ext - MYNAME embryo: a listener bound to MYNAME and a client of it in this process that
 * sent "early" before the connection was accepted; on SIGUSR1 accepts and reads it.
 */
#include "target.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static struct sockaddr_un addr(const char *path, socklen_t *len)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	*len = offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
	return a;
}

int main(int argc, char **argv)
{
	start(0);
	if (argc != 4) {
		fprintf(stderr, "usage: %s PEER MYNAME dgram|stream\n", argv[0]);
		return 2;
	}
	if (!strcmp(argv[3], "embryo")) {
		socklen_t l;
		struct sockaddr_un name = addr(argv[2], &l);
		int lst = socket(AF_UNIX, SOCK_STREAM, 0), c = socket(AF_UNIX, SOCK_STREAM, 0);
		if (lst < 0 || c < 0 || bind(lst, (struct sockaddr *)&name, l) || listen(lst, 2) || connect(c, (struct sockaddr *)&name, l))
			die("embryo");
		if (send(c, "early", 5, 0) != 5)
			die("send early");
		printf("READY %d\n", getpid());
		while (!got_usr1)
			usleep(1000);
		int a = accept(lst, NULL, NULL);
		char b[8];
		if (a < 0 || recv(a, b, sizeof b, MSG_DONTWAIT) != 5 || memcmp(b, "early", 5))
			fail("the queued connection lost its data");
		return finish();
	}
	int s = socket(AF_UNIX, strcmp(argv[3], "stream") ? SOCK_DGRAM : SOCK_STREAM, 0);
	socklen_t len;
	struct sockaddr_un me = addr(argv[2], &len);
	if (s < 0 || bind(s, (struct sockaddr *)&me, len))
		die("bind");
	struct sockaddr_un peer = addr(argv[1], &len);
	if (connect(s, (struct sockaddr *)&peer, len))
		die("connect");
	if (send(s, "before", 6, 0) != 6)
		die("send before");
	printf("READY %d\n", getpid());
	while (!got_usr1)
		usleep(1000);
	if (send(s, "after", 5, MSG_NOSIGNAL) != 5)
		fail("send after restore: %s", strerror(errno));
	struct timeval tv = { 5, 0 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char buf[16];
	ssize_t n = recv(s, buf, sizeof buf, 0);
	if (n != 5 || memcmp(buf, "reply", 5))
		fail("no reply from the peer (%zd: %s)", n, n < 0 ? strerror(errno) : "short");
	return finish();
}
