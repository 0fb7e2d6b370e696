"""The CLI starts, and bad input is one line with exit code 2."""

import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "drivechain.cli", *args], capture_output=True, text=True)


def test_help_lists_the_program():
    res = run("--help")
    assert res.returncode == 0
    assert "drivechain" in res.stdout


def test_unknown_command_exits_2_without_traceback():
    res = run("no-such-command")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
