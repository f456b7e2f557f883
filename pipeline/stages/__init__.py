"""Pipeline stages: each takes a model (or its bytes), a Dataset and a Recipe and returns the
next model plus a metrics dict. Stages never read flags and never touch the output folder."""
