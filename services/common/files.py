"""Files that hold personal data or keys: owner-only, from the moment they exist.

Directories are created mode 0700 and files 0600 whatever the umask, and an existing
one that is wider is narrowed (databases made by older versions were 0644 in 0755).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def _narrow(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & stat.S_ISVTX:
        return  # a shared directory such as /tmp: not ours to narrow
    if current & ~mode:
        os.chmod(path, current & mode)


def private_dir(path: Path) -> Path:
    """``path`` and its missing parents, the last one 0700 (and narrowed when it exists)."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _narrow(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 if it does not exist; narrow it if it does.

    SQLite gives a database's ``-wal`` and ``-shm`` files the mode of the database file,
    so a database created here keeps its journal private too; those that exist are narrowed.
    """
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if each.exists():
            _narrow(each, FILE_MODE)
    return path
