"""A speed ratio in words (issue 28): "0.82x faster" reads as a gain where int8 is slower.
No TensorFlow: the report and android_bench both use it."""


def speed_phrase(ratio: float) -> str:
    """`ratio` = reference time / new time (float / int8): "3.33x faster", "1.22x slower",
    or "as fast" when both round to the same time at two decimals."""
    if round(ratio, 2) == 1.0:
        return "as fast (1.00x)"
    if ratio > 1.0:
        return f"{ratio:.2f}x faster"
    return f"{1.0 / ratio:.2f}x slower"
