"""Sharing an entry: export it to a self-contained folder (the bank file, what it is, a README card and
its query summaries) and import such a folder, checked, as a new version."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from baas.prompts_bank.bank import BankEntry
from baas.prompts_bank.pair import HEAD_FIELDS
from baas.store.artifacts import Artifacts
from baas.store.entries import Entries
from baas.store.files import atomic_write
from baas.store.names import StoreError, validate_task_name


class Transfer(Entries, Artifacts):
    """`export_entry` and `import_entry` (`baas bank export` / `baas bank import`)."""

    EXPORT_FORMAT = "baas-entry-export/1"

    def export_entry(self, task: str, version: int | None, folder: Path) -> Path:
        """Write `folder/entry.safetensors` (the bank file as stored), `folder/baas_entry.json` (what it
        is: backbone, shapes, pooling, data fingerprint, metrics, sha256) and `folder/README.md`, plus
        the entry's query summaries; returns the folder."""
        row = self._entry_row(task, version)
        self.load_entry(task, row["version"])  # verifies the checksum before anything is shared
        folder = Path(folder)
        if folder.exists() and any(folder.iterdir()):
            raise StoreError(f"{folder}: exists and is not empty; export into a new folder")
        meta, payload = json.loads(row["meta"]), (self.root / row["file"]).read_bytes()
        summaries = [a for a in self.artifacts("summary") if a["meta"].get("task") == task
                     and a["meta"].get("version") == str(row["version"])]
        config = {"format": self.EXPORT_FORMAT, "task": task, "version": row["version"], "sha256": row["sha256"],
                  "backbone": meta["backbone"], "hidden_size": meta["hidden_size"], "depth": meta.get("depth", 1),
                  "prefix_len": meta["prefix_len"], "suffix_len": meta["suffix_len"], "pooling": meta.get("pooling"),
                  "scoring": meta.get("scoring", "joint"), "dataset": meta.get("dataset"), "data_fingerprint": meta.get("data_fingerprint"),
                  "metrics": json.loads(row["metrics"]), "summaries": [{"name": a["name"], "meta": a["meta"]} for a in summaries],
                  "meta": meta}
        m = config["metrics"]
        card = (f"# baas prompt-bank entry: {task} (v{row['version']})\n\n"
                f"A frozen bidirectional prompt pair and scoring head for `{meta['backbone']}` (hidden size "
                f"{meta['hidden_size']}): {meta['prefix_len']} prefix + {meta['suffix_len']} suffix vectors at "
                f"{config['depth']} layer(s), pooling `{config['pooling']}`, trained on {meta.get('n_train')} questions of "
                f"`{meta.get('dataset')}`. Accuracy {m.get('accuracy', float('nan')):.3f} on {m.get('n_eval', '?')} "
                f"{m.get('eval_split', '')} questions.\n\nFiles: `entry.safetensors` (prefix [D, Lp, d], suffix [D, Ls, d], "
                "the head (`head_weight` [d], `head_bias` for joint scoring; `head_scale`, `head_proj_in` / `head_proj_out` "
                f"[d, r] for dual; all for both: this entry scores `{config['scoring']}`), key [d]), `baas_entry.json` (what it is and its sha256)"
                + (", `summaries/` (the router's statistics of its training queries)" if summaries else "")
                + ".\n\nAdd it to a store with `baas bank import DIR`.\n")
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / "entry.safetensors", lambda f: f.write(payload))
        for a in summaries:
            blob = Path(a["path"]).read_bytes()
            atomic_write(folder / "summaries" / f"{a['name']}.safetensors", lambda f, blob=blob: f.write(blob))
        atomic_write(folder / "README.md", lambda f: f.write(card.encode()))
        atomic_write(folder / "baas_entry.json", lambda f: f.write(json.dumps(config, indent=1).encode()))
        return folder

    def import_entry(self, folder: Path, name: str | None = None) -> BankEntry:
        """Check an exported folder (its config, the file's sha256, the tensors' shapes against the config)
        and add it as a new version of `name` (default: the exported task's name)."""
        folder = Path(folder)
        path = folder / "baas_entry.json"
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: not an exported baas entry ({exc}); make one with `baas bank export NAME DIR`") from None
        if not isinstance(config, dict) or config.get("format") != self.EXPORT_FORMAT:
            raise StoreError(f"{path}: field 'format': expected {self.EXPORT_FORMAT!r}, got {config.get('format') if isinstance(config, dict) else config!r}")
        try:
            payload = (folder / "entry.safetensors").read_bytes()
        except OSError as exc:
            raise StoreError(f"{folder / 'entry.safetensors'}: cannot read: {exc.strerror}") from None
        if hashlib.sha256(payload).hexdigest() != config.get("sha256"):
            raise StoreError(f"{folder / 'entry.safetensors'}: sha256 does not match {path}: the file is damaged or was changed")
        try:
            tensors = load_safetensors(payload)
        except (SafetensorError, ValueError) as exc:
            raise StoreError(f"{folder / 'entry.safetensors'}: not a readable safetensors file: {exc}") from None
        meta = dict(config["meta"])
        entry = BankEntry.from_tensors(validate_task_name(name or config["task"]), tensors, meta, 0)
        d, D = config["hidden_size"], config["depth"]
        head = entry.head_tensors()
        needed = {"joint": ("weight", "bias"), "dual": ("scale", "proj_in", "proj_out")}.get(entry.scoring, HEAD_FIELDS)
        missing = [f"head_{f}" for f in needed if f not in head]
        if missing:
            raise StoreError(f"{folder / 'entry.safetensors'}: scoring '{entry.scoring}' needs tensor(s) {', '.join(missing)}, "
                             "which the file does not have")
        checks = [("prefix", entry.prefix.shape, (D, config["prefix_len"], d)),
                  ("suffix", entry.suffix.shape, (D, config["suffix_len"], d))]
        checks += [(f"head_{f}", head[f].shape, (d,) if f == "weight" else (d, head[f].shape[-1]))
                   for f in ("weight", "proj_in", "proj_out") if f in head]
        for what, got, want in checks:
            if tuple(got) != want:
                raise StoreError(f"{folder / 'entry.safetensors'}: tensor '{what}' has shape {list(got)}, but "
                                 f"baas_entry.json says {list(want)}")
        for k in ("task", "version", "metrics", "created"):
            meta.pop(k, None)
        saved = self.save_entry(entry, meta.get("dataset") or entry.task, config["metrics"])
        for summary in config.get("summaries", []):  # the router's statistics come along, renamed to the new version
            tensors = load_safetensors((folder / "summaries" / f"{summary['name']}.safetensors").read_bytes())
            slug = summary["name"].split("@v", 1)[1].partition("-")[2]  # <task>@v<N>-<query slug>
            self.save_artifact("summary", f"{saved.task}@v{saved.version}-{slug}", tensors,
                               dict(summary["meta"], task=saved.task, version=str(saved.version)))
        return saved
