"""Example machine specs shipped with the simulator (load with `load_spec("<name>")`)."""
