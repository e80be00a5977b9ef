"""Ranger: RAdam's first steps go against the gradient, Lookahead syncs every k steps, GC, exact state round-trip."""

import copy

import pytest
import torch

from darkaction.training.optim import Ranger, build_scheduler, centralize_gradient


def _quadratic_grad(p: torch.Tensor, target: torch.Tensor) -> None:
    loss = ((p - target) ** 2).sum()
    p.grad = None
    loss.backward()


def test_first_steps_move_against_the_gradient():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = Ranger([p], lr=0.01, k=100)  # no lookahead sync during these steps
    for _ in range(5):  # RAdam's un-rectified phase
        before = p.detach().clone()
        _quadratic_grad(p, torch.zeros(3))
        g = p.grad.clone()
        opt.step()
        delta = p.detach() - before
        assert torch.all(torch.sign(delta) == -torch.sign(g)), (delta, g)


def test_lookahead_synchronises_every_k_steps_and_matches_formula():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(4))
    ref = torch.nn.Parameter(p.detach().clone())
    k, alpha = 6, 0.5
    opt = Ranger([p], lr=0.05, k=k, alpha=alpha, gc=False)
    radam = torch.optim.RAdam([ref], lr=0.05, betas=(0.95, 0.999), eps=1e-5, foreach=False)
    target = torch.tensor([1.0, -1.0, 2.0, 0.0])
    start = p.detach().clone()
    for step in range(1, 2 * k + 1):
        _quadratic_grad(p, target)
        opt.step()
        if step <= k:
            _quadratic_grad(ref, target)
            radam.step()
        slow = opt.state[p]["slow"]
        if step % k == 0:
            assert torch.equal(p.detach(), slow), f"fast != slow after step {step}"
        else:
            assert not torch.equal(p.detach(), slow)
        if step == k:
            # slow started at the initial weights: slow = start + alpha * (fast_k - start)
            assert torch.allclose(slow, start + alpha * (ref.detach() - start), atol=1e-6)


def test_gradient_centralisation():
    g = torch.randn(5, 3, 2, 2)
    out = centralize_gradient(g.clone())
    assert torch.allclose(out.mean(dim=(1, 2, 3)), torch.zeros(5), atol=1e-6)
    b = torch.randn(7)
    assert torch.equal(centralize_gradient(b.clone()), b)  # biases untouched

    # inside the optimizer: with GC the update of a 2-D weight has zero row means in RAdam's first steps
    w = torch.nn.Parameter(torch.randn(3, 4))
    opt = Ranger([w], lr=0.1, k=100)
    before = w.detach().clone()
    (w * torch.randn(3, 4)).sum().backward()
    opt.step()
    assert torch.allclose((w.detach() - before).mean(dim=1), torch.zeros(3), atol=1e-6)


def _run(model, opt, data, steps):
    for x, y in data[:steps]:
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def test_state_dict_round_trip_gives_identical_continuation():
    torch.manual_seed(0)
    data = [(torch.randn(8, 5), torch.randn(8, 2)) for _ in range(17)]
    model_a = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    model_b = copy.deepcopy(model_a)
    opt_a = Ranger(model_a.parameters(), lr=0.01)
    _run(model_a, opt_a, data, 17)

    opt_b = Ranger(model_b.parameters(), lr=0.01)
    _run(model_b, opt_b, data, 8)  # stop between two syncs
    saved_model = copy.deepcopy(model_b.state_dict())
    saved_opt = copy.deepcopy(opt_b.state_dict())
    assert saved_opt["param_groups"][0]["lookahead_step"] == 8

    model_c = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    model_c.load_state_dict(saved_model)
    opt_c = Ranger(model_c.parameters(), lr=0.01)
    opt_c.load_state_dict(saved_opt)
    _run(model_c, opt_c, data[8:], 9)
    for pa, pc in zip(model_a.parameters(), model_c.parameters()):
        assert torch.equal(pa, pc)


def test_onecycle_schedule_steps_per_optimizer_step():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = Ranger([p], lr=1e-3)
    sched = build_scheduler("onecycle", opt, lr=1e-3, total_steps=10)["scheduler"]
    lrs = []
    for _ in range(10):
        p.grad = torch.ones(2)
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert max(lrs) == pytest.approx(1e-3, rel=0.2)
    assert lrs[0] < max(lrs) and min(lrs[-3:]) < 1e-5  # warm-up, then anneal to ~0
    assert build_scheduler("none", opt, 1e-3, 10) is None
