"""`make reproduce`'s runner: every recipe names a runnable example, and a recipe that falls
short (non-zero exit) is reported as a MISS and fails the whole run."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from examples import reproduce
from examples.reproduce import RECIPES, Recipe


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_every_recipe_is_an_example_with_a_main(recipe: Recipe) -> None:
    module = importlib.import_module(recipe.module)
    assert callable(module.main), recipe.module
    assert module.__doc__ and "python -m" in module.__doc__  # says how to run it


def test_recipe_names_are_unique_and_out_goes_into_its_own_folder(tmp_path: Path) -> None:
    assert len({r.name for r in RECIPES}) == len(RECIPES)
    demo = next(r for r in RECIPES if r.name == "demo")
    assert demo.command(tmp_path)[-1] == str(tmp_path / "demo")


def test_a_recipe_that_falls_short_is_a_miss(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `python -m mentor` stands in for an example: its help exits 0, an unknown command 2
    fakes = (Recipe("passes", "mentor", ("--help",)), Recipe("falls_short", "mentor", ("nope",)))
    monkeypatch.setattr(reproduce, "RECIPES", fakes)
    assert reproduce.main(["passes", "--out", str(tmp_path)]) == 0
    assert reproduce.main(["--out", str(tmp_path)]) == 1
    table = capsys.readouterr().out.split("=== 2 recipe(s)")[-1]
    assert "passes" in table and "PASS" in table
    assert "falls_short" in table and "MISS (exit 2)" in table


def test_unknown_names_are_refused_with_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        reproduce.main(["imagenet"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "unknown recipe(s) ['imagenet']" in err and "'imagenette'" in err
