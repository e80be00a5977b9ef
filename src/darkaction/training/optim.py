"""Ranger (RAdam + Lookahead + gradient centralisation), the alternatives, and the LR schedules.

    opt = Ranger(model.parameters(), lr=1e-3)            # betas (0.95, 0.999), eps 1e-5, k=6, alpha=0.5, gc=True
    sched = build_scheduler("onecycle", opt, lr=1e-3, total_steps=epochs * steps_per_epoch)

Ranger here is `torch.optim.RAdam` (whose first, un-rectified steps are a plain momentum step *against* the gradient,
unlike some packaged Rangers) with two additions (see ../shared/REFERENCE.md):
- gradient centralisation: before the moment updates, every gradient with more than one dimension has its mean over
  all dimensions except dim 0 subtracted;
- Lookahead: the slow weights (initialised to the weights before the first step) move towards the fast ones every k
  steps, slow += alpha * (fast - slow), and the fast weights restart from them (fast = slow).
The slow weights live in the per-parameter optimizer state and the step counter in the param group, so
`state_dict()` / `load_state_dict()` round-trip them and a resumed run continues exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from darkaction.errors import ConfigError


def centralize_gradient(grad: torch.Tensor) -> torch.Tensor:
    """Subtract the mean over all dims except 0 in place (only for grads with ndim > 1). Returns `grad`."""
    if grad.dim() > 1:
        grad.sub_(grad.mean(dim=tuple(range(1, grad.dim())), keepdim=True))
    return grad


class Ranger(torch.optim.RAdam):
    """RAdam + Lookahead (k, alpha) + gradient centralisation.

    Args:
        params: parameters or param groups.
        lr, betas, eps, weight_decay: as `torch.optim.RAdam` (Ranger defaults: betas (0.95, 0.999), eps 1e-5).
        k: Lookahead synchronisation period in optimizer steps.
        alpha: Lookahead slow-weight step size.
        gc: apply gradient centralisation.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.95, 0.999),
        eps: float = 1e-5,
        weight_decay: float = 0.0,
        k: int = 6,
        alpha: float = 0.5,
        gc: bool = True,
    ):
        if k < 1:
            raise ConfigError(f"train.lookahead_k must be >= 1, got {k}")
        if not 0.0 < alpha <= 1.0:
            raise ConfigError(f"train.lookahead_alpha must be in (0, 1], got {alpha}")
        # foreach=False: the single-tensor path is bit-reproducible across runs, which exact resume relies on.
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=False)
        for group in self.param_groups:
            group.setdefault("lookahead_k", k)
            group.setdefault("lookahead_alpha", alpha)
            group.setdefault("lookahead_step", 0)
            group.setdefault("gc", gc)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            # run the closure first so the gradients exist before they are centralised.
            with torch.enable_grad():
                loss = closure()

        fresh: dict[torch.Tensor, torch.Tensor] = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["gc"]:
                    centralize_gradient(p.grad)
                if "slow" not in self.state[p]:
                    # slow weights start at the weights before the first update (RAdam needs an empty state
                    # to initialise its moments, so they are stored after its step).
                    fresh[p] = p.detach().clone()

        super().step()

        for group in self.param_groups:
            group["lookahead_step"] += 1
            sync = group["lookahead_step"] % group["lookahead_k"] == 0
            for p in group["params"]:
                state = self.state[p]
                if p in fresh:
                    state["slow"] = fresh[p]
                if sync and "slow" in state:
                    slow = state["slow"]
                    slow.add_(p.detach() - slow, alpha=group["lookahead_alpha"])
                    p.copy_(slow)
        return loss


def build_optimizer(name: str, params: Iterable, train_cfg) -> torch.optim.Optimizer:
    """`train.optimizer`: ranger | adamw, with lr / weight_decay / lookahead settings from `train_cfg`."""
    if name == "ranger":
        return Ranger(
            params,
            lr=train_cfg.lr,
            weight_decay=train_cfg.weight_decay,
            k=train_cfg.lookahead_k,
            alpha=train_cfg.lookahead_alpha,
        )
    if name == "adamw":
        return torch.optim.AdamW(params, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay, foreach=False)
    raise ConfigError(f"train.optimizer must be 'ranger' or 'adamw', got '{name}'")


def build_scheduler(
    name: str, optimizer: torch.optim.Optimizer, lr: float | list[float], total_steps: int, pct_start: float = 0.3
) -> dict | None:
    """A Lightning `lr_scheduler` dict, or None for `none`. `lr`: the peak rate, or one per parameter group.

    onecycle: `OneCycleLR` stepped once per optimizer step over `total_steps` (epochs x steps per epoch);
    plateau: `ReduceLROnPlateau` on the monitored metric once per epoch.
    """
    if name == "none":
        return None
    if name == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=max(int(total_steps), 2), pct_start=pct_start
        )
        return {"scheduler": sched, "interval": "step", "frequency": 1}
    if name == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=5)
        return {"scheduler": sched, "interval": "epoch", "frequency": 1, "monitor": "train/loss_epoch"}
    raise ConfigError(f"train.scheduler must be 'onecycle', 'plateau' or 'none', got '{name}'")
