"""Evidence documents: the content-addressed store (a Protocol; PostgreSQL by default, in memory
for tests) and what an upload's bytes must look like to be each allowed kind."""
