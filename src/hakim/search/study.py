"""A search's Optuna study, from both ends: the search opens (or continues) it, and each trial's job opens its
own trial in it to report validations and ask the pruner. Both read the same `hydra.sweeper` config, so the
study, its storage and its pruner are the same wherever the job runs (in the search's process or on SLURM)."""

from __future__ import annotations

import logging

import optuna
from hydra.utils import instantiate
from omegaconf import DictConfig

log = logging.getLogger(__name__)

OVERRIDES = "overrides"  # study user attribute: the command line's fixed overrides when the study began
RUN_DIR = "run_dir"  # trial user attribute, set by the trial's job: where its run directory is


def build_pruner(pruner: DictConfig | None) -> optuna.pruners.BasePruner:
    return instantiate(pruner) if pruner else optuna.pruners.NopPruner()


def build_sampler(sampler: DictConfig, trials_so_far: int) -> optuna.samplers.BaseSampler:
    """The configured sampler; one continuing a study draws from seed + its trial count, since drawing from the
    seed again would propose the trials the study already has."""
    if sampler.get("seed") is not None and trials_so_far:
        return instantiate(sampler, seed=sampler.seed + trials_so_far)
    return instantiate(sampler)


def open_study(settings: DictConfig, fixed_overrides: list[str]) -> optuna.Study:
    """Create the study (its first trials the enqueued ones), or load it when the storage already holds one of that
    name; a continued study must have been started in the same direction and with the same fixed overrides, or its
    trials would not compare."""
    if not settings.storage:
        raise ValueError(
            "hydra.sweeper.storage is null: trials report to the study through its storage; give a "
            "SQLAlchemy URL (the default is sqlite:///<sweep dir>/optuna.db)"
        )
    study = optuna.create_study(
        study_name=settings.study_name,
        storage=settings.storage,
        direction=settings.direction,
        pruner=build_pruner(settings.pruner),
        load_if_exists=True,
    )
    if study.direction.name.lower() != settings.direction:
        raise ValueError(
            f"study {settings.study_name} in {settings.storage} was started to {study.direction.name.lower()}"
            f", hydra.sweeper.direction is {settings.direction}: name a new study to change it"
        )
    started_with = study.user_attrs.get(OVERRIDES)
    if started_with is not None and started_with != list(fixed_overrides):
        raise ValueError(
            f"study {settings.study_name} in {settings.storage} was started with the overrides "
            f"{started_with or 'none'}, this command gives {list(fixed_overrides) or 'none'}: its trials "
            "would not compare. Give the same overrides to continue it, or name a new study "
            "(hydra.sweeper.study_name=...)"
        )
    trials = study.get_trials(deepcopy=False)
    if started_with is None:
        study.set_user_attr(OVERRIDES, list(fixed_overrides))
        for params in settings.enqueue or []:
            study.enqueue_trial(dict(params))
    else:
        log.info("continuing study %s (%s): %d trials so far", settings.study_name, settings.storage, len(trials))
    study.sampler = build_sampler(settings.sampler, len(trials))
    return study


def job_trial(settings: DictConfig, number: int) -> optuna.Trial:
    """Trial `number` of the search's study, as its job sees it: reports go to the storage, and the pruner
    compares them with the other trials stored there."""
    storage = optuna.storages.RDBStorage(settings.storage)
    study_id = storage.get_study_id_from_name(settings.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    study = optuna.load_study(study_name=settings.study_name, storage=storage, pruner=build_pruner(settings.pruner))
    return optuna.Trial(study, trial_id)
