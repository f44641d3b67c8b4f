"""Region maps: one interface for whole images, grid cells, windows and superpixels."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alseg.clicks import Annotation, polygon_clicks
from alseg.data.synthetic import synthetic_splits
from alseg.errors import AlsegError
from alseg.regions.boxes import BoxMap, Grid, SlidingWindows, WholeImage
from alseg.regions.superpixels import SegmentMap, Superpixels, segment_reduce

KINDS = {
    "image": WholeImage(),
    "grid": Grid(3, 2),
    "windows": SlidingWindows(16, 8),
    "superpixels": Superpixels(segments=30),
}


@pytest.fixture(scope="module")
def pool():
    return synthetic_splits(train=6, val=1, test=1, size=32, seed=2).train


def numpy_reduction(values: np.ndarray, reduction: str) -> float:
    ordered = np.sort(values)[::-1]
    return {"mean": ordered.mean(), "max": ordered[0], "top10": ordered[: max(1, len(ordered) // 10)].mean()}[
        reduction
    ]


@pytest.mark.parametrize("kind", list(KINDS))
class TestRegionMapContract:
    def test_masks_boxes_and_areas_agree(self, pool, kind: str) -> None:
        maps = KINDS[kind].maps(pool)
        assert len(maps) == len(pool) and maps.exists.sum() == maps.counts.sum()
        for image in range(len(pool)):
            region_map = maps[image]
            assert region_map.size == pool.image_size and region_map.count == maps.counts[image]
            for region in range(region_map.count):
                mask = region_map.mask(np.array([region]))
                ys, xs = np.nonzero(mask)
                y0, x0, y1, x1 = region_map.boxes[region]
                assert (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1) == (y0, x0, y1, x1)
                assert mask.sum() == region_map.areas[region]
            whole = region_map.mask(np.arange(region_map.count))
            assert whole.all(), "the regions cover the image"

    @pytest.mark.parametrize("reduction", ["mean", "max", "top10"])
    def test_reductions_equal_a_numpy_reference(self, pool, kind: str, reduction: str) -> None:
        region_map = KINDS[kind].maps(pool)[1]
        pixels = torch.from_numpy(np.random.default_rng(0).random((2, *pool.image_size)))
        out = region_map.reduce(pixels, reduction).numpy()
        assert out.shape == (2, region_map.count)
        for b in range(2):
            for region in range(region_map.count):
                values = pixels[b].numpy()[region_map.mask(np.array([region]))]
                assert out[b, region] == pytest.approx(numpy_reduction(values, reduction))

    def test_overlap_is_one_on_the_diagonal_and_symmetric(self, pool, kind: str) -> None:
        overlap = KINDS[kind].maps(pool)[0].overlap()
        np.testing.assert_allclose(np.diag(overlap), 1.0)
        np.testing.assert_allclose(overlap, overlap.T)

    def test_region_clicks_cover_every_object_once_inside_one_region(self, pool, kind: str) -> None:
        """A small square inside one region costs its 4 corners there and nothing elsewhere."""
        region_map = KINDS[kind].maps(pool)[0]
        square = np.array([[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0]])  # near the top-left corner
        drawn = Annotation(pool.image_size, [(1, square)], lambda: None, (0,))
        clicks = region_map.clicks(drawn, np.arange(region_map.count))
        holding = [r for r in range(region_map.count) if region_map.mask(np.array([r]))[1:3, 1:3].all()]
        assert holding, "some region holds the square"
        assert all(clicks[r] == 4 for r in holding)
        assert clicks.sum() == 4 * len(holding)


def test_a_superpixel_map_is_a_partition_into_connected_regions(pool) -> None:
    from scipy.ndimage import label

    maps = Superpixels(segments=40).maps(pool)
    for image in range(len(pool)):
        ids = maps[image].ids
        assert ids.shape == pool.image_size and ids.min() == 0
        assert set(np.unique(ids).tolist()) == set(range(maps.counts[image]))  # numbered 0 .. count - 1
        for region in range(maps.counts[image]):
            assert label(ids == region)[1] == 1, "every superpixel is connected"
    assert 20 <= maps.counts.mean() <= 60  # about the asked-for number of segments


def test_superpixels_are_computed_once_and_cached_with_the_images(pool, monkeypatch) -> None:
    kind = Superpixels(segments=25)
    calls = []
    segment = kind.segment
    monkeypatch.setattr(kind, "segment", lambda image: calls.append(1) or segment(image))
    first = kind.maps(pool)
    second = kind.maps(pool)
    np.testing.assert_array_equal(first[3].ids, second[3].ids)
    assert len(calls) == len(pool)  # the second pool's maps came from the cache


def test_superpixels_on_disk_share_the_image_cache(tmp_path: Path) -> None:
    from PIL import Image

    from alseg.data.files import LabelledFiles, label_lookup

    rng = np.random.default_rng(0)
    pairs = []
    for i in range(2):
        image, label = tmp_path / f"{i}.png", tmp_path / f"{i}_label.png"
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(image)
        Image.fromarray(rng.integers(0, 2, (24, 32), dtype=np.uint8)).save(label)
        pairs.append((image, label))
    files = lambda: LabelledFiles(  # noqa: E731
        pairs, ("a", "b"), (24, 32), label_lookup({0: 0, 1: 1}), cache_dir=tmp_path / "cache"
    )
    maps = Superpixels(segments=12).maps(files())
    entries = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(entries) == 4 and sum(".slic-12-10-1.npz" in name for name in entries) == 2
    again = Superpixels(segments=12).maps(files())  # a new process: read back, not recomputed
    np.testing.assert_array_equal(maps[1].ids, again[1].ids)


@pytest.mark.parametrize("reduction", ["mean", "max", "top10"])
def test_segment_reduce_on_an_irregular_map_by_hand(reduction: str) -> None:
    segments = torch.tensor([0, 0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    values = torch.arange(len(segments), dtype=torch.float64)[None]
    out = segment_reduce(values, segments, 3, reduction)[0].tolist()
    expected = {
        "mean": [0.5, 2.0, float(np.mean(range(3, 23)))],
        "max": [1.0, 2.0, 22.0],
        "top10": [1.0, 2.0, 21.5],  # 20 pixels: the mean of the top 2
    }
    assert out == pytest.approx(expected[reduction])


@settings(max_examples=25, deadline=None)
@given(
    st.integers(3, 8),
    st.floats(15, 40),
    st.floats(0, 2 * np.pi),
    st.floats(40, 60),
    st.floats(40, 60),
)
def test_superpixel_clicks_of_a_convex_object_add_up_to_its_corners_plus_the_cuts(
    sides: int, radius: float, turn: float, cx: float, cy: float
) -> None:
    """Cut by a partition, a convex polygon costs its own corners, plus the points where the
    region borders cross its outline, plus the region corners inside it: clipped to a 2x2
    block map, exactly as clip_polygon prices the same cells as boxes."""
    angles = turn + 2 * np.pi * np.arange(sides) / sides
    convex = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)
    ids = np.zeros((100, 100), dtype=np.int16)
    ids[:50, 50:], ids[50:, :50], ids[50:, 50:] = 1, 2, 3
    drawn = Annotation((100, 100), [(1, convex)], lambda: None, (0,))
    as_segments = SegmentMap(ids).clicks(drawn, np.arange(4))
    cells = Grid(2, 2).boxes(100, 100)
    assert as_segments.tolist() == polygon_clicks([(1, convex)], cells).tolist()
    assert as_segments.sum() >= sides


def test_superpixel_clicks_are_counted_on_the_image_as_annotated() -> None:
    """The same map at 1/4 scale prices an object drawn at full size like the full-size map."""
    ids = np.zeros((20, 20), dtype=np.int16)
    ids[:, 10:] = 1
    big = np.kron(ids, np.ones((4, 4), dtype=np.int16))
    triangle = Annotation((80, 80), [(1, np.array([[10.0, 10.0], [70.0, 12.0], [30.0, 60.0]]))], None, (0,))
    small = SegmentMap(ids).clicks(triangle, np.arange(2))
    full = SegmentMap(big).clicks(triangle, np.arange(2))
    assert small.tolist() == full.tolist() == [4, 3]  # left: 2 corners + 2 crossings; right: 1 + 2


def test_superpixel_clicks_of_a_label_map_are_the_contour_estimate_within_each_region() -> None:
    """Without polygons, each region's part of the label map is outlined on its own: a
    rectangle split by a region border costs 4 corners on each side."""
    ids = np.zeros((10, 10), dtype=np.int16)
    ids[:, 5:] = 1
    target = np.zeros((40, 40), dtype=np.uint8)  # annotated at 4x the map's resolution
    target[8:32, 4:36] = 2
    drawn = Annotation((40, 40), None, lambda: target, (0,))
    assert SegmentMap(ids).clicks(drawn, np.arange(2)).tolist() == [4, 4]
    whole = SegmentMap(np.zeros((10, 10), dtype=np.int16)).clicks(drawn, np.arange(1))
    assert whole.tolist() == [4]


def test_region_kinds_refuse_bad_settings() -> None:
    with pytest.raises(AlsegError, match=r"regions\.segments"):
        Superpixels(segments=0)
    with pytest.raises(AlsegError, match="does not fit"):
        Grid(10, 10).boxes(4, 4)
    with pytest.raises(AlsegError, match=r"regions\.size"):
        SlidingWindows(100, 10).boxes(40, 64)


def test_box_map_areas_and_masks() -> None:
    region_map = BoxMap(np.array([[0, 0, 2, 3], [1, 1, 4, 4]]), (4, 4))
    assert region_map.areas.tolist() == [6, 9]
    assert region_map.mask(np.array([0, 1])).sum() == 6 + 9 - 2  # they share 2 pixels


def test_no_strategy_imports_the_scorer() -> None:
    """Strategies get everything from the one acquisition pass and its context."""
    for path in (Path(__file__).resolve().parents[1] / "alseg" / "strategies").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        } | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert "alseg.acquisition.scoring" not in imported, path.name
        assert not any(name.startswith("torch.utils.data") for name in imported), path.name
