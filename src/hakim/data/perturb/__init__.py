"""Synthetic claims made from a corpus's own documents (`prepare_data.py augment=perturb`).

Rules (hakim.data.perturb.rules) turn passage sentences into consistent claims and into inconsistent ones that
differ by one edit; with a teacher configured, the teacher writes claims too (hakim.data.perturb.written). The
stage (hakim.data.perturb.stage) puts every synthetic row in its document's split and names its rule in
`extra["synthetic"]`.
"""

from hakim.data.records import JudgeRecord

SYNTHETIC = "synthetic"  # the key in a synthetic row's `extra` naming its rule and what it came from


def is_synthetic(record: JudgeRecord) -> bool:
    return SYNTHETIC in record.extra
