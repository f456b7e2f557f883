"""The model zoo: `models.registry.get(name)` returns a `ZooEntry`."""
