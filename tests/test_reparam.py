"""Reparameterisations (none, mlp, the BAP-Encoder): identity at the start, trainable, materialised into the bank."""

import pytest
import torch

from baas.prompts_bank.reparam import BAPEncoder, make_reparam
from baas.prompts_bank.trainable import TrainablePromptPair
from baas.store import Store
from baas.training.config import TrainConfig
from baas.training.data import load_task_data
from baas.training.trainer import train_pair


@pytest.mark.parametrize("kind", ["none", "mlp", "bap"])
@pytest.mark.parametrize("lengths", [(4, 3), (0, 3), (4, 0)])
def test_starts_as_the_identity_and_keeps_shapes(kind, lengths):
    torch.manual_seed(0)
    prefix, suffix = torch.randn(lengths[0], 16), torch.randn(lengths[1], 16)
    out_p, out_s = make_reparam(kind, 16)(prefix, suffix)
    assert out_p.shape == prefix.shape and out_s.shape == suffix.shape
    assert torch.equal(out_p, prefix) and torch.equal(out_s, suffix)


def test_bap_couples_prefix_and_suffix():
    """Once trained away from zero, a change in the suffix moves the prefix (the cross-attention)."""
    torch.manual_seed(0)
    enc = BAPEncoder(16, hidden=8, heads=2)
    torch.nn.init.normal_(enc.prefix_out.weight)
    prefix, suffix = torch.randn(4, 16), torch.randn(3, 16)
    before = enc(prefix, suffix)[0]
    after = enc(prefix, suffix + 1.0)[0]
    assert not torch.allclose(before, after)
    # And the prefix alone (no suffix) still works: the attention is skipped.
    assert enc(prefix, torch.zeros(0, 16))[0].shape == (4, 16)


@pytest.mark.parametrize("kind", ["mlp", "bap"])
def test_reparam_receives_gradients_and_materialises(kind):
    torch.manual_seed(0)
    module = TrainablePromptPair(torch.randn(1, 3, 16), torch.randn(1, 2, 16), 16, kind)
    pair, head = module()
    (pair.prefix.sum() + pair.suffix.pow(2).sum()).backward()
    grads = [p.grad for p in module.reparam_parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    torch.nn.init.normal_(next(m for m in module.reparam.modules() if isinstance(m, torch.nn.Linear) and m.weight.abs().sum() == 0).weight)
    entry = module.to_entry("t", torch.zeros(16), {})
    prefix, suffix = module.pair()
    assert torch.allclose(entry.prefix, prefix.detach(), atol=1e-5) and torch.allclose(entry.suffix, suffix.detach(), atol=1e-5)
    # Layer 0 is what the reparameterisation produced, not the raw parameters.
    assert not torch.equal(entry.prefix[0], module.prefix.detach()) or not torch.equal(entry.suffix[0], module.suffix.detach())


def test_training_with_bap_saves_the_materialised_pair(tiny_backbone, tmp_path):
    bb = tiny_backbone("bert")
    config = TrainConfig(epochs=1, batch_size=4, prefix_len=3, suffix_len=2, max_length=48, reparam="bap",
                         checkpoint_every=100)
    store = Store(tmp_path)
    result = train_pair("cats", load_task_data("demo_categories", max_train=24, max_eval=16), bb, store, config)
    entry = store.load_entry("cats", backbone=bb.name, hidden_size=bb.hidden_size)
    assert entry.meta["reparam"] == "bap" and entry.prefix.shape == (bb.num_layers, 3, bb.hidden_size)  # default depth: every layer
    assert set(entry.tensors()) == {"prefix", "suffix", "head_weight", "head_bias", "head_scale", "head_proj_in",
                                    "head_proj_out", "key", "gate"}  # no encoder weights (the head: the default, both)
    assert result["accuracy"] >= 0
