#include "common/linkaddr.h"

#include <errno.h>
#include <stdio.h>

static const uint8_t linkaddr_oui[3] = { 0x0a, 0xb3, 0xec };

enum linkaddr_role linkaddr_classify(const uint8_t mac[LINKADDR_MAC_LEN],
				     uint16_t *id)
{
	enum linkaddr_role role;

	if (mac[0] != linkaddr_oui[0] || mac[1] != linkaddr_oui[1] ||
	    mac[2] != linkaddr_oui[2])
		return LINKADDR_FOREIGN;

	if (mac[3] == 0x00)
		role = LINKADDR_CLIENT;
	else if (mac[3] == 0x80)
		role = LINKADDR_PROVIDER;
	else
		return LINKADDR_INVALID;

	uint16_t link = (uint16_t)(mac[4] << 8 | mac[5]);
	if (!linkaddr_id_valid(link))
		return LINKADDR_INVALID;
	*id = link;
	return role;
}

void linkaddr_mac(enum linkaddr_role role, uint16_t id,
		  uint8_t mac[LINKADDR_MAC_LEN])
{
	mac[0] = linkaddr_oui[0];
	mac[1] = linkaddr_oui[1];
	mac[2] = linkaddr_oui[2];
	mac[3] = role == LINKADDR_PROVIDER ? 0x80 : 0x00;
	mac[4] = (uint8_t)(id >> 8);
	mac[5] = (uint8_t)id;
}

uint32_t linkaddr_client_ipv4(uint16_t id)
{
	return 0x64400000u | id; /* 100.64.0.0/16 */
}

void linkaddr_format_mac(const uint8_t mac[LINKADDR_MAC_LEN], char *buf)
{
	snprintf(buf, LINKADDR_MAC_STRLEN, "%02X:%02X:%02X:%02X:%02X:%02X",
		 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

int linkaddr_parse_mac(const char *s, uint8_t mac[LINKADDR_MAC_LEN])
{
	unsigned int o[LINKADDR_MAC_LEN];
	int end = 0;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &o[0], &o[1], &o[2], &o[3],
		   &o[4], &o[5], &end) != LINKADDR_MAC_LEN ||
	    end != 17 || s[end] != '\0') {
		errno = EINVAL;
		return -1;
	}
	for (int i = 0; i < LINKADDR_MAC_LEN; i++)
		mac[i] = (uint8_t)o[i];
	return 0;
}
