"""Domain-adaptive pretraining of ERNIE / ERNIE-Gram: whole-word n-gram MLM + sentence order.

    python domain_pretrain/run_pretrain.py --model_name_or_path output/bootstrap/ernie \
        --input_prefix output/pretrain_data/domain --output_dir output/domain_pretrain/ernie

    python -m paddle.distributed.launch --nproc_per_node 2 --log_dir output/logs \
        domain_pretrain/run_pretrain.py ...   # data parallel; only rank 0 logs, evaluates and saves

Writes output_dir/model_{step}/ every --save_steps and output_dir/model_last/ (backbone, heads,
optimizer, scheduler, step): a re-run with the same output_dir resumes from model_last. At the end,
output_dir/final/ holds the backbone alone (save_pretrained + tokenizer): pass it to the next stage as
--model_name_or_path. output_dir/pretrain_summary.json: steps, tokens/s, wall time, and the held-out
(test split) MLM/SOP metrics of the initial and the final model.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import sys

import numpy as np
import paddle
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

import ns_common  # noqa: F401  (first: its warning filters quiet paddle's import)
from domain_pretrain.data import IndexedCorpus, PretrainingDataset, eval_batches, split_documents, train_batch_numbers
from domain_pretrain.data_tools.create_pretraining_data import vocab_fingerprint
from domain_pretrain.model import PretrainingModel, evaluate, pretraining_loss
from ns_common.checkpoint import check_finite_weights
from ns_common.cli import check_finite_flags, entry_point, fail
from ns_common.io import DataFileError
from ns_common.modeling import MODEL_TYPES, load_backbone, load_tokenizer, model_type_of
from ns_common.train_utils import check_loss, check_update
from ns_common.utils import (
    Timer,
    init_distributed,
    is_main_process,
    leave_together,
    logger,
    quiet_paddlenlp,
    rank,
    set_device,
    set_seed,
    world_size,
)

EVAL_SEED = 2024  # masking of the valid/test examples: the same for every run, so runs compare
# flags that decide which samples and masks a step sees: a resumed run must keep them
RESUME_KEYS = (
    "seed",
    "micro_batch_size",
    "world_size",
    "max_seq_len",
    "masked_lm_prob",
    "split",
    "vocab_sha1",
    "span_contrast",
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model_name_or_path",
        required=True,
        help="a PaddleNLP name (ernie-1.0, ernie-gram-zh) or a save_pretrained directory (ns_common.bootstrap)",
    )
    parser.add_argument(
        "--model_type",
        choices=MODEL_TYPES,
        default=None,
        help="checked against --model_name_or_path (default: taken from it)",
    )
    parser.add_argument(
        "--input_prefix", default=None, help="data from create_pretraining_data.py: {prefix}_ids.npy + {prefix}_idx.npz"
    )
    parser.add_argument(
        "--input_dir",
        default=None,
        help="alternative to --input_prefix: a directory holding exactly one *_ids.npy/*_idx.npz pair",
    )
    parser.add_argument("--output_dir", required=True)
    parser.add_argument(
        "--split",
        default="98,1,1",
        help="train,valid,test proportions of the documents (PaddleNLP uses 949,50,1 on far larger corpora)",
    )
    parser.add_argument("--max_seq_len", type=int, default=64, help="the downstream stages use 64 too")
    parser.add_argument("--masked_lm_prob", type=float, default=0.15)
    parser.add_argument("--micro_batch_size", type=int, default=16, help="samples per process and step")
    parser.add_argument("--max_lr", type=float, default=1e-3)
    parser.add_argument("--min_lr", type=float, default=1e-5)
    parser.add_argument("--warmup_rate", type=float, default=0.05, help="share of --max_steps with linear warmup")
    parser.add_argument("--weight_decay", type=float, default=0.01)
    parser.add_argument("--adam_beta1", type=float, default=0.9)
    parser.add_argument("--adam_beta2", type=float, default=0.999)
    parser.add_argument("--adam_epsilon", type=float, default=1e-8)
    parser.add_argument("--grad_clip", type=float, default=1.0, help="global-norm clipping; 0 turns it off")
    parser.add_argument(
        "--freeze_word_embeddings",
        action="store_true",
        help="keep the input word embeddings as they start (the MLM output layer learns its own copy)",
    )
    parser.add_argument(
        "--span_contrast",
        action="store_true",
        help="beyond PaddleNLP: also train the mean-pooled sentence embedding, each sample's two spans finding each other "
        "in the batch (coCondenser-style); what the recall stages warm-started from this model need",
    )
    parser.add_argument(
        "--max_steps", type=int, default=1500, help="default sized for CSL on 2 CPU cores in ~15 minutes"
    )
    parser.add_argument("--save_steps", type=int, default=500)
    parser.add_argument("--eval_freq", type=int, default=500)
    parser.add_argument("--eval_iters", type=int, default=10, help="validation batches per evaluation")
    parser.add_argument(
        "--test_iters", type=int, default=-1, help="test batches for the held-out metrics (-1: the whole test split)"
    )
    parser.add_argument("--logging_freq", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--device", default="cpu", help="cpu, gpu or gpu:N")
    parser.add_argument("--use_amp", action="store_true", help="float16 automatic mixed precision (GPU only)")
    parser.add_argument("--scale_loss", type=float, default=32768, help="initial loss scaling with --use_amp")
    parser.add_argument(
        "--kill_at_step", type=int, default=None, help=argparse.SUPPRESS
    )  # tests: SIGKILL itself after this step
    return parser.parse_args(argv)


def check_args(args):
    """Everything that can be checked before loading a model."""
    if (args.input_prefix is None) == (args.input_dir is None):
        fail("give one of --input_prefix or --input_dir")
    if args.input_dir is not None:
        if not os.path.isdir(args.input_dir):
            fail(f"--input_dir {args.input_dir}: no such directory")
        prefixes = sorted(f[: -len("_idx.npz")] for f in os.listdir(args.input_dir) if f.endswith("_idx.npz"))
        if len(prefixes) != 1:
            fail(
                f"--input_dir {args.input_dir}: expected exactly one *_idx.npz, found {len(prefixes)}; use --input_prefix"
            )
        args.input_prefix = os.path.join(args.input_dir, prefixes[0])
    for name in (
        "max_seq_len",
        "micro_batch_size",
        "max_steps",
        "save_steps",
        "eval_freq",
        "eval_iters",
        "logging_freq",
    ):
        if getattr(args, name) <= 0:
            fail(f"--{name} must be positive (got {getattr(args, name)})")
    if args.max_seq_len < 5:
        fail("--max_seq_len must be at least 5 ([CLS] A [SEP] B [SEP])")
    if not 0 < args.masked_lm_prob < 1:
        fail(f"--masked_lm_prob must be between 0 and 1 (got {args.masked_lm_prob})")
    if not 0 <= args.warmup_rate < 1:
        fail(f"--warmup_rate must be in [0, 1) (got {args.warmup_rate})")
    check_finite_flags(args)
    if not args.max_lr > 0 or args.min_lr < 0:
        fail(f"--max_lr must be positive and --min_lr >= 0 (got {args.max_lr}, {args.min_lr})")
    if args.min_lr > args.max_lr:
        fail(f"--min_lr {args.min_lr} is above --max_lr {args.max_lr}")
    for name in ("adam_beta1", "adam_beta2"):
        if not 0 <= getattr(args, name) < 1:
            fail(f"--{name} must be in [0, 1) (got {getattr(args, name)})")
    for name in ("weight_decay", "grad_clip"):
        if getattr(args, name) < 0:
            fail(f"--{name} must be >= 0 (got {getattr(args, name)})")
    if not args.adam_epsilon > 0 or not args.scale_loss > 0:
        fail(f"--adam_epsilon and --scale_loss must be positive (got {args.adam_epsilon}, {args.scale_loss})")
    if args.use_amp and not args.device.startswith("gpu"):
        fail("--use_amp needs --device gpu (float16 training is GPU only)")
    try:
        split_documents(1, args.split)
    except ValueError as e:
        fail(str(e))
    if args.model_type and model_type_of(args.model_name_or_path) != args.model_type:
        fail(
            f"--model_type {args.model_type} but --model_name_or_path {args.model_name_or_path} is {model_type_of(args.model_name_or_path)}"
        )


class LinearWarmupDecay(paddle.optimizer.lr.LRScheduler):
    """Linear warmup to max_lr over warmup_steps, then linear decay to min_lr at decay_steps."""

    def __init__(self, max_lr, min_lr, warmup_steps, decay_steps):
        self.max_lr, self.min_lr = max_lr, min_lr
        self.warmup_steps, self.decay_steps = warmup_steps, decay_steps
        super().__init__(learning_rate=max_lr)

    def get_lr(self):
        step = self.last_epoch
        if step < self.warmup_steps:
            return self.max_lr * (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.decay_steps - self.warmup_steps))
        return self.max_lr - (self.max_lr - self.min_lr) * progress


def build_optimizer(model, args):
    scheduler = LinearWarmupDecay(args.max_lr, args.min_lr, int(args.warmup_rate * args.max_steps), args.max_steps)
    # no weight decay on biases and normalisation weights
    decayed = {p.name for n, p in model.named_parameters() if not any(x in n for x in ("bias", "norm"))}
    optimizer = paddle.optimizer.AdamW(
        learning_rate=scheduler,
        parameters=[p for p in model.parameters() if not p.stop_gradient],
        beta1=args.adam_beta1,
        beta2=args.adam_beta2,
        epsilon=args.adam_epsilon,
        weight_decay=args.weight_decay,
        apply_decay_param_fun=lambda name: name in decayed,
        grad_clip=paddle.nn.ClipGradByGlobalNorm(args.grad_clip) if args.grad_clip > 0 else None,
    )
    return scheduler, optimizer


def find_checkpoint(output_dir):
    """model_last, or model_last.old when a save was interrupted between its two renames."""
    for name in ("model_last", "model_last.old"):
        path = os.path.join(output_dir, name)
        if os.path.isfile(os.path.join(path, "trainer_state.json")):
            return path
    return None


def save_checkpoint(output_dir, model, tokenizer, optimizer, scaler, state, keep_step_copy):
    """Writes model_last (and model_{step}) without ever leaving no valid model_last behind."""
    check_finite_weights(model, os.path.join(output_dir, "model_last"))
    tmp = os.path.join(output_dir, "model_last.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.backbone.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    paddle.save(model.heads_state_dict(), os.path.join(tmp, "pretraining_heads.pdparams"))
    paddle.save(optimizer.state_dict(), os.path.join(tmp, "optimizer.pdopt"))
    if scaler is not None:
        paddle.save(scaler.state_dict(), os.path.join(tmp, "scaler.pdparams"))
    with open(os.path.join(tmp, "trainer_state.json"), "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2)
    if keep_step_copy:
        step_dir = os.path.join(output_dir, f"model_{state['step']}")
        shutil.rmtree(step_dir, ignore_errors=True)
        shutil.copytree(tmp, step_dir)
    last, old = os.path.join(output_dir, "model_last"), os.path.join(output_dir, "model_last.old")
    shutil.rmtree(old, ignore_errors=True)
    if os.path.isdir(last):
        os.replace(last, old)
    os.replace(tmp, last)
    shutil.rmtree(old, ignore_errors=True)


def weights_checksum(model):
    digest = hashlib.sha1()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(value.numpy()).tobytes())
    return digest.hexdigest()


def format_eval(metrics):
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))


class StopRequest:
    """Ctrl-C / SIGTERM in a single-process run: finish the step, save model_last, exit. (Under
    paddle.distributed.launch the ranks could stop at different steps, so the default handlers stay.)"""

    def __init__(self):
        self.requested = False
        self.previous = {}

    def __enter__(self):
        if world_size() == 1:
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self.request)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def request(self, signum, frame):
        if self.requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("stop requested: saving model_last after this step (Ctrl-C again to abort without saving)")


@entry_point
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    quiet_paddlenlp()
    set_device(args.device)
    init_distributed()
    args.world_size = world_size()
    main_process = is_main_process()
    wall = Timer()

    try:
        corpus = IndexedCorpus(args.input_prefix)
    except DataFileError as e:
        fail(str(e))
    tokenizer = load_tokenizer(args.model_name_or_path)
    vocab_size, args.vocab_sha1 = vocab_fingerprint(tokenizer)
    if (vocab_size, args.vocab_sha1) != (corpus.vocab_size, corpus.vocab_sha1):
        fail(
            f"{corpus.prefix}: built with another vocabulary ({corpus.vocab_size} tokens) than --model_name_or_path {args.model_name_or_path} ({vocab_size}); rebuild the data with this model's tokenizer"  # noqa: E501
        )
    train_docs, valid_docs, test_docs = split_documents(corpus.n_docs, args.split)
    train_data = PretrainingDataset(
        corpus, train_docs, tokenizer, args.max_seq_len, args.masked_lm_prob, args.seed, span_views=args.span_contrast
    )
    valid_data = PretrainingDataset(
        corpus,
        valid_docs,
        tokenizer,
        args.max_seq_len,
        args.masked_lm_prob,
        EVAL_SEED,
        shuffle=False,
        span_views=args.span_contrast,
    )
    test_data = PretrainingDataset(
        corpus,
        test_docs,
        tokenizer,
        args.max_seq_len,
        args.masked_lm_prob,
        EVAL_SEED,
        shuffle=False,
        span_views=args.span_contrast,
    )
    if len(train_data) == 0:
        fail(f"--split {args.split}: the train split of {corpus.prefix} has no sample")
    if main_process:
        logger.info(
            f"data {corpus.prefix}: {corpus.n_docs} documents, {corpus.n_tokens} tokens; samples train {len(train_data)}, "
            f"valid {len(valid_data)}, test {len(test_data)} (documents {len(train_docs)}/{len(valid_docs)}/{len(test_docs)})"
        )
        for name, data in (("valid", valid_data), ("test", test_data)):
            if len(data) == 0:
                logger.warning(f"the {name} split is empty (--split {args.split}): no {name} metrics")

    os.makedirs(args.output_dir, exist_ok=True)
    checkpoint = find_checkpoint(args.output_dir)
    state = {
        "step": 0,
        "consumed_samples": 0,
        "train_tokens": 0,
        "train_seconds": 0.0,
        "wall_seconds": 0.0,
        "valid_history": [],
    }
    if checkpoint:
        with open(os.path.join(checkpoint, "trainer_state.json"), encoding="utf-8") as f:
            state = json.load(f)
        changed = [
            f"--{k} {getattr(args, k)} (checkpoint: {state['args'][k]})"
            for k in RESUME_KEYS
            if state["args"].get(k) != getattr(args, k)
        ]
        if changed:
            fail(
                f"{checkpoint} was trained with other settings: {'; '.join(changed)}. Use the same flags, or a new --output_dir"
            )
        if state["args"]["max_steps"] != args.max_steps and main_process:
            logger.warning(
                f"--max_steps {args.max_steps} differs from the checkpoint's {state['args']['max_steps']}: the learning-rate schedule follows the new value"  # noqa: E501
            )
        if state["args"]["model_name_or_path"] != args.model_name_or_path and main_process:
            logger.warning(
                f"resuming the weights of {checkpoint}, not --model_name_or_path {args.model_name_or_path} (started from {state['args']['model_name_or_path']})"  # noqa: E501
            )
    state["args"] = {k: v for k, v in vars(args).items() if k != "kill_at_step"}

    # fixed parameter names, so optimizer state saved by one run loads into the next one in the same process
    with paddle.utils.unique_name.guard():
        set_seed(args.seed)
        backbone = load_backbone(checkpoint or args.model_name_or_path)
        if backbone.config.vocab_size < vocab_size:
            fail(
                f"--model_name_or_path {args.model_name_or_path}: model vocab_size {backbone.config.vocab_size} < tokenizer's {vocab_size}"
            )
        if backbone.config.max_position_embeddings < args.max_seq_len:
            fail(
                f"--max_seq_len {args.max_seq_len} exceeds the model's max_position_embeddings {backbone.config.max_position_embeddings}"
            )
        model = PretrainingModel(
            backbone, freeze_word_embeddings=args.freeze_word_embeddings, span_contrast=args.span_contrast
        )
        scheduler, optimizer = build_optimizer(model, args)
        scaler = paddle.amp.GradScaler(init_loss_scaling=args.scale_loss) if args.use_amp else None
        if checkpoint:
            model.set_state_dict(paddle.load(os.path.join(checkpoint, "pretraining_heads.pdparams")))
            optimizer.set_state_dict(paddle.load(os.path.join(checkpoint, "optimizer.pdopt")))
            if scaler is not None and os.path.isfile(os.path.join(checkpoint, "scaler.pdparams")):
                scaler.load_state_dict(paddle.load(os.path.join(checkpoint, "scaler.pdparams")))
            if main_process:
                logger.info(
                    f"resuming from {checkpoint}: step {state['step']}, {state['consumed_samples']} samples consumed"
                )
        train_model = paddle.DataParallel(model) if args.world_size > 1 else model
        run(
            args,
            corpus,
            tokenizer,
            model,
            train_model,
            scheduler,
            optimizer,
            scaler,
            state,
            train_data,
            valid_data,
            test_data,
            wall,
        )
    leave_together()


def run(
    args,
    corpus,
    tokenizer,
    model,
    train_model,
    scheduler,
    optimizer,
    scaler,
    state,
    train_data,
    valid_data,
    test_data,
    wall,
):
    main_process = is_main_process()
    wall_before = state["wall_seconds"]
    writer = None
    if main_process:
        try:
            from visualdl import LogWriter

            writer = LogWriter(logdir=os.path.join(args.output_dir, "visualdl"))
        except ImportError:
            pass
        if "test_initial" not in state:
            state["test_initial"] = evaluate(model, eval_batches(test_data, args.micro_batch_size, args.test_iters))
            logger.info(f"step 0 test: {format_eval(state['test_initial'])}")

    global_batch = args.micro_batch_size * args.world_size
    model.train()
    progress = tqdm(
        total=args.max_steps,
        initial=state["step"],
        desc="pretraining",
        unit="step",
        disable=not main_process or None,
        mininterval=5,
    )
    losses = ("loss", "mlm_loss", "sop_loss") + (("span_loss",) if args.span_contrast else ())
    window = {**dict.fromkeys(losses, 0.0), "steps": 0, "tokens": 0, "seconds": 0.0}
    with logging_redirect_tqdm(loggers=[logger]), StopRequest() as stop:
        while state["step"] < args.max_steps:
            step_timer = Timer()
            batch = train_data.batch(train_batch_numbers(state["step"], args.micro_batch_size, rank(), args.world_size))
            # dropout masks depend only on (seed, step, rank): a resumed run draws the same ones
            paddle.seed(int(np.random.SeedSequence([args.seed, state["step"], rank()]).generate_state(1)[0]))
            input_names = ("input_ids", "token_type_ids", "masked_positions") + (
                ("span_a_ids", "span_b_ids") if args.span_contrast else ()
            )
            inputs = [paddle.to_tensor(batch[k]) for k in input_names]
            with paddle.amp.auto_cast(enable=args.use_amp, level="O1"):
                mlm_logits, sop_logits, span_logits = train_model(*inputs)
                loss, mlm_loss, sop_loss, span_loss = pretraining_loss(
                    mlm_logits,
                    paddle.to_tensor(batch["masked_labels"]),
                    sop_logits,
                    paddle.to_tensor(batch["sop_labels"]),
                    span_logits,
                )
            check_loss(loss, state["step"] + 1, progress)  # NaN/inf: one line, model_last and final/ stay as they are
            if scaler is not None:
                scaled = scaler.scale(loss)
                scaled.backward()
                scaler.minimize(optimizer, scaled)
            else:
                loss.backward()
                optimizer.step()
            check_update(model, state["step"] + 1, progress)
            scheduler.step()
            optimizer.clear_grad()

            state["step"] += 1
            state["consumed_samples"] += global_batch
            tokens = batch["n_tokens"] * args.world_size  # every rank's batch is about this size
            state["train_tokens"] += tokens
            state["train_seconds"] += step_timer.seconds
            for key, value in zip(losses, (loss, mlm_loss, sop_loss, span_loss)):
                window[key] += value.item()
            window["steps"] += 1
            window["tokens"] += tokens
            window["seconds"] += step_timer.seconds
            progress.update(1)
            step = state["step"]
            if args.kill_at_step == step:
                os.kill(os.getpid(), signal.SIGKILL)  # simulates a crash: nothing after the last checkpoint is saved

            if main_process and (step % args.logging_freq == 0 or step == args.max_steps):
                averages = {k: window[k] / window["steps"] for k in losses}
                speed = window["tokens"] / max(window["seconds"], 1e-9)
                span = f", span {averages['span_loss']:.4f}" if args.span_contrast else ""
                logger.info(
                    f"step {step}/{args.max_steps}: loss {averages['loss']:.4f} (mlm {averages['mlm_loss']:.4f}, sop {averages['sop_loss']:.4f}{span}), "  # noqa: E501
                    f"lr {optimizer.get_lr():.2e}, {speed:.0f} tokens/s"
                )
                progress.set_postfix(loss=f"{averages['loss']:.3f}")
                if writer:
                    for key, value in averages.items():
                        writer.add_scalar(f"train/{key}", value, step)
                    writer.add_scalar("train/lr", optimizer.get_lr(), step)
                window = dict.fromkeys(window, 0)
            if main_process and len(valid_data) and (step % args.eval_freq == 0 or step == args.max_steps):
                metrics = evaluate(model, eval_batches(valid_data, args.micro_batch_size, args.eval_iters))
                state["valid_history"].append({"step": step, **metrics})
                logger.info(f"step {step} valid: {format_eval(metrics)}")
                if writer:
                    for key in ("mlm_loss", "mlm_acc", "sop_loss", "sop_acc"):
                        writer.add_scalar(f"valid/{key}", metrics[key], step)
            if main_process and (step % args.save_steps == 0 or step == args.max_steps or stop.requested):
                state["wall_seconds"] = wall_before + wall.seconds
                save_checkpoint(
                    args.output_dir,
                    model,
                    tokenizer,
                    optimizer,
                    scaler,
                    state,
                    keep_step_copy=step % args.save_steps == 0,
                )
            if stop.requested:
                progress.close()
                logger.warning(f"stopped at step {step}; model_last saved: run the same command again to resume")
                raise SystemExit(130)
    progress.close()
    if writer:
        writer.close()

    if args.world_size > 1:  # lets the test compare the ranks' weights
        with open(os.path.join(args.output_dir, f"weights_checksum.rank{rank()}.txt"), "w") as f:
            f.write(weights_checksum(model) + "\n")
    if not main_process:
        return
    final_dir = os.path.join(args.output_dir, "final")
    check_finite_weights(model, final_dir)
    model.backbone.save_pretrained(final_dir)
    tokenizer.save_pretrained(final_dir)
    test_final = evaluate(model, eval_batches(test_data, args.micro_batch_size, args.test_iters))
    wall_seconds = wall_before + wall.seconds
    config = model.backbone.config
    summary = {
        "model_type": model_type_of(args.model_name_or_path),
        "model_name_or_path": args.model_name_or_path,
        "final_dir": final_dir,
        "model": {
            "hidden_size": config.hidden_size,
            "num_hidden_layers": config.num_hidden_layers,
            "vocab_size": config.vocab_size,
        },
        "data": {
            "prefix": corpus.prefix,
            "documents": corpus.n_docs,
            "tokens": corpus.n_tokens,
            "split": args.split,
            "train_samples": len(train_data),
            "valid_samples": len(valid_data),
            "test_samples": len(test_data),
        },
        "steps": state["step"],
        "world_size": args.world_size,
        "global_batch_size": args.micro_batch_size * args.world_size,
        "consumed_samples": state["consumed_samples"],
        "epochs": state["consumed_samples"] / len(train_data),
        "train_tokens": state["train_tokens"],
        "train_seconds": round(state["train_seconds"], 1),
        "tokens_per_second": round(state["train_tokens"] / max(state["train_seconds"], 1e-9), 1),
        "wall_seconds": round(wall_seconds, 1),
        "test_initial": state["test_initial"],
        "test_final": test_final,
        "valid_history": state["valid_history"],
    }
    with open(os.path.join(args.output_dir, "pretrain_summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
    if test_final:
        logger.info(f"final test: {format_eval(test_final)}")
    logger.info(
        f"pretrained {state['step']} steps ({summary['epochs']:.2f} epochs, {state['train_tokens']} tokens, {summary['tokens_per_second']:.0f} tokens/s) "  # noqa: E501
        f"in {wall_seconds:.0f}s; test MLM acc {state['test_initial'].get('mlm_acc', float('nan')):.4f} -> {test_final.get('mlm_acc', float('nan')):.4f}; "  # noqa: E501
        f"backbone -> {final_dir}"
    )


if __name__ == "__main__":
    sys.exit(main())
