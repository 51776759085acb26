"""The hyperparameter search: a search space, its Optuna study, and the loop that runs trials as Hydra jobs."""
