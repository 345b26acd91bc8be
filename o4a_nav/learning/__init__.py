"""The O4A learning pipeline (ROS-free): dataset from bags, the four networks
(h, f-dagger, f, p+), their training stages, the loop-closure graph and the model directory.

Public entry points: `model_io.load_model` / `model_io.save_model` (the model directory),
`pipeline.train` (what `o4a train` runs). See docs/LEARNING.md.
"""
