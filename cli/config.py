"""`--config run.toml`: a command's options kept in a file. The keys are the long option names (`max-train` or
`max_train`); an option given on the command line wins over the file. `effective` merges the two (the
decorator `configurable` does it for a whole command), `save` writes the merged settings beside a run's results
so that a long command is kept with them. `ctx` is the command's click context (typer's `typer.Context`)."""

from __future__ import annotations

import functools
from pathlib import Path

from baas.prompts_bank.errors import BaasError

NOT_IN_FILE = ("config",)  # the file cannot name another file


def _keys(ctx) -> dict:
    """Each option's long name without dashes ('max-train') -> its parameter."""
    keys = {}
    for param in ctx.command.params:
        if param.param_type_name == "option" and param.name not in NOT_IN_FILE:
            long = max(param.opts, key=len).lstrip("-")
            keys[long] = param
    return keys


def effective(ctx, path: Path | None) -> dict:
    """The command's parameter values, with those of the TOML file at `path` (None: none) filling in every option
    not given on the command line. Unknown keys and values of the wrong type are one error naming key and file."""
    values = dict(ctx.params)
    if path is None:
        return values
    try:
        import tomllib
    except ImportError:  # Python 3.10: the package supports it, but reading TOML needs 3.11's tomllib
        raise BaasError("--config needs Python 3.11 or newer (tomllib)") from None
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaasError(f"--config {path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BaasError(f"--config {path}: not valid TOML ({exc})") from None
    keys = _keys(ctx)
    for key, value in data.items():
        param = keys.get(key.replace("_", "-"))
        if param is None:
            raise BaasError(f"--config {path}: unknown key '{key}'; valid keys: {', '.join(sorted(keys))}")
        source = ctx.get_parameter_source(param.name)
        if source is not None and source.name == "COMMANDLINE":
            continue  # the command line wins
        if isinstance(value, list) and not param.multiple:
            value = ",".join(str(v) for v in value)  # tasks = ["a", "b"] as --tasks a,b
        try:
            values[param.name] = param.process_value(ctx, value)
        except Exception as exc:  # the CLI's own BadParameter (typer carries its own click)
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            raise BaasError(f"--config {path}: key '{key}': {message}") from None
    return values


def configurable(command):
    """A command that reads `--config`: it declares `ctx: typer.Context` and `config: ConfigOpt = None`, and is
    called with its options merged by `effective` (command line over file over defaults). Goes under
    `one_line_errors`, which turns a wrong file into one error line."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        ctx = kwargs["ctx"]
        merged = effective(ctx, kwargs.get("config"))  # only what the file set replaces the command's own values
        return command(*args, **{**kwargs, **{k: v for k, v in merged.items() if v is not ctx.params.get(k)}})

    return wrapper


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def save(ctx, values: dict, path: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """The effective settings `values` as TOML at `path` (a file `--config` reads back), options left at None
    and those in `leave_out` omitted."""
    lines = ["# The effective settings of this run (command line over --config file over defaults);",
             "# rerun with: baas " + ctx.info_name + " --config " + str(path)]
    for key, param in _keys(ctx).items():
        if param.name in leave_out or values.get(param.name) is None:
            continue
        lines.append(f"{key} = {_toml(values[param.name])}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
