"""`make check-figures`: a README figure without a results file, or that differs from it,
fails; the real README passes."""
from benchmarks import check_figures

HEADER = "| model | top-1 | gzip | source |\n|---|---|---|---|\n"


def test_a_figure_found_in_its_results_file_passes(tmp_path, monkeypatch):
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "r.md").write_text("top-1 97.72%, gzip 6,015 B")
    monkeypatch.setattr(check_figures, "REPO", str(tmp_path))
    row = "| mnist | 97.72% | 6,015 | [r](benchmarks/results/r.md) |\n"
    assert check_figures.problems(HEADER + row) == ([], 2)


def test_a_changed_figure_a_missing_file_or_no_source_fails(tmp_path, monkeypatch):
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "r.md").write_text("top-1 97.72%, gzip 6,015 B")
    monkeypatch.setattr(check_figures, "REPO", str(tmp_path))
    rows = ("| a | 97.73% | 6,015 | [r](benchmarks/results/r.md) |\n"
            "| b | 97.72% | 6,015 | [r](benchmarks/results/gone.md) |\n"
            "| c | 97.72% | 6,015 | measured once |\n")
    found, _ = check_figures.problems(HEADER + rows)
    assert len(found) == 3
    assert "97.73%" in found[0] and "does not exist" in found[1] and "cites no" in found[2]


def test_the_readme_figures_all_come_from_results_files():
    with open(f"{check_figures.REPO}/README.md", encoding="utf-8") as f:
        found, checked = check_figures.problems(f.read())
    assert found == [] and checked >= 10
