"""Class answers (budget.annotation=classes): a click per class a unit holds, and the partial
labels the network learns from them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_dominant import entropy_superpixel_run, hand_made_pool

from alseg.data.base import IGNORE_INDEX
from alseg.errors import AlsegError
from alseg.experiment import Experiment
from alseg.labels.ledger import CostLedger
from alseg.labels.oracle import Oracle
from alseg.labels.state import CLASS_SET_BASE, LabelState, candidate_mask, class_set_code
from alseg.model.losses import PartialLabelCrossEntropy
from alseg.regions.boxes import Grid


@pytest.mark.parametrize("share", [0.0, 0.1])
def test_class_answers_by_hand_pay_a_click_per_class_and_are_never_wrong(share: float) -> None:
    pool, truth = hand_made_pool()
    oracle = Oracle(pool, LabelState(Grid(2, 2).maps(pool), (16, 16)), CostLedger(), "classes", share)
    costs = [oracle.reveal([(0, r)], cycle=0)["clicks"] for r in range(4)]
    # top-left {0}; top-right {0, 2}; bottom-left {3} (void pixels add no class); bottom-right
    # {1, 4} with its 6-pixel speck of class 4 (6 of 64 pixels: left out at share 0.1)
    speck = share == 0.0
    assert costs == [1, 2, 1, 2 if speck else 1]
    given = oracle.training_target(0).numpy()
    assert (given[:8, :8] == 0).all() and (given[8:, :8] == 3).all()
    assert (given[:8, 8:] == CLASS_SET_BASE + (1 << 0 | 1 << 2)).all()
    assert (given[8:, 8:] == (CLASS_SET_BASE + (1 << 1 | 1 << 4) if speck else 1)).all()
    known = truth != IGNORE_INDEX
    wrong = 0 if speck else 6  # the speck, labelled 1 when left out of the answer
    assert oracle.wrong_label_share() == pytest.approx(wrong / known.sum())


def test_class_set_codes_and_their_candidates() -> None:
    assert class_set_code(np.array([3])) == 3 and class_set_code(np.array([], dtype=np.int64)) == IGNORE_INDEX
    code = class_set_code(np.array([4, 1, 4]))
    targets = torch.tensor([[[2, IGNORE_INDEX, code]]])
    allowed = candidate_mask(targets, 5)[0, :, 0, :].T
    assert allowed.tolist() == [
        [False, False, True, False, False],
        [False] * 5,
        [False, True, False, False, True],
    ]


def test_partial_label_loss_is_cross_entropy_on_classes_and_merges_the_classes_of_a_set() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 3, 4)
    targets = torch.randint(0, 5, (2, 3, 4))
    targets[0, 0, 0] = IGNORE_INDEX
    loss = PartialLabelCrossEntropy()
    assert torch.allclose(loss(logits, targets), F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX))
    targets[1, 2, 3] = class_set_code(np.array([0, 3]))
    probs = logits.softmax(dim=1)
    per_pixel = -torch.log(probs.gather(1, targets.clamp(max=4).unsqueeze(1))[:, 0])
    per_pixel[1, 2, 3] = -torch.log(probs[1, 0, 2, 3] + probs[1, 3, 2, 3])
    assert torch.allclose(loss(logits, targets), per_pixel.flatten()[1:].mean())
    assert loss(logits, torch.full_like(targets, IGNORE_INDEX)) == 0  # nothing labelled, no NaN
    plain = torch.randint(0, 5, (2, 3, 4))
    smoothed = F.cross_entropy(logits, plain, label_smoothing=0.1)
    assert torch.allclose(PartialLabelCrossEntropy(label_smoothing=0.1)(logits, plain), smoothed)
    with pytest.raises(AlsegError, match="ignore_index must be 255"):
        PartialLabelCrossEntropy(ignore_index=-100)


def test_the_loss_resolves_a_class_set_towards_what_the_pixels_show() -> None:
    """Two-class sets over half-red, half-blue images: trained on the sets alone (and one image of
    each colour labelled precisely), the network labels each colour with its own class."""
    torch.manual_seed(0)
    images = torch.zeros(8, 3, 4, 4)
    images[:, 0, :, :2] = 1  # red left half: class 1
    images[:, 2, :, 2:] = 1  # blue right half: class 2
    truth = torch.ones(8, 4, 4, dtype=torch.long)
    truth[:, :, 2:] = 2
    targets = torch.full_like(truth, class_set_code(np.array([1, 2])))
    targets[0] = truth[0]
    network = torch.nn.Conv2d(3, 3, 1)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.5)
    loss = PartialLabelCrossEntropy()
    for _ in range(200):
        optimizer.zero_grad()
        loss(network(images), targets).backward()
        optimizer.step()
    assert torch.equal(network(images).argmax(dim=1), truth)


def test_class_answer_runs_pay_a_click_per_class_of_each_labelled_region(make_cfg, tmp_path) -> None:
    experiment, rows, paid = entropy_superpixel_run(make_cfg, tmp_path, "budget.annotation=classes")
    state = experiment.state
    for clicks, new in paid:
        assert clicks == state.clicks[new].sum() >= new.sum() > 0
    assert (state.clicks[state.labelled] > 1).any()  # some superpixel holds several classes
    assert all(row["wrong_label_share"] == 0 for row in rows)


def test_class_answers_with_torch_cross_entropy_stop_with_one_clear_error(make_cfg, tmp_path) -> None:
    cfg = make_cfg(
        "debug=tiny", "regions=superpixels", "budget.annotation=classes",
        "train.loss._target_=torch.nn.CrossEntropyLoss",
    )  # fmt: skip
    with pytest.raises(AlsegError, match="PartialLabelCrossEntropy"):
        Experiment(cfg, tmp_path)
