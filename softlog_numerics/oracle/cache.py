"""On-disk cache of oracle values, so that a second ``softlog-numerics report`` does not redo the
mpmath work.

One file per oracle call, named by the SHA-256 of the call's *key*: the function name, its keyword
arguments, and for every input array its dtype, shape and bytes. Where: ``$SOFTLOG_NUMERICS_CACHE``
if set, else ``~/.cache/softlog-numerics``.

File layout (all of it checked on every read, so a value is never trusted without proof)::

    b"SLNCACHE"                      magic, 8 bytes
    uint32 little-endian             length H of the header
    H bytes of JSON                  {"format": CACHE_FORMAT, "oracle": fingerprint of the oracle's modules,
                                      "key": hex key, "dtype": name, "shape": [...],
                                      "sha256": hex digest of the payload}
    payload                          the result array's bytes (C order)

A file is **stale** when its cache-format version or its oracle fingerprint differs from the
running code's (the oracle was changed, so its old answers are not evidence any more); it is
**corrupt** when the magic, the header, the key, the payload length or the payload checksum do not
match. Either way the value is recomputed and the file rewritten. Writes are atomic: the bytes go
to a temporary file in the same folder, which is ``os.replace``-d onto the final name, so a reader
sees the old file or the new one, never half of one, and concurrent writers of one key simply
replace each other's (identical) files. There is no fsync: a file torn by a power cut fails its
checksum and is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from softlog_numerics._core import formats
from softlog_numerics._core.formats import format_of
from softlog_numerics.oracle import enclosures, fast, twins

__all__ = ["CACHE_FORMAT", "OracleCache", "default_directory", "oracle_fingerprint"]

CACHE_FORMAT = 1
"""Version of the file layout; bump it whenever the layout or the meaning of a key changes."""

MAGIC = b"SLNCACHE"


def default_directory() -> Path:
    """``$SOFTLOG_NUMERICS_CACHE`` if set and non-empty, else ``~/.cache/softlog-numerics``."""
    env = os.environ.get("SOFTLOG_NUMERICS_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "softlog-numerics"


def oracle_fingerprint() -> str:
    """SHA-256 (first 16 hex digits) of the oracle's source and of the rounding code it uses:
    a change to either makes every cached value stale."""
    h = hashlib.sha256()
    for mod in (twins, enclosures, fast, formats):
        assert mod.__file__ is not None  # modules of this package, loaded from their files
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:16]


def _key(function: str, args, params: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"function": function, "params": params}, sort_keys=True).encode())
    for a in args:
        a = np.ascontiguousarray(a)
        h.update(f"|{format_of(a.dtype).name}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass
class OracleCache:
    """Oracle values on disk.

    Parameters
    ----------
    directory : path, optional
        Where the files live (default :func:`default_directory`).
    enabled : bool
        False: always compute, never read or write.

    Attributes
    ----------
    hits, misses, stale, corrupt : int
        What happened so far (``stale`` and ``corrupt`` reads also count as misses).
    """

    directory: Path | None = None
    enabled: bool = True
    hits: int = 0
    misses: int = 0
    stale: int = 0
    corrupt: int = 0
    _fingerprint: str | None = field(default=None, repr=False)

    def __post_init__(self):
        self.directory = Path(self.directory) if self.directory is not None else default_directory()

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = oracle_fingerprint()
        return self._fingerprint

    def path(self, function: str, args, params: dict | None = None) -> Path:
        """Where the value of this call is (or would be) stored."""
        key = _key(function, args, params or {})
        assert self.directory is not None  # set by __post_init__
        return self.directory / function / f"{key}.slc"

    def get_or_compute(self, function: str, args, compute: Callable[[], np.ndarray],
                       params: dict | None = None) -> np.ndarray:
        """The cached value of ``function(*args, **params)``, or ``compute()`` (then stored)."""
        if not self.enabled:
            self.misses += 1
            return np.asarray(compute())
        params = params or {}
        key = _key(function, args, params)
        assert self.directory is not None  # set by __post_init__
        path = self.directory / function / f"{key}.slc"
        value = self._read(path, key)
        if value is not None:
            self.hits += 1
            return value
        self.misses += 1
        value = np.ascontiguousarray(compute())
        self._write(path, key, value)
        return value

    # -- file format ------------------------------------------------------------------------
    def _read(self, path: Path, key: str):
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            self.corrupt += 1
            return None
        try:
            if blob[:8] != MAGIC:
                raise ValueError("magic")
            (hlen,) = struct.unpack("<I", blob[8:12])
            header = json.loads(blob[12:12 + hlen].decode())
            if header.get("format") != CACHE_FORMAT or header.get("oracle") != self.fingerprint:
                self.stale += 1
                return None
            if header["key"] != key:
                raise ValueError("key")
            dtype = format_of(header["dtype"]).dtype
            shape = tuple(int(s) for s in header["shape"])
            payload = blob[12 + hlen:]
            if len(payload) != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
                raise ValueError("length")
            if hashlib.sha256(payload).hexdigest() != header["sha256"]:
                raise ValueError("checksum")
            return np.frombuffer(payload, dtype=dtype).reshape(shape).copy()
        except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError, AttributeError):
            self.corrupt += 1
            return None

    def _write(self, path: Path, key: str, value: np.ndarray) -> None:
        payload = value.tobytes()
        header = json.dumps({
            "format": CACHE_FORMAT, "oracle": self.fingerprint, "key": key,
            "dtype": format_of(value.dtype).name, "shape": list(value.shape),
            "sha256": hashlib.sha256(payload).hexdigest(),
        }, sort_keys=True).encode()
        blob = MAGIC + struct.pack("<I", len(header)) + header + payload
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        except OSError:
            return  # an unwritable cache only costs time
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
