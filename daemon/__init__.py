"""buzon: the help-desk daemon for OECE's consultas@ and sugerencias@ mailboxes.

Layers, each importing only those below it (checked by import-linter in CI):
cli > service > reports > flows > store > runtime > decide > mail > config.
"""
