"""Loading the versioned Decision 766 configurations (YAML files; the validation is in domain.config)."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.scoring.domain.config import D766Config, parse_config
from services.scoring.domain.indicators import SPECS

__all__ = ["DEFAULT_VERSION", "SHIPPED_DIR", "load_configs"]

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
