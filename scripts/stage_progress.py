"""Live progress of a running stage, read from the stage's own output: the pipeline shows one status line
per stage (steps or rows done / total, rate, ETA) without the stage having to report to it.

Two sources, both already in the stages' output: tqdm bars ("training:  45%|####5     | 45/100
[00:10<00:12,  4.50step/s]", redrawn after a carriage return) and log lines with "step k/N" (pretraining
logs those instead of a bar when its output is not a terminal). Any other line is kept as the stage's
latest message, shown while no bar is running.
"""

import re
import time

# the part of a tqdm bar after its description: "45/100 [00:10<00:12,  4.50step/s, loss=0.3]"
_BAR = re.compile(
    r"(?:(?P<desc>[^\r\n|:]{1,40}):\s+)?(?:\d+%\|[^|]*\|\s*)?(?P<n>\d+)/(?P<total>\d+)\s+"
    r"\[(?P<elapsed>[\d:]+)<(?P<eta>[\d:?]+),\s*(?P<rate>[^,\]]+)(?=[,\]])"
)
_STEP = re.compile(r"\bstep (?P<n>\d+)/(?P<total>\d+)\b")
# "[2026-12-01 14:42:36] [   INFO] " and paddlenlp's "[2026-12-01 14:42:59,792] [   DEBUG] __init__.py:113 - "
_LOG_PREFIX = re.compile(r"^\[[\d\-: ,]+\]\s*\[\s*\w+\]\s*(?:\S+\.py:\d+ - )?")


def seconds_of(clock):
    """'01:02' or '1:02:03' (tqdm's clock) -> seconds."""
    seconds = 0
    for part in clock.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def format_duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class StageProgress:
    """Fed the stage's output as it arrives (feed); status() is one line for the screen, throughput() the
    rate of the stage's longest bar once it ended."""

    def __init__(self):
        self.start = time.time()
        self._partial = ""
        self.bar = None  # the latest tqdm bar or "step k/N" line, as a dict
        self.longest_bar = None  # the bar that ran longest (for the stage's throughput)
        self.message = ""  # the latest other line
        self.command = (1, 1)  # which of the stage's commands runs

    def next_command(self, index, count):
        self.command = (index + 1, count)
        self.bar, self.message = None, ""

    def feed(self, text):
        """Takes any chunk of output; lines end with \\n or, for tqdm's redraws, \\r."""
        pieces = re.split(r"[\r\n]", self._partial + text)
        self._partial = pieces.pop()
        for piece in pieces:
            self._parse(piece.strip())
        # tqdm ends a redraw with the next one's \r, so the bar as it is now is the unfinished last piece
        if _BAR.search(self._partial):
            self._parse(self._partial.strip(), bar_only=True)

    def _parse(self, line, bar_only=False):
        if not line:
            return
        match = _BAR.search(line)
        if match:
            bar = match.groupdict()
            bar["n"], bar["total"] = int(bar["n"]), int(bar["total"])
            bar["rate"] = bar["rate"].strip()
            if bar["rate"].startswith("?"):
                bar["rate"] = ""
            self.bar = bar
            if self.longest_bar is None or seconds_of(bar["elapsed"]) >= seconds_of(self.longest_bar["elapsed"]):
                self.longest_bar = bar
            return
        if bar_only:
            return
        match = _STEP.search(line)
        if match:
            n, total = int(match["n"]), int(match["total"])
            now = time.time()
            if self.bar is None or self.bar.get("kind") != "step" or n < self.bar["n"]:
                self.bar = {
                    "kind": "step",
                    "desc": "step",
                    "n": n,
                    "total": total,
                    "first": (n, now),
                    "rate": "",
                    "eta": "?",
                }
            else:
                n0, t0 = self.bar["first"]
                self.bar.update(n=n, total=total)
                if n > n0 and now > t0:  # rate and ETA measured from the first step line seen
                    rate = (n - n0) / (now - t0)
                    self.bar["rate"] = f"{rate:.2f}step/s" if rate >= 1 else f"{1 / rate:.2f}s/step"
                    self.bar["eta"] = format_duration((total - n) / rate)
            return
        self.message = re.sub(r"\s+", " ", _LOG_PREFIX.sub("", line))

    def status(self):
        elapsed = format_duration(time.time() - self.start)
        index, count = self.command
        parts = [elapsed] + ([f"command {index}/{count}"] if count > 1 else [])
        bar = self.bar
        if bar is not None and bar["n"] < bar["total"]:
            desc = (bar.get("desc") or "").strip()
            parts.append(f"{desc + ' ' if desc else ''}{bar['n']}/{bar['total']}")
            if bar["rate"]:
                parts.append(bar["rate"])
            if bar["eta"] and "?" not in bar["eta"]:
                parts.append(f"ETA {bar['eta']}")
        elif self.message:
            parts.append(self.message if len(self.message) <= 100 else self.message[:99] + "…")
        else:
            parts.append("starting")  # nothing printed yet: most stages spend seconds importing paddle
        return " | ".join(parts)

    def throughput(self):
        """'training 4.50step/s': the rate of the stage's longest tqdm bar; '' when it had none."""
        bar = self.longest_bar
        if bar is None or not bar["rate"]:
            return ""
        return f"{(bar.get('desc') or '').strip()} {bar['rate']}".strip()
