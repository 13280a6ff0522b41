"""Library code raises (ns_common.errors); only entry points exit. Every module of the project's packages without
an `if __name__ == "__main__":` block is library code: no `raise SystemExit`, no call of `fail(` (ns_common.cli's
exit for entry points) and no `sys.exit(` in it. ns_common/cli.py, the home of fail and entry_point, is the one
exception."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = (
    "ns_common",
    "recall",
    "search",
    "ernie_matching",
    "simcse",
    "inbatch_negative",
    "domain_pretrain",
    "data",
    "scripts",
    "bench",
)
ALLOWED = {os.path.join("ns_common", "cli.py")}


def library_modules():
    for package in PACKAGES:
        for folder, dirs, files in os.walk(os.path.join(ROOT, package)):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    yield os.path.relpath(path, ROOT), path


def is_main_guard(node):
    """`if __name__ == "__main__":`"""
    test = node.test if isinstance(node, ast.If) else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def exits(tree):
    """(line, what) of each way out of the interpreter: raise SystemExit, fail(...), sys.exit(...)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name) and target.id == "SystemExit":
                found.append((node.lineno, "raise SystemExit"))
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "fail":
                found.append((node.lineno, "fail("))
            elif (
                isinstance(func, ast.Attribute)
                and func.attr == "exit"
                and isinstance(func.value, ast.Name)
                and func.value.id == "sys"
            ):
                found.append((node.lineno, "sys.exit("))
    return found


def test_the_check_finds_each_way_out():
    source = 'import sys\ndef f():\n    raise SystemExit(2)\ndef g():\n    fail("x")\ndef h():\n    sys.exit(1)\n'
    assert [what for _, what in exits(ast.parse(source))] == ["raise SystemExit", "fail(", "sys.exit("]
    assert is_main_guard(ast.parse('if __name__ == "__main__":\n    main()\n').body[0])


def test_library_modules_raise_and_never_exit():
    offenders, checked = [], 0
    for rel, path in library_modules():
        if rel in ALLOWED:
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=rel)
        if any(is_main_guard(node) for node in tree.body):
            continue  # an entry point: its main exits (ns_common.cli.entry_point)
        checked += 1
        offenders += [f"{rel}:{line}: {what}" for line, what in exits(tree)]
    assert checked > 30
    assert not offenders, "library code must raise an ns_common.errors exception, not exit:\n" + "\n".join(offenders)
