"""The README and the pages of docs/ say only what is true of the code: every relative link and
every repository path shown points to a file, every ``python -m compress.main`` line shown
composes into a valid config (each job of a ``-m`` sweep), every other ``python -m`` line names
a module that exists, and the option table of docs/methods.md reaches every option's config
and handler in one hop."""

from __future__ import annotations

import itertools
import math
import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf, open_dict

from compress.config.job import Config
from compress.config.rules import unknown_keys
from compress.config.store import CONF_DIR, SCHEMAS, register_configs, schema_type

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
METHODS = ROOT / "docs" / "methods.md"
PACKAGES = ("compress", "analysis", "hydra_plugins")
# Commands whose arguments are job overrides, composed like compress.main's; the value is the
# set of their own options that take a value (dropped before composing).
COMPOSING = {"compress.main": {"--cfg"}, "compress.pipeline.sensitivity": {"--group-by", "--out"}}
# A sweep with more jobs than this composes each level of each factor once, not the product.
MOST_JOBS = 8

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
COMMAND = re.compile(r"python -m ([\w.]+)(.*)")
REPO_PATH = re.compile(r"^(?:compress|analysis|hydra_plugins|benchmarks|tests|docs)/\S*$")


def _relative(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _code(text: str) -> list[str]:
    """Every line of code a page shows: fenced blocks (backslash continuations joined) and
    inline code spans (a span that wraps across lines joined into one)."""
    lines = []
    for block in FENCE.findall(text):
        lines += block.replace("\\\n", " ").splitlines()
    lines += [" ".join(span.split()) for span in INLINE.findall(FENCE.sub("", text))]
    return lines


def _links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:|#", t)]


def _target(page: Path, link: str) -> Path:
    return (page.parent / link.split("#")[0]).resolve()


def _commands() -> list[tuple[str, str, list[str]]]:
    """(page, module, arguments) of every ``python -m <module> ...`` line the pages show."""
    found = []
    for page in PAGES:
        for line in _code(page.read_text()):
            for module, rest in COMMAND.findall(line):
                found.append((_relative(page), module, shlex.split(rest, comments=True)))
    return found


COMMANDS = _commands()
JOB_COMMANDS = [c for c in COMMANDS if c[1] in COMPOSING]


@pytest.mark.parametrize("page", PAGES, ids=_relative)
def test_every_relative_link_points_to_a_file(page: Path):
    missing = [link for link in _links(page) if not _target(page, link).exists()]
    assert missing == []


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of a page: lower case, punctuation dropped,
    spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=_relative)
def test_every_anchor_names_a_heading_of_its_page(page: Path):
    anchored = [link for link in _links(page) if "#" in link and ".md" in link.split("#")[0]]
    assert anchored or page.name not in ("README.md", "methods.md")
    wrong = [link for link in anchored if link.split("#")[1] not in _anchors(_target(page, link))]
    assert wrong == []


def _expand_braces(path: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", path)
    if not match:
        return [path]
    head, tail = path[: match.start()], path[match.end() :]
    return [p for part in match.group(1).split(",") for p in _expand_braces(head + part + tail)]


@pytest.mark.parametrize("page", PAGES, ids=_relative)
def test_every_repository_path_shown_exists(page: Path):
    """Paths in code spans (``compress/pipeline/job.py``, ``benchmarks/results/*.md``) and at
    the start of code lines; placeholders (``<job dir>``) are not paths."""
    shown = {word for line in _code(page.read_text()) for word in line.split()}
    paths = [w.strip("`'\",;:()") for w in shown]
    missing = [
        path
        for path in paths
        if REPO_PATH.match(path)
        and "<" not in path
        and not any(list(ROOT.glob(p)) for p in _expand_braces(path))
    ]
    assert missing == []


def _module_exists(module: str) -> bool:
    base = ROOT.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__main__.py").is_file()


def test_every_python_m_line_of_the_project_names_a_runnable_module():
    ours = [(page, m) for page, m, _ in COMMANDS if m.split(".")[0] in PACKAGES]
    assert ours, "no python -m line found: is the extraction broken?"
    assert [(page, m) for page, m in ours if not _module_exists(m)] == []


def _overrides(module: str, arguments: list[str]) -> list[str]:
    """The job overrides of a command line: without ``-m``, without the command's own options
    and their values, without ``...`` (which stands for more overrides)."""
    overrides, words = [], iter(arguments)
    for word in words:
        if word in ("-m", "--multirun", "..."):
            continue
        if word in COMPOSING[module]:
            next(words, None)
            continue
        assert not word.startswith("-"), f"unknown option {word} of {module}"
        assert "<" not in word, f"{word}: a placeholder where an override must compose"
        overrides.append(word)
    return overrides


def _jobs(overrides: list[str]) -> list[list[str]]:
    """Every job of a ``-m`` sweep; above :data:`MOST_JOBS`, the first job and each other
    level of each factor once (what the first job holds of the other factors)."""
    axes = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_interval_sweep():  # a search range: both of its ends compose
            key, interval = override.get_key_element(), override.value()
            axes.append([f"{key}={end:g}" for end in (interval.start, interval.end)])
        elif override.is_sweep_override():
            key = override.get_key_element()
            axes.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            axes.append([override.input_line])
    if math.prod(len(axis) for axis in axes) <= MOST_JOBS:
        return [list(job) for job in itertools.product(*axes)]
    first = [axis[0] for axis in axes]
    others = [first[:i] + [v] + first[i + 1 :] for i, axis in enumerate(axes) for v in axis[1:]]
    return [first, *others]


@pytest.mark.parametrize(
    ("page", "module", "arguments"),
    JOB_COMMANDS,
    ids=[f"{page}:{' '.join(arguments)}" for page, _, arguments in JOB_COMMANDS],
)
def test_every_job_command_shown_composes_into_a_valid_config(tmp_path, page, module, arguments):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for job in _jobs(_overrides(module, arguments)):
            cfg = compose(config_name="config", overrides=job)
            with open_dict(cfg):
                cfg.paths.output_dir = str(tmp_path / "job")
                cfg.paths.cache_dir = str(tmp_path / "cache")
            assert unknown_keys(cfg, Config) == [], job
            assert isinstance(OmegaConf.to_object(cfg), Config), job


def test_the_job_commands_are_found():
    """The extraction sees the README's mission sweep (a guard on the test itself)."""
    readme = [args for page, module, args in JOB_COMMANDS if page == "README.md"]
    assert ["-m", "prune=0.3,0.5,0.7", "quant=fp32,int8", "hydra.sweep.dir=multirun/demo"] in readme


# The option table of docs/methods.md:
# | group | option | YAML | config | handler | where the work is |


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def _option_table() -> dict[tuple[str, str], dict[str, str]]:
    """(group, option) -> its YAML, config and handler cells."""
    rows = {}
    for line in METHODS.read_text().splitlines():
        cells = _cells(line) if line.startswith("|") else []
        if len(cells) != 6 or cells[0] in ("group", "---"):
            continue
        group, option = (cell.strip("`") for cell in cells[:2])
        rows[group, option] = dict(zip(("yaml", "config", "handler"), cells[2:5], strict=True))
    return rows


TABLE = _option_table()
YAML_OPTIONS = sorted(
    (path.parent.name, path.stem)
    for path in CONF_DIR.glob("*/*.yaml")
    if path.parent.name not in ("experiment", "hydra")
)


def _repository_paths(cell: str) -> list[str]:
    """The files a cell of the option table links, relative to the repository."""
    return [str(_target(METHODS, link).relative_to(ROOT)) for link in LINK.findall(cell)]


def _mentions(path: str, name: str) -> bool:
    return re.search(rf"\b{name}\b", (ROOT / path).read_text()) is not None


def test_the_option_table_lists_every_option_and_nothing_else():
    assert sorted(TABLE) == YAML_OPTIONS
    assert {(g, o) for g, options in SCHEMAS.items() for o in options} <= set(TABLE)


@pytest.mark.parametrize(
    ("group", "option"), YAML_OPTIONS, ids=[f"{g}={o}" for g, o in YAML_OPTIONS]
)
def test_each_option_links_its_yaml_config_and_handler(group: str, option: str):
    row = TABLE[group, option]
    assert _repository_paths(row["yaml"]) == [f"compress/conf/{group}/{option}.yaml"]
    handlers = _repository_paths(row["handler"])
    assert handlers and all(p.endswith(".py") and p.startswith("compress/") for p in handlers)
    if group not in SCHEMAS:  # model: every option is a ModelConfig, no registry
        assert _repository_paths(row["config"]) == [f"compress/config/{group}.py"]
        return
    schema = schema_type(SCHEMAS[group][option])
    module = schema.__module__.replace(".", "/") + ".py"
    assert _repository_paths(row["config"]) == [module]
    assert f"`{schema.__name__}`" in row["config"]
    # The handler files name the dataclass they handle (its registration, or its check).
    assert [p for p in handlers if not _mentions(p, schema.__name__)] == [], schema.__name__


def _backend_package(backend: str) -> str:
    return str(Path(_repository_paths(TABLE["backend", backend]["handler"])[0]).parent)


@pytest.mark.parametrize("option", sorted(SCHEMAS["quant"]))
def test_a_level_links_the_handler_of_every_backend_that_runs_it_and_no_other(option: str):
    level = schema_type(SCHEMAS["quant"][option])
    handlers = _repository_paths(TABLE["quant", option]["handler"])
    for backend, schema in SCHEMAS["backend"].items():
        package = _backend_package(backend)
        linked = [p for p in handlers if p.startswith(package + "/")]
        if level in schema_type(schema).SUPPORTED:
            assert linked and all(_mentions(p, level.__name__) for p in linked), backend
        else:
            assert linked == [], backend
