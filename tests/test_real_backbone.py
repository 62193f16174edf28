"""The offline default backbone (MiniLM from its PyPI package) on real data from the shared pack."""

import pytest

from baas.store import Store
from baas.training.backbone import DEFAULT_BACKBONE, load_backbone, offline_minilm_path
from baas.training.data import load_task_data
from baas.training.trainer import TrainConfig, evaluate_entry, train_task


@pytest.fixture(scope="module")
def minilm():
    return load_backbone(None)


def test_offline_minilm_is_extracted_once(minilm):
    path = offline_minilm_path()
    assert (path / "config.json").is_file() and offline_minilm_path() == path
    assert minilm.name == DEFAULT_BACKBONE and minilm.hidden_size == 384 and not minilm.is_decoder
    assert all(not p.requires_grad for p in minilm.model.parameters())


def test_train_and_reload_on_real_data(minilm, shared_mcq, tmp_path):
    data = load_task_data("arc_easy", shared_mcq, max_train=48, max_eval=40)
    store = Store(tmp_path)
    result = train_task("arc_easy", data, minilm, store, TrainConfig(epochs=1, prefix_len=4, suffix_len=4))
    assert result["n_train"] == 48 and result["n_eval"] == 40 and result["eval_split"] == "test"
    assert 0.0 <= result["accuracy"] <= 1.0
    assert evaluate_entry("arc_easy", data, minilm, store)["accuracy"] == result["accuracy"]
