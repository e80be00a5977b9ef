"""`darkaction model-info`: parameters, FLOPs per clip and output shapes of the configured model.

The model is built on PyTorch's "meta" device (shapes without storage), so even R(2+1)D-34 at 64x112x112 is measured
in about a second and without allocating its weights; FLOPs come from `torch.utils.flop_counter.FlopCounterMode`
(convolutions, matrix products, attention), counted as 2 per multiply-accumulate. Pretrained weights are not loaded.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _rates(model: nn.Module, batch: int, device: str) -> tuple:
    """The rate argument a `model.rate_input` model takes (one per clip), else nothing."""
    return (torch.ones(batch, device=device),) if getattr(model, "rate_input", False) else ()


def _count(module: nn.Module) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _shape(out) -> list | None:
    """A tensor's shape as a list; a list/tuple of tensors (e.g. MRAN's branches) as a list of shapes."""
    if isinstance(out, torch.Tensor):
        return list(out.shape)
    if isinstance(out, (list, tuple)) and out and all(isinstance(o, torch.Tensor) for o in out):
        return [list(o.shape) for o in out]
    return None


def _fmt_shape(shape: list | None) -> str:
    if not shape:
        return "-"
    if isinstance(shape[0], list):
        return ", ".join("x".join(map(str, s)) for s in shape)
    return "x".join(map(str, shape))


def _parts(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The named parts to report: the backbone's stages when it has them, then every other top-level child."""
    parts: list[tuple[str, nn.Module]] = []
    from darkaction.models.r2plus1d import R2Plus1D

    for name, child in model.named_children():
        if name == "backbone" and isinstance(child, R2Plus1D):
            stages = dict(child.stages())
            parts += [(f"backbone.{n}", m) for n, m in stages.items()]
            rest = [(f"backbone.{n}", m) for n, m in child.named_children() if n not in stages]
            parts += [(n, m) for n, m in rest if any(True for _ in m.parameters())]
        else:
            parts.append((name, child))
    return parts


def model_info(cfg, num_classes: int | None = None, batch: int = 1, activations: bool = True) -> dict:
    """Config -> {"input", "parameters", "parts", "flops", "macs", "flops_by_op", "output", "temporal_tokens",
    "activations" (MB per training clip, fp32 and bf16)} for one clip batch.

    Input size: `batch` x model.in_channels x sampling.T x augment.height x augment.width. Number of classes:
    `num_classes`, else the length of `data.source.classes`, else 6 (ARID track 1).
    """
    from darkaction.models.build import build_model

    mcfg = dataclasses.replace(cfg.model, pretrained="")
    classes = num_classes or len(cfg.data.source.classes) or 6
    T, H, W = cfg.sampling.T, cfg.augment.height, cfg.augment.width
    with torch.device("meta"):
        model = build_model(mcfg, classes, T)
    model.eval()
    shapes: dict[str, list[int] | None] = {}
    hooks = []
    parts = _parts(model)
    for name, module in parts:
        hooks.append(module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, _shape(o))))
    head_input: list = []
    head = getattr(model, "head", None)
    if isinstance(head, nn.Module):
        hooks.append(head.register_forward_hook(lambda m, i, o: head_input.append(_shape(i[0]) if i else None)))
    x = torch.zeros(batch, mcfg.in_channels, T, H, W, device="meta")
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = model(x, *_rates(model, batch, "meta"))
    except (RuntimeError, ValueError) as e:
        from darkaction.errors import ConfigError

        raise ConfigError(
            f"model {mcfg.backbone}+{mcfg.head} cannot take clips of {mcfg.in_channels}x{T}x{H}x{W}: {e}"
        ) from None
    finally:
        for h in hooks:
            h.remove()
    total, trainable = _count(model)
    flops = counter.get_total_flops()
    by_op = {str(k).replace("aten.", ""): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return {
        "model": f"{mcfg.backbone} + {mcfg.head}",
        "input": [batch, mcfg.in_channels, T, H, W],
        "classes": classes,
        "parameters": {"total": total, "trainable": trainable},
        "parts": [
            {"name": n, "parameters": _count(m)[0], "trainable": _count(m)[1], "output": shapes.get(n)}
            for n, m in parts
        ],
        "flops": int(flops),
        "macs": int(flops // 2),
        "flops_by_op": by_op,
        "output": _shape(out),
        "temporal_tokens": _tokens(head_input[0] if head_input else None),
        "activations": activation_memory(cfg, classes) if activations else None,
    }


def activation_memory(cfg, num_classes: int = 6) -> dict[str, float]:
    """MB per clip of the tensors a training forward saves for backward, in fp32 and in bf16 (every activation in
    bf16; autocast keeps a few in fp32, so it is a lower bound there). Counted on the meta device: each saved tensor
    once, whatever how many backward functions hold it, weights left out. Parameters, gradients and optimizer state
    come on top; MRAN's training step runs two such forwards (source and target clips)."""
    from darkaction.models.build import build_model

    mcfg = dataclasses.replace(cfg.model, pretrained="")
    T, H, W = cfg.sampling.T, cfg.augment.height, cfg.augment.width
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        with torch.device("meta"):
            model = build_model(mcfg, num_classes, T)
        model.train().to(dtype)
        saved: dict[int, torch.Tensor] = {}

        def pack(t: torch.Tensor, saved=saved) -> torch.Tensor:
            weight = isinstance(t, nn.Parameter) or isinstance(getattr(t, "_base", None), nn.Parameter)
            if not weight:  # weights are counted with the parameters, not as activations
                saved[id(t)] = t  # held, so an id is never reused while counting
            return t

        x = torch.zeros(1, mcfg.in_channels, T, H, W, device="meta", dtype=dtype)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(x, *_rates(model, 1, "meta"))
        out[name] = sum(t.numel() * t.element_size() for t in saved.values()) / 2**20
    return out


def _tokens(shape: list | None) -> int | None:
    """Time steps the head sees: T' of a (B, D, T', h, w) feature map or of (B, T', D) tokens."""
    if not shape or isinstance(shape[0], list):
        return None
    axis = {5: 2, 3: 1}.get(len(shape))
    return None if axis is None else shape[axis]


def format_model_info(info: dict) -> str:
    """model_info(...) -> a readable table."""
    p = info["parameters"]
    b = info["input"][0]
    lines = [
        f"model      {info['model']}  ({info['classes']} classes)",
        f"input      {' x '.join(map(str, info['input']))}  (B x C x T x H x W)",
        f"parameters {p['total']:,} total, {p['trainable']:,} trainable",
        f"FLOPs      {info['flops'] / 1e9 / b:.2f} GFLOPs per clip ({info['macs'] / 1e9 / b:.2f} GMACs), forward",
        f"tokens     {info.get('temporal_tokens') or '-'} time steps into the head (paper: 8)",
        *(
            [
                f"memory     ~{act['fp32']:,.0f} MB (fp32) / ~{act['bf16']:,.0f} MB (bf16) of activations per training "
                "clip, saved for backward"
            ]  # fmt: skip
            if (act := info.get("activations"))
            else []
        ),
        "",
        f"{'part':<18}{'parameters':>14}{'trainable':>14}  output shape",
    ]
    for part in info["parts"]:
        shape = _fmt_shape(part["output"])
        lines.append(f"{part['name']:<18}{part['parameters']:>14,}{part['trainable']:>14,}  {shape}")
    lines.append(f"{'logits':<18}{'':>14}{'':>14}  {_fmt_shape(info['output'])}")
    ops = ", ".join(f"{k} {v / 1e9 / b:.2f}G" for k, v in sorted(info["flops_by_op"].items(), key=lambda kv: -kv[1]))
    lines.append(f"\nFLOPs by op (per clip): {ops}")
    return "\n".join(lines)
