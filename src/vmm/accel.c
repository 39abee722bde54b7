/* Choosing the accelerator.  See vmm.h and docs in shared/platform.md:
 * /dev/kvm alone is not enough, kvm_pvm answers ioctls but cannot run a
 * normal guest. */
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static int accel_kvm_usable(const char **why)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		*why = "TCG: /dev/kvm cannot be opened read-write";
		return 0;
	}
	close(fd);
	if (access("/sys/module/kvm_intel", F_OK) == 0 ||
	    access("/sys/module/kvm_amd", F_OK) == 0) {
		*why = "KVM: /dev/kvm is usable and kvm_intel or kvm_amd is loaded";
		return 1;
	}
	*why = "TCG: /dev/kvm exists but neither kvm_intel nor kvm_amd is "
	       "loaded (e.g. kvm_pvm cannot run a standard guest)";
	return 0;
}

int vmm_accel_resolve(const char *mode, enum vmm_accel *accel,
		      const char **why)
{
	const char *dummy;

	if (!why)
		why = &dummy;
	if (!mode || strcmp(mode, "auto") == 0) {
		*accel = accel_kvm_usable(why) ? VMM_ACCEL_KVM : VMM_ACCEL_TCG;
		return 0;
	}
	if (strcmp(mode, "kvm") == 0) {
		*accel = VMM_ACCEL_KVM;
		*why = "KVM: requested with --accel kvm";
		return 0;
	}
	if (strcmp(mode, "tcg") == 0) {
		*accel = VMM_ACCEL_TCG;
		*why = "TCG: requested with --accel tcg";
		return 0;
	}
	errno = EINVAL;
	return -1;
}

const char *vmm_accel_name(enum vmm_accel accel)
{
	return accel == VMM_ACCEL_KVM ? "kvm" : "tcg";
}
