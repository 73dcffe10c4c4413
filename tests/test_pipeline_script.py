"""The recommended pipeline run from a user's script: the README's example (the same as the
module docstring's), and a plain script with no main guard whose pipeline starts worker processes."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import helpers.pipeline
from helpers.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]
UNGUARDED = """\
from helpers.pipeline import Pipeline
pipe = Pipeline(model="bert-tiny", variant="eager", layout="processes", threads=2)
print(pipe.encode(["one text", "two texts here", "three"]).shape)
"""


def _readme_example() -> str:
    section = (ROOT / "README.md").read_text().split("## The recommended pipeline in your code")[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def _docstring_example() -> str:
    doc = helpers.pipeline.__doc__
    start = doc.index("    from helpers.pipeline import Pipeline")
    return textwrap.dedent(doc[start : doc.index("\n\n", doc.index("if __name__", start))]) + "\n"


def _run(script: str, cwd: Path) -> subprocess.CompletedProcess:
    (cwd / "script.py").write_text(script)
    return subprocess.run([sys.executable, "script.py"], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_readme_and_the_docstring_show_one_example_with_the_main_guard_and_it_runs(tmp_path):
    example = _readme_example()
    assert example == _docstring_example() and 'if __name__ == "__main__":' in example
    Pipeline(model="bert-tiny", layout="processes", threads=2).to_json(tmp_path / "results/recommended_pipeline.json")
    proc = _run(example + "    print(vectors.shape)\n", tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "(2, 128)", proc.stderr[-2000:]


def test_a_plain_script_without_the_main_guard_starts_its_worker_processes(tmp_path):
    proc = _run(UNGUARDED, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]  # before: BrokenProcessPool from workers re-running the script
    assert proc.stdout.strip() == "(3, 128)" and "BrokenProcessPool" not in proc.stderr
