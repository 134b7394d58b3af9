"""The `ledref` command: summarize a text file, convert a PyTorch checkpoint, describe a checkpoint.

    ledref summarize --model PATH_OR_ID [--global 0,...] [generation options] FILE|-
    ledref convert SRC DST
    ledref info PATH_OR_ID
    ledref plot --model PATH_OR_ID [--layer L] [--head H] [--view band|dense|grid] [--from N --to M] --out FILE TEXT
    ledref compare REFERENCE OTHER [--rtol R] [--atol A] [--only PATTERN]... [--exclude PATTERN]...
                   [--tol PATTERN=RTOL,ATOL]...
    ledref conformance MODULE:FUNCTION|path/to/file.py:FUNCTION [--dtype D] [--framework F] [--rtol R --atol A]
                       [--examples N] [--seed S] [--dump DIR]
    ledref conformance --dump DIR [--dtype D] [--examples N] [--seed S] [--variants]
    ledref conformance --check DIR [--rtol R --atol A]
    ledref golden --model PATH_OR_ID|--tiny --case NAME|all|--input FILE [--dtype float64] --out DIR

Errors print one line, `ledref: error: ...`, and exit with status 1 (2 for bad command-line usage).
`compare` and `conformance` also exit with 1 when a tensor or a case is NOT OK.
"""

import argparse
import json
import math
import os
import sys
from dataclasses import replace

from .errors import LedrefError


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of argparse's usage block
        raise UsageError(message)


def positions(text):
    """'0,5,9' -> [0, 5, 9]; '' or 'none' -> []."""
    if text.strip().lower() in ("", "none"):
        return []
    try:
        values = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated token positions, got {text!r}") from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"token positions must be >= 0, got {text!r}")
    return values


def tolerance(text):
    """'PATTERN=RTOL,ATOL' -> (pattern, rtol, atol)."""
    pattern, sep, values = text.rpartition("=")
    try:
        rtol, atol = (float(v) for v in values.split(","))
    except ValueError:
        rtol = None
    if not sep or not pattern or rtol is None or rtol < 0 or atol < 0:
        raise argparse.ArgumentTypeError(f"expected PATTERN=RTOL,ATOL with tolerances >= 0, got {text!r}")
    return pattern, rtol, atol


def early_stopping(text):
    values = {"true": True, "false": False, "never": "never"}
    if text not in values:
        raise argparse.ArgumentTypeError(f"expected true, false or never, got {text!r}")
    return values[text]


def build_parser():
    parser = Parser(prog="ledref", description="A reference LED (Longformer-Encoder-Decoder) on the Array API.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    s = commands.add_parser("summarize", help="generate a summary of a text file (- for standard input)")
    s.add_argument("file", help="text file to summarize, or - for standard input")
    s.add_argument("--model", required=True, help="checkpoint directory, Hugging Face cache folder or repo id")
    s.add_argument("--revision", help="branch, tag or commit of a Hub repo id")
    s.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    s.add_argument("--global", dest="global_positions", type=positions, default=[0], metavar="POSITIONS",
                   help="comma-separated token positions with global attention (default 0, the <s> token; "
                        "'none' for none)")
    s.add_argument("--truncate", action="store_true",
                   help="cut inputs longer than the model's max_encoder_position_embeddings instead of failing")
    s.add_argument("--num-beams", type=int)
    s.add_argument("--max-length", type=int)
    s.add_argument("--max-new-tokens", type=int)
    s.add_argument("--min-length", type=int)
    s.add_argument("--length-penalty", type=float)
    s.add_argument("--no-repeat-ngram-size", type=int)
    s.add_argument("--early-stopping", type=early_stopping, choices=[True, False, "never"], metavar="{true,false,never}")
    s.add_argument("--quiet", action="store_true", help="no progress bars")

    d = commands.add_parser("demo", help="run the embedded model on a long document, offline, and draw where it "
                                         "looks")
    d.add_argument("--model", default="ledref/tiny-needle",
                   help="checkpoint directory, Hugging Face cache folder or repo id (default: the embedded "
                        "ledref/tiny-needle)")
    d.add_argument("--text", help="a text file to read instead of a held-out task document (- for standard input)")
    d.add_argument("--seed", type=int, default=0, help="which held-out task document (default 0)")
    d.add_argument("--out", default="ledref-demo", help="folder for the figures (default ledref-demo)")

    c = commands.add_parser("convert", help="turn a pytorch_model.bin checkpoint into a safetensors one")
    c.add_argument("src", help="directory with pytorch_model.bin (or its index) and config.json")
    c.add_argument("dst", help="directory to write model.safetensors and the config and tokenizer files to")

    p = commands.add_parser("plot", help="draw the encoder's attention of a text file to a PNG or SVG")
    p.add_argument("file", help="text file (or - for standard input)")
    p.add_argument("--model", required=True, help="checkpoint directory, Hugging Face cache folder or repo id")
    p.add_argument("--revision", help="branch, tag or commit of a Hub repo id")
    p.add_argument("--global", dest="global_positions", type=positions, default=[0], metavar="POSITIONS",
                   help="comma-separated token positions with global attention (default 0; 'none' for none)")
    p.add_argument("--layer", type=int, default=0, help="encoder layer (band and dense views)")
    p.add_argument("--head", type=int, default=0, help="attention head (band and dense views)")
    p.add_argument("--view", choices=["band", "dense", "grid"], default="band",
                   help="band: query x relative offset; dense: query x key; grid: band views of all layers x heads")
    p.add_argument("--from", dest="start", type=int, help="first query token shown")
    p.add_argument("--to", dest="stop", type=int, help="one past the last query token shown")
    p.add_argument("--log", action="store_true", help="logarithmic colour scale")
    p.add_argument("--truncate", action="store_true", help="cut inputs longer than the model reads")
    p.add_argument("--out", required=True, help="image file to write (.png or .svg)")

    i = commands.add_parser("info", help="print the config and parameter count of a checkpoint")
    i.add_argument("model", help="checkpoint directory, Hugging Face cache folder or repo id")
    i.add_argument("--revision", help="branch, tag or commit of a Hub repo id")

    m = commands.add_parser("compare", help="compare two safetensors files (or directories) tensor by tensor")
    m.add_argument("reference", help="reference .safetensors file, or a directory of them")
    m.add_argument("other", help=".safetensors file (or directory) to check against the reference")
    m.add_argument("--rtol", type=float, default=1e-5, help="relative tolerance (default 1e-5)")
    m.add_argument("--atol", type=float, default=1e-6, help="absolute tolerance (default 1e-6); an element is bad "
                                                             "when |other - ref| > atol + rtol * |ref|")
    m.add_argument("--only", metavar="PATTERN", action="append",
                   help="compare only tensors whose name matches this fnmatch glob, e.g. 'encoder.layers.0.*' "
                        "(repeat for several)")
    m.add_argument("--exclude", metavar="PATTERN", action="append",
                   help="leave out tensors whose name matches this glob, e.g. '*.band_scores*' (repeat for several)")
    m.add_argument("--tol", metavar="PATTERN=RTOL,ATOL", action="append", type=tolerance,
                   help="tolerances for the tensors matching PATTERN, e.g. '*.local_probs=1e-3,1e-6' (repeat for "
                        "several; the first match wins; the others get --rtol and --atol)")

    k = commands.add_parser("conformance", help="check a Longformer attention kernel against ledref's reference, "
                                                "in this process or through files")
    k.add_argument("kernel", metavar="MODULE:FUNCTION", nargs="?",
                   help="the kernel: package.module:function or path/to/file.py:function (signature: see "
                        "ledref.testing); not with --check")
    k.add_argument("--dtype", choices=["float64", "float32", "float16", "bfloat16"],
                   help="the dtype of the kernel's inputs (default float64; --check reads it from the manifest); "
                        "the reference is float64 and the default tolerances are the dtype's (docs/tolerances.md)")
    k.add_argument("--framework", choices=["numpy", "torch", "jax"], default="numpy",
                   help="the kernel gets NumPy arrays, torch tensors or JAX arrays (default numpy)")
    k.add_argument("--device", help="torch or JAX device of the inputs, e.g. cuda (default cpu)")
    k.add_argument("--rtol", type=float, help="relative tolerance for every output (default: the dtype's, per output)")
    k.add_argument("--atol", type=float, help="absolute tolerance for every output (default: the dtype's, per output); "
                                              "an element is bad when |kernel - ref| > atol + rtol * |ref|")
    k.add_argument("--examples", type=int, help="hypothesis-generated cases after the catalogue (default 100; 0 for "
                                                "none); with --dump alone, fixed random cases to write (default 20)")
    k.add_argument("--seed", type=int, default=0, help="seed of the generated cases (default 0)")
    k.add_argument("--dump", metavar="DIR", help="write every case's inputs and a manifest as safetensors into DIR, "
                                                 "for a kernel in any language (with a kernel: run it too, and add "
                                                 "the shrunk failing hypothesis case)")
    k.add_argument("--check", metavar="DIR", help="compare the outputs/ a kernel wrote into a --dump DIR with the "
                                                  "reference")
    k.add_argument("--variants", action="store_true",
                   help="with --dump: the dilated and autoregressive cases too (the kernel takes dilation and "
                        "autoregressive)")

    g = commands.add_parser("golden", help="write inputs, config and every intermediate of a forward pass")
    source = g.add_mutually_exclusive_group()
    source.add_argument("--model", help="checkpoint directory, Hugging Face cache folder or repo id")
    source.add_argument("--tiny", action="store_true", help="a small random LED made for each case (no checkpoint)")
    what = g.add_mutually_exclusive_group(required=True)
    what.add_argument("--case", help="a catalogue case, or 'all' (ledref golden --list names them)")
    what.add_argument("--input", help="a .safetensors file with input_ids (and optionally attention_mask, "
                                      "global_attention_mask, decoder_input_ids)")
    what.add_argument("--list", action="store_true", help="print the catalogue of cases")
    g.add_argument("--dtype", choices=["float32", "float64", "bfloat16", "float16"], default="float64")
    g.add_argument("--seed", type=int, default=0, help="seed of the case's inputs (and of --tiny's weights)")
    g.add_argument("--out", help="directory to write <case>.safetensors into")
    return parser


def progress_bar(total, description, quiet):
    from tqdm import tqdm
    return tqdm(total=total, desc=description, file=sys.stderr, leave=False,
                disable=quiet or not sys.stderr.isatty())


def summarize(args):
    from .hub import resolve
    from .model import LEDForConditionalGeneration
    from .tokenizer import LEDTokenizer

    text = read_text(args.file)
    path = resolve(args.model, args.revision)
    model = LEDForConditionalGeneration.from_pretrained(path, dtype=args.dtype)
    tokenizer = LEDTokenizer.from_pretrained(path)
    input_ids, global_mask = encode_text(tokenizer, model, text, args.file, args.truncate, args.global_positions)
    settings = {name: getattr(args, name) for name in ("num_beams", "max_length", "max_new_tokens", "min_length",
                                                        "length_penalty", "no_repeat_ngram_size", "early_stopping")
                if getattr(args, name) is not None}
    max_length, _ = model.generation_config.update(**settings).lengths()
    with progress_bar(model.config.encoder_layers, "encoder", args.quiet) as layers, \
            progress_bar(max_length - 1, "decoding", args.quiet) as steps:
        ids = model.generate(input_ids, global_attention_mask=global_mask,
                             encoder_progress=lambda: layers.update(), step_progress=lambda: steps.update(),
                             **settings)
    print(tokenizer.decode(ids[0].tolist(), skip_special_tokens=True))


def read_text(file):
    try:
        return sys.stdin.read() if file == "-" else open(file, encoding="utf-8").read()
    except OSError as e:
        raise LedrefError(f"cannot read {file}: {e.strerror}") from None


def encode_text(tokenizer, model, text, file, truncate, global_positions):
    """(input_ids [1, L], global_attention_mask [1, L]) of a text, or a clear error."""
    limit = model.config.max_encoder_position_embeddings
    input_ids = tokenizer(text, truncation=truncate, max_length=limit if truncate else None)["input_ids"]
    if len(input_ids) > limit:
        raise LedrefError(f"{file} is {len(input_ids)} tokens long; the model reads at most {limit} "
                          f"(max_encoder_position_embeddings). Use --truncate to cut it")
    if any(p >= len(input_ids) for p in global_positions):
        raise LedrefError(f"--global position {max(global_positions)} is past the end of the input "
                          f"({len(input_ids)} tokens)")
    return [input_ids], [[1 if i in global_positions else 0 for i in range(len(input_ids))]]


def plot(args):
    from . import viz
    from .hub import resolve
    from .model import LEDModel
    from .tokenizer import LEDTokenizer

    if not args.out.lower().endswith((".png", ".svg")):
        raise UsageError(f"--out {args.out}: expected a .png or .svg file name")
    text = read_text(args.file)
    path = resolve(args.model, args.revision)
    model = LEDModel.from_pretrained(path)
    config = model.config
    if not 0 <= args.layer < config.encoder_layers:
        raise UsageError(f"--layer {args.layer} is out of range; the encoder has layers 0..{config.encoder_layers - 1}")
    if not 0 <= args.head < config.encoder_attention_heads:
        raise UsageError(f"--head {args.head} is out of range; the layers have heads "
                         f"0..{config.encoder_attention_heads - 1}")
    tokenizer = LEDTokenizer.from_pretrained(path)
    input_ids, global_mask = encode_text(tokenizer, model, text, args.file, args.truncate, args.global_positions)
    length = len(input_ids[0])
    start = 0 if args.start is None else args.start
    stop = length if args.stop is None else args.stop
    if not 0 <= start < stop <= length:
        raise UsageError(f"--from {start} --to {stop} is not a range of the {length} tokens; expected "
                         f"0 <= from < to <= {length}")
    out = model.encoder(input_ids, global_attention_mask=global_mask, output_attentions=True)
    glob = out.global_attentions or (None,) * config.encoder_layers
    common = dict(start=start, stop=stop, log=args.log)
    if args.view == "grid":
        fig = viz.plot_grid(out.attentions, out.global_attentions, global_mask, **common)
    elif args.view == "band":
        fig = viz.plot_band(out.attentions[args.layer], glob[args.layer], global_mask, head=args.head, **common,
                            title=f"layer {args.layer}, head {args.head}: band view")
    else:
        tokens = tokenizer.convert_ids_to_tokens(input_ids[0])
        fig = viz.plot_dense(out.attentions[args.layer], glob[args.layer], global_mask, head=args.head, **common,
                             tokens=tokens, title=f"layer {args.layer}, head {args.head}: dense view")
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out} ({args.view} view of {length} tokens)")


def golden(args):
    from .golden import CASES, case_inputs, tiny_model, write_golden
    if args.list:
        for name, (what, overrides, _, _) in CASES.items():
            print(f"{name:22s} {what}" + ("  (needs --tiny)" if overrides else ""))
        return
    if not args.out:
        raise UsageError("--out DIR is required to write golden files")
    if not args.model and not args.tiny:
        raise UsageError("one of --model PATH or --tiny is required")
    if args.input:
        from safetensors.numpy import load_file
        inputs = load_file(args.input)
        if "input_ids" not in inputs:
            raise LedrefError(f"{args.input} holds no input_ids tensor")
        names = {"input_ids", "attention_mask", "global_attention_mask", "decoder_input_ids"}
        runs = [(os.path.splitext(os.path.basename(args.input))[0], {k: v for k, v in inputs.items() if k in names})]
    else:
        cases = list(CASES) if args.case == "all" else [args.case]
        for case in cases:
            if case not in CASES:
                raise UsageError(f"--case {case!r} is not in the catalogue; expected one of {sorted(CASES)} or all")
            if CASES[case][1] and not args.tiny and args.case != "all":
                raise UsageError(f"case {case} changes the attention window; it needs --tiny")
        runs = []
        for case in cases:
            if CASES[case][1] and not args.tiny:
                print(f"skipped {case}: it changes the attention window ({CASES[case][1]}), which needs --tiny",
                      file=sys.stderr)
            else:
                runs.append((case, None))
    model = None if args.tiny else _golden_model(args)
    for case, inputs in runs:
        checkpoint = args.model
        if args.tiny:  # the weights beside the golden file, so that another implementation loads the same
            checkpoint = os.path.join(args.out, case)
            model = tiny_model(case if case in CASES else None, dtype=args.dtype, seed=args.seed, path=checkpoint)
        if inputs is None:
            inputs = case_inputs(case, model.config.vocab_size, seed=args.seed)
        print(write_golden(model, inputs, args.out, case, seed=args.seed,
                           checkpoint=case if args.tiny else checkpoint))


def _golden_model(args):
    from .model import LEDForConditionalGeneration
    return LEDForConditionalGeneration.from_pretrained(args.model, dtype=args.dtype)


def convert_command(args):
    from .convert import convert
    n = convert(args.src, args.dst)
    print(f"wrote {n} tensors to {args.dst}/model.safetensors (read back equal)")


def info(args):
    from .checkpoint import TIED_COPIES, tensor_shapes
    from .config import LEDConfig
    from .hub import resolve

    path = resolve(args.model, args.revision)
    config = LEDConfig.from_pretrained(path)
    shapes = tensor_shapes(path)
    counted = {k: v for k, v in shapes.items() if k.removeprefix("led.") not in TIED_COPIES}
    n_params = sum(math.prod(shape) for shape, _ in counted.values())
    dtypes = sorted({dtype for _, dtype in counted.values()})
    print(f"checkpoint: {path}")
    print(json.dumps(config.to_dict(), indent=2, sort_keys=True))
    print(f"parameters: {n_params:,} in {len(counted)} tensors ({', '.join(dtypes)})")


def compare_command(args):
    """Print the comparison table; status 1 unless every tensor is OK."""
    from .compare import compare
    if args.rtol < 0 or args.atol < 0:
        raise UsageError(f"--rtol {args.rtol} --atol {args.atol}: tolerances must be >= 0")
    report = compare(args.reference, args.other, rtol=args.rtol, atol=args.atol, only=args.only,
                     exclude=args.exclude, tolerances=args.tol)
    print(report.format())
    return 0 if report.ok else 1


def demo(args):
    """The demo story (ledref.demo.run); status 1 when the answer to a task document is wrong."""
    from .demo import run
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: expected a number >= 0")
    text = None if args.text is None else read_text(args.text)
    result = run(model=args.model, text=text, out=args.out, seed=args.seed)
    return 1 if result.correct is False else 0


def conformance(args):
    """Run the conformance suite on a kernel, write its cases to files, or check files a kernel wrote; print the
    report; status 1 unless every case passed."""
    from .conformance_files import check, default_cases, dump
    from .testing import check_longformer_attention, load_kernel
    if args.dump and args.check:
        raise UsageError("--dump writes cases and --check reads outputs; give one of them")
    if args.check and args.kernel:
        raise UsageError(f"--check compares the files in {args.check}; it takes no kernel ({args.kernel})")
    if not (args.kernel or args.dump or args.check):
        raise UsageError("give a kernel (MODULE:FUNCTION), --dump DIR or --check DIR")
    if args.kernel and ":" not in args.kernel:
        raise UsageError(f"{args.kernel!r}: expected MODULE:FUNCTION or path/to/file.py:FUNCTION")
    if args.check and args.dtype:
        raise UsageError(f"--check reads the dtype from {args.check}/manifest.json; drop --dtype")
    if args.device and args.framework == "numpy":
        raise UsageError(f"--device {args.device} places torch or JAX arrays; add --framework torch or jax")
    if args.variants and not args.dump:
        raise UsageError("--variants chooses the cases --dump writes; the in-process suite runs them for a kernel "
                         "that takes dilation and autoregressive")
    for name in ("examples", "rtol", "atol"):
        if (getattr(args, name) or 0) < 0:
            raise UsageError(f"--{name} {getattr(args, name)}: expected a number >= 0")
    if args.check:
        report = check(args.check, rtol=args.rtol, atol=args.atol)
        print(report.format())
        return 0 if report.ok else 1
    dtype = args.dtype or "float64"
    report = None
    if args.kernel:
        examples = 100 if args.examples is None else args.examples
        report = check_longformer_attention(load_kernel(args.kernel), rtol=args.rtol, atol=args.atol,
                                            examples=examples, dtype=dtype, framework=args.framework,
                                            device=args.device, seed=args.seed)
        report.kernel = args.kernel
        print(report.format())
    if args.dump:
        examples = 20 if args.examples is None or args.kernel else args.examples
        shrunk = [replace(r.case, name="hypothesis_shrunk") for r in (report.results if report else [])
                  if r.name == "hypothesis" and not r.passed and r.case is not None]
        cases = default_cases(examples, args.seed, args.variants) + shrunk
        dump(args.dump, cases, dtype=dtype)
        print(f"wrote the inputs of {len(cases)} cases ({dtype}) and manifest.json to {args.dump}"
              + (" (with the shrunk failing hypothesis case as hypothesis_shrunk)" if shrunk else "")
              + f"; write outputs/<case>.safetensors, then: ledref conformance --check {args.dump}")
    return 0 if report is None or report.ok else 1


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        status = {"summarize": summarize, "convert": convert_command, "info": info, "plot": plot,
                  "compare": compare_command, "conformance": conformance, "golden": golden,
                  "demo": demo}[args.command](args)
    except UsageError as e:
        print(f"ledref: error: {e} (see ledref --help)", file=sys.stderr)
        return 2
    except (LedrefError, OSError) as e:
        print(f"ledref: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
