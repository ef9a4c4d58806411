"""The data path: discovery, the one image reader, preprocessing, the run loop."""
