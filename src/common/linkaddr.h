/* Addressing of inter-VM links, shared by the host and the guest agent.
 *
 * Spectrum's rule: guest NICs for inter-guest networking have the OUI
 * 0A:B3:EC, and the client end's last two MAC octets X:Y give its IPv4
 * address 100.64.X.Y.  Like Spectrum's host, we mark the provider end of
 * the same link with 0x80 in the fourth octet, so one 16-bit link id
 * (X << 8 | Y) names both ends:
 *
 *   client    0A:B3:EC:00:X:Y   100.64.X.Y/32
 *   provider  0A:B3:EC:80:X:Y   169.254.0.1/32, route to 100.64.X.Y
 */
#ifndef VMHOST_LINKADDR_H
#define VMHOST_LINKADDR_H

#include <stdbool.h>
#include <stdint.h>

#define LINKADDR_MAC_LEN 6
#define LINKADDR_MAC_STRLEN 18 /* "0A:B3:EC:00:A5:46" plus NUL */

/* The provider end's address, as seen by its clients. */
#define LINKADDR_PROVIDER_IPV4 0xa9fe0001u /* 169.254.0.1 */

enum linkaddr_role {
	LINKADDR_FOREIGN,  /* not ours: a hardware or uplink NIC */
	LINKADDR_CLIENT,   /* 0A:B3:EC:00:X:Y */
	LINKADDR_PROVIDER, /* 0A:B3:EC:80:X:Y */
	LINKADDR_INVALID,  /* our OUI, but a role or id we never assign */
};

/* Ids 0x0000 and 0xffff would give 100.64.0.0 and 100.64.255.255. */
static inline bool linkaddr_id_valid(uint16_t id)
{
	return id != 0x0000 && id != 0xffff;
}

/* Classify MAC; for CLIENT and PROVIDER, store the link id in *id. */
enum linkaddr_role linkaddr_classify(const uint8_t mac[LINKADDR_MAC_LEN],
				     uint16_t *id);

/* The MAC of one end of link id. */
void linkaddr_mac(enum linkaddr_role role, uint16_t id,
		  uint8_t mac[LINKADDR_MAC_LEN]);

/* The client's IPv4 address for link id, in host byte order. */
uint32_t linkaddr_client_ipv4(uint16_t id);

/* "0A:B3:EC:00:A5:46"; buf holds LINKADDR_MAC_STRLEN bytes. */
void linkaddr_format_mac(const uint8_t mac[LINKADDR_MAC_LEN], char *buf);

/* Parse "0a:b3:ec:00:a5:46" (either case); -1 with errno EINVAL if bad. */
int linkaddr_parse_mac(const char *s, uint8_t mac[LINKADDR_MAC_LEN]);

#endif
