"""A search space written as Hydra sweeps (`lora.r: choice(8, 16)`) as Optuna distributions, and a trial's
values back as the command-line overrides of its job.

| written                          | searched as                                  |
|----------------------------------|----------------------------------------------|
| `choice(a, b, c)` or `a,b,c`     | one of the values (categorical)              |
| `interval(low, high)`            | a float, uniform in [low, high]              |
| `tag(log, interval(low, high))`  | a float, log-uniform                         |
| `range(start, stop, step)`       | an integer start, start+step, … below stop   |
| a plain value                    | fixed: every trial gets it                   |
"""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.errors import HydraException
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution


@dataclass(frozen=True)
class SearchSpace:
    distributions: dict[str, BaseDistribution]  # override key (with its +/++ prefix) -> what the sampler draws from
    fixed: list[str]  # overrides every trial gets as written


def _distribution(override: Override) -> BaseDistribution:
    sweep, key = override.value(), override.key_or_group
    unknown_tags = sweep.tags - {"log"}
    if unknown_tags:
        raise ValueError(f"{key}: unknown tag {', '.join(sorted(unknown_tags))}; the search knows only tag(log, ...)")
    log = "log" in sweep.tags
    if isinstance(sweep, ChoiceSweep):
        if log:
            raise ValueError(f"{key}: tag(log, ...) needs an interval or a range, not a choice")
        if any(isinstance(value, (list, dict)) for value in sweep.list):
            raise ValueError(f"{key}: a choice of lists or dicts cannot be searched; choose among plain values")
        return CategoricalDistribution(sweep.list)
    if isinstance(sweep, IntervalSweep):
        return FloatDistribution(sweep.start, sweep.end, log=log)
    if isinstance(sweep, RangeSweep):
        if not all(isinstance(value, int) for value in (sweep.start, sweep.stop, sweep.step)):
            raise ValueError(f"{key}: range() of floats cannot be searched; use interval(low, high) or choice(...)")
        values = list(range(sweep.start, sweep.stop, sweep.step))
        if not values:
            raise ValueError(f"{key}: range({sweep.start}, {sweep.stop}, {sweep.step}) holds no value")
        return IntDistribution(min(values), max(values), log=log, step=abs(sweep.step))
    raise ValueError(f"{key}: {override.input_line} is no sweep the search knows (choice, interval, range)")


def search_space(params: dict, arguments: list[str]) -> SearchSpace:
    """The config's `params` with the command line's overrides over them: a sweep there (`lora.r=choice(4,8)`)
    is searched, replacing the config's; a plain value is fixed for every trial (and no longer searched)."""
    parser = OverridesParser.create()
    config = parser.parse_overrides([f"{key}={value}" for key, value in params.items()])
    command_line = parser.parse_overrides(list(arguments))
    given = {override.key_or_group for override in command_line}
    distributions, fixed = {}, []
    for override in [o for o in config if o.key_or_group not in given] + command_line:
        if override.is_sweep_override():
            distributions[override.get_key_element()] = _distribution(override)
        else:
            fixed.append(override.input_line)
    return SearchSpace(distributions, fixed)


def _hydra_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    try:
        if OverridesParser.create().parse_override(f"key={value}").value() == value:
            return value
    except HydraException:  # not parsable unquoted
        pass
    # quoted, or "1e-4", "true" and "a,b" would come back as a number, a bool or a sweep
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def trial_overrides(params: dict, fixed: list[str]) -> list[str]:
    """The overrides of one trial's job: its drawn values, then the fixed ones."""
    return [f"{key}={_hydra_value(value)}" for key, value in params.items()] + list(fixed)
