"""`--help` of every console script introduces that app, not Hydra."""
import sys
from importlib.metadata import distribution

import pytest
from hydra.core.global_hydra import GlobalHydra

SCRIPTS = {ep.name: ep for ep in distribution("zoomer").entry_points if ep.group == "console_scripts"}


def test_every_app_is_covered():
    assert set(SCRIPTS) == {"zoomer", "zoomer-still", "zoomer-dimension", "zoomer-targets", "zoomer-explore"}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_introduces_the_app(name, monkeypatch, capsys):
    # The installed script's own function, run in this process (a subprocess per app
    # would spend seconds importing torch again); Hydra exits after printing help.
    monkeypatch.setattr(sys, "argv", [name, "--help"])
    try:
        with pytest.raises(SystemExit) as exit_:
            SCRIPTS[name].load()()
    finally:
        GlobalHydra.instance().clear()
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith(f"{name}: ")
    assert "powered by Hydra" not in text
    assert text.count(f"\n  {name} ") >= 3  # three examples
    # Hydra's usual sections follow: the app's groups and its composed config.
    assert "== Configuration groups ==" in text and "experiment: identity, minibatch" in text
    assert "== Config ==" in text and "\nexperiment:\n  name: tanh" in text
