"""The Hydra side of `python train.py -m hparams_search=...`: Hydra builds a sweeper only from a class under
`hydra_plugins`, and scans every module there whenever any Hakim entry point starts, so this one stays small and
imports Optuna only once a search runs (hakim.search.sweep.Search does the searching)."""

from __future__ import annotations

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


class OptunaSweeper(Sweeper):
    def __init__(self, **settings):
        # the sampler and pruner stay configs (`_recursive_: false`): the search builds them for the study it opens
        self.settings = OmegaConf.create(settings)
        self.config: DictConfig | None = None
        self.launcher = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]):
        from hakim.search.sweep import Search

        return Search(self.config, self.launcher.launch, self.validate_batch_is_legal, self.settings).run(arguments)
