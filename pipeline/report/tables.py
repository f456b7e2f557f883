"""Tables as text: the run's printed summary and report.md share them (no TensorFlow)."""


def fmt_bytes(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def network_size(variant: dict, key: str) -> int:
    """`bytes` or `gzip_bytes` of a variant's network alone: a file's metadata (a text
    model's vocabulary in every casing: hundreds of KB) is written on some variants and not
    others, so ratios between files compare networks. A variant validated without its
    conversion (an existing file) has only the file's size."""
    return variant.get(f"network_{key}") or variant[key]


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("---" for _ in rows[0]) + "|")
    return "\n".join(lines)
