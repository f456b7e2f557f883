"""Which of a run's asked-for checks failed (issue 28): a check the user asked for that
fails must fail the command, not only a line in report.md, or a script reads exit 0 as
"the client agrees".

- `--check_client`: a file MediaPipe Tasks loads but whose top class agrees with LiteRT's on
  fewer than CLIENT_AGREEMENT_FLOOR of the test images (ties between equal quantized scores
  count as agreement). A file MediaPipe cannot load at all (an int8 input) is the answer the
  check exists to give, recorded in the report, not a failure.
- `--check_legacy_runtime`: a file tflite-runtime 2.14 runs with outputs that disagree with
  LiteRT's. One it cannot load (a newer op version) is recorded, likewise not a failure.
"""
# Same pixels, same file: anything short of (nearly) every image is a client that runs the
# model differently; one image in a hundred leaves room for a float rounding tie.
CLIENT_AGREEMENT_FLOOR = 0.99


def failed_checks(report: dict) -> list[str]:
    """One short phrase per failed check, in variant order; [] when every check passed."""
    failed = []
    for variant in report.get("variants", []):
        client = variant.get("client")
        if client and client.get("loads") and client.get("agreement", 0.0) < CLIENT_AGREEMENT_FLOOR:
            failed.append(f"{variant['name']}: MediaPipe agrees with LiteRT on "
                          f"{100 * client['agreement']:.2f}% of {_count(client)} "
                          f"(floor {100 * CLIENT_AGREEMENT_FLOOR:.0f}%)")
        legacy = variant.get("legacy_runtime")
        if legacy and not legacy.get("agree") and not legacy.get("error"):
            failed.append(f"{variant['name']}: tflite-runtime 2.14 disagrees with LiteRT "
                          f"(max abs diff {legacy.get('max_abs_diff')} {legacy.get('unit') or ''})"
                          .replace(" )", ")"))
    return failed


def _count(client: dict) -> str:
    """How many inputs the client saw, with their noun (clips for audio)."""
    return f"{client['clips']} clips" if "clips" in client else f"{client.get('images', 0)} images"


def failure_message(report: dict, out_dir: str) -> str | None:
    """The one error line for the failed checks, or None."""
    failed = failed_checks(report)
    if not failed:
        return None
    return (f"{len(failed)} check(s) failed: {'; '.join(failed)} (see {out_dir}/report.md); "
            f"pass --allow_check_failures to exit 0")
