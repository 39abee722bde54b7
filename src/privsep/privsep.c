/* Framing and validation of the monitor <-> engine messages.  See
 * privsep.h. */
#include "privsep/privsep.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "config/vmconfig.h"

_Static_assert(PS_NAME_SIZE == VMCONFIG_NAME_MAX + 1, "a name field holds a VM name");

int ps_send(int sock, uint16_t type, uint32_t seq, const void *payload,
	    size_t len, const int *fds, size_t nfds)
{
	struct ps_hdr hdr = { .type = type, .nfds = (uint16_t)nfds, .seq = seq };
	union {
		char buf[CMSG_SPACE(sizeof(int) * PS_FDS_MAX)];
		struct cmsghdr align;
	} u;
	struct iovec iov[2] = {
		{ &hdr, sizeof hdr },
		{ (void *)payload, len },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	struct cmsghdr *cmsg;
	ssize_t n;

	if (len > PS_PAYLOAD_MAX || nfds > PS_FDS_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	if (nfds) {
		memset(&u, 0, sizeof u);
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if ((size_t)n != sizeof hdr + len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

static void ps_close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

ssize_t ps_recv(int sock, struct ps_hdr *hdr, char *buf, size_t cap,
		int *fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * PS_FDS_MAX)];
		struct cmsghdr align;
	} u;
	struct iovec iov[2] = {
		{ hdr, sizeof *hdr },
		{ buf, cap },
	};
	struct msghdr msg = {
		.msg_iov = iov, .msg_iovlen = 2,
		.msg_control = u.buf, .msg_controllen = sizeof u.buf,
	};
	struct cmsghdr *cmsg;
	size_t nfds = 0, len;
	ssize_t n;

	memset(hdr, 0, sizeof *hdr);
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		len = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfds + len > PS_FDS_MAX)
			len = PS_FDS_MAX - nfds;
		memcpy(fds + nfds, CMSG_DATA(cmsg), len * sizeof(int));
		nfds += len;
	}
	if (n == 0) {
		ps_close_all(fds, nfds);
		return 0;
	}
	if ((size_t)n < sizeof *hdr || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		ps_close_all(fds, nfds);
		memset(hdr, 0, sizeof *hdr);
		errno = EBADMSG;
		return -1;
	}
	hdr->nfds = (uint16_t)nfds;
	len = (size_t)n - sizeof *hdr;
	buf[len] = '\0';
	return (ssize_t)len;
}

/* A name field: a valid VM name, then nothing but zeros. */
static bool ps_name_ok(const char f[PS_NAME_SIZE])
{
	size_t n = strnlen(f, PS_NAME_SIZE);

	if (n == PS_NAME_SIZE || !vmconfig_name_valid(f))
		return false;
	for (size_t i = n; i < PS_NAME_SIZE; i++)
		if (f[i])
			return false;
	return true;
}

static bool ps_text_ok(const char *f, size_t size)
{
	size_t n = strnlen(f, size);

	if (n == size)
		return false;
	for (size_t i = n; i < size; i++)
		if (f[i])
			return false;
	return true;
}

static int ps_bad(const char **why, const char *what)
{
	*why = what;
	errno = EBADMSG;
	return -1;
}

int ps_check_request(const struct ps_hdr *hdr, const void *payload,
		     size_t len, const char **why)
{
	static const size_t sizes[PS_REQUEST_LAST + 1] = {
		[PS_HELLO] = 0,
		[PS_LIST] = 0,
		[PS_LOAD] = sizeof(struct ps_load),
		[PS_RELEASE] = sizeof(struct ps_name),
		[PS_LAUNCH] = sizeof(struct ps_name),
		[PS_KILL] = sizeof(struct ps_name),
		[PS_PLUG] = sizeof(struct ps_pair),
		[PS_UNPLUGGED] = sizeof(struct ps_pair),
		[PS_NOTE] = sizeof(struct ps_note),
		[PS_LINKNOTE] = sizeof(struct ps_linknote),
		[PS_BYE] = 0,
		[PS_LOOKUP] = sizeof(struct ps_name),
		[PS_SYNC] = 0,
	};
	const struct ps_pair *pair;
	const struct ps_linknote *ln;
	const struct ps_note *note;
	const struct ps_load *load;

	if (hdr->type < PS_HELLO || hdr->type > PS_REQUEST_LAST)
		return ps_bad(why, "unknown message type");
	if (hdr->nfds)
		return ps_bad(why, "unexpected fds");
	if (len != sizes[hdr->type])
		return ps_bad(why, "wrong payload size");
	switch (hdr->type) {
	case PS_LOAD:
		load = payload;
		if (!ps_name_ok(load->name) || load->keep > 1)
			return ps_bad(why, "bad load request");
		break;
	case PS_RELEASE:
	case PS_LAUNCH:
	case PS_KILL:
	case PS_LOOKUP:
		if (!ps_name_ok(((const struct ps_name *)payload)->name))
			return ps_bad(why, "bad VM name");
		break;
	case PS_PLUG:
	case PS_UNPLUGGED:
		pair = payload;
		if (!ps_name_ok(pair->client) || !ps_name_ok(pair->provider) ||
		    !strcmp(pair->client, pair->provider))
			return ps_bad(why, "bad link");
		break;
	case PS_NOTE:
		note = payload;
		if (!ps_name_ok(note->name) || note->state > 15 ||
		    !ps_text_ok(note->reason, sizeof note->reason))
			return ps_bad(why, "bad state note");
		break;
	case PS_LINKNOTE:
		ln = payload;
		if (!ps_name_ok(ln->pair.client) || !ps_name_ok(ln->pair.provider) ||
		    !strcmp(ln->pair.client, ln->pair.provider) ||
		    ln->plug > PS_PLUG_REMOVING || ln->port < -1 || ln->port >= 64)
			return ps_bad(why, "bad link note");
		break;
	default:
		break;
	}
	*why = NULL;
	return 0;
}

int ps_set_name(char dst[PS_NAME_SIZE], const char *name)
{
	size_t n = strlen(name);

	if (n >= PS_NAME_SIZE) {
		errno = EINVAL;
		return -1;
	}
	memset(dst, 0, PS_NAME_SIZE);
	memcpy(dst, name, n);
	return 0;
}
