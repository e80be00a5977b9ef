"""Heads: TGAP shapes and the order-sensitivity that separates BERT from temporal average pooling."""

import pytest
import torch

from darkaction.models.bert import BertHead
from darkaction.models.heads import TGAPHead


@pytest.fixture(autouse=True)
def _one_thread():
    # These models are tiny: with several threads on a shared CPU, every small op waits at an OpenMP barrier for a
    # sibling thread that another process has descheduled (measured 20-50x slower). Restored after each test.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_tgap_shapes_and_pooling():
    torch.manual_seed(0)
    head = TGAPHead(16, 4, dropout=0.5).eval()
    fmap = torch.randn(3, 16, 4, 2, 2)
    with torch.no_grad():
        out = head(fmap)
        expected = head.fc(fmap.mean(dim=(2, 3, 4)))
    assert out.shape == (3, 4)
    assert torch.allclose(out, expected, atol=1e-6)
    assert head.attention is None


def test_tgap_dropout_only_in_training():
    torch.manual_seed(0)
    head = TGAPHead(16, 4, dropout=0.8)
    x = torch.randn(2, 16, 4, 2, 2)
    with torch.no_grad():
        assert torch.equal(head.eval()(x), head.eval()(x))
        assert not torch.allclose(head.train()(x), head.eval()(x))


def test_time_reversed_clip_changes_bert_but_not_tgap():
    """The paper's sit/stand confusion: average pooling cannot tell a sequence from its reverse."""
    torch.manual_seed(0)
    feats = torch.randn(2, 512, 8, 7, 7)  # a backbone feature sequence (B, C', T', h, w)
    reversed_feats = feats.flip(dims=[2])
    bert = BertHead(512, 6, max_len=8).eval()
    tgap = TGAPHead(512, 6).eval()
    with torch.no_grad():
        b1, b2 = bert(feats), bert(reversed_feats)
        t1, t2 = tgap(feats), tgap(reversed_feats)
    assert torch.allclose(t1, t2, atol=1e-5)
    assert (b1 - b2).abs().max() > 1e-3
