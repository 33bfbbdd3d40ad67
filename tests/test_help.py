"""`--help` of every console script introduces that app, not Hydra."""
import os
import sys
from importlib.metadata import distribution
from importlib.resources import files
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from zoomer.errors import quiet_when_piped

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


def test_a_reader_that_leaves_ends_the_app_quietly(monkeypatch):
    """`zoomer --help | head -1`: Hydra prints the help itself, into a pipe whose reader has
    gone. The app exits 141 (as a shell reports SIGPIPE), with no traceback; every app's
    entry point is wrapped the same way."""
    for name, script in SCRIPTS.items():
        assert script.load().__code__ is quiet_when_piped(print).__code__, name
    reader, writer = os.pipe()
    os.close(reader)
    pipe = os.fdopen(writer, "w", buffering=1)  # each line written as printed, as a terminal would
    monkeypatch.setattr(sys, "stdout", pipe)
    monkeypatch.setattr(sys, "argv", ["zoomer", "--help"])
    try:
        with pytest.raises(SystemExit) as exit_:
            SCRIPTS["zoomer"].load()()
    finally:
        GlobalHydra.instance().clear()
        pipe.close()  # its rest goes to /dev/null, where the app pointed it
    assert exit_.value.code == 141


CONF = Path(str(files("zoomer.conf")))
CONFIG_OF = {"zoomer": "config", "zoomer-still": "still", "zoomer-dimension": "dimension",
             "zoomer-targets": "targets", "zoomer-explore": "explore"}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_names_the_groups_the_app_takes(name):
    """Hydra lists every group of zoomer's conf folder, which the apps share; an app that
    takes fewer says which, exactly those of its defaults list (another is refused)."""
    every = {p.name for p in CONF.iterdir() if p.is_dir() and p.name not in ("hydra", "__pycache__")}
    defaults = OmegaConf.to_container(OmegaConf.load(CONF / f"{CONFIG_OF[name]}.yaml").defaults)
    takes = sorted(k for d in defaults if isinstance(d, dict) for k in d if not k.startswith("override"))
    help_file = CONF / "hydra" / "help" / f"{name.removeprefix('zoomer-')}.yaml"
    groups = OmegaConf.load(help_file).get("groups", "")
    if set(takes) == every:
        assert groups == ""
    else:
        assert groups == f"; {name} takes {', '.join(takes[:-1])} and {takes[-1]}, not the others"
