"""Real users for tests: created with useradd, removed with userdel after.

    with users.user("own") as u:     # u.name, u.uid, u.gid
        os.chown(path, u.uid, u.gid)
"""
import contextlib
import os
import pwd
import subprocess


class User:
    def __init__(self, name):
        pw = pwd.getpwnam(name)
        self.name, self.uid, self.gid = name, pw.pw_uid, pw.pw_gid

    def chown_tree(self, path):
        """path and everything below it, links themselves included and
        never followed (a link may lead where a stat would hang)."""
        os.lchown(path, self.uid, self.gid)
        for entry in os.scandir(path):
            if entry.is_dir(follow_symlinks=False):
                self.chown_tree(entry.path)
            else:
                os.lchown(entry.path, self.uid, self.gid)


@contextlib.contextmanager
def user(tag):
    """A new user without home or shell, named after tag and our pid."""
    if os.geteuid() != 0:
        raise RuntimeError("creating users needs root")
    name = f"vmh{tag}{os.getpid() % 100000}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "--user-group", name], check=True, capture_output=True)
    try:
        yield User(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)
