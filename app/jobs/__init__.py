"""A job's life: its typed config, state transitions, events, option rules, recipes, placement
and the registry of the workers that run jobs."""
