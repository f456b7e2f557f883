"""The report's deployment section: the shape each file ships in, the TFLite metadata read
back from it, and what MediaPipe Tasks (the app client) made of it. Pure: reads the report
dict only, no TensorFlow."""


def _shape(variant: dict) -> str:
    shape = (variant.get("io") or {}).get("input", {}).get("shape")
    return "x".join(str(d) for d in shape) if shape else "?"


def _labels(labels: list | None) -> str:
    if not labels:
        return "no labels"
    head = ", ".join(labels[:3]) + (", ..." if len(labels) > 3 else "")
    return f"{len(labels)} labels ({head})"


def metadata_cell(variant: dict) -> str:
    meta = variant.get("metadata")
    if not meta:
        return "-"
    if not meta.get("written"):
        return f"none: {meta.get('why', '?')}"
    back = meta.get("read_back")
    if not back:
        return "**written but not read back**"
    image = (back.get("inputs") or [{}])[0]
    parts = [_labels(back.get("labels")) + f" from {meta.get('labels_from', '?')}",
             image.get("color_space") or "no image properties"]
    norm = image.get("normalization")
    if norm:
        parts.append("NormalizationOptions mean " + "/".join(f"{m:g}" for m in norm["mean"]) +
                     ", std " + "/".join(f"{s:g}" for s in norm["std"]))
    if image.get("range"):
        parts.append(f"input range {image['range'][0]:g}..{image['range'][1]:g}")
    parts.append(f"parser {back.get('min_parser_version')}")
    return "; ".join(parts)


def client_cell(variant: dict) -> str:
    from pipeline.tflite.client_check import verdict
    result = variant.get("client")
    return verdict(result) if result else "not checked (`--check_client`)"


TITLE = "Deployment: shape, metadata, app clients"
INTRO = ("Shipped files are converted at a fixed batch of 1 (the shape phones run) and "
         "validated as shipped, one image per invoke. Metadata is read back from each file "
         "the way a client reads it.")


def rows(report: dict) -> list[list[str]] | None:
    """Header and one row per variant with metadata or a client check; None when none."""
    chosen = [v for v in report["variants"] if v.get("metadata") or v.get("client")]
    if not chosen:
        return None
    return [["variant", "input shape", "metadata", "MediaPipe Tasks"]] + [
        [v["name"], _shape(v), metadata_cell(v), client_cell(v)] for v in chosen]


def lines(report: dict) -> list[str]:
    table = rows(report)
    if table is None:
        return []
    out = [f"## {TITLE}", "", INTRO, "", "| " + " | ".join(table[0]) + " |",
           "|" + "---|" * len(table[0])]
    out += ["| " + " | ".join(r) + " |" for r in table[1:]]
    return out + [""]


def client_summary(report: dict) -> list[str]:
    """One line per checked file, for the summary printed at the end of a run."""
    return [f"{v['name']} in MediaPipe Tasks: {client_cell(v)}" for v in report["variants"]
            if v.get("client")]
