"""The command line: absl flags generated from the recipe, thin over `pipeline.api`."""
