"""Training recipes: the settings of each training stage, written once in recipes/*.yml and read by
scripts/pipeline.py and by the stage scripts in scripts/ (through this module's command line), so that
the pipeline's stage and the stage's script run with the same flags by construction.

    python scripts/recipe.py flags simcse --recipe offline --budget sample --preset mini
    # -> one argument a line: --output_emb_size / 0 / --max_steps / 30 / ...

A recipe is `offline` (from-scratch models), `paddlenlp` (PaddleNLP's pretrained models) or the path of a
YAML file in the same format (recipes/README.md).
"""

import argparse
import os
import sys

import yaml

from ns_common.cli import entry_point
from ns_common.errors import ConfigError

RECIPES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes")
BUDGETS = ("smoke", "sample", "full")
PRESETS = ("mini", "small", "base")
# a corpus with fewer titles than this gets the "sample" budget by default, a larger one "full"
FULL_BUDGET_FROM = 2000


class RecipeError(ConfigError, ValueError):
    """A recipe file, budget or preset that cannot be used."""


def recipe_path(name):
    """`offline`, `paddlenlp` or a path -> the YAML file."""
    path = name if name.endswith((".yml", ".yaml")) else os.path.join(RECIPES_DIR, f"{name}.yml")
    if not os.path.isfile(path):
        known = ", ".join(sorted(f[:-4] for f in os.listdir(RECIPES_DIR) if f.endswith(".yml")))
        raise RecipeError(f"recipe {name!r}: no such file {path} (recipes: {known}, or a .yml path)")
    return path


def default_budget(data_dir):
    """sample for a corpus (recall/corpus.csv) under FULL_BUDGET_FROM lines, else full."""
    with open(os.path.join(data_dir, "recall", "corpus.csv"), encoding="utf-8", errors="replace") as f:
        return "sample" if sum(1 for _ in f) < FULL_BUDGET_FROM else "full"


class Recipe:
    """One recipe file at one budget and preset: flags(stage) and option(stage, key)."""

    def __init__(self, name, budget, preset):
        if budget not in BUDGETS:
            raise RecipeError(f"budget {budget!r}: expected one of {', '.join(BUDGETS)}")
        if preset not in PRESETS:
            raise RecipeError(f"preset {preset!r}: expected one of {', '.join(PRESETS)}")
        self.path = recipe_path(name)
        self.name, self.budget, self.preset = name, budget, preset
        with open(self.path, encoding="utf-8") as f:
            self.stages = (yaml.safe_load(f) or {}).get("stages") or {}

    def _stage(self, stage):
        if stage not in self.stages:
            raise RecipeError(f"{self.path}: no stage {stage!r} (stages: {', '.join(self.stages)})")
        return self.stages[stage]

    def _value(self, where, value):
        """A setting (where: its place in the file, stage.flags.name or stage.option), or the one for this budget /
        preset from a mapping by budget or by preset."""
        if isinstance(value, dict):
            key = self.budget if set(value) <= set(BUDGETS) else self.preset if set(value) <= set(PRESETS) else None
            if key is None or key not in value:
                raise RecipeError(
                    f"{self.path}: {where}: expected a value for budget {self.budget} or preset {self.preset}, got {value}"
                )
            return value[key]
        return value

    def setting(self, stage, flag, default=None):
        """One flag's value for this budget / preset (default when the stage does not set it)."""
        flags = self._stage(stage).get("flags") or {}
        return self._value(f"{stage}.flags.{flag}", flags[flag]) if flag in flags else default

    def flags(self, stage):
        """The stage's flags as argv items, in the recipe's order."""
        argv = []
        for flag, value in (self._stage(stage).get("flags") or {}).items():
            value = self._value(f"{stage}.flags.{flag}", value)
            if value is True:
                argv.append(f"--{flag}")
            elif value is not False and value is not None:
                argv += [f"--{flag}", str(value)]
        return argv

    def option(self, stage, key, default=None):
        """A setting of the stage that is not a flag (e.g. train_reranker.pseudo_queries), itself or by budget /
        preset."""
        return self._value(f"{stage}.{key}", self._stage(stage).get(key, default))


@entry_point
def main(argv=None):
    p = argparse.ArgumentParser(
        description="Prints a recipe's flags for one stage, one argument a line (for the stage scripts)."
    )
    p.add_argument(
        "what",
        choices=("flags", "setting", "option"),
        help="flags: all of the stage's; setting: one flag's value; option: a non-flag setting",
    )
    p.add_argument("stage")
    p.add_argument("key", nargs="?", help="with setting / option: the flag's / option's name")
    p.add_argument("--recipe", default="offline", help="offline, paddlenlp or a .yml path")
    p.add_argument("--budget", default="", help="smoke, sample or full; empty: from --data_dir's corpus size")
    p.add_argument("--data_dir", default="data/sample", help="the data the budget is chosen for when --budget is empty")
    p.add_argument("--preset", default="mini", help="mini, small or base")
    args = p.parse_args(argv)
    try:
        recipe = Recipe(args.recipe, args.budget or default_budget(args.data_dir), args.preset)
        if args.what == "flags":
            items = recipe.flags(args.stage)
        else:
            value = (
                recipe.setting(args.stage, args.key) if args.what == "setting" else recipe.option(args.stage, args.key)
            )
            items = [] if value is None else [str(value).lower() if isinstance(value, bool) else str(value)]
    except (RecipeError, OSError, yaml.YAMLError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(items))
    return 0


if __name__ == "__main__":
    sys.exit(main())
