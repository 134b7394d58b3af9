"""The `ledref` command: summarize a text file, convert a PyTorch checkpoint, describe a checkpoint.

    ledref summarize --model PATH_OR_ID [--global 0,...] [generation options] FILE|-
    ledref convert SRC DST
    ledref info PATH_OR_ID
    ledref plot --model PATH_OR_ID [--layer L] [--head H] [--view band|dense|grid] [--from N --to M] --out FILE TEXT
    ledref explore --model PATH_OR_ID [--global 0,...] [--layer L] [--summarize] --out PAGE.html TEXT
    ledref compare REFERENCE OTHER [--rtol R] [--atol A] [--only PATTERN]... [--exclude PATTERN]...
                   [--tol PATTERN=RTOL,ATOL]...
    ledref conformance MODULE:FUNCTION|path/to/file.py:FUNCTION [--dtype D] [--framework F] [--rtol R --atol A]
                       [--examples N] [--seed S] [--dump DIR]
    ledref conformance --dump DIR [--dtype D] [--examples N] [--seed S] [--variants]
    ledref conformance --check DIR [--rtol R --atol A]
    ledref golden --model PATH_OR_ID|--tiny --case NAME|all|--input FILE [--dtype float64] --out DIR
    ledref --version

A --model (or info's model) that looks like a path (it starts with ".", "/" or "~", or exists) is read from
disk and never looked up on the Hugging Face Hub.

Errors print one line on standard error and no traceback: `ledref: error: ...` with exit status 1 for an
error in the input (a file, a checkpoint, a value), 2 for bad command-line usage, and
`ledref: internal error: ...` with status 3 for an error ledref did not foresee (a bug: please report it).
`--debug`, or the environment variable LEDREF_DEBUG=1, prints the traceback as well. `compare` and
`conformance` also exit with 1 when a tensor or a case is NOT OK.
"""

import argparse
import json
import math
import os
import sys
import traceback
from dataclasses import replace

from .checks import read_bytes, utf8
from .checks import read_text as read_utf8
from .errors import LedrefError

EXIT_INPUT, EXIT_USAGE, EXIT_INTERNAL = 1, 2, 3
DEBUG_HELP = "print the traceback of an error (also: LEDREF_DEBUG=1)"


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
    from . import __version__
    parser = Parser(prog="ledref", description="A reference LED (Longformer-Encoder-Decoder) on the Array API.",
                    epilog="Exit status: 0 done, 1 an error in the input (or a NOT OK comparison), 2 bad usage, "
                           "3 an internal error.")
    parser.add_argument("--version", action="version", version=f"ledref {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
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
    s.add_argument("--early-stopping", type=early_stopping, choices=[True, False, "never"],
                   metavar="{true,false,never}")
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
    p.add_argument("--from", dest="start", type=int, help="first token shown (query rows; for the dense view, "
                                                          "queries and keys)")
    p.add_argument("--to", dest="stop", type=int, help="one past the last token shown (the dense view builds "
                                                        "only the window --from..--to)")
    p.add_argument("--log", action="store_true", help="logarithmic colour scale")
    p.add_argument("--truncate", action="store_true", help="cut inputs longer than the model reads")
    p.add_argument("--out", required=True, help="image file to write (.png or .svg)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    e = commands.add_parser("explore", help="write an HTML page to explore a long text's attention in a browser")
    e.add_argument("file", help="text file (or - for standard input)")
    e.add_argument("--model", required=True, help="checkpoint directory, Hugging Face cache folder or repo id")
    e.add_argument("--revision", help="branch, tag or commit of a Hub repo id")
    e.add_argument("--out", required=True, help="the page to write (.html): one self-contained file, opened offline")
    e.add_argument("--global", dest="global_positions", type=positions, default=[0], metavar="POSITIONS",
                   help="comma-separated token positions with global attention (default 0; 'none' for none)")
    e.add_argument("--layer", type=int, default=-1, help="encoder layer shown, every head and their mean "
                                                         "(default -1, the last)")
    e.add_argument("--summarize", action="store_true",
                   help="generate a summary too: pointing at its tokens shows the decoder's cross-attention")
    e.add_argument("--cross-layer", type=int, default=-1, help="decoder layer of the cross-attention (default -1)")
    e.add_argument("--num-beams", type=int)
    e.add_argument("--max-length", type=int)
    e.add_argument("--max-new-tokens", type=int)
    e.add_argument("--max-mb", type=float, default=25.0,
                   help="size limit of the page in MB (default 25): beyond it each token keeps its largest weights")
    e.add_argument("--truncate", action="store_true", help="cut inputs longer than the model reads")
    e.add_argument("--quiet", action="store_true", help="no progress bars")

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
    for sub in commands.choices.values():  # --debug after the command too, without overriding one before it
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
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
    generation = model.generation_config.update(**settings)
    generation.validate(model.config)  # before the progress bars are sized by it
    max_length, _ = generation.lengths()
    with progress_bar(model.config.encoder_layers, "encoder", args.quiet) as layers, \
            progress_bar(max_length - 1, "decoding", args.quiet) as steps:
        ids = model.generate(input_ids, global_attention_mask=global_mask,
                             encoder_progress=lambda: layers.update(), step_progress=lambda: steps.update(),
                             **settings)
    print(tokenizer.decode(ids[0].tolist(), skip_special_tokens=True))


def read_text(file):
    """The UTF-8 text of a file, or of standard input for "-" (at most checks.MAX_TEXT_BYTES bytes)."""
    if file != "-":
        return read_utf8(file, LedrefError, "text file")
    return utf8(read_bytes(sys.stdin.buffer, "standard input", LedrefError), "standard input", LedrefError)


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
    # only what is drawn is computed: every layer for the grid, else one layer and one head (index 0 of the
    # arrays returned)
    selection = {} if args.view == "grid" else dict(output_attentions=[args.layer], attention_heads=[args.head])
    with progress_bar(config.encoder_layers, "encoder", args.quiet) as layers:
        out = model.encoder(input_ids, global_attention_mask=global_mask, return_dict=True,
                            progress=lambda: layers.update(), **{"output_attentions": True, **selection})
    glob = out.global_attentions or (None,) * config.encoder_layers
    common = dict(start=start, stop=stop, log=args.log)
    if args.view == "grid":
        fig = viz.plot_grid(out.attentions, out.global_attentions, global_mask, **common)
    elif args.view == "band":
        fig = viz.plot_band(out.attentions[args.layer], glob[args.layer], global_mask, head=0, **common,
                            title=f"layer {args.layer}, head {args.head}: band view")
    else:  # the window --from..--to alone is built
        tokens = tokenizer.convert_ids_to_tokens(input_ids[0])
        fig = viz.plot_dense(out.attentions[args.layer], glob[args.layer], global_mask, head=0, **common,
                             tokens=tokens, title=f"layer {args.layer}, head {args.head}: dense view, tokens "
                                               f"{start}..{stop}")
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out} ({args.view} view of {length} tokens)")


def explore(args):
    from .explorer import explore as write_page
    from .hub import resolve
    from .model import LEDForConditionalGeneration, LEDModel
    from .tokenizer import LEDTokenizer

    if not args.out.lower().endswith((".html", ".htm")):
        raise UsageError(f"--out {args.out}: expected an .html file name")
    if not args.max_mb > 0:
        raise UsageError(f"--max-mb {args.max_mb}: expected a size > 0")
    text = read_text(args.file)
    path = resolve(args.model, args.revision)
    model = (LEDForConditionalGeneration if args.summarize else LEDModel).from_pretrained(path)
    config = model.config
    if not -config.encoder_layers <= args.layer < config.encoder_layers:
        raise UsageError(f"--layer {args.layer} is out of range; the encoder has layers 0..{config.encoder_layers - 1}")
    if not -config.decoder_layers <= args.cross_layer < config.decoder_layers:
        raise UsageError(f"--cross-layer {args.cross_layer} is out of range; the decoder has layers "
                         f"0..{config.decoder_layers - 1}")
    tokenizer = LEDTokenizer.from_pretrained(path)
    length = len(encode_text(tokenizer, model, text, args.file, args.truncate, args.global_positions)[0][0])
    settings = {name: getattr(args, name) for name in ("num_beams", "max_length", "max_new_tokens")
                if getattr(args, name) is not None}
    steps = model.generation_config.update(**settings).lengths()[0] - 1 if args.summarize else 0
    with progress_bar(config.encoder_layers, "encoder", args.quiet) as layers, \
            progress_bar(steps, "decoding", args.quiet or not steps) as decoding, \
            progress_bar(None, "page", args.quiet) as rows:
        def page_progress(done, total):
            rows.total = total
            rows.update(done - rows.n)

        page = write_page(model, text, args.out, tokenizer=tokenizer, global_positions=args.global_positions,
                          layer=args.layer, summarize=args.summarize, cross_layer=args.cross_layer,
                          max_bytes=int(args.max_mb * 1e6), truncate=args.truncate,
                          encoder_progress=lambda: layers.update(), step_progress=lambda: decoding.update(),
                          page_progress=page_progress, **settings)
    if page.summary is not None:
        print(page.summary)
    kept = page.kept["local"]
    detail = "every weight" if kept[0] >= kept[1] else f"the {kept[0]} largest of {kept[1]} weights per token"
    print(f"wrote {args.out} ({length:,} tokens, encoder layer {page.layer}, {page.heads} heads, "
          f"{page.bytes / 1e6:.1f} MB, {detail})")


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
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: expected a number >= 0")
    if args.input:
        from .compare import read_safetensors
        from .errors import InputError
        inputs = read_safetensors(args.input, InputError)
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
    """Run one command; returns the exit status. Every error is one line on standard error (see the
    module docstring for the statuses); the traceback only with --debug or LEDREF_DEBUG=1."""
    parser = build_parser()
    debug = os.environ.get("LEDREF_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        args = parser.parse_args(argv)
        debug = debug or args.debug
        status = {"summarize": summarize, "convert": convert_command, "info": info, "plot": plot,
                  "compare": compare_command, "conformance": conformance, "golden": golden,
                  "demo": demo, "explore": explore}[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # every error: one line, never a traceback unless asked for
        if debug:
            traceback.print_exc()
        message = " ".join(str(e).split())
        if isinstance(e, UsageError):
            print(f"ledref: error: {message} (see ledref --help)", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(e, LedrefError):
            print(f"ledref: error: {message}", file=sys.stderr)
            return EXIT_INPUT
        if isinstance(e, OSError):
            where = f"{e.filename}: " if getattr(e, "filename", None) else ""
            print(f"ledref: error: {where}{e.strerror or message}", file=sys.stderr)
            return EXIT_INPUT
        if isinstance(e, MemoryError):
            print("ledref: error: out of memory", file=sys.stderr)
            return EXIT_INPUT
        hint = "" if debug else "; rerun with --debug for the traceback"
        print(f"ledref: internal error: {type(e).__name__}: {message}{hint}", file=sys.stderr)
        return EXIT_INTERNAL
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
