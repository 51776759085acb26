"""Learning curves read validation points from a run's metrics and count examples, not steps."""

import yaml

from hakim.runs.learning_curve import plot_learning_curves, validation_points


def make_run(directory, rows, batch_size=8, accumulate=2):
    (directory / "csv").mkdir(parents=True)
    config = {"data": {"batch_size": batch_size}, "trainer": {"accumulate_grad_batches": accumulate}}
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    lines = ["epoch,step,train/loss,val/balanced_accuracy"] + [",".join(map(str, row)) for row in rows]
    (directory / "csv" / "metrics.csv").write_text("\n".join(lines) + "\n")
    return directory


def test_points_are_examples_seen_at_each_validation(tmp_path):
    run = make_run(tmp_path / "run", [(0, 4, 0.9, ""), (0, 9, "", 0.55), (0, 19, "", 0.61)])
    assert validation_points(run, "val/balanced_accuracy") == [(160, 0.55), (320, 0.61)]


def test_curve_is_a_png(tmp_path):
    run = make_run(tmp_path / "run", [(0, 9, "", 0.55), (0, 19, "", 0.61)])
    out = plot_learning_curves([run], tmp_path / "curve.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
