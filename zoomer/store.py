"""Raw score frames on disk: the artefact of a render, kept apart from colour and encoding.

Each computed frame is saved the moment it exists, atomically (temp file + rename), under
a key that hashes everything that determines its scores. A manifest records the render
fingerprint (experiment, zoom path, sizes, precision); a store built for a different
fingerprint is refused rather than mixed. Colour and video settings are not part of it,
so re-colouring or re-encoding reads the store without touching the engine.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

MANIFEST = "manifest.json"


class StoreMismatch(ValueError):
    """The store on disk was built for another render."""


def digest(obj) -> str:
    """A stable hash of a JSON-able object (floats by repr, so windows keep every digit)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()[:24]


def write_atomic(path: Path, write) -> None:
    """Write through `write(file)` into a temp file beside `path`, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FrameStore:
    """Score frames of one render, by frame key, in a directory."""

    def __init__(self, root, fingerprint: dict):
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.root.mkdir(parents=True, exist_ok=True)
        manifest = self.root / MANIFEST
        if manifest.exists():
            stored = json.loads(manifest.read_text())
            if stored != json.loads(json.dumps(fingerprint, default=repr)):
                raise StoreMismatch(
                    f"the frame store {self.root} was built for a different render "
                    f"(differs in: {', '.join(_differences(stored, fingerprint)) or 'format'}); "
                    "use a new output directory, or the same settings to resume it"
                )
        else:
            write_atomic(manifest, lambda f: f.write(json.dumps(fingerprint, indent=1, default=repr).encode()))

    def key(self, frame: dict) -> str:
        """The file key of a frame described by JSON-able facts (window, size, ...)."""
        return digest({"render": self.fingerprint, "frame": frame})

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npy"

    def has(self, key: str) -> bool:
        return self.path(key).exists()

    def load(self, key: str) -> np.ndarray:
        return np.load(self.path(key))

    def save(self, key: str, scores: np.ndarray) -> None:
        write_atomic(self.path(key), lambda f: np.save(f, scores))

    def write_json(self, name: str, obj) -> None:
        write_atomic(self.root / name, lambda f: f.write(json.dumps(obj, indent=1).encode()))

    def read_json(self, name: str):
        path = self.root / name
        return json.loads(path.read_text()) if path.exists() else None


def _differences(a, b, prefix="") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    b = json.loads(json.dumps(b, default=repr))
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out
