"""DVC pipeline stages: each module wires one stage's code to its files (``main(params)``)."""
