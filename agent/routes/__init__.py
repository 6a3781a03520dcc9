"""The agent's HTTP routes, one blueprint per concern; every route requires a signed request."""
