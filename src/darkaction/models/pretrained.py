"""Load torchvision / IG65M R(2+1)D weights from a local file into a backbone or a `VideoClassifier`.

    report = load_pretrained(model, "r2plus1d_34_clip32_ig65m_from_scratch.pth")
    print(report.summary())

Accepted files (`torch.load(weights_only=True)`, so only tensors and plain containers): a plain state dict, or a dict
holding it under "state_dict" or "model" (e.g. a Lightning checkpoint). Prefixes "module." (DataParallel/DDP) are
stripped; keys under "backbone." (this project's own VideoClassifier checkpoints) are used as backbone keys.

- `fc.*` (the source dataset's classifier: Kinetics 400, IG65M 359) is skipped: the model keeps its own classifier
  for the dataset's classes.
- A 3-channel RGB stem loaded into a 5-channel (RGB + flow) model is inflated: the RGB filters are copied and each
  flow channel starts as the mean of the RGB filters, so the pretrained filters see flow as a grey image would.
- Any other shape difference is reported and the model's own initialisation is kept for that tensor.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch
from torch import nn

from darkaction.errors import ConfigError, DataError
from darkaction.utils import flush_denormals, packaged_path

log = logging.getLogger(__name__)

STEM_KEY = "stem.0.weight"

# `model.pretrained` values that are not files: "none" trains from scratch on purpose; "required" (configs/paper.yaml)
# refuses to start without weights, since the paper fine-tunes an IG65M-pretrained backbone
NO_WEIGHTS = "none"
REQUIRED = "required"
IG65M_FILES = (
    "r2plus1d_34_clip32_ig65m_from_scratch-449a7af9.pth (IG65M, 32-frame clips: the reference's choice)",
    "r2plus1d_34_clip8_ig65m_from_scratch-9bae36ae.pth (IG65M, 8-frame clips)",
    "r2plus1d_34_clip32_ft_kinetics_from_ig65m-ade133f1.pth (IG65M, fine-tuned on Kinetics)",
)


def names_weights(value: str) -> bool:
    """Whether `model.pretrained` asks for weights (a file, or "required"), as opposed to "" / "none"."""
    return str(value or "").strip().lower() not in ("", NO_WEIGHTS)


def pretrained_file(value: str) -> str:
    """`model.pretrained` -> the weights file to load, or "" for none. "required" is a ConfigError that names the
    files that fit; "none" (or "") means from scratch."""
    value = str(value or "").strip()
    if not names_weights(value):
        return ""
    if value.lower() == REQUIRED:
        files = "\n  ".join(IG65M_FILES)
        raise ConfigError(
            "this preset fine-tunes a pretrained R(2+1)D-34 as the paper does (its R(2+1)D-BERT starts from IG65M "
            "weights); from scratch on ARID's ~1,500 clips it would land far below the paper's numbers. Set "
            "model.pretrained=FILE to one of the IG65M R(2+1)D-34 checkpoints of moabitcoin/ig65m-pytorch (converted "
            f"from Caffe2 by that project; torchvision key names, loaded as they are):\n  {files}\n"
            "(model.ig65m_midplanes=true matches their layout), or model.pretrained=none to train from scratch on "
            "purpose. Nothing is downloaded: give a local file."
        )
    return value


@dataclass
class LoadReport:
    """What `load_pretrained` did: key lists use the backbone's names (torchvision layout)."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the model, not in the file (BN counters left out)
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)  # key, file, model
    skipped: list[str] = field(default_factory=list)  # deliberately not loaded (the source classifier)
    inflated: list[str] = field(default_factory=list)  # loaded after channel inflation (RGB -> RGB + flow)

    @property
    def ok(self) -> bool:
        """True when every backbone tensor came from the file (SE gates, if any, count as missing)."""
        return not self.missing and not self.mismatched

    def summary(self, limit: int = 8) -> str:
        def few(keys: list[str]) -> str:
            shown = ", ".join(keys[:limit])
            return shown + (f", ... (+{len(keys) - limit})" if len(keys) > limit else "")

        lines = [f"pretrained weights {self.path}: loaded {len(self.loaded)} tensors"]
        if self.inflated:
            lines.append(f"  inflated to the model's input channels: {few(self.inflated)}")
        if self.skipped:
            lines.append(f"  skipped (classifier replaced for this dataset's classes): {few(self.skipped)}")
        if self.missing:
            lines.append(f"  missing (kept the model's initialisation): {len(self.missing)}: {few(self.missing)}")
        if self.unexpected:
            n = len(self.unexpected)
            lines.append(f"  unexpected (in the file, not in the model): {n}: {few(self.unexpected)}")
        if self.mismatched:
            shown = [f"{k} file {list(a)} model {list(b)}" for k, a, b in self.mismatched[:limit]]
            lines.append(f"  shape mismatch (not loaded): {len(self.mismatched)}: {'; '.join(shown)}")
        return "\n".join(lines)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A weights file -> its tensors by name (unwrapped, prefixes stripped). Raises DataError for unusable files."""
    p = packaged_path(path)
    if not p.is_file():
        raise DataError(f"pretrained weights file not found: {p}; pass the path of a local .pth/.pt state dict")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and "unsupported global" errors all mean the same to the user
        raise DataError(
            f"{p}: not a readable PyTorch weights file ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "save it with torch.save(model.state_dict(), path)"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(f"{p}: holds no state dict (a mapping of names to tensors); got {type(obj).__name__}")
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        key = str(key)
        for prefix in ("module.", "model."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        if key.startswith("backbone."):
            key = key[len("backbone.") :]
        elif key.startswith(("head.", "inception.", "mran_fc.", "fuse.")):
            continue  # our own checkpoint's head: trained for some other label space, never a backbone weight
        out[key] = value
    return out


def inflate_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """Conv weight (O, 3, kT, kH, kW) -> (O, channels, kT, kH, kW): RGB copied, extra channels = mean over RGB."""
    extra = weight.mean(dim=1, keepdim=True).expand(-1, channels - weight.shape[1], *weight.shape[2:])
    return torch.cat([weight, extra], dim=1)


def load_pretrained(model: nn.Module, path: str | os.PathLike, verbose: bool = True) -> LoadReport:
    """Load the backbone weights in `path` into `model` (a VideoClassifier or a bare R2Plus1D) -> LoadReport.

    The model's classifier is never overwritten; a summary is printed unless `verbose` is False.
    """
    target = getattr(model, "backbone", model)
    source = read_state_dict(path)
    flush_denormals(source)  # denormal weights slow fp32 convolution down tens of times on some CPUs
    own = target.state_dict()
    report = LoadReport(path=str(path))
    to_load: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        if key.startswith("fc."):
            report.skipped.append(key)
            continue
        if key not in own:
            report.unexpected.append(key)
            continue
        want = own[key].shape
        if value.shape != want:
            rgb_to_more = (
                key == STEM_KEY and value.dim() == 5 and value.shape[1] == 3 and want[1] > 3
                and value.shape[0] == want[0] and value.shape[2:] == want[2:]
            )  # fmt: skip
            if not rgb_to_more:
                report.mismatched.append((key, tuple(value.shape), tuple(want)))
                continue
            value = inflate_channels(value, want[1])
            report.inflated.append(key)
        to_load[key] = value.to(own[key].dtype)
        report.loaded.append(key)
    # BatchNorm batch counters are bookkeeping, not weights; IG65M files do not have them.
    report.missing = [k for k in own if k not in to_load and not k.endswith("num_batches_tracked")]
    if any(k.startswith("fc.") for k in own):
        report.missing = [k for k in report.missing if not k.startswith("fc.")]
    target.load_state_dict(to_load, strict=False)
    if verbose:
        log.info(report.summary())
    return report
