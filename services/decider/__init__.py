"""The write side's I/O: the decider and its Faust agent, the command gateway, the file loader."""
