"""The training loop every fine-tuning stage shares (SimCSE, in-batch negatives, the reranker).

A stage script reads its data, builds its model (whose forward returns the loss for a batch dict)
and a collate function, then calls:

    loader = build_dataloader(examples, args.batch_size, collate_fn)
    summary = train(model, tokenizer, loader, args, evaluate=evaluate_fn)

`train` handles what PaddleNLP's scripts repeat each time: AdamW with linear warmup/decay and no weight
decay on bias/norm, paddle.DataParallel under paddle.distributed.launch, checkpoints
`save_dir/model_{step}/` (model_state.pdparams + tokenizer files) every --save_steps and at the end,
evaluation every --eval_steps and after each epoch with the best model kept as `save_dir/model_best/`,
a checkpoint on Ctrl-C or kill (SIGTERM), and `save_dir/train_summary.json` (steps, wall time, loss curve, best metrics).
"""

import json
import math
import os
import signal

import numpy as np
import paddle

from ns_common.checkpoint import check_finite_weights, save_checkpoint
from ns_common.cli import check_files, check_finite_flags, check_outputs
from ns_common.errors import BadInputError, ConfigError, NonFiniteError
from ns_common.modeling import check_backbone
from ns_common.utils import Timer, is_main_process, logger, world_size


def add_train_args(parser, **defaults):
    """The flags every training script shares (PaddleNLP's names). defaults override the values below."""
    values = dict(
        save_dir="./checkpoints",
        max_seq_length=64,
        batch_size=64,
        learning_rate=5e-5,
        weight_decay=0.0,
        epochs=1,
        max_steps=-1,
        warmup_proportion=0.0,
        seed=1000,
        device="cpu",
        save_steps=0,
        eval_steps=0,
        logging_steps=10,
        max_grad_norm=1.0,
    )
    values.update(defaults)
    parser.add_argument(
        "--model_name_or_path",
        required=True,
        help="backbone and tokenizer: a save_pretrained directory (bootstrap or domain-pretrained) or a PaddleNLP name",
    )
    parser.add_argument(
        "--init_from_ckpt",
        default=None,
        help="model_state.pdparams (or its directory) of an earlier stage to start from",
    )
    parser.add_argument(
        "--save_dir",
        default=values["save_dir"],
        help="checkpoints go to save_dir/model_{step}/ and save_dir/model_final/",
    )
    parser.add_argument("--max_seq_length", type=int, default=values["max_seq_length"])
    parser.add_argument("--batch_size", type=int, default=values["batch_size"], help="examples per step and process")
    parser.add_argument("--learning_rate", type=float, default=values["learning_rate"])
    parser.add_argument("--weight_decay", type=float, default=values["weight_decay"])
    parser.add_argument("--epochs", type=int, default=values["epochs"])
    parser.add_argument(
        "--max_steps",
        type=int,
        default=values["max_steps"],
        help="stop after this many steps (overrides --epochs when > 0)",
    )
    parser.add_argument("--warmup_proportion", type=float, default=values["warmup_proportion"])
    parser.add_argument(
        "--max_grad_norm",
        type=float,
        default=values["max_grad_norm"],
        help="global gradient-norm clipping; 0 turns it off",
    )
    parser.add_argument("--seed", type=int, default=values["seed"])
    parser.add_argument("--device", default=values["device"], help="cpu, gpu or gpu:N")
    parser.add_argument(
        "--save_steps",
        type=int,
        default=values["save_steps"],
        help="also save save_dir/model_{step}/ every N steps (0: only at the end)",
    )
    parser.add_argument(
        "--eval_steps",
        type=int,
        default=values["eval_steps"],
        help="also evaluate every N steps (0: after each epoch only)",
    )
    parser.add_argument("--logging_steps", type=int, default=values["logging_steps"])
    return parser


def check_train_args(args, files=()):
    """Fails with one line on a bad flag or a missing file, before any model is loaded."""
    check_finite_flags(args)
    for name in ("max_seq_length", "batch_size", "epochs"):
        if getattr(args, name) <= 0:
            raise ConfigError(f"--{name} must be positive, got {getattr(args, name)}")
    if args.max_seq_length < 3:
        raise ConfigError(f"--max_seq_length must be at least 3 ([CLS] text [SEP]), got {args.max_seq_length}")
    if args.learning_rate <= 0:
        raise ConfigError(f"--learning_rate must be positive, got {args.learning_rate}")
    for name in ("weight_decay", "max_grad_norm"):
        if getattr(args, name, 0) < 0:
            raise ConfigError(f"--{name} must be >= 0, got {getattr(args, name)}")
    if not 0 <= args.warmup_proportion < 1:
        raise ConfigError(f"--warmup_proportion must be in [0, 1), got {args.warmup_proportion}")
    if (getattr(args, "output_emb_size", None) or 0) < 0:
        raise ConfigError(f"--output_emb_size must be >= 0, got {args.output_emb_size}")
    for name in ("save_steps", "eval_steps"):
        if getattr(args, name) < 0:
            raise ConfigError(f"--{name} must be >= 0, got {getattr(args, name)}")
    check_backbone(args.model_name_or_path, args.max_seq_length)
    if args.init_from_ckpt:
        path = args.init_from_ckpt
        if os.path.isdir(path):
            path = os.path.join(path, "model_state.pdparams")
        if not os.path.isfile(path):
            raise ConfigError(f"--init_from_ckpt: checkpoint not found: {path}")
    check_files(*files)
    check_outputs(
        dirs=[("save_dir", getattr(args, "save_dir", None))],
        inputs=[pair for pair in files if isinstance(pair, (tuple, list))],
    )


def check_loss(loss, step, progress=None):
    """Stops training with one line when the loss of `step` is NaN or infinite, before that step updates
    the weights: the checkpoints already written (model_best/, model_final/ of an earlier run) stay as
    they are. Under paddle.distributed.launch the losses are summed first, so every process stops together."""
    value = float(loss)
    if world_size() > 1:
        total = paddle.to_tensor([value], dtype="float32")
        paddle.distributed.all_reduce(total)
        value = float(total.numpy()[0])
    if not math.isfinite(value):
        stop_progress(progress)
        raise NonFiniteError(
            f"step {step}: the loss is {value}; stopped without saving anything (the last good checkpoints are kept). "
            "Lower --learning_rate, or check the data and --init_from_ckpt"
        )
    return float(loss)


def check_update(model, step, progress=None):
    """After the optimizer step: weights the update made NaN or infinite stop training with one line (a
    loss can stay finite while they break: paddle's softmax turns NaN logits into a uniform one). One sum
    over all parameters, a fraction of a training step."""
    total = float(paddle.add_n([p.astype("float32").sum() for p in model.parameters()]))
    if not math.isfinite(total):
        stop_progress(progress)
        raise NonFiniteError(
            f"step {step}: the update made the weights NaN/inf; stopped without saving anything (the last good "
            "checkpoints are kept). Lower --learning_rate"
        )


def stop_progress(progress):
    """Ends a tqdm bar so that the error that follows gets a line of its own."""
    if progress is not None:
        progress.close()


def build_dataloader(examples, batch_size, collate_fn, shuffle=True, drop_last=False):
    """DataLoader over a list of examples; under paddle.distributed.launch each process gets its share."""
    sampler = paddle.io.DistributedBatchSampler(examples, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    return paddle.io.DataLoader(examples, batch_sampler=sampler, collate_fn=collate_fn, return_list=True, num_workers=0)


def build_optimizer(
    model, learning_rate, num_training_steps, warmup_proportion=0.0, weight_decay=0.0, max_grad_norm=1.0
):
    """AdamW with linear warmup then linear decay to 0; bias and LayerNorm weights get no weight decay."""
    from paddlenlp.transformers import LinearDecayWithWarmup

    lr_scheduler = LinearDecayWithWarmup(learning_rate, num_training_steps, warmup_proportion)
    decay_params = {p.name for n, p in model.named_parameters() if not any(nd in n for nd in ("bias", "norm"))}
    optimizer = paddle.optimizer.AdamW(
        learning_rate=lr_scheduler,
        parameters=model.parameters(),
        weight_decay=weight_decay,
        apply_decay_param_fun=lambda name: name in decay_params,
        grad_clip=paddle.nn.ClipGradByGlobalNorm(max_grad_norm) if max_grad_norm and max_grad_norm > 0 else None,
    )
    return optimizer, lr_scheduler


def _save_on_sigterm():
    """A `kill` (SIGTERM) ends training like Ctrl-C: the current weights are saved first."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, interrupt)


def train(model, tokenizer, train_loader, args, evaluate=None, best_metric="recall@5", loss_fn=None):
    """Runs the optimisation and returns the summary dict (also written to save_dir/train_summary.json).

    model: a paddle Layer whose forward(**batch) returns the loss (or pass loss_fn(model, batch)).
    evaluate: optional fn(model) -> metrics dict; the checkpoint with the highest metrics[best_metric] is
    kept as save_dir/model_best/. Under paddle.distributed.launch every process evaluates (the same
    thing, in parallel) and only the main one logs and saves: on CPU, gloo aborts a collective that
    waits more than ~30 s, so the others cannot simply wait while the main process evaluates alone.
    """
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise BadInputError("no training batches: the training set is empty")
    if args.max_steps > 0:
        num_training_steps = args.max_steps
        epochs = math.ceil(args.max_steps / steps_per_epoch)
    else:
        num_training_steps = steps_per_epoch * args.epochs
        epochs = args.epochs
    optimizer, lr_scheduler = build_optimizer(
        model,
        args.learning_rate,
        num_training_steps,
        args.warmup_proportion,
        args.weight_decay,
        getattr(args, "max_grad_norm", 1.0),
    )
    # DataParallel all-reduces the gradients; evaluation and saving use the plain model
    # (find_unused_parameters: mean pooling leaves the backbone's pooler without gradients)
    train_model = paddle.DataParallel(model, find_unused_parameters=True) if world_size() > 1 else model
    main = is_main_process()
    if main:
        os.makedirs(args.save_dir, exist_ok=True)
        with open(os.path.join(args.save_dir, "training_args.json"), "w", encoding="utf-8") as f:
            json.dump(vars(args), f, indent=2, ensure_ascii=False)

    summary = {
        "steps": 0,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "world_size": world_size(),
        "batch_size": args.batch_size,
        "losses": [],
        "evaluations": [],
        "best": None,
        "eval_time_s": 0.0,
    }

    def run_evaluation(step):
        eval_timer = Timer()
        metrics = evaluate(model)
        model.train()
        summary["eval_time_s"] += eval_timer.seconds
        if main:
            keep_best(step, metrics)
        if world_size() > 1:
            paddle.distributed.barrier()  # the others wait here while the main process saves model_best

    def keep_best(step, metrics):
        summary["evaluations"].append({"step": step, **metrics})
        shown = ", ".join(f"{k} {v:.2f}" for k, v in metrics.items() if k != "queries")
        value = metrics.get(best_metric)
        best = summary["best"]
        if value is not None and (best is None or value > best[best_metric]):
            summary["best"] = {"step": step, **metrics}
            save_checkpoint(
                model, tokenizer, os.path.join(args.save_dir, "model_best"), extra={"step": step, **metrics}
            )
            shown += f" (best {best_metric} so far -> {args.save_dir}/model_best)"
        logger.info(f"step {step}: {shown}")

    from tqdm import tqdm

    check_finite_weights(model, "the starting model (--model_name_or_path, --init_from_ckpt)")
    progress = tqdm(total=num_training_steps, desc="training", unit="step", disable=not main, dynamic_ncols=True)
    timer = Timer()
    global_step = 0
    last_eval = None
    window = []
    model.train()
    previous_handler = _save_on_sigterm()
    try:
        for epoch in range(1, epochs + 1):
            # the shuffle order depends on the seed and the epoch only (same on every process)
            train_loader.batch_sampler.set_epoch(args.seed * 1000 + epoch)
            for batch in train_loader:
                loss = loss_fn(train_model, batch) if loss_fn else train_model(**batch)
                loss_value = check_loss(loss, global_step + 1, progress)
                loss.backward()
                optimizer.step()
                check_update(model, global_step + 1, progress)
                lr_scheduler.step()
                optimizer.clear_grad()
                global_step += 1
                window.append(loss_value)
                progress.update(1)
                if global_step % args.logging_steps == 0 or global_step == num_training_steps:
                    summary["losses"].append({"step": global_step, "loss": float(np.mean(window))})
                    progress.set_postfix(epoch=epoch, loss=f"{np.mean(window):.4f}", lr=f"{lr_scheduler.last_lr:.2e}")
                    window = []
                if main and args.save_steps and global_step % args.save_steps == 0:
                    save_checkpoint(model, tokenizer, os.path.join(args.save_dir, f"model_{global_step}"))
                if evaluate and args.eval_steps and global_step % args.eval_steps == 0:
                    run_evaluation(global_step)
                    last_eval = global_step
                if global_step >= num_training_steps:
                    break
            if evaluate and last_eval != global_step:
                run_evaluation(global_step)
                last_eval = global_step
            if global_step >= num_training_steps:
                break
    except KeyboardInterrupt:
        progress.close()
        if main:
            path = save_checkpoint(model, tokenizer, os.path.join(args.save_dir, f"model_{global_step}"))
            logger.warning(f"interrupted at step {global_step}: saved {path}")
        raise  # the entry point (ns_common.cli.entry_point) exits with 130
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
    progress.close()

    seconds = timer.seconds
    # wall time of the loop, evaluations included (eval_time_s of it); steps/s without them
    summary.update(
        steps=global_step,
        wall_time_s=round(seconds, 2),
        eval_time_s=round(summary["eval_time_s"], 2),
        steps_per_s=round(global_step / max(seconds - summary["eval_time_s"], 1e-9), 3),
    )
    if summary["losses"]:
        summary["loss_first"] = summary["losses"][0]["loss"]
        summary["loss_last"] = summary["losses"][-1]["loss"]
    if main:
        final_dir = save_checkpoint(model, tokenizer, os.path.join(args.save_dir, f"model_{global_step}"))
        # a fixed name too, so the next stage of a chain can find the result without knowing the step count
        summary["final_checkpoint"] = save_checkpoint(
            model, tokenizer, os.path.join(args.save_dir, "model_final"), extra={"step": global_step}
        )
        with open(os.path.join(args.save_dir, "train_summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2, ensure_ascii=False)
        best = summary["best"]
        best_text = (
            f"; best {best_metric} {best[best_metric]:.2f} at step {best['step']} -> {args.save_dir}/model_best"
            if best
            else ""
        )
        loss_text = f"loss {summary['loss_first']:.4f} -> {summary['loss_last']:.4f}" if summary["losses"] else ""
        eval_text = f", {summary['eval_time_s']:.0f}s of it evaluating" if summary["evaluations"] else ""
        logger.info(
            f"trained {global_step} steps ({epochs} epochs x {steps_per_epoch} batches, {world_size()} process(es)) "
            f"in {seconds:.1f}s{eval_text} ({summary['steps_per_s']:.2f} steps/s), {loss_text}; checkpoints -> {final_dir} and "
            f"{args.save_dir}/model_final{best_text}"
        )
    return summary
