/* What the whole engine shares: one instance, owned by engine_main(). */
#ifndef VMHOSTD_ENGINE_H
#define VMHOSTD_ENGINE_H

#include <stdbool.h>

#include "common/loop.h"
#include "engine/control.h"
#include "engine/links.h"
#include "engine/monchan.h"
#include "engine/vm.h"

struct engine {
	struct loop loop;
	struct control control;
	struct monchan mon;        /* the channel to the monitor */
	struct vms vms;
	struct links links;
	const char *state_dir;     /* the same path as the monitor's */
	const char *config_root;   /* for messages only: the engine cannot
				    * read it (the monitor lists and loads) */
	const char *accel;         /* "kvm" or "tcg", and why */
	const char *accel_why;
	const char *wayland_why;   /* why VMs get no Wayland; NULL: they do */
	bool ready;                /* the monitor handed every VM over */
	unsigned int adopting;     /* handed-over VMs still confirming over
				    * QMP that they run: requests wait */
	bool shutting_down;
};

#endif
