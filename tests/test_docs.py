"""The documentation stays true to the repository (fast: reads text files only, runs no model).

Checked in README.md, every docs/**/*.md and every README.md below the root (stage folders, data/,
recipes/), git-ignored folders (the venv, output/, downloaded data) left out:

- the root README stays a front door: at most 260 lines;
- every relative link, markdown or image (`[text](path)`, `![alt](path)`), resolves to a file or folder
  inside the repository; for `path#anchor` only the file part is checked, and links to other sites
  (`https:`, `mailto:` ...) and pure `#anchor` links are not followed;
- every command shown, in a fenced code block or an inline code span, names something that exists:
  `python <path>.py` (also `python3`, `.venv/bin/python`) and `bash <path>.sh` a file of the repository
  (paths are relative to the repository root, where every command runs), `python -m <module>` a module
  of the repository (`<module>.py` or `<module>/__init__.py`) or an installed package (paddle, pytest,
  ...); a script started under `python -m paddle.distributed.launch ... <path>.py` is checked too;
- every `--flag` of such a command (a script of the repository, one of its modules, or a shell wrapper,
  which passes its arguments on to a Python entry point) is one the repository defines. This is a text check, not an argparse run: the flag must appear quoted,
  `"--flag"` or `'--flag'`, in one of the repository's .py files (argparse declarations are written that
  way; the shared ones are in ns_common/). `--no-X` is accepted where `--X` is declared
  (argparse.BooleanOptionalAction). Flags of an installed module (paddle.distributed.launch's
  `--nproc_per_node`, pytest's) are not checked.

No line is exempt: a command that needs internet or a GPU is marked so in the text and still has to name
an existing script and existing flags (none of the commands shown runs PaddleNLP's own files).
"""  # noqa: E501

import importlib.util
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT_README_MAX_LINES = 260
# Folders never searched for documentation (git-ignored or generated), used when git is unavailable.
SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "output",
    "outputs",
    "checkpoints",
    "milvus_data",
    "test_artifacts",
    "__pycache__",
    ".pytest_cache",
    "node_modules",
}


def _doc_files():
    """README.md, docs/**/*.md and every README.md below the root, relative to ROOT."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.splitlines()
        candidates = [p for p in listed if os.path.isfile(os.path.join(ROOT, p))]
    except (OSError, subprocess.SubprocessError):
        candidates = []
        for directory, dirs, files in os.walk(ROOT):
            dirs[:] = [
                d
                for d in dirs
                if d not in SKIP_DIRS
                and not d.endswith(".egg-info")
                and os.path.relpath(os.path.join(directory, d), ROOT) not in ("data/csl", "data/literature_search_data")
            ]
            candidates += [os.path.relpath(os.path.join(directory, f), ROOT) for f in files]
    docs = set()
    for path in candidates:
        path = path.replace(os.sep, "/")
        if path == "README.md" or path.endswith("/README.md") or (path.startswith("docs/") and path.endswith(".md")):
            docs.add(path)
    return sorted(docs)


DOC_FILES = _doc_files()

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def _prose(text):
    """The text with code blocks and code spans blanked, so that only real links remain."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return INLINE_CODE.sub("code", text)


def _code_lines(text):
    """Every command line shown: fenced blocks (backslash continuations joined, comments cut) and code spans."""
    lines = []
    for block in FENCE.finditer(text):
        body = block.group(0).split("\n")[1:-1]
        joined = re.sub(r"\\\n", " ", "\n".join(body))
        for line in joined.split("\n"):
            lines.append(re.sub(r"(^|\s)#.*$", "", line))
    for span in INLINE_CODE.finditer(FENCE.sub("", text)):
        lines.append(span.group(2).replace("\n", " "))
    return lines


PYTHON = r"(?:(?<![\w/.-])python3?|\.venv/bin/python)"
SEPARATORS = re.compile(r"\s(?:&&|\|\||\||;|>|>>|2>)\s")
SCRIPT_CMD = re.compile(PYTHON + r"\s+(?!-)(\S+\.py)\b")
MODULE_CMD = re.compile(PYTHON + r"\s+-m\s+([A-Za-z_][\w.]*)")
BASH_CMD = re.compile(r"(?<![\w/.-])bash\s+(?!-)(\S+\.sh)\b")
LAUNCHED = re.compile(r"paddle\.distributed\.launch\b.*?\s(?!-)([\w./-]+\.py)\b")
FLAG = re.compile(r"(?<![\w-])--([A-Za-z][\w-]*)")


def _commands(line):
    """(kind, target, flags) for every python/bash command of one line; flags are those up to the next
    command or shell separator."""
    found = []
    for piece in SEPARATORS.split(line):
        starts = sorted(
            [(m.start(), "script", m.group(1), m.end()) for m in SCRIPT_CMD.finditer(piece)]
            + [(m.start(), "module", m.group(1), m.end()) for m in MODULE_CMD.finditer(piece)]
            + [(m.start(), "bash", m.group(1), m.end()) for m in BASH_CMD.finditer(piece)]
        )
        for i, (_, kind, target, end) in enumerate(starts):
            stop = starts[i + 1][0] if i + 1 < len(starts) else len(piece)
            rest = piece[end:stop]
            if kind == "module" and target == "paddle.distributed.launch":
                launched = LAUNCHED.search(piece[starts[i][0] : stop])
                if launched:
                    script_end = starts[i][0] + launched.end()
                    found.append(("script", launched.group(1), FLAG.findall(piece[script_end:stop])))
                found.append((kind, target, []))
                continue
            found.append((kind, target, FLAG.findall(rest)))
    return found


def _module_file(module):
    base = os.path.join(ROOT, *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _is_repo_package(module):
    return os.path.isdir(os.path.join(ROOT, module.split(".")[0]))


_DECLARED = None


def _declared_flags():
    """Every quoted "--flag" in the repository's .py files."""
    global _DECLARED
    if _DECLARED is None:
        flags = set()
        for directory, dirs, files in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
            for name in files:
                if name.endswith(".py"):
                    with open(os.path.join(directory, name), encoding="utf-8", errors="replace") as f:
                        flags.update(re.findall(r"[\"']--([A-Za-z][\w-]*)[\"']", f.read()))
        _DECLARED = flags
    return _DECLARED


def _flag_declared(flag):
    declared = _declared_flags()
    return flag in declared or (flag.startswith("no-") and flag[3:] in declared)


def test_doc_files_found():
    assert "README.md" in DOC_FILES
    assert any(p.startswith("docs/") for p in DOC_FILES), DOC_FILES


def test_root_readme_is_short():
    lines = _read("README.md").count("\n")
    assert lines <= ROOT_README_MAX_LINES, (
        f"README.md has {lines} lines (at most {ROOT_README_MAX_LINES}): move details to docs/ or a stage README"
    )


@pytest.mark.parametrize("doc", DOC_FILES)
def test_relative_links_resolve(doc):
    broken = []
    base = os.path.dirname(os.path.join(ROOT, doc))
    for target in LINK.findall(_prose(_read(doc))):
        if re.match(r"^[A-Za-z][\w+.-]*:", target) or target.startswith("#"):
            continue  # another site, or an anchor in this file
        path = target.split("#", 1)[0].split("?", 1)[0]
        resolved = os.path.normpath(os.path.join(base, path))
        inside = resolved == ROOT or resolved.startswith(ROOT + os.sep)
        rel = os.path.relpath(resolved, ROOT).replace(os.sep, "/")
        if inside and os.path.exists(resolved):
            continue
        broken.append(f"{target} -> {rel if inside else 'outside the repository'}")
    assert not broken, f"{doc}: broken links: {broken}"


@pytest.mark.parametrize("doc", DOC_FILES)
def test_commands_exist(doc):
    problems = []
    for line in _code_lines(_read(doc)):
        for kind, target, flags in _commands(line):
            if kind in ("script", "bash"):
                if "<" in target or not os.path.isfile(os.path.join(ROOT, target)):
                    problems.append(f"{kind} {target}: no such file (in: {line.strip()[:120]})")
                    continue
            elif kind == "module":
                if _is_repo_package(target):
                    if _module_file(target) is None:
                        problems.append(f"python -m {target}: no such module in the repository")
                        continue
                elif importlib.util.find_spec(target.split(".")[0]) is None:
                    problems.append(f"python -m {target}: not installed")
                    continue
                else:
                    continue  # an installed tool: its flags are its own
            unknown = [f"--{f}" for f in flags if not _flag_declared(f)]
            if unknown:
                problems.append(
                    f"{target}: flags no .py file of the repository declares: {unknown} (in: {line.strip()[:120]})"
                )
    assert not problems, f"{doc}:\n  " + "\n  ".join(problems)
