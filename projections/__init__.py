"""Read side: pure projections to SQL statements, the projector worker, queries, migrations."""
