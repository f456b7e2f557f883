"""`make check-figures`: every figure README quotes comes from a results file.

README's figures live in tables whose rows end with a link to the results file(s) in
`benchmarks/results/` that measured them. For each such row, every number in it (a figure
with a decimal point, a percentage, a ratio, or a byte count with thousands separators)
must appear verbatim in one of the cited files; a row of a results table without a link,
or a link to a missing file, fails too. Prints the problems and exits 1, or says how many
figures it checked. No TensorFlow.
"""
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r"\]\((benchmarks/results/[^)]+)\)")
# 97.72%, 4.31x, 0.0482, 23,603, -0.77: what a results file would print.
FIGURE = re.compile(r"(?<![\w.])[-−+]?\d[\d,]*\.\d+(?:%|x)?|(?<![\w.])\d{1,3}(?:,\d{3})+(?![\d])")
# Tables whose rows must cite their source: their header names the column "source".
SOURCE_HEADER = re.compile(r"^\|.*\|\s*source\s*\|\s*$", re.IGNORECASE)


def figures_of(row: str) -> list[str]:
    cells = row.strip().strip("|").split("|")[:-1]  # The last cell is the source link.
    return [f.replace("−", "-").lstrip("+") for cell in cells for f in FIGURE.findall(cell)]


def problems(readme: str) -> tuple[list[str], int]:
    found, checked, in_table = [], 0, False
    for number, line in enumerate(readme.splitlines(), 1):
        if SOURCE_HEADER.match(line):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        if not in_table or set(line.replace("|", "").strip()) <= set("-: "):
            continue
        links = LINK.findall(line)
        if not links:
            found.append(f"README.md:{number}: a results row cites no benchmarks/results file")
            continue
        texts = []
        for link in links:
            path = os.path.join(REPO, link)
            if not os.path.isfile(path):
                found.append(f"README.md:{number}: {link} does not exist")
                continue
            with open(path, encoding="utf-8") as f:
                texts.append(f.read().replace("−", "-"))
        for figure in figures_of(line):
            checked += 1
            if texts and not any(figure in text for text in texts):
                found.append(f"README.md:{number}: {figure} is in none of {', '.join(links)}")
    return found, checked


def main() -> int:
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        found, checked = problems(f.read())
    for line in found:
        print(line)
    if found:
        return 1
    print(f"check-figures: {checked} README figures, each found in its results file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
