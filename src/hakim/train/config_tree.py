"""The composed config as a tree on the console, so a run's log opens with exactly what it trains."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.syntax import Syntax
from rich.tree import Tree

# the groups a reader looks for first; the rest follow in the config's own order
FIRST = ("model", "style", "data", "lora", "optim", "module", "trainer")


def print_config_tree(cfg: DictConfig, console: Console | None = None) -> Tree:
    tree = Tree("config", guide_style="dim")
    keys = [key for key in FIRST if key in cfg] + [key for key in cfg if key not in FIRST]
    for key in keys:
        value = cfg[key]
        if isinstance(value, DictConfig):
            yaml = OmegaConf.to_yaml(value, resolve=True).rstrip("\n")
            tree.add(f"[bold]{key}[/bold]").add(Syntax(yaml, "yaml", background_color="default"))
        else:
            tree.add(f"[bold]{key}[/bold]: {value}")
    (console or Console()).print(tree)
    return tree
