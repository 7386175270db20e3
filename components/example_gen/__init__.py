"""ExampleGen that runs the Beam conversion of every source (`component`)."""
