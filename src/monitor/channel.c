/* Messages to the engine.  See channel.h. */
#include "monitor/channel.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

void engine_send(struct monitor *m, uint16_t type, uint32_t seq, json_t *o,
		 const int *fds, size_t nfds)
{
	char *s = NULL;

	if (!o)
		o = json_object();
	if (m->engine.fd < 0)
		goto out;
	s = json_dumps(o, JSON_COMPACT);
	if (!s) {
		daemon_log("message %u to the engine: cannot encode it", type);
		goto out;
	}
	if (ps_send(m->engine.fd, type, seq, s, strlen(s), fds, nfds) < 0) {
		daemon_log("message %u to the engine: %s%s", type, strerror(errno),
			   errno == EAGAIN ? ": it does not read; killing it" : "");
		if (errno == EAGAIN && m->engine_pid > 0)
			kill(m->engine_pid, SIGKILL);
	}
out:
	free(s);
	json_decref(o);
}
