"""Edges: settings, logging, the local broker and database, Kafka and PostgreSQL clients."""
