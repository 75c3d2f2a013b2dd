"""Node-side pull: make ``DEST/current`` the release a channel points to, or leave it alone.

``DEST`` holds ``releases/<id>/`` (unpacked artifacts, each with the ``release.json`` it came
from), ``current`` and ``previous`` (relative symlinks into ``releases/``), ``.lock`` and
``.partial/`` (downloads in progress, on the same filesystem so the finished file is renamed,
never copied). The rules, each enforced below and tested against a real S3 server:

- the installed artifact's sha256 equals the channel's: nothing is downloaded, nothing changes;
- the download is verified (size, then sha256 from the release's manifest, never S3's ETag)
  before it is unpacked, and the unpacked executable must run ``version --json`` before
  ``current`` switches to it, so a corrupted or interrupted download never replaces a good
  install;
- ``current`` switches with one ``rename`` of a symlink (atomic: a host starting the executable
  sees the old or the new release, never a half); the old one stays as ``previous`` for an
  instant local rollback;
- one pull at a time per ``DEST`` (a POSIX lock on ``.lock``, which the JVM puller takes too); a
  partial download left by a killed pull is resumed by the next one; transient failures are
  retried with exponential backoff;
- with pinned release keys (``trust``, see ``signing.py`` and ``trust.py``), the channel's signed
  statement is checked before anything else (trusted key, this channel, not expired, not older
  than the newest this node accepted), then the release record's bytes and signature, all before
  the download; an unsigned, mis-signed, expired or replayed release is refused;
- nothing outside ``DEST`` is written or deleted, whatever the bucket holds: the records are
  validated before any field names a file (see ``records.py``), an archive member that is a hard
  link, a device, a fifo, an absolute name, a ``..`` or a symlink leading out of its folder is
  refused before anything is unpacked (:func:`safe_extract`), and a symlink the pull did not
  create where it keeps its own files (``.lock``, ``.partial``, ``releases/...``) is refused, never
  followed (:func:`_check_layout`). Each refusal is a one-line :class:`PullError` and the
  installed release is kept.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import shutil
import stat
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from warden_algos.executable.manifest import sha256_of

from .records import Release
from .store import ReleaseError, ReleaseStore
from .trust import STATE_FILE, ChannelState, check_not_older, verify_channel, verify_release

if TYPE_CHECKING:
    from .signing import ChannelStatement, TrustedKeys

EXECUTABLE = "warden-algos"
#: What one artifact may unpack to (a onedir build is ~3,000 files and ~250 MB): a gzip bomb or
#: a tarball of a million empty files is refused from its headers, before anything is written.
MAX_MEMBERS = 200_000
MAX_UNPACKED_BYTES = 8 << 30


class PullError(ReleaseError):
    """The pull could not install the channel's release; the installed one was kept."""


class PullResult(NamedTuple):
    status: str  # "current" (nothing to do) | "installed" (switched to a new release)
    release_id: str
    executable: Path
    downloaded_bytes: int
    attempts: int


def executable_in(release_dir: Path) -> Path:
    """The program inside an unpacked release (onedir folder or onefile)."""
    onedir = release_dir / EXECUTABLE / EXECUTABLE
    return onedir if onedir.is_file() else release_dir / EXECUTABLE


def installed(dest: Path) -> Release | None:
    """The release ``DEST/current`` holds, or None."""
    record = dest / "current" / "release.json"
    try:
        return Release.model_validate(orjson.loads(record.read_bytes()))
    except (OSError, ValueError):
        return None


class _Lock:
    """A POSIX record lock (``lockf``) on ``DEST/.lock``: concurrent pulls on one node take turns,
    including the JVM host's puller, whose ``FileChannel.lock`` takes the same kind of lock."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        self.path, self.timeout_s = path, timeout_s
        self.fd = -1

    def __enter__(self) -> _Lock:
        try:  # O_NOFOLLOW: a planted symlink must not make us create or open a file elsewhere
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as error:
            raise PullError(
                f"cannot open the lock {self.path} ({error.strerror}; a symlink there is refused)"
            ) from None
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise PullError(
                        f"another pull holds {self.path} for over {self.timeout_s:g} s"
                    ) from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def pull(
    store: ReleaseStore,
    channel: str,
    dest: Path,
    *,
    retries: int = 5,
    backoff_s: float = 0.5,
    lock_timeout_s: float = 600,
    trust: TrustedKeys | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> PullResult:
    """Install what ``channel`` points to into ``dest`` (see the module's rules). With
    ``trust``, only a release its keys signed, under a statement no older than the last."""
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()  # DEST itself may be an operator's symlink; nothing below it may
    with _Lock(dest / ".lock", lock_timeout_s):
        _check_layout(dest)
        pointer = store.channel(channel)
        if pointer is None:
            raise PullError(f"channel {channel!r} does not exist")
        statement: ChannelStatement | None = None
        if trust is not None:
            statement = verify_channel(trust, pointer, channel)
            check_not_older(dest, statement)
        have = installed(dest)
        if have is not None and have.sha256 == pointer.sha256:
            _remember(dest, statement)
            log(f"{channel}: {have.release_id} is already installed")
            return PullResult("current", have.release_id, executable_in(dest / "current"), 0, 0)
        found = store.release_bytes(pointer.release_id)
        if found is None or found[0].sha256 != pointer.sha256:
            raise PullError(
                f"channel {channel!r} points to {pointer.release_id}, whose release record is "
                "missing or disagrees with the pointer's sha256; not installing"
            )
        release, record = found
        if trust is not None and statement is not None:
            signature = store.release_signature(release.release_id)
            verify_release(trust, statement, record, signature)
        target = dest / "releases" / release.release_id
        downloaded, attempts = 0, 0
        if not _intact(target, release):
            archive, downloaded, attempts = _download(
                store, release, dest / ".partial", retries, backoff_s, log
            )
            _unpack(archive, release, record, target)
            archive.unlink()
        _switch(dest, target)
        _remember(dest, statement)
        _prune(dest)
        log(f"{channel}: installed {release.release_id}")
        return PullResult(
            "installed", release.release_id, executable_in(dest / "current"), downloaded, attempts
        )


def _remember(dest: Path, statement: ChannelStatement | None) -> None:
    if statement is not None:
        ChannelState.load(dest).accept(dest, statement)


def rollback_local(dest: Path) -> Release:
    """Swap ``current`` and ``previous``: back to the last release, without the network."""
    dest = dest.resolve()
    with _Lock(dest / ".lock", 60):
        _check_layout(dest)
        previous = dest / "previous"
        if not previous.is_symlink() or not previous.resolve().is_dir():
            raise PullError(f"{dest} has no previous release to roll back to")
        _switch(dest, previous.resolve())
        release = installed(dest)
        assert release is not None
        return release


def _intact(target: Path, release: Release) -> bool:
    """An earlier pull already unpacked and checked this release (e.g. a rollback target)."""
    try:
        record = Release.model_validate(orjson.loads((target / "release.json").read_bytes()))
    except (OSError, ValueError):
        return False
    return record.sha256 == release.sha256 and executable_in(target).is_file()


def _download(
    store: ReleaseStore,
    release: Release,
    partial_dir: Path,
    retries: int,
    backoff_s: float,
    log: Callable[[str], None],
) -> tuple[Path, int, int]:
    """The verified artifact on local disk: (path, bytes fetched, attempts)."""
    from botocore.exceptions import BotoCoreError, ClientError

    partial_dir.mkdir(exist_ok=True)
    _check_layout(partial_dir.parent)  # .partial is a real folder and holds only regular files
    for stale in partial_dir.iterdir():  # partial downloads of other releases: useless now
        if not stale.name.startswith(release.sha256):
            stale.unlink(missing_ok=True)  # a regular file (checked): never a link's target
    path = partial_dir / f"{release.sha256}.part"  # sha256 validated: 64 hex digits
    fetched, attempt = 0, 0
    expected = release.manifest.size
    while True:
        attempt += 1
        try:
            have = path.stat().st_size if path.exists() else 0
            if have > expected:
                path.unlink()
                have = 0
            if have < expected:
                body = store.read_range(release.artifact_key, have)
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                with os.fdopen(os.open(path, flags, 0o644), "ab") as out:
                    while chunk := body.read(1 << 20):
                        out.write(chunk)
                        fetched += len(chunk)
                    out.flush()
                    os.fsync(out.fileno())
            size = path.stat().st_size
            if size != expected:
                raise _Transient(f"got {size} of {expected} bytes")
            digest = sha256_of(path)
            if digest != release.sha256:
                path.unlink()  # corrupt: never resume from it
                raise _Corrupt(f"sha256 {digest[:12]}... != manifest's {release.sha256[:12]}...")
            return path, fetched, attempt
        except (_Transient, _Corrupt, BotoCoreError, ClientError, OSError) as error:
            status = (
                getattr(error, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
            )
            if getattr(error, "errno", None) == errno.ELOOP:  # a symlink planted meanwhile
                raise PullError(f"{path} is a symlink the pull did not create: refusing") from None
            if attempt > retries or status in (400, 403, 404):  # no retry fixes these
                raise PullError(
                    f"could not download {release.release_id} after {attempt} attempts: {error}; "
                    "the installed release was kept"
                ) from None
            # exponential, with jitter so that the nodes of a fleet don't retry in step
            delay = backoff_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
            log(f"download attempt {attempt} failed ({error}); retrying in {delay:.1f} s")
            time.sleep(delay)


class _Transient(Exception):
    pass


class _Corrupt(Exception):
    pass


def _unpack(archive: Path, release: Release, record: bytes, target: Path) -> None:
    """Unpack beside ``target``, check the program runs, then rename into place. ``record`` is
    installed verbatim as ``release.json``: the bytes the signatures cover, and the file the
    Java puller writes too."""
    staging = target.with_name(f".{target.name}.unpacking-{os.getpid()}")
    if staging.is_symlink() or target.is_symlink():
        raise PullError(f"{target} or its staging folder is a symlink the pull did not create")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if release.manifest.mode == "onedir":
            safe_extract(archive, staging, release.release_id)
        else:
            shutil.copyfile(archive, staging / EXECUTABLE)
            (staging / EXECUTABLE).chmod(0o755)
        (staging / "release.json").write_bytes(record)
        _smoke_test(executable_in(staging), release)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def safe_extract(archive: Path, into: Path, what: str) -> None:
    """Unpack a onedir tarball into the empty folder ``into``, or refuse it whole, before anything
    is written: a one-line :class:`PullError` names the first offending member.

    Allowed: directories, regular files, and symlinks whose target is relative, has no ``..``
    and so stays inside the folder holding the link. A real PyInstaller onedir has a few of those
    (``_internal/libgfortran-*.so.5.0.0 -> numpy.libs/...``), so refusing every symlink would
    refuse our own artefacts. Refused: hard links, devices, fifos and any other special member,
    absolute names, ``..`` components, a name given twice, and any member below a symlink (it
    would be written through the link). ``filter="data"`` is applied on top, as a second net.
    """
    try:
        with tarfile.open(archive) as tar:
            members = []
            while (member := tar.next()) is not None:  # headers only; stops at the limit
                members.append(member)
                if len(members) > MAX_MEMBERS:
                    raise PullError(
                        f"{what}: refused the artifact: over {MAX_MEMBERS:,} members; nothing "
                        "was unpacked"
                    )
            _check_members(members, what)
            tar.extractall(into, members=members, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise PullError(f"{what}: cannot unpack the artifact: {error}") from None


def _check_members(members: Iterable[tarfile.TarInfo], what: str) -> None:
    def refuse(member: tarfile.TarInfo, why: str) -> PullError:
        return PullError(
            f"{what}: refused the artifact: member {member.name!r} {why}; nothing was unpacked"
        )

    names: set[str] = set()
    links: set[str] = set()
    members = list(members)
    unpacked = sum(member.size for member in members if member.isreg())
    if unpacked > MAX_UNPACKED_BYTES:
        raise PullError(
            f"{what}: refused the artifact: it unpacks to {unpacked / (1 << 30):.1f} GiB, over "
            f"the limit of {MAX_UNPACKED_BYTES / (1 << 30):.0f} GiB; nothing was unpacked"
        )
    for member in members:
        parts = member.name.split("/")
        if member.name.startswith("/") or "\x00" in member.name:
            raise refuse(member, "has an absolute or invalid name")
        if ".." in parts:
            raise refuse(member, "has a '..' component")
        key = "/".join(part for part in parts if part not in ("", "."))
        if not key:
            raise refuse(member, "has an empty name")
        if key in names:
            raise refuse(member, "appears twice")
        names.add(key)
        if member.islnk():
            raise refuse(member, f"is a hard link (to {member.linkname!r})")
        if member.issym():
            target = member.linkname
            if not target or target.startswith("/") or ".." in target.split("/"):
                raise refuse(member, f"is a symlink leading out of its folder ({target!r})")
            links.add(key)
        elif not (member.isreg() or member.isdir()):
            raise refuse(member, "is a device, fifo or other special file")
    for member in members:
        parts = [part for part in member.name.split("/") if part not in ("", ".")]
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in links:
                raise refuse(member, "lies below a symlink")


def _check_layout(dest: Path) -> None:
    """Refuse (never follow) a symlink the pull did not create where it keeps its own files:
    ``.lock``, ``.partial`` and what it holds (regular files only), ``releases`` and its entries;
    ``current`` and ``previous`` must be the pull's own links into ``releases/``."""

    def refuse(path: Path, why: str) -> PullError:
        return PullError(f"{path} {why}: not touching it; remove it (the pull recreates it)")

    for name in (".lock", ".partial", "releases", STATE_FILE):
        path = dest / name
        if path.is_symlink():
            raise refuse(path, "is a symlink the pull did not create")
    for name in (".partial", "releases"):
        folder = dest / name
        if folder.exists() and not folder.is_dir():
            raise refuse(folder, "is not a folder")
    partial = dest / ".partial"
    if partial.is_dir():
        for entry in partial.iterdir():
            if not stat.S_ISREG(entry.lstat().st_mode):
                raise refuse(entry, "is not a regular file the pull created")
    releases = dest / "releases"
    if releases.is_dir():
        for entry in releases.iterdir():
            if entry.is_symlink():
                raise refuse(entry, "is a symlink the pull did not create")
    for name in ("current", "previous"):
        link = dest / name
        if link.is_symlink():
            if link.resolve().parent != releases.resolve():
                raise refuse(link, "points outside releases/")
        elif link.exists():
            raise refuse(link, "is not the pull's symlink")


def _smoke_test(executable: Path, release: Release) -> None:
    """The unpacked program starts and holds the algorithms its manifest lists."""
    try:
        done = subprocess.run(
            [str(executable), "version", "--json"], capture_output=True, timeout=120, check=False
        )
        info: Any = orjson.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, orjson.JSONDecodeError) as error:
        raise PullError(
            f"{release.release_id}: the unpacked program does not run: {error}"
        ) from None
    if info is None:
        raise PullError(
            f"{release.release_id}: the unpacked program exited {done.returncode}: "
            f"{done.stderr.decode(errors='replace')[-500:]}"
        )
    if info.get("algorithms") != release.manifest.algorithms:
        raise PullError(f"{release.release_id}: the program's algorithms differ from its manifest")


def _switch(dest: Path, target: Path) -> None:
    """``current`` -> ``target`` in one rename; the old ``current`` becomes ``previous``."""
    current = dest / "current"
    old = current.resolve() if current.is_symlink() else None
    _replace_link(dest / "current", target)
    if old is not None and old != target.resolve():
        _replace_link(dest / "previous", old)


def _replace_link(link: Path, target: Path) -> None:
    temporary = link.with_name(f".{link.name}.{os.getpid()}")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(os.path.relpath(target, link.parent))
    os.replace(temporary, link)


def _prune(dest: Path) -> None:
    """Keep the releases ``current`` and ``previous`` point to; remove the rest."""
    keep = {(dest / name).resolve() for name in ("current", "previous") if (dest / name).exists()}
    for folder in (dest / "releases").iterdir():
        if folder.is_symlink():  # not the pull's (refused up front): never follow it
            continue
        if folder.resolve() not in keep and not folder.name.startswith("."):
            shutil.rmtree(folder, ignore_errors=True)
