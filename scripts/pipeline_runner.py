"""The pipeline's runner: stages defined in order (Pipeline.stage, see scripts/pipeline_stages.py), then run one
after the other, each numbered, logged to <output_dir>/logs/<stage>.log, shown with a live progress line, timed
(timings.json), and reused when it finished before with the same command and its outputs are still there.

A library module: a bad --skip/--from raises ns_common.errors.ConfigError, a failed stage is reported on stderr
and run_all() returns the exit status; scripts/pipeline.py turns both into the process' exit.
"""

import codecs
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time

from stage_progress import StageProgress, format_duration

from ns_common import QUIET_WARNINGS
from ns_common.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable


def read_json(path):
    """The JSON file's content, or None when there is no such file."""
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return None


def stage_env():
    """The environment of every command the pipeline runs: unbuffered output (for the live progress), and
    paddle's import-time warnings that mean nothing to a user ignored (ns_common.QUIET_WARNINGS) whatever
    a script imports first."""
    quiet = ",".join(f"ignore:{message}:UserWarning" for message in QUIET_WARNINGS)
    return dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        PYTHONWARNINGS=",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), quiet])),
    )


class Pipeline:
    """Stages are defined first (stage()), in order, then run (run_all()): the list of stages is what was
    defined for these options. Each stage is numbered ([k/N]), logged to logs/<stage>.log with its full
    command, shown with a live progress line read from its own output, timed, and reused when it finished
    before with the same command and its outputs are still there."""

    # seconds between progress lines when the output is not a terminal (a file, CI's log)
    STATUS_EVERY = float(os.environ.get("NS_PROGRESS_EVERY", "10"))

    def __init__(self, args):
        self.args = args
        self.out = args.output_dir
        self.logs = os.path.join(self.out, "logs")
        self.done_dir = os.path.join(self.out, ".done")
        self.dry_run = getattr(args, "dry_run", False)
        self.verbose = getattr(args, "verbose", False)
        if not self.dry_run:
            os.makedirs(self.logs, exist_ok=True)
            os.makedirs(self.done_dir, exist_ok=True)
        self.timings_file = os.path.join(self.out, "timings.json")
        self.timings = read_json(self.timings_file) or {}
        self.definitions = []  # (stage, cmds, options), in running order
        self.recipes = {}  # backbone kind -> the Recipe its stages use
        self.start = time.time()
        self.outcomes = {}  # stage -> "run", "reused" or "skipped" (in a dry run: what would happen)
        self.rebuilt = []  # outputs of the stages run in this invocation: a later stage reading one is redone
        self.tty = sys.stdout.isatty()

    def path(self, *parts):
        return os.path.join(self.out, *parts)

    def stage(self, name, cmds, **options):
        """Defines the next stage (run() says what the options mean)."""
        self.definitions.append((name, cmds, options))

    @property
    def stage_names(self):
        return [name for name, _, _ in self.definitions]

    def run_all(self):
        """Runs (or in a dry run, reports) every stage in order; the exit status: 0, or 1 after the first failed stage."""
        unknown = [
            s
            for s in self.args.skip + ([self.args.from_stage] if self.args.from_stage else [])
            if s not in self.stage_names
        ]
        if unknown:
            raise ConfigError(f"unknown stage {unknown[0]!r}; the stages of this run: {', '.join(self.stage_names)}")
        self.redo_from = self.stage_names.index(self.args.from_stage) if self.args.from_stage else None
        for name, cmds, options in self.definitions:
            if not self.run(name, cmds, **options):
                return 1
        return 0

    def _reason_to_run(self, stage, command, marker, outputs, cmds=(), always=False):
        """Why the stage has to run, or None when its last run can be reused."""
        if self.args.force:
            return "--force"
        if self.redo_from is not None and self.stage_names.index(stage) >= self.redo_from:
            return f"--from {self.args.from_stage}"
        if not os.path.isfile(marker):
            return "no finished run in the output directory"
        with open(marker, encoding="utf-8") as f:
            if f.read() != command:
                return "its command changed since it last finished"
        missing = [o for o in outputs if not os.path.exists(o)]
        if missing:
            return f"output missing: {missing[0]}"
        if always:
            return "it reads what every earlier stage wrote"
        arguments = {str(a) for cmd in cmds for a in cmd[1:]}
        for path in self.rebuilt:  # the path itself or a directory above it given to this stage's commands
            while path.startswith(self.out) and path != self.out:
                if path in arguments:
                    return f"its input {path} was rebuilt in this run"
                path = os.path.dirname(path)
        return None

    def run(self, stage, cmds, outputs=(), distributed=False, throughput=None, fresh=(), always=False):
        """cmds: one argv list, or a list of them run in order (python entry points). outputs: paths that
        must exist after success. distributed: run the (single) command under paddle.distributed.launch.
        throughput: function() -> str, read after the run (e.g. from a summary file); without it, the rate of
        the stage's longest progress bar.
        fresh: directories the stage's command resumes from (pretraining's checkpoints): kept after a failed
        run, so that a re-run continues, but removed when a finished stage is redone (--force, --from, or
        a changed command).
        always: run even when nothing changed (the report: it reads every stage's outputs).
        A stage is also redone when an earlier stage of this invocation rebuilt one of its outputs that this
        stage's commands are given (as the path, or a directory above it).
        Returns False when the stage failed (reported on stderr with its command and the end of its log), else True."""
        label = f"[{self.stage_names.index(stage) + 1}/{len(self.stage_names)}] {stage}"
        if stage in self.args.skip:
            self.outcomes[stage] = "skipped"
            print(f"{label}: skipped (--skip)", flush=True)
            return True
        if isinstance(cmds[0], str):
            cmds = [cmds]
        if distributed and self.args.nproc > 1:
            cmds = [
                [
                    PYTHON,
                    "-m",
                    "paddle.distributed.launch",
                    "--nproc_per_node",
                    str(self.args.nproc),
                    "--log_dir",
                    os.path.join(self.logs, f"{stage}_ranks"),
                ]
                + cmd[1:]
                for cmd in cmds
            ]
        command = " && ".join(shlex.join(cmd) for cmd in cmds)
        marker = os.path.join(self.done_dir, stage)
        reason = self._reason_to_run(stage, command, marker, outputs, cmds, always)
        if reason is None:
            self.outcomes[stage] = "reused"
            print(
                f"{label}: {'would be ' if self.dry_run else ''}reused (finished before with the same command)",
                flush=True,
            )
            return True
        self.outcomes[stage] = "run"
        self.rebuilt += [str(o) for o in list(outputs) + list(fresh)]
        if self.dry_run:
            print(f"{label}: would run ({reason})", flush=True)
            if self.verbose:
                print(f"        $ {command}", flush=True)
            return True
        if os.path.isfile(marker):  # finished before: redo from nothing
            for directory in fresh:
                shutil.rmtree(directory, ignore_errors=True)
            os.remove(marker)  # so that a failure now is never mistaken for the old finished run
        log_path = os.path.join(self.logs, f"{stage}.log")
        print(f"{label}" + (f" ({reason})" if self.verbose else ""), flush=True)
        if self.verbose:
            print(f"        $ {command}\n        log: {log_path}", flush=True)
        start = time.time()
        rc, progress = self._execute(cmds, log_path)
        seconds = time.time() - start
        missing = [o for o in outputs if not os.path.exists(o)]
        if rc != 0 or missing:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                tail = f.read().replace("\r", "\n").splitlines(keepends=True)[-15:]
            reason = f"exit code {rc}" if rc != 0 else f"missing output {missing[0]}"
            print(
                f"\nstage {stage} failed ({reason})\n  command: {command}\n  log: {log_path}\n  last lines:\n"
                + "".join("    " + line for line in tail),
                file=sys.stderr,
            )
            return False
        rate = (throughput() if throughput else "") or progress.throughput()
        self.timings[stage] = {"seconds": round(seconds, 1), "throughput": rate}
        with open(self.timings_file, "w", encoding="utf-8") as f:
            json.dump(self.timings, f, indent=2)
        with open(marker, "w", encoding="utf-8") as f:
            f.write(command)
        took = f"{seconds:.1f}s" if seconds < 60 else format_duration(seconds)
        print(f"        done in {took}" + (f", {rate}" if rate else ""), flush=True)
        return True

    def _execute(self, cmds, log_path):
        """Runs the commands one after the other, their output into the log, with the progress line on
        screen; returns (exit code of the last command run, its StageProgress)."""
        progress = StageProgress()
        env = stage_env()
        rc = 0
        self._last_status = time.time()
        with open(log_path, "w", encoding="utf-8") as log:
            for i, cmd in enumerate(cmds):
                progress.next_command(i, len(cmds))
                log.write(f"$ {shlex.join(cmd)}\n")
                log.flush()
                proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
                reader = threading.Thread(target=self._copy_output, args=(proc.stdout, log, progress), daemon=True)
                reader.start()
                try:
                    while reader.is_alive():
                        reader.join(0.5)
                        self._show(progress)
                    rc = proc.wait()
                except BaseException:  # Ctrl-C or a kill: stop the stage too, and leave the terminal on a new line
                    proc.terminate()
                    proc.wait()
                    self._show(progress, clear=True)
                    raise
                if rc != 0:
                    break
        self._show(progress, clear=True)
        return rc, progress

    @staticmethod
    def _copy_output(stream, log, progress):
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            chunk = os.read(stream.fileno(), 65536)
            text = decoder.decode(chunk, final=not chunk)
            if text:
                log.write(text)
                log.flush()
                progress.feed(text)
            if not chunk:
                return

    def _show(self, progress, clear=False):
        """The progress line: redrawn in place on a terminal, else printed every STATUS_EVERY seconds."""
        if self.tty:
            line = "" if clear else "        " + progress.status()
            width = shutil.get_terminal_size().columns - 1
            sys.stdout.write("\r" + line[:width] + "\x1b[K")
            sys.stdout.flush()
        elif not clear and time.time() - self._last_status >= self.STATUS_EVERY:
            self._last_status = time.time()
            print("        " + progress.status(), flush=True)

    def summary(self):
        """The closing line: how long the whole run took, and what ran."""
        counts = {
            outcome: sum(1 for o in self.outcomes.values() if o == outcome) for outcome in ("run", "reused", "skipped")
        }
        if self.dry_run:
            print(
                f"dry run: {counts['run']} stages would run, {counts['reused']} would be reused, {counts['skipped']} skipped; "
                f"nothing was run",
                flush=True,
            )
            return
        ran = sorted((s for s, o in self.outcomes.items() if o == "run"), key=lambda s: -self.timings[s]["seconds"])
        longest = ", ".join(f"{s} {format_duration(self.timings[s]['seconds'])}" for s in ran[:3])
        print(
            f"\npipeline finished in {format_duration(time.time() - self.start)}: {counts['run']} stages run, "
            f"{counts['reused']} reused, {counts['skipped']} skipped"
            + (f"; longest: {longest}" if longest else "")
            + f" (timings: {self.timings_file})",
            flush=True,
        )
