"""A user-supplied enhancement model (TorchScript or ONNX) as an `Enhancer`: Table 1's EnlightenGAN row.

No weights can be downloaded here, so EnlightenGAN (or any other image-to-image enhancer) comes in as a local file the
user exported themselves, passed with `--set enhance.method=external --set enhance.external=FILE`:

- TorchScript (`torch.jit.save` of a scripted or traced module; any suffix, recognised as a zip archive),
- ONNX (`.onnx`; needs `pip install onnxruntime`, imported only when such a file is used).

The model takes float32 N,3,H,W RGB in [0, 1] and returns the same shape in [0, 1] (clamped here). The fingerprint is
`external-<first 12 hex of the file's sha256>`, so a different file never reuses another file's enhanced cache.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from darkaction.enhancement.base import Enhancer
from darkaction.errors import DataError
from darkaction.utils import file_sha256


def load_torchscript(path: Path, device: str = "cpu"):
    """A TorchScript file as a module in eval mode; a DataError saying what to give when it is something else."""
    import torch

    try:
        model = torch.jit.load(str(path), map_location=device)
    except Exception as e:  # a zip that is not TorchScript (e.g. a state-dict .pth): say what to give instead
        raise DataError(
            f"{path}: cannot load as TorchScript ({type(e).__name__}: {e}); a state-dict .pth is not enough, "
            "save the whole model with torch.jit.save(torch.jit.script(model) or torch.jit.trace(model, x))"
        ) from None
    return model.eval()


def load_onnx(path: Path):
    """An ONNX file as an onnxruntime session on the CPU; a DataError when onnxruntime is missing or refuses it."""
    try:
        import onnxruntime
    except ImportError:
        raise DataError(
            f"{path}: ONNX models need onnxruntime, which is not installed: `pip install onnxruntime` "
            "(or pass a TorchScript .pt file instead)"
        ) from None
    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise DataError(f"{path}: onnxruntime cannot load this model ({type(e).__name__}: {e})") from None


class ExternalEnhancer(Enhancer):
    """uint8 frames N,H,W,3 -> uint8 N,H,W,3 through a TorchScript or ONNX model file, in batches."""

    name = "external"

    def __init__(self, path: str | Path, batch_size: int = 16, device: str = "cpu") -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(
                f"{self.path}: external enhancer model not found. EnlightenGAN weights cannot be downloaded here: "
                "export the model to TorchScript (.pt) or ONNX (.onnx) yourself and pass the local file with "
                "--set enhance.external=FILE"
            )
        super().__init__(weights_hash=file_sha256(self.path)[:12])
        self.batch_size = max(1, int(batch_size))
        self.device = device
        self.kind = "torchscript" if zipfile.is_zipfile(self.path) else "onnx"
        if self.kind == "onnx" and self.path.suffix.lower() != ".onnx":
            raise DataError(
                f"{self.path}: neither a TorchScript archive nor an .onnx file; save the model with torch.jit.save "
                "or export it with torch.onnx.export"
            )
        self._model = load_torchscript(self.path, device) if self.kind == "torchscript" else load_onnx(self.path)

    def _run(self, x: np.ndarray) -> np.ndarray:
        """float32 N,3,H,W in [0, 1] -> float32 N,3,H,W."""
        if self.kind == "onnx":
            name = self._model.get_inputs()[0].name
            return np.asarray(self._model.run(None, {name: x})[0], dtype=np.float32)
        import torch

        with torch.inference_mode():
            y = self._model(torch.from_numpy(x).to(self.device))
        if isinstance(y, (tuple, list)):  # GAN generators often return (image, extras): take the image
            y = y[0]
        return y.float().cpu().numpy()

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.uint8)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"external enhancer expects uint8 frames (N,H,W,3), got shape {frames.shape}")
        out = np.empty_like(frames)
        for i in range(0, len(frames), self.batch_size):
            chunk = frames[i : i + self.batch_size]
            x = np.ascontiguousarray(chunk.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
            y = self._run(x)
            if y.shape != x.shape:
                raise DataError(
                    f"{self.path}: the model returned shape {tuple(y.shape)} for input {tuple(x.shape)}; an enhancer "
                    "must map N,3,H,W in [0, 1] to the same shape (pad or resize inside the exported model)"
                )
            out[i : i + len(chunk)] = np.rint(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(0, 2, 3, 1)
        return out
