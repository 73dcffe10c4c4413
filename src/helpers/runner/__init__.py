"""The runner, on top of everything: `params` (each notebook's parameters, profiles and the
command line, resolved), `checks` (the rule of every parameter name), `session` (run identity and
the notebook's `Run`), `reference` (committed reference runs and their READMEs). The command
itself is `python -m helpers.study`."""
