"""The software device: rig + firmware simulated on a virtual clock."""
