"""Shared test set-up.

Components that the test command (`make test`) installs are required, never skipped quietly: a test that
needs one that is missing fails with one line naming it and how to get it, unless the user opted out with
its variable (SKIP_BROWSER=1, SKIP_MILVUS_SERVER=1); then the test is skipped and the run's summary says so.
"""
import os
import shutil

import pytest

# component -> (what it is, opt-out variable, how to install it)
COMPONENTS = {
    "browser": ("Chromium", "SKIP_BROWSER", "`make test` or `bash scripts/setup_browser.sh` installs it (apt-get, root or sudo)"),
    "milvus_server": ("the Milvus 2.3.5 server", "SKIP_MILVUS_SERVER", "`make test` or `bash scripts/setup_milvus_server.sh` installs it (pip milvus==2.3.5)"),
}


SKIPPED = set()  # components whose tests were skipped on request in this run


def opted_out(component):
    variable = COMPONENTS[component][1]
    return os.environ.get(variable, "") not in ("", "0")


def require(component, problem):
    """Call where `component` turned out to be missing (problem: what is missing): skips the test when the
    user opted out, else fails it with one line."""
    name, variable, how = COMPONENTS[component]
    if opted_out(component):
        SKIPPED.add(component)
        pytest.skip(f"needs {name}: skipped on request ({variable}={os.environ[variable]})")
    pytest.fail(f"{problem}: {how}; or opt out with {variable}=1", pytrace=False)


@pytest.fixture(scope="session")
def chromium():
    """The Chromium executable the browser test drives (session scope: checked before any costlier fixture)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        require("browser", "no chromium on PATH")
    return path


def pytest_terminal_summary(terminalreporter):
    skipped = [f"{name} ({variable}={os.environ[variable]})" for component, (name, variable, _) in COMPONENTS.items() if component in SKIPPED]
    if skipped:
        terminalreporter.write_line(f"opted out of {', '.join(skipped)}: the tests that need it were skipped", yellow=True)
