"""Frames as they arrive: a file, a frame folder, a URL or device PyAV opens, a pipe on stdin, an array or an iterator.

    stream = FrameStream("night.mp4")                       # or "rtsp://cam/1", "-", "/dev/video0", frames (N,H,W,3)
    for chunk in stream.chunks(32):                          # uint8 (n,H,W,3) RGB, n <= 32, in arrival order
        ...
    stream.fps, stream.error                                 # frames per second; why it stopped early (or None)

Decoding is lazy, so memory does not grow with the length of the video. A source that dies part-way (a truncated
file, a dropped network stream) ends the iteration: the frames so far stay delivered and `stream.error` says what
happened; a source that yields no frame at all raises `DataError` naming it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from darkaction.errors import DataError

DEFAULT_FPS = 30.0  # used only when a source does not say (an iterator, a stream without timing)
MIN_FPS, MAX_FPS = 1.0, 240.0  # a reported rate outside this range is not a frame rate


def is_url(source: Any) -> bool:
    return isinstance(source, str) and "://" in source


def _check_frame(frame: Any, where: str) -> np.ndarray:
    a = np.asarray(frame)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] != 3:
        raise DataError(f"{where}: frames must be uint8 (H,W,3) RGB, got {a.dtype} {a.shape}")
    return a


class FrameStream:
    """An iterable over uint8 RGB frames (H,W,3) of one source, decoded lazily.

    source: a path (video file or `img_00001.jpg` folder), a URL PyAV opens (rtsp://, http(s)://, udp://, ...),
        "-" (a stream piped on stdin), a device such as /dev/video0 (pass `input_format="v4l2"`), a uint8 array
        (N,H,W,3) or any iterator of uint8 (H,W,3) frames.
    fps: overrides the source's own frame rate (needed for windows in seconds when the source has none).
    input_format / options: passed to `av.open` (e.g. "v4l2", {"rtsp_transport": "tcp"}).
    timeout: seconds PyAV waits to open and to read a network source before giving up.
    """

    def __init__(
        self,
        source: Any,
        fps: float | None = None,
        input_format: str | None = None,
        options: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.source = source
        self.input_format = input_format
        self.options = dict(options or {})
        self.timeout = float(timeout)
        self.error: str | None = None
        self.warnings: list[str] = []
        self.n_frames = 0
        self._fps = float(fps) if fps else 0.0
        self._given_fps = bool(fps)
        if isinstance(source, np.ndarray):
            if source.ndim != 4 or source.shape[-1] != 3 or source.dtype != np.uint8 or len(source) == 0:
                raise DataError(f"frames must be a non-empty uint8 array (N,H,W,3), got {source.dtype} {source.shape}")
        elif isinstance(source, (str, Path)) and not is_url(source) and str(source) != "-":
            p = Path(source)
            if not p.exists():
                raise DataError(f"{p}: no such video file or frame folder")
            if p.is_file() and p.stat().st_size == 0:
                raise DataError(f"{p}: empty file (0 bytes)")

    @property
    def name(self) -> str:
        if isinstance(self.source, np.ndarray):
            return f"frames {tuple(self.source.shape)}"
        if isinstance(self.source, (str, Path)):
            return "stdin" if str(self.source) == "-" else str(self.source)
        return type(self.source).__name__

    @property
    def fps(self) -> float:
        """Frames per second: given, else the source's own once it is open, else DEFAULT_FPS."""
        return self._fps or DEFAULT_FPS

    @property
    def live(self) -> bool:
        """Whether frames arrive in real time (a URL, stdin, a device) rather than from a file or array."""
        s = self.source
        return is_url(s) or (isinstance(s, (str, Path)) and (str(s) == "-" or str(s).startswith("/dev/")))

    def __iter__(self) -> Iterator[np.ndarray]:
        self.n_frames, self.error, self.warnings = 0, None, []  # each pass reports on itself
        s = self.source
        if isinstance(s, np.ndarray):
            frames: Iterable = iter(s)
        elif isinstance(s, (str, Path)) and not self.live and Path(s).is_dir():
            frames = self._folder(Path(s))
        elif isinstance(s, (str, Path)):
            frames = self._pyav(s)
        else:
            frames = (_check_frame(f, self.name) for f in s)
        for f in frames:
            self.n_frames += 1
            yield f
        if self.n_frames == 0:
            why = f" ({self.error})" if self.error else ""
            raise DataError(f"{self.name}: no decodable frame{why}")

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """Frames grouped into uint8 arrays (n,H,W,3) of at most `size` frames, as soon as `size` have arrived."""
        buf: list[np.ndarray] = []
        for f in self:
            buf.append(f)
            if len(buf) >= size:
                yield np.stack(buf)
                buf = []
        if buf:
            yield np.stack(buf)

    # ------------------------------------------------------------------------------------------ sources

    def _folder(self, p: Path) -> Iterator[np.ndarray]:
        import cv2

        from darkaction.data.video import FRAME_PATTERN

        i = 1
        while (f := p / FRAME_PATTERN.format(i)).is_file():
            bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if bgr is None:
                self.error = f"{f.name} unreadable; stopped after {i - 1} frames"
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            i += 1

    def _open(self, s: str | Path):
        import av

        target: Any = sys.stdin.buffer if str(s) == "-" else str(s)
        kwargs: dict[str, Any] = {"options": self.options}
        if self.input_format:
            kwargs["format"] = self.input_format
        if self.live:
            kwargs["timeout"] = (self.timeout, self.timeout)
        try:
            return av.open(target, **kwargs)
        except Exception as e:  # PyAV raises many FFmpeg error types; all mean "cannot open this source" here
            raise DataError(f"{self.name}: cannot open as a video ({type(e).__name__}: {e})") from None

    def _source_fps(self, stream: Any) -> float:
        """The stream's frame rate, if believable: network cameras often report a time base (90000) as their rate,
        which would make a window of seconds hold hours of frames."""
        for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
            fps = float(rate) if isinstance(rate, (Fraction, int, float)) and rate else 0.0
            if MIN_FPS <= fps <= MAX_FPS:
                return fps
        self.warnings.append(f"no believable frame rate in the stream; assuming {DEFAULT_FPS:g} fps (set --fps)")
        return 0.0

    def _pyav(self, s: str | Path) -> Iterator[np.ndarray]:
        container = self._open(s)
        try:
            if not container.streams.video:
                raise DataError(f"{self.name}: no video stream")
            stream = container.streams.video[0]
            # files: frame + slice threads (fast); live: slice threads only (frame threads hold frames back)
            stream.thread_type = "SLICE" if self.live else "AUTO"
            if not self._given_fps:
                self._fps = self._source_fps(stream)
            try:
                for frame in container.decode(stream):
                    yield frame.to_ndarray(format="rgb24")
            except Exception as e:  # corrupt data, a dropped connection: keep what arrived
                self.error = f"stopped after {self.n_frames} frames: {type(e).__name__}: {e}"
            claimed = int(stream.frames or 0)  # a header's count: never trusted, only a hint of truncation
            if self.error is None and claimed - self.n_frames > max(2, claimed // 10):
                self.warnings.append(f"decoded {self.n_frames} of the {claimed} frames the header claims (truncated?)")
        finally:
            container.close()
