"""Frames -> files: MP4 / GIF / WebP streamed to ffmpeg, PNG stills.

Frames are piped as raw RGB into the ffmpeg binary that imageio-ffmpeg bundles, so no
image folder ever lands on disk. We start that binary ourselves instead of going through
imageio_ffmpeg.write_frames, because write_frames neither keeps ffmpeg's stderr nor checks
its exit status, and a failed encode must say why; imageio's ffmpeg plugin is built on
write_frames too. PNGs are written by Pillow, which is also what imageio v3's PNG plugin
calls, so imageio would add a dependency and no function; tests read videos back with
imageio_ffmpeg.read_frames.
"""
import contextlib
import errno
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import imageio_ffmpeg
import numpy as np
from PIL import Image

from .atomic import AtomicFile, write_atomic
from .config import Codec, VideoConfig, VideoFormat
from .errors import Refusal

ENCODERS = {Codec.h264: "libx264", Codec.hevc: "libx265"}  # ffmpeg's encoder for each codec
WEBP_QUALITY = 80  # libwebp's 0..100 scale


def _encoder_args(config: VideoConfig) -> list[str]:
    """ffmpeg output options for each format."""
    if config.format == VideoFormat.mp4:
        args = ["-c:v", ENCODERS[config.codec], "-preset", str(config.preset), "-crf", str(config.crf),
                "-pix_fmt", "yuv420p", "-movflags", "+faststart"]  # faststart: index up front, streams on the web
        if config.codec == Codec.hevc:
            args += ["-tag:v", "hvc1", "-x265-params", "log-level=error"]  # hvc1: Apple players need it
        return args
    if config.format == VideoFormat.gif:
        # One palette for the whole clip (every frame uses the same colormap) and ordered
        # dithering, whose fixed pattern does not crawl from frame to frame.
        return ["-filter_complex", "split[a][b];[a]palettegen[p];[b][p]paletteuse=dither=bayer", "-loop", "0"]
    return ["-c:v", "libwebp_anim", "-quality", str(WEBP_QUALITY), "-pix_fmt", "yuv420p", "-loop", "0"]


def check_encodes(config: VideoConfig) -> None:
    """Encode two black frames with the video's settings, so an encoder that refuses its
    size (libx265 wants 16 px a side, and some small sizes crash it) says so before the
    compute rather than after it."""
    with tempfile.TemporaryDirectory(prefix="zoomer-encode-check-") as directory:
        try:
            with VideoWriter(Path(directory) / f"check.{config.format}", config) as writer:
                for _ in range(2):
                    writer.write(np.zeros((config.height, config.width, 3), np.uint8))
        except RuntimeError as e:  # ffmpeg's first words, without its "[encoder @ 0x...]" prefix
            said = (str(e).splitlines()[1:] or [str(e)])[0].split("] ")[-1].strip()
            raise Refusal(f"ffmpeg cannot encode {config.width}x{config.height} frames as video.format={config.format} "
                          f"with video.codec={config.codec} ({said}); choose another codec or a larger size") from None


def check_frame(frame: np.ndarray, shape: Optional[tuple] = None) -> None:
    """Refuse anything but a uint8 (height, width, 3) frame (of `shape` when given)."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or shape not in (None, frame.shape):
        wanted = f"{shape} (height, width, RGB)" if shape else "(height, width, 3)"
        raise ValueError(f"frame is {frame.dtype} {frame.shape}; expected uint8 {wanted}")


class VideoWriter:
    """Streams uint8 (height, width, 3) frames into one video file.

        with VideoWriter("zoom.mp4", config) as writer:
            for frame in frames:
                writer.write(frame)

    ffmpeg writes a temporary file beside the final one (zoomer.atomic), which replaces
    the final file only when the encode finished cleanly: an error, Ctrl-C or a full disk
    part-way leaves an earlier video at that path as it was.
    """

    def __init__(self, path, config: VideoConfig):
        self.path, self.config = Path(path), config
        self.shape = (config.height, config.width, 3)
        self._file = AtomicFile(self.path, extension=True)
        self._stderr = tempfile.TemporaryFile()
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error",
                   "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{config.width}x{config.height}",
                   "-r", str(config.fps), "-i", "-", "-an", *_encoder_args(config), "-f", str(config.format),
                   str(self._file.temp)]
        try:
            self._ffmpeg = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                            stderr=self._stderr)
        except BaseException:
            self._file.discard()
            self._stderr.close()
            raise

    def write(self, frame: np.ndarray) -> None:
        check_frame(frame, self.shape)
        try:
            self._ffmpeg.stdin.write(frame.tobytes())
        except BrokenPipeError:
            raise self._failure() from None

    def close(self) -> None:
        """Finish the file and put it in place; raises RuntimeError with ffmpeg's own words
        (OSError on a full disk) if encoding failed (the temporary file is removed then)."""
        if self._stderr.closed:
            return
        try:
            self._close_stdin()
            if self._ffmpeg.wait() != 0:
                raise self._failure()
            self._file.commit()
        except BaseException:
            self.abort()
            raise
        self._stderr.close()

    def abort(self) -> None:
        """Stop ffmpeg and drop the unfinished file; an earlier video at the path stays."""
        if self._stderr.closed:
            return
        self._ffmpeg.kill()  # don't leave ffmpeg waiting on a pipe nobody will write to
        self._ffmpeg.wait()
        self._close_stdin()
        self._file.discard()
        self._stderr.close()

    def _close_stdin(self) -> None:
        with contextlib.suppress(BrokenPipeError):  # ffmpeg already died; its exit status tells
            self._ffmpeg.stdin.close()

    def _failure(self) -> Exception:
        """ffmpeg's own words; a full disk (or a file-size limit) is an OSError naming the path."""
        status = self._ffmpeg.wait()
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip()[-2000:]
        for code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            if os.strerror(code) in tail:
                return OSError(code, f"ffmpeg failed (exit status {status}): {os.strerror(code)}", str(self.path))
        return RuntimeError(f"ffmpeg failed (exit status {status}) writing {self.path}:\n{tail}")

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def save_png(path, image) -> None:
    """A PNG from a uint8 (height, width, 3) frame or a PIL image, written atomically."""
    if isinstance(image, np.ndarray):
        check_frame(image)
        image = Image.fromarray(image)
    write_atomic(path, lambda f: image.save(f, format="PNG"))


@dataclass(frozen=True)
class VideoInfo:
    n_frames: int
    width: int
    height: int
    codec: str  # e.g. "h264", "hevc", "gif", "webp_anim"
    pix_fmt: str  # e.g. "yuv420p"


def probe(path) -> VideoInfo:
    """What a video file really holds, by decoding all of it with the bundled ffmpeg.

    Codec and pixel format come from the stream header ffmpeg prints for its input (as
    parsed by imageio_ffmpeg.read_frames); the frame count from decoding every frame.
    """
    frames = imageio_ffmpeg.read_frames(str(path))
    header = next(frames)
    n_frames = sum(1 for _ in frames)
    width, height = header["size"]
    return VideoInfo(n_frames, width, height, header["codec"].rstrip(","), header["pix_fmt"].split("(")[0])


def mp4_boxes(path) -> list[str]:
    """Names of an MP4 file's top-level boxes, in file order (e.g. ftyp, moov, mdat)."""
    names = []
    with open(path, "rb") as f:
        while len(header := f.read(8)) == 8:
            size, name = int.from_bytes(header[:4], "big"), header[4:].decode("latin-1")
            names.append(name)
            if size == 0:  # the box runs to the end of the file
                break
            if size == 1:  # a 64-bit size follows the name
                size = int.from_bytes(f.read(8), "big") - 8
            f.seek(size - 8, 1)
    return names


def moov_before_mdat(path) -> bool:
    """Whether the index (moov) precedes the media data: players can start before the end arrives."""
    names = mp4_boxes(path)
    if "moov" not in names or "mdat" not in names:
        raise ValueError(f"{path} is not a complete MP4: top-level boxes {names}")
    return names.index("moov") < names.index("mdat")
