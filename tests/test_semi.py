"""train/semi: learning from the unlabelled pixels too. The unlabelled term acts only where no
label is, its targets move with CutMix's pixels, `none` is today's supervised training exactly,
and runs with it resume and take people's answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from alseg.experiment import Experiment, label_run
from alseg.labels.human import pending_cycle, query_dir
from alseg.model.semi import MeanTeacher, SemiSupervision, strong_view, unlabelled_loss

PINNED = Path(__file__).parent / "data" / "supervised_curves.json"
PLAIN = SemiSupervision(threshold=0.6, jitter=0.0, cutmix=False)


class FixedLogits(nn.Module):
    """A 'network' whose logits are its parameters, whatever the images: gradients per pixel."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits.clone())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits


@pytest.mark.parametrize("case", sorted(json.loads(PINNED.read_text())))
def test_semi_none_trains_exactly_as_before_it_existed(make_cfg, tmp_path, case: str) -> None:
    pinned = json.loads(PINNED.read_text())[case]  # recorded before train.semi was added
    rows = Experiment(make_cfg(*pinned["overrides"], "train/semi=none"), tmp_path).run()
    for row, before in zip(rows, pinned["rows"], strict=True):
        for key, value in before.items():
            assert row[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (case, row["cycle"], key)


def test_the_unlabelled_loss_never_reaches_a_labelled_pixel() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    teacher_logits = torch.zeros(2, 3, 8, 8)
    teacher_logits[:, 1] = 5.0  # confident: class 1 everywhere
    known = torch.zeros(2, 8, 8, dtype=torch.bool)
    known[0, :4] = True  # the top half of image 0 is labelled
    student = FixedLogits(logits)
    teacher = MeanTeacher(FixedLogits(teacher_logits))
    loss = unlabelled_loss(student, teacher, torch.zeros(2, 3, 8, 8), known, PLAIN)
    loss.backward()
    moved = student.logits.grad.abs().sum(dim=1) > 0  # (B, H, W): pixels the loss pulls on
    assert torch.equal(moved, ~known)  # every unlabelled pixel, no labelled one
    # pulled toward the teacher's class: a step lowers the student's cross-entropy there
    with torch.no_grad():
        after = student.logits - 1.0 * student.logits.grad
    target = torch.ones(2, 8, 8, dtype=torch.long)
    before_ce = nn.functional.cross_entropy(logits, target, reduction="none")[~known]
    after_ce = nn.functional.cross_entropy(after, target, reduction="none")[~known]
    assert (after_ce < before_ce).all()


def test_unconfident_teacher_pixels_are_no_targets() -> None:
    teacher = MeanTeacher(FixedLogits(torch.zeros(1, 3, 4, 4)))  # uniform: confidence 1/3
    student = FixedLogits(torch.randn(1, 3, 4, 4))
    loss = unlabelled_loss(
        student, teacher, torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.bool), PLAIN
    )
    assert loss.item() == 0.0


def test_cutmix_moves_the_targets_and_their_mask_with_the_pixels() -> None:
    torch.manual_seed(1)
    images = torch.stack([torch.full((3, 16, 16), 1.0), torch.full((3, 16, 16), 2.0)])
    targets = torch.stack([torch.zeros(16, 16, dtype=torch.long), torch.ones(16, 16, dtype=torch.long)])
    keep = torch.stack([torch.zeros(16, 16, dtype=torch.bool), torch.ones(16, 16, dtype=torch.bool)])
    view, mixed_targets, mixed_keep = strong_view(images, targets, keep, SemiSupervision(jitter=0.0))
    from_second = view[:, 0] == 2.0  # each pixel says which image it came from
    assert from_second.any() and (~from_second).any()
    assert torch.equal(mixed_targets == 1, from_second) and torch.equal(mixed_keep, from_second)


def test_the_teacher_follows_the_student() -> None:
    student = nn.Linear(2, 2)
    teacher = MeanTeacher(student)
    with torch.no_grad():
        student.weight.add_(1.0)
    before = teacher.network.weight.clone()
    teacher.follow(student, decay=0.75)
    np.testing.assert_allclose(
        teacher.network.weight, 0.75 * before + 0.25 * student.weight.detach(), rtol=1e-6
    )


def test_a_semi_supervised_run_resumes_exactly(make_cfg, tmp_path) -> None:
    cfg = make_cfg("debug=tiny", "regions=superpixels", "train/semi=ema_teacher", "train.semi.threshold=0.5")
    rows = Experiment(cfg, tmp_path).run()
    (tmp_path / "state" / "cycle_002.json").unlink()  # as if killed before cycle 2 was committed
    resumed = Experiment(cfg, tmp_path).run()
    assert [untimed(row) for row in resumed] == [untimed(row) for row in rows]


def untimed(row: dict) -> dict:
    return {key: value for key, value in row.items() if not key.endswith("_seconds")}


def test_people_answer_a_semi_supervised_run(make_cfg, tmp_path) -> None:
    from test_human import RUN, label_studio_export

    cfg = make_cfg(*RUN, "oracle=human", "train/semi=ema_teacher", "train.semi.threshold=0.5")
    Experiment(cfg, tmp_path).run()
    assert pending_cycle(tmp_path) == 1
    label_run(tmp_path, label_studio_export(Experiment(cfg, tmp_path), query_dir(tmp_path, 1)))
    rows = Experiment(cfg, tmp_path).run()
    assert len(rows) == 2 and rows[1]["cost_images"] > rows[0]["cost_images"]


def brightness_task() -> tuple[torch.Tensor, ...]:
    """Pixels of one brightness each: class 0 in [0, 0.3], class 1 in [0.4, 1] (the gap is the
    true boundary); three labelled pixels of each class at the extremes, so that labels alone put
    the boundary near 0.5, through class 1."""
    g = torch.Generator().manual_seed(0)
    pixels = torch.cat([torch.rand(600, generator=g) * 0.3, 0.4 + torch.rand(600, generator=g) * 0.6])
    labelled = torch.cat([torch.rand(3, generator=g) * 0.05, 0.95 + torch.rand(3, generator=g) * 0.05])
    return pixels, (pixels > 0.35).long(), labelled, (labelled > 0.35).long()


def pixel_accuracy(with_unlabelled: bool, steps: int = 600) -> float:
    """Train a per-pixel linear classifier on the labelled pixels (and the unlabelled ones)."""

    def image(values: torch.Tensor) -> torch.Tensor:  # (N,) -> (1, 3, 1, N)
        return values.view(1, 1, 1, -1).expand(1, 3, 1, -1).contiguous()

    torch.manual_seed(0)
    pixels, truth, labelled, labels = brightness_task()
    network = nn.Conv2d(3, 2, 1)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.5)
    semi = SemiSupervision(threshold=0.7, weight=1.0, ema_decay=0.9, jitter=0.0, cutmix=False)
    teacher = MeanTeacher(network)
    nothing_known = torch.zeros(1, 1, len(pixels), dtype=torch.bool)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(network(image(labelled)), labels.view(1, 1, -1))
        if with_unlabelled:
            loss = loss + unlabelled_loss(network, teacher, image(pixels), nothing_known, semi)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        teacher.follow(network, semi.ema_decay)
    return float((network(image(pixels)).argmax(dim=1).view(-1) == truth).float().mean())


def test_confident_unlabelled_pixels_move_a_wrong_boundary_into_the_gap() -> None:
    alone, together = pixel_accuracy(False), pixel_accuracy(True)
    assert alone < 0.95  # labels alone leave part of class 1 on the wrong side
    assert together > 0.99  # the unlabelled pixels pull the boundary into the empty gap
