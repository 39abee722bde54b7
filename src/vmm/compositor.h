/* The host compositor's socket, as the Wayland host ends reach it
 * (docs/wayland.md, docs/security.md "Wayland").
 *
 * vmhostd --wayland-display PATH names it.  It belongs to the desktop
 * user and usually lies in a runtime directory only that user can search
 * (/run/user/UID, 0700), and connect() needs write permission on it.  A
 * VM's host end runs as the VM's uid, so for each VM with `wayland` the
 * monitor:
 *   - opens the socket as an O_PATH fd (compositor_open), refusing
 *     symbolic links anywhere on the way and anything but a socket; that
 *     very inode is bind-mounted into the host end's jail (jail.h), so the
 *     host end needs no way through the runtime directory;
 *   - lets exactly the uids of the VMs that run a host end connect to it,
 *     with one named-user ACL entry (rw) each on the socket, and removes
 *     the entries of every other uid of the VMs' range
 *     (compositor_grant).  A child that has become the socket's owner
 *     does it, since only the owner may change a file's ACL and the
 *     monitor keeps no CAP_FOWNER; it also checks that a compositor
 *     listens there.  An entry gives nothing outside the host end's jail:
 *     the runtime directory still stops the VM's uid on the host.
 */
#ifndef VMHOST_COMPOSITOR_H
#define VMHOST_COMPOSITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* How long the owner's child may take before it is killed. */
#define COMPOSITOR_TIMEOUT_MS 5000

/* Open path (absolute) O_PATH | O_CLOEXEC with no symbolic link on the
 * way, and check it is a socket.  -1 with errno, why saying what is
 * wrong as "PATH: problem" (no such file: is the compositor running?). */
int compositor_open(const char *path, char *why, size_t len);

/* Whether something listens on the socket at fd (compositor_open):
 * connect once as we are.  0, or -1 with errno (ECONNREFUSED: nothing
 * listens). */
int compositor_listening(int fd);

/* In a child that is the owner of the socket at fd: make the named-user
 * ACL entries for uids in [first, first + count) exactly those of
 * grant[0..n), with read and write, leaving every other entry alone (no
 * entry left: the mask goes too, so the mode is as it was); then, if
 * probe, connect once to check a compositor listens.  0, or -1 with
 * errno and why ("PATH: problem", path only naming fd). */
int compositor_grant(int fd, const char *path, uid_t first,
		     unsigned int count, const uid_t *grant, size_t n,
		     bool probe, char *why, size_t len);

#endif
