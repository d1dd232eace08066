"""One test per finding of the adversarial probe (issue 13), kept for ever."""
