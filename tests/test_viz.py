"""Figures render headless, and what they draw is checked: the image data against the layout the masks
imply (band, global columns and rows), pooled values, counts of computed pairs."""

import numpy as np
import pytest

import ledref
from conftest import random_led, require
from ledref import viz


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    require("matplotlib")
    model = random_led(tmp_path_factory.mktemp("viz"), ledref.LEDModel, seed=4, attention_window=[4, 8])
    am = np.ones((2, 30), dtype=np.int64)
    am[1, 21:] = 0
    gm = np.zeros_like(am)
    gm[0, [0, 17]] = gm[1, 9] = 1
    out = model.encoder(np.arange(60).reshape(2, 30) % 57 + 3, attention_mask=am, global_attention_mask=gm,
                        output_attentions=True)
    return model, out, gm, am


def expected_pattern(gm, am, window, row):
    """From the masks alone: which band-view cells (global slots, then offsets) hold weight."""
    mask = (am * (gm + 1))[row]
    positions = [np.flatnonzero((am * (gm + 1))[r] == 2) for r in range(len(am))]
    x, w, length = max(len(p) for p in positions), window // 2, len(mask)
    pattern = np.zeros((length, x + window + 1), dtype=bool)
    for i in range(length):
        if mask[i] != 1:
            continue  # pad and global queries: empty rows
        pattern[i, :len(positions[row])] = True
        for c in range(window + 1):
            j = i + c - w
            pattern[i, x + c] = 0 <= j < length and mask[j] == 1
    return pattern


@pytest.mark.parametrize("layer, row, head", [(0, 0, 0), (1, 0, 1), (1, 1, 0)])
def test_band_view_draws_the_band_and_global_columns(layer, row, head, encoded):
    model, out, gm, am = encoded
    fig = viz.plot_band(out.attentions[layer], out.global_attentions[layer], gm, am, head=head, row=row)
    image = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_array_equal(image != 0, expected_pattern(gm, am, model.config.attention_window[layer], row))
    np.testing.assert_array_equal(image, out.attentions[layer][row, head])
    fig.savefig(__import__("io").BytesIO(), format="png")


def test_band_view_pools_long_inputs(encoded, tmp_path):
    rng = np.random.default_rng(0)
    a = rng.random((1, 1, 1000, 9))
    for how, reduce in (("max", np.max), ("mean", np.mean)):
        fig = viz.plot_band(a, None, head=0, max_rows=64, pool=how)
        image = np.asarray(fig.axes[0].images[0].get_array())
        block = 16  # ceil(1000 / 64)
        expected = np.array([reduce(a[0, 0, s:s + block], axis=0) for s in range(0, 1000, block)])
        np.testing.assert_allclose(image, expected)
    fig = viz.plot_band(a, None, head=0, log=True, start=100, stop=300)
    assert fig.axes[0].images[0].get_array().shape == (200, 9)
    fig.savefig(tmp_path / "band.svg")
    assert (tmp_path / "band.svg").read_text().startswith("<?xml")


def test_dense_view_draws_the_dense_rule_pattern(encoded):
    model, out, gm, am = encoded
    fig = viz.plot_dense(out.attentions[1], out.global_attentions[1], gm, am, head=1, row=0, tokens=list("abcdefghij" * 3))
    image = np.asarray(fig.axes[0].images[0].get_array())
    w, mask = model.config.attention_window[1] // 2, (am * (gm + 1))[0]
    i, j = np.arange(30)[:, None], np.arange(30)[None, :]
    pattern = ((np.abs(i - j) <= w) & (mask[j] == 1) | (mask[j] == 2)) & (mask[i] == 1) | (mask[i] == 2) & (mask[j] != 0)
    np.testing.assert_array_equal(image != 0, pattern)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][:3] == ["a", "b", "c"]


def test_grid_view_has_every_layer_and_head(encoded):
    model, out, gm, am = encoded
    fig = viz.plot_grid(out.attentions, out.global_attentions, gm, am)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 2 * 2
    for k, image in enumerate(images):
        np.testing.assert_array_equal(np.asarray(image.get_array()), out.attentions[k // 2][0, k % 2])


@pytest.mark.parametrize("length, window, globals_", [(40, 8, []), (40, 8, [0, 5, 6, 39]), (33, 64, [3]),
                                                       (50, 2, list(range(50)))])
def test_sparsity_counts_and_pattern(length, window, globals_):
    i, j = np.arange(length)[:, None], np.arange(length)[None, :]
    pattern = (np.abs(i - j) <= window // 2) | np.isin(i, globals_) | np.isin(j, globals_)
    assert viz.computed_pairs(length, window, globals_) == (int(pattern.sum()), length * length)
    fig = viz.plot_sparsity(length, window, globals_)
    np.testing.assert_array_equal(np.asarray(fig.axes[0].images[0].get_array()), pattern.astype(float))
    assert f"{int(pattern.sum()):,} of {length * length:,} pairs" in fig.axes[0].get_title()


def test_sparsity_of_a_long_input_is_pooled():
    fig = viz.plot_sparsity(16384, 1024, [0], max_pixels=512)
    image = np.asarray(fig.axes[0].images[0].get_array())
    # a pixel is the fraction of its 32 x 32 pairs computed: one global row (column) of 32 far from the band
    assert image.shape == (512, 512) and image[0, 400] == image[400, 0] == 1 / 32
    assert image[256, 256] == 1.0 and image[256, 400] == 0.0


def test_layout_explainer(encoded):
    fig = viz.plot_layout_explainer(length=16, window=4, global_positions=(10, 3), n_pad=2)
    compact, dense = (np.asarray(ax.images[0].get_array())[..., 3] > 0 for ax in fig.axes[:2])
    mask = np.ones(16, dtype=int)
    mask[14:], mask[[3, 10]] = 0, 2
    i, j = np.arange(16)[:, None], np.arange(16)[None, :]
    pattern = ((np.abs(i - j) <= 2) & (mask[j] == 1) | (mask[j] == 2)) & (mask[i] == 1) | (mask[i] == 2) & (mask[j] != 0)
    np.testing.assert_array_equal(dense, pattern)
    assert compact.shape == (16, 2 + 5) and not compact[[3, 10, 14, 15]].any()
    letters = sorted(t.get_text() for t in fig.axes[0].texts if len(t.get_text()) == 1)
    assert letters.count("E") == 3 and letters.count("P") == 3 and letters.count("G") == 8  # rows 0-1; 12-13; 4 per global


def test_bad_arguments(encoded):
    model, out, gm, am = encoded
    with pytest.raises(ledref.InputError, match=r"head=2 is outside the 2 heads"):
        viz.plot_band(out.attentions[0], out.global_attentions[0], gm, am, head=2)
    with pytest.raises(ledref.InputError, match=r"token range 20..10 is not inside 0..30"):
        viz.plot_dense(out.attentions[0], out.global_attentions[0], gm, am, start=20, stop=10)
    with pytest.raises(ledref.InputError, match=r"layer 5 is outside the 2 layers"):
        viz.plot_grid(out.attentions, out.global_attentions, gm, am, layers=[5])
    with pytest.raises(ledref.InputError, match=r"pool='median'"):
        viz.plot_band(np.ones((1, 1, 5000, 9)), None, pool="median")
