"""The commands: the `buzon` command line (main), classify/train/evaluate (learning), the
demo and `buzon check`. May import everything below it; nothing imports it."""
