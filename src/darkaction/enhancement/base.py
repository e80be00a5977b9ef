"""The `Enhancer` interface, Zero-DCE / Zero-DCE++ enhancers, weights loading and `build_enhancer(cfg)`.

An enhancer maps uint8 frames N,H,W,3 (RGB) to uint8 frames N,H,W,3 and has a `fingerprint` that keys the enhanced
cache: name + first 12 hex of the sha256 of its weights + its settings, so changing any of them never reuses stale
frames.

    enh = build_enhancer(cfg)          # cfg.enhance.method: zero-dce | zero-dce++ | gamma | identity | external
    out = enh(frames)                  # uint8 N,H,W,3
    enh.fingerprint                    # e.g. 'zero-dce-3b1f0c2a9d4e-bf16-at_cache'
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from darkaction.errors import ConfigError, DataError
from darkaction.utils import flush_denormals

if TYPE_CHECKING:
    import torch

    from darkaction.config import Config

METHODS = ("zero-dce", "zero-dce++", "gamma", "identity", "external")
WEIGHTS_NAME = "weights.pth"


class Enhancer:
    """Base class. Subclasses set `name` and implement `__call__(frames uint8 N,H,W,3) -> uint8 N,H,W,3`."""

    name = "enhancer"

    def __init__(self, weights_hash: str = "", settings: dict[str, str] | None = None) -> None:
        # settings: name -> file-name-safe token, e.g. {"gamma": "g0.5", "at": "at_cache"}
        self.weights_hash = weights_hash
        self.settings = dict(settings or {})

    @property
    def fingerprint(self) -> str:
        """File-name-safe key: name, weights hash (12 hex), then the setting tokens in insertion order."""
        parts = [self.name] + ([self.weights_hash] if self.weights_hash else []) + list(self.settings.values())
        return "-".join(parts)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fingerprint})"


# ---------------------------------------------------------------------------------------------- weights


def state_dict_hash(state: dict) -> str:
    """sha256 (first 12 hex) over sorted key names and float32 tensor bytes: independent of the file format."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(np.ascontiguousarray(state[k].detach().float().cpu().numpy()).tobytes())
    return h.hexdigest()[:12]


def read_state_dict(path: str | Path) -> dict:
    """Load a plain state dict; also accepts {'state_dict': ...} / {'model': ...} and a 'module.' prefix."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: weights file not found; set enhance.weights=FILE or run 'darkaction enhance train'")
    try:
        obj = torch.load(p, weights_only=True, map_location="cpu")
    except Exception as e:  # any unpickling / zip error: the file is not a torch weights file we can read safely
        msg = f"{p}: cannot read as torch weights ({type(e).__name__}: {e}); give a state-dict .pth file"
        raise DataError(msg) from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise DataError(f"{p}: expected a state dict of tensors, got {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_weights(net: torch.nn.Module, path: str | Path) -> str:
    """Load `path` into `net` strictly; a mismatch is a DataError naming the file and the keys. Returns the hash."""
    return load_state(net, read_state_dict(path), source=path)


def load_state(net: torch.nn.Module, state: dict, source: str | Path = "weights") -> str:
    """Load a state dict into `net` strictly (a mismatch is a DataError naming `source` and the keys), with denormal
    floats flushed. Returns the hash of the state as given, which keys enhanced caches."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shape = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shape:
        lines = []
        if missing:
            lines.append(f"missing keys {_short(missing)}")
        if unexpected:
            lines.append(f"unexpected keys {_short(unexpected)}")
        if shape:
            pairs = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in shape[:4]]
            lines.append("shape mismatch " + ", ".join(pairs))
        hint = ""
        if any("depth_conv" in k for k in state) and not any("depth_conv" in k for k in own):
            hint = " These look like Zero-DCE++ weights: set enhance.method=zero-dce++."
        elif any("depth_conv" in k for k in own) and not any("depth_conv" in k for k in state):
            hint = " These look like Zero-DCE weights: set enhance.method=zero-dce."
        raise DataError(
            f"{source}: weights do not fit {type(net).__name__}: {'; '.join(lines)}.{hint} "
            "Give weights saved from the same network (official key names e_conv1.weight ...)."
        )
    digest = state_dict_hash(state)  # of the file as given, so fingerprints (and enhanced caches) stay put
    flush_denormals(state)  # the official Zero-DCE weights hold ~19k denormals: fp32 convs ran 35x slower with them
    net.load_state_dict(state)
    return digest


def _short(keys: list[str], n: int = 6) -> str:
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


# ---------------------------------------------------------------------------------------------- curve enhancers


def bf16_supported() -> bool:
    """True where bf16 convolutions are native (see `utils.bf16_native`)."""
    from darkaction.utils import bf16_native

    return bf16_native()


def resolve_enhance_precision(precision: str, device: str = "cpu") -> str:
    """`enhance.precision` (auto | fp32 | bf16) -> fp32 | bf16 for the enhancer on `device`. (The classifier's
    `train.precision` speaks Lightning's vocabulary: `training.run.resolve_precision`.)"""
    if precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"enhance.precision must be auto, fp32 or bf16, got {precision!r}")
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "bf16"
    # Measured on this project's CPU (benchmarks/bench_enhance.py): bf16 + channels-last ~3x the fp32 plain forward,
    # output within ~1.5e-3 of fp32, i.e. at most one uint8 level.
    return "bf16" if bf16_supported() else "fp32"


class CurveEnhancer(Enhancer):
    """Zero-DCE / Zero-DCE++ with frozen weights: uint8 N,H,W,3 -> uint8 N,H,W,3, in batches, channels-last."""

    def __init__(
        self,
        net: torch.nn.Module,
        name: str,
        weights_hash: str,
        precision: str = "auto",
        batch_size: int = 32,
        device: str = "cpu",
        at: str = "cache",
    ) -> None:
        import torch

        self.device = device
        self.precision = resolve_enhance_precision(precision, device)
        self.batch_size = max(1, int(batch_size))
        self.net = net.eval().to(device).to(memory_format=torch.channels_last)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.name = name
        settings: dict[str, str] = {}
        if getattr(net, "scale_factor", 1) != 1:
            settings["scale_factor"] = f"s{net.scale_factor}"
        settings["precision"] = self.precision
        settings["at"] = f"at_{at}"
        super().__init__(weights_hash=weights_hash, settings=settings)

    def enhance_float(self, frames: np.ndarray) -> np.ndarray:
        """uint8 N,H,W,3 -> float32 N,H,W,3, unclamped curve output (for --raw and checks)."""
        out = [self._run(frames[i : i + self.batch_size]) for i in range(0, len(frames), self.batch_size)]
        return np.concatenate([o.numpy() for o in out]) if out else np.zeros((0, *frames.shape[1:]), np.float32)

    def _run(self, chunk: np.ndarray):
        import torch

        # NHWC uint8 permuted to NCHW is already channels-last in memory: no copy before the convolutions.
        chunk = np.ascontiguousarray(chunk)
        if not chunk.flags.writeable:  # read-only memmap from the cache: torch wants a writable buffer
            chunk = chunk.copy()
        x = torch.from_numpy(chunk).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        y = self.net.enhance(x, self.precision)
        return y.permute(0, 2, 3, 1).cpu()

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        import torch

        frames = np.asarray(frames, dtype=np.uint8)
        out = np.empty_like(frames)
        for i in range(0, len(frames), self.batch_size):
            y = self._run(frames[i : i + self.batch_size])
            out[i : i + len(y)] = y.clamp_(0, 1).mul_(255.0).round_().to(dtype=torch.uint8).numpy()
        return out


def default_weights_path(cfg: Config, method: str | None = None) -> Path:
    """Where `enhance train` writes (and `enhance` looks for) weights: enhance.train.out or <prepared>/enhancers/."""
    method = method or cfg.enhance.method
    out = Path(cfg.enhance.train.out) if cfg.enhance.train.out else Path(cfg.data.prepared) / "enhancers" / method
    return out / WEIGHTS_NAME


def build_network(method: str, scale_factor: int = 1):
    from darkaction.enhancement.dce import DCENet, DCENetPP

    if method == "zero-dce":
        return DCENet()
    if method == "zero-dce++":
        return DCENetPP(scale_factor=scale_factor)
    raise ConfigError(f"enhance.method={method!r} has no network; use zero-dce or zero-dce++")


def build_curve_enhancer(
    method: str,
    weights: str | Path,
    scale_factor: int = 1,
    precision: str = "auto",
    batch_size: int = 32,
    device: str = "cpu",
    at: str = "cache",
) -> CurveEnhancer:
    net = build_network(method, scale_factor)
    digest = load_weights(net, weights)
    return CurveEnhancer(net, method, digest, precision, batch_size, device, at)


def build_enhancer(cfg: Config) -> Enhancer:
    """The frozen enhancer `cfg.enhance` describes. Raises ConfigError for bad settings, DataError for bad weights."""
    from darkaction.utils import resolve_device

    e = cfg.enhance
    if e.method not in METHODS:
        raise ConfigError(f"enhance.method={e.method!r} is not one of {', '.join(METHODS)}")
    if e.at not in ("cache", "source"):
        raise ConfigError(f"enhance.at must be 'cache' or 'source', got {e.at!r}")
    if e.method == "identity":
        from darkaction.enhancement.classic import IdentityEnhancer

        return IdentityEnhancer()
    if e.method == "gamma":
        from darkaction.enhancement.classic import GammaEnhancer

        if not e.gamma > 0:
            raise ConfigError(f"enhance.gamma must be > 0, got {e.gamma}")
        return GammaEnhancer(e.gamma, at=e.at)
    if e.method == "external":
        from darkaction.enhancement.external import ExternalEnhancer

        if not e.external:
            raise ConfigError("enhance.method=external needs enhance.external=FILE (an ONNX or TorchScript model)")
        return ExternalEnhancer(e.external, batch_size=e.batch_size, device=resolve_device(cfg.device))
    if e.scale_factor < 1:
        raise ConfigError(f"enhance.scale_factor must be >= 1, got {e.scale_factor}")
    weights = Path(e.weights) if e.weights else default_weights_path(cfg)
    if not weights.is_file():
        where = f"enhance.weights={e.weights}" if e.weights else f"no trained weights at {weights}"
        raise DataError(
            f"{weights}: Zero-DCE weights not found ({where}); run 'darkaction enhance train' "
            "or set enhance.weights=FILE (e.g. the official Epoch99.pth)"
        )
    return build_curve_enhancer(
        e.method,
        weights,
        scale_factor=e.scale_factor if e.method == "zero-dce++" else 1,
        precision=e.precision,
        batch_size=e.batch_size,
        device=resolve_device(cfg.device),
        at=e.at,
    )
