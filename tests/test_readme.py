"""README's two commands stay true: .ci/run runs exactly README's test command."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_readme_opens_with_a_train_and_a_test_command():
    train, test = readme_commands()[:2]
    assert "pipelines/mlp.py" in train
    assert "pytest" in test


def test_ci_runs_the_readme_test_command():
    test = readme_commands()[1].replace("python3 ", "python ")
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci, f"README test command {test!r} is not what .ci/run runs"
