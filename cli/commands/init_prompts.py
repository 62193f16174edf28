"""`baas init-prompts`: make (or show) a task's data-driven starting pair (the API's `init_prompts`)."""

from __future__ import annotations

from typing import Annotated

import typer

from baas.cli.options import (DEFAULTS, BackboneOpt, ClustersOpt, DataDirOpt, JsonOpt, LlmModelOpt, LlmUrlOpt, MaxTrainOpt,
                              PrefixInitOpt, PrefixLenOpt, SeedOpt, SkipOpt, StoreOpt, SuffixInitOpt, SuffixLenOpt)
from baas.cli.render import Table, emit, one_line_errors, say, show


@one_line_errors
def init_prompts(
    name: Annotated[str, typer.Argument(help="Dataset name (see `baas datasets`); also the task's name in the bank.")],
    data_dir: DataDirOpt = None,
    backbone: BackboneOpt = None,
    store: StoreOpt = None,
    max_train: MaxTrainOpt = None,
    prefix_len: PrefixLenOpt = DEFAULTS.prefix_len,
    suffix_len: SuffixLenOpt = DEFAULTS.suffix_len,
    prefix_init: PrefixInitOpt = "topic",
    suffix_init: SuffixInitOpt = "autocot",
    clusters: ClustersOpt = DEFAULTS.clusters,
    llm_base_url: LlmUrlOpt = None,
    llm_model: LlmModelOpt = None,
    seed: SeedOpt = DEFAULTS.seed,
    skip_invalid: SkipOpt = False,
    as_json: JsonOpt = False,
):
    """Make (or show) NAME's data-driven starting pair: topic labels for the prefix; question clusters,
    their representatives, local reasoning chains and the merged global chain for the suffix.

    The result is kept in the store; `train-task` with the same data and settings starts from it. Its
    defaults differ from `train-task`'s on purpose: this command exists for the data-driven start, while
    `train-task` starts from the task's frequent tokens (`vocab`, chosen on validation) unless given
    `--prefix-init topic --suffix-init autocot`, and then says when it reuses a kept start. Offline (no --llm-base-url) the chains come from the data: its explanations or facts, else a template.

    Examples: `baas init-prompts arc_easy --data-dir DIR --clusters 8`;
    `baas init-prompts arc_easy --data-dir DIR --llm-base-url http://localhost:8000/v1 --llm-model MODEL`.
    """
    from baas.cli.progress import reporter
    from baas.training.api import init_prompts as make

    info = make(name, data_dir=data_dir, store=store, backbone=backbone, max_train=max_train, skip_invalid=skip_invalid,
                prefix_init=prefix_init, suffix_init=suffix_init, reporter=reporter(), prefix_len=prefix_len,
                suffix_len=suffix_len, clusters=clusters, llm_base_url=llm_base_url, llm_model=llm_model, seed=seed)
    emit(info, as_json, lambda: _show(info, store))


def _show(info, store) -> None:
    if info.topics:
        say(f"topic labels ({info.topics['source']}): " + ", ".join(info.topics["labels"]))
    chain = info.chain
    if chain:
        table = Table(f"{len(chain['clusters'])} question clusters (Auto-CoT representatives)",
                      ["cluster", "size", "representative question", "local chain", "source"])
        for c in chain["clusters"]:
            table.add_row(c["index"], c["size"], c["representative"]["question"], c["local_chain"], c["source"])
        show(table)
        say(f"global chain ({chain['source']}):\n{chain['global_chain']}")
    say(f"prefix {info.prefix_shape}, suffix {info.suffix_shape} kept in {info.store}")
