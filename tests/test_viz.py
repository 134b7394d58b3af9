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


def drawn(ax):
    """What a band view's axes hold, as the layout's columns: the global slots' image (drawn second), then
    the band's."""
    arrays = [np.ma.getdata(image.get_array()) for image in ax.images]
    return np.concatenate(arrays[1:] + arrays[:1], axis=1)


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
    image = drawn(fig.axes[0])
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
    fig = viz.plot_dense(out.attentions[1], out.global_attentions[1], gm, am, head=1, row=0,
                         tokens=list("abcdefghij" * 3))
    image = np.asarray(fig.axes[0].images[0].get_array())
    w, mask = model.config.attention_window[1] // 2, (am * (gm + 1))[0]
    i, j = np.arange(30)[:, None], np.arange(30)[None, :]
    local_row = ((np.abs(i - j) <= w) & (mask[j] == 1) | (mask[j] == 2)) & (mask[i] == 1)
    pattern = local_row | (mask[i] == 2) & (mask[j] != 0)
    np.testing.assert_array_equal(image != 0, pattern)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][:3] == ["a", "b", "c"]


def test_grid_view_has_every_layer_and_head(encoded):
    model, out, gm, am = encoded
    fig = viz.plot_grid(out.attentions, out.global_attentions, gm, am)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2 * 2
    for k, ax in enumerate(panels):
        np.testing.assert_array_equal(drawn(ax), out.attentions[k // 2][0, k % 2])


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
    local_row = ((np.abs(i - j) <= 2) & (mask[j] == 1) | (mask[j] == 2)) & (mask[i] == 1)
    pattern = local_row | (mask[i] == 2) & (mask[j] != 0)
    np.testing.assert_array_equal(dense, pattern)
    assert compact.shape == (16, 2 + 5) and not compact[[3, 10, 14, 15]].any()
    letters = sorted(t.get_text() for t in fig.axes[0].texts if len(t.get_text()) == 1)
    # E: rows 0-1; P: rows 12-13; G: 4 per global
    assert letters.count("E") == 3 and letters.count("P") == 3 and letters.count("G") == 8


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


# ------------------------------------------------------------------ what the figures look like once drawn

def rendered(fig, dpi=110):
    """The figure as drawn: an RGBA array [height, width, 4] at `dpi`."""
    fig.set_dpi(dpi)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())


def pixel_of(ax, x, y, image):
    """The (row, column) of the drawn image at data point (x, y) of ax."""
    px, py = ax.transData.transform((x, y))
    return int(image.shape[0] - py), int(px)


def test_one_token_global_rows_and_columns_stay_visible():
    """docs/sparsity.png's case: 1,024 tokens on ~500 pixels. Each global token's row and column is drawn
    dark along its whole length, away from the band, where resampled image pixels alone would drop it."""
    fig = viz.plot_sparsity(1024, 128, [0, 600])
    ax = fig.axes[0]
    image = rendered(fig)
    dark = image[..., :3].astype(int).sum(axis=-1) < 450  # the "computed" blue (163), not the background (753)
    for p in (600,):
        for far in (100, 300, 900):  # points on the global row and column, far from the band
            for x, y in ((far, p), (p, far)):
                r, c = pixel_of(ax, x, y, image)
                assert dark[r - 1:r + 2, c - 1:c + 2].any(), (x, y)
    r, c = pixel_of(ax, 900, 300, image)  # neither global nor in the band: light
    assert not dark[r, c]


def test_one_token_marks_stay_visible():
    """mark_positions: a single token on a 4,000-token axis still colours pixels where it is."""
    fig = viz._figure((11, 2))
    ax = fig.add_subplot()
    ax.plot(np.arange(4000), np.zeros(4000), color="black", lw=0.5)
    ax.set_xlim(-0.5, 3999.5)
    viz.mark_positions(ax, [5, 1170, 1801], "#2e7d32")
    image = rendered(fig)
    green = (image[..., 1].astype(int) - image[..., 0].astype(int) > 40)
    for p in (5, 1170, 1801):
        r, c = pixel_of(ax, p, 0.5, image)
        assert green[:, c - 1:c + 2].sum() > 20, p  # a visible stroke down the axes at the token
    r, c = pixel_of(ax, 3000, 0.5, image)
    assert not green[:, c].any()


def test_band_view_axis_has_symmetric_integer_ticks_and_a_visible_global_block(encoded):
    model, out, gm, am = encoded
    fig = viz.plot_band(out.attentions[1], out.global_attentions[1], gm, am, head=0)
    ax = fig.axes[0]
    w = model.config.attention_window[1] // 2
    labels = {t.get_text(): t.get_position()[0] for t in ax.get_xticklabels()}
    assert labels[f"-{w}"] == -w and labels[f"+{w}"] == w and labels["0"] == 0  # -w is there
    offsets = sorted(v for k, v in labels.items() if not k.startswith("g"))
    assert offsets == [-v for v in reversed(offsets)] and all(float(v).is_integer() for v in offsets)
    assert "g" in labels and labels["g"] < -w
    band, glob = ax.images
    left, right = glob.get_extent()[:2]
    assert right - left >= 0.1 * (2 * w + 1) - 1e-9  # the global slots keep a visible width
    assert all(float(t).is_integer() for t in ax.get_yticks())


def test_log_scale_of_near_uniform_attention_uses_the_colours():
    """A band view of near-uniform weights on a log scale spans the colour map (not all at its dark end);
    exactly uniform weights sit in its middle."""
    rng = np.random.default_rng(0)
    a = (1 + 0.01 * rng.random((1, 1, 300, 1025))) / 1025
    fig = viz.plot_band(a, None, log=True)
    image = fig.axes[0].images[0]
    scaled = image.norm(np.ma.getdata(image.get_array()))
    assert scaled.min() <= 0.01 and scaled.max() >= 0.99
    uniform = viz.plot_band(np.full((1, 1, 50, 9), 1 / 9), None, log=True).axes[0].images[0]
    np.testing.assert_allclose(uniform.norm(np.ma.getdata(uniform.get_array())), 0.5)


def test_grid_has_one_colour_scale_and_one_colorbar_and_fits_6_x_12():
    rng = np.random.default_rng(1)
    attentions = tuple(rng.random((1, 12, 200, 1 + 16 + 1)) / (k + 1) for k in range(6))
    glob = tuple(rng.random((1, 12, 200, 1)) for _ in range(6))
    gm = np.zeros((1, 200), dtype=np.int64)
    gm[0, 0] = 1
    fig = viz.plot_grid(attentions, glob, gm, log=True)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 72 and len(fig.axes) == 73  # and one colorbar
    norms = {(im.norm.vmin, im.norm.vmax) for ax in panels for im in ax.images}
    assert len(norms) == 1
    vmin, vmax = norms.pop()
    values = np.concatenate([np.ravel(a) for a in attentions])  # what band views draw
    assert vmax == values.max() and vmin == max(values[values > 0].min(), vmax * 1e-6)
    width, height = fig.get_size_inches()
    assert width <= 26 and height <= 14
    assert [ax.get_title() for ax in panels[:12]] == [f"head {h}" for h in range(12)]
    assert all(not ax.get_title() for ax in panels[12:])
    assert [ax.get_ylabel() for ax in panels[::12]] == [f"layer {i}\nquery" for i in range(6)]
    image = rendered(fig, dpi=60)
    assert image.shape[1] <= 26 * 60


def test_grid_takes_the_computed_layers(encoded):
    """Layers not asked for (None) are left out of the default grid, refused by name when asked for."""
    model, out, gm, am = encoded
    attentions = (None, out.attentions[1])
    glob = (None, out.global_attentions[1])
    fig = viz.plot_grid(attentions, glob, gm, am, heads=[1])
    assert [ax.get_ylabel() for ax in fig.axes if ax.images] == ["layer 1\nquery"]
    with pytest.raises(ledref.InputError, match=r"layer 0's attentions are None"):
        viz.plot_grid(attentions, glob, gm, am, layers=[0])


def test_layout_explainer_arrows_start_at_their_cells():
    """Each arrow goes from a cell of the compact layout (not the panel's edge) to the dense cell that holds
    the same weight: same column colour, both non-zero, same query row."""
    fig = viz.plot_layout_explainer()
    from matplotlib.patches import ConnectionPatch
    arrows = [a for a in fig.artists if isinstance(a, ConnectionPatch)]
    compact, dense = (np.asarray(ax.images[0].get_array()) for ax in fig.axes[:2])
    assert len(arrows) == 3
    rows = set()
    for arrow in arrows:
        (c, i), (j, i2) = arrow.xy1, arrow.xy2
        assert i == i2 and float(c).is_integer() and float(i).is_integer() and 0 <= i < 16
        rows.add(i)
        a, b = compact[int(i), int(c)], dense[int(i), int(j)]
        assert a[3] > 0 and b[3] > 0 and np.allclose(a[:3], b[:3]), (c, i, j)
    assert len(rows) == 1


def test_plot_command_computes_and_builds_only_what_it_draws(tmp_path, monkeypatch):
    """`ledref plot --view dense --layer 1 --head 2 --from 100 --to 140` on a long document: the encoder
    returns layer 1's head 2 alone, and the dense matrix is built for the window 100..140 only."""
    import inspect

    import ledref.cli
    from ledref import needle
    text = needle.make_document(3).text
    (tmp_path / "doc.txt").write_text(text)
    calls, built = [], []
    layout, dense = viz._layout, viz._dense

    def recording(*args, **kwargs):
        bound = inspect.signature(layout).bind(*args, **kwargs).arguments
        calls.append((tuple(bound["attentions"].shape), (bound.get("start"), bound.get("stop"))))
        return layout(*args, **kwargs)

    def building(a, *args):
        built.append(tuple(a.shape))
        return dense(a, *args)

    monkeypatch.setattr(viz, "_layout", recording)
    monkeypatch.setattr(viz, "_dense", building)
    status = ledref.cli.main(["plot", "--model", "ledref/tiny-needle", "--view", "dense", "--layer", "1", "--head",
                              "2", "--from", "100", "--to", "140", "--out", str(tmp_path / "d.png"),
                              str(tmp_path / "doc.txt")])
    assert status == 0 and (tmp_path / "d.png").exists()
    (shape, window), = calls
    assert shape[:2] == (1, 1) and shape[2] > 1000 and window == (100, 140)
    (rows,), = [built]
    assert rows[:3] == (1, 1, 40)  # the window's 40 rows of the one head, made dense: [1, 1, 40, 40]
