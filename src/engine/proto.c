/* The control protocol's grammar.  See proto.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/vmconfig.h"
#include "engine/proto.h"

static const char *const proto_ops[] = {
	[PROTO_LIST] = "list",
	[PROTO_INFO] = "info",
	[PROTO_START] = "start",
	[PROTO_STOP] = "stop",
	[PROTO_CONSOLE] = "console",
	[PROTO_LOG] = "log",
};

static int proto_fail(char *err, size_t errlen, const char *msg)
{
	snprintf(err, errlen, "%s", msg);
	errno = EINVAL;
	return -1;
}

static int proto_name(json_t *req, struct proto_req *out, char *err,
		      size_t errlen)
{
	const char *name = json_string_value(json_object_get(req, "name"));

	if (!name)
		return proto_fail(err, errlen,
				  "bad request: \"name\" (a string) is missing");
	if (!vmconfig_name_valid(name)) {
		snprintf(err, errlen,
			 "invalid VM name \"%.80s\": use 1 to %d of A-Z a-z 0-9 . _ -, not starting with . or -",
			 name, VMCONFIG_NAME_MAX);
		errno = EINVAL;
		return -1;
	}
	out->name = name;
	return 0;
}

static int proto_stop(json_t *req, struct proto_req *out, char *err,
		      size_t errlen)
{
	json_t *force = json_object_get(req, "force");
	json_t *timeout = json_object_get(req, "timeout");
	json_int_t t;

	if ((force && !json_is_boolean(force)) ||
	    (timeout && !json_is_integer(timeout)))
		return proto_fail(err, errlen,
				  "bad request: \"force\" is a boolean, \"timeout\" an integer");
	out->force = json_is_true(force);
	if (timeout) {
		t = json_integer_value(timeout);
		if (t < 0 || t > PROTO_STOP_TIMEOUT_MAX) {
			snprintf(err, errlen,
				 "bad request: timeout must be 0 to %d seconds",
				 PROTO_STOP_TIMEOUT_MAX);
			errno = EINVAL;
			return -1;
		}
		out->has_timeout = true;
		out->timeout = (unsigned int)t;
	}
	return 0;
}

int proto_parse(json_t *req, struct proto_req *out, char *err, size_t errlen)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	json_t *follow;
	size_t i;

	memset(out, 0, sizeof *out);
	if (!op)
		return proto_fail(err, errlen,
				  "bad request: \"op\" (a string) is missing");
	for (i = 0; i < sizeof proto_ops / sizeof *proto_ops; i++)
		if (!strcmp(op, proto_ops[i]))
			break;
	if (i == sizeof proto_ops / sizeof *proto_ops) {
		snprintf(err, errlen, "bad request: unknown op \"%.40s\"", op);
		errno = EINVAL;
		return -1;
	}
	out->op = (enum proto_op)i;
	switch (out->op) {
	case PROTO_LIST:
		return 0;
	case PROTO_STOP:
		if (proto_stop(req, out, err, errlen) < 0)
			return -1;
		break;
	case PROTO_LOG:
		follow = json_object_get(req, "follow");
		if (follow && !json_is_boolean(follow))
			return proto_fail(err, errlen,
					  "bad request: \"follow\" is a boolean");
		out->follow = json_is_true(follow);
		break;
	default:
		break;
	}
	return proto_name(req, out, err, errlen);
}
