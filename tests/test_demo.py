"""`genfast demo` (the README's main command) on a few held-out digits: it runs, prints both methods' numbers
and writes its figure and summary."""
import json

from genfast.cli import main


def test_demo_runs_on_a_few_digits(tmp_path, capsys):
    assert main(["demo", "--limit", "20", "--li-every", "10", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "20 images  accuracy" in out and "li2023 50,500/5,1" in out and "2750.0 evals/image" in out
    summary = json.loads((tmp_path / "demo_summary.json").read_text())
    runs = {r["method"]: r for r in summary["runs"]}
    assert runs["genfast"]["accuracy"] >= 0.9 and runs["genfast"]["evaluations_per_image"] < 2750
    assert runs["li2023 50,500/5,1"]["images"] == 2
    assert (tmp_path / "demo_accuracy_vs_evaluations.png").stat().st_size > 10_000
    assert (tmp_path / "demo_accuracy_vs_evaluations.pdf").is_file()
