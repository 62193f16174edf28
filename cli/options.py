"""The options several `baas` commands share, defined once so that each means the same everywhere. Their
defaults are the library's (`DEFAULTS`, a TrainConfig)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from baas.training.config import TrainConfig

DEFAULTS = TrainConfig()  # the library's defaults are the CLI's defaults

StoreOpt = Annotated[Optional[Path], typer.Option("--store", help="Store folder (catalog + bank). Default: $BAAS_HOME or ~/.baas.")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Local datasets, one folder each: DIR/NAME/ with train.jsonl, validation.jsonl and test.jsonl in the hub layout. Default: $BAAS_DATA_DIR, else the Hugging Face hub.")]
BackboneOpt = Annotated[Optional[str], typer.Option("--backbone", help="Hugging Face encoder or decoder: hub id or local folder. Default: the offline all-MiniLM-L6-v2.")]
MaxEvalOpt = Annotated[Optional[int], typer.Option("--max-eval", min=1, help="Cap on validation and evaluation questions (a fixed random subset). Default: all.")]
MaxEvalSomeOpt = Annotated[int, typer.Option("--max-eval", min=1, help="Cap on each task's evaluation questions (a fixed random subset).")]
JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="Print one JSON object as the last stdout line (an error too: {\"error\": ...}).")]
SkipOpt = Annotated[bool, typer.Option("--skip-invalid", metavar="", help="Skip malformed rows (and report how many) instead of stopping at the first.")]
MaxTrainOpt = Annotated[Optional[int], typer.Option("--max-train", min=1, help="Cap on training questions (a fixed random subset). Default: all.")]
MaxTrainSomeOpt = Annotated[int, typer.Option("--max-train", min=1, help="Cap on each task's training questions (a fixed random subset).")]
PrefixLenOpt = Annotated[int, typer.Option("--prefix-len", min=0, max=256, help="Prefix vectors before the input (0 for none).")]
SuffixLenOpt = Annotated[int, typer.Option("--suffix-len", min=0, max=256, help="Suffix vectors after the input (0 for none).")]
PrefixInitOpt = Annotated[str, typer.Option("--prefix-init", help="topic (the dataset's topic labels: its fields, else spaCy entities and noun chunks), vocab (the task's frequent tokens) or random.")]
SuffixInitOpt = Annotated[str, typer.Option("--suffix-init", help="autocot (a global reasoning chain merged from K Auto-CoT chains), vocab or random.")]
ClustersOpt = Annotated[int, typer.Option("--clusters", min=1, help="K: question clusters for Auto-CoT, one local chain each.")]
LlmUrlOpt = Annotated[Optional[str], typer.Option("--llm-base-url", help="OpenAI-compatible endpoint for the chains, e.g. a local server's /v1 URL. Default: $BAAS_LLM_BASE_URL; unset: offline chains from the data. Key: $BAAS_LLM_API_KEY or $OPENAI_API_KEY.")]
LlmModelOpt = Annotated[Optional[str], typer.Option("--llm-model", help="Model name at that endpoint. Default: $BAAS_LLM_MODEL, else gpt-4o.")]
FormatOpt = Annotated[Optional[str], typer.Option("--format", help="The adapter that reads a folder named otherwise, e.g. --format arc_easy for a copy in DIR/arc_easy_small (or put {\"format\": \"arc_easy\"} in the folder's baas.json); jsonl for baas's own format.")]
VersionOpt = Annotated[Optional[int], typer.Option("--version", min=1, help="A specific version of the entry (also written NAME@vN). Default: the newest.")]
ScoringOpt = Annotated[str, typer.Option("--scoring", help="How options are scored. joint: a linear head on the pooled [context question; option] sequence; dual: each question read once and each option alone, scored by a learned scale times the cosine of the two (it starts as the encoder's own zero-shot answer); both: the sum of the two, the joint part starting at zero. Stored with the entry; a bank fuses entries of one mode.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for initialisation, clustering and batch order.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="Where the model runs: auto (a CUDA GPU, then Apple's MPS, then the CPU; the record says which), cpu, cuda, cuda:N or mps. Under torchrun / accelerate launch each process takes its local rank's GPU.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="The frozen backbone's forward: fp32, bf16 or fp16 (autocast; the trained vectors, heads and optimiser states stay fp32; fp16 trains with a gradient scaler), or auto: bf16 on a GPU that supports it and on a CPU with native bf16 (AVX512-BF16, AMX), else fp32. On such a CPU bf16 trained about 1.7x and answered about 2.3x as fast as fp32, level on accuracy over ten datasets (docs/results.md); pass fp32 to reproduce figures measured in fp32.")]

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="A TOML file of this command's options: keys are the long option names (max-train or max_train), e.g. `tasks = [\"arc_easy\", \"qasc\"]` and `epochs = 2`; an option on the command line wins over the file.")]
