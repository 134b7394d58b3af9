"""The Recorder keeps what its `only` patterns name, and only that is computed for it: the band scores are
made when wanted, a layer with nothing wanted runs the fast path, and the recorded tensors equal those of a
run of the reference alone (float64, 1e-10)."""

import numpy as np
import pytest

import ledref
import ledref.fast
import ledref.reference.attention
import ledref.reference.model
from conftest import random_led
from ledref.recorder import ENCODER_LAYER_NAMES

TOL = 1e-10


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = tmp_path_factory.mktemp("recorder")
    random_led(path, seed=5, encoder_layers=3, decoder_layers=2, attention_window=[4, 8, 6])
    return {impl: ledref.LEDForConditionalGeneration.from_pretrained(path, dtype="float64", attn_implementation=impl)
            for impl in ("band", "band_matrix", "dense")}


def inputs():
    rng = np.random.default_rng(2)
    ids = rng.integers(3, 60, (2, 21))
    am = np.ones_like(ids)
    am[1, 15:] = 0
    gm = np.zeros_like(ids)
    gm[0, [0, 11]] = gm[1, 4] = 1
    return dict(input_ids=ids, attention_mask=am, global_attention_mask=gm, decoder_input_ids=[[2, 7, 9]] * 2)


def counting(monkeypatch, module, name):
    """Wrap module.name so that its calls are counted; returns the list of calls."""
    calls, original = [], getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def record(model, only, **extra):
    recorder = ledref.Recorder(only=only)
    out = model(**inputs(), recorder=recorder, **extra)
    return recorder.tensors, out


@pytest.mark.parametrize("only", ["encoder.layers.1.*", ["encoder.layers.2.band_scores", "encoder.layers.0.q"],
                                  "encoder.embeddings", "decoder.layers.1.*", "*probs", None])
def test_recorded_tensors_are_the_reference_ones(only, models):
    """With "band", only the wanted names are kept, and they equal a run of the reference ("band_matrix")
    with the same recorder; the model's outputs equal the unrecorded fast run."""
    got, out = record(models["band"], only)
    want, _ = record(models["band_matrix"], only)
    assert sorted(got) == sorted(want) and got
    for name in want:
        a, b = ledref.to_numpy(got[name]), ledref.to_numpy(want[name])
        assert a.shape == b.shape and np.max(np.where(a == b, 0.0, np.abs(a - b))) <= TOL, name  # -inf == -inf
    plain = models["band"](**inputs())
    assert np.max(np.abs(out.logits - plain.logits)) <= TOL


def test_only_wanted_layers_run_the_reference(models, monkeypatch):
    """Layers with nothing wanted run the fast path; the decoder runs the reference only when something
    of it is wanted."""
    reference_layers = counting(monkeypatch, ledref.reference.model, "encoder_layer")
    fast_decoder = counting(monkeypatch, ledref.fast, "decoder")
    tensors, _ = record(models["band"], "encoder.layers.2.*")
    assert len(reference_layers) == 1 and len(fast_decoder) == 1
    assert sorted(tensors) == sorted(f"encoder.layers.2.{name}" for name in ENCODER_LAYER_NAMES)
    reference_layers.clear(), fast_decoder.clear()
    tensors, _ = record(models["band"], "decoder.layers.0.cross_attn_probs")
    assert not reference_layers and not fast_decoder and list(tensors) == ["decoder.layers.0.cross_attn_probs"]
    reference_layers.clear(), fast_decoder.clear()
    tensors, _ = record(models["band"], "logits")
    assert not reference_layers and len(fast_decoder) == 1 and list(tensors) == ["logits"]


def test_band_scores_are_made_only_when_wanted(models, monkeypatch):
    """The dense rule never makes band scores: every call of band_scores is for the record."""
    calls = counting(monkeypatch, ledref.reference.attention, "band_scores")
    record(models["dense"], "encoder.layers.*.q")
    assert not calls
    tensors, _ = record(models["dense"], "encoder.layers.1.band_scores_masked")
    assert len(calls) == 1 and list(tensors) == ["encoder.layers.1.band_scores_masked"]
    calls.clear()
    record(models["dense"], None)
    assert len(calls) == 3  # one per layer


def test_recording_with_selected_attentions(models):
    """A recorded layer and a selection of attentions together: the attentions still hold the kept heads."""
    tensors, out = record(models["band"], "encoder.layers.1.local_probs", output_attentions=[1, 2],
                          attention_heads=[1])
    full = models["dense"](**inputs(), output_attentions=True)
    assert out.encoder_attentions[0] is None
    for layer in (1, 2):
        np.testing.assert_allclose(out.encoder_attentions[layer], full.encoder_attentions[layer][:, [1]], atol=TOL)
    local = ledref.to_numpy(tensors["encoder.layers.1.local_probs"])[:, :, :21]  # recorded at the padded length
    np.testing.assert_allclose(local, full.encoder_attentions[1], atol=TOL)
