"""The steps of a run strung together: reading, maps, alignment, denoising, view synthesis, reconstruction,
quantification, report; shared by the CLI, recipes, batch and demo."""
