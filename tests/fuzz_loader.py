"""Fuzzing the loader in a fresh process under a memory limit (tests/test_bad_input.py runs it).

Hypothesis corrupts a valid model.safetensors (bytes anywhere, the header's length, its JSON, its entries),
mutates config.json (fields set to any JSON value, removed, or its text corrupted), and mutates the index of a
sharded checkpoint (shard names that lead out of the directory, odd values, a corrupted text). The only outcomes
allowed are a load whose weights equal the file's own tensors (read here with json, struct and numpy alone) or a
ledref error; any other exception fails, and so does a MemoryError under the address-space limit. While the
index is fuzzed, every file opened must be inside the checkpoint directory (a valid shard waits outside it).

    python tests/fuzz_loader.py WORKDIR EXAMPLES

prints one JSON line: {"safetensors" | "config" | "index": {"examples", "loaded", "ledref_errors"}}.
"""

import json
import os
import resource
import shutil
import struct
import sys
import tempfile
import warnings

import ml_dtypes
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

import ledref
import ledref.checkpoint
from ledref.checkpoint import random_state_dict, save_checkpoint

SETTINGS = dict(vocab_size=40, d_model=8, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                decoder_attention_heads=2, encoder_ffn_dim=12, decoder_ffn_dim=12, max_encoder_position_embeddings=32,
                max_decoder_position_embeddings=16, attention_window=8)
DTYPES = {"F16": np.float16, "BF16": ml_dtypes.bfloat16, "F32": np.float32, "F64": np.float64}
HEADROOM = 2 * 2 ** 30  # address space allowed beyond what the warmed-up process maps


# ------------------------------------------------------------------------------------------------ the reference

def reference_tensors(raw):
    """{name: float64 array} of a safetensors file, parsed with struct, json and np.frombuffer."""
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])
        out[name] = array.astype(np.float64)
    return out


def flat(params, prefix=""):
    out = {}
    for k, v in (params.items() if isinstance(params, dict) else enumerate(params)):
        out.update(flat(v, f"{prefix}{k}.") if isinstance(v, (dict, list)) else {f"{prefix}{k}": v})
    return out


def check_loaded(model, files):
    """Every parameter of the loaded model is the file's tensor of that name (as float32), shared.weight may come
    from a tied copy, final_logits_bias is zero when the files have none."""
    tensors = {}
    for raw in files:
        tensors.update({k.removeprefix("led."): v for k, v in reference_tensors(raw).items()})
    for key, value in flat(model._host_params).items():
        candidates = [tensors[key]] if key in tensors else []
        if key == "shared.weight":
            candidates += [tensors[k] for k in ledref.checkpoint.TIED_COPIES if k in tensors]
        if key == "final_logits_bias" and not candidates:
            assert not np.any(value), "final_logits_bias absent from the files must be zeros"
            continue
        assert candidates, f"{key} was loaded but is not in the files"
        expected = candidates[0].astype(np.float32)
        assert value.shape == expected.shape and np.array_equal(value, expected, equal_nan=True), key


# ------------------------------------------------------------------------------------------------ the fuzzing

class Fuzz:
    def __init__(self, root):
        self.root = root
        self.config = ledref.LEDConfig(**SETTINGS)
        self.state = random_state_dict(self.config, seed=11)
        self.base = os.path.join(root, "base")
        save_checkpoint(self.base, self.config, self.state)
        self.raw = open(os.path.join(self.base, "model.safetensors"), "rb").read()
        self.config_text = open(os.path.join(self.base, "config.json"), encoding="utf-8").read()
        self.header_end = 8 + struct.unpack("<Q", self.raw[:8])[0]
        self.counts = {kind: {"examples": 0, "loaded": 0, "ledref_errors": 0} for kind in
                       ("safetensors", "config", "index")}

    def directory(self, files):
        path = tempfile.mkdtemp(dir=self.root)
        for name, content in files.items():
            with open(os.path.join(path, name), "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
        return path

    def attempt(self, kind, path, weight_files):
        """Load; a ledref error or a correct load is fine, anything else propagates to hypothesis."""
        self.counts[kind]["examples"] += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = ledref.LEDForConditionalGeneration.from_pretrained(path)
        except ledref.LedrefError:
            self.counts[kind]["ledref_errors"] += 1
            return
        check_loaded(model, [open(f, "rb").read() for f in weight_files(path)])
        self.counts[kind]["loaded"] += 1


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=True)
                    | st.text(max_size=12), lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=8)
SIZES = st.integers(0, 4) | st.integers(0, 2 ** 64 - 1) | st.just(2 ** 63)
TENSOR_FIELDS = st.sampled_from(["dtype", "shape", "data_offsets", "name", "delete"])


@st.composite
def safetensors_bytes(draw, fuzz):
    """A corrupted model.safetensors: byte edits (half of them in the header), a rewritten header length,
    truncation or extra bytes, or an edited header entry."""
    raw = bytearray(fuzz.raw)
    mode = draw(st.sampled_from(["bytes", "length", "cut", "entry"]))
    if mode == "entry":
        n = fuzz.header_end - 8
        header = json.loads(bytes(raw[8:8 + n]))
        key = draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")))
        field = draw(TENSOR_FIELDS)
        if field == "delete":
            del header[key]
        elif field == "name":
            header[draw(st.sampled_from(["led.decoder.layers.99999999.fc1.weight", "led.encoder.layers.7.x",
                                         "shared.weight", "led.encoder.layers.-1.fc1.weight", "lm_head.weight"])
                        | st.text(max_size=20))] = header.pop(key)
        elif field == "dtype":
            header[key]["dtype"] = draw(st.sampled_from(["F16", "BF16", "F64", "I64", "I8", "U8", "BOOL", "F8_E4M3",
                                                         "F8_E5M2", "C64", "F4", "X9"]) | st.text(max_size=6))
        elif field == "shape":
            header[key]["shape"] = draw(st.lists(SIZES, max_size=4) | JSON)
        else:
            header[key]["data_offsets"] = draw(st.lists(SIZES, min_size=2, max_size=2) | JSON)
        text = json.dumps(header).encode()
        return struct.pack("<Q", len(text)) + text + bytes(raw[fuzz.header_end:])
    if mode == "length":
        raw[:8] = struct.pack("<Q", draw(SIZES))
    elif mode == "cut":
        at = draw(st.integers(0, len(raw)))
        return bytes(raw[:at]) + draw(st.binary(max_size=16))
    else:
        for _ in range(draw(st.integers(1, 6))):
            where = draw(st.integers(0, fuzz.header_end - 1) | st.integers(0, len(raw) - 1))
            raw[where] = draw(st.integers(0, 255))
    return bytes(raw)


FIELDS = ["vocab_size", "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
          "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim", "max_encoder_position_embeddings",
          "max_decoder_position_embeddings", "attention_window", "activation_function", "pad_token_id",
          "bos_token_id", "eos_token_id", "decoder_start_token_id", "num_labels", "problem_type", "model_type",
          "id2label", "hidden_size", "num_attention_heads", "num_hidden_layers", "num_beams", "max_length",
          "do_sample", "forced_bos_token_id"]
ABSURD = st.sampled_from([0, -1, 3, 10 ** 7, 2 ** 31, 2 ** 40, 10 ** 12, 2 ** 64, True, 1.5, "8", None, [], {}])


@st.composite
def config_text(draw, fuzz):
    """A mutated config.json: fields set to any JSON value (absurd sizes often), removed, or the text corrupted."""
    if draw(st.integers(0, 4)) == 0:
        text = bytearray(fuzz.config_text.encode())
        for _ in range(draw(st.integers(1, 4))):
            text[draw(st.integers(0, len(text) - 1))] = draw(st.integers(0, 255))
        return bytes(text)
    config = json.loads(fuzz.config_text)
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(FIELDS) | st.text(max_size=10))
        if draw(st.integers(0, 5)) == 0:
            config.pop(field, None)
        else:
            config[field] = draw(ABSURD | JSON | st.integers(-2 ** 70, 2 ** 70))
    return json.dumps(config)


NAMES = st.sampled_from(["../elsewhere/x.safetensors", "{outside}", "../../../../etc/passwd", "..", ".", "",
                         "a/../../elsewhere/x.safetensors", "./model-00001-of-00002.safetensors", "sub/",
                         "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "x\\..\\y",
                         "c:x.safetensors", "nul\0byte", "model.safetensors.index.json", "config.json", "/"])


@st.composite
def index_text(draw, fuzz, weight_map, outside):
    """A mutated model.safetensors.index.json."""
    mode = draw(st.integers(0, 5))
    if mode == 0:
        text = bytearray(json.dumps({"weight_map": weight_map}).encode())
        for _ in range(draw(st.integers(1, 4))):
            text[draw(st.integers(0, len(text) - 1))] = draw(st.integers(0, 255))
        return bytes(text)
    if mode == 1:
        return json.dumps(draw(JSON | st.fixed_dictionaries({"weight_map": JSON})))
    mapping = dict(weight_map)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(mapping)) | st.text(max_size=10))
        mapping[key] = draw(NAMES.map(lambda n: n.format(outside=outside)) | JSON | st.text(max_size=20))
    return json.dumps({"metadata": {}, "weight_map": mapping})


def main(root, examples):
    fuzz = Fuzz(root)
    ledref.LEDForConditionalGeneration.from_pretrained(fuzz.base)  # warm: every import and first allocation done
    limit_memory()
    common = settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))

    @common
    @given(st.data())
    def corrupt_safetensors(data):
        raw = data.draw(safetensors_bytes(fuzz))
        path = fuzz.directory({"config.json": fuzz.config_text, "model.safetensors": raw})
        fuzz.attempt("safetensors", path, lambda p: [os.path.join(p, "model.safetensors")])
        shutil.rmtree(path)

    @common
    @given(st.data())
    def mutate_config(data):
        text = data.draw(config_text(fuzz))
        path = fuzz.directory({"config.json": text, "model.safetensors": fuzz.raw})
        fuzz.attempt("config", path, lambda p: [os.path.join(p, "model.safetensors")])
        shutil.rmtree(path)

    keys = sorted(fuzz.state)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    shard_bytes, weight_map = {}, {}
    for name, part in shards.items():
        file = os.path.join(root, name)
        save_file({k: fuzz.state[k] for k in part}, file)
        shard_bytes[name] = open(file, "rb").read()
        weight_map.update({k: name for k in part})
    elsewhere = os.path.join(root, "elsewhere")
    os.makedirs(elsewhere)
    outside = os.path.join(elsewhere, "x.safetensors")
    save_file({k: fuzz.state[k] for k in keys}, outside)  # a valid shard outside, all tensors in it
    opened = trace_opens()

    @common
    @given(st.data())
    def mutate_index(data):
        text = data.draw(index_text(fuzz, weight_map, outside))
        container = tempfile.mkdtemp(dir=root)  # ../elsewhere seen from the checkpoint: another valid shard
        os.makedirs(os.path.join(container, "elsewhere"))
        shutil.copy(outside, os.path.join(container, "elsewhere", "x.safetensors"))
        path = os.path.join(container, "checkpoint")
        os.makedirs(path)
        for name, content in {"config.json": fuzz.config_text, "model.safetensors.index.json": text,
                              **shard_bytes}.items():
            with open(os.path.join(path, name), "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
        opened.clear()
        opened.active = True
        try:
            fuzz.attempt("index", path, lambda p: ledref.checkpoint.weight_files(p))
        finally:
            opened.active = False
        root_name = os.path.normpath(path) + os.sep
        escaped = [p for p in opened if not os.path.normpath(os.path.abspath(p)).startswith(root_name)]
        assert not escaped, f"opened outside the checkpoint: {escaped}"
        shutil.rmtree(container)

    corrupt_safetensors()
    mutate_config()
    mutate_index()
    print(json.dumps(fuzz.counts))


class Opened(list):
    active = False


def trace_opens():
    """The paths opened while `.active`: Python's open (audit hook) and safetensors' reader as the loader calls it."""
    opened = Opened()
    original = ledref.checkpoint.safe_open

    def traced(path, *args, **kwargs):
        if opened.active:
            opened.append(os.fspath(path))
        return original(path, *args, **kwargs)

    ledref.checkpoint.safe_open = traced
    sys.addaudithook(lambda event, args: opened.append(os.fsdecode(args[0])) if (
        opened.active and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike))) else None)
    return opened


def limit_memory():
    """At most HEADROOM more address space than the process maps now (Linux): an allocation proportional to an
    absurd size fails with MemoryError, which the fuzzing reports as a failure."""
    try:
        with open("/proc/self/status") as f:
            mapped = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration):
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = mapped + HEADROOM
    if hard == resource.RLIM_INFINITY or wanted <= hard:
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
