"""The training engine: the loop, its steps, modes, schedules and events."""
