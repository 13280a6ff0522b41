"""Command-line helpers every stage's scripts share: generic flag types and checks, and the flags that
load a trained semantic encoder. Each check fails with one line for the user, before any model is loaded."""

import argparse
import fnmatch
import functools
import math
import os
import sys

from ns_common.errors import BadInputError, ConfigError, NeuralSearchError
from ns_common.io import DataFileError, check_file


def fail(message, code=2):
    """One-line error for the user, no traceback. Entry points only: library code raises (ns_common.errors)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def entry_point(main):
    """Decorates a script's main(): a NeuralSearchError becomes its one line on stderr and its exit code
    (2 for bad input or settings, 1 for Milvus unreachable, 3 for a diverged training), Ctrl-C exit code 130."""

    @functools.wraps(main)
    def run(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except NeuralSearchError as e:
            fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return run


def str_to_bool(text):
    """A flag or YAML value read as a boolean: true/1/yes/on or false/0/no/off."""
    if str(text).lower() in ("true", "1", "yes", "on"):
        return True
    if str(text).lower() in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def check_files(*flag_paths):
    """(flag, path) pairs: fails with one line when a given input file is missing (None: flag not given)."""
    for flag, path in flag_paths:
        if path is None:
            continue
        try:
            check_file(path, f"--{flag}")
        except DataFileError as e:
            raise BadInputError(str(e)) from None


def check_finite_flags(args):
    """NaN or infinity in any float flag (--learning_rate nan passes every `<= 0` check) is a one-line error."""
    for name, value in sorted(vars(args).items()):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"--{name} must be a finite number, got {value}")


POOLING_HELP = (
    "default: the checkpoint's (encoder_config.json; cls for a checkpoint without one, as PaddleNLP's), mean without "
    "a checkpoint"
)


def add_encoder_shape_args(parser, pooling_help=POOLING_HELP):
    """--output_emb_size and --pooling: what a checkpoint's encoder looks like (read from it by default)."""
    parser.add_argument(
        "--output_emb_size",
        type=int,
        default=None,
        help="the projection size the model was trained with (default: read from the checkpoint)",
    )
    parser.add_argument("--pooling", choices=("cls", "mean"), default=None, help=pooling_help)


def add_encoder_args(parser, with_params=True):
    """Flags that load a trained encoder (the training flags' names)."""
    parser.add_argument(
        "--model_name_or_path",
        required=True,
        help="the backbone directory (or name) the model was trained from; also the tokenizer",
    )
    if with_params:
        parser.add_argument(
            "--params_path",
            default=None,
            help="model_state.pdparams of a trained model (or its directory); without it the backbone's own weights "
            "and a seeded random projection: the untrained baseline",
        )
    add_encoder_shape_args(parser)
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="cpu, gpu or gpu:N")
    return parser


def _creatable(path):
    """None when a file or directory can be created at path (its first existing ancestor a writable directory),
    else why not."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        if os.path.islink(parent):
            return f"{parent} is a broken link"
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"{parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"directory {parent} is not writable"
    return None


# flags naming a model, checkpoint or ranking a command reads (files or directories): every command that writes
# passes model_inputs(args) to check_outputs, so no output lands on (or inside) one of them
MODEL_INPUT_FLAGS = ("model_dir", "params_path", "model_name_or_path", "reranker_dir", "ranking_dir", "init_from_ckpt")


def model_inputs(args):
    """(flag, path) of each model, checkpoint, ranking and --config the command was given that exists on disk (a
    --model_name_or_path that is a name, not a directory, is no file of this machine)."""
    pairs = [(flag, getattr(args, flag, None)) for flag in MODEL_INPUT_FLAGS + ("config",)]
    return [(flag, path) for flag, path in pairs if path and os.path.exists(path)]


def _input_holding(path, inputs):
    """The (flag, input path) that path is, or lies inside (an input directory), else None."""
    real = os.path.realpath(path)
    for flag, in_path in inputs:
        if real == in_path or (os.path.isdir(in_path) and real.startswith(in_path.rstrip(os.sep) + os.sep)):
            return flag, in_path
    return None


def replaceable_dir(path, owned):
    """None when the command may replace directory `path` whole: it is absent, empty, or its own earlier output
    (it holds the marker file owned[0], and nothing but files matching the names or patterns in `owned`, e.g.
    "chunk_*.npy"); else why not. No command deletes what it did not write."""
    if not os.path.exists(path):
        return None
    if not os.path.isdir(path):
        return "exists and is not a directory"
    entries = set(os.listdir(path))
    if not entries:
        return None
    if owned[0] not in entries:
        return f"is not empty and holds no {owned[0]} (not an output of this command); give a new or empty directory"
    foreign = sorted(e for e in entries if not any(fnmatch.fnmatchcase(e, pattern) for pattern in owned))
    if foreign:
        return f"holds {foreign[0]!r}, which this command did not write; give a new or empty directory"
    return None


def check_outputs(files=(), dirs=(), inputs=(), replaced_dirs=()):
    """Before any work: each output file ((flag, path) pairs; None: not given) can be written, is not a directory
    and is not one of the inputs nor inside an input directory (inputs: paths, or (flag, path) pairs, e.g.
    model_inputs(args) and the Milvus Lite database: the same file by os.path.realpath, so no run overwrites what it
    reads); each output directory ((flag, path) pairs) is a writable directory or can be created, and is no input
    nor inside one. replaced_dirs: (flag, path, owned file names, marker first) of directories the command replaces
    whole: refused unless replaceable_dir allows it. Raises BadInputError naming the flag."""
    inputs = [(item if isinstance(item, (tuple, list)) else (None, item)) for item in inputs if item]
    inputs = [(flag, os.path.realpath(path)) for flag, path in inputs if path]

    def refuse_input(name, path, what_kind):
        held = _input_holding(path, inputs)
        if held is None:
            return
        in_flag, in_path = held
        what = f"--{in_flag.lstrip('-')}" if in_flag else "an input"
        where = "is" if os.path.realpath(path) == in_path else f"is inside {in_path},"
        raise BadInputError(f"{name}: {where} {what} of this run; writing it would destroy the input, {what_kind}")

    for flag, path in files:
        if path is None:
            continue
        name = f"--{flag.lstrip('-')} {path}"
        if not str(path).strip():
            raise BadInputError(f"--{flag.lstrip('-')} is empty: give an output file")
        if os.path.isdir(path):
            raise BadInputError(f"{name}: is a directory, expected a file to write")
        if os.path.exists(path) and not os.access(path, os.W_OK):
            raise BadInputError(f"{name}: file is not writable")
        why = _creatable(path)
        if why:
            raise BadInputError(f"{name}: cannot be written ({why})")
        refuse_input(name, path, "give another path")
    for flag, path, *owned in list(dirs) + list(replaced_dirs):
        if path is None:
            continue
        name = f"--{flag.lstrip('-')} {path}"
        if os.path.exists(path):
            if not os.path.isdir(path):
                raise BadInputError(f"{name}: exists and is not a directory")
            if not os.access(path, os.W_OK | os.X_OK):
                raise BadInputError(f"{name}: directory is not writable")
        else:
            why = _creatable(path)
            if why:
                raise BadInputError(f"{name}: cannot be created ({why})")
        refuse_input(name, path, "give another directory")
        if owned:
            why = replaceable_dir(path, owned[0])
            if why:
                raise BadInputError(f"{name}: {why}")


def positive_int(text):
    """A flag read as an integer of at least 1 (`--cpu_threads 0`, `--max_connections -1`, `--batch_size 2.5` refused)."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def layer_list(text) -> tuple:
    """A set of encoder layers (--drop_layers, --query_drop_layers): "2,4,6,8" -> (2, 4, 6, 8); "" -> ()."""
    try:
        layers = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"layer indices are integers separated by commas (2,4,6,8), got {text!r}"
        ) from None
    if any(i < 0 for i in layers):
        raise argparse.ArgumentTypeError(f"layer indices start at 0, got {text!r}")
    return layers


def device_flag(text):
    """A --device value: cpu, gpu or gpu:N (N a card number); anything else (`tpu`, `gpu:x`, `cuda`) refused."""
    device = str(text).strip().lower()
    kind, _, card = device.partition(":")
    if device in ("cpu", "gpu") or (kind == "gpu" and card.isdigit() and card.isascii()):
        return device
    raise argparse.ArgumentTypeError(f"expected cpu, gpu or gpu:N, got {text!r}")
