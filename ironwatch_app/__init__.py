"""The Ironwatch application shell: the `ironwatch` command, the demo and local server
launchers. It sits on top of every role package; no product package imports it."""
