"""Raw score frames on disk: the artefact of a render, kept apart from colour and encoding.

Each computed frame is saved the moment it exists, atomically (zoomer.atomic), under a key
that hashes everything that determines its scores. A manifest records the render
fingerprint (experiment, zoom path, sizes, precision) and the store's format version; a
store built for a different fingerprint or format is refused rather than mixed. Colour and
video settings are not part of it, so re-colouring or re-encoding reads the store without
touching the engine.

A frame file is a .npy file (np.load reads it; its header holds the shape and dtype)
followed by a trailer: MAGIC and the SHA-256 of every byte before it. A frame whose bytes
do not match their checksum (truncated, zeroed, flipped) is reported by its path and
counts as missing, so it is computed again.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np

from .atomic import remove_stale, write_atomic
from .errors import Refusal

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# 1: bare .npy frames (no checksum). 2: .npy + checksum trailer.
FORMAT = 2
MAGIC = b"ZOOMER-SHA256\n"
TRAILER = len(MAGIC) + hashlib.sha256().digest_size


class StoreMismatch(Refusal):
    """The store on disk was built for another render, or by another store format."""


class CorruptFrame(Refusal):
    """A stored frame's bytes do not match the checksum written with them."""

    def __init__(self, path: Path, why: str):
        self.path = path
        super().__init__(f"the stored frame {path} is damaged ({why}); delete it, or run the same "
                         "command again to compute it anew")


def digest(obj) -> str:
    """A stable hash of a JSON-able object (floats by repr, so windows keep every digit)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()[:24]


def frame_bytes(scores: np.ndarray) -> bytes:
    """A frame as stored: .npy bytes, then MAGIC and their SHA-256."""
    buffer = io.BytesIO()
    np.save(buffer, scores)
    body = buffer.getvalue()
    return body + MAGIC + hashlib.sha256(body).digest()


def read_frame(path: Path) -> np.ndarray:
    """The frame in a file written by frame_bytes; CorruptFrame if its checksum fails."""
    data = Path(path).read_bytes()
    body, magic, checksum = data[:-TRAILER], data[-TRAILER:-TRAILER + len(MAGIC)], data[-TRAILER + len(MAGIC):]
    if len(data) < TRAILER or magic != MAGIC:
        raise CorruptFrame(path, f"no checksum at its end: truncated or overwritten ({len(data)} bytes)")
    if hashlib.sha256(body).digest() != checksum:
        raise CorruptFrame(path, "its bytes do not match the checksum written with them")
    return np.load(io.BytesIO(body), allow_pickle=False)


class FrameStore:
    """Score frames of one render, by frame key, in a directory."""

    def __init__(self, root, fingerprint: dict, assembling: bool = False):
        """`assembling`: only read frames that others computed (render.mode=assemble), which
        changes what a mismatch asks of the user."""
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.root.mkdir(parents=True, exist_ok=True)
        # path -> (size, mtime_ns) of a file checked sound, so has() reads each frame once.
        self._sound: dict[Path, tuple[int, int]] = {}
        self._reported: set[Path] = set()
        manifest = self.root / MANIFEST
        wanted = {"store_format": FORMAT, **json.loads(json.dumps(fingerprint, default=repr))}
        if manifest.exists():
            stored = self.read_json(MANIFEST)
            if stored.get("store_format", 1) != FORMAT:
                raise StoreMismatch(
                    f"the frame store {self.root} has store format {stored.get('store_format', 1)}, "
                    f"this zoomer reads format {FORMAT} (frames with checksums) and cannot check "
                    "the old frames; use a new output directory (or render.store_dir), or delete that store"
                )
            if stored != wanted and not assembling and self._holds_nothing():
                # a render stopped or refused before it stored anything: nothing to keep apart
                log.info("the frame store %s held nothing of its render yet (it differed in: %s); this render "
                         "takes it over", self.root, ", ".join(_differences(stored, wanted)))
                write_atomic(manifest, lambda f: f.write(json.dumps(wanted, indent=1).encode()))
            elif stored != wanted:
                raise StoreMismatch(
                    f"the frame store {self.root} was built for a different render "
                    f"(differs in: {', '.join(_differences(stored, wanted)) or 'format'}); "
                    + ("assemble with the settings the shards computed with, on the kind of machine they ran on "
                       "(its device resolves the auto settings, and its backend the frames' last bits)" if assembling
                       else "use a new output directory, or the same settings to resume it")
                )
        else:
            write_atomic(manifest, lambda f: f.write(json.dumps(wanted, indent=1).encode()))
        for path in remove_stale(self.root):
            log.info("removed %s, a temporary file left by an interrupted write", path)

    def _holds_nothing(self) -> bool:
        """No frame and no searched target: only the manifest of a render that stopped first."""
        return not any(self.root.glob("*.npy")) and not (self.root / "target.json").exists()

    def key(self, frame: dict) -> str:
        """The file key of a frame described by JSON-able facts (window, size, ...)."""
        return digest({"render": self.fingerprint, "frame": frame})

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npy"

    def has(self, key: str) -> bool:
        """Whether a sound copy of the frame is stored; a damaged one is reported (once) and
        counts as missing."""
        path = self.path(key)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return False
        if self._sound.get(path) == (stat.st_size, stat.st_mtime_ns):
            return True
        try:
            read_frame(path)
        except CorruptFrame as e:
            if path not in self._reported:
                self._reported.add(path)
                log.warning("%s: it will be computed again", e)
            return False
        self._sound[path] = (stat.st_size, stat.st_mtime_ns)
        return True

    def load(self, key: str) -> np.ndarray:
        """The stored frame; CorruptFrame (naming the file) if it fails its checksum."""
        return read_frame(self.path(key))

    def save(self, key: str, scores: np.ndarray) -> None:
        write_atomic(self.path(key), lambda f: f.write(frame_bytes(scores)))

    def write_json(self, name: str, obj) -> None:
        write_atomic(self.root / name, lambda f: f.write(json.dumps(obj, indent=1).encode()))

    def read_json(self, name: str) -> dict | None:
        """A JSON object the store holds (None if absent); a Refusal naming the file if it
        is damaged, since a store is only ever written whole (zoomer.atomic)."""
        path = self.root / name
        if not path.exists():
            return None
        try:
            obj = json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError) as e:
            obj, why = None, f"not valid JSON: {e}"
        else:
            why = f"a JSON {type(obj).__name__}, not an object"
        if not isinstance(obj, dict):
            raise Refusal(f"the frame store's {path} is {why}; it was not written by zoomer: delete it "
                          "(or the whole store) and run again")
        return obj


def _differences(a, b, prefix="") -> list[str]:
    """Dotted keys whose values differ between two nested dicts; a short value is shown as
    it is stored and as it is now."""
    b = json.loads(json.dumps(b, default=repr))
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{k}.")
        elif va != vb:
            short = all(isinstance(v, (str, int, float, type(None))) for v in (va, vb))
            out.append(f"{prefix}{k} (stored {va}, now {vb})" if short else f"{prefix}{k}")
    return out
