"""YAML → :class:`RunConfig`: reading, ``--set`` overrides, one-line validation errors, sample files."""

from __future__ import annotations

import glob
from pathlib import Path

import yaml
from pydantic import ValidationError

from qtrigger.config.run import RunConfig
from qtrigger.errors import QTriggerError


def read_yaml_mapping(path: str | Path, overrides: list[str] | None = None, what: str = "config") -> dict:
    """A YAML file's top-level mapping with ``key.path=value`` overrides applied; ``name`` defaults to the stem."""
    path = Path(path)
    if not path.is_file():
        raise QTriggerError(f"{what} file {path} does not exist")
    try:
        text = path.read_text()
    except UnicodeDecodeError as err:
        raise QTriggerError(f"{what} {path}: not a YAML text file (byte {err.start} is not UTF-8 text)") from None
    raw = parse_yaml(text, f"{what} {path}")
    if not isinstance(raw, dict):
        raise QTriggerError(f"{what} {path}: expected a mapping at top level, got {type(raw).__name__}")
    for override in overrides or []:
        apply_override(raw, override)
    if raw.get("name") is None:
        raw["name"] = path.stem
    return raw


def parse_yaml(text: str, source: str):
    """YAML text to data; a syntax error names the line and column."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise QTriggerError(f"{source}: not valid YAML{where} ({problem})") from None


def load_config(path: str | Path, overrides: list[str] | None = None, check_files: bool = True) -> RunConfig:
    """Read a YAML config, apply ``key.path=value`` overrides, validate, resolve the run name."""
    config = validate_config(read_yaml_mapping(path, overrides), source=str(path))
    if check_files:
        resolve_sample_files(config)
    return config


def validate_config(raw: dict, source: str = "config") -> RunConfig:
    """Validate a plain dict into a RunConfig, turning pydantic errors into one line."""
    return validate_as(RunConfig, raw, source)


def validate_as(model, raw: dict, source: str):
    """``model.model_validate(raw)`` (a pydantic model class); its errors become one line naming ``source``."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise QTriggerError(f"{source}: {format_validation_error(err)}") from None


def format_validation_error(err: ValidationError) -> str:
    """One line: ``key a.b: message (got value)`` for each problem, joined by '; '."""
    parts = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif "input" in item and not isinstance(item["input"], dict):
            message += f" (got {item['input']!r})"
        parts.append(f"key {key}: {message}" if key else message)
    return "; ".join(parts)


def apply_override(raw: dict, override: str) -> None:
    """Set ``a.b.c=value`` (value parsed as YAML) inside a nested dict, in place."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise QTriggerError(f"--set {override!r}: expected KEY.PATH=VALUE, e.g. training.epochs=2")
    if not text.strip():
        raise QTriggerError(f"--set {override!r}: no value after '=' (write KEY=null for none)")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    set_dotted(raw, key.strip(), value, f"--set {override!r}")


def set_dotted(raw: dict, key: str, value, what: str) -> None:
    """Set ``raw[a][b][c] = value`` for ``key`` ``a.b.c``, creating sections; ``what`` prefixes errors."""
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise QTriggerError(f"{what}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def resolve_patterns(patterns: list[str], key: str) -> list[str]:
    """Expand paths/globs; a pattern that matches nothing is a one-line error naming ``key``."""
    files: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else ([pattern] if Path(pattern).exists() else [])
        if not matches:
            raise QTriggerError(f"key {key}: no file matches {pattern!r}")
        files.extend(matches)
    return files


def resolve_sample_files(config: RunConfig) -> dict[str, list[str]]:
    """Expand every sample's paths/globs; a pattern that matches nothing is an error."""
    return {sample.name: resolve_patterns(sample.files, f"data.samples.{index}.files")
            for index, sample in enumerate(config.data.samples)}


def resolve_signal_samples(config: RunConfig) -> dict[str, list[str]]:
    """Expand every ``trigger.signal_samples`` entry's paths/globs (efficiency-only signals)."""
    return {sample.name: resolve_patterns(sample.files, f"trigger.signal_samples.{index}.files")
            for index, sample in enumerate(config.trigger.signal_samples or [])}


def config_to_dict(config: RunConfig) -> dict:
    """The resolved config as plain data, for run directories and hashing."""
    return config.model_dump(mode="json")
