/* net_dgram's UDP and ping sockets (included once, by net_dgram.c). */
#ifndef NET_DGRAM_INET_H
#define NET_DGRAM_INET_H

static void setup_udp(const char *peer4, const char *peer6) { (void)peer4; (void)peer6; }
static void check_udp(void) {}
static void setup_ping(const char *peer4) { (void)peer4; }
static void check_ping(void) {}

#endif
