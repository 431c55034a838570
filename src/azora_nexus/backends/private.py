"""What only the data dir's owner may read: file modes, generated passwords, masked URLs.

Every file under `AZORA_DATA_DIR` is 0600 and every directory 0700, so no other local user
reads the data, the logs or the passwords. The one exception, as root: the data dir itself
and the WAL archive's root are 0710 with the embedded PostgreSQL's group, which lets that
user through to its own directories (0700, its own) without listing anything else.
"""

from __future__ import annotations

import contextlib
import grp
import os
import secrets
import stat
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
PRIVATE_UMASK = 0o077  # for the servers we start: what they create is theirs alone
TRAVERSE_DIR = 0o710  # the group may pass through, not list
PASSWORD_FILE = "azora-password"
PASSWORD_BYTES = 32
MASK = "***"


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` (replacing it whole) readable by its owner only."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(temporary, PRIVATE_FILE)  # O_CREAT's mode does not apply to a file that existed
    os.replace(temporary, path)


def open_private_log(path: Path) -> IO[bytes]:
    """`path` opened for appending, 0600 (also when it was written before with another mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return os.fdopen(fd, "ab")


def private_dir(path: Path, *, traverse_group: str | None = None) -> None:
    """Create `path` if needed, 0700; or 0710 with `traverse_group` to let that group in."""
    path.mkdir(parents=True, exist_ok=True)
    if traverse_group is None:
        os.chmod(path, PRIVATE_DIR)
        return
    os.chown(path, -1, grp.getgrnam(traverse_group).gr_gid)
    os.chmod(path, TRAVERSE_DIR)


def tighten(root: Path) -> None:
    """Take every group and other permission off `root` and all under it, except the
    group's search bit of a directory that grants one (`private_dir(traverse_group=...)`)."""
    _tighten_one(str(root))
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            _tighten_one(os.path.join(parent, name))


def _tighten_one(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):  # a server may remove files meanwhile
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            return
        keep = stat.S_IXGRP if stat.S_ISDIR(mode) and stat.S_IMODE(mode) == TRAVERSE_DIR else 0
        if mode & 0o077 & ~keep:
            os.chmod(path, stat.S_IMODE(mode) & ~0o077 | keep)


def read_password(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)  # URL- and SQL-literal-safe characters


def create_password(path: Path) -> str:
    """A new random password kept in `path` (0600); the one already there if another
    process wrote it first."""
    password = new_password()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        found = read_password(path)
        assert found is not None, f"{path} is empty"
        return found
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


def masked(url: str) -> str:
    """`url` with its password replaced by `***`, for logs and `azora status`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostport}"))
