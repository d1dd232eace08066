"""The HTTP face: the API's routers, the dashboard, auth and tokens, the feed, templates."""
