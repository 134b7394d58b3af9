"""Shared test machinery.

- `backend`: every model-level test runs on NumPy and under array_api_strict.
- `hf`: transformers and torch, or a skip; with CI=true a missing oracle is an error, never a skip.
- `browser` tests (a real headless Chromium): skipped where no Chromium is installed, an error with CI=true.
- `make_checkpoint`: a random LED built by transformers, every parameter randomised (LayerNorms and biases
  too, so nothing hides behind zero init), saved with save_pretrained(safe_serialization=True).
- `assert_close`: the tolerance of the parity tests, per tensor.
"""

import importlib
import os

import numpy as np
import pytest

import ledref
from hf_oracle import Float64Softmax, randomise
from ledref.backend import namespace

CI = os.environ.get("CI", "").lower() == "true"


def _gpu_usable():
    try:
        cupy = importlib.import_module("cupy")
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _torch_installed():
    try:
        importlib.import_module("torch")
        return True
    except ImportError:
        return False


# torch (CPU tensors, through array-api-compat) is the second real engine beside NumPy, wherever the test
# extra is installed (always in CI); cupy joins where CuPy and a GPU are present, and there transformers
# runs on CUDA too, TF32 off on both sides
BACKENDS = (["numpy", "array_api_strict"] + (["torch"] if _torch_installed() or CI else [])
            + (["cupy"] if _gpu_usable() else []))
HF_DEVICE = "cpu"  # where hf_model and hf_call run transformers: "cuda" while a cupy test runs


def require(module):
    """Import an oracle package; skip without it, except under CI=true where that is a failure."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if CI:
            pytest.fail(f"CI=true but {module} cannot be imported ({e}); the parity tests must run in CI")
        pytest.skip(f"{module} not installed")


@pytest.fixture(params=BACKENDS)
def backend(request):
    global HF_DEVICE
    if request.param == "cupy":
        torch = require("torch")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        os.environ["CUPY_TF32"] = "0"
        HF_DEVICE = "cuda"
    yield request.param
    HF_DEVICE = "cpu"


IMPLEMENTATIONS = ["band", "band_matrix", "dense"]  # the fast path, and the reference's two


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request):
    """attn_implementation: every parity test runs the fast path and both forms of the reference."""
    return request.param


@pytest.fixture
def same_operations_everywhere(monkeypatch):
    """NumPy's fast band kernel skips the softmax's max subtraction where scores are provably small, and
    NumPy's float32 GELU runs in place with two constants folded (both tested in test_fast.py): both round
    differently from the other backends' operations. Tests that compare backends to the bit turn them off."""
    import ledref.fast.attention
    import ledref.fast.functional
    monkeypatch.setattr(ledref.fast.attention, "UNSHIFTED_BOUND", float("-inf"))
    monkeypatch.setattr(ledref.fast.functional, "IN_PLACE", {})


def to_backend(a, backend):
    """A NumPy array (or None) as an array of the named backend."""
    return None if a is None else namespace(backend).asarray(np.asarray(a))


def tolerance(reference, dtype):
    """max |ours - HF| allowed for one tensor: 1e-4 (float32) or 1e-9 (float64) times max(1, max |HF|)."""
    scale = max(1.0, float(np.max(np.abs(reference)))) if reference.size else 1.0
    return (1e-4 if dtype == "float32" else 1e-9) * scale


def assert_close(ours, reference, dtype, name=""):
    ours, reference = ledref.to_numpy(ours), np.asarray(numpy_tree(reference))
    assert ours.shape == reference.shape, f"{name}: shape {ours.shape}, expected {reference.shape}"
    assert ours.dtype == np.dtype(dtype), f"{name}: dtype {ours.dtype}, expected {dtype}"
    err = float(np.max(np.abs(ours.astype(np.float64) - reference))) if ours.size else 0.0
    allowed = tolerance(reference, dtype)
    assert err <= allowed, f"{name}: max |ours - ref| = {err:.3g} > {allowed:.3g}"
    return err


def random_led(path, cls=None, dtype="float64", seed=0, backend=None, **overrides):
    """A random LED written by ledref itself (no transformers needed) and loaded: a small encoder-decoder
    (d_model 8, 2 heads, 2 + 1 layers) unless overrides say otherwise."""
    from ledref.checkpoint import random_state_dict, save_checkpoint
    settings = dict(vocab_size=60, d_model=8, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                    decoder_attention_heads=2, encoder_ffn_dim=8, decoder_ffn_dim=8,
                    max_encoder_position_embeddings=64, max_decoder_position_embeddings=8, attention_window=8)
    config = ledref.LEDConfig(**{**settings, **overrides})
    save_checkpoint(path, config, random_state_dict(config, seed=seed, dtype=dtype))
    return (cls or ledref.LEDForConditionalGeneration).from_pretrained(path, dtype=dtype, backend=backend)


def parity_inputs():
    """The inputs of the parity case with padding and mixed global tokens (for tests beside test_parity)."""
    from support import CASES, make_inputs
    return make_inputs(CASES["globals_mixed"])


SMALL = dict(vocab_size=97, d_model=24, encoder_layers=2, decoder_layers=2, encoder_attention_heads=3,
             decoder_attention_heads=3, encoder_ffn_dim=40, decoder_ffn_dim=40,
             max_encoder_position_embeddings=160, max_decoder_position_embeddings=40, attention_window=8)


@pytest.fixture(scope="session")
def make_checkpoint(tmp_path_factory):
    """make_checkpoint(cls_name="LEDForConditionalGeneration", seed=0, **config) -> (HF model in eval mode,
    checkpoint dir). Cached per arguments for the session."""
    cache = {}

    def make(cls_name="LEDForConditionalGeneration", seed=0, **overrides):
        key = (cls_name, seed, tuple(sorted((k, str(v)) for k, v in overrides.items())))
        if key not in cache:
            torch = require("torch")
            transformers = require("transformers")
            settings = {**SMALL, **overrides, "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0}
            torch.manual_seed(seed)
            model = getattr(transformers, cls_name)(transformers.LEDConfig(**settings)).eval()
            randomise(model, torch, seed)
            path = tmp_path_factory.mktemp(cls_name)
            model.save_pretrained(path, safe_serialization=True)
            cache[key] = (model, path)
        return cache[key]

    return make


def hf_model(model, dtype):
    """The HF model in float32, or a float64 copy of it, on HF_DEVICE (copies cached on the model)."""
    if dtype == "float32" and HF_DEVICE == "cpu":
        return model
    if not hasattr(model, "_ledref_copies"):
        model._ledref_copies = {}
    key = (dtype, HF_DEVICE)
    if key not in model._ledref_copies:
        import copy
        moved = copy.deepcopy(model).to(HF_DEVICE)
        model._ledref_copies[key] = moved.double() if dtype == "float64" else moved
    return model._ledref_copies[key]


def hf_call(fn, dtype, **arrays):
    """Call an HF model (or its encoder) on NumPy arguments: integer arrays become torch.long tensors."""
    torch = require("torch")
    kwargs = {}
    for k, v in arrays.items():
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(v.astype(np.int64) if v.dtype.kind in "iub" else v).to(HF_DEVICE)
        kwargs[k] = v
    with torch.no_grad():
        if dtype == "float64":
            with Float64Softmax(torch):
                return fn(**kwargs)
        return fn(**kwargs)


def hf_cache(cache):
    """transformers' EncoderDecoderCache as ledref's layout: per layer (self k, self v, cross k, cross v)."""
    self_cache, cross_cache = cache.self_attention_cache, cache.cross_attention_cache
    return [(s.keys, s.values, c.keys, c.values) for s, c in zip(self_cache.layers, cross_cache.layers, strict=True)]


def numpy_tree(x):
    if x is None:
        return None
    if isinstance(x, (tuple, list)):
        return [numpy_tree(v) for v in x]
    return x.detach().cpu().numpy() if hasattr(x, "detach") else ledref.to_numpy(x)


def assert_tree_close(ours, reference, dtype, name):
    """Compare nested tuples of tensors; both None, or the same structure and every tensor close."""
    ours, reference = numpy_tree(ours), numpy_tree(reference)
    if reference is None or ours is None:
        assert ours is None and reference is None, f"{name}: ours is {type(ours)}, reference is {type(reference)}"
        return 0.0
    if isinstance(reference, list):
        assert isinstance(ours, list) and len(ours) == len(reference), f"{name}: lengths differ"
        return max([assert_tree_close(o, r, dtype, f"{name}[{i}]") for i, (o, r) in
                    enumerate(zip(ours, reference, strict=True))], default=0.0)
    return assert_close(ours, reference, dtype, name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With CI=true, a parity or browser test that skips (for whatever reason) is reported as a failure."""
    outcome = yield
    report = outcome.get_result()
    for marker in ("parity", "browser"):
        if CI and report.skipped and item.get_closest_marker(marker) is not None:
            report.outcome = "failed"
            report.longrepr = f"CI=true: {marker} test {item.nodeid} skipped ({report.longrepr}); it must run in CI"


@pytest.fixture(scope="session")
def generation_checkpoint(tmp_path_factory):
    """(HF model, path): seed 2 perturbed by for_generation gives varied tokens and eos at varied steps."""
    torch, transformers = require("torch"), require("transformers")
    from hf_oracle import for_generation
    torch.manual_seed(2)
    config = transformers.LEDConfig(**SMALL, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
    model = for_generation(randomise(transformers.LEDForConditionalGeneration(config).eval(), torch, 2), torch)
    path = tmp_path_factory.mktemp("generation")
    model.save_pretrained(path, safe_serialization=True)
    return model, path
