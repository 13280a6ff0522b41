"""The errors library code raises. Each carries the one line a user should read; only command-line entry points
turn them into that line on stderr and an exit code (`ns_common.cli.entry_point`), and the web service maps them
to HTTP statuses. Code that imports this project as a library catches them like any other exception:

    from ns_common.errors import NeuralSearchError
    try:
        system = SearchSystem.from_pipeline("output/pipeline/sample")
    except NeuralSearchError as e:
        print(e)
"""


class NeuralSearchError(Exception):
    """Base of every error this project raises on purpose. `exit_code` is what a command-line tool exits with."""

    exit_code = 2


class ConfigError(NeuralSearchError):
    """A flag, a config file or a combination of settings that cannot work."""


class BadInputError(NeuralSearchError, ValueError):
    """An input file, a query or a request that cannot be used (names the file, line or field)."""


class ModelMismatchError(NeuralSearchError):
    """Models, checkpoints, collections or rankings that do not belong together (other model, corpus, dimension)."""


class MilvusUnavailableError(NeuralSearchError):
    """Milvus cannot be reached or refused the operation; retrying later may work."""

    exit_code = 1


class NonFiniteError(NeuralSearchError):
    """Training diverged (NaN/inf in the loss or the weights); the last good checkpoints are kept."""

    exit_code = 3
