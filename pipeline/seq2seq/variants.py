"""The translator's variants: which file each is, from which export, by which conversion."""


def stages() -> list:
    return []
