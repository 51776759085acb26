"""Command-line spellings Hydra would refuse but users have in their scripts and notes."""

from __future__ import annotations


def accept_plus_for_declared_groups(argv: list[str], groups: tuple[str, ...]) -> list[str]:
    """`+experiment=v3` was how a recipe was chosen before conf/train.yaml declared `experiment: null`;
    Hydra now refuses to add a group that is already declared, so the `+` is dropped for those groups."""
    return [
        argument[1:] if argument.startswith("+") and argument[1:].split("=", 1)[0] in groups else argument
        for argument in argv
    ]
