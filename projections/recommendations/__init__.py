"""The recommendations read model: inspections, recommendations, history, counts, committees."""
