"""Small helpers shared by every stage: atomic writes, JSON, seeding, devices."""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> Path:
    return atomic_write_text(Path(path), json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch; return a NumPy Generator for code that takes one explicitly."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


# Training randomness is a pure function of (seed, epoch, index) in one of these streams, so a run resumed at an
# epoch boundary draws exactly what the uninterrupted run drew, whatever the workers or loaders did in between.
STREAMS = {"clip": 0, "shuffle": 1, "dropout": 2, "pair": 3, "darken": 4}


def derived_seed(seed: int, epoch: int, index: int, stream: str) -> int:
    """A 63-bit seed that is a pure function of (seed, epoch, index, stream): for torch's global generator, which
    dropout and BERT's token masking draw from."""
    parts = [int(p) % (2**63) for p in (seed, epoch, index, STREAMS[stream])]
    return int(np.random.SeedSequence(parts).generate_state(2, np.uint64)[0] >> 1)


def training_rng(seed: int, epoch: int, index: int, stream: str = "clip") -> np.random.Generator:
    """The generator one training draw uses: item `index` of `epoch` (clip sampling and augmentation: "clip"; the
    epoch's order: "shuffle" with index -1; MRAN's target pairing: "pair"; a dark copy or not: "darken")."""
    return np.random.default_rng(derived_seed(seed, epoch, index, stream))


def bf16_native() -> bool:
    """Whether this CPU runs bf16 natively (AVX-512 BF16 or AMX, through oneDNN): where bf16 beats fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_device(name: str = "auto") -> str:
    """'auto' -> 'cuda' when available, else 'cpu'. Never call .cuda() directly elsewhere."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def progress_bar(iterable=None, **kwargs):
    """A tqdm bar that stays readable in log files: when stderr is not a terminal it redraws at most every 30 s
    (a redirected bar otherwise writes a new line per update and floods the log)."""
    import sys

    from tqdm import tqdm

    if not sys.stderr.isatty():
        kwargs["mininterval"] = max(kwargs.get("mininterval", 0.1), 30.0)
        kwargs["maxinterval"] = max(kwargs.get("maxinterval", 10.0), kwargs["mininterval"])  # else redraws every 10 s
    return tqdm(iterable, **kwargs)


def flush_denormals(state: dict) -> int:
    """Set denormal floats in a state dict to zero, in place; returns how many there were.

    Denormal weights make fp32 convolution on some CPUs tens of times slower (REFERENCE.md: 35x for Zero-DCE) and
    carry no information at these magnitudes."""
    import torch

    count = 0
    for value in state.values():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            tiny = torch.finfo(value.dtype).tiny
            sub = (value != 0) & (value.abs() < tiny)
            n = int(sub.sum())
            if n:
                value[sub] = 0
                count += n
    return count


def figure(nrows: int = 0, ncols: int = 0, **kwargs):
    """A matplotlib Figure on its own Agg canvas, never through pyplot: the user's backend and pyplot's figure list
    stay untouched (a notebook keeps its inline backend). With nrows/ncols, returns (fig, axes) like
    `plt.subplots`; extra keywords go to `Figure` (figsize, dpi, layout) or, for `squeeze`, to `subplots`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    squeeze = kwargs.pop("squeeze", True)
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    if nrows or ncols:
        return fig, fig.subplots(max(1, nrows), max(1, ncols), squeeze=squeeze)
    return fig


def save_figure(fig, path: str | os.PathLike, **kwargs) -> Path:
    """PNG of `fig` written atomically (savefig keywords pass through)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", **kwargs)
    return atomic_write_bytes(Path(path), buf.getvalue())


PACKAGE_DIR = Path(__file__).resolve().parent


def packaged_path(path: str | os.PathLike) -> Path:
    """`path` as given when it exists; else, for a relative path, the file of that name shipped inside the package
    (the presets name `weights/...` relative to a checkout, which an installed package carries as package data)."""
    p = Path(path)
    if p.exists() or p.is_absolute() or not (PACKAGE_DIR / p).exists():
        return p
    return PACKAGE_DIR / p
