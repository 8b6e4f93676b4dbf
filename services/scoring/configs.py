"""Loading the scoring configurations (YAML files; the validation is in the domain modules): the versioned
Decision 766 tables, the survey aggregators, the PAR criteria trees and the plan-target mapping."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.scoring.domain.config import D766Config, parse_config
from services.scoring.domain.indicators import SPECS
from services.scoring.domain.par import ParTree
from services.scoring.domain.surveys import Aggregator
from services.scoring.domain.targets import TargetMap

__all__ = [
    "DEFAULT_VERSION",
    "SHIPPED_DIR",
    "load_aggregators",
    "load_configs",
    "load_par_trees",
    "load_target_map",
]

#: the shipped configurations: the 2026 DVCQG table (default) and the older TD allocation
SHIPPED_DIR = Path(__file__).resolve().parent / "config"
DEFAULT_VERSION = "d766-m766-2026.1"


def load_configs(directory: Path | None = None) -> dict[str, D766Config]:
    """Every ``*.yaml`` of ``directory`` (the shipped ones by default), by version; duplicates are refused."""
    configs: dict[str, D766Config] = {}
    for path in sorted((directory or SHIPPED_DIR).glob("*.yaml")):
        config = parse_config(yaml.safe_load(path.read_text(encoding="utf-8")), frozenset(SPECS))
        if config.version in configs:
            msg = f"{path}: version {config.version!r} is defined twice"
            raise ValueError(msg)
        configs[config.version] = config
    return configs


def load_aggregators(directory: Path | None = None) -> dict[tuple[str, str], Aggregator]:
    """The survey aggregators (``config/surveys/*.yaml``) by (instrument id, version); duplicates are refused."""
    out: dict[tuple[str, str], Aggregator] = {}
    for path in sorted((directory or SHIPPED_DIR / "surveys").glob("*.yaml")):
        agg = Aggregator.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        if agg.ref in out:
            msg = f"{path}: aggregator {agg.ref} is defined twice"
            raise ValueError(msg)
        out[agg.ref] = agg
    return out


def load_par_trees(directory: Path | None = None) -> dict[tuple[str, int], ParTree]:
    """The PAR criteria trees (``config/par/*.yaml``) by (province, year); one tree per province and year."""
    out: dict[tuple[str, int], ParTree] = {}
    for path in sorted((directory or SHIPPED_DIR / "par").glob("*.yaml")):
        tree = ParTree.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        if (tree.province, tree.year) in out:
            msg = f"{path}: a tree for province {tree.province} and {tree.year} is defined twice"
            raise ValueError(msg)
        out[(tree.province, tree.year)] = tree
    return out


def load_target_map(path: Path | None = None) -> TargetMap:
    """The plan indicator id -> scoring indicator mapping (``config/targets/plan-indicators.yaml``)."""
    file = path or SHIPPED_DIR / "targets" / "plan-indicators.yaml"
    return TargetMap.model_validate(yaml.safe_load(file.read_text(encoding="utf-8")))
