"""ledref.viz over a generate output: the cross-attention of every written token, read through the beams,
equals transformers' forward pass teacher-forced on the sequence it returned; the global row equals its
encoder's; the figure keeps every one-token mark visible among thousands of tokens."""

import numpy as np
import pytest
from support import batch

import ledref
from conftest import hf_call, random_led, require
from ledref import viz

pytestmark = pytest.mark.parity


@pytest.fixture
def checkpoint(generation_checkpoint):
    """(HF model, path) of the random LED made for generation (conftest.generation_checkpoint)."""
    return generation_checkpoint


def teacher_forced_cross(hf, sequences, row, layer, batch_row):
    """transformers' cross-attention (mean of heads) of the sequence, fed whole to the decoder: [T, L]."""
    inputs = {k: v[batch_row:batch_row + 1] for k, v in batch().items()}
    out = hf_call(hf, "float32", **inputs, decoder_input_ids=np.asarray(sequences[row:row + 1, :-1]),
                  output_attentions=True)
    return out.cross_attentions[layer][0].mean(0).numpy()


@pytest.mark.parametrize("settings", [dict(max_length=12),
                                      dict(num_beams=3, num_return_sequences=2, max_length=14, length_penalty=0.5)],
                         ids=["greedy", "beams"])
def test_cross_attention_map_follows_the_sequence(settings, checkpoint):
    hf, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path)
    out = model.generate(**batch(), return_dict_in_generate=True, output_attentions=True, **settings)
    copies = settings.get("num_return_sequences", 1)
    for row in range(out.sequences.shape[0]):
        for layer in (0, -1):
            ours = viz.cross_attention_map(out, row=row, layer=layer)
            expected = teacher_forced_cross(hf, out.sequences, row, layer, row // copies)
            steps = ours.shape[0]
            # beams stop where their sequence ends; the padding after it is not a step of this sequence
            assert steps == expected.shape[0] or (steps < expected.shape[0] and out.sequences[row, steps] == 2)
            np.testing.assert_allclose(ours, expected[:steps], rtol=0, atol=1e-5)
    one_head = viz.cross_attention_map(out, row=0, head=1)
    full = np.stack([ledref.to_numpy(step[-1])[out.beam_indices[0, s] if "beam_indices" in out else 0, 1, 0]
                     for s, step in enumerate(out.cross_attentions[:one_head.shape[0]])])
    np.testing.assert_array_equal(one_head, full)


def test_global_attention_map_is_the_encoders(checkpoint):
    hf, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path)
    out = model.generate(**batch(), return_dict_in_generate=True, output_attentions=True, num_beams=2,
                         num_return_sequences=2, max_length=6)
    encoded = hf_call(hf.led.encoder, "float32", **batch(), output_attentions=True)
    for row, slot in ((0, 0), (1, 1), (3, 0)):  # rows 2 and 3 come from the batch's second row
        expected = encoded.global_attentions[0][row // 2, :, :23, slot].mean(0).numpy()
        np.testing.assert_allclose(viz.global_attention_map(out, row=row, layer=0, slot=slot), expected, atol=1e-6)


def test_plot_where_it_looks_keeps_one_token_marks(tmp_path):
    """Marks of single tokens among 3,000 (a third of a pixel each) all show, in their colours."""
    require("matplotlib")
    model = random_led(tmp_path / "model", dtype="float32", max_encoder_position_embeddings=3072, vocab_size=97,
                       max_decoder_position_embeddings=16)
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 97, (1, 3000))
    ids[0, 0] = 0
    out = model.generate(ids, global_attention_mask=np.eye(1, 3000, dtype=np.int64), max_length=8,
                         return_dict_in_generate=True, output_attentions=True)
    marks = {"facts": [500, 1077, 2500], "others": [400], "more": [2000, 2001]}
    fig = viz.plot_where_it_looks(out, marks=marks)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    top = fig.axes[0]
    box = top.get_window_extent()
    height = pixels.shape[0]
    band = pixels[int(height - box.y1) + 2:int(height - box.y0) - 2, int(box.x0) - 3:int(box.x1) + 3]
    for colour, positions in ((viz.MARK_COLOURS[0], marks["facts"]), (viz.MARK_COLOURS[2], marks["more"])):
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        # pixels of that hue (any coverage, on white): 255 - pixel points the way 255 - colour does
        ink, direction = 255 - band, (255 - rgb) / np.linalg.norm(255 - rgb)
        strength = np.linalg.norm(ink, axis=-1)
        hue = (ink @ direction) / np.maximum(strength, 1e-9) > 0.995
        drawn = (hue & (strength > 40)).sum(axis=0)
        columns = np.flatnonzero(drawn >= 10)  # a line (behind the curve), not a stray pixel
        for p in positions:
            x = top.transData.transform((p, 0))[0] - box.x0 + 3
            assert columns.size and np.min(np.abs(columns - x)) <= 1.5, f"mark at token {p} not drawn"
    fig.savefig(tmp_path / "where.png")
    assert (tmp_path / "where.png").stat().st_size > 10_000
    no_global = model.generate(ids, max_length=6, return_dict_in_generate=True, output_attentions=True)
    assert len(viz.plot_where_it_looks(no_global, marks=marks).axes) == 2  # the cross map and its colorbar


def test_bad_arguments(checkpoint):
    _, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path)
    plain = model.generate(**batch(), max_length=5, return_dict_in_generate=True)
    with pytest.raises(ledref.InputError, match=r"holds no cross_attentions; expected the output of generate\(.*"
                                                r"output_attentions=True\)"):
        viz.cross_attention_map(plain)
    out = model.generate(**batch(), max_length=5, return_dict_in_generate=True, output_attentions=True)
    for kwargs, message in ((dict(row=2), r"row=2 is outside the 2 generated sequences"),
                            (dict(layer=2), r"layer=2 is outside the decoder's 2 layers"),
                            (dict(head=3), r"head=3 is outside the 3 heads")):
        with pytest.raises(ledref.InputError, match=message):
            viz.cross_attention_map(out, **kwargs)
    with pytest.raises(ledref.InputError, match=r"slot=2 is outside the 2 global slots"):
        viz.global_attention_map(out, slot=2)
    with pytest.raises(ledref.InputError, match=r"marks\['x'\] holds positions \[23\] outside the 23"):
        viz.plot_where_it_looks(out, marks={"x": [23]})
    for kwargs, message in ((dict(row=0.5), r"row=0\.5 is not an int; expected an index into the 2 generated"),
                            (dict(head=True), r"head=True is not an int; expected an index into the 3 heads"),
                            (dict(layer="0"), r"layer='0' is not an int")):
        with pytest.raises(ledref.InputError, match=message):
            viz.global_attention_map(out, **kwargs)
    with pytest.raises(ledref.InputError, match=r"marks\['x'\] holds positions \[2\.5\] outside the 23"):
        viz.plot_where_it_looks(out, marks={"x": [2.5]})
    with pytest.raises(ledref.InputError, match=r"max_columns=0; expected an int >= 1"):
        viz.plot_where_it_looks(out, max_columns=0)


def test_an_encoder_output_of_one_layer(checkpoint):
    """generate on an encoder output that kept only the last layer's attentions (as ledref explore makes
    it): that layer's global row is the full run's, the others are a named error."""
    _, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path)
    encoded = model.encoder(**batch(), output_attentions=[-1])
    out = model.generate(**batch(), encoder_outputs=encoded, max_length=5, return_dict_in_generate=True,
                         output_attentions=True)
    full = model.generate(**batch(), max_length=5, return_dict_in_generate=True, output_attentions=True)
    np.testing.assert_array_equal(viz.global_attention_map(out, layer=-1), viz.global_attention_map(full, layer=-1))
    with pytest.raises(ledref.InputError, match=r"layer=0: the generate output holds no attentions of encoder "
                                                r"layer 0 \(only of layers \[1\]\)"):
        viz.global_attention_map(out, layer=0)


def test_a_title_without_global_tokens_names_the_figure(checkpoint):
    _, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path)
    inputs = {k: v for k, v in batch().items() if k != "global_attention_mask"}
    out = model.generate(**inputs, max_length=5, return_dict_in_generate=True, output_attentions=True)
    assert [ax.get_title() for ax in viz.plot_where_it_looks(out, title="mine").axes][0] == "mine"
