"""`model.rate_input`: the head also reads each clip's frames per slot, from sampling through training, evaluation and
the Recognizer; export refuses such a model with a clear error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from darkaction.data.sampling import MIN_SLOT_RATE, delta_plan, sample_views, slot_rate
from darkaction.errors import ConfigError
from darkaction.models.bert import BertHead
from darkaction.models.heads import TGAPHead

sys.path.insert(0, str(Path(__file__).parent))
from test_evaluate import make_tiny_run  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.mark.parametrize("n", [20, 100, 225])
def test_slot_rate_reads_the_rate_a_plan_sampled_at(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        plan = delta_plan(n, 16, rng, beta=0.0, gamma=1.5, alpha=14.1)
        idx = plan.indices()
        # indices are floor(offset + j*S): the mean step between the first and last real frame is S within
        # one frame spread over the m-1 steps
        assert abs(slot_rate(idx) - plan.rate) <= 1.0 / (plan.n_real - 1) + 1e-9
    assert slot_rate(np.array([-1, -1, 4, -1])) == 1.0  # one real frame: no step to measure
    assert slot_rate(np.array([3, 3, 3, 3])) == MIN_SLOT_RATE  # one frame repeated
    assert slot_rate(np.array([-1, 0, 2, 4, 6, -1])) == 2.0  # blanks are not steps


@pytest.mark.parametrize("head_cls", ["bert", "tgap"])
def test_a_rate_head_starts_as_the_plain_head_and_then_reads_the_rate(head_cls):
    torch.manual_seed(0)
    if head_cls == "bert":
        plain, rated = BertHead(16, 4, hidden=16, heads=2, ffn=32), BertHead(16, 4, hidden=16, heads=2, ffn=32,
                                                                           rate_input=True)  # fmt: skip
    else:
        plain, rated = TGAPHead(16, 4), TGAPHead(16, 4, rate_input=True)
    state = {k: v for k, v in rated.state_dict().items() if not k.startswith("rate_embed")}
    plain.load_state_dict(state)
    plain.eval(), rated.eval()
    fmap = torch.randn(2, 16, 8, 2, 2)
    rates = torch.tensor([2.0, 9.0])
    with torch.no_grad():
        torch.testing.assert_close(rated(fmap, rates), plain(fmap))  # zero-initialised: nothing changes at first
        rated.rate_embed.weight.fill_(0.5)
        a = rated(fmap, rates)
        b = rated(fmap, torch.tensor([9.0, 2.0]))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="rate_input"):
        rated(fmap)
    with pytest.raises(ValueError, match="shape"):
        rated(fmap, torch.ones(3))


def test_only_r2plus1d_bert_and_tgap_models_take_rates():
    from darkaction.config import load_config
    from darkaction.models.build import build_model
    from darkaction.models.info import model_info

    cfg = load_config("configs/cpu.yaml", ["model.rate_input=true", "model.pretrained=none"])
    model = build_model(cfg.model, 6, 16).eval()
    assert model.rate_input
    with torch.no_grad():
        assert model(torch.randn(2, 3, 16, 32, 32), torch.tensor([1.0, 4.0])).shape == (2, 6)
    info = model_info(cfg)  # `darkaction model-info` passes the rate too
    assert info["parameters"]["total"] == sum(p.numel() for p in model.parameters()) and info["output"] == [1, 6]
    for bad in (["model.backbone=slowfast", "model.head=bert"], ["model.head=mran"]):
        cfg = load_config("configs/cpu.yaml", ["model.rate_input=true", "model.pretrained=none", *bad])
        with pytest.raises(ConfigError, match="rate_input"):
            build_model(cfg.model, 6, 16)


@pytest.fixture(scope="module")
def rate_run(tiny_synth, tmp_path_factory):
    extra = {"train.epochs": 1, "train.limit_train_batches": 2, "model.rate_input": True, "augment.length_mix": 1.0}
    return make_tiny_run(tiny_synth, tmp_path_factory.mktemp("rate"), **extra)


def test_a_rate_run_trains_evaluates_and_predicts_with_each_views_rate(rate_run, tiny_synth, tmp_path):
    from darkaction.data.dataset import ClipDataset
    from darkaction.data.index import DatasetIndex
    from darkaction.enhancement.run import training_cache
    from darkaction.evaluation.evaluate import evaluate
    from darkaction.inference import Recognizer
    from darkaction.inference.export import export_run

    cfg, run = rate_run
    index = DatasetIndex.load(Path(cfg.data.prepared) / "index.json")
    cache = training_cache(cfg)
    train = ClipDataset(index.split("train"), cache, cfg, train=True)
    item = train[0]
    assert item["rate"].shape == () and float(item["rate"]) > 0
    test = ClipDataset(index.split("test"), cache, cfg, train=False, views=3, n_min=train.n_min, n_max=train.n_max)
    got = test[1]
    rows = sample_views(test.strategy, len(cache.frames(index.split("test")[1].video_id)), cfg.sampling.T, 3,
                        seed=(cfg.sampling.view_seed, test.seed, 1), **test.params)  # fmt: skip
    np.testing.assert_allclose(got["rate"].numpy(), [slot_rate(r) for r in rows], rtol=1e-6)

    res = evaluate(run, views=2, progress=False)
    rec = Recognizer.from_run(run)
    assert rec.model.rate_input
    video = sorted((tiny_synth / "videos").rglob("*.mp4"))[0]
    out = rec.predict(video, views=2)
    assert sum(out["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    first = index.split("test")[0]
    clips, rates = rec.views(np.asarray(cache.frames(first.video_id)), 2, position=0, with_rates=True)
    probs, _ = rec.predict_clips(clips.unsqueeze(0), rates.unsqueeze(0))
    assert float(probs[0].mean(0).max()) == pytest.approx(res["predictions"][0]["prob"], abs=1e-5)
    with pytest.raises(ConfigError, match="rate"):
        rec.predict_clips(clips.unsqueeze(0))
    with pytest.raises(ConfigError, match="rate_input"):
        export_run(run, tmp_path / "export", fmt="torchscript")


def test_ranger_trains_the_rate_embedding():
    """Gradient centralisation zeroes the gradient of any weight with one input column: the embedding's parameters
    are 1-D so that Ranger moves them."""
    from darkaction.training.optim import Ranger

    torch.manual_seed(0)
    head = TGAPHead(8, 3, dropout=0.0, rate_input=True)
    opt = Ranger(head.parameters(), lr=1e-2)
    fmap, rates, labels = torch.randn(6, 8, 4, 2, 2), torch.tensor([1.0, 2, 4, 8, 3, 5]), torch.tensor([0, 1, 2] * 2)
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(fmap, rates), labels).backward()
        opt.step()
    assert head.rate_embed.weight.abs().max() > 0
