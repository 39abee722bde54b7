/* cgroup BPF programs that refuse loopback destinations.  See
 * loopfilter.h.
 *
 * The programs are a dozen instructions each, written out here rather
 * than compiled: no BPF toolchain or libbpf is needed to build or run.
 * Each reads the destination from struct bpf_sock_addr (user_ip4 at
 * offset 4, user_ip6[4] at 8) and returns 0 (refuse) or 1 (allow).
 * Addresses are in network byte order; a 32-bit load on this little-
 * endian host puts the first byte of the address in the low bits, which
 * the constants below account for.
 */
#include "vmm/loopfilter.h"

#include <errno.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "loopfilter.c: the constants assume a little-endian host"
#endif

#define LF_INSN(c, d, s, o, i) \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), \
			    .off = (o), .imm = (i) })
/* r_dst = *(u32 *)(r1 + off) */
#define LF_LOAD(d, off) LF_INSN(BPF_LDX | BPF_MEM | BPF_W, d, 1, off, 0)
#define LF_MOV(d, imm) LF_INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, imm)
#define LF_AND(d, imm) LF_INSN(BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, imm)
#define LF_OR(d, s) LF_INSN(BPF_ALU64 | BPF_OR | BPF_X, d, s, 0, 0)
/* if ((u32)r_dst == imm) goto +off (32-bit compare: no sign extension) */
#define LF_JEQ(d, imm, off) LF_INSN(BPF_JMP32 | BPF_JEQ | BPF_K, d, 0, off, imm)
#define LF_JNE(d, imm, off) LF_INSN(BPF_JMP32 | BPF_JNE | BPF_K, d, 0, off, imm)
#define LF_JA(off) LF_INSN(BPF_JMP | BPF_JA, 0, 0, off, 0)
#define LF_EXIT LF_INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

#define LF_IP4 offsetof(struct bpf_sock_addr, user_ip4)
#define LF_IP6(i) (offsetof(struct bpf_sock_addr, user_ip6) + 4 * (i))
#define LF_LOOPNET 0x7f         /* 127.0.0.0/8: its first byte */
#define LF_IP6_ONE 0x01000000   /* the last word of ::1 */
#define LF_IP6_MAPPED 0xffff0000 /* the third word of ::ffff:a.b.c.d */

/* Refuse 0.0.0.0 and 127.0.0.0/8. */
static const struct bpf_insn lf_prog4[] = {
	LF_LOAD(2, LF_IP4),
	LF_MOV(0, 0),
	LF_JEQ(2, 0, 3),               /* 0.0.0.0: refuse */
	LF_AND(2, 0xff),
	LF_JEQ(2, LF_LOOPNET, 1),      /* 127/8: refuse */
	LF_MOV(0, 1),
	LF_EXIT,
};

/* Refuse ::, ::1, ::ffff:0.0.0.0 and ::ffff:127.0.0.0/104. */
static const struct bpf_insn lf_prog6[] = {
	LF_LOAD(2, LF_IP6(0)),
	LF_LOAD(3, LF_IP6(1)),
	LF_LOAD(4, LF_IP6(2)),
	LF_LOAD(5, LF_IP6(3)),
	LF_MOV(0, 1),
	LF_OR(2, 3),
	LF_JNE(2, 0, 10),              /* not in ::/64: allow */
	LF_JEQ(4, 0, 2),               /* ::/96: look at the last word */
	LF_JEQ(4, (int32_t)LF_IP6_MAPPED, 4), /* IPv4-mapped */
	LF_JA(7),                      /* allow */
	LF_JEQ(5, 0, 5),               /* :: : refuse */
	LF_JEQ(5, LF_IP6_ONE, 4),      /* ::1: refuse */
	LF_JA(4),                      /* allow */
	LF_JEQ(5, 0, 2),               /* ::ffff:0.0.0.0: refuse */
	LF_AND(5, 0xff),
	LF_JNE(5, LF_LOOPNET, 1),      /* not ::ffff:127/104: allow */
	LF_MOV(0, 0),
	LF_EXIT,
};

static int lf_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

static int lf_attach_one(int dirfd, const struct bpf_insn *prog, size_t n,
			 enum bpf_attach_type type)
{
	union bpf_attr a;
	int fd, rc, saved;

	memset(&a, 0, sizeof a);
	a.prog_type = BPF_PROG_TYPE_CGROUP_SOCK_ADDR;
	a.expected_attach_type = type;
	a.insns = (uint64_t)(uintptr_t)prog;
	a.insn_cnt = (uint32_t)n;
	a.license = (uint64_t)(uintptr_t)"GPL";
	fd = lf_bpf(BPF_PROG_LOAD, &a);
	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof a);
	a.target_fd = (uint32_t)dirfd;
	a.attach_bpf_fd = (uint32_t)fd;
	a.attach_type = type;
	/* The attachment holds the program; our fd can go. */
	rc = lf_bpf(BPF_PROG_ATTACH, &a);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

static int lf_detach(int dirfd, enum bpf_attach_type type)
{
	union bpf_attr a;

	memset(&a, 0, sizeof a);
	a.target_fd = (uint32_t)dirfd;
	a.attach_type = type;
	return lf_bpf(BPF_PROG_DETACH, &a);
}

int loopfilter_attach(int dirfd)
{
	static const struct {
		enum bpf_attach_type type;
		bool v6;
	} hooks[] = {
		{ BPF_CGROUP_INET4_CONNECT, false },
		{ BPF_CGROUP_UDP4_SENDMSG, false },
		{ BPF_CGROUP_INET6_CONNECT, true },
		{ BPF_CGROUP_UDP6_SENDMSG, true },
	};
	size_t n = sizeof hooks / sizeof *hooks, i;
	int saved;

	for (i = 0; i < n; i++) {
		const struct bpf_insn *p = hooks[i].v6 ? lf_prog6 : lf_prog4;
		size_t len = hooks[i].v6 ? sizeof lf_prog6 / sizeof *lf_prog6 :
				sizeof lf_prog4 / sizeof *lf_prog4;

		if (lf_attach_one(dirfd, p, len, hooks[i].type) < 0)
			goto fail;
	}
	return 0;
fail:
	saved = errno;
	while (i--)
		lf_detach(dirfd, hooks[i].type);
	errno = saved;
	return -1;
}
