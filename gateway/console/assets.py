"""The console's files (HTML, ES modules, CSS), shipped inside the package and served from memory.

Everything under `static/` is read once, gzipped once, and served under `/ui/static/<version>/`,
where the version is a digest of all the files: a browser may cache them for a year, and an upgrade
changes every URL. Nothing is fetched from anywhere else, so the console works offline.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None  # None when compressing does not pay
    media_type: str
    etag: str


@dataclass(frozen=True, slots=True)
class Assets:
    version: str
    files: dict[str, Asset]

    def get(self, path: str) -> Asset | None:
        return self.files.get(path)


@functools.cache
def load() -> Assets:
    """Every file of the package's `static/` folder, by its path relative to that folder."""
    root = resources.files("gateway.console").joinpath("static")
    files: dict[str, Asset] = {}
    overall = hashlib.sha256()
    for path, entry in sorted(_walk(root, "")):
        body = entry.read_bytes()
        digest = hashlib.sha256(body).hexdigest()
        overall.update(path.encode() + b"\0" + digest.encode())
        suffix = path[path.rfind(".") :]
        packed = gzip.compress(body, 9, mtime=0) if suffix != ".png" else None
        files[path] = Asset(
            body,
            packed if packed is not None and len(packed) < len(body) else None,
            TYPES.get(suffix, "application/octet-stream"),
            f'"{digest[:20]}"',
        )
    return Assets(overall.hexdigest()[:12], files)


def _walk(folder: resources.abc.Traversable, prefix: str) -> list[tuple[str, resources.abc.Traversable]]:
    found = []
    for entry in folder.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            found += _walk(entry, name + "/")
        elif not entry.name.startswith("."):
            found.append((name, entry))
    return found
