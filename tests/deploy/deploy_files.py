"""Reading the deploy/ files the way their tools do: compose interpolation, Dockerfile
instructions, .dockerignore patterns, Kubernetes documents, and the settings the code reads.

Kept apart from the tests so each test reads as a statement about the deployment.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from services.common.config import DEFAULT_ADDRS, SharedSettings, env_key
from services.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
K8S = DEPLOY / "k8s"

#: Variables the image itself reads (its HEALTHCHECK), not the Python code.
IMAGE_ONLY_SETTINGS = frozenset({"ANTIFRAUD_HEALTH_PORT"})


# ---- settings the code reads ---------------------------------------------------------------

_LITERAL_ENV = re.compile(r"\benv(?:_int|_float|_parsed)?\(\s*\"([A-Z0-9_]+)\"")
_PER_PROCESS_ENV = re.compile(
    r"\benv(?:_int|_float|_parsed)?\(\s*f\"\{env_key\(\w+\)\}_([A-Z0-9_]+)\""
)


@cache
def settings_read_by_code() -> frozenset[str]:
    """Every ``ANTIFRAUD_*`` variable the code reads through ``services.common.config.env``.

    The shared settings (``SharedSettings``' fields), literal names (``env("RISK_POLL_SECONDS")``)
    anywhere in services/ and gateway/, and the
    per-process ones (``env(f"{env_key(service)}_ADDR")``) for every process name.
    """
    literal: set[str] = set()
    per_process: set[str] = set()
    for folder in (ROOT / "services", ROOT / "gateway"):
        for path in folder.rglob("*.py"):
            if "api" in path.relative_to(ROOT).parts[:2]:
                continue
            text = path.read_text()
            literal.update(_LITERAL_ENV.findall(text))
            per_process.update(_PER_PROCESS_ENV.findall(text))
    processes = set(DEFAULT_ADDRS) | set(REGISTRY)
    literal.update(name.upper() for name in SharedSettings.model_fields)
    names = {f"ANTIFRAUD_{name}" for name in literal}
    names |= {f"ANTIFRAUD_{env_key(p)}_{suffix}" for p in processes for suffix in per_process}
    return frozenset(names)


def uses_database(process: str) -> bool:
    """Whether a process keeps a database: its package ships Alembic revisions."""
    package = REGISTRY[process].module.rsplit(".", 1)[0]
    versions = ROOT / package.replace(".", "/") / "adapters" / "migrations" / "versions"
    return any(p.name != "__init__.py" for p in versions.glob("*.py"))


def process_of_variable(variable: str, suffix: str) -> str | None:
    """``ANTIFRAUD_CARRIER_CMCC_ADDR`` → ``carrier-cmcc`` (for suffix ``ADDR``)."""
    for name in DEFAULT_ADDRS:
        if variable == f"ANTIFRAUD_{env_key(name)}_{suffix}":
            return name
    return None


def default_port(process: str) -> int:
    return int(DEFAULT_ADDRS[process].rsplit(":", 1)[1])


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


# ---- compose ------------------------------------------------------------------------------


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?msg}``, ``$$``.

    Defaults may nest (``${A:-${B:-x}}``), as compose allows.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 2)
            out.append(_expand(text[i + 2 : end], variables))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for j in range(start, len(text)):
        if text.startswith("${", j):
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError(f"unclosed ${{ in {text!r}")


def _expand(body: str, variables: Mapping[str, str]) -> str:
    match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?", body, re.DOTALL)
    if match is None:
        raise ValueError(f"bad interpolation ${{{body}}}")
    name, op, rest = match.groups()
    value = variables.get(name)
    if op is None:
        return value or ""
    unset = value is None or (op.startswith(":") and value == "")
    if op.endswith("-"):
        return interpolate(rest, variables) if unset else str(value)
    if unset:
        raise ValueError(f"{name} is required: {rest}")
    return str(value)


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def variables_used(text: str) -> set[str]:
    """Every variable a compose file interpolates (``$$`` escapes excluded)."""
    return set(_VARIABLE.findall(text.replace("$$", "")))


def defaults_of(text: str) -> dict[str, str]:
    """The default each ``${VAR:-default}`` gives, with nested defaults resolved."""
    defaults: dict[str, str] = {}
    unescaped = text.replace("$$", "\0\0")  # same length, so offsets still match ``text``
    for match in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-", unescaped):
        end = _closing_brace(unescaped, match.start() + 2)
        defaults[match.group(1)] = interpolate(text[match.end() : end], {})
    return defaults


def load_compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def resolved(value: Any) -> Any:
    """A compose value with every variable at its default (an empty environment)."""
    if isinstance(value, str):
        return interpolate(value, {})
    if isinstance(value, list):
        return [resolved(v) for v in value]
    if isinstance(value, dict):
        return {k: resolved(v) for k, v in value.items()}
    return value


def env_example() -> dict[str, tuple[str, bool]]:
    """``.env.example``: name → (value, commented out)."""
    entries: dict[str, tuple[str, bool]] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"(#\s*)?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            entries[match.group(2)] = (match.group(3), match.group(1) is not None)
    return entries


# ---- Dockerfile ---------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array form (``["a", "b"]``), or None for shell form."""
        try:
            value = json.loads(self.args)
        except json.JSONDecodeError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        return None


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comment lines dropped, as docker does."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        joined = " ".join(p for p in pending if p)
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    if pending:
        raise ValueError("the Dockerfile ends inside a continued instruction")
    return instructions


def dockerfile_stages() -> list[Stage]:
    stages: list[Stage] = []
    for instruction in dockerfile_instructions(DOCKERFILE.read_text()):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(words[0], name))
        elif not stages:
            if instruction.keyword != "ARG":
                raise ValueError(f"{instruction.keyword} before the first FROM")
        else:
            stages[-1].instructions.append(instruction)
    return stages


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]
    destination: str
    from_stage: str | None


def copies(stage: Stage) -> list[Copy]:
    result: list[Copy] = []
    for instruction in stage.all("COPY"):
        words = shlex.split(instruction.args)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        result.append(Copy(tuple(paths[:-1]), paths[-1], from_stage))
    return result


def env_settings(stage: Stage) -> dict[str, str]:
    """``ENV a=b c=d`` instructions of a stage, as a mapping."""
    settings: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for word in shlex.split(instruction.args):
            name, sep, value = word.partition("=")
            if not sep:
                raise ValueError(f"line {instruction.line}: use ENV NAME=value")
            settings[name] = value
    return settings


# ---- .dockerignore ------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnorePattern:
    regex: re.Pattern[str]
    exclusion: bool  # a "!" line: brings matching paths back in


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax: ``**`` any number of directories, ``*`` and ``?`` not ``/``."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def ignore_patterns(text: str) -> list[IgnorePattern]:
    patterns: list[IgnorePattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        cleaned = line[1:].strip() if exclusion else line
        cleaned = cleaned.strip("/")
        patterns.append(IgnorePattern(_pattern_regex(cleaned), exclusion))
    return patterns


def ignored(path: str, patterns: list[IgnorePattern]) -> bool:
    """Whether the build context leaves ``path`` (relative, ``/``-separated) out.

    As moby's patternmatcher: the last pattern that matches the path or one of its parent
    directories decides.
    """
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    decision = False
    for pattern in patterns:
        if any(pattern.regex.fullmatch(c) for c in candidates):
            decision = not pattern.exclusion
    return decision


def context_files(patterns: list[IgnorePattern], under: Path = ROOT) -> Iterator[Path]:
    """Files of the repository that the build context would contain below ``under``."""
    for path in sorted(under.rglob("*")):
        if path.is_file() and not ignored(path.relative_to(ROOT).as_posix(), patterns):
            yield path


# ---- Kubernetes ---------------------------------------------------------------------------


def k8s_documents(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every resource in the YAML files under ``folder`` (kustomization files excluded)."""
    documents: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(folder.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                documents.append((path, document))
    return documents


def of_kind(documents: list[tuple[Path, dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return [d for _, d in documents if d.get("kind") == kind]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: str(e.get("value", "")) for e in container.get("env", [])}


# ---- the image's file tree, without Docker ------------------------------------------------


def _copy_into(source: Path, destination: Path, patterns: list[IgnorePattern]) -> None:
    """``COPY source destination`` of the build context: a directory's contents, or a file."""
    if source.is_file():
        target = destination / source.name if destination.is_dir() else destination
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        return
    for path in context_files(patterns, source):
        target = destination / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def lay_out_image(root: Path) -> Path:
    """The files the image's runtime stage holds under /app, laid out below ``root``.

    Follows the Dockerfile: the builder's ``COPY`` instructions (through the ignore file),
    its code generation, then the runtime stage's ``COPY --from=builder``. Returns the
    directory that stands for /app.
    """
    patterns = ignore_patterns(DOCKERIGNORE.read_text())
    *builders, runtime = dockerfile_stages()
    (builder,) = builders
    workdir = builder.all("WORKDIR")[-1].args
    src = root / workdir.strip("/")
    src.mkdir(parents=True)
    for copy in copies(builder):
        destination = src / copy.destination
        if copy.destination.endswith("/"):
            destination.mkdir(parents=True, exist_ok=True)
        for source in copy.sources:
            _copy_into(ROOT / source, destination, patterns)
    generated = subprocess.run(
        [sys.executable, "scripts/gen_protos.py"], cwd=src, capture_output=True, text=True
    )
    if generated.returncode != 0:
        raise RuntimeError(f"gen_protos failed: {generated.stderr}")
    app = root / "app"
    for copy in copies(runtime):
        if copy.from_stage != builder.name or not copy.sources[0].startswith(workdir):
            continue  # the virtualenv: here, the interpreter running the tests stands for it
        (source,) = copy.sources
        inside = Path(source).relative_to(workdir)
        shutil.copytree(src / inside, root / copy.destination.strip("/"))
    return app


def launcher_source() -> str:
    """The Python the Dockerfile writes to /opt/venv/bin/antifraud (its printf format)."""
    for stage in dockerfile_stages():
        for instruction in stage.all("RUN"):
            match = re.search(r"printf '([^']*)'\s*>\s*/opt/venv/bin/antifraud", instruction.args)
            if match:
                return match.group(1).replace("\\n", "\n")
    raise LookupError("the Dockerfile writes no /opt/venv/bin/antifraud")
