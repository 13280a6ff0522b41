"""Code that more than one stage needs: readers, tokenisation, metrics, the model factory,
the offline bootstrap, the shared semantic encoder and a Paddle Inference predictor."""

import warnings

# Warnings that paddle and paddlenlp raise on import and that mean nothing to a user of this project (the
# start of each message): paddle.utils.cpp_extension looks for ccache (for compiling custom C++ ops, which
# no stage does), and the setuptools that paddle imports replaces the distutils an earlier import loaded.
# The entry points import ns_common before paddle, so these filters are in place when they are raised; the
# pipeline also passes them to every stage it runs in PYTHONWARNINGS (any import order).
QUIET_WARNINGS = ("No ccache found", "Setuptools is replacing distutils")
for _message in QUIET_WARNINGS:
    warnings.filterwarnings("ignore", message=_message, category=UserWarning)
