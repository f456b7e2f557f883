"""The deliverable's confusion matrix in report.md, rows and columns named by the class
names (issue 29: a keyword spotter's report names its keywords)."""
# Past this many classes the table is unreadable in markdown; report.html draws it.
MAX_CLASSES = 20


def markdown_lines(report: dict) -> list[str]:
    """A table of the int8 file's test-split confusion matrix: true class per row, predicted
    per column; [] when there is none or it is too wide."""
    int8 = next((v for v in report.get("variants", []) if v["name"] == "int8"), None)
    matrix = (int8 or {}).get("confusion_matrix")
    if not matrix or len(matrix) > MAX_CLASSES:
        return []
    names = report.get("labels") or []
    if len(names) != len(matrix):
        names = [str(i) for i in range(len(matrix))]
    lines = ["## Confusion matrix (int8, test split; rows: true, columns: predicted)", "",
             "| true \\ predicted | " + " | ".join(names) + " | recall |",
             "|---|" + "---|" * (len(names) + 1)]
    for i, (name, row) in enumerate(zip(names, matrix)):
        total = sum(row)
        recall = f"{100 * row[i] / total:.1f}%" if total else ""
        lines.append(f"| **{name}** | " + " | ".join(str(c) if c else "·" for c in row)
                     + f" | {recall} |")
    return lines + [""]
