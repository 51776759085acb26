"""Hakim's Optuna sweeper for Hydra (conf/hydra/sweeper/hakim_optuna.yaml); the search itself is hakim.search."""
