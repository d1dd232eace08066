"""The committee paper: assembled from the read models, rendered as Markdown, HTML or PDF."""
