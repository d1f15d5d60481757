"""Where a dataset comes from: an http(s) download, a local archive or a local directory.

Covers: ``resolve`` (``data.source`` -> a local file or directory, downloading a URL once,
streamed via ``<name>.part`` and, where the adapter knows it, checked against the archive's
md5 before it is kept), and ``Source``, one view over a directory, a zip (CRCs checked) or a
tar archive (``.tar.gz``/``.tgz``/``.tar``, extracted once into a work folder since a
compressed tar cannot be read at random). Does not cover: what a dataset's layout is (the
adapters in this package) or decoding audio.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import tarfile
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from pipelines.datasets.base import DatasetError, file_digest, listing

log = logging.getLogger(__name__)

MAX_DEPTH = 4  # path components of the deepest file considered, e.g. top/audio/fold1/x.wav
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")


def is_url(source: str) -> bool:
    return urllib.parse.urlsplit(source).scheme in ("http", "https")


def download_name(url: str) -> str:
    """File name of a URL's download: its path made file-name safe (host if no path)."""
    parts = urllib.parse.urlsplit(url)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", parts.path.strip("/") or parts.netloc)


def download(
    url: str,
    downloads: Path,
    *,
    md5: str | None = None,
    chunk_bytes: int = 1 << 20,
    timeout_s: float = 60.0,
) -> Path:
    """Stream ``url`` to ``downloads/<name>`` (via ``<name>.part``); reuse a finished download.

    With ``md5``, a new download is kept only if its md5 matches, and a reused one is checked
    again; DatasetError otherwise (a failed new download leaves nothing behind).
    """
    target = downloads / download_name(url)
    if target.is_file():
        log.info("using the existing download %s (delete it to download again)", target)
        if md5 is not None and (digest := file_digest(target, "md5")) != md5:
            raise DatasetError(
                f"{target} (downloaded from {url}) has md5 {digest}, expected {md5}: "
                f"it is corrupt or not the official archive; delete {target} and run the "
                "fetch stage again"
            )
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    log.info("downloading %s to %s", url, target)
    request = urllib.request.Request(url, headers={"User-Agent": "esc-pipeline-fetch"})
    done, size, hasher = 0, None, hashlib.md5()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response, part.open("wb") as out:
            length = response.headers["Content-Length"]  # None when the server streams
            size = int(length) if length else None
            with tqdm(total=size, unit="B", unit_scale=True, desc=target.name, disable=None) as bar:
                while chunk := response.read(chunk_bytes):
                    out.write(chunk)
                    hasher.update(chunk)
                    bar.update(len(chunk))
                    done += len(chunk)
    except (OSError, http.client.HTTPException) as err:
        part.unlink(missing_ok=True)
        raise DatasetError(
            f"could not download {url} ({err!r}); check the address and the network, "
            "or set data.source to a local archive or directory"
        ) from err
    if size is not None and done != size:
        part.unlink(missing_ok=True)
        raise DatasetError(
            f"download of {url} ended after {done} of {size} bytes; run the fetch stage again"
        )
    if md5 is not None and hasher.hexdigest() != md5:
        part.unlink(missing_ok=True)
        raise DatasetError(
            f"download of {url} has md5 {hasher.hexdigest()}, expected {md5} (archive md5 "
            "mismatch): the server sent a corrupt or different file; run the fetch stage "
            "again, or check that data.source is the official archive"
        )
    os.replace(part, target)
    return target


def resolve(source: str, downloads: Path, md5: str | None = None) -> tuple[Path, str]:
    """(local file or directory of ``data.source``, what to do if it proves broken).

    ``md5``: the archive an http(s) source must download to (see ``download``).
    """
    if is_url(source):
        archive = download(source, downloads, md5=md5)
        return archive, f"delete {archive} and run the fetch stage again"
    archive = Path(source).expanduser()
    if not archive.exists():
        raise DatasetError(
            f"data.source {source!r}: no such file or directory; set it to an http(s) URL, "
            "a .zip, a .tar.gz or a directory holding the dataset"
        )
    return archive, f"replace {archive} with an unmodified copy, or set data.source to its URL"


def _safe(name: str) -> str | None:
    """``name`` as a relative POSIX path, or None if it is absolute or climbs out."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return path.as_posix()


class Source:
    """A local directory, zip or tar archive holding a dataset under ``root`` (``""`` or
    ``"<folders>/"``).

    ``names`` are the POSIX paths of its files, at most ``MAX_DEPTH`` components deep;
    members are paths relative to ``root``, set by the adapter once the layout is known.
    ``fix`` says what to do when the source proves broken; ``workdir`` receives extracted
    files (the caller removes it).
    """

    def __init__(self, archive: Path, fix: str, workdir: Path) -> None:
        self.archive, self.fix, self.workdir = archive, fix, workdir
        self.kind = self._kind()
        self.names = {
            "dir": self._dir_names,
            "zip": self._zip_names,
            "tar": self._tar_extract,
        }[self.kind]()
        self.root = ""

    def _kind(self) -> str:
        if self.archive.is_dir():
            return "dir"
        name = self.archive.name.lower()
        if name.endswith(".zip"):
            return "zip"
        if name.endswith(_TAR_SUFFIXES):
            return "tar"
        with self.archive.open("rb") as f:
            head = f.read(4)
        if head.startswith(b"PK"):
            return "zip"
        if head.startswith(b"\x1f\x8b") or tarfile.is_tarfile(self.archive):
            return "tar"
        raise DatasetError(
            f"{self.archive}: neither a zip nor a tar archive nor a directory; {self.fix}"
        )

    def _dir_names(self) -> list[str]:
        names = []
        for dirpath, dirnames, filenames in os.walk(self.archive):
            rel = Path(dirpath).relative_to(self.archive)
            if len(rel.parts) >= MAX_DEPTH - 1:
                dirnames.clear()
            names += [(rel / name).as_posix() for name in filenames]
        return names

    def _zip_names(self) -> list[str]:
        try:
            with zipfile.ZipFile(self.archive) as zf:
                bad = zf.testzip()  # reads every member, checking its CRC
                names = [info.filename for info in zf.infolist() if not info.is_dir()]
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as err:
            raise DatasetError(
                f"{self.archive}: not a readable zip archive ({err}); {self.fix}"
            ) from err
        if bad is not None:
            raise DatasetError(
                f"{self.archive}: {bad} fails its CRC check (corrupt archive); {self.fix}"
            )
        return names

    def _tar_extract(self) -> list[str]:
        """Extract every regular file (up to MAX_DEPTH deep) into workdir, in one pass."""
        names = []
        log.info("extracting %s to %s", self.archive, self.workdir)
        try:
            with tarfile.open(self.archive, "r|*") as tf:  # streamed: one pass over the file
                for info in tqdm(tf, desc="extract", unit="file", disable=None):
                    name = _safe(info.name)
                    if not info.isfile() or name is None or name.count("/") >= MAX_DEPTH:
                        continue  # links, devices, folders, unsafe or too deep names
                    dest = self.workdir / name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with tf.extractfile(info) as src, dest.open("wb") as out:
                        shutil.copyfileobj(src, out)
                    names.append(name)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            raise DatasetError(
                f"{self.archive}: not a readable tar archive ({err}); {self.fix}"
            ) from err
        return names

    def set_root(self, roots: set[str], what: str) -> None:
        if len(roots) > 1:
            raise DatasetError(
                f"{self.archive}: {what} found in several folders ({listing(sorted(roots))}); "
                "point data.source at one copy of the dataset"
            )
        self.root = roots.pop()

    def where(self, member: str) -> str:
        """A member's name for messages: its path, or ``<archive>:<path in the archive>``."""
        name = self.root + member
        return str(self.archive / name) if self.kind == "dir" else f"{self.archive}:{name}"

    def missing(self, members: Iterable[str]) -> list[str]:
        present = set(self.names)
        return [self.where(member) for member in members if self.root + member not in present]

    def local(self, members: Iterable[str]) -> dict[str, Path]:
        """Paths on disk of members: the files themselves, or copies extracted to workdir."""
        if self.kind == "dir":
            return {member: self.archive / self.root / member for member in members}
        if self.kind == "tar":
            return {member: self.workdir / self.root / member for member in members}
        files = {}
        with zipfile.ZipFile(self.archive) as zf:
            for member in members:
                if _safe(member) is None:
                    raise DatasetError(f"{self.where(member)}: unsafe member name; {self.fix}")
                files[member] = dest = self.workdir / member
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(self.root + member) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out)
        return files

    def verify_checksums(
        self,
        files: Mapping[str, Path],
        checksums: Mapping[str, str],
        algorithm: str,
        release: str,
    ) -> None:
        """Every file's digest equals ``checksums[member]``; DatasetError naming those that
        are unlisted (``release`` names the reference) or differ."""
        unlisted = [self.where(member) for member in files if member not in checksums]
        if unlisted:
            raise DatasetError(
                f"{len(unlisted)} file(s) have no {release} checksum: {listing(unlisted)}; "
                f"this is not the {release} release; {self.fix}"
            )
        bad = [
            f"{self.where(member)} ({algorithm} {digest}, expected {checksums[member]})"
            for member, path in files.items()
            if (digest := file_digest(path, algorithm)) != checksums[member]
        ]
        if bad:
            raise DatasetError(
                f"{len(bad)} file(s) fail the {algorithm} check: {listing(bad)}; "
                f"the data is corrupt or modified; {self.fix}"
            )
