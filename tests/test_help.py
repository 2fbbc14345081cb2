"""Every command-line tool's --help explains every option (the edgepose CLI's verbs are
checked in test_cli.py)."""

import argparse
import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("export/training/synthetic/dataset.py", "export/training/hrnet.py",
         "export/training/detector.py", "export/training/openpose.py", "tools/demo.py",
         "benchmarks/ae_grouping.py", "benchmarks/ae_ties_ap.py", "benchmarks/paf_grouping.py",
         "benchmarks/profile_demo.py",
         "benchmarks/stream_pipeline.py", "benchmarks/topdown_decode.py",
         "benchmarks/triton_serving.py", "benchmarks/modelopt_int8.py")


def _parser_of(relative: str) -> argparse.ArgumentParser:
    if str(ROOT) not in sys.path:  # tools/ and benchmarks/ are folders of the checkout
        sys.path.insert(0, str(ROOT))
    module = importlib.import_module(relative.removesuffix(".py").replace("/", "."))
    return module.build_parser()


def test_every_command_line_tool_is_checked():
    scripts = {str(path.relative_to(ROOT)) for folder in ("benchmarks", "tools", "calib", "export")
               for path in (ROOT / folder).rglob("*.py")
               if "argparse.ArgumentParser(" in path.read_text()}
    assert scripts == set(TOOLS)


@pytest.mark.parametrize("relative", TOOLS)
def test_help_explains_every_option(relative, capsys):
    if relative.startswith("export/") and "synthetic" not in relative:
        pytest.importorskip("torch")
    parser = _parser_of(relative)
    options = [action for action in parser._actions if not isinstance(action, argparse._HelpAction)]
    assert options, relative
    for action in options:
        assert action.help and action.help.strip(), f"{relative}: {action.dest} has no help text"
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for action in options:
        for option in action.option_strings:
            assert option in text, f"{relative}: {option} missing from --help"
