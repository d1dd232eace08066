"""Files only their owner may read: generated passwords, keys, configs that hold them."""

import contextlib
import os
import secrets
import stat
from pathlib import Path


def new_password() -> str:
    """A random password of 256 bits in URL-safe characters (no SASLprep or quoting issues)."""
    return secrets.token_urlsafe(32)


def _temporary_sibling(path: Path, data: bytes) -> Path:
    """A new 0600 file beside `path` holding `data`: the mode is set at creation, so the
    content is never readable by others at any moment, whatever the umask."""
    # A new folder for secrets is its owner's alone too (an existing one keeps its mode).
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def write_private(path: Path, data: bytes) -> None:
    """Write (or replace) a file of mode 0600 atomically: readers see the old or the new."""
    tmp = _temporary_sibling(path, data)
    try:
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def ensure_password(path: Path) -> str:
    """The password in `path`, generated into a new 0600 file if there is none yet.

    Concurrent callers (three components starting at once) agree on one password: the file
    appears complete and only once, by a hard link that fails if another caller was first.
    """
    if path.exists():
        return path.read_text().strip()
    tmp = _temporary_sibling(path, (new_password() + "\n").encode())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


def create_private(path: Path, data: bytes) -> None:
    """Write a new file of mode 0600, whole or not at all, never replacing anything.

    FileExistsError if `path` exists (a file, a folder, a symbolic link, even a dangling one),
    also when it appears while this is written: the complete file is linked into place, which
    fails rather than replace.
    """
    tmp = _temporary_sibling(path, data)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink()


def read_private(
    path: Path, error: type[Exception], what: str, hint: str, exposed_hint: str = ""
) -> bytes:
    """The bytes of a file only its owner may read; `error` saying what to do when it is
    missing or unreadable (`hint`) or others may read it (never the content)."""
    try:
        mode = path.stat().st_mode
        content = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what} in {path} ({exc.strerror or exc}). {hint}") from None
    # Like ssh with a private key: a secret others can read is no longer a secret.
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise error(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}); "
            f"run `chmod 600 {path}`{exposed_hint}"
        )
    return content


def read_private_text(
    path: Path, error: type[Exception], what: str, hint: str, empty_hint: str = ""
) -> str:
    """A secret kept alone in a private file (`read_private`), stripped; an empty one refused."""
    try:
        secret = read_private(path, error, what, hint).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise error(f"{path} does not hold UTF-8 text") from None
    if not secret:
        raise error(f"{path} is empty{empty_hint}")
    return secret
