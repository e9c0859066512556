"""The map of the image: a squarified treemap whose areas are the components' bytes."""

from __future__ import annotations

import itertools

import pytest

from portscan.model import Target
from portscan.report import treemap
from tests import reportfixtures as rf


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> rf.Scans:
    return rf.fixture_scans(tmp_path_factory)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0)


def test_squarify_fills_the_box_in_proportion_without_overlap() -> None:
    weights = [500, 300, 120, 60, 10, 6, 3, 1]
    boxes = treemap.squarify(weights, 10, 20, 300, 200)
    total = sum(weights)
    for weight, (x, y, w, h) in zip(weights, boxes, strict=True):
        assert w * h == pytest.approx(300 * 200 * weight / total)
        assert x >= 10 - 1e-6 and x + w <= 310 + 1e-6 and y >= 20 - 1e-6 and y + h <= 220 + 1e-6
    assert all(_overlap(a, b) < 1e-6 for a, b in itertools.combinations(boxes, 2))
    # squarified: the largest rectangle is not a sliver
    x, y, w, h = boxes[0]
    assert max(w / h, h / w) < 3


def test_the_map_sizes_components_by_bytes_and_links_them(scans: rf.Scans) -> None:
    result = scans.new
    sizes = {f.path: f.size for f in result.files}
    groups = treemap.layout(result)
    cells = [cell for _, _, layer_cells in groups for cell in layer_cells]
    judged = [c for c in result.components if c.kind != "package"]
    assert sorted(c.component.path for c in cells if c.component) == sorted(c.path for c in judged)
    # within a layer, area follows bytes
    layer = next(cells for _, _, cells in groups if len(cells) >= 2)
    a, b = layer[0], layer[-1]
    assert a.component and b.component
    expected = max(sizes[a.component.path], 1) / max(sizes[b.component.path], 1)
    assert (a.w * a.h) / (b.w * b.h) == pytest.approx(expected, rel=0.01)
    hello = "/usr/bin/hello"
    svg = str(treemap.render(result, Target.WASIP1, lambda p: "#c-1" if p == hello else None))
    assert svg.count('href="#c-1"') == 1 and 'data-v-wasix="' in svg
    assert "<script" not in svg and 'alert("p")' not in svg  # names are escaped
